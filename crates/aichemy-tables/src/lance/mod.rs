//! The `lance` catalog: Lance datasets through `lance`, for vectors and documents.
//!
//! A table's dataset is written by its first INSERT: that is when AIchemy knows whether an
//! `ARRAY(REAL)` / `ARRAY(DOUBLE)` column holds vectors of one length, which Lance stores as
//! fixed-size lists (what its vector indexes need). The engine keeps seeing the declared
//! types; scans cast back. Every INSERT is one Lance commit, made after the last row was
//! written. Datasets use Lance file format 2.2, the first to hold MAP columns.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aichemy_metastore::TableRecord;
use aichemy_storage::{join_location, StorageOptions, StoreRegistry};
use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Builder, MapBuilder, RecordBatch, RecordBatchIterator,
    StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNode;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::{StreamExt, TryStreamExt};
use lance::datafusion::LanceTableProvider;
use lance::dataset::builder::DatasetBuilder;
use lance::dataset::{
    CommitBuilder, InsertBuilder, NewColumnTransform, WriteDestination, WriteMode, WriteParams,
};
use lance::io::{ObjectStoreParams, StorageOptionsAccessor};
use lance::Dataset;

use crate::locations::recheck;
use crate::metadata_tables::{memory_table, text_map, utc_millis};
use crate::registered::{OpenedTable, ReferencedFiles, TableStore};
use crate::{
    CommitRetry, CreateTableRequest, LocationPolicy, PropertyValue, Result, TableError,
    TableVersion,
};

mod rows;
mod search;

const FORMAT: &str = "Lance";

fn lance_error(e: lance::Error) -> TableError {
    TableError::Format {
        format: FORMAT,
        source: Box::new(e),
    }
}

