//! Lineage: what every write read and wrote, down to columns.
//!
//! A statement that writes (INSERT, CREATE TABLE AS, UPDATE, DELETE, MERGE, REFRESH
//! MATERIALIZED VIEW) runs inside [`recorded`], which gives it a collector; the write paths
//! [`note`] each plan they run for a table into it (`columns.rs` reads the plan). When the
//! statement succeeds, each table it wrote gets one record in the metastore
//! (`system.runtime.lineage`) and, where an OpenLineage endpoint is configured, the
//! statement's run is sent as START then COMPLETE or FAIL events (`openlineage.rs`). An
//! ingestion job records its source and target once per start ([`record_ingestion`]); a
//! pipeline's run is the parent run of its steps' statements ([`pipeline_run_event`]).
//!
//! A failed statement changed nothing and records nothing; its FAIL event says what it
//! was about to read and write. Recording happens after the commit: a metastore that
//! fails then costs the record (logged), never the write.

pub(crate) mod columns;
mod openlineage;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use datafusion::logical_expr::LogicalPlan;
use serde::{Deserialize, Serialize};

use aichemy_metastore::LineageRecord;

use crate::catalog::lakehouse::{Lakehouse, QualifiedName};
use crate::error::Result;
use crate::session::Session;
use columns::{Direct, Names};
pub use openlineage::Emitter;

/// A relation an edge names: a lakehouse table, or an outside source whose `catalog` is
/// its namespace URL (`kafka://broker:9092` with the topic as `table`;
/// `postgres://host:5432` with `database.schema` as `schema`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dataset {
    pub catalog: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub table: String,
}

impl From<&QualifiedName> for Dataset {
    fn from(name: &QualifiedName) -> Self {
        Dataset {
            catalog: name.catalog.clone(),
            schema: Some(name.schema.clone()),
            table: name.name.clone(),
        }
    }
}

/// One edge: a source column a written column derives from (`DIRECT`), or that decides
/// which rows the write holds (`INDIRECT`, without a target column).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Edge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_column: Option<String>,
    pub source: Dataset,
    pub column: String,
    /// `DIRECT` or `INDIRECT`.
    pub kind: String,
    /// `IDENTITY`, `TRANSFORMATION`, `AGGREGATION`; `FILTER`, `JOIN`, `GROUP_BY`, `SORT`,
    /// `WINDOW`, `CONDITIONAL`.
    pub transformation: String,
}

/// What one write read: every relation, and the column edges (as the metastore keeps them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Edges {
    pub inputs: Vec<Dataset>,
    pub edges: Vec<Edge>,
}

/// The pipeline run and step a statement runs for.
#[derive(Debug, Clone)]
pub struct Parent {
    pub pipeline: String,
    pub run_id: String,
    pub step: String,
}

/// Where a lakehouse's lineage goes besides the metastore.
#[derive(Debug, Default)]
pub struct Sink {
    pub(crate) emitter: Option<Emitter>,
}

impl Sink {
    /// From the configuration: events to `lineage.openlineage_url` when it is set. Starts
    /// the sender task, so call inside a tokio runtime.
    pub fn from_config(config: &aichemy_config::LineageConfig) -> Result<Self> {
        let Some(url) = &config.openlineage_url else {
            return Ok(Self::default());
        };
        let token = match &config.openlineage_api_key {
            Some(key) => Some(aichemy_config::resolve_secret(key).map_err(|message| {
                crate::error::TrinoError::new(
                    crate::error::ErrorCode::GENERIC_USER_ERROR,
                    format!("lineage.openlineage_api_key: {message}"),
                )
            })?),
            None => None,
        };
        Ok(Self {
            emitter: Some(Emitter::spawn(config.namespace.clone(), url.clone(), token)),
        })
    }

    /// Waits for the events not sent yet, at most `limit`.
    pub async fn flush(&self, limit: std::time::Duration) {
        if let Some(emitter) = &self.emitter {
            emitter.flush(limit).await;
        }
    }
}

/// One table a statement wrote, with what it derives from.
#[derive(Debug)]
struct Write {
    target: QualifiedName,
    /// The table's columns and their Trino types, for the event's schema.
    columns: Vec<(String, String)>,
    inputs: BTreeSet<Dataset>,
    edges: BTreeSet<Edge>,
}

