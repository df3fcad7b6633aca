//! Row-level change of Delta Lake tables, copy-on-write: a scan of the loaded version with
//! each row's data file (`$path`) and place in it (`$position`), and a commit that removes
//! the files a statement touched and adds the rows they keep or gain, as one `DELETE`,
//! `UPDATE`, `MERGE` or (changing no row) `OPTIMIZE` in the table's log.
//!
//! deltalake's scan names each row's file (its file column) but cannot be limited to some
//! files, so a pass over some files reads the version and keeps those files' rows. Its
//! rows come a file at a time in file order within each of its partitions, and
//! [`NamedScan`] keeps it away from the physical optimizer (which would split a file
//! between partitions), so counting rows per file gives positions that name the same row
//! in every pass.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Builder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::execution::SendableRecordBatchStream;
use deltalake::kernel::transaction::{CommitProperties, TransactionError};
use deltalake::kernel::{Action, EagerSnapshot, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use percent_encoding::percent_decode_str;

use super::{commit, delta_error, recheck, write_files, FORMAT};
use crate::row_names::{NamedScan, NamerFactory, RowNamer};
use crate::{
    DataFileInfo, LocationPolicy, Recording, Result, RowChange, RowLevelTable, TableError,
    PATH_COLUMN,
};

fn from_datafusion(e: DataFusionError) -> TableError {
    crate::datafusion_error(FORMAT, e)
}

/// One loaded version of a Delta table, changed row by row.
#[derive(Debug)]
pub(super) struct DeltaRows {
    pub(super) table: DeltaTable,
    pub(super) retries: usize,
    pub(super) location: String,
    pub(super) guard: Option<LocationPolicy>,
}

/// A data file's name in `$path`: its URL, percent-decoded (as the log's paths are read).
fn file_key(url: &str) -> String {
    percent_decode_str(url).decode_utf8_lossy().into_owned()
}

/// Whether a commit lost to another writer's change.
pub(super) fn is_conflict(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(_)
                | TransactionError::MaxCommitAttempts(_)
                | TransactionError::VersionAlreadyExists(_),
        }
    )
}

/// A commit that lost to another writer's change of the same files.
fn commit_error(e: DeltaTableError) -> TableError {
    if is_conflict(&e) {
        return TableError::Conflict {
            message: format!("Another statement changed the table while this one ran: {e}"),
        };
    }
    delta_error(e)
}

impl DeltaRows {
    /// The remove actions of `files` in `table`'s loaded version; `None` when one of them
    /// is not there.
    async fn removals(
        table: &DeltaTable,
        files: &HashSet<String>,
        keeps_rows: bool,
    ) -> Result<Option<Vec<Action>>> {
        let removes: Vec<Action> = views(table)
            .await?
            .into_iter()
            .filter(|(key, _)| files.contains(key))
            .map(|(_, view)| Action::Remove(view.remove_action(!keeps_rows)))
            .collect();
        Ok((removes.len() == files.len()).then_some(removes))
    }

    /// Writes `rows` and commits them in place of `files` as `operation`; `keeps_rows`
    /// marks the commit as changing no data (compaction). With a `recording`, the commit
    /// is made on the newest version, provided it still records what the job expects, and
    /// made again on a newer one when another writer wins the race.
    async fn commit_rows(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        operation: DeltaOperation,
        keeps_rows: bool,
        recording: Option<Recording<'_>>,
    ) -> Result<u64> {
        let wanted: HashSet<String> = files.into_iter().collect();
        let mut table = self.table.clone();
        let mut sequence = 0;
        if let Some(recording) = &recording {
            table.update_state().await.map_err(delta_error)?;
            sequence = recording.check_delta(&table).await?;
        }
        let Some(mut removes) = Self::removals(&table, &wanted, keeps_rows).await? else {
            if let Some(recording) = &recording {
                return Err(recording.files_gone());
            }
            // The statement's scan read this same version: a file it named must be here.
            return Err(TableError::Format {
                format: FORMAT,
                source: format!(
                    "the statement named {} data files the loaded version does not hold all of",
                    wanted.len()
                )
                .into(),
            });
        };
        let mut snapshot = snapshot_of(&table)?;
        let log_store = table.log_store();
        let operation_id = uuid::Uuid::new_v4();
        recheck(self.guard.as_ref(), &self.location).map_err(from_datafusion)?;
        let (adds, written) = write_files(&log_store, &snapshot, rows, operation_id)
            .await
            .map_err(from_datafusion)?;
        if removes.is_empty() && adds.is_empty() && recording.is_none() {
            return Ok(0);
        }
        let adds: Vec<Action> = adds
            .into_iter()
            .map(|mut add| {
                add.data_change = !keeps_rows;
                Action::Add(add)
            })
            .collect();
        let mut attempt = 0;
        loop {
            let properties = recording
                .as_ref()
                .map_or_else(CommitProperties::default, |r| r.properties(sequence + 1))
                .with_max_retries(self.retries);
            let actions = removes.iter().chain(&adds).cloned().collect();
            recheck(self.guard.as_ref(), &self.location).map_err(from_datafusion)?;
            let committed = commit(
                &snapshot,
                log_store.clone(),
                actions,
                operation.clone(),
                operation_id,
                properties,
            )
            .await;
            match (committed, &recording) {
                (Ok(()), _) => {
                    crate::commits::committed("delta");
                    return Ok(written);
                }
                // deltalake counts every file of the version as read: a compaction that
                // won the race fails even an append. Once more on the newest version.
                (Err(e), Some(recording)) if is_conflict(&e) && attempt < self.retries => {
                    crate::commits::retried("delta");
                    attempt += 1;
                    table.update_state().await.map_err(delta_error)?;
                    sequence = recording.check_delta(&table).await?;
                    removes = Self::removals(&table, &wanted, keeps_rows)
                        .await?
                        .ok_or_else(|| recording.files_gone())?;
                    snapshot = snapshot_of(&table)?;
                }
                (Err(e), _) => {
                    if is_conflict(&e) {
                        crate::commits::conflicted("delta");
                    }
                    return Err(commit_error(e));
                }
            }
        }
    }
}

