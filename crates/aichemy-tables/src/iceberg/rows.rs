//! Row-level change of one Iceberg table, copy-on-write.
//!
//! The engine reads the snapshot the table was loaded at through [`PathScan`], which adds
//! each row's data file as `$path` (iceberg-rust's `_file` metadata column) and can read
//! only some files. It then hands back the rows that replace the files a statement
//! touched; [`IcebergRows::replace`] writes them as new data files and commits one
//! `overwrite` snapshot (`delete` when nothing is added) whose manifests mark the old files
//! deleted. iceberg-rust 0.10 has no such commit, so it is built here from its manifest,
//! manifest-list and snapshot builders and published through the metastore's
//! compare-and-swap ([`IcebergFormat::commit_changes`]). When another writer committed
//! meanwhile the snapshot is rebuilt on the newest one, keeping what it appended; when that
//! writer removed one of the replaced files, the statement fails with a conflict.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    new_null_array, ArrayRef, AsArray, Int64Array, RecordBatch, RecordBatchOptions,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{project_schema, DataFusionError, Result as DFResult};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::metadata_columns::RESERVED_COL_NAME_FILE;
use iceberg::scan::FileScanTask;
use iceberg::spec::{
    DataFile, DataFileFormat, FormatVersion, ManifestContentType, ManifestFile, ManifestList,
    ManifestListWriter, ManifestStatus, ManifestWriterBuilder, Operation, Snapshot,
    SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary, TableMetadata,
    MAIN_BRANCH,
};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};
use iceberg_datafusion::physical_plan::convert_filters_to_predicate;

use super::commit::{check_write_paths, main_unmoved, CommitError, TableChange};
use super::write::{df_error, plain_type, planned_field, TableWriter};
use super::{format_error, IcebergFormat};
use crate::{
    DataFileInfo, Recording, Result, RowChange, RowLevelTable, TableChanges, TableError,
    PATH_COLUMN, POSITION_COLUMN,
};

/// DELETE, UPDATE and MERGE on one loaded Iceberg table.
#[derive(Debug)]
pub(crate) struct IcebergRows {
    format: IcebergFormat,
    table: Table,
}

impl IcebergRows {
    pub(crate) fn new(format: IcebergFormat, table: Table) -> Self {
        Self { format, table }
    }

    pub(super) fn format(&self) -> &IcebergFormat {
        &self.format
    }

    pub(super) fn table(&self) -> &Table {
        &self.table
    }
}

fn conflict(message: impl Into<String>) -> TableError {
    TableError::Conflict {
        message: message.into(),
    }
}

#[async_trait]
impl RowLevelTable for IcebergRows {
    async fn scan(&self, files: Option<Arc<HashSet<String>>>) -> Result<Arc<dyn TableProvider>> {
        Ok(Arc::new(PathScan::try_new(self.table.clone(), files)?))
    }

    async fn replace(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        _change: RowChange,
    ) -> Result<u64> {
        self.commit_rows(files, rows, false, None).await
    }

    async fn rewrite(&self, files: Vec<String>, rows: SendableRecordBatchStream) -> Result<u64> {
        self.commit_rows(files, rows, true, None).await
    }

    async fn recorded_position(&self, job: &str) -> Result<Option<String>> {
        self.current_position(job).await
    }

    async fn commit_recording(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        recording: Recording<'_>,
    ) -> Result<u64> {
        self.commit_rows(files, rows, false, Some(recording)).await
    }

    fn version(&self) -> Option<i64> {
        Some(self.table.metadata().current_snapshot_id().unwrap_or(0))
    }

