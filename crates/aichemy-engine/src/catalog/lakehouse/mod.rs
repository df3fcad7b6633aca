//! The lakehouse: its catalogs, its metastore, and the resolution of the names a
//! statement uses into tables, views and metadata tables.
//!
//! Each statement is planned against a catalog snapshot holding exactly the relations it
//! references, resolved fresh from the metastore — so every statement sees the latest
//! commits, and a missing name is reported with Trino's error before planning starts.

use std::collections::BTreeMap;
use std::sync::Arc;

use aichemy_config::{Config, SecretScope};
use aichemy_federation::PostgresCatalog;
use aichemy_metastore::Metastore;
use aichemy_storage::{S3Settings, StorageOptions, StoreRegistry};
use aichemy_tables::registered::{RegisteredFormat, TableStore};
use aichemy_tables::{
    CommitRetry, DeltaStore, HiveStore, IcebergFormat, LanceStore, LocationPolicy, TableFormat,
    TableHandle,
};

use crate::catalog::metadata;
use crate::error::{ErrorCode, Result, TrinoError};
use crate::execution::Execution;

mod query_log;
mod resolve;

pub use query_log::{utc_millis, QueryLog, QueryRecord};

/// Names of the catalogs every lakehouse has, in the order SHOW CATALOGS lists them.
pub const BUILTIN_CATALOGS: [&str; 5] = ["delta", "hive", "iceberg", "lance", "system"];

/// A catalog of the lakehouse.
#[derive(Debug, Clone)]
pub enum CatalogEntry {
    /// Tables of one format.
    Format(Arc<dyn TableFormat>),
    /// A catalog of another system (`connector = "postgresql"`).
    External(Arc<ExternalCatalog>),
    /// A format catalog this build does not serve yet: listed, empty, refuses writes.
    NotYetAvailable,
    /// The `system` catalog of metadata and runtime tables.
    System,
}

impl CatalogEntry {
    /// The table format serving the catalog: `None` for `system` and catalogs not served
    /// yet, the definition's error for an external catalog that could not be opened.
    pub fn table_format(&self) -> Result<Option<Arc<dyn TableFormat>>> {
        match self {
            CatalogEntry::Format(format) => Ok(Some(format.clone())),
            CatalogEntry::External(external) => external
                .state
                .clone()
                .map(Some)
                .map_err(|message| TrinoError::new(ErrorCode::JDBC_ERROR, message)),
            CatalogEntry::NotYetAvailable | CatalogEntry::System => Ok(None),
        }
    }
}

/// A catalog of another system, declared in the configuration, a catalog folder or with
/// CREATE CATALOG.
#[derive(Debug)]
pub struct ExternalCatalog {
    pub connector: String,
    /// Created with CREATE CATALOG, so kept in the metastore and dropped with DROP CATALOG.
    pub stored: bool,
    /// The catalog, or why its definition could not be used (every statement that uses
    /// the catalog fails with that message; the other catalogs are unaffected).
    pub state: std::result::Result<Arc<dyn TableFormat>, String>,
}

impl ExternalCatalog {
    /// Opens a catalog definition; a bad one is kept with its error. `secrets` are the
    /// `${ENV:…}`/`${FILE:…}` references its properties may use: every one for an
    /// administrator's definition, the listed ones for a stored (SQL) one.
    pub fn open(
        name: &str,
        connector: &str,
        properties: &BTreeMap<String, String>,
        stored: bool,
        secrets: &SecretScope,
    ) -> Self {
        let state = match connector {
            "postgresql" => PostgresCatalog::new(name, properties, secrets)
                .map(|c| Arc::new(c) as Arc<dyn TableFormat>),
            other => Err(format!(
                "Catalog '{name}': connector '{other}' is not available; this build serves {}",
                aichemy_federation::CONNECTORS.join(", ")
            )),
        };
        Self {
            connector: connector.to_string(),
            stored,
            state,
        }
    }
}

