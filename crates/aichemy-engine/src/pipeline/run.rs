//! One run of a pipeline: its steps in dependency order, each attempt a statement in a
//! session of the pipeline's owner, bounded by the step's timeout, retried with growing
//! waits; every attempt and the run's end recorded in the metastore as they happen.
//!
//! A run publishes atomically (write-audit-publish): its commits to Iceberg tables are
//! staged ([`Staging`]) and seen by its later steps only; when every step succeeded, all
//! the tables it changed move to their new snapshots in one metastore transaction, and a
//! run that failed leaves every table as it was. Another writer committing to one of
//! those tables meanwhile (another run of a backfill, too) fails the publish: the run is
//! run again from its start, up to [`PUBLISH_ATTEMPTS`] times, then fails with
//! TRANSACTION_CONFLICT. New tables (DDL) and tables of other formats change at once.
//!
//! Which queued runs may start is decided here too ([`startable`]), the same for the
//! server's runner and for a session that runs a pipeline nobody holds.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tracing::Instrument;

use aichemy_metastore::{PipelineCheckRecord, PipelineRunRecord, PipelineStepRecord, RunPublish};
use aichemy_tables::Staging;

use super::{PipelineDefinition, RunValues, StepDefinition};
use crate::error::{ErrorCode, Result, TrinoError};
use crate::session::{Output, Session};
use crate::Lakehouse;

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// `succeeded` or `failed`.
    pub state: String,
    pub error: Option<String>,
}

/// Runs `run` (already marked started) to its end and records it.
pub async fn execute_run(
    lakehouse: &Arc<Lakehouse>,
    definition: &PipelineDefinition,
    run: &PipelineRunRecord,
) -> Result<RunEnd> {
    let span = tracing::info_span!(
        "pipeline_run",
        pipeline = %definition.name,
        run_id = %run.run_id,
        ds = %run.logical_date
    );
    async {
        tracing::info!(trigger = %run.trigger, "pipeline run started");
        crate::lineage::pipeline_run_event(lakehouse, &definition.name, &run.run_id, "START", None);
        let values = RunValues {
            pipeline: definition.name.clone(),
            run_id: run.run_id.clone(),
            ds: run.logical_date.clone(),
        };
        let metastore = lakehouse.metastore();
        // Every Iceberg table the steps change is published at the end, all at once, in
        // the transaction that records the run's success; a publish that lost a race to
        // another writer runs the run again, from the start. A backfill's runs race each
        // other for their shared tables: they get as many more attempts as run beside them.
        let attempts = PUBLISH_ATTEMPTS + run.max_parallel.clamp(1, 100) as u32 - 1;
        let mut attempt = 1;
        let (staging, first_error) = loop {
            let staging = Arc::new(Staging::default());
            let mut first_error = attempt_run(lakehouse, definition, &values, &staging).await?;
            if first_error.is_none() {
                let swaps = staging.swaps();
                let swaps: Vec<(&str, &aichemy_metastore::PointerSwap)> =
                    swaps.iter().map(|(c, s)| (c.as_str(), s)).collect();
                match metastore
                    .publish_pipeline_run(&run.run_id, now_ms(), &swaps)
                    .await?
                {
                    RunPublish::Published => {}
                    RunPublish::Gone => {
                        first_error = Some(
                            "The run was ended by another node meanwhile (its lease was lost)"
                                .to_string(),
                        )
                    }
                    RunPublish::Conflict => {
                        let error = format!(
                            "TRANSACTION_CONFLICT: Another writer changed {} during the run",
                            staging.tables().join(", ")
                        );
                        if attempt < attempts {
                            tracing::warn!(%error, attempt, "pipeline run not published; running it again");
                            attempt += 1;
                            continue;
                        }
                        first_error = Some(error);
                    }
                }
            }
            break (staging, first_error);
        };
        let end = match first_error {
            None => RunEnd {
                state: "succeeded".into(),
                error: None,
            },
            Some(error) => {
                let end = RunEnd {
                    state: "failed".into(),
                    error: Some(match staging.tables().is_empty() {
                        true => error,
                        false => format!("{error} (nothing was published)"),
                    }),
                };
                metastore
                    .finish_pipeline_run(&run.run_id, &end.state, end.error.as_deref(), now_ms())
                    .await?;
                end
            }
        };
        super::count_run(&definition.name, &end.state);
        metastore
            .prune_pipeline_runs(&definition.name, super::KEPT_RUNS)
            .await?;
        crate::lineage::pipeline_run_event(
            lakehouse,
            &definition.name,
            &run.run_id,
            &end.state,
            end.error.as_deref(),
        );
        match &end.error {
            None => tracing::info!("pipeline run succeeded"),
            Some(error) => tracing::warn!(%error, "pipeline run failed"),
        }
        Ok(end)
    }
    .instrument(span)
    .await
}

