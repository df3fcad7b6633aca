-- Users who may sign in with a password (Trino's password authentication, the Iceberg REST
-- catalog's token endpoint), managed with `aichemy user`. The hash is bcrypt or PBKDF2 in
-- the notation of Trino's password file, never the password.
CREATE TABLE aichemy_users (
    user_name TEXT NOT NULL PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (CURRENT_TIMESTAMP::text)
);

-- Keys every server of a lakehouse shares, made by the first server that needs one: the
-- key that signs the Iceberg REST catalog's bearer tokens, so that a token one node issued
-- is accepted by the others. Not part of `aichemy metastore export`.
CREATE TABLE aichemy_secrets (
    secret_name TEXT NOT NULL PRIMARY KEY,
    secret_value TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (CURRENT_TIMESTAMP::text)
);
