//! Table changes as the Iceberg REST Catalog API sends them: requirements checked against
//! the current metadata, updates applied to it, the next metadata file written, and then
//! every table pointer moved in one metastore transaction with compare-and-swap. A
//! requirement that no longer holds, or a pointer another writer moved first, is a
//! conflict the client may retry; nothing is changed then.

use std::collections::HashMap;
use std::str::FromStr;

use iceberg::spec::{
    FormatVersion, SortOrder, TableMetadata, TableMetadataBuilder, UnboundPartitionSpec,
};
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent, TableRequirement, TableUpdate};

use aichemy_metastore::PointerSwap;
use iceberg::MetadataLocation;

use super::staging::Staging;
use super::IcebergFormat;
use crate::claims::within;
use crate::LocationPolicy;

/// Table properties that send an Iceberg table's files elsewhere than under its location
/// (read by iceberg-rust, PyIceberg, Spark or Trino when they write).
const WRITE_PATH_PROPERTIES: &[&str] = &[
    "write.data.path",
    "write.metadata.path",
    "write.folder-storage.path",
    "write.object-storage.path",
];

/// Checks that the write-path properties of a table lie inside its location, so that
/// every file written for it is its own (and inside the warehouse).
pub(crate) fn check_write_paths(
    metadata: &TableMetadata,
    policy: Option<&LocationPolicy>,
) -> Result<(), String> {
    let location = metadata.location();
    for property in WRITE_PATH_PROPERTIES {
        if let Some(path) = metadata.properties().get(*property) {
            if let Some(policy) = policy {
                policy.check(path)?;
            }
            if !within(path, location) {
                return Err(format!(
                    "Table property '{property}' ('{path}') must lie inside the table's \
                     location '{location}'"
                ));
            }
        }
    }
    Ok(())
}

/// The changes of one table in a commit.
#[derive(Debug, Clone)]
pub struct TableChange {
    pub ident: TableIdent,
    pub requirements: Vec<TableRequirement>,
    pub updates: Vec<TableUpdate>,
}

/// Why a commit or load did not happen; each maps to one REST error.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("Namespace does not exist: {0}")]
    NoSuchNamespace(String),
    #[error("Table does not exist: {0}")]
    NoSuchTable(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A requirement failed or another writer committed first: the client may retry.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

/// A table after a commit or load.
#[derive(Debug, Clone)]
pub struct Committed {
    pub ident: TableIdent,
    pub metadata_location: String,
    pub metadata: TableMetadata,
}

/// The namespace as the SQL catalog keeps it: levels joined by `.`.
/// What a failed commit of the SQL side (DML, DDL, upkeep) is to the engine: a conflict
/// stays a conflict (`TRANSACTION_CONFLICT`), a vanished table is missing.
impl From<CommitError> for crate::TableError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Conflict(message) => crate::TableError::Conflict { message },
            CommitError::NoSuchTable(table) => crate::TableError::TableNotFound { table },
            other => crate::TableError::Storage {
                message: other.to_string(),
            },
        }
    }
}

/// The requirements of a change made against `metadata`: the same table, its `main`
/// branch still at the snapshot the change read.
pub(crate) fn main_unmoved(metadata: &TableMetadata) -> Vec<TableRequirement> {
    vec![
        TableRequirement::UuidMatch {
            uuid: metadata.uuid(),
        },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: iceberg::spec::MAIN_BRANCH.to_string(),
            snapshot_id: metadata.current_snapshot_id(),
        },
    ]
}

pub fn namespace_key(namespace: &NamespaceIdent) -> String {
    namespace.join(".")
}

fn invalid(e: iceberg::Error) -> CommitError {
    CommitError::Invalid(e.message().to_string())
}

fn failed(e: impl std::fmt::Display) -> CommitError {
    CommitError::Failed(e.to_string())
}

