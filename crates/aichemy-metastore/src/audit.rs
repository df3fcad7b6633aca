//! Audit: one record per query, authentication attempt and catalog API call, the newest
//! kept (`audit.kept_records`), as the metastore keeps lineage; a query's record is also its
//! history (`system.runtime.queries`). And the nodes' heartbeats.

use sqlx::Row;

use crate::{Metastore, MetastoreError};

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
    /// Of those, what each table gave.
    pub table_reads: Vec<TableRead>,
    /// `ALLOWED`, `DENIED` or `FAILED`.
    pub decision: String,
    pub reason: Option<String>,
    /// How a query ran (its history, `system.runtime.queries`); empty for other kinds.
    pub run: QueryRun,
}

/// How a query ran: where, for which client, how it ended and what it cost.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryRun {
    pub node: Option<String>,
    pub source: Option<String>,
    pub client_tags: Vec<String>,
    /// `FINISHED` or `FAILED`.
    pub state: Option<String>,
    pub error_code: Option<String>,
    pub error_type: Option<String>,
    pub created_ms: Option<i64>,
    pub queued_ms: Option<i64>,
    pub planning_ms: Option<i64>,
    pub execution_ms: Option<i64>,
    pub cpu_ms: Option<i64>,
    pub peak_memory_bytes: Option<i64>,
    pub spilled_bytes: Option<i64>,
    pub rows_written: Option<i64>,
}

/// What a query's scans read of one table (`catalog.schema.table`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableRead {
    pub table: String,
    pub rows: i64,
    pub bytes: i64,
}

