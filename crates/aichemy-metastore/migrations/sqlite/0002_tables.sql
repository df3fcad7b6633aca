-- Schemas and tables of the catalogs whose formats keep no catalog of their own (delta,
-- lance, hive). Delta and Lance tables describe their columns themselves; the stored
-- schema is what the metastore last saw, and the whole schema of a hive table.
CREATE TABLE aichemy_schemas (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    location TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (catalog_name, schema_name)
);

CREATE TABLE aichemy_tables (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    location TEXT NOT NULL,
    -- 1 when the files belong to someone else: DROP TABLE leaves them.
    external INTEGER NOT NULL DEFAULT 0,
    -- The Arrow schema as an Arrow IPC schema message, hex-encoded; field metadata carries
    -- the Trino type and comment of each column.
    schema_ipc TEXT NOT NULL,
    -- Table properties as a JSON object of SQL literals (`'PARQUET'`, `ARRAY['dt']`).
    properties_json TEXT NOT NULL,
    comment TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (catalog_name, schema_name, table_name),
    FOREIGN KEY (catalog_name, schema_name) REFERENCES aichemy_schemas (catalog_name, schema_name)
);
