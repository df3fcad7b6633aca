//! Row-level change of Lance datasets, copy-on-write by fragment: a scan of the loaded
//! version that names each row by its fragment (`$path`, the fragment id) and its offset
//! there (`$position`), both from Lance's row address; and one `Update` commit that removes
//! the fragments a statement touched and adds new ones with the rows they keep or gain.
//! Lance checks that commit against what other writers committed since the version was
//! loaded.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, AsArray, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use lance::dataset::transaction::{Operation, TransactionBuilder, UpdateMode};
use lance::dataset::{CommitBuilder, InsertBuilder, WriteDestination, WriteMode};
use lance::Dataset;

use super::{conforming, lance_error, write_params, LanceTable, FORMAT};
use crate::locations::recheck;
use crate::row_names::{NamedScan, NamerFactory, RowNamer};
use crate::{DataFileInfo, Recording, Result, RowChange, RowLevelTable, TableError};

/// Lance's row address column.
const ROW_ADDRESS: &str = "_rowaddr";

/// One loaded version of a Lance table, changed row by row.
#[derive(Debug)]
pub(super) struct LanceRows {
    table: LanceTable,
}

impl LanceRows {
    pub(super) fn new(table: &LanceTable) -> Self {
        Self {
            table: table.clone(),
        }
    }

    fn dataset(&self) -> Option<&Arc<Dataset>> {
        self.table.dataset.as_ref()
    }

    /// Writes `rows` as new fragments and commits them in place of the fragments `files`
    /// names, in one `Update` on the loaded version, or with a `recording` on the newest
    /// one, provided it still records what the job expects. Answers the rows written.
    async fn commit_rows(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        recording: Option<Recording<'_>>,
    ) -> Result<u64> {
        let mut dataset = match (self.dataset(), &recording) {
            (Some(dataset), _) => dataset.clone(),
            (None, None) => return Ok(0),
            // A job's first rows in a table it created.
            (None, Some(_)) => Arc::new(
                self.table
                    .dataset_or_create()
                    .await
                    .map_err(|e| crate::datafusion_error(FORMAT, e))?,
            ),
        };
        let mut properties = None;
        if let Some(recording) = &recording {
            let mut latest = Dataset::clone(&dataset);
            latest.checkout_latest().await.map_err(lance_error)?;
            if recorded(&latest, recording.job).await?.as_deref() != recording.expected {
                return Err(recording.moved_on(&self.table.location));
            }
            dataset = Arc::new(latest);
            properties = Some(Arc::new(HashMap::from([(
                key(recording.job),
                recording.position.to_string(),
            )])));
        }
        let removed_any = !files.is_empty();
        let removed = files
            .iter()
            .map(|file| {
                file.parse::<u64>().map_err(|_| TableError::Storage {
                    message: format!("Not a fragment of the Lance table: {file}"),
                })
            })
            .collect::<Result<Vec<u64>>>()?;
        recheck(self.table.guard.as_ref(), &self.table.location)
            .map_err(|message| TableError::Storage { message })?;
        let options = self.table.stores.options();
        let params = write_params(WriteMode::Append, options);
        let target: SchemaRef = Arc::new(Schema::from(dataset.schema()));
        // Lance cannot write an empty stream: peek whether any row comes.
        let mut rows = rows.peekable();
        let any = std::pin::Pin::new(&mut rows).peek().await.is_some();
        let mut written = 0;
        let new_fragments = if any {
            let stream = Box::pin(RecordBatchStreamAdapter::new(target.clone(), rows));
            let (stream, counted, failure) = conforming(stream, target);
            let transaction = InsertBuilder::new(WriteDestination::Dataset(dataset.clone()))
                .with_params(&params)
                .execute_uncommitted_stream(stream)
                .await
                .map_err(|e| match failure.lock().expect("not poisoned").take() {
                    Some(failed) => crate::datafusion_error(FORMAT, failed),
                    None => lance_error(e),
                })?;
            written = counted.load(Ordering::Relaxed);
            match transaction.operation {
                Operation::Append { fragments } => fragments,
                other => {
                    return Err(TableError::Storage {
                        message: format!("Lance wrote rows as {other} rather than new fragments"),
                    })
                }
            }
        } else {
            Vec::new()
        };
        let operation = Operation::Update {
            removed_fragment_ids: removed,
            updated_fragments: Vec::new(),
            new_fragments,
            fields_modified: Vec::new(),
            merged_generations: Vec::new(),
            fields_for_preserving_frag_bitmap: Vec::new(),
            update_mode: Some(UpdateMode::RewriteRows),
            inserted_rows_filter: None,
            updated_fragment_offsets: None,
        };
        // Lance drops a vector index once no fragment it covers is left; such an index
        // is built again after the commit.
        let indexes = match removed_any {
            true => super::search::vector_definitions(&dataset).await?,
            false => Vec::new(),
        };
        let transaction = TransactionBuilder::new(dataset.manifest.version, operation)
            .transaction_properties(properties)
            .build();
        // Lance counts attempts, the first one included.
        let mut commit = CommitBuilder::new(WriteDestination::Dataset(dataset))
            .with_max_retries(self.table.retry.retries.saturating_add(1));
        if let Some(store_params) = params.store_params {
            commit = commit.with_store_params(store_params);
        }
        let mut committed = commit.execute(transaction).await.map_err(|e| match e {
            lance::Error::CommitConflict { .. }
            | lance::Error::RetryableCommitConflict { .. }
            | lance::Error::IncompatibleTransaction { .. }
            | lance::Error::TooMuchWriteContention { .. } => {
                crate::commits::conflicted("lance");
                TableError::Conflict {
                    message: format!("Another statement changed the table while this one ran: {e}"),
                }
            }
            e => lance_error(e),
        })?;
        crate::commits::committed("lance");
        super::search::rebuild_lost(&mut committed, indexes).await?;
        Ok(written)
    }
}

