-- SQL grants (access-control.name=sql-standard): the roles created, who holds each
-- (a user, a role or a group; with the right to grant it on), the privileges granted or
-- denied on tables and schemas (table_name '' for the schema itself), the owner of each
-- schema and table created under SQL grants, and the row filters (column_name '') and
-- column masks that apply to a grantee.
CREATE TABLE aichemy_roles (
    role_name TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE TABLE aichemy_role_grants (
    role_name TEXT NOT NULL,
    grantee_type TEXT NOT NULL,
    grantee TEXT NOT NULL,
    admin_option BIGINT NOT NULL,
    grantor TEXT NOT NULL,
    PRIMARY KEY (role_name, grantee_type, grantee)
);
CREATE TABLE aichemy_privileges (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    privilege TEXT NOT NULL,
    grantee_type TEXT NOT NULL,
    grantee TEXT NOT NULL,
    is_deny BIGINT NOT NULL,
    grant_option BIGINT NOT NULL,
    grantor TEXT NOT NULL,
    PRIMARY KEY (catalog_name, schema_name, table_name, privilege, grantee_type, grantee, is_deny)
);
CREATE TABLE aichemy_owners (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    owner_type TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (catalog_name, schema_name, table_name)
);
CREATE TABLE aichemy_restrictions (
    catalog_name TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    grantee_type TEXT NOT NULL,
    grantee TEXT NOT NULL,
    expression TEXT NOT NULL,
    PRIMARY KEY (catalog_name, schema_name, table_name, column_name, grantee_type, grantee)
);
