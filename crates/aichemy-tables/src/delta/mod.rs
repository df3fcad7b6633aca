//! The `delta` catalog: Delta Lake tables through `deltalake`. The table's log is the truth
//! for its files and versions; the metastore records where each table lives.
//!
//! Inserts write data files first, then one commit to the log, so a statement that fails
//! part-way adds nothing. A commit that loses a race with another writer is retried by
//! deltalake's conflict checker as often as `commit.retries` allows; that is why INSERTs go
//! through [`DeltaSink`] here rather than deltalake's own sink, which always retries 15
//! times.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use aichemy_metastore::TableRecord;
use async_trait::async_trait;
use datafusion::arrow::array::{
    BooleanBuilder, Int64Builder, MapBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use deltalake::delta_datafusion::DataFusionMixins;
use deltalake::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, EagerSnapshot, StructField, StructType};
use deltalake::logstore::LogStoreRef;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::operations::write::writer::{DeltaWriter, WriterConfig};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt;
use deltalake::DeltaTable;
use futures::StreamExt;
use url::Url;

use crate::registered::{OpenedTable, TableStore};
use aichemy_storage::StorageOptions;

use crate::append::{AppendableTable, Appender};
use crate::metadata_tables::{memory_table, text_map, utc_millis};
use crate::{
    CommitRetry, CreateTableRequest, LocationPolicy, PropertyValue, Result, TableError,
    TableVersion,
};

mod rows;

const FORMAT: &str = "Delta Lake";

fn delta_error(e: impl std::error::Error + Send + Sync + 'static) -> TableError {
    TableError::Format {
        format: FORMAT,
        source: Box::new(e),
    }
}

fn table_url(location: &str) -> Result<Url> {
    let mut url = Url::parse(location).map_err(|e| TableError::Storage {
        message: format!("Invalid location '{location}': {e}"),
    })?;
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// Opens the Delta table at a location (not yet created when it has no version).
async fn load(location: &str, options: &StorageOptions) -> Result<DeltaTable> {
    let url = table_url(location)?;
    // deltalake refuses local folders that do not exist yet.
    if url.scheme() == "file" {
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path).map_err(|e| TableError::Storage {
                message: format!("Cannot create {}: {e}", path.display()),
            })?;
        }
    }
    DeltaTable::try_from_url_with_storage_options(url, options.clone())
        .await
        .map_err(delta_error)
}

/// Delta Lake tables.
#[derive(Debug, Default)]
pub struct DeltaStore {
    options: StorageOptions,
    retry: CommitRetry,
    guard: Option<LocationPolicy>,
}

impl DeltaStore {
    /// Delta tables whose `s3://` locations use `options`; a commit that loses a race is
    /// retried `retry.retries` times.
    pub fn new(options: StorageOptions, retry: CommitRetry) -> Self {
        // s3:// locations are served by deltalake's AWS log store, which commits with
        // put-if-absent (If-None-Match).
        deltalake::aws::register_handlers(None);
        Self {
            options,
            retry,
            guard: None,
        }
    }

    /// Checks a table's folder against `policy` (no symbolic link in it, still an allowed
    /// place) right before an INSERT writes into it and again before it commits.
    pub fn guarded_by(mut self, policy: LocationPolicy) -> Self {
        self.guard = Some(policy);
        self
    }
}

/// Checks a table's folder again right before files are written or committed.
fn recheck(guard: Option<&LocationPolicy>, location: &str) -> DFResult<()> {
    crate::locations::recheck(guard, location).map_err(DataFusionError::Execution)
}

/// Whether Delta Lake can hold a type (it has no TIME and no unsigned integers).
fn delta_can_hold(data_type: &DataType) -> bool {
    match data_type {
        DataType::Time32(_) | DataType::Time64(_) => false,
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => false,
        DataType::List(f) | DataType::LargeList(f) | DataType::Map(f, _) => {
            delta_can_hold(f.data_type())
        }
        DataType::Struct(fields) => fields.iter().all(|f| delta_can_hold(f.data_type())),
        _ => true,
    }
}

