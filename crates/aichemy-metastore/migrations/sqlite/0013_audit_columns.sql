-- Audit, what a query read and wrote down to columns (JSON arrays of
-- `catalog.schema.table.column`), and the rows and bytes its scans read from storage
-- (the rows and bytes columns count what the query returned).
ALTER TABLE aichemy_audit ADD COLUMN columns_read_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE aichemy_audit ADD COLUMN columns_written_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE aichemy_audit ADD COLUMN rows_read BIGINT;
ALTER TABLE aichemy_audit ADD COLUMN bytes_read BIGINT;
