//! The `iceberg` catalog: Apache Iceberg v2 tables through iceberg-rust, with table
//! pointers in the `iceberg-catalog-sql` schema of the metastore database so that
//! PyIceberg's `SqlCatalog` and Java's JDBC catalog share the same tables.

mod commit;
mod evolve;
mod guard;
mod history;
mod ingest;
mod maintenance;
mod partitioning;
mod replace;
mod rows;
pub mod staging;
mod storage;
mod types;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use aichemy_metastore::{Backend, Metastore};
use aichemy_storage::{StorageOptions, StoreRegistry};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use iceberg::io::{FileIO, FileIOBuilder, StorageFactory};
use iceberg::spec::Schema;
use iceberg::transaction::{AddColumn, ApplyTransactionAction, Transaction};
use iceberg::{
    Catalog, CatalogBuilder, ErrorKind, NamespaceIdent, TableCreation, TableIdent, TableUpdate,
};
use iceberg_catalog_sql::{SqlBindStyle, SqlCatalogBuilder};

pub use commit::{namespace_key, CommitError, Committed, TableChange};
pub use storage::{ObjectStoreStorage, ObjectStoreStorageFactory};

use self::guard::{FailFastCatalog, MetastoreReachability, Reachability};
use crate::claims::{delete_owned, Claims, Placing};
use crate::{
    ColumnChange, ColumnSpec, CommitRetry, CreateTableRequest, LocationPolicy, PropertyValue,
    Result, TableError, TableFormat, TableHandle, TableVersion,
};

const FORMAT: &str = "Iceberg";

/// Iceberg table properties AIchemy accepts in `CREATE TABLE … WITH (…)`.
const TABLE_PROPERTIES: &[&str] = &["partitioning", "location", "format", "format_version"];

fn format_error(source: iceberg::Error) -> TableError {
    if let Some(message) = guard::unreachable_message(&source) {
        return TableError::MetastoreUnavailable { message };
    }
    TableError::Format {
        format: FORMAT,
        source: Box::new(source),
    }
}

/// The Iceberg format over an SQL catalog in the metastore database.
#[derive(Debug, Clone)]
pub struct IcebergFormat {
    /// The `iceberg-catalog-sql` catalog, failing fast while a PostgreSQL metastore is down.
    catalog: Arc<FailFastCatalog>,
    retry: CommitRetry,
    /// The same database, for the pointer swaps of REST commits.
    metastore: Metastore,
    file_io: FileIO,
    locations: LocationPolicy,
    /// The settings of `s3://` stores, which REST clients need to reach the files.
    storage_options: StorageOptions,
    catalog_name: String,
    warehouse: String,
    /// The stores behind the file I/O, for deleting what a dropped table owns.
    stores: Arc<StoreRegistry>,
}