tokio::task_local! {
    /// The writes of the statement running in this task.
    static WRITES: Arc<Mutex<Vec<Write>>>;
}

/// How a statement names the table it changes in its plan: which catalog and schema its
/// unqualified names take, and the names that stand for the target (`$rows`, `$all`).
pub(crate) struct Planned<'a> {
    pub catalog: Option<&'a str>,
    pub schema: Option<&'a str>,
    pub aliases: &'a [(QualifiedName, QualifiedName)],
}

/// Notes the lineage of a plan run for a write to `target` in the running statement's
/// collector (none outside [`recorded`]). `columns`: the target's columns in the order of
/// the plan's output (`None` for a plan that only selects rows: its inputs and indirect
/// edges count). `row_level`: a column carried over unchanged from the target itself is no
/// lineage (UPDATE's, MERGE's and DELETE's kept rows).
pub(crate) fn note(
    target: &QualifiedName,
    columns: Option<&[(String, String)]>,
    plan: &LogicalPlan,
    planned: &Planned<'_>,
    row_level: bool,
) {
    let _ = WRITES.try_with(|writes| {
        let names = Names {
            catalog: planned.catalog.unwrap_or(""),
            schema: planned.schema.unwrap_or(""),
            aliases: planned.aliases,
        };
        let lineage = columns::of_plan(plan, &names);
        let mut edges = BTreeSet::new();
        // Hidden columns (`$path`, `$position`) name rows, not data.
        let hidden = |column: &str| column.starts_with('$');
        for ((column, _), origins) in columns.unwrap_or(&[]).iter().zip(&lineage.columns) {
            for (source, how) in origins {
                if hidden(&source.column) {
                    continue;
                }
                if row_level
                    && *how == Direct::Identity
                    && source.table == *target
                    && source.column == *column
                {
                    continue;
                }
                edges.insert(Edge {
                    target_column: Some(column.clone()),
                    source: Dataset::from(&source.table),
                    column: source.column.clone(),
                    kind: "DIRECT".into(),
                    transformation: how.name().into(),
                });
            }
        }
        for (source, kinds) in lineage.indirect.iter().filter(|(s, _)| !hidden(&s.column)) {
            for how in kinds {
                edges.insert(Edge {
                    target_column: None,
                    source: Dataset::from(&source.table),
                    column: source.column.clone(),
                    kind: "INDIRECT".into(),
                    transformation: how.name().into(),
                });
            }
        }
        let inputs: BTreeSet<Dataset> = lineage.tables.iter().map(Dataset::from).collect();
        let mut writes = writes.lock().expect("not poisoned");
        match writes.iter_mut().find(|w| w.target == *target) {
            Some(write) => {
                write.inputs.extend(inputs);
                write.edges.extend(edges);
                if write.columns.is_empty() {
                    write.columns = columns.map(<[_]>::to_vec).unwrap_or_default();
                }
            }
            None => writes.push(Write {
                target: target.clone(),
                columns: columns.map(<[_]>::to_vec).unwrap_or_default(),
                inputs,
                edges,
            }),
        }
    });
}

/// A table's columns with their Trino type names, for [`note`].
pub fn typed_columns(schema: &datafusion::arrow::datatypes::Schema) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), crate::types::field_type_name(f)))
        .collect()
}