fn df_error(e: lance::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The dataset at a location; `None` when none was written there yet.
/// The folders of a dataset that hold its fragments' files, their deletion files and
/// the transactions that made its versions.
const DATA_FOLDER: &str = "data";
const DELETIONS_FOLDER: &str = "_deletions";
const TRANSACTIONS_FOLDER: &str = "_transactions";

/// The Lance session every dataset of the process is opened in: they share its caches of
/// index parts (IVF centroids, PQ codebooks, partitions read) and of metadata (manifests,
/// index details), so a search reads an index from storage once, not per query. Both are
/// keyed by immutable files (an index's id, a manifest's version), so a new version never
/// reads a stale entry. Bounded at 2 GiB of index parts and 256 MiB of metadata.
fn session() -> Arc<lance::session::Session> {
    static SESSION: std::sync::OnceLock<Arc<lance::session::Session>> = std::sync::OnceLock::new();
    SESSION
        .get_or_init(|| {
            Arc::new(lance::session::Session::new(
                2 << 30,
                256 << 20,
                Arc::new(lance::io::ObjectStoreRegistry::default()),
            ))
        })
        .clone()
}

async fn open_dataset(location: &str, options: &StorageOptions) -> Result<Option<Dataset>> {
    let opened = DatasetBuilder::from_uri(location)
        .with_storage_options(options.clone())
        .with_session(session())
        .load()
        .await;
    match opened {
        Ok(dataset) => Ok(Some(dataset)),
        Err(lance::Error::DatasetNotFound { .. } | lance::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(lance_error(e)),
    }
}

fn write_params(mode: WriteMode, options: &StorageOptions) -> WriteParams {
    WriteParams {
        mode,
        data_storage_version: "2.2".parse().ok(),
        store_params: Some(ObjectStoreParams {
            storage_options_accessor: Some(Arc::new(StorageOptionsAccessor::with_static_options(
                options.clone(),
            ))),
            ..ObjectStoreParams::default()
        }),
        ..WriteParams::default()
    }
}

/// Lance datasets. On `s3://` Lance commits each version with put-if-absent.
#[derive(Debug)]
pub struct LanceStore {
    stores: Arc<StoreRegistry>,
    retry: CommitRetry,
    guard: Option<LocationPolicy>,
}

impl LanceStore {
    /// Lance datasets whose `s3://` locations use the options of `stores`; an append that
    /// loses a race is retried `retry.retries` times (Lance waits between attempts itself).
    pub fn new(stores: Arc<StoreRegistry>, retry: CommitRetry) -> Self {
        Self {
            stores,
            retry,
            guard: None,
        }
    }

    /// Checks a table's folder against `policy` (no symbolic link in it, still an allowed
    /// place) right before an INSERT writes into it.
    pub fn guarded_by(mut self, policy: LocationPolicy) -> Self {
        self.guard = Some(policy);
        self
    }
}

#[async_trait]
impl TableStore for LanceStore {
    fn format_name(&self) -> &'static str {
        FORMAT
    }

    fn table_properties(&self) -> &'static [&'static str] {
        &["location"]
    }

    async fn create(
        &self,
        location: &str,
        schema: &SchemaRef,
        _request: &CreateTableRequest,
        external: bool,
    ) -> Result<Vec<(String, PropertyValue)>> {
        if let Some(dataset) = open_dataset(location, self.stores.options()).await? {
            if !external {
                return Err(TableError::Storage {
                    message: format!("A Lance dataset already exists at {location}"),
                });
            }
            // An existing dataset at the named location is registered when the declared
            // columns are its columns.
            let theirs: Vec<String> = dataset
                .schema()
                .fields
                .iter()
                .map(|f| f.name.clone())
                .collect();
            let ours: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            if theirs != ours {
                return Err(TableError::InvalidProperty {
                    property: "location".into(),
                    message: format!(
                        "The Lance dataset at {location} has columns {theirs:?}, not {ours:?}"
                    ),
                });
            }
        }
        Ok(vec![(
            "location".to_string(),
            PropertyValue::String(location.to_string()),
        )])
    }

    async fn open(
        &self,
        record: &TableRecord,
        schema: SchemaRef,
    ) -> Result<Arc<dyn TableProvider>> {
        Ok(self.open_with_rows(record, schema).await?.provider)
    }

    async fn open_with_rows(&self, record: &TableRecord, schema: SchemaRef) -> Result<OpenedTable> {
        let dataset = open_dataset(&record.location, self.stores.options())
            .await?
            .map(Arc::new);
        let table = LanceTable {
            location: record.location.clone(),
            schema,
            row_address: false,
            dataset,
            stores: self.stores.clone(),
            retry: self.retry,
            guard: self.guard.clone(),
        };
        let rows = rows::LanceRows::new(&table);
        Ok(OpenedTable {
            provider: Arc::new(table),
            rows: Some(Arc::new(rows)),
        })
    }

    async fn open_version(
        &self,
        record: &TableRecord,
        version: &TableVersion,
    ) -> Result<Arc<dyn TableProvider>> {
        let dataset = open_dataset(&record.location, self.stores.options()).await?;
        let missing = |what: String| TableError::InvalidArgument {
            message: format!("Lance version does not exist: {what}"),
        };
        let versions = match &dataset {
            Some(dataset) => dataset.versions().await.map_err(lance_error)?,
            None => Vec::new(),
        };
        let chosen = match *version {
            TableVersion::Ref(ref name) => return Err(TableVersion::unsupported_ref(name)),
            TableVersion::Id(id) => versions
                .iter()
                .find(|v| i64::try_from(v.version) == Ok(id))
                .ok_or_else(|| missing(id.to_string()))?,
            TableVersion::TimestampMillis(millis) => versions
                .iter()
                .filter(|v| v.timestamp.timestamp_millis() <= millis)
                .max_by_key(|v| v.version)
                .ok_or_else(|| TableError::InvalidArgument {
                    message: format!(
                        "No version history at or before {}",
                        chrono::DateTime::from_timestamp_millis(millis)
                            .map_or(millis.to_string(), |t| t
                                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                                .to_string())
                    ),
                })?,
        };
        let Some(dataset) = dataset else {
            return Err(missing(chosen.version.to_string()));
        };
        let dataset = dataset
            .checkout_version(chosen.version)
            .await
            .map_err(lance_error)?;
        // The declared columns the version has (a column added later is not in it).
        let stored = Schema::from(dataset.schema());
        let fields: Vec<_> = crate::registered::decode_schema(&record.schema_ipc)?
            .fields()
            .iter()
            .filter(|f| stored.field_with_name(f.name()).is_ok())
            .cloned()
            .collect();
        Ok(Arc::new(LanceTable {
            location: record.location.clone(),
            schema: Arc::new(Schema::new(fields)),
            row_address: false,
            dataset: Some(Arc::new(dataset)),
            stores: self.stores.clone(),
            retry: self.retry,
            guard: self.guard.clone(),
        }))
    }

    async fn metadata_table(
        &self,
        record: &TableRecord,
        kind: &str,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        if kind == "indexes" {
            let dataset = open_dataset(&record.location, self.stores.options()).await?;
            return search::indexes_table(dataset.as_ref()).await.map(Some);
        }
        if kind != "history" {
            return Ok(None);
        }
        let versions = match open_dataset(&record.location, self.stores.options()).await? {
            Some(dataset) => dataset.versions().await.map_err(lance_error)?,
            None => Vec::new(),
        };
        let mut version = Int64Builder::new();
        let mut at = TimestampMillisecondBuilder::new().with_timezone("UTC");
        let mut metadata = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for v in versions.iter().rev() {
            version.append_value(v.version as i64);
            at.append_value(v.timestamp.timestamp_millis());
            for (key, value) in &v.metadata {
                metadata.keys().append_value(key);
                metadata.values().append_value(value);
            }
            metadata.append(true).map_err(|e| TableError::Format {
                format: FORMAT,
                source: Box::new(e),
            })?;
        }
        memory_table(
            FORMAT,
            vec![
                Field::new("version", DataType::Int64, false),
                Field::new("timestamp", utc_millis(), false),
                text_map("metadata"),
            ],
            vec![
                Arc::new(version.finish()),
                Arc::new(at.finish()),
                Arc::new(metadata.finish()),
            ],
        )
        .map(Some)
    }

    async fn expire_versions(
        &self,
        record: &TableRecord,
        older_than_ms: i64,
    ) -> Result<(usize, usize)> {
        let Some(dataset) = open_dataset(&record.location, self.stores.options()).await? else {
            return Ok((0, 0));
        };
        recheck(self.guard.as_ref(), &record.location)
            .map_err(|message| TableError::Storage { message })?;
        // The newest version recording each ingestion job's position stays, and so every
        // version after it.
        let older_than_ms = match rows::oldest_position_carrier(&dataset).await? {
            Some(carrier) => older_than_ms.min(carrier - 1),
            None => older_than_ms,
        };
        let age = chrono::Utc::now().timestamp_millis() - older_than_ms;
        // Lance keeps the current version and every version a tag names. It deletes the
        // files no version names (what failed or killed writes left) once they are older
        // than the oldest version kept and, unless told they are not in use, a week old:
        // a retention under a week (allowed only when the user lowered the minimum) tells it.
        let unverified = age < chrono::Duration::days(7).num_milliseconds();
        let removed = dataset
            .cleanup_old_versions(
                chrono::Duration::milliseconds(age.max(0)),
                Some(unverified),
                Some(false),
            )
            .await
            .map_err(lance_error)?;
        Ok((
            removed.old_versions as usize,
            (removed.data_files_removed + removed.deletion_files_removed) as usize,
        ))
    }

    async fn referenced_files(&self, record: &TableRecord) -> Result<Option<ReferencedFiles>> {
        let Some(dataset) = open_dataset(&record.location, self.stores.options()).await? else {
            return Ok(None);
        };
        recheck(self.guard.as_ref(), &record.location)
            .map_err(|message| TableError::Storage { message })?;
        // Every version's manifest names its fragments' data and deletion files and the
        // transaction that made it. Index files and the manifests themselves are Lance's
        // cleanup's to judge.
        let mut files = ReferencedFiles {
            folders: vec![DATA_FOLDER, DELETIONS_FOLDER, TRANSACTIONS_FOLDER],
            ..ReferencedFiles::default()
        };
        for version in dataset.versions().await.map_err(lance_error)? {
            let at = dataset
                .checkout_version(version.version)
                .await
                .map_err(lance_error)?;
            let manifest = at.manifest();
            for fragment in manifest.fragments.iter() {
                for file in &fragment.files {
                    files
                        .referenced
                        .insert(format!("{DATA_FOLDER}/{}", file.path));
                }
                if let Some(deleted) = &fragment.deletion_file {
                    files.referenced.insert(format!(
                        "{DELETIONS_FOLDER}/{}-{}-{}.{}",
                        fragment.id,
                        deleted.read_version,
                        deleted.id,
                        deleted.file_type.suffix()
                    ));
                }
            }
            if let Some(transaction) = &manifest.transaction_file {
                files
                    .referenced
                    .insert(format!("{TRANSACTIONS_FOLDER}/{transaction}"));
            }
        }
        Ok(Some(files))
    }

    async fn change_index(
        &self,
        record: &TableRecord,
        change: crate::search::IndexChange,
    ) -> Result<()> {
        let Some(mut dataset) = open_dataset(&record.location, self.stores.options()).await? else {
            return Err(TableError::InvalidArgument {
                message: format!(
                    "Table has no rows yet: {} needs rows to index",
                    change.procedure()
                ),
            });
        };
        recheck(self.guard.as_ref(), &record.location)
            .map_err(|message| TableError::Storage { message })?;
        search::change_index(&mut dataset, change).await
    }

    async fn refresh_indexes(&self, record: &TableRecord) -> Result<()> {
        let Some(mut dataset) = open_dataset(&record.location, self.stores.options()).await? else {
            return Ok(());
        };
        recheck(self.guard.as_ref(), &record.location)
            .map_err(|message| TableError::Storage { message })?;
        search::refresh(&mut dataset).await
    }

    async fn add_column(&self, record: &TableRecord, schema: &SchemaRef) -> Result<()> {
        let Some(mut dataset) = open_dataset(&record.location, self.stores.options()).await? else {
            return Ok(());
        };
        let Some(added) = schema.fields().last() else {
            return Ok(());
        };
        let new_columns = Arc::new(Schema::new(vec![added.as_ref().clone()]));
        dataset
            .add_columns(NewColumnTransform::AllNulls(new_columns), None, None)
            .await
            .map_err(lance_error)
    }
}