impl IcebergFormat {
    /// Opens the catalog named `catalog_name` in the metastore's database, with new
    /// schemas placed under `warehouse` (a location URL).
    pub async fn open(
        catalog_name: &str,
        metastore: &Metastore,
        warehouse: &str,
        stores: Arc<StoreRegistry>,
        retry: CommitRetry,
        locations: LocationPolicy,
    ) -> Result<Self> {
        let storage_options = stores.options().clone();
        // Every file the catalog writes or deletes is checked against the policy first.
        let factory: Arc<dyn StorageFactory> =
            Arc::new(ObjectStoreStorageFactory::new(stores.clone()).guarded_by(locations.clone()));
        let bind_style = match metastore.backend() {
            Backend::Sqlite => SqlBindStyle::QMark,
            Backend::Postgres => SqlBindStyle::DollarNumeric,
        };
        let props = HashMap::from([
            ("uri".to_string(), metastore.url().to_string()),
            ("warehouse".to_string(), warehouse.to_string()),
            ("sql_bind_style".to_string(), bind_style.to_string()),
        ]);
        let file_io = FileIOBuilder::new(factory.clone()).build();
        let catalog = SqlCatalogBuilder::default()
            .with_storage_factory(factory)
            .load(catalog_name, props)
            .await
            .map_err(format_error)?;
        let reachability: Option<Arc<dyn Reachability>> = match metastore.backend() {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Arc::new(MetastoreReachability::new(
                metastore.clone(),
                catalog_name,
            ))),
        };
        Ok(Self {
            catalog: Arc::new(
                FailFastCatalog::new(Arc::new(catalog), reachability)
                    .staging_as(catalog_name, file_io.clone()),
            ),
            retry,
            metastore: metastore.clone(),
            file_io,
            locations,
            storage_options,
            catalog_name: catalog_name.to_string(),
            warehouse: warehouse.trim_end_matches('/').to_string(),
            stores,
        })
    }

    /// The Iceberg catalog itself, for the REST Catalog API's namespace and table calls.
    pub fn catalog(&self) -> Arc<dyn Catalog> {
        self.catalog.clone()
    }

    /// Where new schemas go (a location URL without a trailing slash).
    pub fn warehouse(&self) -> &str {
        &self.warehouse
    }

    /// File access to the warehouse, as the catalog's tables use it.
    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    /// The settings of `s3://` stores (object_store keys such as `aws_endpoint`).
    pub fn storage_options(&self) -> &StorageOptions {
        &self.storage_options
    }

    /// Checks a location a client asked for; answers it normalized.
    pub fn check_location(&self, location: &str) -> std::result::Result<String, String> {
        self.locations.check(location)
    }

    /// Checks where a new table goes (or an existing one, `itself`, moves): inside the
    /// allowed places through no symbolic link, and over no other table's, schema's or
    /// reserved location. Answers the location normalized.
    pub async fn place_table(
        &self,
        location: &str,
        itself: Option<&TableIdent>,
    ) -> std::result::Result<String, String> {
        let location = self.locations.check(location)?;
        let itself =
            itself.map(|ident| self.qualified(&namespace_key(ident.namespace()), ident.name()));
        Claims::gather(&self.metastore, &self.locations)
            .await?
            .check(&location, Placing::Table, itself.as_deref())?;
        Ok(location)
    }

    /// The location of a new namespace: the one asked for or `<warehouse>/<levels>`, when
    /// it is allowed and sits on no other schema, table or reserved place.
    pub async fn namespace_location(
        &self,
        namespace: &NamespaceIdent,
        requested: Option<&str>,
    ) -> std::result::Result<String, String> {
        let location = match requested {
            Some(location) => location.to_string(),
            None => format!("{}/{}", self.warehouse, namespace.join("/")),
        };
        let location = self.locations.check(&location)?;
        Claims::gather(&self.metastore, &self.locations)
            .await?
            .check(&location, Placing::Schema, None)?;
        Ok(location)
    }

    /// Deletes the files of a dropped table that it alone owns (see `claims.rs`); answers
    /// why nothing was deleted, when nothing was.
    pub async fn purge(&self, location: &str) -> std::result::Result<(), String> {
        delete_owned(&self.stores, &self.locations, &self.metastore, location).await
    }

    fn namespace(schema: &str) -> NamespaceIdent {
        NamespaceIdent::new(schema.to_string())
    }

    /// Refuses the table properties an Iceberg table cannot take.
    fn check_properties(&self, request: &CreateTableRequest) -> Result<()> {
        for (key, _) in &request.properties {
            if !TABLE_PROPERTIES.contains(&key.as_str()) {
                return Err(TableError::InvalidProperty {
                    property: key.clone(),
                    message: format!(
                        "Catalog '{}' table property '{key}' does not exist",
                        self.catalog_name
                    ),
                });
            }
        }
        if let Some(format) = request.string_property("format")? {
            if !format.eq_ignore_ascii_case("PARQUET") {
                return Err(TableError::InvalidProperty {
                    property: "format".into(),
                    message: format!("File format {format} is not supported; use PARQUET"),
                });
            }
        }
        if let Some((_, version)) = request
            .properties
            .iter()
            .find(|(k, _)| k == "format_version")
        {
            if *version != PropertyValue::Number("2".into()) {
                return Err(TableError::InvalidProperty {
                    property: "format_version".into(),
                    message: "only format_version = 2 is supported".into(),
                });
            }
        }
        Ok(())
    }

    fn qualified(&self, schema: &str, name: &str) -> String {
        format!("{}.{schema}.{name}", self.catalog_name)
    }

    async fn require_schema(&self, schema: &str) -> Result<()> {
        if self.schema_exists(schema).await? {
            Ok(())
        } else {
            Err(TableError::SchemaNotFound {
                schema: schema.to_string(),
            })
        }
    }

    async fn require_table(&self, schema: &str, name: &str) -> Result<iceberg::table::Table> {
        self.require_schema(schema).await?;
        match self
            .catalog
            .load_table(&TableIdent::new(Self::namespace(schema), name.to_string()))
            .await
        {
            Ok(table) => Ok(table),
            Err(e) if is_not_found(&e) => Err(TableError::TableNotFound {
                table: self.qualified(schema, name),
            }),
            Err(e) => Err(format_error(e)),
        }
    }
}

