//! Scans and appends for one Iceberg table.
//!
//! Scans are iceberg-datafusion's. Appends are ours: an INSERT streams its rows into
//! [`IcebergSink`], which shapes every batch to the table's Arrow schema (with the field
//! ids Iceberg keys columns by, nested ones included), routes rows to one data file writer
//! per partition, and commits all files in one fast-append snapshot only after the last
//! row was written. A statement that fails part-way commits nothing.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;
use iceberg::arrow::{schema_to_arrow_schema, RecordBatchPartitionSplitter};
use iceberg::spec::{DataFile, DataFileFormat, PartitionKey, Struct};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::partitioning::fanout_writer::FanoutWriter;
use iceberg::writer::partitioning::PartitioningWriter;
use iceberg::{Catalog, ErrorKind, TableIdent};
use iceberg_datafusion::IcebergStaticTableProvider;

use crate::append::{AppendableTable, Appender};
use crate::{CommitRetry, TableError};

pub(super) fn df_error(e: iceberg::Error) -> DataFusionError {
    match super::guard::unreachable_message(&e) {
        Some(message) => {
            DataFusionError::External(Box::new(TableError::MetastoreUnavailable { message }))
        }
        None => DataFusionError::External(Box::new(e)),
    }
}

/// One Iceberg table as DataFusion sees it: scans of the snapshot loaded at planning time,
/// appends committed to the catalog. The engine plans with the table's columns without the
/// field ids of nested fields (see [`plain_type`]), and nullable, so that the sink checks
/// NOT NULL columns and names the column in its error.
pub(crate) async fn table_provider(
    catalog: Arc<dyn Catalog>,
    retry: CommitRetry,
    table: Table,
) -> iceberg::Result<AppendableTable<IcebergAppender>> {
    let ident = table.identifier().clone();
    // iceberg-rust reads a snapshot with the schema it was written with: after a column
    // was renamed, widened or added and before the next write, the scan maps columns by
    // field id itself.
    let metadata = table.metadata();
    let evolved = metadata
        .current_snapshot()
        .and_then(|s| s.schema_id())
        .is_some_and(|id| id != metadata.current_schema_id());
    let (scan, schema): (Arc<dyn TableProvider>, SchemaRef) = if evolved {
        let scan = super::rows::PathScan::current(table)
            .map_err(|e| iceberg::Error::new(ErrorKind::DataInvalid, e.to_string()))?;
        let schema = scan.schema();
        (Arc::new(scan), schema)
    } else {
        let scan = IcebergStaticTableProvider::try_new_from_table(table).await?;
        let schema = Arc::new(Schema::new_with_metadata(
            scan.schema()
                .fields()
                .iter()
                .map(|f| planned_field(f))
                .collect::<Vec<_>>(),
            scan.schema().metadata().clone(),
        ));
        (Arc::new(scan), schema)
    };
    Ok(AppendableTable::new(
        scan,
        schema,
        IcebergAppender {
            catalog,
            retry,
            ident,
        },
    ))
}

/// Makes an [`IcebergSink`] per INSERT.
#[derive(Debug)]
pub(crate) struct IcebergAppender {
    catalog: Arc<dyn Catalog>,
    retry: CommitRetry,
    ident: TableIdent,
}

impl Appender for IcebergAppender {
    fn format(&self) -> &'static str {
        "Iceberg"
    }

    fn sink(&self, schema: SchemaRef) -> DFResult<Arc<dyn DataSink>> {
        Ok(Arc::new(IcebergSink {
            catalog: self.catalog.clone(),
            retry: self.retry,
            ident: self.ident.clone(),
            schema,
        }))
    }
}

/// Writes an INSERT's rows as Parquet data files and commits them as one snapshot.
#[derive(Debug)]
struct IcebergSink {
    catalog: Arc<dyn Catalog>,
    retry: CommitRetry,
    ident: TableIdent,
    schema: SchemaRef,
}

impl DisplayAs for IcebergSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "IcebergSink: table={}", self.ident)
    }
}

#[async_trait]
impl DataSink for IcebergSink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DFResult<u64> {
        // The newest metadata: a commit made since planning must not be lost.
        let table = self
            .catalog
            .load_table(&self.ident)
            .await
            .map_err(df_error)?;
        // Data files go under the table's own location only (each file is checked against
        // the location policy by the storage as it is written).
        super::commit::check_write_paths(table.metadata(), None)
            .map_err(|message| df_error(iceberg::Error::new(ErrorKind::DataInvalid, message)))?;
        let mut writer = TableWriter::try_new(&table).map_err(df_error)?;
        let mut rows = 0u64;
        while let Some(batch) = data.next().await {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            writer.write(batch).await?;
        }
        let files = writer.close().await.map_err(df_error)?;
        if files.is_empty() {
            return Ok(rows);
        }
        // Another writer may commit between our load and our commit: then the files are
        // appended again on top of the newest snapshot, a bounded number of times.
        let mut table = table;
        let mut attempt = 0;
        loop {
            let tx = Transaction::new(&table);
            let tx = tx
                .fast_append()
                .add_data_files(files.clone())
                .apply(tx)
                .map_err(df_error)?;
            match tx.commit(self.catalog.as_ref()).await {
                Ok(_) => {
                    crate::commits::committed("iceberg");
                    return Ok(rows);
                }
                Err(e)
                    if e.kind() == ErrorKind::CatalogCommitConflicts
                        && attempt < self.retry.retries =>
                {
                    crate::commits::retried("iceberg");
                    attempt += 1;
                    self.retry.wait(attempt).await;
                    table = self
                        .catalog
                        .load_table(&self.ident)
                        .await
                        .map_err(df_error)?;
                }
                Err(e) => {
                    if e.kind() == ErrorKind::CatalogCommitConflicts {
                        crate::commits::conflicted("iceberg");
                    }
                    return Err(df_error(e));
                }
            }
        }
    }
}

