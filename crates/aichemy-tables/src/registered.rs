//! Catalogs whose schemas and tables the metastore keeps: `hive` (and the formats that
//! follow it). One [`RegisteredFormat`] implements [`TableFormat`] over the metastore's
//! records; what differs per format — creating a table's files, opening a table for scans
//! and inserts — sits behind [`TableStore`].

use std::collections::HashSet;
use std::fmt::Debug;
use std::io::Cursor;
use std::sync::Arc;

use aichemy_metastore::{Metastore, MetastoreError, SchemaRecord, TableRecord};
use aichemy_storage::{join_location, StoreRegistry};
use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::TableProvider;

use crate::claims::{delete_owned, delete_owned_files, Claims, Placing};
use crate::{
    ColumnSpec, CreateTableRequest, LocationPolicy, PartitionedTable, PropertyValue, Result,
    RowLevelTable, TableError, TableFormat, TableHandle, TableVersion,
};

/// Field metadata key of a column comment.
const COMMENT_KEY: &str = "comment";

/// What one table format does with files; the records are [`RegisteredFormat`]'s.
#[async_trait]
pub trait TableStore: Debug + Send + Sync {
    /// The format's name in messages (`Hive`).
    fn format_name(&self) -> &'static str;

    /// Table properties `CREATE TABLE … WITH (…)` accepts.
    fn table_properties(&self) -> &'static [&'static str];

    /// Checks a new table's columns and properties and prepares its files at `location`
    /// (for an external table: checks that they can be read). Answers the properties to
    /// record, as `SHOW CREATE TABLE` prints them.
    async fn create(
        &self,
        location: &str,
        schema: &SchemaRef,
        request: &CreateTableRequest,
        external: bool,
    ) -> Result<Vec<(String, PropertyValue)>>;

    /// A provider for scans and inserts of a recorded table.
    async fn open(&self, record: &TableRecord, schema: SchemaRef)
        -> Result<Arc<dyn TableProvider>>;

    /// A recorded table's provider with how DELETE, UPDATE and MERGE change its rows, both
    /// of the one version loaded, where the format changes rows.
    async fn open_with_rows(&self, record: &TableRecord, schema: SchemaRef) -> Result<OpenedTable> {
        Ok(OpenedTable {
            provider: self.open(record, schema).await?,
            rows: None,
        })
    }

    /// Adds a column to a table's files, when the format records columns there.
    async fn add_column(&self, record: &TableRecord, schema: &SchemaRef) -> Result<()>;

    /// A recorded table as it was at `version`, read only.
    async fn open_version(
        &self,
        _record: &TableRecord,
        _version: &TableVersion,
    ) -> Result<Arc<dyn TableProvider>> {
        Err(TableError::NotSupported {
            message: format!(
                "This connector does not support versioned tables: {}",
                self.format_name()
            ),
        })
    }

    /// The metadata table `kind` (`history` for `"t$history"`) of a recorded table; `None`
    /// where the format has no such table.
    async fn metadata_table(
        &self,
        _record: &TableRecord,
        _kind: &str,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(None)
    }

    /// Expires the versions of a recorded table made before `older_than_ms` (never the
    /// current one) and deletes the files only they referenced; answers how many versions
    /// and files went.
    async fn expire_versions(
        &self,
        _record: &TableRecord,
        _older_than_ms: i64,
    ) -> Result<(usize, usize)> {
        Err(TableError::NotSupported {
            message: format!(
                "Procedure expire_snapshots is not supported for {} tables",
                self.format_name()
            ),
        })
    }

    /// Builds, rebuilds or drops one of a recorded table's indexes.
    async fn change_index(
        &self,
        _record: &TableRecord,
        change: crate::search::IndexChange,
    ) -> Result<()> {
        Err(change.unsupported(self.format_name()))
    }

    /// Brings a recorded table's indexes up to date with the rows added since they were
    /// built; nothing for a format without indexes.
    async fn refresh_indexes(&self, _record: &TableRecord) -> Result<()> {
        Ok(())
    }

    /// Deletes the files of a recorded table that no current file needs, removed or written
    /// more than `retention` ago (`vacuum`); answers how many.
    async fn vacuum(
        &self,
        _record: &TableRecord,
        _retention: std::time::Duration,
    ) -> Result<usize> {
        Err(TableError::NotSupported {
            message: format!(
                "Procedure vacuum is not supported for {} tables",
                self.format_name()
            ),
        })
    }

    /// The files some version of a recorded table needs, for `remove_orphan_files`; `None`
    /// before the table has files.
    async fn referenced_files(&self, _record: &TableRecord) -> Result<Option<ReferencedFiles>> {
        Err(TableError::NotSupported {
            message: format!(
                "Procedure remove_orphan_files is not supported for {} tables",
                self.format_name()
            ),
        })
    }

    /// How DELETE removes whole partitions of a recorded table, where the format does.
    fn partitions(&self, _record: &TableRecord) -> Result<Option<Arc<dyn PartitionedTable>>> {
        Ok(None)
    }
}