fn is_not_found(e: &iceberg::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::TableNotFound | ErrorKind::NamespaceNotFound
    ) || e.message().contains("No such table")
}

fn columns_of(schema: &Schema) -> Result<Vec<ColumnSpec>> {
    let arrow = iceberg::arrow::schema_to_arrow_schema(schema).map_err(format_error)?;
    Ok(schema
        .as_struct()
        .fields()
        .iter()
        .zip(arrow.fields().iter())
        .map(|(field, arrow_field)| ColumnSpec {
            name: field.name.clone(),
            data_type: arrow_field.data_type().clone(),
            trino_type: String::new(),
            nullable: !field.required,
            comment: field.doc.clone(),
        })
        .collect())
}

#[async_trait]
impl TableFormat for IcebergFormat {
    fn format_name(&self) -> &'static str {
        FORMAT
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .catalog
            .list_namespaces(None)
            .await
            .map_err(format_error)?
            .into_iter()
            .map(|ns| ns.inner().join("."))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn schema_exists(&self, schema: &str) -> Result<bool> {
        self.catalog
            .namespace_exists(&Self::namespace(schema))
            .await
            .map_err(format_error)
    }

    async fn create_schema(&self, schema: &str, location: Option<String>) -> Result<()> {
        if self.schema_exists(schema).await? {
            return Err(TableError::SchemaAlreadyExists {
                schema: schema.to_string(),
            });
        }
        let location = self
            .namespace_location(&Self::namespace(schema), location.as_deref())
            .await
            .map_err(|message| TableError::InvalidProperty {
                property: "location".into(),
                message,
            })?;
        let props = HashMap::from([("location".to_string(), location)]);
        self.catalog
            .create_namespace(&Self::namespace(schema), props)
            .await
            .map_err(format_error)?;
        Ok(())
    }

    async fn drop_schema(&self, schema: &str) -> Result<()> {
        self.require_schema(schema).await?;
        if !self.list_tables(schema).await?.is_empty() {
            return Err(TableError::SchemaNotEmpty {
                schema: schema.to_string(),
            });
        }
        self.catalog
            .drop_namespace(&Self::namespace(schema))
            .await
            .map_err(format_error)
    }

