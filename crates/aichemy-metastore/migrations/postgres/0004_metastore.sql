-- The metastore in PostgreSQL: the tables of the SQLite migrations 0001-0004 in one step,
-- numbered 0004 so that a schema version means the same in both databases (later
-- migrations get the same number in both folders). Names and columns are those of SQLite,
-- so that `aichemy metastore export` / `import` move rows between the two unchanged.
-- Times are kept as text, as in SQLite.

-- Views of every catalog.
CREATE TABLE aichemy_views (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    view_name TEXT NOT NULL,
    view_sql TEXT NOT NULL,
    columns_json TEXT NOT NULL,
    comment TEXT,
    owner TEXT,
    created_at TEXT NOT NULL DEFAULT (CURRENT_TIMESTAMP::text),
    PRIMARY KEY (catalog_name, schema_name, view_name)
);

-- Schemas and tables of the delta, lance and hive catalogs.
CREATE TABLE aichemy_schemas (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    location TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (CURRENT_TIMESTAMP::text),
    PRIMARY KEY (catalog_name, schema_name)
);

CREATE TABLE aichemy_tables (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    location TEXT NOT NULL,
    -- 1 when the files belong to someone else: DROP TABLE leaves them.
    external BIGINT NOT NULL DEFAULT 0,
    schema_ipc TEXT NOT NULL,
    properties_json TEXT NOT NULL,
    comment TEXT,
    created_at TEXT NOT NULL DEFAULT (CURRENT_TIMESTAMP::text),
    PRIMARY KEY (catalog_name, schema_name, table_name),
    FOREIGN KEY (catalog_name, schema_name) REFERENCES aichemy_schemas (catalog_name, schema_name)
);

-- External catalogs created with CREATE CATALOG; `${ENV:…}` references stay unresolved.
CREATE TABLE aichemy_catalogs (
    catalog_name TEXT NOT NULL PRIMARY KEY,
    connector TEXT NOT NULL,
    properties_json TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (CURRENT_TIMESTAMP::text)
);

-- The Iceberg SQL catalog (iceberg-catalog-sql, PyIceberg's SqlCatalog, Java's JdbcCatalog).
CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name VARCHAR(255) NOT NULL,
    table_namespace VARCHAR(255) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    metadata_location VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
);

CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL,
    property_key VARCHAR(255),
    property_value VARCHAR(1000),
    PRIMARY KEY (catalog_name, namespace, property_key)
);