impl IcebergFormat {
    /// The current metadata file and metadata of a table.
    pub async fn current(&self, ident: &TableIdent) -> Result<Committed, CommitError> {
        match self.load(ident).await? {
            Some(current) => Ok(current),
            None => Err(self.missing(ident).await),
        }
    }

    /// The table's current metadata file and metadata, `None` when it does not exist.
    async fn load(&self, ident: &TableIdent) -> Result<Option<Committed>, CommitError> {
        let staged = Staging::current().and_then(|staging| {
            staging.location(
                &self.catalog_name,
                &namespace_key(ident.namespace()),
                ident.name(),
            )
        });
        if let Some(location) = staged {
            return Ok(Some(Committed {
                ident: ident.clone(),
                metadata: TableMetadata::read_from(&self.file_io, &location)
                    .await
                    .map_err(failed)?,
                metadata_location: location,
            }));
        }
        let pointer = self
            .metastore
            .iceberg_pointer(
                &self.catalog_name,
                &namespace_key(ident.namespace()),
                ident.name(),
            )
            .await
            .map_err(failed)?;
        let Some(location) = pointer else {
            return Ok(None);
        };
        Ok(Some(Committed {
            ident: ident.clone(),
            metadata: TableMetadata::read_from(&self.file_io, &location)
                .await
                .map_err(failed)?,
            metadata_location: location,
        }))
    }

    async fn require_namespace(&self, namespace: &NamespaceIdent) -> Result<(), CommitError> {
        if self
            .catalog
            .namespace_exists(namespace)
            .await
            .map_err(failed)?
        {
            Ok(())
        } else {
            Err(CommitError::NoSuchNamespace(namespace_key(namespace)))
        }
    }

    /// The error for a table that is not there: its namespace or itself.
    async fn missing(&self, ident: &TableIdent) -> CommitError {
        match self.catalog.namespace_exists(ident.namespace()).await {
            Ok(false) => CommitError::NoSuchNamespace(namespace_key(ident.namespace())),
            _ => CommitError::NoSuchTable(format!(
                "{}.{}",
                namespace_key(ident.namespace()),
                ident.name()
            )),
        }
    }

    /// The metadata a new table would have, without creating it (a staged create, or
    /// the first step of a create). The location defaults to one under its namespace.
    pub async fn new_metadata(
        &self,
        namespace: &NamespaceIdent,
        mut creation: TableCreation,
    ) -> Result<TableMetadata, CommitError> {
        self.require_namespace(namespace).await?;
        let location = self
            .place_new_table(namespace, &creation.name, creation.location.take())
            .await?;
        creation.location = Some(location);
        let metadata = TableMetadataBuilder::from_table_creation(creation)
            .map_err(invalid)?
            .build()
            .map_err(invalid)?
            .metadata;
        check_write_paths(&metadata, Some(&self.locations)).map_err(CommitError::Invalid)?;
        Ok(metadata)
    }

    /// Makes the folders of a staged table on a local file system (`metadata/`, `data/`):
    /// a client writing there before the table exists (DuckDB's CREATE TABLE AS writes its
    /// manifests first) may not create missing folders, as object stores never need it.
    pub async fn prepare_staged(&self, metadata: &TableMetadata) -> Result<(), CommitError> {
        let Some(path) = metadata.location().strip_prefix("file://") else {
            return Ok(());
        };
        for folder in ["metadata", "data"] {
            let folder = std::path::Path::new(path).join(folder);
            self.locations
                .check(&format!("file://{}", folder.display()))
                .map_err(CommitError::Invalid)?;
            tokio::fs::create_dir_all(&folder).await.map_err(failed)?;
        }
        Ok(())
    }