/// The files a table's versions need, as paths relative to its location, and the folders
/// (relative too) the format writes them in: a file in one of those folders that no version
/// names is an orphan.
#[derive(Debug, Default)]
pub struct ReferencedFiles {
    pub folders: Vec<&'static str>,
    pub referenced: HashSet<String>,
}

impl ReferencedFiles {
    fn orphan(&self, relative: &str) -> bool {
        self.folders.iter().any(|folder| {
            relative
                .strip_prefix(folder)
                .is_some_and(|rest| rest.starts_with('/'))
        }) && !self.referenced.contains(relative)
    }
}

/// A recorded table opened at its latest version.
pub struct OpenedTable {
    pub provider: Arc<dyn TableProvider>,
    /// How DELETE, UPDATE and MERGE change its rows; `None` where the format cannot.
    pub rows: Option<Arc<dyn RowLevelTable>>,
}

/// A catalog of one format, kept in the metastore.
#[derive(Debug)]
pub struct RegisteredFormat {
    catalog: String,
    warehouse: String,
    metastore: Metastore,
    stores: Arc<StoreRegistry>,
    store: Arc<dyn TableStore>,
    locations: LocationPolicy,
}

impl RegisteredFormat {
    /// The catalog `catalog` of `store`'s format; new schemas go under
    /// `<warehouse>/<catalog>/`.
    pub fn new(
        catalog: &str,
        warehouse: &str,
        metastore: Metastore,
        stores: Arc<StoreRegistry>,
        store: Arc<dyn TableStore>,
        locations: LocationPolicy,
    ) -> Self {
        Self {
            catalog: catalog.to_string(),
            warehouse: format!("{}/{catalog}", warehouse.trim_end_matches('/')),
            metastore,
            stores,
            store,
            locations,
        }
    }

    /// The metastore's record of a table; `None` when there is none.
    async fn record(&self, schema: &str, name: &str) -> Result<Option<TableRecord>> {
        self.metastore
            .get_table(&self.catalog, schema, name)
            .await
            .map_err(metastore_error)
    }

    fn qualified(&self, schema: &str, name: &str) -> String {
        format!("{}.{schema}.{name}", self.catalog)
    }

    async fn require_schema(&self, schema: &str) -> Result<SchemaRecord> {
        self.metastore
            .get_schema(&self.catalog, schema)
            .await
            .map_err(metastore_error)?
            .ok_or_else(|| TableError::SchemaNotFound {
                schema: schema.to_string(),
            })
    }

    async fn require_table(&self, schema: &str, name: &str) -> Result<TableRecord> {
        self.require_schema(schema).await?;
        self.metastore
            .get_table(&self.catalog, schema, name)
            .await
            .map_err(metastore_error)?
            .ok_or_else(|| TableError::TableNotFound {
                table: self.qualified(schema, name),
            })
    }

    /// A location the user named, when the location policy allows it.
    fn allowed(&self, location: &str, property: &str) -> Result<String> {
        self.locations
            .check(location)
            .map_err(|message| TableError::InvalidProperty {
                property: property.to_string(),
                message,
            })
    }

    /// Checks that a new table or schema at `location` stays inside the allowed places
    /// (through no symbolic link) and takes over no other table's, schema's or reserved
    /// location.
    async fn place(&self, location: &str, placing: Placing) -> Result<()> {
        let invalid = |message| TableError::InvalidProperty {
            property: "location".into(),
            message,
        };
        self.locations.check(location).map_err(invalid)?;
        Claims::gather(&self.metastore, &self.locations)
            .await
            .map_err(storage_error)?
            .check(location, placing, None)
            .map_err(invalid)
    }

