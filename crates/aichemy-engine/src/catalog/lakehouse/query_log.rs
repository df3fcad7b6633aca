//! The queries `system.runtime.queries` shows each user: those running on this server,
//! and the history every server sharing the metastore keeps (each ended query's audit
//! record, with what it cost).

use std::collections::HashSet;
use std::sync::Arc;

use aichemy_metastore::AuditRecord;

use super::Lakehouse;
use crate::error::{ErrorCode, Result, TrinoError};

/// The newest ended queries `system.runtime.queries` reads from the history.
const HISTORY_SHOWN: usize = 10_000;

/// One query as `system.runtime.queries` shows it.
#[derive(Debug, Clone, Default)]
pub struct QueryRecord {
    pub query_id: String,
    pub state: String,
    pub user: String,
    pub source: Option<String>,
    pub query: String,
    pub error_code: Option<String>,
    /// When the query was submitted, as `2025-01-15 10:30:00.000 UTC`.
    pub created: String,
    pub elapsed_ms: i64,
    /// Rows returned to the client.
    pub rows: i64,
    /// What the history adds: where it ran and for whom, how it ended, what it cost.
    pub node: Option<String>,
    pub client_tags: Vec<String>,
    pub error_type: Option<String>,
    pub ended: Option<String>,
    pub queued_ms: Option<i64>,
    pub planning_ms: Option<i64>,
    pub execution_ms: Option<i64>,
    pub cpu_ms: Option<i64>,
    pub peak_memory_bytes: Option<i64>,
    pub bytes: Option<i64>,
    pub rows_read: Option<i64>,
    pub bytes_read: Option<i64>,
    pub rows_written: Option<i64>,
    pub spilled_bytes: Option<i64>,
    /// `catalog.schema.table` named, and `catalog.schema.table.column` read.
    pub tables_read: Vec<String>,
    pub columns_read: Vec<String>,
    /// The rows and bytes read of each table.
    pub table_reads: Vec<aichemy_metastore::TableRead>,
}

/// A time in milliseconds since the epoch as `2025-01-15 10:30:00.000 UTC`.
pub fn utc_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S%.3f UTC")
        .to_string()
}

impl From<AuditRecord> for QueryRecord {
    fn from(r: AuditRecord) -> Self {
        let run = r.run;
        let created_ms = run.created_ms.unwrap_or(r.recorded_ms);
        QueryRecord {
            query_id: r.query_id.unwrap_or_default(),
            state: run.state.unwrap_or_else(|| match r.decision.as_str() {
                "ALLOWED" => "FINISHED".into(),
                _ => "FAILED".into(),
            }),
            user: r.user.unwrap_or_default(),
            source: run.source,
            query: r.action,
            error_code: run.error_code,
            created: utc_millis(created_ms),
            elapsed_ms: r.recorded_ms - created_ms,
            rows: r.rows.unwrap_or(0),
            node: run.node,
            client_tags: run.client_tags,
            error_type: run.error_type,
            ended: Some(utc_millis(r.recorded_ms)),
            queued_ms: run.queued_ms,
            planning_ms: run.planning_ms,
            execution_ms: run.execution_ms,
            cpu_ms: run.cpu_ms,
            peak_memory_bytes: run.peak_memory_bytes,
            bytes: r.bytes,
            rows_read: r.rows_read,
            bytes_read: r.bytes_read,
            rows_written: run.rows_written,
            spilled_bytes: run.spilled_bytes,
            tables_read: r.read,
            columns_read: r.columns_read,
            table_reads: r.table_reads,
        }
    }
}

/// Where the running and recent queries of a server are known.
pub trait QueryLog: std::fmt::Debug + Send + Sync {
    fn queries(&self) -> Vec<QueryRecord>;
    /// The user of a query this server knows, and whether it is still queued or running.
    fn owner(&self, query_id: &str) -> Option<(String, bool)>;
    /// Fails a queued or running query with `error`; false when it had already ended.
    fn kill(&self, query_id: &str, error: TrinoError) -> bool;
}