// Ingestion commits. Lance keeps a transaction's properties with each version: a job's
// commit records its position under `aichemy.ingest.<job>`, and the job reads it back
// from the newest version whose transaction holds that key (other writers' commits, and
// this lakehouse's DELETE, UPDATE, MERGE and optimize, hold none). Lance rebases a commit
// over compatible ones that won the race, so the check that the newest version records
// what the job expects comes just before the commit rather than inside it: two nodes
// committing for the same job at the same moment (one that lost its lease a moment ago)
// could both succeed. Expiry keeps the newest version recording each job's position.

/// The transaction property prefix of ingestion positions.
const PREFIX: &str = "aichemy.ingest.";

fn key(job: &str) -> String {
    format!("{PREFIX}{job}")
}

/// The time (ms) of the oldest version that is the newest to record some job's position:
/// expiring it would lose where that job stands, so versions from it on are kept.
pub(super) async fn oldest_position_carrier(dataset: &Dataset) -> Result<Option<i64>> {
    let versions = dataset.versions().await.map_err(lance_error)?;
    let newest_first: Vec<(u64, i64)> = versions
        .iter()
        .rev()
        .map(|v| (v.version, v.timestamp.timestamp_millis()))
        .collect();
    let transactions: Vec<_> = futures::stream::iter(newest_first)
        .map(
            |(version, at)| async move { (at, dataset.read_transaction_by_version(version).await) },
        )
        .buffered(16)
        .collect()
        .await;
    let mut seen = HashSet::new();
    let mut oldest = None;
    for (at, transaction) in transactions {
        // A version another cleanup removed meanwhile holds nothing to keep.
        let Ok(Some(transaction)) = transaction else {
            continue;
        };
        for key in transaction
            .transaction_properties
            .iter()
            .flat_map(|p| p.keys())
        {
            if key.starts_with(PREFIX) && seen.insert(key.clone()) {
                oldest = Some(at);
            }
        }
    }
    Ok(oldest)
}