    async fn changes_since(&self, version: i64) -> Result<Option<TableChanges>> {
        let metadata = self.table.metadata();
        let current = metadata.current_snapshot_id();
        let files_of = |snapshot: Option<i64>| async move {
            match snapshot {
                None | Some(0) => Ok(Some(HashMap::new())),
                Some(id) if metadata.snapshot_by_id(id).is_none() => Ok(None),
                Some(id) => self.live_data_files(id).await,
            }
        };
        // An expired version, or delete files (another writer's merge-on-read) that are
        // not followed here: the caller starts over from the whole table.
        let (Some(before), Some(after)) =
            (files_of(Some(version)).await?, files_of(current).await?)
        else {
            return Ok(None);
        };
        // Version 0 (no snapshot yet) reads an empty selection of the loaded snapshot.
        let read = |snapshot: Option<i64>,
                    files: HashSet<String>|
         -> Result<Arc<dyn TableProvider>> {
            let snapshot = snapshot.filter(|id| *id != 0).or(current);
            let scan =
                PathScan::with_columns(self.table.clone(), snapshot, Some(Arc::new(files)), false)?;
            Ok(Arc::new(scan))
        };
        let only_in = |these: &HashMap<String, u64>, those: &HashMap<String, u64>| {
            these
                .iter()
                .filter(|(path, _)| !those.contains_key(*path))
                .map(|(path, bytes)| (path.clone(), *bytes))
                .collect::<HashMap<String, u64>>()
        };
        let added = only_in(&after, &before);
        let removed = only_in(&before, &after);
        let size = |files: &HashMap<String, u64>| files.values().sum::<u64>();
        let paths = |files: HashMap<String, u64>| files.into_keys().collect::<HashSet<String>>();
        Ok(Some(TableChanges {
            appends_only: removed.is_empty(),
            changed_bytes: size(&added) + size(&removed),
            bytes: size(&after),
            added: read(current, paths(added))?,
            removed: read(Some(version), paths(removed))?,
            before: read(Some(version), paths(before))?,
        }))
    }

    async fn files(&self) -> Result<Vec<DataFileInfo>> {
        let metadata = self.table.metadata();
        let Some(snapshot) = metadata.current_snapshot() else {
            return Ok(Vec::new());
        };
        let file_io = self.table.file_io();
        let mut files = Vec::new();
        for manifest in manifest_list(file_io, metadata, snapshot).await?.entries() {
            if manifest.content != ManifestContentType::Data {
                continue;
            }
            let spec = manifest.partition_spec_id;
            let manifest = manifest
                .load_manifest(file_io)
                .await
                .map_err(format_error)?;
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                let file = entry.data_file();
                files.push(DataFileInfo {
                    path: entry.file_path().to_string(),
                    bytes: file.file_size_in_bytes(),
                    partition: format!("{spec}:{:?}", file.partition()),
                });
            }
        }
        Ok(files)
    }
}