#[async_trait]
impl TableStore for DeltaStore {
    fn format_name(&self) -> &'static str {
        FORMAT
    }

    fn table_properties(&self) -> &'static [&'static str] {
        &["location", "partitioned_by"]
    }

    async fn create(
        &self,
        location: &str,
        schema: &SchemaRef,
        request: &CreateTableRequest,
        external: bool,
    ) -> Result<Vec<(String, PropertyValue)>> {
        for (field, column) in schema.fields().iter().zip(&request.columns) {
            if !delta_can_hold(field.data_type()) {
                return Err(TableError::UnsupportedType {
                    format: FORMAT,
                    column: field.name().clone(),
                    trino_type: column.trino_type.clone(),
                });
            }
        }
        let partitioned_by = request.column_list_property("partitioned_by")?;
        for column in &partitioned_by {
            if schema.field_with_name(column).is_err() {
                return Err(TableError::InvalidProperty {
                    property: "partitioned_by".into(),
                    message: format!("Partition column '{column}' does not exist"),
                });
            }
        }
        let table = load(location, &self.options).await?;
        if table.version().is_some() {
            // An existing Delta table at the named location is registered, when the
            // declared columns are its columns.
            if !external {
                return Err(TableError::Storage {
                    message: format!("A Delta table already exists at {location}"),
                });
            }
            let existing = table.snapshot().map_err(delta_error)?.schema();
            let theirs: Vec<&str> = existing.fields().map(|f| f.name().as_str()).collect();
            let ours: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            if theirs != ours {
                return Err(TableError::InvalidProperty {
                    property: "location".into(),
                    message: format!(
                        "The Delta table at {location} has columns {theirs:?}, not {ours:?}"
                    ),
                });
            }
            let partitions = table
                .snapshot()
                .map_err(delta_error)?
                .metadata()
                .partition_columns()
                .to_vec();
            let mut properties = vec![(
                "location".to_string(),
                PropertyValue::String(location.to_string()),
            )];
            if !partitions.is_empty() {
                properties.push((
                    "partitioned_by".to_string(),
                    PropertyValue::Array(partitions),
                ));
            }
            return Ok(properties);
        }
        let columns =
            StructType::try_from_arrow(schema.as_ref()).map_err(|e| TableError::Format {
                format: FORMAT,
                source: Box::new(e),
            })?;
        let mut create = table
            .create()
            .with_columns(columns.fields().cloned())
            .with_partition_columns(partitioned_by.clone())
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_table_name(request.name.clone());
        if let Some(comment) = &request.comment {
            create = create.with_comment(comment.clone());
        }
        create.await.map_err(delta_error)?;
        let mut properties = vec![(
            "location".to_string(),
            PropertyValue::String(location.to_string()),
        )];
        if !partitioned_by.is_empty() {
            properties.push((
                "partitioned_by".to_string(),
                PropertyValue::Array(partitioned_by),
            ));
        }
        Ok(properties)
    }

    async fn open(
        &self,
        record: &TableRecord,
        schema: SchemaRef,
    ) -> Result<Arc<dyn TableProvider>> {
        Ok(self.open_with_rows(record, schema).await?.provider)
    }

    async fn open_with_rows(
        &self,
        record: &TableRecord,
        _schema: SchemaRef,
    ) -> Result<OpenedTable> {
        let table = load(&record.location, &self.options).await?;
        if table.version().is_none() {
            return Err(TableError::Storage {
                message: format!("No Delta table at {}", record.location),
            });
        }
        let scan = table.table_provider().await.map_err(delta_error)?;
        let schema = scan.schema();
        let rows = rows::DeltaRows {
            table: table.clone(),
            retries: self.retry.retries as usize,
            location: record.location.clone(),
            guard: self.guard.clone(),
        };
        let provider = Arc::new(AppendableTable::new(
            scan,
            schema,
            DeltaAppender {
                table,
                retry: self.retry,
                location: record.location.clone(),
                guard: self.guard.clone(),
            },
        ));
        Ok(OpenedTable {
            provider,
            rows: Some(Arc::new(rows)),
        })
    }

    async fn open_version(
        &self,
        record: &TableRecord,
        version: &TableVersion,
    ) -> Result<Arc<dyn TableProvider>> {
        let mut table = load(&record.location, &self.options).await?;
        match *version {
            TableVersion::Ref(ref name) => return Err(TableVersion::unsupported_ref(name)),
            TableVersion::Id(id) => {
                let missing = || TableError::InvalidArgument {
                    message: format!("Delta Lake snapshot ID does not exists: {id}"),
                };
                let id = u64::try_from(id).map_err(|_| missing())?;
                if table.version().is_none_or(|latest| id > latest) {
                    return Err(missing());
                }
                table.load_version(id).await.map_err(|_| missing())?;
            }
            TableVersion::TimestampMillis(millis) => {
                let missing = || TableError::InvalidArgument {
                    message: format!(
                        "No temporal version history at or before {}",
                        chrono::DateTime::from_timestamp_millis(millis)
                            .map_or(millis.to_string(), |t| t
                                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                                .to_string())
                    ),
                };
                // The newest commit made at or before the time (the history is newest
                // first).
                let latest = table.version().ok_or_else(missing)?;
                let chosen = table
                    .history(None)
                    .await
                    .map_err(delta_error)?
                    .enumerate()
                    .find(|(_, commit)| commit.timestamp.is_some_and(|t| t <= millis))
                    .and_then(|(i, _)| latest.checked_sub(i as u64))
                    .ok_or_else(missing)?;
                table.load_version(chosen).await.map_err(|_| missing())?;
            }
        }
        table
            .table_provider()
            .await
            .map(|scan| scan as Arc<dyn TableProvider>)
            .map_err(delta_error)
    }

    async fn metadata_table(
        &self,
        record: &TableRecord,
        kind: &str,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = load(&record.location, &self.options).await?;
        match kind {
            "history" => history_table(&table).await.map(Some),
            "properties" => properties_table(&table).map(Some),
            _ => Ok(None),
        }
    }

    async fn vacuum(&self, record: &TableRecord, retention: std::time::Duration) -> Result<usize> {
        let table = load(&record.location, &self.options).await?;
        recheck(self.guard.as_ref(), &record.location).map_err(|e| TableError::Storage {
            message: e.to_string(),
        })?;
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
        // Full: also the files failed or lost commits left behind, not only the removed ones.
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Full)
            .await
            .map_err(delta_error)?;
        Ok(metrics.files_deleted.len())
    }

    async fn add_column(&self, record: &TableRecord, schema: &SchemaRef) -> Result<()> {
        let Some(added) = schema.fields().last() else {
            return Ok(());
        };
        let field =
            StructField::try_from_arrow(&Field::clone(added)).map_err(|e| TableError::Format {
                format: FORMAT,
                source: Box::new(e),
            })?;
        load(&record.location, &self.options)
            .await?
            .add_columns()
            .with_fields([field])
            .await
            .map_err(delta_error)?;
        Ok(())
    }
}

