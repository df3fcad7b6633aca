//! The `hive` catalog: tables as folders of Parquet, CSV or JSON files with Hive-style
//! partition folders (`dt=2025-01-01/`), read and written by DataFusion's listing tables.
//!
//! An INSERT writes its files into a staging folder inside the table folder
//! (`_aichemy-staging-<uuid>/`, which readers skip like every folder without `=`), and
//! moves them into place only after the last row was written; a statement that fails
//! part-way leaves the table as it was.

use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use aichemy_metastore::TableRecord;
use aichemy_storage::StoreRegistry;
use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{
    Column as DFColumn, ColumnStatistics, DataFusionError, Result as DFResult, Statistics,
};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_expr::{Distribution, PhysicalExpr};
use datafusion::physical_plan::filter::FilterExecBuilder;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use crate::claims::{local_root, really_inside};
use crate::estimates::{TableEstimate, TableStatistics};
use crate::locations::percent_decode;
use crate::registered::TableStore;
use crate::{CreateTableRequest, PartitionedTable, PropertyValue, Result, TableError};

mod distinct;
mod selectivity;

const FORMAT: &str = "Hive";

/// File formats of hive tables.
#[derive(Debug, Clone, Copy, PartialEq)]
enum HiveFileFormat {
    Parquet,
    Csv,
    Json,
}

impl HiveFileFormat {
    fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PARQUET" => Ok(Self::Parquet),
            "CSV" => Ok(Self::Csv),
            "JSON" => Ok(Self::Json),
            other => Err(TableError::InvalidProperty {
                property: "format".into(),
                message: format!(
                    "Hive storage format '{other}' is not supported; use PARQUET, CSV or JSON"
                ),
            }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Parquet => "PARQUET",
            Self::Csv => "CSV",
            Self::Json => "JSON",
        }
    }

    /// How the session reads files of this format; Parquet follows the session's
    /// `datafusion.execution.parquet.*` settings (filter pushdown, page index, …).
    fn listing_options(self, session: &dyn Session) -> ListingOptions {
        let (format, extension): (Arc<dyn FileFormat>, &str) = match self {
            Self::Parquet => (
                Arc::new(
                    ParquetFormat::default().with_options(session.table_options().parquet.clone()),
                ),
                ".parquet",
            ),
            // Hive's CSV tables have no header line.
            // Rows of files written before ADD COLUMN are short: the new column reads NULL.
            Self::Csv => (
                Arc::new(
                    CsvFormat::default()
                        .with_has_header(false)
                        .with_truncated_rows(true),
                ),
                ".csv",
            ),
            Self::Json => (Arc::new(JsonFormat::default()), ".json"),
        };
        ListingOptions::new(format).with_file_extension(extension)
    }
}

/// Hive tables over the stores of a [`StoreRegistry`].
#[derive(Debug)]
pub struct HiveStore {
    stores: Arc<StoreRegistry>,
}

impl HiveStore {
    pub fn new(stores: Arc<StoreRegistry>) -> Self {
        Self { stores }
    }
}

fn storage_error(e: impl fmt::Display) -> TableError {
    TableError::Storage {
        message: e.to_string(),
    }
}

/// Whether anything is stored under a location.
async fn has_objects(store: &dyn ObjectStore, prefix: &Path) -> Result<bool> {
    let listing = store
        .list_with_delimiter(Some(prefix))
        .await
        .map_err(storage_error)?;
    Ok(!listing.objects.is_empty() || !listing.common_prefixes.is_empty())
}

fn format_of(properties: &[(String, String)]) -> HiveFileFormat {
    properties
        .iter()
        .find(|(k, _)| k == "format")
        .and_then(|(_, v)| PropertyValue::from_sql(v))
        .and_then(|v| match v {
            PropertyValue::String(s) => HiveFileFormat::parse(&s).ok(),
            _ => None,
        })
        .unwrap_or(HiveFileFormat::Parquet)
}

