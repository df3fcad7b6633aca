//! Pipelines: their definitions, the state users asked for, the lease through which one
//! server at a time runs each, and the history of their runs and steps.
//!
//! A pipeline's runs are queued rows ([`PipelineRunRecord`]); only the node holding the
//! pipeline's lease (a node name and a deadline in ms since the epoch, as for ingestion
//! jobs) starts them, so two runs of one pipeline never write at once unless a backfill
//! asked for it. The schedule is advanced in the same transaction that queues its run,
//! and only by the lease holder: a run is queued once per schedule time.

use sqlx::Row;

use crate::{Metastore, MetastoreError};

/// One pipeline as the metastore keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRecord {
    pub name: String,
    /// The definition as the engine wrote it (JSON).
    pub definition_json: String,
    /// `active` or `paused`.
    pub desired_state: String,
    /// The newest schedule time already queued as a run (ms since the epoch).
    pub scheduled_until: i64,
    /// The node that holds or last held the lease.
    pub lease_node: Option<String>,
    /// Until when the lease holds (ms since the epoch); 0 once released.
    pub lease_until: Option<i64>,
}

/// One run of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineRunRecord {
    pub run_id: String,
    pub pipeline: String,
    /// `schedule`, `manual` or `backfill`.
    pub trigger: String,
    /// The date the run is for (`${ds}` in its steps), `YYYY-MM-DD`.
    pub logical_date: String,
    /// The backfill that queued it, whose runs may run side by side.
    pub batch_id: Option<String>,
    /// How many runs of its batch may run at once.
    pub max_parallel: i64,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub queued_ms: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub node: Option<String>,
    pub error: Option<String>,
}

/// The latest attempt of one step of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineStepRecord {
    pub run_id: String,
    pub step: String,
    /// `running`, `retrying`, `succeeded`, `failed` or `upstream_failed`.
    pub state: String,
    pub attempt: i64,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub rows_written: Option<i64>,
    pub query_id: Option<String>,
    pub error: Option<String>,
}

/// How one check of a run came out.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineCheckRecord {
    pub run_id: String,
    pub check: String,
    pub table: String,
    /// `passed`, `failed`, `warned` or `quarantined`.
    pub state: String,
    pub failing_rows: Option<i64>,
    pub message: Option<String>,
    pub checked_ms: i64,
}

/// What [`Metastore::publish_pipeline_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPublish {
    Published,
    /// Another writer moved one of the pointers first.
    Conflict,
    /// The run was no longer running.
    Gone,
}

const RUN_COLUMNS: &str = "run_id, pipeline_name, run_trigger, logical_date, batch_id, \
     max_parallel, state, queued_ms, started_ms, ended_ms, node, error";

fn run_of(row: sqlx::any::AnyRow) -> PipelineRunRecord {
    PipelineRunRecord {
        run_id: row.get(0),
        pipeline: row.get(1),
        trigger: row.get(2),
        logical_date: row.get(3),
        batch_id: row.get(4),
        max_parallel: row.get(5),
        state: row.get(6),
        queued_ms: row.get(7),
        started_ms: row.get(8),
        ended_ms: row.get(9),
        node: row.get(10),
        error: row.get(11),
    }
}

