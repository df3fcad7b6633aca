//! Audit: one record per query, authentication attempt and catalog API call, kept newest
//! [`KEPT_AUDIT`] first, as the metastore keeps lineage.

use sqlx::Row;

use crate::{Metastore, MetastoreError};

/// How many audit records the metastore keeps; older ones are pruned as new ones come.
pub const KEPT_AUDIT: i64 = 100_000;

/// One audited event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditRecord {
    pub event_id: String,
    pub recorded_ms: i64,
    /// `QUERY`, `AUTHENTICATION` or `CATALOG_API`.
    pub kind: String,
    /// Who, when known (an authentication that failed may name nobody).
    pub user: Option<String>,
    pub roles: Vec<String>,
    pub source_address: Option<String>,
    pub user_agent: Option<String>,
    /// The statement (secrets masked) or the endpoint (`GET /iceberg/v1/namespaces`).
    pub action: String,
    pub query_id: Option<String>,
    /// Tables read and written, as `catalog.schema.table`.
    pub read: Vec<String>,
    pub written: Vec<String>,
    /// Columns read and written, as `catalog.schema.table.column`.
    pub columns_read: Vec<String>,
    pub columns_written: Vec<String>,
    /// Rows and bytes the query returned.
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    /// Rows its scans produced and bytes they read from storage.
    pub rows_read: Option<i64>,
    pub bytes_read: Option<i64>,
    /// `ALLOWED`, `DENIED` or `FAILED`.
    pub decision: String,
    pub reason: Option<String>,
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn list_of(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

impl Metastore {
    /// Records audit events, all or none.
    pub async fn record_audit(&self, records: &[AuditRecord]) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        for r in records {
            sqlx::query(
                "INSERT INTO aichemy_audit (event_id, recorded_ms, kind, user_name, roles_json, \
                 source_address, user_agent, action, query_id, read_json, written_json, \
                 row_count, byte_count, decision, reason, columns_read_json, \
                 columns_written_json, rows_read, bytes_read) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17, $18, $19)",
            )
            .bind(&r.event_id)
            .bind(r.recorded_ms)
            .bind(&r.kind)
            .bind(&r.user)
            .bind(json_list(&r.roles))
            .bind(&r.source_address)
            .bind(&r.user_agent)
            .bind(&r.action)
            .bind(&r.query_id)
            .bind(json_list(&r.read))
            .bind(json_list(&r.written))
            .bind(r.rows)
            .bind(r.bytes)
            .bind(&r.decision)
            .bind(&r.reason)
            .bind(json_list(&r.columns_read))
            .bind(json_list(&r.columns_written))
            .bind(r.rows_read)
            .bind(r.bytes_read)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the records older than the newest `keep` ([`KEPT_AUDIT`] in a server).
    pub async fn prune_audit(&self, keep: i64) -> Result<(), MetastoreError> {
        sqlx::query(
            "DELETE FROM aichemy_audit WHERE recorded_ms < (SELECT min(recorded_ms) FROM \
             (SELECT recorded_ms FROM aichemy_audit ORDER BY recorded_ms DESC LIMIT $1) newest)",
        )
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The rows and bytes `user`'s queries returned since `since_ms`.
    pub async fn read_since(
        &self,
        user: &str,
        since_ms: i64,
    ) -> Result<(i64, i64), MetastoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(row_count), 0) AS BIGINT), \
             CAST(COALESCE(SUM(byte_count), 0) AS BIGINT) FROM aichemy_audit \
             WHERE user_name = $1 AND kind = 'QUERY' AND recorded_ms >= $2",
        )
        .bind(user)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.get(0), row.get(1)))
    }

    /// The audit records, newest first: all of them, or `user`'s.
    pub async fn audit_records(
        &self,
        user: Option<&str>,
    ) -> Result<Vec<AuditRecord>, MetastoreError> {
        let select = "SELECT event_id, recorded_ms, kind, user_name, roles_json, source_address, \
             user_agent, action, query_id, read_json, written_json, row_count, byte_count, \
             decision, reason, columns_read_json, columns_written_json, rows_read, bytes_read \
             FROM aichemy_audit";
        let order = "ORDER BY recorded_ms DESC, event_id";
        let rows = match user {
            Some(user) => {
                sqlx::query(&format!("{select} WHERE user_name = $1 {order}"))
                    .bind(user)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{select} {order}"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|row| AuditRecord {
                event_id: row.get(0),
                recorded_ms: row.get(1),
                kind: row.get(2),
                user: row.get(3),
                roles: list_of(row.get(4)),
                source_address: row.get(5),
                user_agent: row.get(6),
                action: row.get(7),
                query_id: row.get(8),
                read: list_of(row.get(9)),
                written: list_of(row.get(10)),
                rows: row.get(11),
                bytes: row.get(12),
                decision: row.get(13),
                reason: row.get(14),
                columns_read: list_of(row.get(15)),
                columns_written: list_of(row.get(16)),
                rows_read: row.get(17),
                bytes_read: row.get(18),
            })
            .collect())
    }
}
