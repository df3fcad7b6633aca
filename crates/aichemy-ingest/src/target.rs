//! The tables a job writes: its target (created on first use), the dead-letter table next
//! to it, appends that record the source position in the same commit, and the upkeep
//! (compaction, snapshot expiry, orphan removal) that keeps a table committed to every
//! second healthy.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{
    BinaryBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondArray, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use aichemy_engine::ingestion::{KafkaColumn, MessageFormat};
use aichemy_engine::{Lakehouse, QualifiedName, Session, TrinoError};
use aichemy_tables::{Recording, RowLevelTable};

use crate::decode::{attribute_type, Rejected, INGESTED_AT};
use crate::JobError;

/// Quotes an identifier for SQL.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table a job appends to.
pub struct Table {
    lakehouse: Arc<Lakehouse>,
    pub name: QualifiedName,
    /// The user whose session creates and maintains it (the job's owner).
    owner: String,
}

impl Table {
    pub fn new(lakehouse: Arc<Lakehouse>, name: QualifiedName, owner: &str) -> Self {
        Self {
            lakehouse,
            name,
            owner: owner.to_string(),
        }
    }

    /// The dead-letter table of the job writing `target`.
    pub fn dead_letter(target: &Table) -> Self {
        Self::new(
            target.lakehouse.clone(),
            QualifiedName {
                catalog: target.name.catalog.clone(),
                schema: target.name.schema.clone(),
                name: format!("{}_dead_letter", target.name.name),
            },
            &target.owner,
        )
    }

    fn qualified(&self) -> String {
        format!(
            "{}.{}.{}",
            quoted(&self.name.catalog),
            quoted(&self.name.schema),
            quoted(&self.name.name)
        )
    }

    async fn run(&self, sql: &str) -> Result<(), TrinoError> {
        let mut session = Session::new(self.lakehouse.clone(), self.owner.clone());
        let output = session.execute(sql).await?;
        aichemy_engine::collect(output).await?;
        Ok(())
    }

    /// Records that `job` fills this table (with `schema`, its columns now) from `source`.
    pub async fn record_lineage(
        &self,
        job: &str,
        source: aichemy_engine::lineage::Dataset,
        schema: &SchemaRef,
    ) {
        let columns = aichemy_engine::lineage::typed_columns(schema);
        aichemy_engine::lineage::record_ingestion(
            &self.lakehouse,
            job,
            &self.owner,
            source,
            &self.name,
            &columns,
        )
        .await;
    }

    /// The table's columns and its row-level access, or `None` when it does not exist.
    pub async fn load(&self) -> Result<Option<(SchemaRef, Arc<dyn RowLevelTable>)>, JobError> {
        let Some(handle) = self.lakehouse.load_table(&self.name).await? else {
            return Ok(None);
        };
        let rows = handle.rows.ok_or_else(|| {
            JobError::fatal(format!(
                "Table {} cannot take ingested rows (its format has no row-level commits)",
                self.name
            ))
        })?;
        Ok(Some((handle.provider.schema(), rows)))
    }