/// A fully qualified relation name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub catalog: String,
    pub schema: String,
    pub name: String,
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.catalog, self.schema, self.name)
    }
}

/// The shared memory pool's use: bytes reserved, and its limit when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub reserved: usize,
    pub limit: Option<usize>,
}

/// The whole lakehouse one process serves.
#[derive(Debug)]
pub struct Lakehouse {
    catalogs: std::sync::RwLock<BTreeMap<String, CatalogEntry>>,
    /// Users who may CREATE and DROP catalogs; empty means everyone (Trino's default
    /// allow-all access control).
    admin_users: Vec<String>,
    /// The `${ENV:…}`/`${FILE:…}` secrets catalogs made with CREATE CATALOG may read
    /// (`create_catalog_secrets`); their text is any such user's.
    sql_catalog_secrets: SecretScope,
    metastore: Metastore,
    warehouse: String,
    /// The `iceberg` catalog's format, which the Iceberg REST Catalog API serves too.
    iceberg: Arc<IcebergFormat>,
    /// The queries of the server this lakehouse serves, for `system.runtime.queries`.
    query_log: std::sync::RwLock<Option<Arc<dyn QueryLog>>>,
    /// The runtime (memory pool, spill folder, caches) and base settings of its queries.
    execution: Execution,
    /// Where lineage goes besides the metastore (OpenLineage events).
    lineage: crate::lineage::Sink,
    /// The embedding models `embed` calls, with the vectors they gave.
    embedder: Arc<crate::functions::search::Embedder>,
    /// Who may do what (`server.access_control_config`); everyone everything when `None`.
    policy: Option<aichemy_access::Policy>,
    /// The SQL grants last read, under `access-control.name=sql-standard`.
    grants: crate::access::grants::GrantsCache,
    /// Writes audit records in the background.
    auditor: crate::audit::Auditor,
    /// What one user may read per query and per hour.
    read_limits: crate::audit::ReadLimits,
}

/// The user a statement is planned for, kept in its session's configuration so that
/// metadata tables answer for them (`system.runtime.queries` lists only a user's own
/// queries unless they are an administrator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryUser(pub String, pub aichemy_access::RoleSelection);

/// Set on the planning of a DEFINER view's body that another user queries: its
/// [`QueryUser`] is the view's owner, who must hold the right to let others read what the
/// body reads (Trino's `GRANT_SELECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewOwnerReads;

/// The relations a statement's planning read, in the order it resolved them, views
/// followed inside: set on its state by a materialized view's refresh and freshness check,
/// which record the version of each source.
#[derive(Debug, Default)]
pub struct ReadTables(pub std::sync::Mutex<Vec<ReadTable>>);

/// One relation a statement read.
#[derive(Debug, Clone)]
pub struct ReadTable {
    pub name: QualifiedName,
    /// The provider planned with; `None` for what is not a table (system and metadata
    /// tables, a table read at a version).
    pub provider: Option<Arc<dyn datafusion::catalog::TableProvider>>,
    /// Its rows at the version loaded, where the format can say which version that is.
    pub rows: Option<Arc<dyn aichemy_tables::RowLevelTable>>,
    /// How many views deep it was read (0: named by the statement itself).
    pub depth: usize,
}

impl ReadTables {
    pub fn push(&self, table: ReadTable) {
        self.0.lock().expect("not poisoned").push(table);
    }

