//! Ingestion jobs: their definitions, the state users asked for, and the lease through
//! which exactly one server runs each job at a time.
//!
//! A lease is a node name and a deadline in milliseconds since the epoch (the servers'
//! clocks, which must roughly agree). A node takes a job whose lease is free or expired,
//! keeps it by renewing before the deadline (reporting the job's status with each renewal),
//! and loses it when another node took it over after the deadline passed. Two nodes can
//! never both commit a batch: the table commit checks the source position it started from.

use sqlx::Row;

use crate::{Metastore, MetastoreError};

/// One ingestion job as the metastore keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestionRecord {
    pub name: String,
    /// The definition as the engine wrote it (JSON).
    pub definition_json: String,
    /// `running` or `paused`.
    pub desired_state: String,
    /// The node that holds or last held the lease.
    pub lease_node: Option<String>,
    /// Until when the lease holds (ms since the epoch); 0 once released.
    pub lease_until: Option<i64>,
    /// The status the lease holder last reported (JSON).
    pub status_json: Option<String>,
}

impl Metastore {
    /// Records a job, in state `desired_state`; fails with `IngestionAlreadyExists`.
    pub async fn create_ingestion(
        &self,
        name: &str,
        definition_json: &str,
        desired_state: &str,
    ) -> Result<(), MetastoreError> {
        let result = sqlx::query(
            "INSERT INTO aichemy_ingestions (ingestion_name, definition_json, desired_state) \
             VALUES ($1, $2, $3)",
        )
        .bind(name)
        .bind(definition_json)
        .bind(desired_state)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(MetastoreError::IngestionAlreadyExists {
                    name: name.to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every job, by name.
    pub async fn list_ingestions(&self) -> Result<Vec<IngestionRecord>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT ingestion_name, definition_json, desired_state, lease_node, lease_until, \
             status_json FROM aichemy_ingestions ORDER BY ingestion_name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| IngestionRecord {
                name: row.get(0),
                definition_json: row.get(1),
                desired_state: row.get(2),
                lease_node: row.get(3),
                lease_until: row.get(4),
                status_json: row.get(5),
            })
            .collect())
    }

    /// Replaces a job's definition (a declaration in the configuration file that
    /// changed); the state asked for stays. Answers whether the job exists.
    pub async fn replace_ingestion_definition(
        &self,
        name: &str,
        definition_json: &str,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_ingestions SET definition_json = $1 WHERE ingestion_name = $2",
        )
        .bind(definition_json)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets the state a job should be in; answers whether the job exists.
    pub async fn set_ingestion_state(
        &self,
        name: &str,
        desired_state: &str,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_ingestions SET desired_state = $1 WHERE ingestion_name = $2",
        )
        .bind(desired_state)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a job; answers whether it existed. The node running it stops it once it
    /// sees the job gone.
    pub async fn drop_ingestion(&self, name: &str) -> Result<bool, MetastoreError> {
        let done = sqlx::query("DELETE FROM aichemy_ingestions WHERE ingestion_name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes or keeps the lease of a job for `node` until `until_ms`, when it is free,
    /// expired at `now_ms`, or already `node`'s; answers whether `node` holds it now.
    /// `status_json`, when given, replaces the reported status.
    pub async fn hold_ingestion_lease(
        &self,
        name: &str,
        node: &str,
        now_ms: i64,
        until_ms: i64,
        status_json: Option<&str>,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_ingestions \
             SET lease_node = $1, lease_until = $2, status_json = COALESCE($3, status_json) \
             WHERE ingestion_name = $4 \
               AND (lease_node IS NULL OR lease_node = $1 OR lease_until IS NULL \
                    OR lease_until < $5)",
        )
        .bind(node)
        .bind(until_ms)
        .bind(status_json)
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives a job's lease up (when it was paused or the server stops), leaving the last
    /// status for display; another node may take it at once.
    pub async fn release_ingestion_lease(
        &self,
        name: &str,
        node: &str,
        status_json: Option<&str>,
    ) -> Result<(), MetastoreError> {
        sqlx::query(
            "UPDATE aichemy_ingestions \
             SET lease_until = 0, status_json = COALESCE($1, status_json) \
             WHERE ingestion_name = $2 AND lease_node = $3",
        )
        .bind(status_json)
        .bind(name)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Metastore;

    #[tokio::test]
    async fn one_node_holds_a_lease_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = Metastore::open(&url).await.unwrap();
        store.create_ingestion("j", "{}", "running").await.unwrap();
        assert!(store.create_ingestion("j", "{}", "running").await.is_err());
        assert!(store
            .hold_ingestion_lease("j", "a", 100, 200, Some("{\"rows\":1}"))
            .await
            .unwrap());
        // Another node waits for the deadline; the holder renews.
        assert!(!store
            .hold_ingestion_lease("j", "b", 150, 250, None)
            .await
            .unwrap());
        assert!(store
            .hold_ingestion_lease("j", "a", 190, 300, None)
            .await
            .unwrap());
        assert!(store
            .hold_ingestion_lease("j", "b", 301, 400, None)
            .await
            .unwrap());
        assert!(!store
            .hold_ingestion_lease("j", "a", 310, 410, None)
            .await
            .unwrap());
        let jobs = store.list_ingestions().await.unwrap();
        assert_eq!(jobs[0].lease_node.as_deref(), Some("b"));
        assert_eq!(jobs[0].status_json.as_deref(), Some("{\"rows\":1}"));
        store.release_ingestion_lease("j", "b", None).await.unwrap();
        assert!(store
            .hold_ingestion_lease("j", "a", 320, 420, None)
            .await
            .unwrap());
        assert!(store.set_ingestion_state("j", "paused").await.unwrap());
        assert!(store.drop_ingestion("j").await.unwrap());
        assert!(!store.drop_ingestion("j").await.unwrap());
    }
}