type FileWriterBuilder =
    DataFileWriterBuilder<ParquetWriterBuilder, DefaultLocationGenerator, DefaultFileNameGenerator>;

enum Files {
    /// One writer for every row, under the unpartitioned spec's key: its files name that
    /// spec's id, which is not 0 once a table had another spec.
    Unpartitioned(Box<(PartitionKey, FanoutWriter<FileWriterBuilder>)>),
    Partitioned(
        Box<(
            RecordBatchPartitionSplitter,
            FanoutWriter<FileWriterBuilder>,
        )>,
    ),
}

/// Data file writers for one statement against one table version.
pub(super) struct TableWriter {
    /// The table's columns as Arrow fields carrying their Iceberg field ids.
    schema: SchemaRef,
    files: Files,
}

impl TableWriter {
    pub(super) fn try_new(table: &Table) -> iceberg::Result<Self> {
        let metadata = table.metadata();
        let iceberg_schema = metadata.current_schema().clone();
        let properties = metadata.table_properties()?;
        let parquet =
            ParquetWriterBuilder::from_table_properties(&properties, iceberg_schema.clone());
        let rolling = RollingFileWriterBuilder::new(
            parquet,
            properties.write_target_file_size_bytes,
            table.file_io().clone(),
            DefaultLocationGenerator::new(metadata)?,
            DefaultFileNameGenerator::new(
                uuid::Uuid::new_v4().to_string(),
                None,
                DataFileFormat::Parquet,
            ),
        );
        let builder = DataFileWriterBuilder::new(rolling);
        let spec = metadata.default_partition_spec().clone();
        let files = if spec.is_unpartitioned() {
            let key = PartitionKey::new(
                spec.as_ref().clone(),
                iceberg_schema.clone(),
                Struct::empty(),
            );
            Files::Unpartitioned(Box::new((key, FanoutWriter::new(builder))))
        } else {
            Files::Partitioned(Box::new((
                RecordBatchPartitionSplitter::try_new_with_computed_values(
                    iceberg_schema.clone(),
                    spec,
                )?,
                FanoutWriter::new(builder),
            )))
        };
        Ok(Self {
            schema: Arc::new(schema_to_arrow_schema(&iceberg_schema)?),
            files,
        })
    }

    pub(super) async fn write(&mut self, batch: RecordBatch) -> DFResult<()> {
        let batch = conform(&batch, &self.schema)?;
        match &mut self.files {
            Files::Unpartitioned(parts) => {
                let (key, writer) = parts.as_mut();
                writer.write(key.clone(), batch).await.map_err(df_error)
            }
            Files::Partitioned(parts) => {
                let (splitter, writer) = parts.as_mut();
                for (key, part) in splitter.split(&batch).map_err(df_error)? {
                    writer.write(key, part).await.map_err(df_error)?;
                }
                Ok(())
            }
        }
    }

    pub(super) async fn close(self) -> iceberg::Result<Vec<DataFile>> {
        match self.files {
            Files::Unpartitioned(parts) => parts.1.close().await,
            Files::Partitioned(parts) => parts.1.close().await,
        }
    }
}

/// Gives a batch the table's exact Arrow schema. DataFusion casts INSERT input to the
/// table's column types but drops the field ids of nested fields, which Iceberg needs.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> DFResult<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(DataFusionError::Internal(format!(
            "insert produced {} columns for a table of {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                cast(column, field.data_type()).map_err(DataFusionError::from)
            }
        })
        .collect::<DFResult<Vec<ArrayRef>>>()?;
    for (column, field) in columns.iter().zip(schema.fields()) {
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(DataFusionError::External(Box::new(
                TableError::NullInNotNullColumn {
                    column: field.name().clone(),
                },
            )));
        }
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A column as the engine plans with it: [`plain_type`], and nullable so that the sink
/// checks NOT NULL columns and names the column in its error.
pub(super) fn planned_field(field: &Field) -> Field {
    field
        .clone()
        .with_data_type(plain_type(field.data_type()))
        .with_nullable(true)
}

/// A type with the metadata of its nested fields removed. DataFusion does not carry field
/// metadata through every expression (VALUES rows, casts), so the types the engine plans
/// with leave it out; [`conform`] puts the field ids back before writing.
pub(super) fn plain_type(data_type: &DataType) -> DataType {
    let plain = |field: &FieldRef| -> FieldRef {
        Arc::new(Field::new(
            field.name(),
            plain_type(field.data_type()),
            field.is_nullable(),
        ))
    };
    match data_type {
        DataType::List(f) => DataType::List(plain(f)),
        DataType::LargeList(f) => DataType::LargeList(plain(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(plain(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(plain).collect()),
        DataType::Map(f, sorted) => DataType::Map(plain(f), *sorted),
        other => other.clone(),
    }
}