fn partition_columns_of(properties: &[(String, String)]) -> Vec<String> {
    match properties
        .iter()
        .find(|(k, _)| k == "partitioned_by")
        .and_then(|(_, v)| PropertyValue::from_sql(v))
    {
        Some(PropertyValue::Array(columns)) => columns,
        _ => Vec::new(),
    }
}

#[async_trait]
impl TableStore for HiveStore {
    fn format_name(&self) -> &'static str {
        FORMAT
    }

    fn table_properties(&self) -> &'static [&'static str] {
        &["format", "partitioned_by", "external_location"]
    }

    async fn create(
        &self,
        location: &str,
        schema: &SchemaRef,
        request: &CreateTableRequest,
        external: bool,
    ) -> Result<Vec<(String, PropertyValue)>> {
        let format = match request.string_property("format")? {
            Some(name) => HiveFileFormat::parse(&name)?,
            None => HiveFileFormat::Parquet,
        };
        let partitioned_by = request.column_list_property("partitioned_by")?;
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for column in &partitioned_by {
            if !names.contains(&column.as_str()) {
                return Err(TableError::InvalidProperty {
                    property: "partitioned_by".into(),
                    message: format!("Partition columns {partitioned_by:?} not present in schema"),
                });
            }
        }
        if names[names.len() - partitioned_by.len()..] != partitioned_by[..] {
            return Err(TableError::InvalidProperty {
                property: "partitioned_by".into(),
                message: format!(
                    "Partition keys must be the last columns in the table and in the same order as the table properties: {partitioned_by:?}"
                ),
            });
        }
        if partitioned_by.len() == names.len() {
            return Err(TableError::InvalidProperty {
                property: "partitioned_by".into(),
                message: "Table contains only partition columns".into(),
            });
        }
        for field in schema.fields() {
            let nested = matches!(
                field.data_type(),
                DataType::List(_) | DataType::Map(..) | DataType::Struct(_)
            );
            let partition = partitioned_by.contains(field.name());
            if (nested && (format == HiveFileFormat::Csv || partition))
                || matches!(field.data_type(), DataType::Time64(_) | DataType::Time32(_))
            {
                let column = request
                    .columns
                    .iter()
                    .find(|c| &c.name == field.name())
                    .map(|c| c.trino_type.clone())
                    .unwrap_or_default();
                return Err(TableError::UnsupportedType {
                    format: FORMAT,
                    column: field.name().clone(),
                    trino_type: column,
                });
            }
        }
        let (store, prefix) = self.stores.resolve(location).map_err(storage_error)?;
        let exists = has_objects(store.as_ref(), &prefix).await?;
        if external && !exists {
            return Err(TableError::InvalidProperty {
                property: "external_location".into(),
                message: format!("External location does not exist or is empty: {location}"),
            });
        }
        if !external && exists {
            return Err(TableError::Storage {
                message: format!(
                    "Target directory for table '{}.{}' already exists: {location}",
                    request.schema, request.name
                ),
            });
        }
        let mut properties = vec![(
            "format".to_string(),
            PropertyValue::String(format.name().into()),
        )];
        if !partitioned_by.is_empty() {
            properties.push((
                "partitioned_by".to_string(),
                PropertyValue::Array(partitioned_by),
            ));
        }
        if external {
            properties.push((
                "external_location".to_string(),
                PropertyValue::String(location.to_string()),
            ));
        }
        Ok(properties)
    }

    async fn open(
        &self,
        record: &TableRecord,
        schema: SchemaRef,
    ) -> Result<Arc<dyn TableProvider>> {
        let (store, folder) = self
            .stores
            .resolve(&record.location)
            .map_err(storage_error)?;
        let format = format_of(&record.properties);
        let partition_columns = partition_columns_of(&record.properties);
        Ok(Arc::new(HiveTable {
            location: format!("{}/", record.location.trim_end_matches('/')),
            folder,
            format,
            partition_columns,
            schema,
            store,
            files: OnceLock::new(),
            footers: OnceLock::new(),
        }))
    }

    fn partitions(&self, record: &TableRecord) -> Result<Option<Arc<dyn PartitionedTable>>> {
        let (store, folder) = self
            .stores
            .resolve(&record.location)
            .map_err(storage_error)?;
        Ok(Some(Arc::new(HivePartitions {
            location: record.location.clone(),
            store,
            folder,
            columns: partition_columns_of(&record.properties),
            external: record
                .properties
                .iter()
                .any(|(k, _)| k == "external_location"),
        })))
    }

    /// Files written before the column read it as NULL, so only the record changes. A
    /// partitioned table is refused: its partition columns must stay last.
    async fn add_column(&self, record: &TableRecord, _schema: &SchemaRef) -> Result<()> {
        if !partition_columns_of(&record.properties).is_empty() {
            return Err(TableError::Storage {
                message: "Adding columns to partitioned hive tables is not supported".into(),
            });
        }
        Ok(())
    }
}

