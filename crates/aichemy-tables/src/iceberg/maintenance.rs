//! Table upkeep: `expire_snapshots` removes old snapshots from the metadata and then deletes
//! the files that no retained snapshot references (manifest lists, manifests, data and
//! delete files). A file counts as referenced when a retained snapshot has it live, so time
//! travel to any retained snapshot still reads; the files go only after the commit, so a
//! crash between the two leaves orphans, never a snapshot without its files.
//! `remove_orphan_files` deletes those orphans, and the files of statements that failed or
//! lost their commit: every file under the table's location that no snapshot and no
//! metadata file of the table references, once older than the retention threshold (which
//! leaves the files of statements still running alone).

use std::collections::HashSet;

use iceberg::spec::{ManifestList, SnapshotRef, TableMetadata};
use iceberg::table::Table;
use iceberg::TableUpdate;

use super::commit::{main_unmoved, TableChange};
use super::{format_error, IcebergFormat};
use crate::claims::delete_owned_files;
use crate::{Result, TableError};

/// The snapshots a branch or tag names (iceberg-rust keeps the references private; the
/// serialized metadata has them).
fn referenced_snapshots(metadata: &TableMetadata) -> HashSet<i64> {
    let mut ids: HashSet<i64> = metadata.current_snapshot_id().into_iter().collect();
    if let Ok(json) = serde_json::to_value(metadata) {
        if let Some(refs) = json.get("refs").and_then(|r| r.as_object()) {
            ids.extend(
                refs.values()
                    .filter_map(|r| r.get("snapshot-id").and_then(|id| id.as_i64())),
            );
        }
    }
    ids
}

/// The files `snapshots` use: their manifest lists and manifests, and the data and delete
/// files their manifests hold live (`all_entries`: also the ones they record as deleted).
async fn files_of(
    table: &Table,
    snapshots: &[&SnapshotRef],
    all_entries: bool,
) -> Result<HashSet<String>> {
    let metadata = table.metadata();
    let mut files = HashSet::new();
    let mut manifests_seen = HashSet::new();
    for snapshot in snapshots {
        files.insert(snapshot.manifest_list().to_string());
        let bytes = table
            .file_io()
            .new_input(snapshot.manifest_list())
            .map_err(format_error)?
            .read()
            .await
            .map_err(format_error)?;
        let list = ManifestList::parse_with_version(&bytes, metadata.format_version())
            .map_err(format_error)?;
        for manifest in list.entries() {
            files.insert(manifest.manifest_path.clone());
            if !manifests_seen.insert(manifest.manifest_path.clone()) {
                continue;
            }
            let entries = manifest
                .load_manifest(table.file_io())
                .await
                .map_err(format_error)?;
            for entry in entries.entries() {
                if all_entries || entry.is_alive() {
                    files.insert(entry.file_path().to_string());
                }
            }
        }
    }
    Ok(files)
}

impl IcebergFormat {
    /// Expires the snapshots made before `older_than_ms` that no branch or tag names, then
    /// deletes what only they used. Answers the snapshots and files removed.
    pub(super) async fn expire(&self, table: &Table, older_than_ms: i64) -> Result<(usize, usize)> {
        let metadata = table.metadata();
        let mut keep = referenced_snapshots(metadata);
        keep.extend(super::ingest::position_carriers(metadata));
        let (expired, retained): (Vec<&SnapshotRef>, Vec<&SnapshotRef>) = metadata
            .snapshots()
            .partition(|s| s.timestamp_ms() < older_than_ms && !keep.contains(&s.snapshot_id()));
        if expired.is_empty() {
            return Ok((0, 0));
        }
        let needed = files_of(table, &retained, false).await?;
        let candidates = files_of(table, &expired, true).await?;
        let change = TableChange {
            ident: table.identifier().clone(),
            requirements: main_unmoved(metadata),
            updates: vec![TableUpdate::RemoveSnapshots {
                snapshot_ids: expired.iter().map(|s| s.snapshot_id()).collect(),
            }],
        };
        self.commit_changes(vec![change]).await?;
        // Committed: the files only the expired snapshots used are garbage now. Deleting
        // them is best effort (what stays is an orphan for remove_orphan_files).
        let mut deleted = 0;
        for file in candidates.difference(&needed) {
            if table.file_io().delete(file).await.is_ok() {
                deleted += 1;
            }
        }
        Ok((expired.len(), deleted))
    }

    /// Deletes the files under the table's location that nothing of the table references
    /// and that were last written before `older_than_ms`; answers how many went.
    pub(super) async fn remove_orphans(&self, table: &Table, older_than_ms: i64) -> Result<usize> {
        let metadata = table.metadata();
        let snapshots: Vec<&SnapshotRef> = metadata.snapshots().collect();
        let mut referenced = files_of(table, &snapshots, false).await?;
        referenced.extend(table.metadata_location().map(str::to_string));
        referenced.extend(
            metadata
                .metadata_log()
                .iter()
                .map(|m| m.metadata_file.clone()),
        );
        referenced.extend(
            metadata
                .statistics_iter()
                .map(|s| s.statistics_path.clone()),
        );
        referenced.extend(
            metadata
                .partition_statistics_iter()
                .map(|s| s.statistics_path.clone()),
        );
        // Compared as object store paths: one file may be written as several URLs.
        let referenced: HashSet<String> = referenced
            .iter()
            .filter_map(|file| self.stores.resolve(file).ok())
            .map(|(_, path)| path.to_string())
            .collect();
        let ident = table.identifier();
        let itself = format!(
            "{}.{}.{}",
            self.catalog_name,
            ident.namespace().join("."),
            ident.name()
        );
        delete_owned_files(
            &self.stores,
            &self.locations,
            &self.metastore,
            metadata.location(),
            Some(&itself),
            |file| {
                file.last_modified.timestamp_millis() < older_than_ms
                    && !referenced.contains(file.location.as_ref())
            },
        )
        .await
        .map_err(|message| TableError::Storage { message })
    }
}