    /// Where a new table goes: the location asked for, when [`IcebergFormat::place_table`]
    /// allows it; else under its namespace's location, with a unique suffix when that
    /// folder is taken (by a renamed table that kept it, say), as Trino's unique table
    /// locations.
    pub(crate) async fn place_new_table(
        &self,
        namespace: &NamespaceIdent,
        name: &str,
        requested: Option<String>,
    ) -> Result<String, CommitError> {
        if let Some(location) = requested {
            return self
                .place_table(&location, None)
                .await
                .map_err(CommitError::Invalid);
        }
        let location = self.default_location(namespace, name).await?;
        match self.place_table(&location, None).await {
            Ok(location) => Ok(location),
            Err(taken) => {
                let unique = format!("{location}-{}", uuid::Uuid::new_v4().simple());
                self.place_table(&unique, None)
                    .await
                    .map_err(|_| CommitError::Invalid(taken))
            }
        }
    }

    /// Where a new table of `namespace` goes by default: under the namespace's location.
    async fn default_location(
        &self,
        namespace: &NamespaceIdent,
        name: &str,
    ) -> Result<String, CommitError> {
        let properties = self
            .catalog
            .get_namespace(namespace)
            .await
            .map_err(failed)?
            .properties()
            .clone();
        let base = properties
            .get("location")
            .cloned()
            .unwrap_or_else(|| format!("{}/{}", self.warehouse, namespace.join("/")));
        Ok(format!("{}/{name}", base.trim_end_matches('/')))
    }

