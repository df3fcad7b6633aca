//! OpenLineage run events (spec 2-0-2) and the sender that POSTs them to the configured
//! endpoint.
//!
//! Events are queued and sent by one background task in the order they were made, so a
//! write never waits on the endpoint: a slow or absent endpoint costs queued events, never
//! statements. An event that cannot be sent after [`ATTEMPTS`] tries, or that finds the
//! queue full, is dropped with a warning that names neither the URL nor the token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::{Dataset, Edges};

const PRODUCER: &str = concat!(
    "https://github.com/aichemy/aichemy/tree/v",
    env!("CARGO_PKG_VERSION")
);
const RUN_EVENT: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const SQL_JOB: &str =
    "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet";
const JOB_TYPE: &str =
    "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const PARENT_RUN: &str =
    "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
const ERROR_MESSAGE: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const SCHEMA: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const COLUMN_LINEAGE: &str = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";

/// Events waiting to be sent, at most.
const QUEUE: usize = 10_000;
/// Tries to send one event, with doubling waits from one second between them.
const ATTEMPTS: u32 = 3;

/// The run an event is about.
pub struct RunFacts<'a> {
    pub run_id: uuid::Uuid,
    /// The job's name in the configured namespace.
    pub job: &'a str,
    /// `QUERY` (a statement), `PIPELINE` (a pipeline's run) or `INGESTION`.
    pub job_type: &'a str,
    /// `BATCH` or `STREAMING`.
    pub processing: &'a str,
    pub sql: Option<&'a str>,
    /// The run of the job this one is part of: a pipeline run's id and the pipeline.
    pub parent: Option<(uuid::Uuid, &'a str)>,
}

/// One output of a COMPLETE event: the table written, its columns and their lineage.
pub struct Output<'a> {
    pub target: &'a Dataset,
    pub columns: &'a [(String, String)],
    pub edges: &'a Edges,
}

/// Sends events to one endpoint.
#[derive(Debug)]
pub struct Emitter {
    namespace: String,
    queue: mpsc::Sender<Value>,
    /// Events queued and not yet sent or dropped.
    pending: Arc<AtomicUsize>,
}