/// How often a run is tried when its publish lost a race (plus one for each run of its
/// backfill beside it).
const PUBLISH_ATTEMPTS: u32 = 3;

/// Runs the steps and their checks once, staged; answers the first failure.
async fn attempt_run(
    lakehouse: &Arc<Lakehouse>,
    definition: &PipelineDefinition,
    values: &RunValues,
    staging: &Arc<Staging>,
) -> Result<Option<String>> {
    let metastore = lakehouse.metastore();
    let mut succeeded: Vec<&str> = Vec::new();
    let mut first_error: Option<String> = None;
    for step in definition.order()? {
        if !step.after.iter().all(|b| succeeded.contains(&b.as_str())) {
            metastore
                .record_pipeline_step(&PipelineStepRecord {
                    run_id: values.run_id.clone(),
                    step: step.name.clone(),
                    state: "upstream_failed".into(),
                    attempt: 0,
                    started_ms: None,
                    ended_ms: None,
                    rows_written: None,
                    query_id: None,
                    error: None,
                })
                .await?;
            continue;
        }
        match run_step(lakehouse, definition, step, values, staging).await? {
            Ok(()) => {
                // Its checks gate the steps after it: a failed one counts as the step's.
                match run_checks(lakehouse, definition, Some(&step.name), values, staging).await? {
                    None => succeeded.push(&step.name),
                    Some(error) => {
                        first_error.get_or_insert(error);
                    }
                }
            }
            Err(message) => {
                first_error
                    .get_or_insert_with(|| format!("Step '{}' failed: {message}", step.name));
            }
        }
    }
    if first_error.is_none() {
        first_error = run_checks(lakehouse, definition, None, values, staging).await?;
    }
    Ok(first_error)
}

/// Evaluates the checks that follow `after` (the run's last step when `None`), each
/// recorded; answers the first failure of a check that is not a warning.
async fn run_checks(
    lakehouse: &Arc<Lakehouse>,
    definition: &PipelineDefinition,
    after: Option<&str>,
    values: &RunValues,
    staging: &Arc<Staging>,
) -> Result<Option<String>> {
    let metastore = lakehouse.metastore();
    let mut first_error = None;
    for check in definition
        .checks
        .iter()
        .filter(|c| c.after.as_deref() == after)
    {
        let outcome = match staging
            .scope(check.evaluate(lakehouse, definition, values))
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => super::checks::CheckOutcome {
                state: if check.warn { "warned" } else { "failed" },
                failing_rows: None,
                message: Some(format!("{}: {}", e.code.name(), e.message)),
            },
        };
        metastore
            .record_pipeline_check(&PipelineCheckRecord {
                run_id: values.run_id.clone(),
                check: check.name.clone(),
                table: check.table.clone(),
                state: outcome.state.to_string(),
                failing_rows: outcome.failing_rows,
                message: outcome.message.clone(),
                checked_ms: now_ms(),
            })
            .await?;
        match outcome.state {
            "failed" => {
                tracing::warn!(check = %check.name, message = ?outcome.message, "pipeline check failed");
                first_error.get_or_insert_with(|| {
                    format!(
                        "Check '{}' failed: {}",
                        check.name,
                        outcome.message.unwrap_or_default()
                    )
                });
            }
            "passed" => {}
            state => {
                tracing::info!(check = %check.name, state, message = ?outcome.message, "pipeline check")
            }
        }
    }
    Ok(first_error)
}