    /// Creates a table now: its first metadata file and its pointer.
    pub async fn create(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Committed, CommitError> {
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        let metadata = self.new_metadata(namespace, creation).await?;
        let mut done = self.publish(vec![(ident, None, metadata)]).await?;
        Ok(done.remove(0))
    }

    /// Checks, applies and publishes the changes of every table, all or nothing.
    pub async fn commit_changes(
        &self,
        changes: Vec<TableChange>,
    ) -> Result<Vec<Committed>, CommitError> {
        let mut staged = Vec::with_capacity(changes.len());
        for change in changes {
            let current = self.load(&change.ident).await?;
            for requirement in &change.requirements {
                requirement
                    .check(current.as_ref().map(|c| &c.metadata))
                    .map_err(|e| CommitError::Conflict(e.message().to_string()))?;
            }
            let (metadata, expected) = match current {
                Some(Committed {
                    metadata,
                    metadata_location: location,
                    ..
                }) => {
                    let before = metadata.location().to_string();
                    let mut builder =
                        TableMetadataBuilder::new_from_metadata(metadata, Some(location.clone()));
                    for update in change.updates {
                        builder = update.apply(builder).map_err(invalid)?;
                    }
                    let metadata = builder.build().map_err(invalid)?.metadata;
                    if metadata.location() != before {
                        self.place_table(metadata.location(), Some(&change.ident))
                            .await
                            .map_err(CommitError::Invalid)?;
                    }
                    check_write_paths(&metadata, Some(&self.locations))
                        .map_err(CommitError::Invalid)?;
                    (metadata, Some(location))
                }
                None => {
                    if !change
                        .requirements
                        .iter()
                        .any(|r| matches!(r, TableRequirement::NotExist))
                    {
                        return Err(self.missing(&change.ident).await);
                    }
                    self.require_namespace(change.ident.namespace()).await?;
                    let metadata = self.created_from_updates(change.updates)?;
                    self.place_table(metadata.location(), None)
                        .await
                        .map_err(CommitError::Invalid)?;
                    check_write_paths(&metadata, Some(&self.locations))
                        .map_err(CommitError::Invalid)?;
                    (metadata, None)
                }
            };
            staged.push((change.ident, expected, metadata));
        }
        self.publish(staged).await
    }

    /// The metadata of a table created by a commit (a staged create): the first schema,
    /// spec, sort order, location, format version and properties among the updates start
    /// it, the other updates are applied to it.
    fn created_from_updates(
        &self,
        updates: Vec<TableUpdate>,
    ) -> Result<TableMetadata, CommitError> {
        let mut schema = None;
        let mut spec = None;
        let mut sort_order = None;
        let mut location = None;
        let mut format_version = FormatVersion::V2;
        let mut properties = HashMap::new();
        let mut uuid = None;
        let mut rest = Vec::new();
        for update in updates {
            match update {
                TableUpdate::AddSchema { schema: s } if schema.is_none() => schema = Some(s),
                TableUpdate::AddSpec { spec: s } if spec.is_none() => spec = Some(s),
                TableUpdate::AddSortOrder { sort_order: s } if sort_order.is_none() => {
                    sort_order = Some(s)
                }
                TableUpdate::SetLocation { location: l } => location = Some(l),
                TableUpdate::UpgradeFormatVersion { format_version: v } => format_version = v,
                TableUpdate::SetProperties { updates } => properties.extend(updates),
                TableUpdate::AssignUuid { uuid: u } => uuid = Some(u),
                // Their targets are the ones just added.
                TableUpdate::SetCurrentSchema { .. }
                | TableUpdate::SetDefaultSpec { .. }
                | TableUpdate::SetDefaultSortOrder { .. } => {}
                other => rest.push(other),
            }
        }
        let schema = schema.ok_or_else(|| {
            CommitError::Invalid("a table created by a commit needs an add-schema update".into())
        })?;
        let location = location.ok_or_else(|| {
            CommitError::Invalid("a table created by a commit needs a set-location update".into())
        })?;
        let location = self
            .locations
            .check(&location)
            .map_err(CommitError::Invalid)?;
        let mut builder = TableMetadataBuilder::new(
            schema,
            spec.unwrap_or_else(|| UnboundPartitionSpec::builder().build()),
            sort_order.unwrap_or_else(SortOrder::unsorted_order),
            location,
            format_version,
            properties,
        )
        .map_err(invalid)?;
        if let Some(uuid) = uuid {
            builder = builder.assign_uuid(uuid);
        }
        for update in rest {
            builder = update.apply(builder).map_err(invalid)?;
        }
        Ok(builder.build().map_err(invalid)?.metadata)
    }

    /// Writes each table's next metadata file, then moves all pointers at once.
    async fn publish(
        &self,
        staged: Vec<(TableIdent, Option<String>, TableMetadata)>,
    ) -> Result<Vec<Committed>, CommitError> {
        let mut swaps = Vec::with_capacity(staged.len());
        let mut committed = Vec::with_capacity(staged.len());
        for (ident, expected, metadata) in staged {
            let location = match &expected {
                Some(current) => MetadataLocation::from_str(current)
                    .map_err(failed)?
                    .with_next_version()
                    .with_new_metadata(&metadata),
                None => MetadataLocation::new_with_metadata(metadata.location(), &metadata),
            };
            metadata
                .write_to(&self.file_io, &location)
                .await
                .map_err(failed)?;
            swaps.push(PointerSwap {
                namespace: namespace_key(ident.namespace()),
                name: ident.name().to_string(),
                expected,
                new: location.to_string(),
            });
            committed.push(Committed {
                ident,
                metadata_location: location.to_string(),
                metadata,
            });
        }
        // A pipeline run stages its changes of existing tables: they are published with
        // the run's other changes, or not at all.
        if let Some(staging) = Staging::current() {
            if swaps.iter().all(|s| s.expected.is_some()) {
                for swap in swaps {
                    let base = swap.expected.unwrap_or_default();
                    staging.record(
                        &self.catalog_name,
                        &swap.namespace,
                        &swap.name,
                        &base,
                        swap.new,
                    );
                }
                return Ok(committed);
            }
        }
        let swapped = self
            .metastore
            .swap_iceberg_pointers(&self.catalog_name, &swaps)
            .await
            .map_err(failed)?;
        if !swapped {
            let creates = swaps.iter().all(|s| s.expected.is_none());
            return Err(if creates && swaps.len() == 1 {
                CommitError::AlreadyExists(format!(
                    "Table already exists: {}.{}",
                    swaps[0].namespace, swaps[0].name
                ))
            } else {
                CommitError::Conflict(
                    "Commit failed: another writer changed the table first".to_string(),
                )
            });
        }
        Ok(committed)
    }
}
