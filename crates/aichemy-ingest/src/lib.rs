//! Ingestion jobs run inside the server: Kafka topics into lakehouse tables, exactly once.
//!
//! ```text
//! CREATE INGESTION ──engine──▶ metastore: aichemy_ingestions (definition, desired state)
//!                                   ▲ lease (node, deadline) + reported status, every second
//! Runner (one per `aichemy serve`) ─┘
//!    └─ a task per job it holds the lease of ──▶ kafka.rs: partition readers ──▶ batch
//!         ──decode.rs──▶ rows (+ rejected → dead-letter table)
//!         ──target.rs──▶ one commit per batch recording the next offsets (snapshot summary)
//! ```
//!
//! Every server runs a [`Runner`]. Each second it reads the jobs from the metastore, takes
//! the lease of a running job nobody holds (or whose holder stopped renewing), renews the
//! leases it holds with the status of each job, and stops the jobs that were paused,
//! dropped or taken over. A job that fails on something that may pass (a broker down, a
//! lost race) is started again after a growing wait; one that cannot go on (a bad message
//! under `on.error = 'stop'`, an invalid definition) is marked `failed` until `ALTER
//! INGESTION … RESUME`.
#![forbid(unsafe_code)]

pub mod changes;
pub mod debezium;
pub mod decode;
pub mod kafka;
pub mod pgoutput;
pub mod postgres;
pub mod target;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use aichemy_engine::ingestion::{IngestionDefinition, IngestionStatus};
use aichemy_engine::{Lakehouse, TrinoError};
use aichemy_metastore::IngestionRecord;

/// How long a lease holds without renewal: another node takes a job over this long after
/// its holder died.
pub const LEASE: Duration = Duration::from_secs(6);
/// How often the runner looks at the jobs and renews its leases.
pub const TICK: Duration = Duration::from_secs(1);

/// Why a job stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    pub message: String,
    /// Whether running it again cannot help (it waits for RESUME).
    pub fatal: bool,
}

impl JobError {
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fatal: true,
        }
    }

    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fatal: false,
        }
    }
}

impl From<TrinoError> for JobError {
    fn from(e: TrinoError) -> Self {
        JobError::retry(e.message)
    }
}

