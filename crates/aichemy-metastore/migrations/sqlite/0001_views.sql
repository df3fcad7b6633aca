-- Views of every catalog. Tables of the iceberg catalog live in the iceberg-catalog-sql
-- tables (iceberg_tables, iceberg_namespace_properties) of the same database, created by
-- that crate, so that PyIceberg's and Java's JDBC catalogs share them.
CREATE TABLE aichemy_views (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    view_name TEXT NOT NULL,
    view_sql TEXT NOT NULL,
    columns_json TEXT NOT NULL,
    comment TEXT,
    owner TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (catalog_name, schema_name, view_name)
);
