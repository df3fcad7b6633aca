-- The rows and bytes a query's scans read of each table, as a JSON list of
-- {"table": "catalog.schema.table", "rows": n, "bytes": n}.
ALTER TABLE aichemy_audit ADD COLUMN table_reads_json TEXT NOT NULL DEFAULT '[]';