/// `"t$history"`: one row per commit, newest first, with Trino's columns.
async fn history_table(table: &DeltaTable) -> Result<Arc<dyn TableProvider>> {
    let latest = table.version().unwrap_or_default();
    let commits: Vec<_> = table.history(None).await.map_err(delta_error)?.collect();
    let mut version = Int64Builder::new();
    let mut at = TimestampMillisecondBuilder::new().with_timezone("UTC");
    let mut user_id = StringBuilder::new();
    let mut user_name = StringBuilder::new();
    let mut operation = StringBuilder::new();
    let mut parameters = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut cluster_id = StringBuilder::new();
    let mut read_version = Int64Builder::new();
    let mut isolation = StringBuilder::new();
    let mut blind_append = BooleanBuilder::new();
    let mut metrics = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (i, commit) in commits.iter().enumerate() {
        version.append_value(latest as i64 - i as i64);
        at.append_option(commit.timestamp);
        user_id.append_option(commit.user_id.as_deref());
        user_name.append_option(commit.user_name.as_deref());
        operation.append_option(commit.operation.as_deref());
        let mut entries: Vec<_> = commit.operation_parameters.iter().flatten().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in entries {
            parameters.keys().append_value(key);
            parameters.values().append_value(text(value));
        }
        parameters.append(true).map_err(delta_error)?;
        cluster_id.append_null();
        read_version.append_option(commit.read_version.map(|v| v as i64));
        isolation.append_option(commit.isolation_level.map(|level| format!("{level:?}")));
        blind_append.append_option(commit.is_blind_append);
        if let Some(serde_json::Value::Object(values)) = commit.info.get("operationMetrics") {
            for (key, value) in values {
                metrics.keys().append_value(key);
                metrics.values().append_value(text(value));
            }
        }
        metrics.append(true).map_err(delta_error)?;
    }
    memory_table(
        FORMAT,
        vec![
            Field::new("version", DataType::Int64, false),
            Field::new("timestamp", utc_millis(), true),
            Field::new("user_id", DataType::Utf8, true),
            Field::new("user_name", DataType::Utf8, true),
            Field::new("operation", DataType::Utf8, true),
            text_map("operation_parameters"),
            Field::new("cluster_id", DataType::Utf8, true),
            Field::new("read_version", DataType::Int64, true),
            Field::new("isolation_level", DataType::Utf8, true),
            Field::new("is_blind_append", DataType::Boolean, true),
            text_map("operation_metrics"),
        ],
        vec![
            Arc::new(version.finish()),
            Arc::new(at.finish()),
            Arc::new(user_id.finish()),
            Arc::new(user_name.finish()),
            Arc::new(operation.finish()),
            Arc::new(parameters.finish()),
            Arc::new(cluster_id.finish()),
            Arc::new(read_version.finish()),
            Arc::new(isolation.finish()),
            Arc::new(blind_append.finish()),
            Arc::new(metrics.finish()),
        ],
    )
}

