//! The queries a server knows, as `system.runtime.queries` shows them to each user.

use std::sync::Arc;

use super::Lakehouse;

/// One query as `system.runtime.queries` shows it.
#[derive(Debug, Clone)]
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
    pub rows: i64,
}

/// Where the running and recent queries of a server are known.
pub trait QueryLog: std::fmt::Debug + Send + Sync {
    fn queries(&self) -> Vec<QueryRecord>;
}

impl Lakehouse {
    /// Connects the query log of the server that serves this lakehouse.
    pub fn set_query_log(&self, log: Arc<dyn QueryLog>) {
        *self.query_log.write().expect("not poisoned") = Some(log);
    }

    /// The queries the server knows that `user` may see: every one for an administrator,
    /// their own for anyone else (the text of another user's statement may hold what they
    /// typed as a password); none outside a server, none for no user.
    pub fn queries(&self, user: Option<&str>) -> Vec<QueryRecord> {
        let Some(user) = user else {
            return Vec::new();
        };
        let mut queries = self
            .query_log
            .read()
            .expect("not poisoned")
            .as_ref()
            .map(|log| log.queries())
            .unwrap_or_default();
        if !self.is_admin(user) {
            queries.retain(|query| query.user == user);
        }
        queries
    }
}