impl IcebergRows {
    /// The data files live in `snapshot`, with their sizes; `None` when it has delete
    /// files.
    async fn live_data_files(&self, snapshot: i64) -> Result<Option<HashMap<String, u64>>> {
        let metadata = self.table.metadata();
        let Some(snapshot) = metadata.snapshot_by_id(snapshot) else {
            return Ok(Some(HashMap::new()));
        };
        let file_io = self.table.file_io();
        let mut files = HashMap::new();
        for manifest in manifest_list(file_io, metadata, snapshot).await?.entries() {
            if manifest.content != ManifestContentType::Data {
                return Ok(None);
            }
            let manifest = manifest
                .load_manifest(file_io)
                .await
                .map_err(format_error)?;
            for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                let bytes = entry.data_file().file_size_in_bytes();
                files.insert(entry.file_path().to_string(), bytes);
            }
        }
        Ok(Some(files))
    }

    /// Writes `rows` and commits them in place of `files`: a `replace` snapshot when
    /// `keeps_rows` (compaction), else `append`, `overwrite` or `delete`; with the position
    /// of an ingestion job when `recording`. Lost races with other writers are retried on
    /// the newest snapshot.
    async fn commit_rows(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        keeps_rows: bool,
        recording: Option<Recording<'_>>,
    ) -> Result<u64> {
        let base = self.table.metadata();
        check_write_paths(base, None).map_err(|message| TableError::Storage { message })?;
        let (added, written) = write_rows(&self.table, rows).await?;
        let removed: HashSet<String> = files.into_iter().collect();
        if removed.is_empty() && added.is_empty() && recording.is_none() {
            return Ok(0);
        }
        let ident = self.table.identifier();
        let mut attempt = 0;
        loop {
            let current = self
                .format
                .current(ident)
                .await
                .map_err(TableError::from)?
                .metadata;
            if let Some(recording) = &recording {
                recording.check_iceberg(&current, ident)?;
            }
            // The new files follow the schema and partitioning they were written with.
            if current.current_schema_id() != base.current_schema_id()
                || current.default_partition_spec_id() != base.default_partition_spec_id()
            {
                return Err(conflict(format!(
                    "Table '{ident}' was altered while the statement ran"
                )));
            }
            if !removed.is_empty() && deletes_since(&current, base.current_snapshot_id()) {
                return Err(conflict(
                    "Another statement deleted rows of the table while this one ran; run it \
                     again",
                ));
            }
            let positions: Vec<(String, String)> = recording
                .iter()
                .map(|r| (r.job.to_string(), r.position.to_string()))
                .collect();
            let (snapshot, requirements) = overwrite_snapshot(
                &self.format,
                &current,
                &removed,
                &added,
                keeps_rows,
                &positions,
            )
            .await?;
            let change = TableChange {
                ident: ident.clone(),
                requirements,
                updates: made_current(snapshot),
            };
            match self.format.commit_changes(vec![change]).await {
                Ok(_) => {
                    crate::commits::committed("iceberg");
                    return Ok(written);
                }
                Err(CommitError::Conflict(_)) if attempt < self.format.retry.retries => {
                    crate::commits::retried("iceberg");
                    attempt += 1;
                    self.format.retry.wait(attempt).await;
                }
                Err(CommitError::Conflict(message)) => {
                    crate::commits::conflicted("iceberg");
                    return Err(conflict(message));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

pub(super) fn datafusion_error(e: DataFusionError) -> TableError {
    crate::datafusion_error("Iceberg", e)
}

/// Whether a snapshot committed after `base` added delete files (another engine's
/// merge-on-read DELETE): rows they delete from a file this statement rewrote would come
/// back with the rewrite.
fn deletes_since(current: &TableMetadata, base: Option<i64>) -> bool {
    let mut snapshot = current.current_snapshot();
    while let Some(s) = snapshot {
        if Some(s.snapshot_id()) == base {
            return false;
        }
        // Writers leave out the figures that are zero.
        let added = s
            .summary()
            .additional_properties
            .get("added-delete-files")
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if added > 0 {
            return true;
        }
        snapshot = s
            .parent_snapshot_id()
            .and_then(|id| current.snapshot_by_id(id));
    }
    // The base is gone from the history (expired or rolled back): nothing can be known.
    base.is_some()
}

/// The next snapshot of `current`: its manifests with the entries of `removed` marked
/// deleted (manifests without any kept as they are, those with no live file left out),
/// plus one manifest of `added`; and the requirements under which it may be committed
/// (`main` still at `current`'s snapshot). A compaction (`keeps_rows`) also merges the
/// live entries of every data manifest into one manifest per partition spec, so that
/// manifests do not pile up under frequent appends. The snapshot carries the ingestion
/// positions of `current`'s (see `ingest.rs`), with `positions` set over them.
pub(super) async fn overwrite_snapshot(
    format: &IcebergFormat,
    current: &TableMetadata,
    removed: &HashSet<String>,
    added: &[DataFile],
    keeps_rows: bool,
    positions: &[(String, String)],
) -> Result<(Snapshot, Vec<TableRequirement>)> {
    let file_io = format.file_io();
    let snapshot_id = unique_snapshot_id(current);
    let sequence_number = current.next_sequence_number();
    let commit = uuid::Uuid::new_v4();
    let schema = current.current_schema().clone();
    let mut summary = SnapshotSummaryCollector::default();
    let mut manifests: Vec<ManifestFile> = Vec::new();
    let mut found = 0usize;
    let mut counter = 0usize;
    let mut manifest_path = || {
        counter += 1;
        format!(
            "{}/metadata/{commit}-m{counter}.{}",
            current.location(),
            DataFileFormat::Avro
        )
    };
    // A compaction's merged manifests, by partition spec id.
    let mut merged: std::collections::BTreeMap<i32, iceberg::spec::ManifestWriter> =
        std::collections::BTreeMap::new();
    if let Some(parent) = current.current_snapshot() {
        let list = manifest_list(file_io, current, parent).await?;
        for manifest in list.entries() {
            if manifest.content != ManifestContentType::Data {
                manifests.push(manifest.clone());
                continue;
            }
            // Only deletions of earlier snapshots: nothing a reader of this one needs.
            if manifest.added_files_count == Some(0) && manifest.existing_files_count == Some(0) {
                continue;
            }
            if removed.is_empty() && !keeps_rows {
                manifests.push(manifest.clone());
                continue;
            }
            let entries = manifest
                .load_manifest(file_io)
                .await
                .map_err(format_error)?
                .entries()
                .to_vec();
            let touched = entries
                .iter()
                .any(|e| e.is_alive() && removed.contains(e.file_path()));
            if !touched && !keeps_rows {
                manifests.push(manifest.clone());
                continue;
            }
            let spec = current
                .partition_spec_by_id(manifest.partition_spec_id)
                .ok_or_else(|| TableError::Storage {
                    message: format!(
                        "Manifest {} names an unknown partition spec",
                        manifest.manifest_path
                    ),
                })?
                .clone();
            let mut own = None;
            let writer = if keeps_rows {
                match merged.entry(manifest.partition_spec_id) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => e.insert(data_manifest(
                        file_io,
                        current,
                        &manifest_path(),
                        snapshot_id,
                        &spec,
                    )?),
                }
            } else {
                own.insert(data_manifest(
                    file_io,
                    current,
                    &manifest_path(),
                    snapshot_id,
                    &spec,
                )?)
            };
            for entry in entries {
                if entry.status() == ManifestStatus::Deleted {
                    continue;
                }
                let (Some(data_sequence), file_sequence) =
                    (entry.sequence_number(), entry.file_sequence_number)
                else {
                    return Err(TableError::Storage {
                        message: format!("Data file {} has no sequence number", entry.file_path()),
                    });
                };
                let data_file = entry.data_file().clone();
                if removed.contains(entry.file_path()) {
                    found += 1;
                    summary.remove_file(&data_file, schema.clone(), spec.clone());
                    writer
                        .add_delete_file(data_file, data_sequence, file_sequence)
                        .map_err(format_error)?;
                } else {
                    let added_by = entry.snapshot_id().unwrap_or(manifest.added_snapshot_id);
                    writer
                        .add_existing_file(data_file, added_by, data_sequence, file_sequence)
                        .map_err(format_error)?;
                }
            }
            if let Some(writer) = own {
                manifests.push(writer.write_manifest_file().await.map_err(format_error)?);
            }
        }
    }
    for writer in merged.into_values() {
        manifests.push(writer.write_manifest_file().await.map_err(format_error)?);
    }
    if found != removed.len() {
        return Err(conflict(
            "Another statement removed or rewrote rows of the table while this one ran; \
             run it again",
        ));
    }
    if !added.is_empty() {
        let spec = current.default_partition_spec().clone();
        let mut writer = data_manifest(file_io, current, &manifest_path(), snapshot_id, &spec)?;
        for file in added {
            summary.add_file(file, schema.clone(), spec.clone());
            writer
                .add_file(file.clone(), sequence_number)
                .map_err(format_error)?;
        }
        manifests.push(writer.write_manifest_file().await.map_err(format_error)?);
    }

    let list_path = format!(
        "{}/metadata/snap-{snapshot_id}-0-{commit}.{}",
        current.location(),
        DataFileFormat::Avro
    );
    let output = file_io
        .new_output(list_path.clone())
        .map_err(format_error)?
        .writer()
        .await
        .map_err(format_error)?;
    let parent_id = current.current_snapshot_id();
    let mut list = match current.format_version() {
        FormatVersion::V1 => ManifestListWriter::v1(output, snapshot_id, parent_id),
        _ => ManifestListWriter::v2(output, snapshot_id, parent_id, sequence_number),
    };
    list.add_manifests(manifests.into_iter())
        .map_err(format_error)?;
    list.close().await.map_err(format_error)?;

    let operation = if keeps_rows {
        Operation::Replace
    } else if removed.is_empty() {
        Operation::Append
    } else if added.is_empty() {
        Operation::Delete
    } else {
        Operation::Overwrite
    };
    let mut properties = with_totals(
        summary.build(),
        current.current_snapshot().map(|s| s.summary()),
    );
    super::ingest::carry_positions(current, &mut properties, positions);
    let snapshot = Snapshot::builder()
        .with_manifest_list(list_path)
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(parent_id)
        .with_sequence_number(sequence_number)
        .with_summary(Summary {
            operation,
            additional_properties: properties,
        })
        .with_schema_id(current.current_schema_id())
        .with_timestamp_ms(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        )
        .build();
    let mut requirements = main_unmoved(current);
    requirements.extend([
        TableRequirement::CurrentSchemaIdMatch {
            current_schema_id: current.current_schema_id(),
        },
        TableRequirement::DefaultSpecIdMatch {
            default_spec_id: current.default_partition_spec_id(),
        },
    ]);
    Ok((snapshot, requirements))
}

/// Writes `rows` as new data files of `table`'s current schema and default spec, without
/// committing them; answers the files and how many rows they hold.
pub(super) async fn write_rows(
    table: &Table,
    mut rows: SendableRecordBatchStream,
) -> Result<(Vec<DataFile>, u64)> {
    let mut writer = TableWriter::try_new(table).map_err(format_error)?;
    let mut written = 0u64;
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(datafusion_error)?;
        written += batch.num_rows() as u64;
        writer.write(batch).await.map_err(datafusion_error)?;
    }
    Ok((writer.close().await.map_err(format_error)?, written))
}

/// The updates that add `snapshot` and make it the head of `main`.
pub(super) fn made_current(snapshot: Snapshot) -> Vec<TableUpdate> {
    let reference = SnapshotReference::new(
        snapshot.snapshot_id(),
        SnapshotRetention::branch(None, None, None),
    );
    vec![
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: MAIN_BRANCH.to_string(),
            reference,
        },
    ]
}

/// The manifest list of `snapshot` of the table `metadata` describes.
async fn manifest_list(
    file_io: &iceberg::io::FileIO,
    metadata: &TableMetadata,
    snapshot: &Snapshot,
) -> Result<ManifestList> {
    let bytes = file_io
        .new_input(snapshot.manifest_list())
        .map_err(format_error)?
        .read()
        .await
        .map_err(format_error)?;
    ManifestList::parse_with_version(&bytes, metadata.format_version()).map_err(format_error)
}

/// A writer of a data manifest of the snapshot `snapshot_id` at `path`, for files of the
/// partition spec `spec`.
fn data_manifest(
    file_io: &iceberg::io::FileIO,
    metadata: &TableMetadata,
    path: &str,
    snapshot_id: i64,
    spec: &iceberg::spec::PartitionSpecRef,
) -> Result<iceberg::spec::ManifestWriter> {
    let output = file_io.new_output(path).map_err(format_error)?;
    let builder = ManifestWriterBuilder::new(
        output,
        Some(snapshot_id),
        metadata.current_schema().clone(),
        spec.as_ref().clone(),
    );
    Ok(match metadata.format_version() {
        FormatVersion::V1 => builder.build_v1(),
        _ => builder.build_v2_data(),
    })
}

/// A snapshot id no snapshot of the table has: positive, random.
fn unique_snapshot_id(metadata: &TableMetadata) -> i64 {
    loop {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((high ^ low) >> 1) as i64;
        if id != 0 && metadata.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

/// The summary's `total-*` figures: the previous snapshot's plus what this one added,
/// minus what it removed (Iceberg's snapshot summary fields).
fn with_totals(
    mut properties: HashMap<String, String>,
    previous: Option<&Summary>,
) -> HashMap<String, String> {
    const TOTALS: &[(&str, &str, &str)] = &[
        ("total-data-files", "added-data-files", "deleted-data-files"),
        ("total-records", "added-records", "deleted-records"),
        ("total-files-size", "added-files-size", "removed-files-size"),
        (
            "total-delete-files",
            "added-delete-files",
            "removed-delete-files",
        ),
        (
            "total-position-deletes",
            "added-position-deletes",
            "removed-position-deletes",
        ),
        (
            "total-equality-deletes",
            "added-equality-deletes",
            "removed-equality-deletes",
        ),
    ];
    let figure = |map: &HashMap<String, String>, key: &str| -> Option<i64> {
        map.get(key).and_then(|v| v.parse().ok())
    };
    for (total, added, removed) in TOTALS {
        let before = match previous {
            None => Some(0),
            Some(summary) => figure(&summary.additional_properties, total),
        };
        // A previous snapshot without the total leaves it unknown, as Iceberg does.
        if let Some(before) = before {
            let value = before + figure(&properties, added).unwrap_or(0)
                - figure(&properties, removed).unwrap_or(0);
            properties.insert(total.to_string(), value.max(0).to_string());
        }
    }
    properties
}

/// One Iceberg snapshot's rows with the data file of each as `$path` and its place there
/// as `$position` (unless `hidden`), optionally only those of some files. Columns are the
/// table's current ones, found in the snapshot by field id: iceberg-rust reads a snapshot
/// with the schema it was written with, so a column renamed or widened since is read
/// under its old name and type and cast, and one added since is NULL.
#[derive(Debug)]
pub(crate) struct PathScan {
    table: Table,
    /// The snapshot read; the current one when `None`.
    snapshot: Option<i64>,
    files: Option<Arc<HashSet<String>>>,
    /// The table's columns as the engine plans with them, then `$path` and `$position`.
    schema: SchemaRef,
    /// The same columns as iceberg-rust reads them (nested fields with their ids).
    read_schema: SchemaRef,
    /// Each current column's name in the snapshot's schema; `None` when added since.
    snapshot_names: Vec<Option<String>>,
    /// Whether each current column has the snapshot's name and type, so that a filter on
    /// it can prune the snapshot's files.
    prunable: Vec<bool>,
}

impl PathScan {
    fn try_new(table: Table, files: Option<Arc<HashSet<String>>>) -> Result<Self> {
        Self::with_columns(table, None, files, true)
    }

    /// The current snapshot's rows in the current schema, without `$path`/`$position`.
    pub(crate) fn current(table: Table) -> Result<Self> {
        Self::with_columns(table, None, None, false)
    }

    /// The rows of `snapshot` (the current one when `None`), of `files` only when given,
    /// in the current columns; with `$path` and `$position` when `added_columns`.
    fn with_columns(
        table: Table,
        snapshot: Option<i64>,
        files: Option<Arc<HashSet<String>>>,
        added_columns: bool,
    ) -> Result<Self> {
        let metadata = table.metadata();
        let current = metadata.current_schema();
        let arrow = schema_to_arrow_schema(current).map_err(format_error)?;
        let read = match snapshot {
            Some(id) => metadata.snapshot_by_id(id).cloned(),
            None => metadata.current_snapshot().cloned(),
        };
        let snapshot_schema = match read {
            Some(snapshot) => snapshot.schema(metadata).map_err(format_error)?,
            None => current.clone(),
        };
        // Each column's name in the snapshot, and whether it is unchanged there.
        let (snapshot_names, prunable) = current
            .as_struct()
            .fields()
            .iter()
            .map(|field| match snapshot_schema.field_by_id(field.id) {
                Some(old) => (
                    Some(old.name.clone()),
                    old.name == field.name && old.field_type == field.field_type,
                ),
                None => (None, false),
            })
            .unzip();
        let added: Vec<Field> = if added_columns {
            vec![
                Field::new(PATH_COLUMN, DataType::Utf8, false),
                Field::new(POSITION_COLUMN, DataType::Int64, false),
            ]
        } else {
            Vec::new()
        };
        let plain: Vec<Field> = arrow
            .fields()
            .iter()
            .map(|f| planned_field(f))
            .chain(added.clone())
            .collect();
        let read: Vec<Field> = arrow
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .chain(added)
            .collect();
        Ok(Self {
            table,
            snapshot,
            files,
            schema: Arc::new(Schema::new(plain)),
            read_schema: Arc::new(Schema::new(read)),
            snapshot_names,
            prunable,
        })
    }

    /// Whether `filter` can prune the snapshot's files: it reads only columns the snapshot
    /// has unchanged, and Iceberg can evaluate it.
    fn prunes(&self, filter: &Expr) -> bool {
        filter.column_refs().iter().all(|column| {
            self.schema
                .index_of(&column.name)
                .is_ok_and(|i| self.prunable.get(i) == Some(&true))
        }) && convert_filters_to_predicate(std::slice::from_ref(filter)).is_some()
    }
}

/// Where an output column of [`PathScanExec`] comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The reader's column at this position.
    Read(usize),
    /// A column the snapshot does not have.
    Null,
    Path,
    Position,
}

#[async_trait]
impl TableProvider for PathScan {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| match self.prunes(filter) {
                true => TableProviderFilterPushDown::Inexact,
                false => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let output = project_schema(&self.read_schema, projection)?;
        let columns = self.snapshot_names.len();
        let indices: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.read_schema.fields().len()).collect(),
        };
        let mut names: Vec<String> = Vec::new();
        let sources: Vec<Source> = indices
            .iter()
            .map(|&i| match i.checked_sub(columns) {
                Some(0) => Source::Path,
                Some(_) => Source::Position,
                None => match &self.snapshot_names[i] {
                    Some(name) => {
                        names.push(name.clone());
                        Source::Read(names.len() - 1)
                    }
                    None => Source::Null,
                },
            })
            .collect();
        // The file column is always read: an empty projection still needs row counts.
        names.push(RESERVED_COL_NAME_FILE.to_string());
        let Some(snapshot) = self
            .snapshot
            .or_else(|| self.table.metadata().current_snapshot_id())
        else {
            return Ok(Arc::new(PathScanExec::new(
                self.table.clone(),
                Vec::new(),
                sources,
                output,
            )));
        };
        let mut scan = self.table.scan().snapshot_id(snapshot).select(names);
        let pruning: Vec<Expr> = filters.iter().filter(|f| self.prunes(f)).cloned().collect();
        if let Some(predicate) = convert_filters_to_predicate(&pruning) {
            scan = scan.with_filter(predicate);
        }
        let scan = scan.build().map_err(df_error)?;
        // A row's position counts every row of its file before it: files are pruned, but
        // no row of a file read is skipped when positions are asked for.
        let positions = sources.iter().any(|s| matches!(s, Source::Position));
        let tasks: Vec<FileScanTask> = scan
            .plan_files()
            .await
            .map_err(df_error)?
            .map_err(df_error)
            .try_filter(|task| {
                let keep = self
                    .files
                    .as_ref()
                    .is_none_or(|files| files.contains(task.data_file_path()));
                futures::future::ready(keep)
            })
            .map_ok(|mut task| {
                if positions {
                    task.predicate = None;
                }
                task
            })
            .try_collect()
            .await?;
        // Files spread over the session's partitions, the largest first.
        let partitions = state
            .config()
            .target_partitions()
            .clamp(1, tasks.len().max(1));
        let mut groups: Vec<(u64, Vec<FileScanTask>)> = vec![(0, Vec::new()); partitions];
        let mut tasks = tasks;
        tasks.sort_by_key(|t| std::cmp::Reverse(t.length));
        for task in tasks {
            let smallest = groups
                .iter_mut()
                .min_by_key(|(size, _)| *size)
                .expect("at least one partition");
            smallest.0 += task.length;
            smallest.1.push(task);
        }
        Ok(Arc::new(PathScanExec::new(
            self.table.clone(),
            groups.into_iter().map(|(_, tasks)| tasks).collect(),
            sources,
            output,
        )))
    }
}