/// Whether `provider` is a Lance table with rows that can answer `search` itself.
pub(crate) fn can_search(provider: &dyn TableProvider, search: &crate::search::Search) -> bool {
    let Some(table) = provider.as_any().downcast_ref::<LanceTable>() else {
        return false;
    };
    let Some(dataset) = &table.dataset else {
        return false;
    };
    let schema = Schema::from(dataset.schema());
    let Ok(field) = schema.field_with_name(search.column()) else {
        return false;
    };
    match search {
        crate::search::Search::Nearest { vector, .. } => matches!(
            field.data_type(),
            DataType::FixedSizeList(element, n)
                if element.data_type().is_floating() && usize::try_from(*n) == Ok(vector.len())
        ),
        crate::search::Search::Text { .. } => matches!(
            field.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ),
    }
}

/// One Lance table: the declared schema, and its dataset once written.
#[derive(Debug, Clone)]
struct LanceTable {
    location: String,
    /// The declared columns, then `_rowaddr` when `row_address`.
    schema: SchemaRef,
    /// Whether scans end with each row's address (`_rowaddr`).
    row_address: bool,
    dataset: Option<Arc<Dataset>>,
    stores: Arc<StoreRegistry>,
    retry: CommitRetry,
    guard: Option<LocationPolicy>,
}