/// Runs one step to success or to its last attempt; the outer error is the metastore's,
/// the inner one the step's.
async fn run_step(
    lakehouse: &Arc<Lakehouse>,
    definition: &PipelineDefinition,
    step: &StepDefinition,
    values: &RunValues,
    staging: &Arc<Staging>,
) -> Result<std::result::Result<(), String>> {
    let metastore = lakehouse.metastore();
    let retries = definition.step_retries(step);
    let mut attempt: u32 = 1;
    loop {
        let query_id = format!("{}.{}.{attempt}", values.run_id, step.name);
        let started = now_ms();
        let mut record = PipelineStepRecord {
            run_id: values.run_id.clone(),
            step: step.name.clone(),
            state: "running".into(),
            attempt: attempt as i64,
            started_ms: Some(started),
            ended_ms: None,
            rows_written: None,
            query_id: Some(query_id.clone()),
            error: None,
        };
        metastore.record_pipeline_step(&record).await?;
        let clock = Instant::now();
        let outcome = staging
            .scope(attempt_step(lakehouse, definition, step, values, &query_id))
            .instrument(
                tracing::info_span!("pipeline_step", step = %step.name, query_id = %query_id),
            )
            .await;
        record.ended_ms = Some(now_ms());
        match outcome {
            Ok(rows) => {
                record.state = "succeeded".into();
                record.rows_written = Some(rows as i64);
                metastore.record_pipeline_step(&record).await?;
                tracing::info!(step = %step.name, %query_id, rows, elapsed_ms = clock.elapsed().as_millis() as u64, "pipeline step succeeded");
                return Ok(Ok(()));
            }
            Err(e) => {
                let message = format!("{}: {}", e.code.name(), e.message);
                let again = attempt <= retries;
                record.state = if again { "retrying" } else { "failed" }.into();
                record.error = Some(message.clone());
                metastore.record_pipeline_step(&record).await?;
                tracing::warn!(step = %step.name, %query_id, attempt, error = %message, retry = again, "pipeline step failed");
                if !again {
                    return Ok(Err(message));
                }
                attempt += 1;
                tokio::time::sleep(definition.retry_wait(attempt)).await;
            }
        }
    }
}

/// One attempt: the step's statement in a session of the owner, its rows read to the end;
/// answers the rows it wrote (or returned).
async fn attempt_step(
    lakehouse: &Arc<Lakehouse>,
    definition: &PipelineDefinition,
    step: &StepDefinition,
    values: &RunValues,
    query_id: &str,
) -> Result<u64> {
    let sql = values.substitute(&step.sql)?;
    let mut session = Session::new(lakehouse.clone(), definition.owner.clone());
    session.query_id = Some(query_id.to_string());
    session.parent = Some(crate::lineage::Parent {
        pipeline: definition.name.clone(),
        run_id: values.run_id.clone(),
        step: step.name.clone(),
    });
    session.catalog = definition.catalog.clone();
    session.schema = definition.schema.clone();
    if let Some(timeout) = definition.step_timeout(step) {
        session.properties.insert(
            "query_max_run_time".into(),
            format!("{}ms", timeout.as_millis().max(1)),
        );
    }
    match session.execute(&sql).await? {
        Output::Update { count, .. } => Ok(count.unwrap_or(0)),
        Output::Rows { mut stream, .. } => {
            let mut rows = 0u64;
            while let Some(batch) = stream.next().await {
                rows += batch.map_err(TrinoError::from)?.num_rows() as u64;
            }
            Ok(rows)
        }
    }
}

/// The queued runs that may start now, given the pipeline's open runs (oldest first): the
/// oldest queued run when none runs; with it, or beside running runs of its backfill, more
/// runs of the same backfill up to its parallelism.
pub fn startable(open: &[PipelineRunRecord]) -> Vec<PipelineRunRecord> {
    let running: Vec<&PipelineRunRecord> = open.iter().filter(|r| r.state == "running").collect();
    let queued: Vec<&PipelineRunRecord> = open.iter().filter(|r| r.state == "queued").collect();
    let Some(first) = queued.first() else {
        return Vec::new();
    };
    let batch = first.batch_id.as_deref();
    if !running.is_empty()
        && (batch.is_none() || running.iter().any(|r| r.batch_id.as_deref() != batch))
    {
        return Vec::new();
    }
    let room = match batch {
        None => 1,
        Some(_) => (first.max_parallel.max(1) as usize).saturating_sub(running.len()),
    };
    queued
        .iter()
        .take_while(|r| r.batch_id.as_deref() == batch)
        .take(room)
        .map(|r| (*r).clone())
        .collect()
}