    /// Where a new managed table goes: `<schema location>/<name>`, or, when that is taken
    /// (by a renamed table that kept its folder, say), the same with a unique suffix, as
    /// Trino's unique table locations.
    async fn managed_location(&self, schema_location: &str, name: &str) -> Result<String> {
        let location = join_location(schema_location, name);
        self.stores.resolve(&location).map_err(storage_error)?;
        match self.place(&location, Placing::Table).await {
            Ok(()) => Ok(location),
            Err(taken) => {
                let unique = format!("{location}-{}", uuid::Uuid::new_v4().simple());
                match self.place(&unique, Placing::Table).await {
                    Ok(()) => Ok(unique),
                    Err(_) => Err(taken),
                }
            }
        }
    }

    /// Deletes the files a dropped (or never recorded) table owns: never another table's,
    /// a schema's or the warehouse's own, never through a symbolic link. Best effort: the
    /// table is gone either way.
    async fn delete_location(&self, location: &str) {
        let _ = delete_owned(&self.stores, &self.locations, &self.metastore, location).await;
    }
}

fn metastore_error(e: MetastoreError) -> TableError {
    if e.is_unavailable() {
        return TableError::MetastoreUnavailable {
            message: e.to_string(),
        };
    }
    TableError::Storage {
        message: e.to_string(),
    }
}

fn storage_error(e: impl std::fmt::Display) -> TableError {
    TableError::Storage {
        message: e.to_string(),
    }
}