/// Rows per INSERT statement: 34 parameters each, within SQLite's 32,766 and PostgreSQL's
/// 65,535 parameters per statement.
const AUDIT_ROWS_PER_INSERT: usize = 100;

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn list_of(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

impl Metastore {
    /// Records audit events, all or none: one statement per hundred records.
    pub async fn record_audit(&self, records: &[AuditRecord]) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in records.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Any>::new(
                "INSERT INTO aichemy_audit (event_id, recorded_ms, kind, user_name, roles_json, \
                 source_address, user_agent, action, query_id, read_json, written_json, \
                 row_count, byte_count, decision, reason, columns_read_json, \
                 columns_written_json, rows_read, bytes_read, node, source, client_tags_json, \
                 state, error_code, error_type, created_ms, queued_ms, planning_ms, \
                 execution_ms, cpu_ms, peak_memory_bytes, spilled_bytes, rows_written, \
                 table_reads_json) ",
            );
            insert.push_values(chunk, |mut row, r| {
                row.push_bind(r.event_id.clone())
                    .push_bind(r.recorded_ms)
                    .push_bind(r.kind.clone())
                    .push_bind(r.user.clone())
                    .push_bind(json_list(&r.roles))
                    .push_bind(r.source_address.clone())
                    .push_bind(r.user_agent.clone())
                    .push_bind(r.action.clone())
                    .push_bind(r.query_id.clone())
                    .push_bind(json_list(&r.read))
                    .push_bind(json_list(&r.written))
                    .push_bind(r.rows)
                    .push_bind(r.bytes)
                    .push_bind(r.decision.clone())
                    .push_bind(r.reason.clone())
                    .push_bind(json_list(&r.columns_read))
                    .push_bind(json_list(&r.columns_written))
                    .push_bind(r.rows_read)
                    .push_bind(r.bytes_read)
                    .push_bind(r.run.node.clone())
                    .push_bind(r.run.source.clone())
                    .push_bind(json_list(&r.run.client_tags))
                    .push_bind(r.run.state.clone())
                    .push_bind(r.run.error_code.clone())
                    .push_bind(r.run.error_type.clone())
                    .push_bind(r.run.created_ms)
                    .push_bind(r.run.queued_ms)
                    .push_bind(r.run.planning_ms)
                    .push_bind(r.run.execution_ms)
                    .push_bind(r.run.cpu_ms)
                    .push_bind(r.run.peak_memory_bytes)
                    .push_bind(r.run.spilled_bytes)
                    .push_bind(r.run.rows_written)
                    .push_bind(
                        serde_json::to_string(&r.table_reads).unwrap_or_else(|_| "[]".into()),
                    );
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the records older than the newest `keep` (`audit.kept_records` in a server).
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
        self.audit_where(user, None, None).await
    }

    /// The query history: the newest `limit` audit records of queries, all or `user`'s.
    pub async fn query_history(
        &self,
        user: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, MetastoreError> {
        self.audit_where(user, Some("QUERY"), Some(limit)).await
    }

    async fn audit_where(
        &self,
        user: Option<&str>,
        kind: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<AuditRecord>, MetastoreError> {
        let select = "SELECT event_id, recorded_ms, kind, user_name, roles_json, source_address, \
             user_agent, action, query_id, read_json, written_json, row_count, byte_count, \
             decision, reason, columns_read_json, columns_written_json, rows_read, bytes_read, \
             node, source, client_tags_json, state, error_code, error_type, created_ms, \
             queued_ms, planning_ms, execution_ms, cpu_ms, peak_memory_bytes, spilled_bytes, \
             rows_written, table_reads_json FROM aichemy_audit";
        let order = "ORDER BY recorded_ms DESC, event_id";
        // Absent filters match every row: `$n IS NULL OR …`.
        let filter = "WHERE ($1 IS NULL OR user_name = $1) AND ($2 IS NULL OR kind = $2)";
        let limit = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let rows = sqlx::query(&format!("{select} {filter} {order} LIMIT $3"))
            .bind(user)
            .bind(kind)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
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
                table_reads: serde_json::from_str(&row.get::<String, _>(33)).unwrap_or_default(),
                run: QueryRun {
                    node: row.get(19),
                    source: row.get(20),
                    client_tags: list_of(row.get(21)),
                    state: row.get(22),
                    error_code: row.get(23),
                    error_type: row.get(24),
                    created_ms: row.get(25),
                    queued_ms: row.get(26),
                    planning_ms: row.get(27),
                    execution_ms: row.get(28),
                    cpu_ms: row.get(29),
                    peak_memory_bytes: row.get(30),
                    spilled_bytes: row.get(31),
                    rows_written: row.get(32),
                },
            })
            .collect())
    }
}

/// A server as `system.runtime.nodes` lists it: its last heartbeat says whether it is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub node_id: String,
    pub http_uri: Option<String>,
    pub node_version: String,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
}

impl Metastore {
    /// Records that `node` is up now (a server's heartbeat, every few seconds).
    pub async fn node_heartbeat(&self, node: &NodeRecord) -> Result<(), MetastoreError> {
        sqlx::query(
            "INSERT INTO aichemy_nodes (node_id, http_uri, node_version, started_ms, heartbeat_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (node_id) DO UPDATE SET \
             http_uri = excluded.http_uri, node_version = excluded.node_version, \
             started_ms = excluded.started_ms, heartbeat_ms = excluded.heartbeat_ms",
        )
        .bind(&node.node_id)
        .bind(&node.http_uri)
        .bind(&node.node_version)
        .bind(node.started_ms)
        .bind(node.heartbeat_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets a node that stopped.
    pub async fn forget_node(&self, node_id: &str) -> Result<(), MetastoreError> {
        sqlx::query("DELETE FROM aichemy_nodes WHERE node_id = $1")
            .bind(node_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The nodes that sent a heartbeat since `since_ms`, by id.
    pub async fn nodes(&self, since_ms: i64) -> Result<Vec<NodeRecord>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT node_id, http_uri, node_version, started_ms, heartbeat_ms FROM aichemy_nodes \
             WHERE heartbeat_ms >= $1 ORDER BY node_id",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| NodeRecord {
                node_id: row.get(0),
                http_uri: row.get(1),
                node_version: row.get(2),
                started_ms: row.get(3),
                heartbeat_ms: row.get(4),
            })
            .collect())
    }
}