impl LanceTable {
    fn sink(&self) -> LanceSink {
        LanceSink {
            location: self.location.clone(),
            schema: self.schema.clone(),
            stores: self.stores.clone(),
            retry: self.retry,
            guard: self.guard.clone(),
        }
    }

    /// The dataset, created without rows (by this writer or, when another one claimed the
    /// first write, by that one) when the table has none yet.
    async fn dataset_or_create(&self) -> DFResult<Dataset> {
        let sink = self.sink();
        if let Some(dataset) = open_dataset(&self.location, self.stores.options())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
        {
            return Ok(dataset);
        }
        if !sink.claim_first_write().await? {
            return sink.wait_for_dataset().await;
        }
        let created = sink.create(&[], self.schema.clone()).await;
        if !matches!(created, Ok(Ok(()))) {
            let _ = sink.release_first_write().await;
        }
        created?.map_err(df_error)?;
        sink.wait_for_dataset().await
    }
}

#[async_trait]
impl TableProvider for LanceTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let wanted = match projection {
            Some(columns) => Arc::new(self.schema.project(columns)?),
            None => self.schema.clone(),
        };
        let Some(dataset) = &self.dataset else {
            return Ok(Arc::new(EmptyExec::new(wanted)));
        };
        let (search, filters) = crate::search::take_search(filters);
        let searched = match search {
            // Lance's own search; where it cannot search so, the plan above the scan
            // (its filters, then the sort by distance) finds the rows from all of them.
            Some((search, scores)) if !self.row_address => {
                let columns: Vec<String> =
                    wanted.fields().iter().map(|f| f.name().clone()).collect();
                match search::plan(dataset, &search, scores.as_ref(), &columns, &filters).await {
                    Ok(plan) => Some(plan),
                    Err(e) => {
                        tracing::debug!(error = %e, "Lance cannot search so; scanning");
                        None
                    }
                }
            }
            _ => None,
        };
        let plan = match searched {
            Some(plan) => plan,
            None => {
                let provider = LanceTableProvider::new(dataset.clone(), false, self.row_address);
                // The dataset's columns in the declared order, by name.
                let stored = provider.schema();
                let indices = wanted
                    .fields()
                    .iter()
                    .map(|f| stored.index_of(f.name()))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                provider
                    .scan(state, Some(&indices), &filters, limit)
                    .await?
            }
        };
        let scanned = plan.schema();
        if scanned.fields().len() == wanted.fields().len()
            && scanned
                .fields()
                .iter()
                .zip(wanted.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
        {
            return Ok(plan);
        }
        // Vectors stored as fixed-size lists read back as the declared arrays.
        let exprs = wanted
            .fields()
            .iter()
            .map(|field| {
                // Lance may give the columns in another order than asked (its row address).
                let i = scanned.index_of(field.name())?;
                let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(field.name(), i));
                let expr: Arc<dyn PhysicalExpr> =
                    match (scanned.field(i).data_type(), field.data_type()) {
                        (from, to) if from == to => column,
                        // Arrow's cast to a list keeps the fixed-size list's element field
                        // (Lance names it `item`); renaming it first gives the declared one.
                        (DataType::FixedSizeList(_, n), DataType::List(element)) => {
                            let renamed = Arc::new(CastExpr::new(
                                column,
                                DataType::FixedSizeList(element.clone(), *n),
                                None,
                            ));
                            Arc::new(CastExpr::new(renamed, field.data_type().clone(), None))
                        }
                        (_, to) => Arc::new(CastExpr::new(column, to.clone(), None)),
                    };
                Ok((expr, field.name().clone()))
            })
            .collect::<DFResult<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }

    /// Every filter but those calling the engine's own `$`-named functions (a text score,
    /// which a search answers itself): Lance would evaluate them on every row.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| {
                let internal = filter
                    .exists(|e| {
                        Ok(matches!(e, Expr::ScalarFunction(call)
                            if call.func.name().starts_with('$')))
                    })
                    .unwrap_or(false);
                match internal {
                    true => TableProviderFilterPushDown::Unsupported,
                    false => TableProviderFilterPushDown::Inexact,
                }
            })
            .collect())
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} is not supported for Lance tables"
            )));
        }
        Ok(Arc::new(DataSinkExec::new(
            input,
            Arc::new(self.sink()),
            None,
        )))
    }
}