/// What the holder of a pipeline's lease does before it starts runs: the runs recorded as
/// running that it does not run itself (`running_here`) are failed, for their writers are
/// gone: another node that stopped renewing the lease, this node before a restart, a run
/// whose end could not be recorded.
/// `open` is the pipeline's open runs, as read; the failed ones leave it.
pub async fn fail_orphans(
    lakehouse: &Lakehouse,
    pipeline: &str,
    open: &mut Vec<PipelineRunRecord>,
    running_here: impl Fn(&str) -> bool,
) -> Result<()> {
    let metastore = lakehouse.metastore();
    let (orphans, kept): (Vec<_>, Vec<_>) = std::mem::take(open)
        .into_iter()
        .partition(|run| run.state == "running" && !running_here(&run.run_id));
    *open = kept;
    for run in orphans {
        let error = format!(
            "The node {} running this run stopped before it ended",
            run.node.as_deref().unwrap_or("?")
        );
        tracing::warn!(pipeline, run_id = %run.run_id, %error, "pipeline run abandoned");
        metastore
            .finish_pipeline_run(&run.run_id, "failed", Some(&error), now_ms())
            .await?;
        super::count_run(pipeline, "failed");
    }
    Ok(())
}

/// Queues the run the schedule asks for, when its time has come: one run for the newest
/// schedule time that passed (times missed while no node ran the pipeline are skipped),
/// with that time's date as `${ds}`. Only the lease holder moves the schedule, once.
pub async fn schedule_due(
    lakehouse: &Lakehouse,
    record: &aichemy_metastore::PipelineRecord,
    definition: &PipelineDefinition,
    node: &str,
    open: &[PipelineRunRecord],
) -> Result<Option<PipelineRunRecord>> {
    let Some(schedule) = &definition.schedule else {
        return Ok(None);
    };
    let metastore = lakehouse.metastore();
    let now = now_ms();
    if record.scheduled_until == 0 {
        metastore
            .advance_pipeline_schedule(&record.name, node, 0, now, None)
            .await?;
        return Ok(None);
    }
    let mut due = None;
    let mut at = record.scheduled_until;
    while let Some(next) = schedule.next_after(at) {
        if next > now {
            break;
        }
        due = Some(next);
        at = next;
    }
    let Some(due) = due else {
        return Ok(None);
    };
    // One scheduled run waiting is enough: a slow pipeline does not pile runs up.
    let waiting = open
        .iter()
        .any(|r| r.state == "queued" && r.trigger == "schedule");
    let run = (!waiting).then(|| new_run(&record.name, "schedule", &date_of(due), None, 1, now));
    let moved = metastore
        .advance_pipeline_schedule(
            &record.name,
            node,
            record.scheduled_until,
            due,
            run.as_ref(),
        )
        .await?;
    Ok(run.filter(|_| moved))
}

/// The UTC date of a time in ms since the epoch, as `${ds}`.
pub fn date_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A queued run.
pub fn new_run(
    pipeline: &str,
    trigger: &str,
    ds: &str,
    batch_id: Option<String>,
    max_parallel: i64,
    now: i64,
) -> PipelineRunRecord {
    PipelineRunRecord {
        run_id: run_id(now),
        pipeline: pipeline.to_string(),
        trigger: trigger.to_string(),
        logical_date: ds.to_string(),
        batch_id,
        max_parallel,
        state: "queued".into(),
        queued_ms: now,
        started_ms: None,
        ended_ms: None,
        node: None,
        error: None,
    }
}

/// A run id as Trino writes query ids: the time, then a random part.
fn run_id(now: i64) -> String {
    let time = chrono::DateTime::from_timestamp_millis(now)
        .map(|t| t.format("%Y%m%d_%H%M%S").to_string())
        .unwrap_or_default();
    let random: String = (0..5)
        .map(|_| (b'a' + fastrand::u8(0..26)) as char)
        .collect();
    format!("{time}_{:05}_{random}", now.rem_euclid(100_000))
}