impl Lakehouse {
    /// Connects the query log of the server that serves this lakehouse.
    pub fn set_query_log(&self, log: Arc<dyn QueryLog>) {
        *self.query_log.write().expect("not poisoned") = Some(log);
    }

    /// The queries `user` may see, newest first: those running on this server, then the
    /// ended ones of every server from the history. A user sees her own; an administrator
    /// (or, under a rules file, whoever its `queries` rules let view their owner's) others'
    /// too, as the text of another user's statement may hold what they typed. None for no
    /// user.
    pub async fn queries(&self, user: Option<&str>) -> Result<Vec<QueryRecord>> {
        let Some(user) = user else {
            return Ok(Vec::new());
        };
        let local = self
            .query_log
            .read()
            .expect("not poisoned")
            .as_ref()
            .map(|log| log.queries())
            .unwrap_or_default();
        let access = self.access(user)?;
        let sees_all = match &access {
            Some(_) => self.reads_system_information(user),
            None => self.is_admin(user),
        };
        let history = self
            .metastore()
            .query_history((!sees_all).then_some(user), HISTORY_SHOWN)
            .await?;
        let ended: HashSet<&str> = history
            .iter()
            .filter_map(|r| r.query_id.as_deref())
            .collect();
        // A query that ended on this server is in both until the history has it.
        let mut queries: Vec<QueryRecord> = local
            .into_iter()
            .filter(|q| !ended.contains(q.query_id.as_str()))
            .collect();
        queries.extend(history.into_iter().map(QueryRecord::from));
        queries.retain(|q| {
            q.user == user
                || match &access {
                    Some(access) if !self.sql_grants() => access
                        .rules
                        .check_can_view_query_owned_by(&access.identity, &q.user)
                        .is_ok(),
                    _ => sees_all,
                }
        });
        Ok(queries)
    }

    /// Whether `user` may kill the queries of `owner`: her own; under a rules file,
    /// others' as its `queries` rules allow; otherwise an administrator's right.
    pub fn may_kill_query_of(&self, user: &str, owner: &str) -> bool {
        if user == owner {
            return true;
        }
        match self.access(user) {
            Ok(Some(access)) if !self.sql_grants() => access
                .rules
                .check_can_kill_query_owned_by(&access.identity, owner)
                .is_ok(),
            Ok(Some(_)) => self.grant_admins().contains(user),
            Ok(None) => self.is_admin(user),
            Err(_) => false,
        }
    }

    /// Kills a query running on this server for `user`, as Trino's
    /// `system.runtime.kill_query`: the query fails with `ADMINISTRATIVELY_KILLED`.
    pub fn kill_query(&self, user: &str, query_id: &str, message: Option<&str>) -> Result<()> {
        let log = self.query_log.read().expect("not poisoned").clone();
        let not_found = || {
            TrinoError::new(
                ErrorCode::NOT_FOUND,
                format!("Target query not found: {query_id}"),
            )
        };
        let log = log.ok_or_else(not_found)?;
        let (owner, running) = log.owner(query_id).ok_or_else(not_found)?;
        if !self.may_kill_query_of(user, &owner) {
            return Err(TrinoError::new(
                ErrorCode::PERMISSION_DENIED,
                format!("Access Denied: Cannot kill query owned by {owner}"),
            ));
        }
        let not_running = || {
            TrinoError::new(
                ErrorCode::NOT_SUPPORTED,
                format!("Target query is not running: {query_id}"),
            )
        };
        if !running {
            return Err(not_running());
        }
        let reason = match message.filter(|m| !m.is_empty()) {
            Some(message) => format!("Query killed. Message: {message}"),
            None => "Query killed. No message provided.".to_string(),
        };
        match log.kill(
            query_id,
            TrinoError::new(ErrorCode::ADMINISTRATIVELY_KILLED, reason),
        ) {
            true => Ok(()),
            false => Err(not_running()),
        }
    }
}
