//! Audit (issue 34): one record per query, authentication attempt and Iceberg REST catalog
//! call, refused and failed ones included, written to the metastore in the background
//! (`system.runtime.audit`) and, with `audit.http_url` set, each query POSTed as JSON in
//! the shape of Trino's HTTP event listener's `QueryCompletedEvent`. Statements are kept
//! with the secrets of `CREATE CATALOG` masked; passwords and tokens are never recorded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aichemy_metastore::{AuditRecord, Metastore};
use datafusion::sql::sqlparser::ast::{
    FromTable, ObjectName, Statement, TableFactor, TableObject, Visit, Visitor,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::catalog::lakehouse::Lakehouse;

/// What a query record says beyond its metastore row, for the HTTP event.
#[derive(Debug, Clone, Default)]
pub struct QueryDetails {
    /// Trino's error code, name and type of a failed query.
    pub error: Option<(i32, String, String)>,
    pub source: Option<String>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// When the query was created and ended, in milliseconds since the epoch.
    pub created_ms: i64,
}

/// An audited event.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub record: AuditRecord,
    pub query: Option<QueryDetails>,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes audit records in the background.
#[derive(Debug)]
pub(crate) struct Auditor {
    queue: mpsc::UnboundedSender<AuditEvent>,
    pending: Arc<AtomicUsize>,
}

impl Auditor {
    /// Starts the writer; call inside a tokio runtime.
    pub(crate) fn spawn(metastore: Metastore, http_url: Option<String>) -> Self {
        let (queue, mut events) = mpsc::unbounded_channel::<AuditEvent>();
        let pending = Arc::new(AtomicUsize::new(0));
        let left = pending.clone();
        aichemy_task::spawn("audit", async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .ok();
            while let Some(first) = events.recv().await {
                let mut batch = vec![first];
                while batch.len() < 500 {
                    match events.try_recv() {
                        Ok(event) => batch.push(event),
                        Err(_) => break,
                    }
                }
                let records: Vec<AuditRecord> = batch.iter().map(|e| e.record.clone()).collect();
                store(&metastore, &records).await;
                if let (Some(url), Some(client)) = (&http_url, &client) {
                    for event in &batch {
                        if let Some(details) = &event.query {
                            post(client, url, &completed_event(&event.record, details)).await;
                        }
                    }
                }
                left.fetch_sub(batch.len(), Ordering::SeqCst);
            }
        });
        Self { queue, pending }
    }

    fn record(&self, event: AuditEvent) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.queue.send(event).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            tracing::error!("audit record lost: the audit writer has stopped");
        }
    }

    async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Writes records, trying again while the metastore cannot take them.