    pub fn take(&self) -> Vec<ReadTable> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

/// The storage options of `s3://` stores: the configuration's S3 settings, the secret key
/// read from `${ENV:…}`/`${FILE:…}` when it is a reference.
fn storage_options(config: &Config) -> Result<StorageOptions> {
    let s3 = &config.storage.s3;
    let secret = s3
        .secret_access_key
        .as_deref()
        .map(aichemy_config::resolve_secret)
        .transpose()
        .map_err(|message| {
            TrinoError::new(
                ErrorCode::GENERIC_USER_ERROR,
                format!("storage.s3.secret_access_key: {message}"),
            )
        })?;
    Ok(S3Settings {
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        access_key_id: s3.access_key_id.clone(),
        secret_access_key: secret,
        path_style: s3.path_style,
    }
    .storage_options())
}

/// Proves that the object store of a remote warehouse refuses a second put-if-absent of
/// one object, as every format's commit relies on; refuses to start otherwise unless the
/// user opted into unsafe commits. Also fails early when the bucket cannot be written.
async fn check_conditional_writes(
    stores: &StoreRegistry,
    warehouse: &str,
    allow_unsafe: bool,
) -> Result<()> {
    let probe = format!(
        "{warehouse}/_aichemy/commit-probe/{}",
        uuid::Uuid::new_v4().simple()
    );
    let external = |message: String| TrinoError::new(ErrorCode::GENERIC_EXTERNAL, message);
    stores
        .put_if_absent(&probe, b"1")
        .await
        .map_err(|e| external(format!("cannot write to the warehouse at {warehouse}: {e}")))?;
    let second = stores.put_if_absent(&probe, b"2").await;
    let _ = stores.delete(&probe).await;
    match second {
        Ok(false) => Ok(()),
        _ if allow_unsafe => {
            tracing::warn!(
                "the object store of {warehouse} does not enforce conditional writes: \
                 concurrent commits may lose data (storage.allow_unsafe_commits is set)"
            );
            Ok(())
        }
        _ => Err(external(format!(
            "the object store of {warehouse} does not enforce conditional writes \
             (If-None-Match): two writers could both win a commit. Use a store that does, \
             or set storage.allow_unsafe_commits = true to write anyway"
        ))),
    }
}

impl Lakehouse {
    /// Opens the lakehouse the configuration describes, creating the warehouse and
    /// metastore on first use.
    pub async fn open(config: &Config) -> Result<Arc<Self>> {
        let warehouse = config
            .warehouse_url()
            .map_err(|e| TrinoError::new(ErrorCode::GENERIC_USER_ERROR, e.to_string()))?;
        if warehouse.scheme() == "file" {
            if let Ok(path) = warehouse.to_file_path() {
                std::fs::create_dir_all(&path).map_err(|e| {
                    TrinoError::new(
                        ErrorCode::GENERIC_EXTERNAL,
                        format!("cannot create warehouse folder {}: {e}", path.display()),
                    )
                })?;
            }
        }
        let metastore_url = config
            .metastore_url()
            .map_err(|e| TrinoError::new(ErrorCode::GENERIC_USER_ERROR, e.to_string()))?;
        let execution = Execution::new(&config.execution)?;
        let metastore = Metastore::open(&metastore_url).await?;
        let stores = Arc::new(StoreRegistry::with_options(storage_options(config)?));
        let warehouse = warehouse.to_string().trim_end_matches('/').to_string();
        if !warehouse.starts_with("file:") {
            check_conditional_writes(&stores, &warehouse, config.storage.allow_unsafe_commits)
                .await?;
        }
        // No table may be placed over the warehouse root, a format catalog's folder, the
        // metastore file or the TLS folder.
        let locations = LocationPolicy::new(
            std::iter::once(&warehouse).chain(&config.storage.allowed_locations),
        )
        .map_err(|e| TrinoError::new(ErrorCode::GENERIC_USER_ERROR, e))?
        .with_warehouse(&warehouse, &["iceberg", "hive", "delta", "lance"]);
        let retry = CommitRetry {
            retries: config.commit.retries,
        };
        let iceberg = IcebergFormat::open(
            "iceberg",
            &metastore,
            &format!("{warehouse}/iceberg"),
            stores.clone(),
            retry,
            locations.clone(),
        )
        .await?;
        let iceberg_format = Arc::new(iceberg);
        let iceberg: Arc<dyn TableFormat> = iceberg_format.clone();
        // Catalogs whose tables the metastore records, one store per format.
        let registered = |catalog: &str, store: Arc<dyn TableStore>| -> Arc<dyn TableFormat> {
            Arc::new(RegisteredFormat::new(
                catalog,
                &warehouse,
                metastore.clone(),
                stores.clone(),
                store,
                locations.clone(),
            ))
        };
        let hive = registered("hive", Arc::new(HiveStore::new(stores.clone())));
        let delta = registered(
            "delta",
            Arc::new(
                DeltaStore::new(stores.options().clone(), retry).guarded_by(locations.clone()),
            ),
        );
        let lance = registered(
            "lance",
            Arc::new(LanceStore::new(stores.clone(), retry).guarded_by(locations.clone())),
        );
        let mut catalogs = BTreeMap::new();
        for name in BUILTIN_CATALOGS {
            let entry = match name {
                "iceberg" => CatalogEntry::Format(iceberg.clone()),
                "hive" => CatalogEntry::Format(hive.clone()),
                "delta" => CatalogEntry::Format(delta.clone()),
                "lance" => CatalogEntry::Format(lance.clone()),
                "system" => CatalogEntry::System,
                _ => CatalogEntry::NotYetAvailable,
            };
            catalogs.insert(name.to_string(), entry);
        }
        let definitions = config
            .catalog_definitions()
            .map_err(|e| TrinoError::new(ErrorCode::GENERIC_USER_ERROR, e.to_string()))?;
        let stored = metastore.list_catalogs().await?;
        let declared = definitions
            .iter()
            .map(|d| {
                (
                    &d.name,
                    &d.connector,
                    &d.properties,
                    false,
                    d.origin.as_str(),
                )
            })
            .chain(
                stored
                    .iter()
                    .map(|r| (&r.name, &r.connector, &r.properties, true, "the metastore")),
            );
        for (name, connector, properties, is_stored, origin) in declared {
            if catalogs.contains_key(name) {
                tracing::error!(
                    "Catalog '{name}' from {origin} is ignored: a catalog of that name already exists"
                );
                continue;
            }
            let secrets = if is_stored {
                config.create_catalog_secret_scope()
            } else {
                SecretScope::Any
            };
            let external = ExternalCatalog::open(name, connector, properties, is_stored, &secrets);
            if let Err(message) = &external.state {
                tracing::error!("{message}");
            }
            catalogs.insert(name.clone(), CatalogEntry::External(Arc::new(external)));
        }
        let auditor = crate::audit::Auditor::spawn(metastore.clone(), &config.audit);
        let lakehouse = Arc::new(Self {
            catalogs: std::sync::RwLock::new(catalogs),
            admin_users: config.server.admin_users.clone(),
            sql_catalog_secrets: config.create_catalog_secret_scope(),
            metastore,
            warehouse,
            iceberg: iceberg_format,
            query_log: std::sync::RwLock::new(None),
            execution,
            lineage: crate::lineage::Sink::from_config(&config.lineage)?,
            embedder: Arc::new(crate::functions::search::Embedder::from_config(
                &config.embeddings,
            )?),
            policy: open_policy(&config.server)?,
            grants: Default::default(),
            auditor,
            read_limits: crate::audit::ReadLimits::from_config(&config.server),
        });
        lakehouse.refresh_grants(true).await?;
        Ok(lakehouse)
    }

