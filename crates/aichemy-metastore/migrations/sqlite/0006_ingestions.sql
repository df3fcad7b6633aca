-- Ingestion jobs made with CREATE INGESTION: the definition (source, target, format and
-- options as JSON, secrets as the `${ENV:…}`/`${FILE:…}` references the user wrote), the
-- state the user asked for (running or paused), and the lease of the one server that runs
-- the job: its node name, until when (milliseconds since the epoch) and the status it last
-- reported (JSON: position, rows, lag, last error). The source position itself is kept in
-- the target table's commits, not here.
CREATE TABLE aichemy_ingestions (
    ingestion_name TEXT NOT NULL PRIMARY KEY,
    definition_json TEXT NOT NULL,
    desired_state TEXT NOT NULL,
    lease_node TEXT,
    lease_until BIGINT,
    status_json TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