async fn store(metastore: &Metastore, records: &[AuditRecord]) {
    let mut wait = Duration::from_millis(200);
    for attempt in 1..=5 {
        match metastore.record_audit(records).await {
            Ok(()) => return,
            Err(e) if attempt == 5 => {
                tracing::error!(error = %e, records = records.len(), "audit records lost");
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "audit records not written yet");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, event: &Value) {
    let sent = client
        .post(url)
        .header("Content-Type", "application/json")
        .body(event.to_string())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => tracing::warn!(status = response.status().as_u16(), "audit event refused"),
        Err(e) => tracing::warn!(error = %e.without_url(), "audit event not sent"),
    }
}

/// An instant as Trino's event JSON writes it (ISO 8601, UTC).
fn instant(ms: i64) -> Value {
    let time = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    json!(time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// `catalog.schema.table` as a QueryInputMetadata / QueryOutputMetadata.
fn io_table(name: &str) -> Value {
    let mut parts = name.splitn(3, '.');
    let (catalog, schema, table) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    json!({"catalogName": catalog, "schema": schema, "table": table, "columns": []})
}

/// The `QueryCompletedEvent` Trino's HTTP event listener sends, for one query.
fn completed_event(record: &AuditRecord, details: &QueryDetails) -> Value {
    let failed = details.error.is_some() || record.decision != "ALLOWED";
    let failure = details.error.as_ref().map(|(code, name, kind)| {
        json!({
            "errorCode": {"code": code, "name": name, "type": kind},
            "failureType": Value::Null,
            "failureMessage": record.reason,
            "failuresJson": "[]",
        })
    });
    let wall = (record.recorded_ms - details.created_ms).max(0) as f64 / 1000.0;
    json!({
        "metadata": {
            "queryId": record.query_id,
            "transactionId": Value::Null,
            "query": record.action,
            "queryState": if failed { "FAILED" } else { "FINISHED" },
            "tables": [],
            "routines": [],
            "uri": Value::Null,
            "plan": Value::Null,
            "payload": Value::Null,
        },
        "statistics": {
            "wallTime": format!("{wall:.3}s"),
            "outputRows": record.rows.unwrap_or(0),
            "totalRows": record.rows.unwrap_or(0),
            "completedSplits": 0,
            "complete": true,
        },
        "context": {
            "user": record.user,
            "principal": record.user,
            "enabledRoles": record.roles,
            "remoteClientAddress": record.source_address,
            "userAgent": record.user_agent,
            "source": details.source,
            "catalog": details.catalog,
            "schema": details.schema,
            "serverVersion": env!("CARGO_PKG_VERSION"),
            "environment": "aichemy",
        },
        "ioMetadata": {
            "inputs": record.read.iter().map(|t| io_table(t)).collect::<Vec<_>>(),
            "output": record.written.first().map(|t| io_table(t)),
        },
        "failureInfo": failure,
        "warnings": [],
        "createTime": instant(details.created_ms),
        "executionStartTime": instant(details.created_ms),
        "endTime": instant(record.recorded_ms),
    })
}

impl Lakehouse {
    /// Records one audited event (in the background: the caller never waits for it).
    pub fn audit(&self, mut event: AuditEvent) {
        if event.record.event_id.is_empty() {
            event.record.event_id = uuid::Uuid::new_v4().to_string();
        }
        if event.record.recorded_ms == 0 {
            event.record.recorded_ms = now_ms();
        }
        self.auditor().record(event);
    }

    /// Waits until the audit records given so far are written, at most `limit`.
    pub async fn flush_audit(&self, limit: Duration) {
        self.auditor().flush(limit).await;
    }
}

/// The relations a statement reads and writes, as `catalog.schema.table`, its names
/// completed with the session's catalog and schema (what it names: a view, not the
/// tables behind it). A statement that does not parse names none.
pub fn statement_relations(
    lakehouse: &Lakehouse,
    catalog: Option<&str>,
    schema: Option<&str>,
    sql: &str,
) -> (Vec<String>, Vec<String>) {
    let Ok(statements) = crate::dialect::parse_statements(sql) else {
        return (Vec::new(), Vec::new());
    };
    let name = |object: &ObjectName| -> Option<String> {
        let parts = crate::session::name_parts(object).ok()?;
        let reference = match parts.as_slice() {
            [t] => datafusion::sql::TableReference::bare(t.as_str()),
            [s, t] => datafusion::sql::TableReference::partial(s.as_str(), t.as_str()),
            [c, s, t] => datafusion::sql::TableReference::full(c.as_str(), s.as_str(), t.as_str()),
            _ => return None,
        };
        lakehouse
            .qualify(&reference, catalog, schema)
            .ok()
            .map(|q| q.to_string())
    };
    let mut read = Vec::new();
    let mut written = Vec::new();
    for statement in &statements {
        let target = match statement {
            Statement::Insert(insert) => match &insert.table {
                TableObject::TableName(n) => Some(n.clone()),
                _ => None,
            },
            Statement::CreateTable(create) => Some(create.name.clone()),
            Statement::Update(update) => match &update.table.relation {
                TableFactor::Table { name, .. } => Some(name.clone()),
                _ => None,
            },
            Statement::Delete(delete) => match &delete.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => {
                    t.first().and_then(|t| match &t.relation {
                        TableFactor::Table { name, .. } => Some(name.clone()),
                        _ => None,
                    })
                }
            },
            Statement::Merge(merge) => match &merge.table {
                TableFactor::Table { name, .. } => Some(name.clone()),
                _ => None,
            },
            _ => None,
        };
        let target = target.as_ref().and_then(name);
        let mut relations = Relations::default();
        let _ = statement.visit(&mut relations);
        let named = relations.names.iter().filter(|n| {
            // A CTE's name is no relation.
            !(n.0.len() == 1 && relations.ctes.contains(&n.to_string().to_lowercase()))
        });
        for relation in named.filter_map(name) {
            if Some(&relation) != target.as_ref() && !read.contains(&relation) {
                read.push(relation);
            }
        }
        written.extend(target);
    }
    (read, written)
}

/// Collects the relations a statement names, and the names its CTEs give.
#[derive(Default)]
struct Relations {
    names: Vec<ObjectName>,
    ctes: Vec<String>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> std::ops::ControlFlow<()> {
        self.names.push(relation.clone());
        std::ops::ControlFlow::Continue(())
    }

    fn pre_visit_query(
        &mut self,
        query: &datafusion::sql::sqlparser::ast::Query,
    ) -> std::ops::ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes.extend(
                with.cte_tables
                    .iter()
                    .map(|cte| cte.alias.name.value.to_lowercase()),
            );
        }
        std::ops::ControlFlow::Continue(())
    }
}