fn snapshot_of(table: &DeltaTable) -> Result<EagerSnapshot> {
    Ok(table.snapshot().map_err(delta_error)?.snapshot().clone())
}

/// A version's files: each as its `$path` with the log's file view.
async fn views(table: &DeltaTable) -> Result<Vec<(String, deltalake::kernel::LogicalFileView)>> {
    let snapshot = snapshot_of(table)?;
    let root = file_key(snapshot.table_configuration().table_root().as_str());
    let log_store = table.log_store();
    let views: Vec<_> = snapshot
        .file_views(log_store.as_ref(), None)
        .try_collect()
        .await
        .map_err(delta_error)?;
    Ok(views
        .into_iter()
        .map(|view| (format!("{root}{}", view.path()), view))
        .collect())
}

/// The application id of a job's `txn` actions and of its `commitInfo` entry.
fn app_id(job: &str) -> String {
    format!("aichemy.ingest.{job}")
}

/// Ingestion commits. Delta Lake's `txn` action holds a number per application, kept in
/// checkpoints and checked by the conflict checker (two commits with the same application
/// id conflict), so each commit of a job carries a `txn` with the count of its commits,
/// and the `commitInfo` of the same commit holds that count with the position text
/// (`{"sequence": n, "position": "…"}` under the application id).
impl Recording<'_> {
    /// The count of the job's commits `table` records; fails when its position is not the
    /// expected one (another node of the job committed meanwhile).
    async fn check_delta(&self, table: &DeltaTable) -> Result<i64> {
        let recorded = recorded(table, self.job).await?;
        if recorded.as_ref().map(|(_, p)| p.as_str()) != self.expected {
            return Err(self.moved_on(table.table_url()));
        }
        Ok(recorded.map_or(0, |(sequence, _)| sequence))
    }

    fn files_gone(&self) -> TableError {
        TableError::Conflict {
            message: format!(
                "Ingestion '{}': another commit rewrote the files it replaces",
                self.job
            ),
        }
    }

    fn properties(&self, sequence: i64) -> CommitProperties {
        let id = app_id(self.job);
        CommitProperties::default()
            .with_application_transaction(Transaction::new(&id, sequence))
            .with_metadata([(
                id,
                serde_json::json!({ "sequence": sequence, "position": self.position }),
            )])
    }
}

/// The count of commits and the position `job` recorded in `table`'s loaded version: the
/// `txn` count, and the position from the newest commit that holds the same count.
async fn recorded(table: &DeltaTable, job: &str) -> Result<Option<(i64, String)>> {
    let id = app_id(job);
    let state = table.snapshot().map_err(delta_error)?;
    let log_store = table.log_store();
    let Some(sequence) = state
        .transaction_version(log_store.as_ref(), &id)
        .await
        .map_err(delta_error)?
    else {
        return Ok(None);
    };
    let mut version = Some(state.version());
    while let Some(v) = version {
        let Some(entry) = log_store.read_commit_entry(v).await.map_err(delta_error)? else {
            break;
        };
        for line in entry.split(|b| *b == b'\n') {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let Some(info) = action.get("commitInfo").and_then(|c| c.get(&id)) else {
                continue;
            };
            if info.get("sequence").and_then(|s| s.as_i64()) == Some(sequence) {
                if let Some(position) = info.get("position").and_then(|p| p.as_str()) {
                    return Ok(Some((sequence, position.to_string())));
                }
            }
        }
        version = v.checked_sub(1);
    }
    Err(TableError::Format {
        format: FORMAT,
        source: format!(
            "the log counts {sequence} commits of ingestion '{job}' but no longer holds the \
             last one, which held its position (removed by log cleanup); drop and declare \
             the ingestion again with a start position"
        )
        .into(),
    })
}

