-- The query history: a query's audit record also keeps how it ran, so that
-- system.runtime.queries shows the queries of every node sharing the metastore with their
-- cost — the node, source and client tags, the state and error, queued, planning and
-- execution time, CPU time, peak memory, rows written and bytes spilled. And the nodes:
-- each server's heartbeat, for system.runtime.nodes.
ALTER TABLE aichemy_audit ADD COLUMN node TEXT;
ALTER TABLE aichemy_audit ADD COLUMN source TEXT;
ALTER TABLE aichemy_audit ADD COLUMN client_tags_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE aichemy_audit ADD COLUMN state TEXT;
ALTER TABLE aichemy_audit ADD COLUMN error_code TEXT;
ALTER TABLE aichemy_audit ADD COLUMN error_type TEXT;
ALTER TABLE aichemy_audit ADD COLUMN created_ms BIGINT;
ALTER TABLE aichemy_audit ADD COLUMN queued_ms BIGINT;
ALTER TABLE aichemy_audit ADD COLUMN planning_ms BIGINT;
ALTER TABLE aichemy_audit ADD COLUMN execution_ms BIGINT;
ALTER TABLE aichemy_audit ADD COLUMN cpu_ms BIGINT;
ALTER TABLE aichemy_audit ADD COLUMN peak_memory_bytes BIGINT;
ALTER TABLE aichemy_audit ADD COLUMN spilled_bytes BIGINT;
ALTER TABLE aichemy_audit ADD COLUMN rows_written BIGINT;
CREATE INDEX aichemy_audit_by_kind ON aichemy_audit (kind, recorded_ms);

CREATE TABLE aichemy_nodes (
    node_id TEXT PRIMARY KEY,
    http_uri TEXT,
    node_version TEXT NOT NULL,
    started_ms BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