/// Reads groups of planned Iceberg file tasks, one group per partition.
#[derive(Debug)]
struct PathScanExec {
    table: Table,
    groups: Vec<Vec<FileScanTask>>,
    sources: Vec<Source>,
    properties: Arc<PlanProperties>,
}

impl PathScanExec {
    fn new(
        table: Table,
        groups: Vec<Vec<FileScanTask>>,
        sources: Vec<Source>,
        output: SchemaRef,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(output),
            Partitioning::UnknownPartitioning(groups.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            table,
            groups,
            sources,
            properties,
        }
    }
}

impl DisplayAs for PathScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "IcebergPathScan: table={} files={}",
            self.table.identifier(),
            self.groups.iter().map(Vec::len).sum::<usize>()
        )
    }
}

impl ExecutionPlan for PathScanExec {
    fn name(&self) -> &str {
        "IcebergPathScan"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let schema = self.schema();
        let tasks = self.groups.get(partition).cloned().unwrap_or_default();
        if tasks.is_empty() {
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::empty(),
            )));
        }
        let reader = self.table.reader_builder().build();
        let stream = reader
            .read(futures::stream::iter(tasks.into_iter().map(Ok)).boxed())
            .map_err(df_error)?
            .stream();
        let sources = self.sources.clone();
        let output = schema.clone();
        // How many rows of each file came before: a row's position among the rows its
        // file holds in this snapshot (batches of one file arrive in order).
        let mut seen: HashMap<String, i64> = HashMap::new();
        let batches = stream.map(move |batch| {
            let batch = batch.map_err(df_error)?;
            // iceberg-rust puts the file column last (it was selected last).
            let file = cast(batch.column(batch.num_columns() - 1), &DataType::Utf8)?;
            let rows = batch.num_rows();
            let first = match file.as_string_opt::<i32>() {
                Some(paths) if rows > 0 => {
                    let count = seen.entry(paths.value(0).to_string()).or_insert(0);
                    let first = *count;
                    *count += rows as i64;
                    first
                }
                _ => 0,
            };
            let mut columns = Vec::with_capacity(sources.len());
            for (source, field) in sources.iter().zip(output.fields()) {
                columns.push(match source {
                    Source::Path => file.clone(),
                    Source::Position => {
                        Arc::new(Int64Array::from_iter_values(first..first + rows as i64))
                            as ArrayRef
                    }
                    Source::Null => new_null_array(field.data_type(), rows),
                    Source::Read(k) => {
                        let column = batch.column(*k);
                        // A column widened since the snapshot was written.
                        if same_values(column.data_type(), field.data_type()) {
                            column.clone()
                        } else {
                            cast(column, field.data_type())?
                        }
                    }
                });
            }
            let fields: Vec<Field> = output
                .fields()
                .iter()
                .zip(&columns)
                .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
                .collect();
            Ok(RecordBatch::try_new_with_options(
                Arc::new(Schema::new(fields)),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(rows)),
            )?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// Whether two types hold the same values, nested fields' metadata aside.
fn same_values(a: &DataType, b: &DataType) -> bool {
    plain_type(a) == plain_type(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_what_was_added_and_take_what_was_removed() {
        let previous = Summary {
            operation: Operation::Append,
            additional_properties: HashMap::from([
                ("total-records".to_string(), "10".to_string()),
                ("total-data-files".to_string(), "2".to_string()),
            ]),
        };
        let now = with_totals(
            HashMap::from([
                ("added-records".to_string(), "3".to_string()),
                ("deleted-records".to_string(), "5".to_string()),
                ("deleted-data-files".to_string(), "1".to_string()),
                ("added-data-files".to_string(), "1".to_string()),
            ]),
            Some(&previous),
        );
        assert_eq!(now["total-records"], "8");
        assert_eq!(now["total-data-files"], "2");
        assert!(!now.contains_key("total-files-size"));
        let first = with_totals(HashMap::new(), None);
        assert_eq!(first["total-records"], "0");
    }
}