/// The partitions of one hive table, as its folders hold them.
#[derive(Debug)]
struct HivePartitions {
    location: String,
    store: Arc<dyn ObjectStore>,
    folder: Path,
    columns: Vec<String>,
    external: bool,
}

/// The folder name of a NULL partition value.
const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

impl HivePartitions {
    /// The table's data files, each with its partition's values; files in folders readers
    /// skip (staging folders, names without `=`) are left out.
    async fn files(&self) -> Result<Vec<(Path, Vec<Option<String>>)>> {
        let listed: Vec<Path> = self
            .store
            .list(Some(&self.folder))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(storage_error)?;
        let mut files = Vec::new();
        for path in listed {
            let Some(parts) = path.prefix_match(&self.folder) else {
                continue;
            };
            let parts: Vec<String> = parts.map(|p| percent_decode(p.as_ref())).collect();
            let Some((_, folders)) = parts.split_last() else {
                continue;
            };
            if folders.len() != self.columns.len() {
                continue;
            }
            let values: Option<Vec<Option<String>>> = folders
                .iter()
                .zip(&self.columns)
                .map(|(folder, column)| {
                    let (name, value) = folder.split_once('=')?;
                    (name == column).then(|| (value != DEFAULT_PARTITION).then(|| value.into()))
                })
                .collect();
            if let Some(values) = values {
                files.push((path, values));
            }
        }
        Ok(files)
    }
}

#[async_trait]
impl PartitionedTable for HivePartitions {
    fn partition_columns(&self) -> Vec<String> {
        self.columns.clone()
    }

    async fn partitions(&self) -> Result<Vec<Vec<Option<String>>>> {
        let partitions: BTreeSet<Vec<Option<String>>> = self
            .files()
            .await?
            .into_iter()
            .map(|(_, values)| values)
            .collect();
        Ok(partitions.into_iter().collect())
    }

    async fn delete_partitions(&self, partitions: &[Vec<Option<String>>]) -> Result<()> {
        if self.external {
            return Err(TableError::NotSupported {
                message: "Cannot delete from non-managed Hive table".into(),
            });
        }
        let root = local_root(&self.location);
        for (path, values) in self.files().await? {
            if !partitions.contains(&values)
                || root
                    .as_ref()
                    .is_some_and(|root| !really_inside(root, &path))
            {
                continue;
            }
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error(e)),
            }
        }
        Ok(())
    }
}

/// The schema with its varchar file columns as `Utf8View`, the type DataFusion's
/// Parquet reader produces without copying the strings. Partition columns come from
/// folder names and keep their type.
fn string_views(schema: &SchemaRef, partition_columns: &[String]) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 if !partition_columns.contains(field.name()) => {
                Arc::new(field.as_ref().clone().with_data_type(DataType::Utf8View))
            }
            _ => field.clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// One hive table: a listing table over its folder, with staged inserts.
#[derive(Debug)]
struct HiveTable {
    /// The table folder, ending in `/`.
    location: String,
    format: HiveFileFormat,
    partition_columns: Vec<String>,
    /// The table folder in its store.
    folder: Path,
    /// The declared schema: what scans produce and inserts write.
    schema: SchemaRef,
    store: Arc<dyn ObjectStore>,
    /// The table's files, once [`HiveTable::measure`] has listed them.
    files: OnceLock<Vec<ObjectMeta>>,
    /// The rows, min and max of each column (in the declared schema's order) that the
    /// footers of a Parquet table's files hold, once [`HiveTable::measure`] has read them.
    footers: OnceLock<Statistics>,
}