/// Runs, on this node, a pipeline's queued runs until none is left: what a session does
/// for a pipeline no server holds. Holds the pipeline's lease throughout; fails when
/// another node holds it.
pub async fn run_queued_here(lakehouse: &Arc<Lakehouse>, pipeline: &str, node: &str) -> Result<()> {
    let metastore = lakehouse.metastore();
    let hold = || async {
        let now = now_ms();
        metastore
            .hold_pipeline_lease(pipeline, node, now, now + super::LEASE.as_millis() as i64)
            .await
    };
    if !hold().await? {
        return Err(TrinoError::new(
            ErrorCode::GENERIC_USER_ERROR,
            format!("Pipeline '{pipeline}' is run by another node"),
        ));
    }
    let result = async {
        let mut open = metastore.open_pipeline_runs(pipeline).await?;
        fail_orphans(lakehouse, pipeline, &mut open, |_| false).await?;
        let definition = super::load(lakehouse, pipeline).await?.1;
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            for run in startable(&metastore.open_pipeline_runs(pipeline).await?) {
                if metastore
                    .start_pipeline_run(&run.run_id, node, now_ms())
                    .await?
                {
                    let lakehouse = lakehouse.clone();
                    let definition = definition.clone();
                    aichemy_task::spawn_in(&mut tasks, "pipeline run", async move {
                        let ended = execute_run(&lakehouse, &definition, &run).await;
                        if let Err(e) = &ended {
                            // Not left running: it would hold the pipeline's queue.
                            let error = format!("{}: {}", e.code.name(), e.message);
                            let _ = lakehouse
                                .metastore()
                                .finish_pipeline_run(&run.run_id, "failed", Some(&error), now_ms())
                                .await;
                            super::count_run(&definition.name, "failed");
                        }
                        ended
                    });
                }
            }
            if tasks.is_empty() {
                return Ok(());
            }
            tokio::select! {
                done = tasks.join_next() => {
                    if let Some(Ok(Err(e))) = done {
                        return Err(e);
                    }
                }
                _ = tokio::time::sleep(super::TICK) => {}
            }
            if !hold().await? {
                return Err(TrinoError::new(
                    ErrorCode::GENERIC_INTERNAL_ERROR,
                    format!("Pipeline '{pipeline}' was taken over by another node"),
                ));
            }
        }
    }
    .await;
    metastore.release_pipeline_lease(pipeline, node).await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, state: &str, batch: Option<&str>, parallel: i64) -> PipelineRunRecord {
        let mut r = new_run(
            "p",
            "backfill",
            "2026-12-01",
            batch.map(String::from),
            parallel,
            1,
        );
        r.run_id = id.into();
        r.state = state.into();
        r
    }

    fn ids(runs: Vec<PipelineRunRecord>) -> Vec<String> {
        runs.into_iter().map(|r| r.run_id).collect()
    }

    #[test]
    fn one_run_at_a_time_except_within_a_backfill() {
        let manual = |id: &str, state: &str| run(id, state, None, 1);
        assert_eq!(
            ids(startable(&[manual("a", "queued"), manual("b", "queued")])),
            ["a"]
        );
        assert!(startable(&[manual("a", "running"), manual("b", "queued")]).is_empty());
        let b = |id: &str, state: &str| run(id, state, Some("b1"), 2);
        assert_eq!(
            ids(startable(&[
                b("1", "queued"),
                b("2", "queued"),
                b("3", "queued")
            ])),
            ["1", "2"]
        );
        assert_eq!(
            ids(startable(&[
                b("1", "running"),
                b("2", "queued"),
                b("3", "queued")
            ])),
            ["2"]
        );
        assert!(startable(&[b("1", "running"), b("2", "running"), b("3", "queued")]).is_empty());
        // A backfill waits for a manual run, and the next run for the backfill.
        assert!(startable(&[manual("m", "running"), b("1", "queued")]).is_empty());
        assert!(startable(&[b("1", "running"), manual("m", "queued")]).is_empty());
        assert_eq!(
            ids(startable(&[b("1", "queued"), manual("m", "queued")])),
            ["1"]
        );
    }
}