async fn insert_runs(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    runs: &[PipelineRunRecord],
) -> Result<(), sqlx::Error> {
    for run in runs {
        sqlx::query(
            "INSERT INTO aichemy_pipeline_runs (run_id, pipeline_name, run_trigger, \
             logical_date, batch_id, max_parallel, state, queued_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&run.run_id)
        .bind(&run.pipeline)
        .bind(&run.trigger)
        .bind(&run.logical_date)
        .bind(&run.batch_id)
        .bind(run.max_parallel)
        .bind(&run.state)
        .bind(run.queued_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Metastore {
    /// Records a pipeline whose schedule starts at `scheduled_from`; fails with
    /// `PipelineAlreadyExists`.
    pub async fn create_pipeline(
        &self,
        name: &str,
        definition_json: &str,
        scheduled_from: i64,
    ) -> Result<(), MetastoreError> {
        let result = sqlx::query(
            "INSERT INTO aichemy_pipelines (pipeline_name, definition_json, desired_state, \
             scheduled_until) VALUES ($1, $2, 'active', $3)",
        )
        .bind(name)
        .bind(definition_json)
        .bind(scheduled_from)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(MetastoreError::PipelineAlreadyExists {
                    name: name.to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every pipeline, by name.
    pub async fn list_pipelines(&self) -> Result<Vec<PipelineRecord>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT pipeline_name, definition_json, desired_state, scheduled_until, \
             lease_node, lease_until FROM aichemy_pipelines ORDER BY pipeline_name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| PipelineRecord {
                name: row.get(0),
                definition_json: row.get(1),
                desired_state: row.get(2),
                scheduled_until: row.get(3),
                lease_node: row.get(4),
                lease_until: row.get(5),
            })
            .collect())
    }

    /// The pipeline `name`, if it exists.
    pub async fn pipeline(&self, name: &str) -> Result<Option<PipelineRecord>, MetastoreError> {
        Ok(self
            .list_pipelines()
            .await?
            .into_iter()
            .find(|p| p.name == name))
    }

    /// Replaces a pipeline's definition when it is still `expected` (another statement
    /// changing it at the same time makes this one answer false). `scheduled_from`, when
    /// given, starts its schedule again from then (a schedule that changed).
    pub async fn replace_pipeline_definition(
        &self,
        name: &str,
        expected: &str,
        definition_json: &str,
        scheduled_from: Option<i64>,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_pipelines SET definition_json = $1, \
             scheduled_until = COALESCE($2, scheduled_until) \
             WHERE pipeline_name = $3 AND definition_json = $4",
        )
        .bind(definition_json)
        .bind(scheduled_from)
        .bind(name)
        .bind(expected)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets the state a pipeline should be in (`active` or `paused`); a pipeline made
    /// active again schedules from `scheduled_from` on, skipping the times it was paused.
    /// Answers whether the pipeline exists.
    pub async fn set_pipeline_state(
        &self,
        name: &str,
        desired_state: &str,
        scheduled_from: i64,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_pipelines SET desired_state = $1, scheduled_until = \
             CASE WHEN desired_state = $1 THEN scheduled_until ELSE $2 END \
             WHERE pipeline_name = $3",
        )
        .bind(desired_state)
        .bind(scheduled_from)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a pipeline with its history; answers whether it existed. A run in progress
    /// stops once its node sees the pipeline gone.
    pub async fn drop_pipeline(&self, name: &str) -> Result<bool, MetastoreError> {
        let mut tx = self.pool.begin().await?;
        for table in ["aichemy_pipeline_steps", "aichemy_pipeline_checks"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE run_id IN \
                 (SELECT run_id FROM aichemy_pipeline_runs WHERE pipeline_name = $1)"
            ))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM aichemy_pipeline_runs WHERE pipeline_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM aichemy_pipelines WHERE pipeline_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes or keeps the lease of a pipeline for `node` until `until_ms`, when it is
    /// free, expired at `now_ms`, or already `node`'s; answers whether `node` holds it.
    pub async fn hold_pipeline_lease(
        &self,
        name: &str,
        node: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_pipelines SET lease_node = $1, lease_until = $2 \
             WHERE pipeline_name = $3 \
               AND (lease_node IS NULL OR lease_node = $1 OR lease_until IS NULL \
                    OR lease_until < $4)",
        )
        .bind(node)
        .bind(until_ms)
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives a pipeline's lease up; another node may take it at once.
    pub async fn release_pipeline_lease(
        &self,
        name: &str,
        node: &str,
    ) -> Result<(), MetastoreError> {
        sqlx::query(
            "UPDATE aichemy_pipelines SET lease_until = 0 \
             WHERE pipeline_name = $1 AND lease_node = $2",
        )
        .bind(name)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queues runs (by hand or a backfill).
    pub async fn queue_pipeline_runs(
        &self,
        runs: &[PipelineRunRecord],
    ) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        insert_runs(&mut tx, runs).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a pipeline's schedule from `from_ms` to `to_ms` and queues `run` (when
    /// given) in one transaction, if `node` holds the lease and nobody moved the schedule
    /// since; answers whether it did.
    pub async fn advance_pipeline_schedule(
        &self,
        name: &str,
        node: &str,
        from_ms: i64,
        to_ms: i64,
        run: Option<&PipelineRunRecord>,
    ) -> Result<bool, MetastoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE aichemy_pipelines SET scheduled_until = $1 \
             WHERE pipeline_name = $2 AND lease_node = $3 AND scheduled_until = $4",
        )
        .bind(to_ms)
        .bind(name)
        .bind(node)
        .bind(from_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(run) = run {
            insert_runs(&mut tx, std::slice::from_ref(run)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The runs of `pipeline` (of every pipeline when `None`), newest first, at most
    /// `limit`.
    pub async fn list_pipeline_runs(
        &self,
        pipeline: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PipelineRunRecord>, MetastoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM aichemy_pipeline_runs \
             WHERE $1 IS NULL OR pipeline_name = $1 \
             ORDER BY queued_ms DESC, run_id DESC LIMIT $2"
        ))
        .bind(pipeline)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(run_of).collect())
    }

    /// The runs of `pipeline` not finished yet (queued or running), oldest first.
    pub async fn open_pipeline_runs(
        &self,
        pipeline: &str,
    ) -> Result<Vec<PipelineRunRecord>, MetastoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM aichemy_pipeline_runs \
             WHERE pipeline_name = $1 AND state IN ('queued', 'running') \
             ORDER BY queued_ms, run_id"
        ))
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(run_of).collect())
    }

    /// The run `run_id`, if it exists.
    pub async fn pipeline_run(
        &self,
        run_id: &str,
    ) -> Result<Option<PipelineRunRecord>, MetastoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM aichemy_pipeline_runs WHERE run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(run_of))
    }

    /// Marks a queued run as started by `node`; answers whether it was still queued.
    pub async fn start_pipeline_run(
        &self,
        run_id: &str,
        node: &str,
        now_ms: i64,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_pipeline_runs SET state = 'running', node = $1, started_ms = $2 \
             WHERE run_id = $3 AND state = 'queued'",
        )
        .bind(node)
        .bind(now_ms)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends a run that is still `running` as `succeeded` and moves the table pointers it
    /// staged, in one transaction: the run's data is published exactly when the run is
    /// recorded as succeeded. Answers `Gone` (changing nothing) when the run is no longer
    /// running (another node failed it), `Conflict` when another writer moved a pointer.
    pub async fn publish_pipeline_run(
        &self,
        run_id: &str,
        now_ms: i64,
        swaps: &[(&str, &crate::PointerSwap)],
    ) -> Result<RunPublish, MetastoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE aichemy_pipeline_runs SET state = 'succeeded', error = NULL, ended_ms = $1 \
             WHERE run_id = $2 AND state = 'running'",
        )
        .bind(now_ms)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(RunPublish::Gone);
        }
        if !crate::iceberg::swap_in(&mut tx, swaps).await? {
            return Ok(RunPublish::Conflict);
        }
        tx.commit().await?;
        Ok(RunPublish::Published)
    }

    /// Records how a run ended (`succeeded`, `failed` or `cancelled`), unless it ended
    /// already.
    pub async fn finish_pipeline_run(
        &self,
        run_id: &str,
        state: &str,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MetastoreError> {
        sqlx::query(
            "UPDATE aichemy_pipeline_runs SET state = $1, error = $2, ended_ms = $3 \
             WHERE run_id = $4 AND state IN ('queued', 'running')",
        )
        .bind(state)
        .bind(error)
        .bind(now_ms)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a step's latest attempt.
    pub async fn record_pipeline_step(
        &self,
        step: &PipelineStepRecord,
    ) -> Result<(), MetastoreError> {
        sqlx::query(
            "INSERT INTO aichemy_pipeline_steps (run_id, step_name, state, attempt, \
             started_ms, ended_ms, rows_written, query_id, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (run_id, step_name) DO UPDATE SET state = $3, attempt = $4, \
             started_ms = $5, ended_ms = $6, rows_written = $7, query_id = $8, error = $9",
        )
        .bind(&step.run_id)
        .bind(&step.step)
        .bind(&step.state)
        .bind(step.attempt)
        .bind(step.started_ms)
        .bind(step.ended_ms)
        .bind(step.rows_written)
        .bind(&step.query_id)
        .bind(&step.error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The steps of `run_id` (of the newest `limit` runs of every pipeline when `None`),
    /// in the order they started.
    pub async fn list_pipeline_steps(
        &self,
        run_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PipelineStepRecord>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT s.run_id, s.step_name, s.state, s.attempt, s.started_ms, s.ended_ms, \
             s.rows_written, s.query_id, s.error FROM aichemy_pipeline_steps s \
             WHERE ($1 IS NULL AND s.run_id IN (SELECT run_id FROM aichemy_pipeline_runs \
                    ORDER BY queued_ms DESC LIMIT $2)) OR s.run_id = $1 \
             ORDER BY s.run_id, s.started_ms, s.step_name",
        )
        .bind(run_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| PipelineStepRecord {
                run_id: row.get(0),
                step: row.get(1),
                state: row.get(2),
                attempt: row.get(3),
                started_ms: row.get(4),
                ended_ms: row.get(5),
                rows_written: row.get(6),
                query_id: row.get(7),
                error: row.get(8),
            })
            .collect())
    }

    /// Records how a check of a run came out.
    pub async fn record_pipeline_check(
        &self,
        check: &PipelineCheckRecord,
    ) -> Result<(), MetastoreError> {
        sqlx::query(
            "INSERT INTO aichemy_pipeline_checks (run_id, check_name, table_name, state, \
             failing_rows, message, checked_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (run_id, check_name) DO UPDATE SET table_name = $3, state = $4, \
             failing_rows = $5, message = $6, checked_ms = $7",
        )
        .bind(&check.run_id)
        .bind(&check.check)
        .bind(&check.table)
        .bind(&check.state)
        .bind(check.failing_rows)
        .bind(&check.message)
        .bind(check.checked_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The checks of every run the metastore keeps, newest first.
    pub async fn list_pipeline_checks(&self) -> Result<Vec<PipelineCheckRecord>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT run_id, check_name, table_name, state, failing_rows, message, checked_ms \
             FROM aichemy_pipeline_checks ORDER BY checked_ms DESC, check_name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| PipelineCheckRecord {
                run_id: row.get(0),
                check: row.get(1),
                table: row.get(2),
                state: row.get(3),
                failing_rows: row.get(4),
                message: row.get(5),
                checked_ms: row.get(6),
            })
            .collect())
    }

    /// Forgets the finished runs of `pipeline` beyond its newest `keep`.
    pub async fn prune_pipeline_runs(
        &self,
        pipeline: &str,
        keep: i64,
    ) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        let old = "SELECT run_id FROM aichemy_pipeline_runs WHERE pipeline_name = $1 \
                   AND state NOT IN ('queued', 'running') AND run_id NOT IN \
                   (SELECT run_id FROM aichemy_pipeline_runs WHERE pipeline_name = $1 \
                    ORDER BY queued_ms DESC LIMIT $2)";
        for table in ["aichemy_pipeline_steps", "aichemy_pipeline_checks"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE run_id IN ({old})"))
                .bind(pipeline)
                .bind(keep)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(&format!(
            "DELETE FROM aichemy_pipeline_runs WHERE run_id IN ({old})"
        ))
        .bind(pipeline)
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, queued_ms: i64) -> PipelineRunRecord {
        PipelineRunRecord {
            run_id: id.into(),
            pipeline: "p".into(),
            trigger: "manual".into(),
            logical_date: "2026-12-01".into(),
            batch_id: None,
            max_parallel: 1,
            state: "queued".into(),
            queued_ms,
            started_ms: None,
            ended_ms: None,
            node: None,
            error: None,
        }
    }

    #[tokio::test]
    async fn runs_are_queued_started_and_finished_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = Metastore::open(&url).await.unwrap();
        store.create_pipeline("p", "{}", 100).await.unwrap();
        assert!(store.create_pipeline("p", "{}", 100).await.is_err());
        assert!(store.hold_pipeline_lease("p", "a", 100, 200).await.unwrap());
        assert!(!store.hold_pipeline_lease("p", "b", 150, 250).await.unwrap());
        // The schedule moves once from where the holder saw it.
        let scheduled = run("r0", 110);
        assert!(!store
            .advance_pipeline_schedule("p", "b", 100, 110, Some(&scheduled))
            .await
            .unwrap());
        assert!(store
            .advance_pipeline_schedule("p", "a", 100, 110, Some(&scheduled))
            .await
            .unwrap());
        assert!(!store
            .advance_pipeline_schedule("p", "a", 100, 110, Some(&scheduled))
            .await
            .unwrap());
        store
            .queue_pipeline_runs(&[run("r1", 120), run("r2", 130)])
            .await
            .unwrap();
        let open = store.open_pipeline_runs("p").await.unwrap();
        assert_eq!(
            open.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
            ["r0", "r1", "r2"]
        );
        assert!(store.start_pipeline_run("r0", "a", 140).await.unwrap());
        assert!(!store.start_pipeline_run("r0", "b", 141).await.unwrap());
        store
            .record_pipeline_step(&PipelineStepRecord {
                run_id: "r0".into(),
                step: "s".into(),
                state: "retrying".into(),
                attempt: 1,
                started_ms: Some(140),
                ended_ms: Some(150),
                rows_written: None,
                query_id: Some("q1".into()),
                error: Some("boom".into()),
            })
            .await
            .unwrap();
        store
            .record_pipeline_step(&PipelineStepRecord {
                run_id: "r0".into(),
                step: "s".into(),
                state: "succeeded".into(),
                attempt: 2,
                started_ms: Some(160),
                ended_ms: Some(170),
                rows_written: Some(3),
                query_id: Some("q2".into()),
                error: None,
            })
            .await
            .unwrap();
        store
            .record_pipeline_check(&PipelineCheckRecord {
                run_id: "r0".into(),
                check: "c".into(),
                table: "t".into(),
                state: "quarantined".into(),
                failing_rows: Some(2),
                message: None,
                checked_ms: 175,
            })
            .await
            .unwrap();
        assert_eq!(
            store.list_pipeline_checks().await.unwrap()[0].failing_rows,
            Some(2)
        );
        store
            .finish_pipeline_run("r0", "succeeded", None, 180)
            .await
            .unwrap();
        store
            .finish_pipeline_run("r0", "failed", Some("late"), 190)
            .await
            .unwrap();
        let done = store.pipeline_run("r0").await.unwrap().unwrap();
        assert_eq!(done.state, "succeeded");
        assert_eq!(done.ended_ms, Some(180));
        let steps = store.list_pipeline_steps(Some("r0"), 10).await.unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!((steps[0].attempt, steps[0].rows_written), (2, Some(3)));
        assert_eq!(store.list_pipeline_steps(None, 10).await.unwrap().len(), 1);
        store.prune_pipeline_runs("p", 1).await.unwrap();
        // r0 is the oldest finished run: it and its steps go; open runs stay.
        assert!(store.pipeline_run("r0").await.unwrap().is_none());
        assert!(store.list_pipeline_checks().await.unwrap().is_empty());
        assert_eq!(
            store.list_pipeline_runs(Some("p"), 10).await.unwrap().len(),
            2
        );
        assert!(store.set_pipeline_state("p", "paused", 500).await.unwrap());
        assert!(store.drop_pipeline("p").await.unwrap());
        assert!(store.list_pipeline_runs(None, 10).await.unwrap().is_empty());
        assert!(!store.drop_pipeline("p").await.unwrap());
    }
}