/// The most files whose footers [`HiveTable::measure`] reads: a table of more is
/// estimated without them rather than read at every statement that names it.
const MEASURED_FOOTERS: usize = 64;

/// Footers read at once (each one request to an object store).
const FOOTERS_AT_ONCE: usize = 8;

/// The statistics hook of `provider` when it is a hive table.
pub(crate) fn statistics_of(provider: &dyn TableProvider) -> Option<&dyn TableStatistics> {
    let table = provider.as_any().downcast_ref::<HiveTable>()?;
    Some(table)
}

/// A hive table's estimates: the size of its files once [`HiveTable::measure`] has listed
/// them, and the rows and filter shares of a Parquet table whose footers it has read.
#[async_trait]
impl TableStatistics for HiveTable {
    async fn gather(&self, session: &dyn Session) {
        self.measure(session).await;
    }

    fn estimate(&self, filters: &[Expr], default: f64) -> TableEstimate {
        let rows = self
            .footers
            .get()
            .and_then(|footers| footers.num_rows.get_value().copied());
        TableEstimate {
            rows: rows.and_then(|rows| u64::try_from(rows).ok()),
            bytes: self.file_bytes(),
            kept_share: self.kept_share(filters, default),
        }
    }
}

impl HiveTable {
    /// Lists the table's files, so that its statistics tell the optimizer how large it is
    /// (the join order takes small filtered tables first) and its scan can count the
    /// distinct values of the text columns it filters, and reads the footers of a Parquet
    /// table of at most [`MEASURED_FOOTERS`] files, so that [`HiveTable::kept_share`] can
    /// estimate its filters before the plan is made. A table whose files cannot be listed
    /// is left as it is: its scan reports that error.
    async fn measure(&self, session: &dyn Session) {
        if self.files.get().is_some() {
            return;
        }
        let files = self
            .store
            .list(Some(&self.folder))
            .try_filter(|meta| {
                let hidden = meta
                    .location
                    .prefix_match(&self.folder)
                    .is_some_and(|mut parts| {
                        parts.any(|part| part.as_ref().starts_with(['_', '.']))
                    });
                futures::future::ready(!hidden)
            })
            .try_collect()
            .await;
        let Ok(files) = files else {
            return;
        };
        let files = self.files.get_or_init(|| files);
        if self.format == HiveFileFormat::Parquet && files.len() <= MEASURED_FOOTERS {
            if let Some(statistics) = self.read_footers(session, files).await {
                let _ = self.footers.set(statistics);
            }
        }
    }

    /// The share of the table's rows that `filters` keep, estimated from the min and max
    /// of its files' footers (see [`selectivity::estimate`]) once [`HiveTable::measure`]
    /// has read them; `default` stands for each condition they cannot bound.
    fn kept_share(&self, filters: &[Expr], default: f64) -> Option<f64> {
        let statistics = self.footers.get()?;
        let filters = filters
            .iter()
            .map(unqualified)
            .collect::<DFResult<Vec<_>>>()
            .ok()?;
        selectivity::estimate(&filters, &self.schema, statistics, default)
    }

    /// The size of the table's files once [`HiveTable::measure`] has listed them.
    fn file_bytes(&self) -> Option<u64> {
        Some(self.files.get()?.iter().map(|file| file.size).sum())
    }

