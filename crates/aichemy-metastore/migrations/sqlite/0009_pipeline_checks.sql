-- The quality checks a pipeline run evaluated: how each came out (passed, failed, warned,
-- quarantined), how many rows failed it, and why.
CREATE TABLE aichemy_pipeline_checks (
    run_id TEXT NOT NULL,
    check_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    state TEXT NOT NULL,
    failing_rows BIGINT,
    message TEXT,
    checked_ms BIGINT NOT NULL,
    PRIMARY KEY (run_id, check_name)
);