impl Emitter {
    /// Starts the sender task; call inside a tokio runtime that outlives the lakehouse's
    /// use.
    pub fn spawn(namespace: String, url: String, token: Option<String>) -> Self {
        let (queue, mut events) = mpsc::channel::<Value>(QUEUE);
        let pending = Arc::new(AtomicUsize::new(0));
        let left = pending.clone();
        aichemy_task::spawn("openlineage", async move {
            let client = match reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
            {
                Ok(client) => client,
                Err(e) => {
                    tracing::error!(error = %e.without_url(), "OpenLineage events cannot be sent");
                    return;
                }
            };
            while let Some(event) = events.recv().await {
                send(&client, &url, token.as_deref(), &event).await;
                left.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Self {
            namespace,
            queue,
            pending,
        }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Waits until every queued event was sent or dropped, at most `limit` (a process
    /// about to end: the shell after its last statement).
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// START of a run, with what it will read and write where that is known.
    pub fn start(&self, run: &RunFacts<'_>, inputs: &[Dataset], outputs: &[Output<'_>]) {
        self.enqueue(self.event("START", run, None, inputs, outputs));
    }

    /// COMPLETE of a run, with what it read and wrote.
    pub fn complete(&self, run: &RunFacts<'_>, inputs: &[Dataset], outputs: &[Output<'_>]) {
        self.enqueue(self.event("COMPLETE", run, None, inputs, outputs));
    }

    /// FAIL of a run, with its error and what it had read and written by then.
    pub fn fail(
        &self,
        run: &RunFacts<'_>,
        error: &str,
        inputs: &[Dataset],
        outputs: &[Output<'_>],
    ) {
        self.enqueue(self.event("FAIL", run, Some(error), inputs, outputs));
    }

    fn enqueue(&self, event: Value) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.queue.try_send(event).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("OpenLineage event dropped: the queue of unsent events is full");
        }
    }

    fn event(
        &self,
        kind: &str,
        run: &RunFacts<'_>,
        error: Option<&str>,
        inputs: &[Dataset],
        outputs: &[Output<'_>],
    ) -> Value {
        let mut job_facets = Map::new();
        job_facets.insert(
            "jobType".into(),
            facet(
                JOB_TYPE,
                json!({
                    "processingType": run.processing,
                    "integration": "AICHEMY",
                    "jobType": run.job_type,
                }),
            ),
        );
        if let Some(sql) = run.sql {
            job_facets.insert(
                "sql".into(),
                facet(SQL_JOB, json!({"query": sql, "dialect": "trino"})),
            );
        }
        let mut run_facets = Map::new();
        if let Some((parent, pipeline)) = run.parent {
            run_facets.insert(
                "parent".into(),
                facet(
                    PARENT_RUN,
                    json!({
                        "run": {"runId": parent.to_string()},
                        "job": {"namespace": self.namespace, "name": pipeline},
                    }),
                ),
            );
        }
        if let Some(message) = error {
            run_facets.insert(
                "errorMessage".into(),
                facet(
                    ERROR_MESSAGE,
                    json!({"message": message, "programmingLanguage": "SQL"}),
                ),
            );
        }
        let inputs: Vec<Value> = inputs
            .iter()
            .map(|d| {
                let (namespace, name) = self.dataset(d);
                json!({"namespace": namespace, "name": name, "facets": {}})
            })
            .collect();
        let outputs: Vec<Value> = outputs.iter().map(|o| self.output(o)).collect();
        json!({
            "eventType": kind,
            "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "producer": PRODUCER,
            "schemaURL": RUN_EVENT,
            "run": {"runId": run.run_id.to_string(), "facets": run_facets},
            "job": {"namespace": self.namespace, "name": run.job, "facets": job_facets},
            "inputs": inputs,
            "outputs": outputs,
        })
    }

    /// A dataset's namespace and name: a lakehouse table in the configured namespace as
    /// `catalog.schema.table`; an outside source (a Kafka topic, a PostgreSQL table) in its
    /// own (`kafka://host:port`, `postgres://host:port`).
    fn dataset(&self, dataset: &Dataset) -> (String, String) {
        if dataset.catalog.contains("://") {
            let name = match &dataset.schema {
                Some(schema) => format!("{schema}.{}", dataset.table),
                None => dataset.table.clone(),
            };
            return (dataset.catalog.clone(), name);
        }
        let name = match &dataset.schema {
            Some(schema) => format!("{}.{schema}.{}", dataset.catalog, dataset.table),
            None => format!("{}.{}", dataset.catalog, dataset.table),
        };
        (self.namespace.clone(), name)
    }

    fn output(&self, output: &Output<'_>) -> Value {
        let (namespace, name) = self.dataset(output.target);
        let fields: Vec<Value> = output
            .columns
            .iter()
            .map(|(name, kind)| json!({"name": name, "type": kind}))
            .collect();
        let mut columns: Map<String, Value> = Map::new();
        let mut dataset: Vec<Value> = Vec::new();
        for edge in &output.edges.edges {
            let (source_namespace, source_name) = self.dataset(&edge.source);
            let field = json!({
                "namespace": source_namespace,
                "name": source_name,
                "field": edge.column,
                "transformations": [{
                    "type": edge.kind,
                    "subtype": edge.transformation,
                    "masking": false,
                }],
            });
            match &edge.target_column {
                Some(target) => {
                    let entry = columns
                        .entry(target.clone())
                        .or_insert_with(|| json!({"inputFields": []}));
                    if let Some(list) = entry["inputFields"].as_array_mut() {
                        list.push(field);
                    }
                }
                None => dataset.push(field),
            }
        }
        json!({
            "namespace": namespace,
            "name": name,
            "facets": {
                "schema": facet(SCHEMA, json!({"fields": fields})),
                "columnLineage": facet(COLUMN_LINEAGE, json!({"fields": columns, "dataset": dataset})),
            },
        })
    }
}

/// A facet: its fields with the producer and the schema it follows.
fn facet(schema: &str, fields: Value) -> Value {
    let mut facet = match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    facet.insert("_producer".into(), Value::String(PRODUCER.into()));
    facet.insert("_schemaURL".into(), Value::String(schema.into()));
    Value::Object(facet)
}

/// POSTs one event, trying again after a failure; gives up with a warning.
async fn send(client: &reqwest::Client, url: &str, token: Option<&str>, event: &Value) {
    let body = event.to_string();
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let mut request = client
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let problem = match request.send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => format!("HTTP {}", response.status().as_u16()),
            Err(e) => e.without_url().to_string(),
        };
        if attempt == ATTEMPTS {
            tracing::warn!(problem, attempts = ATTEMPTS, "OpenLineage event dropped");
            return;
        }
        tracing::debug!(problem, attempt, "OpenLineage event not sent yet");
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}