    /// The statistics of `files`' footers, merged, with a column of the declared schema
    /// that no file holds (a partition column) unknown; `None` when a footer cannot be
    /// read.
    async fn read_footers(
        &self,
        session: &dyn Session,
        files: &[ObjectMeta],
    ) -> Option<Statistics> {
        let cache = session
            .runtime_env()
            .cache_manager
            .get_file_metadata_cache();
        let file_schema = self.in_files(&self.schema);
        // Each read owns what it reads: a stream of futures borrowing them is not `Send`
        // for every lifetime, as the server's query tasks need.
        let each = futures::stream::iter(files.to_vec())
            .map(|file| {
                let (store, cache) = (self.store.clone(), cache.clone());
                let file_schema = file_schema.clone();
                async move {
                    DFParquetMetadata::new(store.as_ref(), &file)
                        .with_file_metadata_cache(Some(cache))
                        .fetch_statistics(&file_schema)
                        .await
                }
            })
            .buffered(FOOTERS_AT_ONCE)
            .try_collect::<Vec<_>>()
            .await
            .ok()?;
        let merged = Statistics::try_merge_iter(&each, &file_schema).ok()?;
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| match file_schema.index_of(field.name()) {
                Ok(index) => merged.column_statistics[index].clone(),
                Err(_) => ColumnStatistics::new_unknown(),
            })
            .collect();
        Some(Statistics {
            column_statistics: columns,
            ..merged
        })
    }

    /// The columns of `schema` that the files hold: all but the partition columns.
    fn in_files(&self, schema: &Schema) -> SchemaRef {
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .filter(|field| !self.partition_columns.contains(field.name()))
            .cloned()
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// A listing table over `folder` whose rows have `schema`.
    fn listing(
        &self,
        session: &dyn Session,
        folder: &str,
        schema: &SchemaRef,
    ) -> DFResult<ListingTable> {
        let url = ListingTableUrl::parse(folder)?;
        session
            .runtime_env()
            .register_object_store(url.as_ref(), self.store.clone());
        let partition_cols = self
            .partition_columns
            .iter()
            .map(|name| {
                let field = schema.field_with_name(name)?;
                Ok((name.clone(), field.data_type().clone()))
            })
            .collect::<DFResult<Vec<_>>>()?;
        let options = self
            .format
            .listing_options(session)
            .with_table_partition_cols(partition_cols)
            .with_session_config_options(session.config());
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(self.in_files(schema));
        ListingTable::try_new(config)
    }

    /// The statistics of `scan`, with the distinct values of the text columns `filters`
    /// compare with texts counted from the files' dictionaries (partition columns, not in
    /// the files, stay uncounted).
    async fn with_distinct_values(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        scan: &Arc<dyn ExecutionPlan>,
    ) -> DFResult<Statistics> {
        let mut statistics = scan.partition_statistics(None)?;
        let Some(files) = self.files.get() else {
            return Ok(statistics);
        };
        let schema = scan.schema();
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        for column in selectivity::text_columns(filters, &schema) {
            let Ok(index) = schema.index_of(column) else {
                continue;
            };
            let counted =
                distinct::distinct_values(self.store.as_ref(), files, column, Some(cache.clone()))
                    .await;
            if let Some(distinct) = counted {
                statistics.column_statistics[index].distinct_count =
                    Precision::Inexact(distinct.round() as usize);
            }
        }
        Ok(statistics)
    }
}

