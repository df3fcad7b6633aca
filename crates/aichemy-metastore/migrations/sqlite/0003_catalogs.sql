-- External catalogs created at run time with CREATE CATALOG (Trino's dynamic catalogs).
-- Properties are kept as written: `${ENV:NAME}` and `${FILE:path}` references stay
-- unresolved, so secrets given that way never reach this database.
CREATE TABLE aichemy_catalogs (
    catalog_name TEXT NOT NULL PRIMARY KEY,
    connector TEXT NOT NULL,
    -- A JSON object of property names to values.
    properties_json TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
