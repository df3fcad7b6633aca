//! The source positions of ingestion jobs, kept in snapshot summaries.
//!
//! A job appending to a table records how far it read its source (Kafka offsets, a
//! PostgreSQL LSN: text only the job reads) under `aichemy.ingest.<job>` in the summary of
//! the snapshot that adds the rows, so that rows and position are committed together. On
//! start the job reads it back from the newest snapshot of `main`'s history that has it.
//! Snapshots this lakehouse builds itself (DELETE, UPDATE, MERGE, optimize) carry every
//! position of their parent forward; for other writers' snapshots the walk goes back to an
//! older one, and `expire_snapshots` keeps the newest carrier of each job.

use std::collections::{HashMap, HashSet};

use iceberg::spec::TableMetadata;

use super::rows::IcebergRows;
use crate::{Recording, Result, TableError};

impl Recording<'_> {
    /// Fails when `current` no longer records what the job expects.
    pub(super) fn check_iceberg(
        &self,
        current: &TableMetadata,
        table: &impl std::fmt::Display,
    ) -> Result<()> {
        if recorded_position(current, self.job).as_deref() != self.expected {
            return Err(self.moved_on(table));
        }
        Ok(())
    }
}

/// The summary key prefix of ingestion positions.
const PREFIX: &str = "aichemy.ingest.";

/// The position `job` recorded, from the newest snapshot of `main`'s history holding one.
pub(super) fn recorded_position(metadata: &TableMetadata, job: &str) -> Option<String> {
    let key = format!("{PREFIX}{job}");
    let mut snapshot = metadata.current_snapshot();
    while let Some(s) = snapshot {
        if let Some(position) = s.summary().additional_properties.get(&key) {
            return Some(position.clone());
        }
        snapshot = s
            .parent_snapshot_id()
            .and_then(|id| metadata.snapshot_by_id(id));
    }
    None
}

/// The snapshots that hold the position of some job for the current one: the newest of
/// `main`'s history with each key. Expiring them would lose where a job stands.
pub(super) fn position_carriers(metadata: &TableMetadata) -> HashSet<i64> {
    let mut seen = HashSet::new();
    let mut carriers = HashSet::new();
    let mut snapshot = metadata.current_snapshot();
    while let Some(s) = snapshot {
        for key in s.summary().additional_properties.keys() {
            if key.starts_with(PREFIX) && seen.insert(key.clone()) {
                carriers.insert(s.snapshot_id());
            }
        }
        snapshot = s
            .parent_snapshot_id()
            .and_then(|id| metadata.snapshot_by_id(id));
    }
    carriers
}

/// Copies the positions of `current`'s snapshot into the summary `properties` of its
/// child, then sets `positions` (job, position) over them.
pub(super) fn carry_positions(
    current: &TableMetadata,
    properties: &mut HashMap<String, String>,
    positions: &[(String, String)],
) {
    if let Some(parent) = current.current_snapshot() {
        for (key, value) in &parent.summary().additional_properties {
            if key.starts_with(PREFIX) {
                properties.insert(key.clone(), value.clone());
            }
        }
    }
    for (job, position) in positions {
        properties.insert(format!("{PREFIX}{job}"), position.clone());
    }
}

impl IcebergRows {
    /// The position `job` recorded in the table's newest state.
    pub(crate) async fn current_position(&self, job: &str) -> Result<Option<String>> {
        let current = self
            .format()
            .current(self.table().identifier())
            .await
            .map_err(TableError::from)?;
        Ok(recorded_position(&current.metadata, job))
    }
}