/// Appends an INSERT's rows to a dataset in one commit, creating it on the first INSERT.
#[derive(Debug)]
struct LanceSink {
    location: String,
    schema: SchemaRef,
    stores: Arc<StoreRegistry>,
    retry: CommitRetry,
    guard: Option<LocationPolicy>,
}

impl DisplayAs for LanceSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LanceSink: location={}", self.location)
    }
}

/// [`conform`] for each of `batches`.
fn conform_all(batches: &[RecordBatch], schema: &SchemaRef) -> DFResult<Vec<RecordBatch>> {
    batches.iter().map(|b| conform(b, schema)).collect()
}

/// Casts every column of a batch to a schema's types.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> DFResult<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                return Ok(column.clone());
            }
            // Not `safe`: a vector of the wrong length must fail, not become NULL.
            let options = CastOptions {
                safe: false,
                ..CastOptions::default()
            };
            cast_with_options(column, field.data_type(), &options).map_err(|e| {
                let detail = match field.data_type() {
                    DataType::FixedSizeList(_, n) => {
                        format!("the table holds vectors of length {n}")
                    }
                    _ => e.to_string(),
                };
                DataFusionError::Execution(format!(
                    "Cannot write column '{}' of the Lance table: {detail}",
                    field.name()
                ))
            })
        })
        .collect::<DFResult<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The length every non-null vector of a list column has, when there is one.