    /// Creates the table (and its schema) with `columns` (name, Trino type), unless it
    /// exists; `by_ingestion`: plus `_ingested_at`, partitioned by its day.
    pub async fn create(
        &self,
        columns: &[(String, String)],
        by_ingestion: bool,
    ) -> Result<(), JobError> {
        self.run(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}.{}",
            quoted(&self.name.catalog),
            quoted(&self.name.schema)
        ))
        .await?;
        let mut list: Vec<String> = columns
            .iter()
            .map(|(name, trino_type)| format!("{} {trino_type}", quoted(name)))
            .collect();
        let mut properties = String::new();
        if by_ingestion {
            if !columns.iter().any(|(name, _)| name == INGESTED_AT) {
                list.push(format!("{INGESTED_AT} timestamp(6) with time zone"));
            }
            match self.lakehouse.format(&self.name.catalog)?.format_name() {
                "Iceberg" => {
                    properties = format!(" WITH (partitioning = ARRAY['day({INGESTED_AT})'])");
                }
                // Delta Lake partitions by the values of columns only.
                "Delta Lake" => {
                    list.push(format!("{INGESTED_DATE} date"));
                    properties = format!(" WITH (partitioned_by = ARRAY['{INGESTED_DATE}'])");
                }
                // Lance has no partitions.
                _ => {}
            }
        }
        self.run(&format!(
            "CREATE TABLE IF NOT EXISTS {} ({}){properties}",
            self.qualified(),
            list.join(", ")
        ))
        .await?;
        Ok(())
    }

    /// Adds `columns` (name, Trino type) the table lacks.
    pub async fn add_columns(&self, columns: &[(String, String)]) -> Result<(), JobError> {
        for (name, trino_type) in columns {
            self.run(&format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {trino_type}",
                self.qualified(),
                quoted(name)
            ))
            .await?;
        }
        Ok(())
    }

    /// Refuses a commit the job's owner may no longer make (a revoked grant, a changed
    /// rules file): appending needs INSERT; a mirror, which changes rows in place, DELETE
    /// and UPDATE as well. The refusal is fatal: the job fails until `ALTER INGESTION …
    /// RESUME` after the owner's rights are restored.
    pub fn check_owner(&self, changes_rows: bool) -> Result<(), JobError> {
        let Some(access) = self
            .lakehouse
            .access_as(&self.owner, &aichemy_access::RoleSelection::All)?
        else {
            return Ok(());
        };
        let table =
            aichemy_access::TableName::new(&self.name.catalog, &self.name.schema, &self.name.name);
        let checked = access.check(|p, who| {
            p.check_can_insert(who, &table)?;
            if changes_rows {
                p.check_can_delete(who, &table)?;
                p.check_can_update(who, &table, &[])?;
            }
            Ok(())
        });
        checked.map_err(|e| JobError::fatal(format!("{} (as {})", e.message, self.owner)))
    }

    /// Appends `batch` recording `position` for `job`, if the table still records
    /// `expected`; its owner must still be allowed to insert.
    pub async fn append(
        &self,
        rows: &Arc<dyn RowLevelTable>,
        batch: RecordBatch,
        job: &str,
        expected: Option<&str>,
        position: &str,
    ) -> Result<u64, JobError> {
        self.check_owner(false)?;
        let batch = with_ingested_date(batch)?;
        let schema = batch.schema();
        let stream = Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter([Ok(batch)]),
        ));
        Ok(rows
            .commit_recording(
                Vec::new(),
                stream,
                Recording {
                    job,
                    expected,
                    position,
                },
            )
            .await?)
    }

    /// Compacts the table's small files, then drops what versions older than `retention`
    /// alone need: Iceberg's snapshot expiry and orphan removal (what a failed commit
    /// left), Delta Lake's vacuum, Lance's cleanup of old versions.
    pub async fn maintain(&self, retention: Duration) -> Result<(), JobError> {
        self.run(&format!(
            "ALTER TABLE {} EXECUTE optimize",
            self.qualified()
        ))
        .await?;
        let older_than = chrono::Utc::now().timestamp_millis()
            - retention.as_millis().min(i64::MAX as u128) as i64;
        let format = self.lakehouse.format(&self.name.catalog)?;
        let (schema, name) = (&self.name.schema, &self.name.name);
        match format.format_name() {
            "Iceberg" => {
                format.expire_snapshots(schema, name, older_than).await?;
                format.remove_orphan_files(schema, name, older_than).await?;
            }
            "Delta Lake" => {
                format.vacuum(schema, name, retention).await?;
            }
            _ => {
                format.expire_snapshots(schema, name, older_than).await?;
            }
        }
        Ok(())
    }
}

/// The date column a Delta Lake target is partitioned by: the day of `_ingested_at`, in
/// UTC (Iceberg partitions by `day(_ingested_at)` itself).
pub const INGESTED_DATE: &str = "_ingested_date";