/// `"t$properties"`: the table's configuration and the protocol versions it needs.
fn properties_table(table: &DeltaTable) -> Result<Arc<dyn TableProvider>> {
    let snapshot = table.snapshot().map_err(delta_error)?;
    let protocol = snapshot.protocol();
    let mut entries: Vec<(String, String)> = snapshot
        .metadata()
        .configuration()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    entries.push((
        "delta.minReaderVersion".into(),
        protocol.min_reader_version().to_string(),
    ));
    entries.push((
        "delta.minWriterVersion".into(),
        protocol.min_writer_version().to_string(),
    ));
    entries.sort();
    let mut keys = StringBuilder::new();
    let mut values = StringBuilder::new();
    for (key, value) in entries {
        keys.append_value(key);
        values.append_value(value);
    }
    memory_table(
        FORMAT,
        vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ],
        vec![Arc::new(keys.finish()), Arc::new(values.finish())],
    )
}

/// Makes a [`DeltaSink`] per INSERT, on the snapshot the statement was planned with (a
/// commit made since is found and reconciled by the commit's conflict checker).
#[derive(Debug)]
struct DeltaAppender {
    table: DeltaTable,
    retry: CommitRetry,
    location: String,
    guard: Option<LocationPolicy>,
}

impl Appender for DeltaAppender {
    fn format(&self) -> &'static str {
        FORMAT
    }

    fn sink(&self, schema: SchemaRef) -> DFResult<Arc<dyn DataSink>> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .snapshot()
            .clone();
        Ok(Arc::new(DeltaSink {
            log_store: self.table.log_store(),
            snapshot,
            schema,
            retry: self.retry,
            location: self.location.clone(),
            guard: self.guard.clone(),
        }))
    }
}

/// Appends an INSERT's rows: Parquet files as they stream in, then one commit to the log,
/// retried on conflict as `retry` says.
struct DeltaSink {
    log_store: LogStoreRef,
    snapshot: EagerSnapshot,
    schema: SchemaRef,
    retry: CommitRetry,
    location: String,
    guard: Option<LocationPolicy>,
}

impl fmt::Debug for DeltaSink {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeltaSink({})", self.log_store.root_url())
    }
}

impl DisplayAs for DeltaSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeltaSink: location={}", self.log_store.root_url())
    }
}

#[async_trait]
impl DataSink for DeltaSink {
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
        recheck(self.guard.as_ref(), &self.location)?;
        let operation_id = uuid::Uuid::new_v4();
        let (adds, rows) = write_files(&self.log_store, &self.snapshot, data, operation_id).await?;
        let partition_columns = self.snapshot.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partition_columns.is_empty()).then_some(partition_columns),
            predicate: None,
        };
        recheck(self.guard.as_ref(), &self.location)?;
        let actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        // An append reads nothing, but deltalake counts every file of the version it
        // commits on as read, so a commit that removed one (a DELETE, an UPDATE) fails it:
        // it is committed again on the newest version.
        let mut snapshot = self.snapshot.clone();
        let retries = self.retry.retries as usize;
        let mut attempt = 0;
        loop {
            let committed = commit(
                &snapshot,
                self.log_store.clone(),
                actions.clone(),
                operation.clone(),
                operation_id,
                CommitProperties::default().with_max_retries(retries),
            )
            .await;
            match committed {
                Ok(()) => {
                    crate::commits::committed("delta");
                    return Ok(rows);
                }
                Err(e) if rows::is_conflict(&e) && attempt < retries => {
                    crate::commits::retried("delta");
                    attempt += 1;
                    self.retry.wait(attempt as u32).await;
                    let mut latest = DeltaTable::new(self.log_store.clone(), Default::default());
                    latest
                        .load()
                        .await
                        .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    snapshot = latest
                        .snapshot()
                        .map_err(|e| DataFusionError::External(Box::new(e)))?
                        .snapshot()
                        .clone();
                }
                Err(e) => {
                    if rows::is_conflict(&e) {
                        crate::commits::conflicted("delta");
                    }
                    return Err(DataFusionError::External(Box::new(e)));
                }
            }
        }
    }
}