fn common_length(batches: &[RecordBatch], index: usize) -> Option<i32> {
    let mut length = None;
    for batch in batches {
        let list = batch.column(index).as_list_opt::<i32>()?;
        for i in 0..list.len() {
            if list.is_null(i) {
                continue;
            }
            let n = list.value_length(i);
            match length {
                None => length = Some(n),
                Some(seen) if seen != n => return None,
                Some(_) => {}
            }
        }
    }
    length.filter(|n| *n > 0)
}

/// The dataset schema for a first write: float vectors of one length become fixed-size lists.
fn storage_schema(declared: &SchemaRef, batches: &[RecordBatch]) -> SchemaRef {
    let fields: Vec<Field> = declared
        .fields()
        .iter()
        .enumerate()
        .map(|(i, field)| match field.data_type() {
            DataType::List(element)
                if matches!(element.data_type(), DataType::Float32 | DataType::Float64) =>
            {
                match common_length(batches, i) {
                    Some(n) => field
                        .as_ref()
                        .clone()
                        .with_data_type(DataType::FixedSizeList(element.clone(), n)),
                    None => field.as_ref().clone(),
                }
            }
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The marker object whose put-if-absent decides which writer creates a dataset.
const FIRST_WRITE_MARKER: &str = "_aichemy_first_write";

/// How long a writer that lost the first write waits for the winner's dataset.
const FIRST_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl LanceSink {
    fn marker(&self) -> String {
        join_location(&self.location, FIRST_WRITE_MARKER)
    }

    /// Whether this writer won the right to create the dataset.
    async fn claim_first_write(&self) -> DFResult<bool> {
        self.stores
            .put_if_absent(&self.marker(), b"1")
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }

    async fn release_first_write(&self) -> DFResult<()> {
        self.stores
            .delete(&self.marker())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }

    /// The dataset another writer is creating, once it is there.
    async fn wait_for_dataset(&self) -> DFResult<Dataset> {
        let deadline = tokio::time::Instant::now() + FIRST_WRITE_WAIT;
        loop {
            if let Some(dataset) = open_dataset(&self.location, self.stores.options())
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
            {
                return Ok(dataset);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(DataFusionError::Execution(format!(
                    "another writer claimed the first write of the Lance table at {} but did \
                     not create it within {} s",
                    self.location,
                    FIRST_WRITE_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Appends `source` to `dataset` in one commit, retried on the newest version as
    /// `commit.retries` allows when another writer committed first.
    async fn append(
        &self,
        dataset: Dataset,
        source: SendableRecordBatchStream,
    ) -> lance::Result<()> {
        let dataset = Arc::new(dataset);
        let params = write_params(WriteMode::Append, self.stores.options());
        let transaction = InsertBuilder::new(WriteDestination::Dataset(dataset.clone()))
            .with_params(&params)
            .execute_uncommitted_stream(source)
            .await?;
        // Lance counts attempts, the first one included.
        let mut commit = CommitBuilder::new(WriteDestination::Dataset(dataset))
            .with_max_retries(self.retry.retries.saturating_add(1));
        if let Some(store_params) = params.store_params {
            commit = commit.with_store_params(store_params);
        }
        commit.execute(transaction).await?;
        crate::commits::committed("lance");
        Ok(())
    }

    /// Creates the dataset from whole batches, cast to `schema`, in one commit. The outer
    /// error is a row that does not fit the schema, the inner one Lance's.
    async fn create(
        &self,
        batches: &[RecordBatch],
        schema: SchemaRef,
    ) -> DFResult<lance::Result<()>> {
        let conformed = conform_all(batches, &schema)?;
        let reader = RecordBatchIterator::new(conformed.into_iter().map(Ok), schema);
        Ok(Dataset::write(
            reader,
            &self.location,
            Some(write_params(WriteMode::Create, self.stores.options())),
        )
        .await
        .map(drop))
    }
}

#[async_trait]
impl DataSink for LanceSink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DFResult<u64> {
        recheck(self.guard.as_ref(), &self.location).map_err(DataFusionError::Execution)?;
        let existing = open_dataset(&self.location, self.stores.options())
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let Some(dataset) = existing else {
            // The first write: all rows at hand decide the vector columns' storage.
            let batches: Vec<RecordBatch> = data.try_collect().await?;
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            if rows == 0 {
                return Ok(0);
            }
            // Lance turns a create that loses a race into an overwrite of the winner's
            // rows, so only the writer that claims the first write (put-if-absent of a
            // marker object) creates the dataset; the others wait for it and append.
            if self.claim_first_write().await? {
                let schema = storage_schema(&self.schema, &batches);
                let created = self.create(&batches, schema).await;
                if !matches!(created, Ok(Ok(()))) {
                    // Let another writer try.
                    let _ = self.release_first_write().await;
                }
                created?.map_err(df_error)?;
            } else {
                let dataset = self.wait_for_dataset().await?;
                let schema: SchemaRef = Arc::new(Schema::from(dataset.schema()));
                let conformed = conform_all(&batches, &schema)?;
                let stream = futures::stream::iter(conformed.into_iter().map(Ok));
                let stream = Box::pin(RecordBatchStreamAdapter::new(schema, stream));
                self.append(dataset, stream).await.map_err(df_error)?;
            }
            return Ok(rows as u64);
        };
        let target: SchemaRef = Arc::new(Schema::from(dataset.schema()));
        let (stream, counted, failure) = conforming(data, target);
        self.append(dataset, stream).await.map_err(|e| {
            failure
                .lock()
                .expect("not poisoned")
                .take()
                .unwrap_or_else(|| df_error(e))
        })?;
        Ok(counted.load(Ordering::Relaxed))
    }
}

/// The first error of a stream that Lance reads, kept to answer it (Lance reports a failing
/// input stream as text).
type Failure = Arc<Mutex<Option<DataFusionError>>>;

/// `data` cast to the dataset's schema `target`, with the count of rows read and the first
/// error met.
fn conforming(
    data: SendableRecordBatchStream,
    target: SchemaRef,
) -> (SendableRecordBatchStream, Arc<AtomicU64>, Failure) {
    let counted = Arc::new(AtomicU64::new(0));
    let counter = counted.clone();
    let failure: Failure = Arc::default();
    let failed = failure.clone();
    let shaped_schema = target.clone();
    let shaped = data.map(move |batch| {
        let shaped = batch.and_then(|b| conform(&b, &shaped_schema));
        match shaped {
            Ok(batch) => {
                counter.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                Ok(batch)
            }
            Err(e) => {
                let message = e.to_string();
                failed.lock().expect("not poisoned").get_or_insert(e);
                Err(DataFusionError::Execution(message))
            }
        }
    });
    let stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(target, shaped));
    (stream, counted, failure)
}
