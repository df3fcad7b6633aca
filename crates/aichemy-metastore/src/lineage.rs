//! Lineage: one record per write that succeeded, with the relations it read and, as JSON
//! the engine writes and reads, which of their columns each written column derives from.
//!
//! Records are history: the metastore keeps the newest [`KEPT_LINEAGE`] of them, as it
//! keeps the newest runs of a pipeline.

use sqlx::Row;

use crate::{Metastore, MetastoreError};

/// How many lineage records the metastore keeps; older ones are pruned as new ones come.
pub const KEPT_LINEAGE: i64 = 100_000;

/// One write's lineage.
#[derive(Debug, Clone, PartialEq)]
pub struct LineageRecord {
    /// The OpenLineage run id of the write (a UUID), or a job's own id for an ingestion
    /// job, whose one record is replaced.
    pub event_id: String,
    pub recorded_ms: i64,
    /// What wrote: `INSERT`, `CREATE TABLE`, `MERGE`, `UPDATE`, `DELETE`,
    /// `REFRESH MATERIALIZED VIEW`, `INGESTION`.
    pub kind: String,
    pub target_catalog: String,
    pub target_schema: String,
    pub target_table: String,
    pub user: String,
    pub query_id: Option<String>,
    pub pipeline: Option<String>,
    pub run_id: Option<String>,
    pub step: Option<String>,
    /// The inputs and the column edges, as the engine wrote them (JSON).
    pub edges_json: String,
}

impl Metastore {
    /// Records one write's lineage (replacing the record of the same id), and prunes the
    /// oldest records beyond [`KEPT_LINEAGE`] now and then.
    pub async fn record_lineage(&self, record: &LineageRecord) -> Result<(), MetastoreError> {
        sqlx::query(
            "INSERT INTO aichemy_lineage (event_id, recorded_ms, kind, target_catalog, \
             target_schema, target_table, user_name, query_id, pipeline_name, run_id, \
             step_name, edges_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (event_id) DO UPDATE SET recorded_ms = $2, kind = $3, \
             target_catalog = $4, target_schema = $5, target_table = $6, user_name = $7, \
             query_id = $8, pipeline_name = $9, run_id = $10, step_name = $11, edges_json = $12",
        )
        .bind(&record.event_id)
        .bind(record.recorded_ms)
        .bind(&record.kind)
        .bind(&record.target_catalog)
        .bind(&record.target_schema)
        .bind(&record.target_table)
        .bind(&record.user)
        .bind(&record.query_id)
        .bind(&record.pipeline)
        .bind(&record.run_id)
        .bind(&record.step)
        .bind(&record.edges_json)
        .execute(&self.pool)
        .await?;
        // About one write in a hundred (by the millisecond it was recorded at) prunes: the
        // count stays near the bound at little cost.
        if record.recorded_ms % 100 == 0 {
            self.prune_lineage(KEPT_LINEAGE).await?;
        }
        Ok(())
    }

    /// Every lineage record kept, newest first.
    pub async fn list_lineage(&self) -> Result<Vec<LineageRecord>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT event_id, recorded_ms, kind, target_catalog, target_schema, target_table, \
             user_name, query_id, pipeline_name, run_id, step_name, edges_json \
             FROM aichemy_lineage ORDER BY recorded_ms DESC, event_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| LineageRecord {
                event_id: row.get(0),
                recorded_ms: row.get(1),
                kind: row.get(2),
                target_catalog: row.get(3),
                target_schema: row.get(4),
                target_table: row.get(5),
                user: row.get(6),
                query_id: row.get(7),
                pipeline: row.get(8),
                run_id: row.get(9),
                step: row.get(10),
                edges_json: row.get(11),
            })
            .collect())
    }

    /// Deletes all but the newest `keep` lineage records.
    pub async fn prune_lineage(&self, keep: i64) -> Result<(), MetastoreError> {
        sqlx::query(
            "DELETE FROM aichemy_lineage WHERE event_id NOT IN \
             (SELECT event_id FROM aichemy_lineage ORDER BY recorded_ms DESC, event_id LIMIT $1)",
        )
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, at: i64) -> LineageRecord {
        LineageRecord {
            event_id: id.into(),
            recorded_ms: at,
            kind: "INSERT".into(),
            target_catalog: "iceberg".into(),
            target_schema: "s".into(),
            target_table: "t".into(),
            user: "alice".into(),
            query_id: Some("q".into()),
            pipeline: None,
            run_id: None,
            step: None,
            edges_json: "{}".into(),
        }
    }

    #[tokio::test]
    async fn lineage_is_recorded_replaced_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = Metastore::open(&url).await.unwrap();
        for (id, at) in [("a", 1), ("b", 2), ("c", 3)] {
            store.record_lineage(&record(id, at)).await.unwrap();
        }
        let mut replaced = record("a", 4);
        replaced.kind = "INGESTION".into();
        store.record_lineage(&replaced).await.unwrap();
        let all = store.list_lineage().await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(),
            ["a", "c", "b"]
        );
        assert_eq!(all[0].kind, "INGESTION");
        store.prune_lineage(2).await.unwrap();
        let kept = store.list_lineage().await.unwrap();
        assert_eq!(
            kept.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
    }
}
