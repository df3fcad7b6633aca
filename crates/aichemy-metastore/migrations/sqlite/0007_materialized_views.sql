-- Materialized views: the defining SQL, the columns it had when created, the grace period
-- (milliseconds; NULL: unlimited) and what a query does when the data is stale beyond it,
-- the WITH properties (JSON), and the Iceberg table that stores the rows. What the stored
-- rows were computed from (each source's version) is kept in the storage table's commits,
-- so that a refresh and its record are one commit.
CREATE TABLE aichemy_materialized_views (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    view_name TEXT NOT NULL,
    view_sql TEXT NOT NULL,
    columns_json TEXT NOT NULL,
    comment TEXT,
    owner TEXT,
    grace_period_ms BIGINT,
    when_stale TEXT NOT NULL,
    properties_json TEXT NOT NULL,
    storage_schema TEXT NOT NULL,
    storage_table TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (catalog_name, schema_name, view_name)
);
