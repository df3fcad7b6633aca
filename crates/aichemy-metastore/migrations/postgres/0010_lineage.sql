-- Lineage: each write that succeeded (INSERT, CREATE TABLE AS, UPDATE, DELETE, MERGE, a
-- materialized view's refresh, an ingestion job), the table it wrote, who and what ran it,
-- and as JSON the relations it read and which of their columns each written column derives
-- from (edges_json). An ingestion job keeps one record, replaced as its columns change.
CREATE TABLE aichemy_lineage (
    event_id TEXT PRIMARY KEY,
    recorded_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    target_catalog TEXT NOT NULL,
    target_schema TEXT NOT NULL,
    target_table TEXT NOT NULL,
    user_name TEXT NOT NULL,
    query_id TEXT,
    pipeline_name TEXT,
    run_id TEXT,
    step_name TEXT,
    edges_json TEXT NOT NULL
);
CREATE INDEX aichemy_lineage_recorded ON aichemy_lineage (recorded_ms);