    pub fn metastore(&self) -> &Metastore {
        &self.metastore
    }

    /// Where lineage goes besides the metastore.
    pub fn lineage(&self) -> &crate::lineage::Sink {
        &self.lineage
    }

    /// The `${ENV:…}`/`${FILE:…}` secrets statements may refer to
    /// (`create_catalog_secrets`): those of catalogs and ingestions made with SQL.
    pub fn sql_secret_scope(&self) -> &SecretScope {
        &self.sql_catalog_secrets
    }

    pub fn warehouse(&self) -> &str {
        &self.warehouse
    }

    /// The `iceberg` catalog, as the Iceberg REST Catalog API serves it.
    pub fn iceberg(&self) -> Arc<IcebergFormat> {
        self.iceberg.clone()
    }

    pub fn catalog_names(&self) -> Vec<String> {
        self.catalogs
            .read()
            .expect("not poisoned")
            .keys()
            .cloned()
            .collect()
    }

    /// Catalog names with their connector names, for `system.metadata.catalogs`.
    pub fn catalog_connectors(&self) -> Vec<(String, String)> {
        self.catalogs
            .read()
            .expect("not poisoned")
            .iter()
            .map(|(name, entry)| {
                let connector = match entry {
                    CatalogEntry::External(external) => external.connector.clone(),
                    _ => name.clone(),
                };
                (name.clone(), connector)
            })
            .collect()
    }