/// Runs a statement that writes (`kind`: Trino's update type) with a collector for what
/// it writes: records its lineage when it succeeds, and sends its OpenLineage events.
/// Boxed: the statement's future is large in debug builds, and every statement's would
/// grow by it (on the stack of whoever blocks on it).
pub(crate) fn recorded<'a, T: Send + 'a>(
    session: &'a Session,
    kind: &'a str,
    sql: &'a str,
    work: impl std::future::Future<Output = Result<T>> + Send + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>> {
    Box::pin(record(session, kind, sql, work))
}

async fn record<T>(
    session: &Session,
    kind: &str,
    sql: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let lakehouse = session.lakehouse();
    let run_id = uuid::Uuid::new_v4();
    let job = match &session.parent {
        Some(parent) => format!("{}.{}", parent.pipeline, parent.step),
        None => session
            .query_id
            .clone()
            .unwrap_or_else(|| run_id.to_string()),
    };
    let parent = session
        .parent
        .as_ref()
        .map(|p| (pipeline_run_uuid(&p.run_id), p.pipeline.as_str()));
    let sql = crate::statement::catalogs::redact(sql).into_owned();
    let facts = openlineage::RunFacts {
        run_id,
        job: &job,
        job_type: "QUERY",
        processing: "BATCH",
        sql: Some(&sql),
        parent,
    };
    let emitter = lakehouse.lineage().emitter.as_ref();
    if let Some(emitter) = emitter {
        emitter.start(&facts, &[], &[]);
    }
    let writes = Arc::new(Mutex::new(Vec::new()));
    let outcome = WRITES.scope(writes.clone(), work).await;
    let writes = std::mem::take(&mut *writes.lock().expect("not poisoned"));
    let edges: Vec<(Dataset, Edges)> = writes
        .iter()
        .map(|w| {
            (
                Dataset::from(&w.target),
                Edges {
                    inputs: w.inputs.iter().cloned().collect(),
                    edges: w.edges.iter().cloned().collect(),
                },
            )
        })
        .collect();
    let inputs: Vec<Dataset> = writes
        .iter()
        .flat_map(|w| w.inputs.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let outputs: Vec<openlineage::Output> = writes
        .iter()
        .zip(&edges)
        .map(|(w, (target, edges))| openlineage::Output {
            target,
            columns: &w.columns,
            edges,
        })
        .collect();
    match &outcome {
        Ok(_) => {
            for (n, (write, (_, edges))) in writes.iter().zip(&edges).enumerate() {
                let event_id = match n {
                    0 => run_id.to_string(),
                    n => format!("{run_id}-{n}"),
                };
                let record = LineageRecord {
                    event_id,
                    recorded_ms: chrono::Utc::now().timestamp_millis(),
                    kind: kind.to_string(),
                    target_catalog: write.target.catalog.clone(),
                    target_schema: write.target.schema.clone(),
                    target_table: write.target.name.clone(),
                    user: session.user.clone(),
                    query_id: session.query_id.clone(),
                    pipeline: session.parent.as_ref().map(|p| p.pipeline.clone()),
                    run_id: session.parent.as_ref().map(|p| p.run_id.clone()),
                    step: session.parent.as_ref().map(|p| p.step.clone()),
                    edges_json: serde_json::to_string(edges).unwrap_or_default(),
                };
                if let Err(e) = lakehouse.metastore().record_lineage(&record).await {
                    tracing::warn!(error = %e, table = %write.target, "lineage not recorded");
                }
            }
            if let Some(emitter) = emitter {
                emitter.complete(&facts, &inputs, &outputs);
            }
        }
        Err(e) => {
            if let Some(emitter) = emitter {
                let message = format!("{}: {}", e.code.name(), e.message);
                emitter.fail(&facts, &message, &inputs, &outputs);
            }
        }
    }
    outcome
}

/// The OpenLineage run id of a pipeline run: a UUID made from its run id, the same on every
/// node, so that its steps' events name it as their parent.
pub fn pipeline_run_uuid(run_id: &str) -> uuid::Uuid {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(format!("aichemy.pipeline_run.{run_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// Sends a pipeline run's START, COMPLETE or FAIL (`error`) event, where events are sent.
pub fn pipeline_run_event(
    lakehouse: &Lakehouse,
    pipeline: &str,
    run_id: &str,
    state: &str,
    error: Option<&str>,
) {
    let Some(emitter) = lakehouse.lineage().emitter.as_ref() else {
        return;
    };
    let facts = openlineage::RunFacts {
        run_id: pipeline_run_uuid(run_id),
        job: pipeline,
        job_type: "PIPELINE",
        processing: "BATCH",
        sql: None,
        parent: None,
    };
    match (state, error) {
        ("START", _) => emitter.start(&facts, &[], &[]),
        (_, Some(error)) => emitter.fail(&facts, error, &[], &[]),
        _ => emitter.complete(&facts, &[], &[]),
    }
}

/// An ingestion job's lineage: each column of `target` comes from the field of the same
/// name of `source` (a topic, a PostgreSQL table). Kept as the job's one record, replaced
/// at each start; sent as a streaming job's START event.
pub async fn record_ingestion(
    lakehouse: &Lakehouse,
    job: &str,
    owner: &str,
    source: Dataset,
    target: &QualifiedName,
    columns: &[(String, String)],
) {
    let edges = Edges {
        inputs: vec![source.clone()],
        edges: columns
            .iter()
            .map(|(column, _)| Edge {
                target_column: Some(column.clone()),
                source: source.clone(),
                column: column.clone(),
                kind: "DIRECT".into(),
                transformation: Direct::Identity.name().into(),
            })
            .collect(),
    };
    let record = LineageRecord {
        event_id: format!("ingestion:{job}:{target}"),
        recorded_ms: chrono::Utc::now().timestamp_millis(),
        kind: "INGESTION".into(),
        target_catalog: target.catalog.clone(),
        target_schema: target.schema.clone(),
        target_table: target.name.clone(),
        user: owner.to_string(),
        query_id: None,
        pipeline: None,
        run_id: None,
        step: None,
        edges_json: serde_json::to_string(&edges).unwrap_or_default(),
    };
    if let Err(e) = lakehouse.metastore().record_lineage(&record).await {
        tracing::warn!(error = %e, job, "ingestion lineage not recorded");
    }
    if let Some(emitter) = lakehouse.lineage().emitter.as_ref() {
        let target = Dataset::from(target);
        let facts = openlineage::RunFacts {
            run_id: uuid::Uuid::new_v4(),
            job: &format!("ingestion.{job}"),
            job_type: "INGESTION",
            processing: "STREAMING",
            sql: None,
            parent: None,
        };
        emitter.start(
            &facts,
            &edges.inputs,
            &[openlineage::Output {
                target: &target,
                columns,
                edges: &edges,
            }],
        );
    }
}

/// The rows of `system.runtime.lineage`: an edge a row, and a row for each relation a
/// write read that no edge names.
pub(crate) async fn rows(
    lakehouse: &Lakehouse,
) -> Result<Vec<Vec<crate::catalog::metadata::Cell>>> {
    use crate::catalog::metadata::Cell;
    let mut rows = Vec::new();
    for record in lakehouse.metastore().list_lineage().await? {
        let edges: Edges = serde_json::from_str(&record.edges_json).unwrap_or_default();
        let recorded = chrono::DateTime::from_timestamp_millis(record.recorded_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string());
        let head = |rows: &mut Vec<Vec<Cell>>, tail: Vec<Cell>| {
            let mut row = vec![
                Cell::Text(recorded.clone()),
                record.kind.clone().into(),
                record.user.clone().into(),
                Cell::Text(record.query_id.clone()),
                Cell::Text(record.pipeline.clone()),
                Cell::Text(record.run_id.clone()),
                Cell::Text(record.step.clone()),
                record.target_catalog.clone().into(),
                record.target_schema.clone().into(),
                record.target_table.clone().into(),
            ];
            row.extend(tail);
            rows.push(row);
        };
        let named: BTreeSet<&Dataset> = edges.edges.iter().map(|e| &e.source).collect();
        for edge in &edges.edges {
            head(
                &mut rows,
                vec![
                    Cell::Text(edge.target_column.clone()),
                    edge.source.catalog.clone().into(),
                    Cell::Text(edge.source.schema.clone()),
                    edge.source.table.clone().into(),
                    edge.column.clone().into(),
                    edge.kind.clone().into(),
                    edge.transformation.clone().into(),
                ],
            );
        }
        for input in edges.inputs.iter().filter(|i| !named.contains(i)) {
            head(
                &mut rows,
                vec![
                    Cell::Text(None),
                    input.catalog.clone().into(),
                    Cell::Text(input.schema.clone()),
                    input.table.clone().into(),
                    Cell::Text(None),
                    Cell::Text(None),
                    Cell::Text(None),
                ],
            );
        }
    }
    Ok(rows)
}