/// Writes a statement's rows as Parquet data files of the table `snapshot` is of (split
/// by its partition columns); answers the files, not yet committed, and the row count.
/// A NULL in a NOT NULL column fails naming the column.
async fn write_files(
    log_store: &LogStoreRef,
    snapshot: &EagerSnapshot,
    mut data: SendableRecordBatchStream,
    operation_id: uuid::Uuid,
) -> DFResult<(Vec<Add>, u64)> {
    let external = |e: deltalake::DeltaTableError| DataFusionError::External(Box::new(e));
    let target = snapshot.input_schema();
    let properties = snapshot.table_configuration().table_properties();
    let partition_columns = snapshot.metadata().partition_columns().to_vec();
    let config = WriterConfig::new(
        snapshot.read_schema(),
        partition_columns,
        None,
        Some(properties.target_file_size()),
        None,
        properties.num_indexed_cols(),
        properties
            .data_skipping_stats_columns
            .as_ref()
            .map(|columns| columns.iter().map(ToString::to_string).collect()),
    );
    let mut writer = DeltaWriter::new(log_store.object_store(Some(operation_id)), config);
    let mut rows = 0u64;
    while let Some(batch) = data.next().await {
        let batch = batch?;
        for (column, field) in batch.columns().iter().zip(target.fields()) {
            if !field.is_nullable() && column.logical_null_count() > 0 {
                return Err(DataFusionError::External(Box::new(
                    TableError::NullInNotNullColumn {
                        column: field.name().clone(),
                    },
                )));
            }
        }
        let batch =
            deltalake::kernel::schema::cast_record_batch(&batch, target.clone(), false, true)
                .map_err(external)?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).await.map_err(external)?;
    }
    let adds = writer.close().await.map_err(external)?;
    Ok((adds, rows))
}

/// Commits `actions` on top of `snapshot` as `operation`; a commit that loses a race is
/// checked against the winner's changes and retried up to `retries` times.
async fn commit(
    snapshot: &EagerSnapshot,
    log_store: LogStoreRef,
    actions: Vec<Action>,
    operation: DeltaOperation,
    operation_id: uuid::Uuid,
    properties: CommitProperties,
) -> std::result::Result<(), deltalake::DeltaTableError> {
    CommitBuilder::from(properties)
        .with_actions(actions)
        .with_operation_id(operation_id)
        .build(Some(snapshot), log_store, operation)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Schema;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn insert(provider: Arc<dyn TableProvider>, value: i32) -> DFResult<()> {
        let ctx = SessionContext::new();
        ctx.register_table("t", provider)?;
        ctx.sql(&format!("INSERT INTO t VALUES ({value})"))
            .await?
            .collect()
            .await
            .map(drop)
    }

    #[tokio::test]
    async fn a_commit_on_a_stale_version_is_retried_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let location = Url::from_directory_path(dir.path()).unwrap().to_string();
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        let columns = StructType::try_from_arrow(schema.as_ref()).unwrap();
        load(&location, &StorageOptions::default())
            .await
            .unwrap()
            .create()
            .with_columns(columns.fields().cloned())
            .await
            .unwrap();
        let record = TableRecord {
            catalog: "delta".into(),
            schema: "s".into(),
            name: "t".into(),
            location,
            external: false,
            schema_ipc: String::new(),
            properties: vec![],
            comment: None,
        };
        // Another writer commits between this writer's read and its commit.
        for (retries, lands) in [(0, false), (1, true)] {
            let store = DeltaStore::new(StorageOptions::default(), CommitRetry { retries });
            let stale = store.open(&record, schema.clone()).await.unwrap();
            let current = store.open(&record, schema.clone()).await.unwrap();
            insert(current, 1).await.unwrap();
            assert_eq!(insert(stale, 2).await.is_ok(), lands, "retries = {retries}");
        }
        let table = load(&record.location, &StorageOptions::default())
            .await
            .unwrap();
        assert_eq!(table.version(), Some(3), "the create, one insert, then two");
    }
}