/// `batch` with its `_ingested_date` column, if it has one, set from `_ingested_at`.
fn with_ingested_date(batch: RecordBatch) -> Result<RecordBatch, JobError> {
    let schema = batch.schema();
    let (Ok(date), Ok(at)) = (schema.index_of(INGESTED_DATE), schema.index_of(INGESTED_AT)) else {
        return Ok(batch);
    };
    let utc = cast(
        batch.column(at),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )
    .and_then(|naive| cast(&naive, schema.field(date).data_type()))
    .map_err(|e| JobError::fatal(format!("Cannot derive {INGESTED_DATE}: {e}")))?;
    let mut columns = batch.columns().to_vec();
    columns[date] = utc;
    RecordBatch::try_new(schema, columns)
        .map_err(|e| JobError::fatal(format!("Cannot derive {INGESTED_DATE}: {e}")))
}

/// The columns of a job's table holding the Kafka attributes it includes.
pub fn attribute_columns(format: MessageFormat, include: &[KafkaColumn]) -> Vec<(String, String)> {
    let mut columns = Vec::new();
    if format == MessageFormat::Raw {
        columns.push(("key".to_string(), "varbinary".to_string()));
        columns.push(("value".to_string(), "varbinary".to_string()));
    }
    for attribute in include {
        if format == MessageFormat::Raw && *attribute == KafkaColumn::Key {
            continue;
        }
        columns.push((
            attribute.column(format).to_string(),
            attribute_type(*attribute, format).to_string(),
        ));
    }
    columns
}

/// The Trino type of an inferred JSON column.
pub fn trino_type(data_type: &DataType) -> String {
    aichemy_engine::types::trino_type_name(data_type)
}

/// The dead-letter table's columns.
pub const DEAD_LETTER_COLUMNS: &[(&str, &str)] = &[
    ("ingestion", "varchar"),
    ("topic", "varchar"),
    ("partition", "integer"),
    ("offset", "bigint"),
    ("timestamp", "timestamp(3) with time zone"),
    ("key", "varbinary"),
    ("payload", "varbinary"),
    ("error", "varchar"),
];

/// The rows of the dead-letter table for `rejected`.
pub fn dead_letter_batch(
    schema: SchemaRef,
    job: &str,
    topic: &str,
    rejected: &[&Rejected],
    now_us: i64,
) -> Result<RecordBatch, JobError> {
    let n = rejected.len();
    let mut ingestion = StringBuilder::new();
    let mut topics = StringBuilder::new();
    let mut partition = Int32Builder::new();
    let mut offset = Int64Builder::new();
    let mut timestamp = TimestampMillisecondBuilder::new();
    let mut key = BinaryBuilder::new();
    let mut payload = BinaryBuilder::new();
    let mut error = StringBuilder::new();
    for r in rejected {
        ingestion.append_value(job);
        topics.append_value(topic);
        partition.append_value(r.message.partition);
        offset.append_value(r.message.offset);
        timestamp.append_value(r.message.timestamp_ms);
        key.append_option(r.message.key.as_deref());
        payload.append_option(r.message.value.as_deref());
        error.append_value(&r.error);
    }
    let arrays: Vec<datafusion::arrow::array::ArrayRef> = vec![
        Arc::new(ingestion.finish()),
        Arc::new(topics.finish()),
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        Arc::new(timestamp.finish().with_timezone("UTC")),
        Arc::new(key.finish()),
        Arc::new(payload.finish()),
        Arc::new(error.finish()),
        Arc::new(TimestampMicrosecondArray::from(vec![now_us; n]).with_timezone("UTC")),
    ];
    let mut columns = Vec::with_capacity(arrays.len());
    for (array, field) in arrays.into_iter().zip(schema.fields()) {
        columns.push(if array.data_type() == field.data_type() {
            array
        } else {
            datafusion::arrow::compute::cast(&array, field.data_type())
                .map_err(|e| JobError::fatal(e.to_string()))?
        });
    }
    RecordBatch::try_new(schema, columns).map_err(|e| JobError::fatal(e.to_string()))
}