#[async_trait]
impl TableProvider for HiveTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// The size of the table's files once [`HiveTable::measure`] has listed them; no row
    /// counts.
    fn statistics(&self) -> Option<Statistics> {
        let bytes = usize::try_from(self.file_bytes()?).ok()?;
        Some(Statistics::new_unknown(&self.schema).with_total_byte_size(Precision::Inexact(bytes)))
    }

    /// Parquet string columns are read as views, filtered, and only then copied into
    /// the declared `Utf8` by one projection: a selective filter on a string column
    /// compares views instead of first copying every value. Views are not kept past
    /// that projection: hash joins concatenate and take from them batch by batch, and
    /// every output batch then references all the input's string buffers (TPC-H q18 ran
    /// 3 times slower). An aggregate grouping on such a column takes the copy out of the
    /// projection and groups on the views (`view_group_keys` in the engine).
    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if self.format != HiveFileFormat::Parquet {
            return self
                .listing(state, &self.location, &self.schema)?
                .scan(state, projection, filters, limit)
                .await;
        }
        let wanted: Vec<usize> = match projection {
            Some(columns) => columns.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let filtered: BTreeSet<&str> = filters
            .iter()
            .flat_map(Expr::column_refs)
            .map(|column| column.name.as_str())
            .collect();
        let mut read = wanted.clone();
        for name in &filtered {
            let index = self.schema.index_of(name)?;
            if !read.contains(&index) {
                read.push(index);
            }
        }
        let read_schema = string_views(&self.schema, &self.partition_columns);
        let listing = self.listing(state, &self.location, &read_schema)?;
        let mut plan = listing
            .scan(
                state,
                Some(&read),
                filters,
                limit.filter(|_| filters.is_empty()),
            )
            .await?;
        let own_columns = filters
            .iter()
            .map(unqualified)
            .collect::<DFResult<Vec<_>>>()?;
        if let Some(predicate) = conjunction(own_columns.clone()) {
            let predicate = state.create_physical_expr(predicate, &plan.schema().try_into()?)?;
            let options = state.config_options();
            // DataFusion's own estimate, where it has one, comes before this share:
            // the share stands in for its fixed default.
            let default = options.optimizer.default_filter_selectivity;
            let statistics = self
                .with_distinct_values(state, &own_columns, &plan)
                .await?;
            let share = selectivity::estimate(
                &own_columns,
                &plan.schema(),
                &statistics,
                f64::from(default) / 100.0,
            );
            let percent = share.map_or(default, |share| {
                (share * 100.0).round().clamp(1.0, 100.0) as u8
            });
            plan = Arc::new(
                FilterExecBuilder::new(predicate, plan)
                    .with_default_selectivity(percent)
                    .with_batch_size(options.execution.batch_size)
                    .with_fetch(limit)
                    .build()?,
            );
        }
        let scanned = plan.schema();
        let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = wanted
            .iter()
            .enumerate()
            .map(|(position, &index)| {
                let field = self.schema.field(index);
                let column = Arc::new(Column::new(field.name(), position));
                let expr: Arc<dyn PhysicalExpr> =
                    if scanned.field(position).data_type() == field.data_type() {
                        column
                    } else {
                        Arc::new(CastExpr::new(column, field.data_type().clone(), None))
                    };
                (expr, field.name().clone())
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }

    /// Parquet tables apply every filter in [`Self::scan`]; the others prune partition
    /// folders, and the rest of their filters are applied after the scan.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DFResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| {
                let columns = filter.column_refs();
                if self.format == HiveFileFormat::Parquet
                    || !columns.is_empty()
                        && columns
                            .iter()
                            .all(|c| self.partition_columns.contains(&c.name))
                {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} is not supported for hive tables"
            )));
        }
        let staging = format!(
            "{}_aichemy-staging-{}/",
            self.location,
            uuid::Uuid::new_v4()
        );
        let write = self
            .listing(state, &staging, &self.schema)?
            .insert_into(state, input, insert_op)
            .await?;
        Ok(Arc::new(PublishExec {
            input: write,
            store: self.store.clone(),
            staging: object_path(&staging)?,
            table: object_path(&self.location)?,
        }))
    }
}

/// A filter over the table's own columns, without their table qualifier.
fn unqualified(filter: &Expr) -> DFResult<Expr> {
    filter
        .clone()
        .transform(|expr| {
            Ok(match expr {
                Expr::Column(column) if column.relation.is_some() => {
                    Transformed::yes(Expr::Column(DFColumn::new_unqualified(column.name)))
                }
                other => Transformed::no(other),
            })
        })
        .data()
}

/// The object path of a location URL.
fn object_path(location: &str) -> DFResult<Path> {
    Ok(ListingTableUrl::parse(location)?.prefix().clone())
}

/// Runs a staged write, then moves its files into the table folder; on failure it removes
/// the staged files instead.
#[derive(Debug)]
struct PublishExec {
    input: Arc<dyn ExecutionPlan>,
    store: Arc<dyn ObjectStore>,
    staging: Path,
    table: Path,
}

impl DisplayAs for PublishExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "PublishExec: staging={}", self.staging)
    }
}

