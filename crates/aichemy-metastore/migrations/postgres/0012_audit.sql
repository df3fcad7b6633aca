-- Audit: one record per query, authentication attempt and Iceberg REST catalog call,
-- refused and failed ones included: who (user, enabled roles, address, user agent), what
-- (kind, the statement with secrets masked or the endpoint, the tables read and written,
-- as JSON arrays of names), how much (rows and bytes returned), and the decision with its
-- reason. The hourly read limits sum a user's rows and bytes here.
CREATE TABLE aichemy_audit (
    event_id TEXT PRIMARY KEY,
    recorded_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    user_name TEXT,
    roles_json TEXT NOT NULL,
    source_address TEXT,
    user_agent TEXT,
    action TEXT NOT NULL,
    query_id TEXT,
    read_json TEXT NOT NULL,
    written_json TEXT NOT NULL,
    row_count BIGINT,
    byte_count BIGINT,
    decision TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX aichemy_audit_recorded ON aichemy_audit (recorded_ms);
CREATE INDEX aichemy_audit_by_user ON aichemy_audit (user_name, recorded_ms);