    async fn list_tables(&self, schema: &str) -> Result<Vec<String>> {
        self.require_schema(schema).await?;
        let mut names: Vec<String> = self
            .catalog
            .list_tables(&Self::namespace(schema))
            .await
            .map_err(format_error)?
            .into_iter()
            .map(|ident| ident.name().to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn load_table(&self, schema: &str, name: &str) -> Result<Option<TableHandle>> {
        let table = match self.require_table(schema, name).await {
            Ok(table) => table,
            Err(TableError::TableNotFound { .. } | TableError::SchemaNotFound { .. }) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let metadata = table.metadata();
        let columns = columns_of(metadata.current_schema())?;
        let mut properties = vec![
            (
                "format".to_string(),
                PropertyValue::String(
                    metadata
                        .properties()
                        .get("write.format.default")
                        .map(|f| f.to_ascii_uppercase())
                        .unwrap_or_else(|| "PARQUET".into()),
                ),
            ),
            (
                "format_version".to_string(),
                PropertyValue::Number((metadata.format_version() as u8).to_string()),
            ),
            (
                "location".to_string(),
                PropertyValue::String(metadata.location().to_string()),
            ),
        ];
        let partitioning =
            partitioning::describe(metadata.current_schema(), metadata.default_partition_spec());
        if !partitioning.is_empty() {
            properties.push((
                "partitioning".to_string(),
                PropertyValue::Array(partitioning),
            ));
        }
        let comment = metadata.properties().get("comment").cloned();

        let rows = Arc::new(rows::IcebergRows::new(self.clone(), table.clone()));
        let provider = Arc::new(
            write::table_provider(self.catalog.clone(), self.retry, table)
                .await
                .map_err(format_error)?,
        );
        Ok(Some(TableHandle {
            provider,
            columns,
            comment,
            properties,
            rows: Some(rows),
            partitions: None,
        }))
    }

    async fn create_table(&self, request: CreateTableRequest) -> Result<()> {
        self.require_schema(&request.schema).await?;
        self.check_properties(&request)?;
        let ident = TableIdent::new(Self::namespace(&request.schema), request.name.clone());
        if self
            .catalog
            .table_exists(&ident)
            .await
            .map_err(format_error)?
        {
            return Err(TableError::TableAlreadyExists {
                table: self.qualified(&request.schema, &request.name),
            });
        }
        let schema = types::schema_from_columns(&request.columns)?;
        let spec = partitioning::partition_spec(&schema, &partition_fields(&request)?)?;
        let mut properties =
            HashMap::from([("write.format.default".to_string(), "parquet".to_string())]);
        if let Some(comment) = &request.comment {
            properties.insert("comment".to_string(), comment.clone());
        }
        let namespace = Self::namespace(&request.schema);
        let location = self
            .place_new_table(
                &namespace,
                &request.name,
                request.string_property("location")?,
            )
            .await
            .map_err(|e| match e {
                CommitError::Invalid(message) => TableError::InvalidProperty {
                    property: "location".into(),
                    message,
                },
                other => TableError::Storage {
                    message: other.to_string(),
                },
            })?;
        let creation = TableCreation::builder()
            .name(request.name.clone())
            .schema(schema)
            .partition_spec(spec)
            .location(location)
            .properties(properties)
            .build();
        self.catalog
            .create_table(&Self::namespace(&request.schema), creation)
            .await
            .map_err(format_error)?;
        Ok(())
    }

    async fn set_properties(
        &self,
        schema: &str,
        name: &str,
        properties: Vec<(String, PropertyValue)>,
    ) -> Result<()> {
        let table = self.require_table(schema, name).await?;
        self.set_table_properties(&table, properties).await
    }

    async fn replace_table(
        &self,
        request: CreateTableRequest,
        rows: datafusion::execution::SendableRecordBatchStream,
    ) -> Result<u64> {
        self.replace(request, rows).await
    }

    async fn drop_table(&self, schema: &str, name: &str) -> Result<()> {
        let table = self.require_table(schema, name).await?;
        self.catalog
            .drop_table(table.identifier())
            .await
            .map_err(format_error)?;
        // The pointer is gone, so the table is dropped; deleting the files it owns is best
        // effort.
        let _ = self.purge(table.metadata().location()).await;
        Ok(())
    }

    async fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<()> {
        let table = self.require_table(from.0, from.1).await?;
        self.require_schema(to.0).await?;
        let target = TableIdent::new(Self::namespace(to.0), to.1.to_string());
        if self
            .catalog
            .table_exists(&target)
            .await
            .map_err(format_error)?
        {
            return Err(TableError::TableAlreadyExists {
                table: self.qualified(to.0, to.1),
            });
        }
        self.catalog
            .rename_table(table.identifier(), &target)
            .await
            .map_err(format_error)
    }

    async fn add_column(&self, schema: &str, name: &str, column: ColumnSpec) -> Result<()> {
        let table = self.require_table(schema, name).await?;
        if table
            .metadata()
            .current_schema()
            .field_by_name(&column.name)
            .is_some()
        {
            return Err(TableError::ColumnAlreadyExists {
                column: column.name,
            });
        }
        if !column.nullable {
            return Err(TableError::InvalidProperty {
                property: "column".into(),
                message: "NOT NULL columns cannot be added to an existing table".into(),
            });
        }
        let mut ids = types::FieldIds::new();
        let field = types::column_field(1, &column, &mut ids)?;
        let mut add = AddColumn::optional(&column.name, (*field.field_type).clone());
        if let Some(comment) = &column.comment {
            add = AddColumn::builder()
                .name(column.name.clone())
                .field_type((*field.field_type).clone())
                .doc(comment.clone())
                .build();
        }
        let tx = Transaction::new(&table);
        let tx = tx
            .update_schema()
            .add_column(add)
            .apply(tx)
            .map_err(format_error)?;
        tx.commit(self.catalog.as_ref())
            .await
            .map_err(format_error)?;
        Ok(())
    }

    async fn set_comment(&self, schema: &str, name: &str, comment: Option<String>) -> Result<()> {
        let table = self.require_table(schema, name).await?;
        let update = match comment {
            Some(comment) => TableUpdate::SetProperties {
                updates: HashMap::from([("comment".to_string(), comment)]),
            },
            None => TableUpdate::RemoveProperties {
                removals: vec!["comment".to_string()],
            },
        };
        let change = TableChange {
            ident: table.identifier().clone(),
            requirements: vec![iceberg::TableRequirement::UuidMatch {
                uuid: table.metadata().uuid(),
            }],
            updates: vec![update],
        };
        self.commit_changes(vec![change]).await?;
        Ok(())
    }

    async fn alter_column(&self, schema: &str, name: &str, change: ColumnChange) -> Result<()> {
        let table = self.require_table(schema, name).await?;
        self.evolve(&table, change).await
    }

    async fn load_version(
        &self,
        schema: &str,
        name: &str,
        version: &TableVersion,
    ) -> Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        let Some(table) = self.find_table(schema, name).await? else {
            return Ok(None);
        };
        let qualified = self.qualified(schema, name);
        Ok(Some(history::as_of(table, version, &qualified).await?))
    }

    async fn metadata_table(
        &self,
        schema: &str,
        name: &str,
        kind: &str,
    ) -> Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        if !history::METADATA_TABLES.contains(&kind) {
            return Ok(None);
        }
        let Some(table) = self.find_table(schema, name).await? else {
            return Ok(None);
        };
        Ok(Some(history::metadata_table(&table, kind).await?))
    }

    async fn expire_snapshots(
        &self,
        schema: &str,
        name: &str,
        older_than_ms: i64,
    ) -> Result<(usize, usize)> {
        let table = self.require_table(schema, name).await?;
        self.expire(&table, older_than_ms).await
    }

    async fn remove_orphan_files(
        &self,
        schema: &str,
        name: &str,
        older_than_ms: i64,
    ) -> Result<usize> {
        let table = self.require_table(schema, name).await?;
        self.remove_orphans(&table, older_than_ms).await
    }

    async fn rollback(&self, schema: &str, name: &str, version: i64) -> Result<()> {
        let table = self.require_table(schema, name).await?;
        self.rollback_to(&table, version).await
    }
}

impl IcebergFormat {
    /// The table, or `None` when it (or its schema) does not exist.
    async fn find_table(&self, schema: &str, name: &str) -> Result<Option<iceberg::table::Table>> {
        match self.require_table(schema, name).await {
            Ok(table) => Ok(Some(table)),
            Err(TableError::TableNotFound { .. } | TableError::SchemaNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether an Arrow type can be stored in an Iceberg column.
pub fn supports_type(data_type: &DataType) -> bool {
    types::iceberg_type(data_type, &mut types::FieldIds::new()).is_some()
}

/// The fields of `partitioning = ARRAY[…]`; none when the property is absent.
fn partition_fields(request: &CreateTableRequest) -> Result<Vec<String>> {
    match request.properties.iter().find(|(k, _)| k == "partitioning") {
        None => Ok(Vec::new()),
        Some((_, PropertyValue::Array(items))) => Ok(items.clone()),
        Some(_) => Err(TableError::InvalidProperty {
            property: "partitioning".into(),
            message: "expected an array of strings".into(),
        }),
    }
}