    pub fn catalog(&self, name: &str) -> Result<CatalogEntry> {
        self.catalogs
            .read()
            .expect("not poisoned")
            .get(name)
            .cloned()
            .ok_or_else(|| TrinoError::catalog_not_found(name))
    }

    /// How long any statement may run, whatever its session says.
    pub fn max_run_time(&self) -> Option<std::time::Duration> {
        self.execution.max_run_time()
    }

    /// How much CPU time any statement's operators may spend, whatever its session says.
    pub fn max_cpu_time(&self) -> Option<std::time::Duration> {
        self.execution.max_cpu_time()
    }

    /// What one user may read per query and per hour.
    pub fn read_limits(&self) -> &crate::audit::ReadLimits {
        &self.read_limits
    }

    /// Writes audit records in the background.
    pub(crate) fn auditor(&self) -> &crate::audit::Auditor {
        &self.auditor
    }

    /// The SQL grants last read and the rules compiled from them.
    pub(crate) fn grants_cache(&self) -> &crate::access::grants::GrantsCache {
        &self.grants
    }

    /// The access policy, if one is configured.
    pub fn policy(&self) -> Option<&aichemy_access::Policy> {
        self.policy.as_ref()
    }

    /// The users `server.admin_users` names.
    pub(crate) fn configured_admins(&self) -> &[String] {
        &self.admin_users
    }

    /// Whether a user may create and drop catalogs.
    /// What the queries' operators hold of the shared memory pool now, and its limit.
    pub fn memory_pool(&self) -> PoolUse {
        use datafusion::execution::memory_pool::MemoryLimit;
        let pool = &self.execution.runtime().memory_pool;
        PoolUse {
            reserved: pool.reserved(),
            limit: match pool.memory_limit() {
                MemoryLimit::Finite(limit) => Some(limit),
                MemoryLimit::Infinite | MemoryLimit::Unknown => None,
            },
        }
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.admin_users.is_empty() || self.admin_users.iter().any(|u| u == user)
    }

    /// Adds a catalog made by CREATE CATALOG; it is recorded in the metastore first.
    pub async fn create_catalog(
        &self,
        record: aichemy_metastore::CatalogRecord,
        if_not_exists: bool,
    ) -> Result<bool> {
        if self.catalog(&record.name).is_ok() {
            if if_not_exists {
                return Ok(false);
            }
            return Err(TrinoError::new(
                ErrorCode::ALREADY_EXISTS,
                format!("Catalog '{}' already exists", record.name),
            ));
        }
        let external = ExternalCatalog::open(
            &record.name,
            &record.connector,
            &record.properties,
            true,
            &self.sql_catalog_secrets,
        );
        if let Err(message) = external.state {
            return Err(TrinoError::new(ErrorCode::GENERIC_USER_ERROR, message));
        }
        match self.metastore.create_catalog(&record).await {
            Err(aichemy_metastore::MetastoreError::CatalogAlreadyExists { .. })
                if if_not_exists =>
            {
                return Ok(false)
            }
            Err(aichemy_metastore::MetastoreError::CatalogAlreadyExists { catalog }) => {
                return Err(TrinoError::new(
                    ErrorCode::ALREADY_EXISTS,
                    format!("Catalog '{catalog}' already exists"),
                ))
            }
            other => other?,
        }
        self.catalogs.write().expect("not poisoned").insert(
            record.name.clone(),
            CatalogEntry::External(Arc::new(external)),
        );
        Ok(true)
    }

