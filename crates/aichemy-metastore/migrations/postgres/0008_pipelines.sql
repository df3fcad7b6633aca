-- Pipelines: the definition (JSON: steps and their dependencies, schedule, retries,
-- timeouts, owner), the state users asked for (`active` or `paused`), the newest
-- schedule time already queued as a run (ms since the epoch; 0: none yet, the schedule
-- starts when a node first runs it), so that a node taking the
-- pipeline over neither repeats nor skips one, and the lease of the node that runs it.
CREATE TABLE aichemy_pipelines (
    pipeline_name TEXT PRIMARY KEY,
    definition_json TEXT NOT NULL,
    desired_state TEXT NOT NULL,
    scheduled_until BIGINT NOT NULL DEFAULT 0,
    lease_node TEXT,
    lease_until BIGINT,
    created_at TEXT NOT NULL DEFAULT (CURRENT_TIMESTAMP::text)
);

-- Runs: queued by the schedule, by hand or by a backfill (a batch of runs, one per date,
-- up to max_parallel of them at once), run by the lease holder in the order queued.
CREATE TABLE aichemy_pipeline_runs (
    run_id TEXT PRIMARY KEY,
    pipeline_name TEXT NOT NULL,
    run_trigger TEXT NOT NULL,
    logical_date TEXT NOT NULL,
    batch_id TEXT,
    max_parallel BIGINT NOT NULL,
    state TEXT NOT NULL,
    queued_ms BIGINT NOT NULL,
    started_ms BIGINT,
    ended_ms BIGINT,
    node TEXT,
    error TEXT
);
CREATE INDEX aichemy_pipeline_runs_by_pipeline ON aichemy_pipeline_runs (pipeline_name, queued_ms);

-- Each step of a run: its latest attempt.
CREATE TABLE aichemy_pipeline_steps (
    run_id TEXT NOT NULL,
    step_name TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    started_ms BIGINT,
    ended_ms BIGINT,
    rows_written BIGINT,
    query_id TEXT,
    error TEXT,
    PRIMARY KEY (run_id, step_name)
);
