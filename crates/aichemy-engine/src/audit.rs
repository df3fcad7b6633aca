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

/// What a query record says beyond its metastore row, for the HTTP event (its source,
/// times and error's name and type are in the row's `run`).
#[derive(Debug, Clone, Default)]
pub struct QueryDetails {
    /// Trino's numeric error code of a failed query.
    pub error_code: Option<i32>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
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

/// How long the writer gathers records into one metastore transaction, and how many at most.
const GATHER: Duration = Duration::from_millis(20);
const BATCH: usize = 500;

/// Writes audit records in the background.
#[derive(Debug)]
pub(crate) struct Auditor {
    queue: mpsc::UnboundedSender<AuditEvent>,
    pending: Arc<AtomicUsize>,
    /// Whether ended queries are recorded (`audit.query_history`).
    queries: bool,
}

impl Auditor {
    /// Starts the writer; call inside a tokio runtime.
    pub(crate) fn spawn(metastore: Metastore, config: &aichemy_config::AuditConfig) -> Self {
        let http_url = config.http_url.clone();
        let kept = config.kept_records.max(1);
        let (queue, mut events) = mpsc::unbounded_channel::<AuditEvent>();
        let pending = Arc::new(AtomicUsize::new(0));
        let left = pending.clone();
        aichemy_task::spawn("audit", async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .ok();
            // Pruning walks the newest records' index: once per thousand written.
            let mut since_pruned = 0usize;
            while let Some(first) = events.recv().await {
                // One transaction (one sync of the metastore's log) for what arrives in the
                // next few milliseconds: under load, many queries' records share a commit.
                let mut batch = vec![first];
                let gathered = tokio::time::Instant::now() + GATHER;
                while batch.len() < BATCH {
                    match tokio::time::timeout_at(gathered, events.recv()).await {
                        Ok(Some(event)) => batch.push(event),
                        Ok(None) | Err(_) => break,
                    }
                }
                let records: Vec<AuditRecord> = batch.iter().map(|e| e.record.clone()).collect();
                store(&metastore, &records).await;
                since_pruned += records.len();
                if since_pruned >= 1000 {
                    since_pruned = 0;
                    if let Err(e) = metastore.prune_audit(kept).await {
                        tracing::warn!(error = %e, "old audit records not pruned");
                    }
                }
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
        Self {
            queue,
            pending,
            queries: config.query_history,
        }
    }

    fn record(&self, event: AuditEvent) {
        if event.query.is_some() && !self.queries {
            return;
        }
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

/// `catalog.schema.table` as a QueryInputMetadata / QueryOutputMetadata, with the columns
/// of `columns` (`catalog.schema.table.column`) that are its, each named under `key`
/// (`name` in an input, `columnName` in the output).
fn io_table(name: &str, columns: &[String], key: &str) -> Value {
    let mut parts = name.splitn(3, '.');
    let (catalog, schema, table) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let prefix = format!("{name}.");
    let columns: Vec<Value> = columns
        .iter()
        .filter_map(|c| c.strip_prefix(&prefix))
        .map(|c| json!({ key: c }))
        .collect();
    json!({"catalogName": catalog, "schema": schema, "table": table, "columns": columns})
}

/// The tables a query read: those its statement names and those its plans scanned (the
/// tables behind a view).
fn inputs(record: &AuditRecord) -> Vec<Value> {
    let mut tables: Vec<&str> = record.read.iter().map(String::as_str).collect();
    for column in &record.columns_read {
        if let Some((table, _)) = column.rsplit_once('.') {
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
    }
    tables
        .into_iter()
        .map(|t| {
            let mut input = io_table(t, &record.columns_read, "name");
            if let Some(read) = record.table_reads.iter().find(|r| r.table == t) {
                input["physicalInputRows"] = json!(read.rows);
                input["physicalInputBytes"] = json!(read.bytes);
            }
            input
        })
        .collect()
}

/// The `QueryCompletedEvent` Trino's HTTP event listener sends, for one query.
fn completed_event(record: &AuditRecord, details: &QueryDetails) -> Value {
    let run = &record.run;
    let failed = details.error_code.is_some() || record.decision != "ALLOWED";
    let failure = details.error_code.map(|code| {
        let (name, kind) = (&run.error_code, &run.error_type);
        json!({
            "errorCode": {"code": code, "name": name, "type": kind},
            "failureType": Value::Null,
            "failureMessage": record.reason,
            "failuresJson": "[]",
        })
    });
    let created_ms = run.created_ms.unwrap_or(record.recorded_ms);
    let wall = (record.recorded_ms - created_ms).max(0) as f64 / 1000.0;
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
            "outputBytes": record.bytes.unwrap_or(0),
            "physicalInputRows": record.rows_read.unwrap_or(0),
            "physicalInputBytes": record.bytes_read.unwrap_or(0),
            "totalRows": record.rows_read.unwrap_or(0),
            "completedSplits": 0,
            "complete": true,
        },
        "context": {
            "user": record.user,
            "principal": record.user,
            "enabledRoles": record.roles,
            "remoteClientAddress": record.source_address,
            "userAgent": record.user_agent,
            "source": run.source,
            "catalog": details.catalog,
            "schema": details.schema,
            "serverVersion": env!("CARGO_PKG_VERSION"),
            "environment": "aichemy",
        },
        "ioMetadata": {
            "inputs": inputs(record),
            "output": record.written.first().map(|t| io_table(t, &record.columns_written, "columnName")),
        },
        "failureInfo": failure,
        "warnings": [],
        "createTime": instant(created_ms),
        "executionStartTime": instant(created_ms),
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

/// The most one user may read (rows and bytes returned to her client) per query and per
/// hour (`server.user_read_*`): exports beyond them fail with `EXCEEDED_SCAN_LIMIT`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadLimits {
    pub rows_per_query: Option<u64>,
    pub bytes_per_query: Option<u64>,
    pub rows_per_hour: Option<u64>,
    pub bytes_per_hour: Option<u64>,
}

impl ReadLimits {
    pub fn from_config(server: &aichemy_config::ServerConfig) -> Self {
        Self {
            rows_per_query: server.user_read_rows_per_query,
            bytes_per_query: server.user_read_bytes_per_query,
            rows_per_hour: server.user_read_rows_per_hour,
            bytes_per_hour: server.user_read_bytes_per_hour,
        }
    }
}

/// One bound on what a query may still return.
#[derive(Debug, Clone)]
struct Bound {
    left: u64,
    limit: u64,
    what: &'static str,
    per: &'static str,
}

/// What one query of a user may still return under the read limits.
#[derive(Debug, Clone, Default)]
pub struct ReadBudget {
    user: String,
    rows: Vec<Bound>,
    bytes: Vec<Bound>,
}

fn exceeded(user: &str, bound: &Bound) -> crate::error::TrinoError {
    crate::error::TrinoError::new(
        crate::error::ErrorCode::EXCEEDED_SCAN_LIMIT,
        format!(
            "Exceeded the read limit of {} {} per {} for user {user}",
            bound.limit, bound.what, bound.per
        ),
    )
}

impl ReadBudget {
    /// Takes `rows` and `bytes` about to be returned; the error names the limit they pass.
    pub fn take(&mut self, rows: u64, bytes: u64) -> crate::error::Result<()> {
        for (bounds, amount) in [(&mut self.rows, rows), (&mut self.bytes, bytes)] {
            for bound in bounds.iter_mut() {
                if amount > bound.left {
                    return Err(exceeded(&self.user, bound));
                }
                bound.left -= amount;
            }
        }
        Ok(())
    }
}

impl Lakehouse {
    /// What a query of `user` may return: the per-query limits, and what is left of the
    /// hourly ones after her queries of the last hour on every node (from the audit
    /// records); an hour already spent refuses the query before it runs.
    pub async fn read_budget(&self, user: &str) -> crate::error::Result<ReadBudget> {
        let limits = self.read_limits();
        let mut budget = ReadBudget {
            user: user.to_string(),
            ..ReadBudget::default()
        };
        let bound = |limit: u64, used: u64, what, per| Bound {
            left: limit.saturating_sub(used),
            limit,
            what,
            per,
        };
        if let Some(limit) = limits.rows_per_query {
            budget.rows.push(bound(limit, 0, "rows", "query"));
        }
        if let Some(limit) = limits.bytes_per_query {
            budget.bytes.push(bound(limit, 0, "bytes", "query"));
        }
        if limits.rows_per_hour.is_some() || limits.bytes_per_hour.is_some() {
            let since = now_ms() - 3_600_000;
            let (rows, bytes) = self.metastore().read_since(user, since).await?;
            for (limit, used, what, list) in [
                (limits.rows_per_hour, rows, "rows", &mut budget.rows),
                (limits.bytes_per_hour, bytes, "bytes", &mut budget.bytes),
            ] {
                if let Some(limit) = limit {
                    let hour = bound(limit, used.max(0) as u64, what, "hour");
                    if hour.left == 0 {
                        return Err(exceeded(user, &hour));
                    }
                    list.push(hour);
                }
            }
        }
        Ok(budget)
    }
}
