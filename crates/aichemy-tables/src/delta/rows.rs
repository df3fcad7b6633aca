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
use deltalake::kernel::transaction::TransactionError;
use deltalake::kernel::{Action, EagerSnapshot};
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use percent_encoding::percent_decode_str;

use super::{commit, delta_error, recheck, write_files, FORMAT};
use crate::row_names::{NamedScan, NamerFactory, RowNamer};
use crate::{
    DataFileInfo, LocationPolicy, Result, RowChange, RowLevelTable, TableError, PATH_COLUMN,
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
    fn snapshot(&self) -> Result<EagerSnapshot> {
        Ok(self
            .table
            .snapshot()
            .map_err(delta_error)?
            .snapshot()
            .clone())
    }

    /// The loaded version's files: each as its `$path` with the log's file view.
    async fn views(&self) -> Result<Vec<(String, deltalake::kernel::LogicalFileView)>> {
        let snapshot = self.snapshot()?;
        let root = file_key(snapshot.table_configuration().table_root().as_str());
        let log_store = self.table.log_store();
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

    /// Writes `rows` and commits them in place of `files` as `operation`; `keeps_rows`
    /// marks the commit as changing no data (compaction).
    async fn commit_rows(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        operation: DeltaOperation,
        keeps_rows: bool,
    ) -> Result<u64> {
        let wanted: HashSet<String> = files.into_iter().collect();
        let removes: Vec<Action> = self
            .views()
            .await?
            .into_iter()
            .filter(|(key, _)| wanted.contains(key))
            .map(|(_, view)| Action::Remove(view.remove_action(!keeps_rows)))
            .collect();
        if removes.len() != wanted.len() {
            // The statement's scan read this same version: a file it named must be here.
            return Err(TableError::Format {
                format: FORMAT,
                source: format!(
                    "the statement named {} data files, the loaded version holds {} of them",
                    wanted.len(),
                    removes.len()
                )
                .into(),
            });
        }
        let snapshot = self.snapshot()?;
        let log_store = self.table.log_store();
        let operation_id = uuid::Uuid::new_v4();
        recheck(self.guard.as_ref(), &self.location).map_err(from_datafusion)?;
        let (adds, written) = write_files(&log_store, &snapshot, rows, operation_id)
            .await
            .map_err(from_datafusion)?;
        if removes.is_empty() && adds.is_empty() {
            return Ok(0);
        }
        let actions = removes
            .into_iter()
            .chain(adds.into_iter().map(|mut add| {
                add.data_change = !keeps_rows;
                Action::Add(add)
            }))
            .collect();
        recheck(self.guard.as_ref(), &self.location).map_err(from_datafusion)?;
        commit(
            &snapshot,
            log_store,
            actions,
            operation,
            operation_id,
            self.retries,
        )
        .await
        .map_err(commit_error)?;
        Ok(written)
    }
}

#[async_trait]
impl RowLevelTable for DeltaRows {
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
        self.commit_rows(files, rows, operation, false).await
    }

    async fn rewrite(&self, files: Vec<String>, rows: SendableRecordBatchStream) -> Result<u64> {
        let snapshot = self.snapshot()?;
        let target_size = snapshot
            .table_configuration()
            .table_properties()
            .target_file_size
            .map_or(104_857_600, |size| size.get() as i64);
        let operation = DeltaOperation::Optimize {
            predicate: None,
            target_size,
        };
        self.commit_rows(files, rows, operation, true).await
    }

    async fn files(&self) -> Result<Vec<DataFileInfo>> {
        Ok(self
            .views()
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
