//! Row-level change of Lance datasets, copy-on-write by fragment: a scan of the loaded
//! version that names each row by its fragment (`$path`, the fragment id) and its offset
//! there (`$position`), both from Lance's row address; and one `Update` commit that removes
//! the fragments a statement touched and adds new ones with the rows they keep or gain.
//! Lance checks that commit against what other writers committed since the version was
//! loaded.

use std::collections::HashSet;
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
use lance::dataset::transaction::{Operation, Transaction, UpdateMode};
use lance::dataset::{CommitBuilder, InsertBuilder, WriteDestination, WriteMode};
use lance::Dataset;

use super::{conforming, lance_error, write_params, LanceTable, FORMAT};
use crate::locations::recheck;
use crate::row_names::{NamedScan, NamerFactory, RowNamer};
use crate::{DataFileInfo, Result, RowChange, RowLevelTable, TableError};

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
    /// names, in one `Update`. Answers the rows written.
    async fn commit_rows(
        &self,
        files: Vec<String>,
        rows: SendableRecordBatchStream,
    ) -> Result<u64> {
        let Some(dataset) = self.dataset().cloned() else {
            return Ok(0);
        };
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
        let transaction = Transaction::new(dataset.manifest.version, operation, None);
        // Lance counts attempts, the first one included.
        let mut commit = CommitBuilder::new(WriteDestination::Dataset(dataset))
            .with_max_retries(self.table.retry.retries.saturating_add(1));
        if let Some(store_params) = params.store_params {
            commit = commit.with_store_params(store_params);
        }
        commit.execute(transaction).await.map_err(|e| match e {
            lance::Error::CommitConflict { .. }
            | lance::Error::RetryableCommitConflict { .. }
            | lance::Error::IncompatibleTransaction { .. }
            | lance::Error::TooMuchWriteContention { .. } => TableError::Conflict {
                message: format!("Another statement changed the table while this one ran: {e}"),
            },
            e => lance_error(e),
        })?;
        Ok(written)
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
        self.commit_rows(files, rows).await
    }

    async fn rewrite(&self, files: Vec<String>, rows: SendableRecordBatchStream) -> Result<u64> {
        self.commit_rows(files, rows).await
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
