//! The pipeline runner inside `aichemy serve`: each second it takes or renews the lease of
//! every pipeline it can, queues the runs their schedules ask for, and starts the queued
//! runs that may start. Another node takes a pipeline over when this one stops renewing;
//! it fails the runs this node left unfinished (as this node does with its own after a
//! restart) and goes on with the schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::run::{execute_run, fail_orphans, now_ms, schedule_due, startable, RunEnd};
use super::{PipelineDefinition, LEASE, TICK};
use crate::error::{Result, TrinoError};
use crate::Lakehouse;

/// Whether a runner works in this process: a session here then leaves the runs it
/// queues to it, even for a pipeline whose lease it has not taken yet.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether a [`PipelineRunner`] works in this process.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// A run this node executes.
struct Running {
    pipeline: String,
    task: JoinHandle<Result<RunEnd>>,
}

/// Runs the pipelines whose lease this node holds.
pub struct PipelineRunner {
    lakehouse: Arc<Lakehouse>,
    node: String,
    /// The pipelines whose lease this node holds.
    held: BTreeSet<String>,
    /// By run id.
    runs: BTreeMap<String, Running>,
}

impl PipelineRunner {
    pub fn new(lakehouse: Arc<Lakehouse>, node: impl Into<String>) -> Self {
        Self {
            lakehouse,
            node: node.into(),
            held: BTreeSet::new(),
            runs: BTreeMap::new(),
        }
    }

    /// Runs until `shutdown` resolves; then the runs in progress fail (a run is written
    /// again from its start) and the leases are given up.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        tracing::info!(node = %self.node, "pipeline runner started");
        ACTIVE.store(true, Ordering::Relaxed);
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e.message, "pipeline runner could not read the metastore");
            }
        }
        ACTIVE.store(false, Ordering::Relaxed);
        let metastore = self.lakehouse.metastore();
        for (run_id, running) in std::mem::take(&mut self.runs) {
            running.task.abort();
            let _ = metastore
                .finish_pipeline_run(
                    &run_id,
                    "failed",
                    Some("The server stopped during the run"),
                    now_ms(),
                )
                .await;
        }
        for name in std::mem::take(&mut self.held) {
            let _ = metastore.release_pipeline_lease(&name, &self.node).await;
        }
    }

    /// Stops the runs of `pipeline` this node executes.
    fn abort_runs(&mut self, pipeline: &str) {
        self.runs.retain(|_, running| {
            let keep = running.pipeline != pipeline;
            if !keep {
                running.task.abort();
            }
            keep
        });
    }

    /// One look at the pipelines: leases, schedules, runs to start.
    async fn step(&mut self) -> Result<()> {
        // A run that ended in an error of its own (the metastore gone mid-run, a panic)
        // is failed with it: an unfinished run would hold its pipeline's queue.
        let ended: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, running)| running.task.is_finished())
            .map(|(run_id, _)| run_id.clone())
            .collect();
        for run_id in ended {
            let Some(running) = self.runs.remove(&run_id) else {
                continue;
            };
            let error = match running.task.await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => format!("{}: {}", e.code.name(), e.message),
                Err(e) if e.is_panic() => TrinoError::panicked(e.into_panic().as_ref()).message,
                Err(e) => e.to_string(),
            };
            tracing::warn!(pipeline = %running.pipeline, %run_id, %error, "pipeline run ended in an error");
            self.lakehouse
                .metastore()
                .finish_pipeline_run(&run_id, "failed", Some(&error), now_ms())
                .await?;
            super::count_run(&running.pipeline, "failed");
        }
        let lakehouse = self.lakehouse.clone();
        let metastore = lakehouse.metastore();
        let records = metastore.list_pipelines().await?;
        let names: BTreeSet<String> = records.iter().map(|r| r.name.clone()).collect();
        let dropped: Vec<String> = self.held.difference(&names).cloned().collect();
        for name in dropped {
            self.held.remove(&name);
            self.abort_runs(&name);
        }
        for record in &records {
            let now = now_ms();
            let held = metastore
                .hold_pipeline_lease(
                    &record.name,
                    &self.node,
                    now,
                    now + LEASE.as_millis() as i64,
                )
                .await?;
            if !held {
                if self.held.remove(&record.name) {
                    tracing::warn!(pipeline = %record.name, "pipeline lease taken over by another node");
                    self.abort_runs(&record.name);
                }
                continue;
            }
            if self.held.insert(record.name.clone()) {
                tracing::info!(pipeline = %record.name, node = %self.node, "pipeline lease taken");
            }
            // One read of the open runs serves the orphans, the schedule and the starts.
            let mut open = metastore.open_pipeline_runs(&record.name).await?;
            let runs = &self.runs;
            fail_orphans(&self.lakehouse, &record.name, &mut open, |run_id| {
                runs.contains_key(run_id)
            })
            .await?;
            let definition: PipelineDefinition = match serde_json::from_str(&record.definition_json)
            {
                Ok(definition) => definition,
                Err(e) => {
                    tracing::error!(pipeline = %record.name, error = %e, "unreadable pipeline definition");
                    continue;
                }
            };
            if record.desired_state == "active" {
                if let Some(run) =
                    schedule_due(&self.lakehouse, record, &definition, &self.node, &open).await?
                {
                    tracing::info!(pipeline = %record.name, run_id = %run.run_id, ds = %run.logical_date, "scheduled run queued");
                    open.push(run);
                }
            }
            for run in startable(&open) {
                if !metastore
                    .start_pipeline_run(&run.run_id, &self.node, now_ms())
                    .await?
                {
                    continue;
                }
                let lakehouse = self.lakehouse.clone();
                let definition = definition.clone();
                let run_id = run.run_id.clone();
                let task = aichemy_task::spawn("pipeline run", async move {
                    execute_run(&lakehouse, &definition, &run).await
                });
                self.runs.insert(
                    run_id,
                    Running {
                        pipeline: record.name.clone(),
                        task,
                    },
                );
            }
        }
        Ok(())
    }
}