/// The position `job` recorded in `dataset`'s version or the newest one before it.
async fn recorded(dataset: &Dataset, job: &str) -> Result<Option<String>> {
    let key = key(job);
    let mut version = dataset.manifest.version;
    let mut current = dataset.clone();
    loop {
        let transaction = current.read_transaction().await.map_err(lance_error)?;
        if let Some(position) = transaction
            .and_then(|t| t.transaction_properties)
            .and_then(|properties| properties.get(&key).cloned())
        {
            return Ok(Some(position));
        }
        if version <= 1 {
            return Ok(None);
        }
        version -= 1;
        current = match dataset.checkout_version(version).await {
            Ok(older) => older,
            // Cleaned up: no older version holds anything.
            Err(
                lance::Error::DatasetNotFound { .. }
                | lance::Error::NotFound { .. }
                | lance::Error::VersionNotFound { .. },
            ) => return Ok(None),
            Err(e) => return Err(lance_error(e)),
        };
    }
}

/// Names Lance rows by their address: the fragment id above bit 32, the offset below.
struct Addresses;

impl RowNamer for Addresses {
    fn name(&mut self, address: &ArrayRef) -> DFResult<(ArrayRef, ArrayRef)> {
        let addresses = address
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| DataFusionError::Internal("a Lance row address is UInt64".into()))?;
        let rows = addresses.len();
        let mut paths = StringBuilder::with_capacity(rows, rows * 4);
        let mut positions = Int64Builder::with_capacity(rows);
        let mut last: Option<(u64, String)> = None;
        for address in addresses.values().iter() {
            let fragment = address >> 32;
            let name = match &last {
                Some((seen, name)) if *seen == fragment => name,
                _ => &last.insert((fragment, fragment.to_string())).1,
            };
            paths.append_value(name);
            positions.append_value((address & 0xffff_ffff) as i64);
        }
        Ok((Arc::new(paths.finish()), Arc::new(positions.finish())))
    }
}

#[async_trait]
impl RowLevelTable for LanceRows {
    async fn scan(&self, files: Option<Arc<HashSet<String>>>) -> Result<Arc<dyn TableProvider>> {
        let mut fields: Vec<Field> = self
            .table
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(ROW_ADDRESS, DataType::UInt64, true));
        let inner = LanceTable {
            schema: Arc::new(Schema::new(fields)),
            row_address: true,
            ..self.table.clone()
        };
        let namer: NamerFactory = Arc::new(|| Box::new(Addresses));
        Ok(Arc::new(NamedScan::new(
            FORMAT,
            Arc::new(inner),
            namer,
            files,
        )))
    }

    async fn replace(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        _change: RowChange,
    ) -> Result<u64> {
        self.commit_rows(files, rows, None).await
    }

    /// Optimize: Lance's own compaction of its small fragments, which carries the
    /// indexes over to the merged ones (a replacement of fragments would leave them
    /// covering nothing); the rows read for it are not needed.
    async fn rewrite(&self, _files: Vec<String>, rows: SendableRecordBatchStream) -> Result<u64> {
        drop(rows);
        let Some(dataset) = self.dataset() else {
            return Ok(0);
        };
        let mut latest = Dataset::clone(dataset);
        latest.checkout_latest().await.map_err(lance_error)?;
        let compacted = lance::dataset::optimize::compact_files(
            &mut latest,
            lance::dataset::optimize::CompactionOptions::default(),
            None,
        )
        .await
        .map_err(lance_error)?;
        // Lance commits only when it found fragments to merge.
        if compacted.fragments_removed > 0 {
            crate::commits::committed("lance");
        }
        Ok(compacted.fragments_removed as u64)
    }

    async fn recorded_position(&self, job: &str) -> Result<Option<String>> {
        let Some(dataset) = self.dataset() else {
            return Ok(None);
        };
        let mut latest = Dataset::clone(dataset);
        latest.checkout_latest().await.map_err(lance_error)?;
        recorded(&latest, job).await
    }

    async fn commit_recording(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
        recording: Recording<'_>,
    ) -> Result<u64> {
        self.commit_rows(files, rows, Some(recording)).await
    }

    async fn files(&self) -> Result<Vec<DataFileInfo>> {
        let Some(dataset) = self.dataset() else {
            return Ok(Vec::new());
        };
        Ok(dataset
            .fragments()
            .iter()
            .map(|fragment| DataFileInfo {
                path: fragment.id.to_string(),
                bytes: fragment
                    .files
                    .iter()
                    .filter_map(|file| file.file_size_bytes.get())
                    .map(u64::from)
                    .sum(),
                partition: String::new(),
            })
            .collect())
    }
}