#[async_trait]
impl RowLevelTable for DeltaRows {
    fn version(&self) -> Option<i64> {
        self.table.version().and_then(|v| i64::try_from(v).ok())
    }

    async fn scan(&self, files: Option<Arc<HashSet<String>>>) -> Result<Arc<dyn TableProvider>> {
        let inner = self
            .table
            .table_provider()
            .with_file_column(PATH_COLUMN)
            .await
            .map_err(delta_error)?;
        let namer: NamerFactory = Arc::new(|| Box::new(FileCounter::default()));
        Ok(Arc::new(NamedScan::new(FORMAT, inner, namer, files)))
    }

    async fn replace(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        change: RowChange,
    ) -> Result<u64> {
        let operation = match change {
            RowChange::Delete => DeltaOperation::Delete { predicate: None },
            RowChange::Update => DeltaOperation::Update { predicate: None },
            RowChange::Merge => DeltaOperation::Merge {
                predicate: None,
                merge_predicate: None,
                matched_predicates: Vec::new(),
                not_matched_predicates: Vec::new(),
                not_matched_by_source_predicates: Vec::new(),
            },
        };
        self.commit_rows(files, rows, operation, false, None).await
    }

    async fn rewrite(&self, files: Vec<String>, rows: SendableRecordBatchStream) -> Result<u64> {
        let snapshot = snapshot_of(&self.table)?;
        let target_size = snapshot
            .table_configuration()
            .table_properties()
            .target_file_size
            .map_or(104_857_600, |size| size.get() as i64);
        let operation = DeltaOperation::Optimize {
            predicate: None,
            target_size,
        };
        self.commit_rows(files, rows, operation, true, None).await
    }

    async fn recorded_position(&self, job: &str) -> Result<Option<String>> {
        let mut table = self.table.clone();
        table.update_state().await.map_err(delta_error)?;
        Ok(recorded(&table, job).await?.map(|(_, position)| position))
    }

    async fn commit_recording(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        recording: Recording<'_>,
    ) -> Result<u64> {
        let operation = if files.is_empty() {
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            }
        } else {
            DeltaOperation::Merge {
                predicate: None,
                merge_predicate: None,
                matched_predicates: Vec::new(),
                not_matched_predicates: Vec::new(),
                not_matched_by_source_predicates: Vec::new(),
            }
        };
        self.commit_rows(files, rows, operation, false, Some(recording))
            .await
    }

    async fn files(&self) -> Result<Vec<DataFileInfo>> {
        Ok(views(&self.table)
            .await?
            .into_iter()
            .map(|(path, view)| DataFileInfo {
                path,
                bytes: view.size().max(0) as u64,
                partition: format!("{:?}", view.partition_values()),
            })
            .collect())
    }
}

/// Names Delta rows by their file (deltalake's file column) and their place in it,
/// counting each file's rows as they come.
#[derive(Default)]
struct FileCounter {
    /// Rows seen so far per file (by `$path`).
    seen: HashMap<String, i64>,
    /// Each file URL's `$path`.
    keys: HashMap<String, String>,
}

impl RowNamer for FileCounter {
    fn name(&mut self, file: &ArrayRef) -> DFResult<(ArrayRef, ArrayRef)> {
        let urls = cast(file, &DataType::Utf8)?;
        let urls = urls.as_string::<i32>();
        let rows = urls.len();
        let mut paths = StringBuilder::with_capacity(rows, rows * 64);
        let mut positions = Int64Builder::with_capacity(rows);
        let mut start = 0;
        while start < rows {
            if urls.is_null(start) {
                return Err(DataFusionError::Internal(format!(
                    "{FORMAT} scan gave a row without its file"
                )));
            }
            let url = urls.value(start);
            let mut end = start + 1;
            while end < rows && urls.is_valid(end) && urls.value(end) == url {
                end += 1;
            }
            let key = self
                .keys
                .entry(url.to_string())
                .or_insert_with(|| file_key(url));
            let first = self.seen.entry(key.clone()).or_insert(0);
            for position in *first..*first + (end - start) as i64 {
                paths.append_value(&*key);
                positions.append_value(position);
            }
            *first += (end - start) as i64;
            start = end;
        }
        Ok((Arc::new(paths.finish()), Arc::new(positions.finish())))
    }
}