#[async_trait]
impl TableFormat for RegisteredFormat {
    fn format_name(&self) -> &'static str {
        self.store.format_name()
    }

    async fn list_schemas(&self) -> Result<Vec<String>> {
        self.metastore
            .list_schemas(&self.catalog)
            .await
            .map_err(metastore_error)
    }

    async fn schema_exists(&self, schema: &str) -> Result<bool> {
        Ok(self
            .metastore
            .get_schema(&self.catalog, schema)
            .await
            .map_err(metastore_error)?
            .is_some())
    }

    async fn create_schema(&self, schema: &str, location: Option<String>) -> Result<()> {
        let location = match location {
            Some(location) => self.allowed(&location, "location")?,
            None => join_location(&self.warehouse, schema),
        };
        self.stores.resolve(&location).map_err(storage_error)?;
        // An existing schema is reported as such, before its location is compared.
        if self.schema_exists(schema).await? {
            return Err(TableError::SchemaAlreadyExists {
                schema: schema.to_string(),
            });
        }
        self.place(&location, Placing::Schema).await?;
        let record = SchemaRecord {
            catalog: self.catalog.clone(),
            schema: schema.to_string(),
            location,
        };
        match self.metastore.create_schema(&record).await {
            Err(MetastoreError::SchemaAlreadyExists { .. }) => {
                Err(TableError::SchemaAlreadyExists {
                    schema: schema.to_string(),
                })
            }
            other => other.map_err(metastore_error),
        }
    }

    async fn drop_schema(&self, schema: &str) -> Result<()> {
        self.require_schema(schema).await?;
        if !self.list_tables(schema).await?.is_empty() {
            return Err(TableError::SchemaNotEmpty {
                schema: schema.to_string(),
            });
        }
        self.metastore
            .drop_schema(&self.catalog, schema)
            .await
            .map_err(metastore_error)?;
        Ok(())
    }

    async fn list_tables(&self, schema: &str) -> Result<Vec<String>> {
        self.metastore
            .list_tables(&self.catalog, schema)
            .await
            .map_err(metastore_error)
    }

    async fn load_version(
        &self,
        schema: &str,
        name: &str,
        version: &TableVersion,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(record) = self.record(schema, name).await? else {
            return Ok(None);
        };
        Ok(Some(self.store.open_version(&record, version).await?))
    }

    async fn metadata_table(
        &self,
        schema: &str,
        name: &str,
        kind: &str,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(record) = self.record(schema, name).await? else {
            return Ok(None);
        };
        self.store.metadata_table(&record, kind).await
    }

    async fn expire_snapshots(
        &self,
        schema: &str,
        name: &str,
        older_than_ms: i64,
    ) -> Result<(usize, usize)> {
        let record = self.require_table(schema, name).await?;
        self.store.expire_versions(&record, older_than_ms).await
    }

    async fn change_index(
        &self,
        schema: &str,
        name: &str,
        change: crate::search::IndexChange,
    ) -> Result<()> {
        let record = self.require_table(schema, name).await?;
        self.store.change_index(&record, change).await
    }

    async fn refresh_indexes(&self, schema: &str, name: &str) -> Result<()> {
        let record = self.require_table(schema, name).await?;
        self.store.refresh_indexes(&record).await
    }

    async fn remove_orphan_files(
        &self,
        schema: &str,
        name: &str,
        older_than_ms: i64,
    ) -> Result<usize> {
        let record = self.require_table(schema, name).await?;
        let Some(files) = self.store.referenced_files(&record).await? else {
            return Ok(0);
        };
        let (_, root) = self
            .stores
            .resolve(&record.location)
            .map_err(storage_error)?;
        let itself = format!("{}.{schema}.{name}", self.catalog);
        delete_owned_files(
            &self.stores,
            &self.locations,
            &self.metastore,
            &record.location,
            Some(&itself),
            |file| {
                let Some(parts) = file.location.prefix_match(&root) else {
                    return false;
                };
                let relative: Vec<_> = parts.map(|part| part.as_ref().to_string()).collect();
                file.last_modified.timestamp_millis() < older_than_ms
                    && files.orphan(&relative.join("/"))
            },
        )
        .await
        .map_err(|message| TableError::Storage { message })
    }

    async fn vacuum(
        &self,
        schema: &str,
        name: &str,
        retention: std::time::Duration,
    ) -> Result<usize> {
        let record = self.require_table(schema, name).await?;
        self.store.vacuum(&record, retention).await
    }

    async fn load_table(&self, schema: &str, name: &str) -> Result<Option<TableHandle>> {
        let Some(record) = self.record(schema, name).await? else {
            return Ok(None);
        };
        let stored = decode_schema(&record.schema_ipc)?;
        let OpenedTable { provider, rows } =
            self.store.open_with_rows(&record, stored.clone()).await?;
        let mut properties: Vec<(String, PropertyValue)> = record
            .properties
            .iter()
            .filter_map(|(k, v)| PropertyValue::from_sql(v).map(|v| (k.clone(), v)))
            .collect();
        properties.sort_by(|a, b| a.0.cmp(&b.0));
        // The table's own schema (a Delta table may have been changed by another writer),
        // with the comments the metastore keeps.
        let mut columns = columns_of(&provider.schema());
        for column in &mut columns {
            if let Ok(field) = stored.field_with_name(&column.name) {
                column.comment = field.metadata().get(COMMENT_KEY).cloned();
                column.nullable = column.nullable && field.is_nullable();
            }
        }
        Ok(Some(TableHandle {
            provider,
            columns,
            comment: record.comment.clone(),
            properties,
            rows,
            partitions: self.store.partitions(&record)?,
        }))
    }

    async fn create_table(&self, request: CreateTableRequest) -> Result<()> {
        let schema_record = self.require_schema(&request.schema).await?;
        for (key, _) in &request.properties {
            if !self.store.table_properties().contains(&key.as_str()) {
                return Err(TableError::InvalidProperty {
                    property: key.clone(),
                    message: format!(
                        "Catalog '{}' table property '{key}' does not exist",
                        self.catalog
                    ),
                });
            }
        }
        let qualified = self.qualified(&request.schema, &request.name);
        if self
            .metastore
            .get_table(&self.catalog, &request.schema, &request.name)
            .await
            .map_err(metastore_error)?
            .is_some()
        {
            return Err(TableError::TableAlreadyExists { table: qualified });
        }
        // A table at a location the user names is external, as in Trino: DROP TABLE
        // leaves its files.
        let external = match request.string_property("external_location")? {
            Some(location) => Some(self.allowed(&location, "external_location")?),
            None => request
                .string_property("location")?
                .map(|location| self.allowed(&location, "location"))
                .transpose()?,
        };
        let location = match &external {
            Some(location) => {
                self.stores.resolve(location).map_err(storage_error)?;
                self.place(location, Placing::Table).await?;
                location.clone()
            }
            None => {
                self.managed_location(&schema_record.location, &request.name)
                    .await?
            }
        };
        let schema = arrow_schema_of(&request.columns);
        let properties = self
            .store
            .create(&location, &schema, &request, external.is_some())
            .await?;
        let record = TableRecord {
            catalog: self.catalog.clone(),
            schema: request.schema.clone(),
            name: request.name.clone(),
            location: location.clone(),
            external: external.is_some(),
            schema_ipc: encode_schema(&schema)?,
            properties: properties
                .iter()
                .map(|(k, v)| (k.clone(), v.to_sql()))
                .collect(),
            comment: request.comment.clone(),
        };
        match self.metastore.create_table(&record).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if !record.external {
                    self.delete_location(&location).await;
                }
                Err(match e {
                    MetastoreError::TableAlreadyExists { .. } => {
                        TableError::TableAlreadyExists { table: qualified }
                    }
                    other => metastore_error(other),
                })
            }
        }
    }

    async fn drop_table(&self, schema: &str, name: &str) -> Result<()> {
        let record = self.require_table(schema, name).await?;
        self.metastore
            .drop_table(&self.catalog, schema, name)
            .await
            .map_err(metastore_error)?;
        if !record.external {
            // The record is gone first: a failure here leaves files, never a broken table.
            self.delete_location(&record.location).await;
        }
        Ok(())
    }

    async fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<()> {
        self.require_table(from.0, from.1).await?;
        self.require_schema(to.0).await?;
        match self.metastore.rename_table(&self.catalog, from, to).await {
            Ok(_) => Ok(()),
            Err(MetastoreError::TableAlreadyExists { .. }) => Err(TableError::TableAlreadyExists {
                table: self.qualified(to.0, to.1),
            }),
            Err(e) => Err(metastore_error(e)),
        }
    }

    async fn add_column(&self, schema: &str, name: &str, column: ColumnSpec) -> Result<()> {
        let record = self.require_table(schema, name).await?;
        let current = decode_schema(&record.schema_ipc)?;
        if current.field_with_name(&column.name).is_ok() {
            return Err(TableError::ColumnAlreadyExists {
                column: column.name,
            });
        }
        let mut fields: Vec<Field> = current
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(field_of(&ColumnSpec {
            nullable: true,
            ..column
        }));
        let updated: SchemaRef = Arc::new(Schema::new(fields));
        self.store.add_column(&record, &updated).await?;
        self.metastore
            .update_table_schema(&self.catalog, schema, name, &encode_schema(&updated)?)
            .await
            .map_err(metastore_error)?;
        Ok(())
    }
}

