//! The `delta` catalog: Delta Lake tables through `deltalake`. The table's log is the truth
//! for its files and versions; the metastore records where each table lives.
//!
//! Inserts go through deltalake's own sink: data files first, then one commit to the log,
//! so a statement that fails part-way adds nothing.

use std::sync::Arc;

use aichemy_metastore::TableRecord;
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::catalog::TableProvider;
use deltalake::kernel::engine::arrow_conversion::TryFromArrow;
use deltalake::kernel::{StructField, StructType};
use deltalake::protocol::SaveMode;
use deltalake::DeltaTable;
use url::Url;

use crate::registered::TableStore;
use aichemy_storage::StorageOptions;

use crate::{CreateTableRequest, PropertyValue, Result, TableError};

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
}

impl DeltaStore {
    /// Delta tables whose `s3://` locations use `options`.
    pub fn new(options: StorageOptions) -> Self {
        // s3:// locations are served by deltalake's AWS log store, which commits with
        // put-if-absent (If-None-Match).
        deltalake::aws::register_handlers(None);
        Self { options }
    }
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
        _schema: SchemaRef,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = load(&record.location, &self.options).await?;
        if table.version().is_none() {
            return Err(TableError::Storage {
                message: format!("No Delta table at {}", record.location),
            });
        }
        table
            .table_provider()
            .await
            .map_err(|e| TableError::Format {
                format: FORMAT,
                source: Box::new(e),
            })
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