    /// Removes a catalog made by CREATE CATALOG; answers whether it existed.
    pub async fn drop_catalog(&self, name: &str) -> Result<bool> {
        match self.catalog(name) {
            Err(_) => return Ok(false),
            Ok(CatalogEntry::External(external)) if external.stored => {}
            Ok(_) => {
                return Err(TrinoError::new(
                    ErrorCode::NOT_SUPPORTED,
                    format!(
                        "Catalog '{name}' was not created with CREATE CATALOG; remove it from the configuration instead"
                    ),
                ))
            }
        }
        self.metastore.drop_catalog(name).await?;
        self.catalogs.write().expect("not poisoned").remove(name);
        Ok(true)
    }

    /// The table format serving a catalog, or the error for a catalog that has none.
    pub fn format(&self, catalog: &str) -> Result<Arc<dyn TableFormat>> {
        let entry = self.catalog(catalog)?;
        match entry.table_format()? {
            Some(format) => Ok(format),
            None if matches!(entry, CatalogEntry::System) => Err(TrinoError::not_supported(
                format!("Catalog '{catalog}' is read-only"),
            )),
            None => Err(TrinoError::not_supported(format!(
                "Catalog '{catalog}' does not support this operation yet: this build serves tables in the iceberg catalog"
            ))),
        }
    }

    /// Schemas of a catalog, without `information_schema`.
    pub async fn list_schemas(&self, catalog: &str) -> Result<Vec<String>> {
        let entry = self.catalog(catalog)?;
        if let Some(format) = entry.table_format()? {
            return Ok(format.list_schemas().await?);
        }
        Ok(match entry {
            CatalogEntry::System => metadata::SYSTEM_SCHEMAS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            _ => Vec::new(),
        })
    }

    pub async fn schema_exists(&self, catalog: &str, schema: &str) -> Result<bool> {
        if schema == "information_schema" {
            return Ok(self.catalog(catalog).is_ok());
        }
        Ok(self
            .list_schemas(catalog)
            .await?
            .iter()
            .any(|s| s == schema))
    }

    pub async fn require_schema(&self, catalog: &str, schema: &str) -> Result<()> {
        if self.schema_exists(catalog, schema).await? {
            Ok(())
        } else {
            Err(TrinoError::schema_not_found(schema))
        }
    }

    /// Loads a table of a format catalog; `None` when there is no such table.
    pub async fn load_table(&self, name: &QualifiedName) -> Result<Option<TableHandle>> {
        match self.catalog(&name.catalog)?.table_format()? {
            Some(format) => Ok(format.load_table(&name.schema, &name.name).await?),
            None => Ok(None),
        }
    }
}

/// The access policy the server configuration names; a file that cannot be read or used
/// stops the start.
fn open_policy(server: &aichemy_config::ServerConfig) -> Result<Option<aichemy_access::Policy>> {
    let Some(path) = &server.access_control_config else {
        if server.group_provider_config.is_some() {
            return Err(TrinoError::new(
                ErrorCode::GENERIC_USER_ERROR,
                "server.group_provider_config needs server.access_control_config: groups \
                 only matter to access rules",
            ));
        }
        return Ok(None);
    };
    let invalid = |e: aichemy_access::RulesError| {
        TrinoError::new(
            ErrorCode::GENERIC_USER_ERROR,
            format!("Access control configuration {}: {e}", path.display()),
        )
    };
    let mut config = aichemy_access::AccessControlConfig::load(path).map_err(invalid)?;
    if let Some(groups) = &server.group_provider_config {
        config = config.with_group_provider(groups).map_err(invalid)?;
    }
    aichemy_access::Policy::open(&config)
        .map(Some)
        .map_err(invalid)
}