impl PublishExec {
    async fn publish(store: &dyn ObjectStore, staging: &Path, table: &Path) -> DFResult<()> {
        let staged: Vec<Path> = store
            .list(Some(staging))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        for from in staged {
            let relative: Vec<_> = from.prefix_match(staging).into_iter().flatten().collect();
            let to = relative
                .into_iter()
                .fold(table.clone(), |path, part| path.clone().join(part));
            store.rename(&from, &to).await?;
        }
        Ok(())
    }

    async fn discard(store: &dyn ObjectStore, staging: &Path) {
        let paths = store
            .list(Some(staging))
            .map_ok(|meta| meta.location)
            .boxed();
        let _ = store.delete_stream(paths).try_collect::<Vec<_>>().await;
    }
}

impl ExecutionPlan for PublishExec {
    fn name(&self) -> &str {
        "PublishExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// One write, published once: the input must stay a single stream.
    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(PublishExec {
            input: children[0].clone(),
            store: self.store.clone(),
            staging: self.staging.clone(),
            table: self.table.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let schema = self.input.schema();
        let written = self.input.execute(partition, context)?;
        let store = self.store.clone();
        let staging = self.staging.clone();
        let table = self.table.clone();
        let result_schema = schema.clone();
        let stream = futures::stream::once(async move {
            let batches: DFResult<Vec<RecordBatch>> = written.try_collect().await;
            let published = match batches {
                Ok(batches) => Self::publish(store.as_ref(), &staging, &table)
                    .await
                    .map(|()| batches),
                Err(e) => Err(e),
            };
            match published {
                Ok(batches) => Ok(concat_batches(&result_schema, &batches)?),
                Err(e) => {
                    Self::discard(store.as_ref(), &staging).await;
                    Err(e)
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::datasource::MemTable;
    use datafusion::logical_expr::{col, lit};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::prelude::SessionContext;
    use object_store::memory::InMemory;

    use crate::estimates::statistics_of;

    /// A Parquet hive table at `t/` of one file whose column `n` holds 0 to 999.
    async fn table() -> HiveTable {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema.clone(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let store = Arc::new(InMemory::new());
        store
            .put(&Path::from("t/part-0.parquet"), bytes.into())
            .await
            .unwrap();
        HiveTable {
            location: "memory:///t/".into(),
            format: HiveFileFormat::Parquet,
            partition_columns: Vec::new(),
            folder: Path::from("t"),
            schema,
            store,
            files: OnceLock::new(),
            footers: OnceLock::new(),
        }
    }

    #[tokio::test]
    async fn hive_tables_estimate_their_rows_bytes_and_filters_once_gathered() {
        let table = table().await;
        let hook = statistics_of(&table).expect("hive tables have statistics");
        let kept = [col("n").lt(lit(250i64))];
        assert_eq!(hook.estimate(&kept, 0.2), TableEstimate::default());

        let session = SessionContext::new().state();
        hook.gather(&session).await;
        let estimate = hook.estimate(&kept, 0.2);
        let size = table.store.head(&Path::from("t/part-0.parquet")).await;
        assert_eq!(estimate.rows, Some(1000));
        assert_eq!(estimate.bytes, Some(size.unwrap().size));
        let share = estimate.kept_share.unwrap();
        assert!((0.2..0.3).contains(&share), "{share}");
        // The scan's filters name the table; the share is the same.
        let qualified = [Expr::Column(DFColumn::new(Some("t"), "n")).lt(lit(250i64))];
        assert_eq!(hook.estimate(&qualified, 0.2).kept_share, Some(share));
        // A condition the footers cannot bound gives no share.
        let unbounded = [(col("n") % lit(2i64)).eq(lit(0i64))];
        assert_eq!(hook.estimate(&unbounded, 0.2).kept_share, None);
    }

    #[test]
    fn other_providers_have_no_statistics() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let memory = MemTable::try_new(schema, vec![Vec::new()]).unwrap();
        assert!(statistics_of(&memory).is_none());
    }
}