impl From<aichemy_tables::TableError> for JobError {
    fn from(e: aichemy_tables::TableError) -> Self {
        JobError::retry(e.to_string())
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A job this node runs.
struct Running {
    definition_json: String,
    status: Arc<Mutex<IngestionStatus>>,
    task: JoinHandle<Result<(), JobError>>,
    /// Failures in a row, for the wait before the next start.
    failures: u32,
    /// Not started again before this instant.
    restart_at: Option<Instant>,
    /// When the task was started.
    started: Instant,
    /// The rows its status counted when last reported to the metrics.
    reported_rows: u64,
}

/// A job that ran this long before it failed starts again without waiting longer.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

impl Running {
    fn status_json(&self) -> String {
        serde_json::to_string(&*self.status.lock().unwrap()).unwrap_or_default()
    }

    /// Reports the job's lag and the rows it committed since the last report (all of
    /// its count when it started again from zero) to the metrics.
    fn report(&mut self, name: &str) {
        let status = self.status.lock().unwrap();
        // Named `ingestion`: Prometheus keeps `job` for the scrape job.
        let job = name.to_string();
        if let Some(lag) = status.lag {
            metrics::gauge!("aichemy_ingestion_lag", "ingestion" => job.clone()).set(lag as f64);
        }
        let added = status
            .rows
            .checked_sub(self.reported_rows)
            .unwrap_or(status.rows);
        metrics::counter!("aichemy_ingestion_rows_total", "ingestion" => job).increment(added);
        self.reported_rows = status.rows;
    }
}

/// Runs the ingestion jobs whose lease this node holds.
pub struct Runner {
    lakehouse: Arc<Lakehouse>,
    node: String,
    jobs: BTreeMap<String, Running>,
}

impl Runner {
    pub fn new(lakehouse: Arc<Lakehouse>, node: impl Into<String>) -> Self {
        Self {
            lakehouse,
            node: node.into(),
            jobs: BTreeMap::new(),
        }
    }

    /// Runs until `shutdown` resolves, then stops every job and gives its leases up.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tracing::info!(node = %self.node, "ingestion runner started");
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e, "ingestion runner could not read the metastore");
            }
        }
        let names: Vec<String> = self.jobs.keys().cloned().collect();
        for name in names {
            self.stop(&name, "stopped").await;
        }
    }

    /// One look at the jobs: start, renew, stop.
    async fn step(&mut self) -> Result<(), aichemy_metastore::MetastoreError> {
        let records = self.lakehouse.metastore().list_ingestions().await?;
        let wanted: BTreeMap<&str, &IngestionRecord> = records
            .iter()
            .filter(|r| r.desired_state == "running")
            .map(|r| (r.name.as_str(), r))
            .collect();
        // Paused, failed, dropped or redefined: stop.
        let gone: Vec<String> = self
            .jobs
            .iter()
            .filter(|(name, job)| {
                wanted
                    .get(name.as_str())
                    .is_none_or(|r| r.definition_json != job.definition_json)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            self.stop(&name, "stopped").await;
        }
        for (name, record) in wanted {
            let now = now_ms();
            let until = now + LEASE.as_millis() as i64;
            let status = self.jobs.get(name).map(Running::status_json);
            let held = self
                .lakehouse
                .metastore()
                .hold_ingestion_lease(name, &self.node, now, until, status.as_deref())
                .await?;
            if !held {
                if self.jobs.contains_key(name) {
                    tracing::warn!(ingestion = name, "lease taken over by another node");
                    if let Some(job) = self.jobs.remove(name) {
                        job.task.abort();
                    }
                }
                continue;
            }
            self.supervise(record).await?;
            if let Some(job) = self.jobs.get_mut(name) {
                job.report(name);
            }
        }
        Ok(())
    }

    /// Starts a held job that is not running, or notes how its task ended.
    async fn supervise(
        &mut self,
        record: &IngestionRecord,
    ) -> Result<(), aichemy_metastore::MetastoreError> {
        let name = record.name.as_str();
        if let Some(job) = self.jobs.get_mut(name) {
            if !job.task.is_finished() {
                return Ok(());
            }
            if let Some(at) = job.restart_at {
                if Instant::now() < at {
                    return Ok(());
                }
            } else {
                let outcome = (&mut job.task).await;
                let error = match outcome {
                    Ok(Ok(())) => JobError::retry("the job ended"),
                    Ok(Err(e)) => e,
                    Err(e) if e.is_panic() => JobError::retry(format!(
                        "the job panicked: {}",
                        panic_message(e.into_panic())
                    )),
                    Err(e) => JobError::retry(e.to_string()),
                };
                if job.started.elapsed() >= HEALTHY_RUN {
                    job.failures = 0;
                }
                job.failures += 1;
                {
                    let mut status = job.status.lock().unwrap();
                    status.last_error = Some(error.message.clone());
                    status.state = if error.fatal { "failed" } else { "retrying" }.into();
                }
                tracing::warn!(ingestion = name, error = %error.message, fatal = error.fatal, "ingestion job stopped");
                if error.fatal {
                    let status = job.status_json();
                    let metastore = self.lakehouse.metastore();
                    metastore.set_ingestion_state(name, "failed").await?;
                    metastore
                        .release_ingestion_lease(name, &self.node, Some(&status))
                        .await?;
                    self.jobs.remove(name);
                    return Ok(());
                }
                let wait = Duration::from_millis(500u64 << job.failures.min(6))
                    .min(Duration::from_secs(30));
                job.restart_at = Some(Instant::now() + wait);
                return Ok(());
            }
        }
        let definition: IngestionDefinition = match serde_json::from_str(&record.definition_json) {
            Ok(definition) => definition,
            Err(e) => {
                tracing::error!(ingestion = name, error = %e, "unreadable ingestion definition");
                return Ok(());
            }
        };
        let (status, failures) = match self.jobs.remove(name) {
            Some(previous) => (previous.status, previous.failures),
            None => {
                // Counters go on from what the previous holder reported.
                let reported: IngestionStatus = record
                    .status_json
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                (Arc::new(Mutex::new(reported)), 0)
            }
        };
        status.lock().unwrap().state = "starting".into();
        let lakehouse = self.lakehouse.clone();
        let task_status = status.clone();
        let task = aichemy_task::spawn("ingestion", async move {
            let definition = resolved(definition, lakehouse.sql_secret_scope())?;
            match definition.connector.as_str() {
                "kafka" => kafka::run(lakehouse, definition, task_status).await,
                "postgres-cdc" => postgres::run(lakehouse, definition, task_status).await,
                other => Err(JobError::fatal(format!("Unknown connector '{other}'"))),
            }
        });
        tracing::info!(ingestion = name, node = %self.node, "ingestion job started");
        // What the counters hold already was reported before (here, or by the node
        // that held the job).
        let reported_rows = status.lock().unwrap().rows;
        self.jobs.insert(
            name.to_string(),
            Running {
                definition_json: record.definition_json.clone(),
                status,
                task,
                failures,
                restart_at: None,
                started: Instant::now(),
                reported_rows,
            },
        );
        Ok(())
    }

    /// Stops a job this node runs and gives its lease up.
    async fn stop(&mut self, name: &str, state: &str) {
        let Some(job) = self.jobs.remove(name) else {
            return;
        };
        job.task.abort();
        // A task that ended was awaited already (and is waiting for its restart).
        if job.restart_at.is_none() {
            let _ = job.task.await;
        }
        job.status.lock().unwrap().state = state.into();
        let status = serde_json::to_string(&*job.status.lock().unwrap()).unwrap_or_default();
        if let Err(e) = self
            .lakehouse
            .metastore()
            .release_ingestion_lease(name, &self.node, Some(&status))
            .await
        {
            tracing::warn!(ingestion = name, error = %e, "could not release the lease");
        }
        tracing::info!(ingestion = name, "ingestion job stopped");
    }
}

/// The definition with the `${ENV:…}`/`${FILE:…}` references of its properties
/// resolved, as the job reads them (the metastore keeps the references).
fn resolved(
    mut definition: IngestionDefinition,
    sql_scope: &aichemy_config::SecretScope,
) -> Result<IngestionDefinition, JobError> {
    let scope = definition.secret_scope(sql_scope).clone();
    for (key, value) in definition.properties.iter_mut() {
        *value = aichemy_config::resolve_secrets(value, &scope)
            .map_err(|e| JobError::fatal(format!("Property '{key}': {e}")))?
            .text;
    }
    Ok(definition)
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