fn field_of(column: &ColumnSpec) -> Field {
    let field = Field::new(&column.name, column.data_type.clone(), column.nullable);
    match &column.comment {
        Some(comment) => field.with_metadata([(COMMENT_KEY.to_string(), comment.clone())].into()),
        None => field,
    }
}

fn arrow_schema_of(columns: &[ColumnSpec]) -> SchemaRef {
    Arc::new(Schema::new(
        columns.iter().map(field_of).collect::<Vec<_>>(),
    ))
}

fn columns_of(schema: &Schema) -> Vec<ColumnSpec> {
    schema
        .fields()
        .iter()
        .map(|f| ColumnSpec {
            name: f.name().clone(),
            data_type: f.data_type().clone(),
            trino_type: String::new(),
            nullable: f.is_nullable(),
            comment: f.metadata().get(COMMENT_KEY).cloned(),
        })
        .collect()
}

/// An Arrow schema as a hex-encoded Arrow IPC stream holding only the schema.
fn encode_schema(schema: &Schema) -> Result<String> {
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, schema).map_err(storage_error)?;
    writer.finish().map_err(storage_error)?;
    drop(writer);
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub(crate) fn decode_schema(hex: &str) -> Result<SchemaRef> {
    let corrupt = || TableError::Storage {
        message: "stored table schema is damaged".into(),
    };
    if !hex.len().is_multiple_of(2) {
        return Err(corrupt());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .map_err(|_| corrupt())?;
    let reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(|_| corrupt())?;
    Ok(reader.schema())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    #[test]
    fn schemas_round_trip_through_their_stored_form() {
        let columns = vec![
            ColumnSpec {
                name: "id".into(),
                data_type: DataType::Int64,
                trino_type: "bigint".into(),
                nullable: false,
                comment: Some("key".into()),
            },
            ColumnSpec {
                name: "tags".into(),
                data_type: DataType::new_list(DataType::Utf8, true),
                trino_type: "array(varchar)".into(),
                nullable: true,
                comment: None,
            },
        ];
        let schema = arrow_schema_of(&columns);
        let decoded = decode_schema(&encode_schema(&schema).unwrap()).unwrap();
        assert_eq!(decoded, schema);
        let back = columns_of(&decoded);
        assert_eq!(back[0].comment.as_deref(), Some("key"));
        assert!(!back[0].nullable);
        assert!(decode_schema("zz").is_err());
    }
}
