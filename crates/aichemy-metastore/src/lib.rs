//! The metastore: the durable record of schemas, tables, views, catalogs and users.
//!
//! It is one SQL database: an SQLite file by default, or PostgreSQL
//! (`metastore.url = "postgresql://…"`) when several servers share one lakehouse. Both are
//! reached through sqlx's `Any` driver with the same statements (`$1` parameters and
//! `ON CONFLICT` work in both). The schema is versioned by the migrations in
//! `migrations/sqlite` and `migrations/postgres`, numbered alike so that a version means the
//! same in both; a database written by a newer AIchemy (with migrations this binary does not
//! know) is refused rather than silently misread. [`Metastore::export`] and
//! [`Metastore::import`] move the whole content between the two.
#![forbid(unsafe_code)]

mod locations;
mod transfer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, Connection, Executor, Row};

pub use locations::RecordedLocation;
pub use transfer::{Export, ImportSummary};

/// Errors of the metastore.
#[derive(Debug, thiserror::Error)]
pub enum MetastoreError {
    #[error(
        "unsupported metastore URL '{url}': use sqlite://PATH or postgresql://USER@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl { url: String },
    #[error("cannot open the metastore at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error(
        "the metastore at {url} has schema version {found}, newer than this binary knows \
         (up to {known}): it was written by a newer AIchemy; upgrade this binary"
    )]
    NewerSchema { url: String, found: i64, known: i64 },
    #[error("cannot migrate the metastore at {url}: {source}")]
    Migrate { url: String, source: MigrateError },
    #[error("metastore query failed: {source}")]
    Query {
        #[from]
        source: sqlx::Error,
    },
    #[error("view '{catalog}.{schema}.{name}' already exists")]
    ViewAlreadyExists {
        catalog: String,
        schema: String,
        name: String,
    },
    #[error("stored definition is invalid: {source}")]
    Corrupt { source: serde_json::Error },
    #[error("catalog '{catalog}' already exists")]
    CatalogAlreadyExists { catalog: String },
    #[error("schema '{catalog}.{schema}' already exists")]
    SchemaAlreadyExists { catalog: String, schema: String },
    #[error("table '{catalog}.{schema}.{name}' already exists")]
    TableAlreadyExists {
        catalog: String,
        schema: String,
        name: String,
    },
    #[error("user '{user}' already exists")]
    UserAlreadyExists { user: String },
    #[error("cannot import: {message}")]
    Import { message: String },
}

impl MetastoreError {
    /// Whether the database could not be reached at all (no connection in time, the
    /// connection lost), as opposed to a statement it refused.
    pub fn is_unavailable(&self) -> bool {
        match self {
            MetastoreError::Query { source } | MetastoreError::Open { source, .. } => matches!(
                source,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            ),
            _ => false,
        }
    }
}

/// The database kind behind a metastore URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The kind of database `url` names, or `None` for an unsupported scheme.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgresql://") || url.starts_with("postgres://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    fn migrator(self) -> &'static Migrator {
        static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
        static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
        match self {
            Self::Sqlite => &SQLITE,
            Self::Postgres => &POSTGRES,
        }
    }

    /// The newest schema version this binary knows.
    pub fn known_version(self) -> i64 {
        self.migrator().iter().map(|m| m.version).max().unwrap_or(0)
    }
}

/// What [`Metastore::migrate`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationReport {
    /// Versions applied by this call, oldest first.
    pub applied: Vec<i64>,
    /// The schema version afterwards.
    pub version: i64,
}

/// A schema of a metastore-kept catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRecord {
    pub catalog: String,
    pub schema: String,
    pub location: String,
}

/// A table of a metastore-kept catalog (delta, lance, hive).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRecord {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    pub location: String,
    /// The files belong to someone else: DROP TABLE leaves them.
    pub external: bool,
    /// The Arrow schema as an Arrow IPC schema message, hex-encoded.
    pub schema_ipc: String,
    /// Table properties: name to SQL literal.
    pub properties: Vec<(String, String)>,
    pub comment: Option<String>,
}

/// A column of a stored view: its name and Trino type as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewColumn {
    pub name: String,
    pub trino_type: String,
}

/// A view as stored: its defining SQL and the columns it had when created.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewRecord {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    pub sql: String,
    pub columns: Vec<ViewColumn>,
    pub comment: Option<String>,
    pub owner: Option<String>,
}

/// A table of relations and the column holding their names.
type Relations = (&'static str, &'static str);
const VIEWS: Relations = ("aichemy_views", "view_name");
const TABLES: Relations = ("aichemy_tables", "table_name");

/// How long a statement waits for a connection to a PostgreSQL metastore before it fails
/// (an error [`MetastoreError::is_unavailable`] recognises): while the database is down, every statement fails
/// this soon rather than hanging (the pool reconnects by itself once it is back).
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an SQLite statement waits for another connection's write lock.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 30_000;

/// A handle on the metastore database.
#[derive(Debug, Clone)]
pub struct Metastore {
    pool: AnyPool,
    url: String,
    backend: Backend,
}

impl Metastore {
    /// Opens (creating an SQLite file when missing) the metastore at `url` and applies the
    /// migrations it lacks.
    pub async fn open(url: &str) -> Result<Self, MetastoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the metastore at `url` without touching its schema.
    pub async fn connect(url: &str) -> Result<Self, MetastoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url).ok_or_else(|| MetastoreError::UnsupportedUrl {
            url: redact_url(url),
        })?;
        let open_error = |source| MetastoreError::Open {
            url: redact_url(url),
            source,
        };
        let url = match backend {
            Backend::Sqlite => {
                let path = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .unwrap_or(url);
                let path = path.split('?').next().unwrap_or(path);
                prepare_sqlite(path).await.map_err(open_error)?;
                format!("sqlite://{path}")
            }
            Backend::Postgres => url.to_string(),
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT);
        if backend == Backend::Sqlite {
            options = options
                .max_connections(4)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str(),
                        )
                        .await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        Ok(())
                    })
                });
        }
        let pool = options.connect(&url).await.map_err(open_error)?;
        Ok(Self { pool, url, backend })
    }

    /// Applies the migrations the database lacks. A database with a version this binary
    /// does not know is refused with [`MetastoreError::NewerSchema`].
    pub async fn migrate(&self) -> Result<MigrationReport, MetastoreError> {
        let migrator = self.backend.migrator();
        let known = self.backend.known_version();
        self.schema_version().await?;
        let before = self.applied_versions().await?;
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| match source {
                MigrateError::VersionMissing(found) => MetastoreError::NewerSchema {
                    url: self.display_url(),
                    found,
                    known,
                },
                source => MetastoreError::Migrate {
                    url: self.display_url(),
                    source,
                },
            })?;
        let after = self.applied_versions().await?;
        Ok(MigrationReport {
            applied: after
                .iter()
                .filter(|v| !before.contains(v))
                .copied()
                .collect(),
            version: after.iter().copied().max().unwrap_or(0),
        })
    }

    /// The schema version of the database (0 when new), refused with
    /// [`MetastoreError::NewerSchema`] when it is newer than this binary.
    pub async fn schema_version(&self) -> Result<i64, MetastoreError> {
        let applied = self.applied_versions().await?;
        let found = applied.into_iter().max().unwrap_or(0);
        let known = self.backend.known_version();
        if found > known {
            return Err(MetastoreError::NewerSchema {
                url: self.display_url(),
                found,
                known,
            });
        }
        Ok(found)
    }

    /// The migration versions recorded in the database, oldest first.
    async fn applied_versions(&self) -> Result<Vec<i64>, MetastoreError> {
        let mut conn = self.pool.acquire().await?;
        let migrate_error = |source| MetastoreError::Migrate {
            url: self.display_url(),
            source,
        };
        conn.ensure_migrations_table()
            .await
            .map_err(migrate_error)?;
        let applied = conn
            .list_applied_migrations()
            .await
            .map_err(migrate_error)?;
        Ok(applied.into_iter().map(|m| m.version).collect())
    }

    /// The database URL, for components that keep their own tables in the same database
    /// (the Iceberg SQL catalog). It may hold a password: never show it; see
    /// [`Metastore::display_url`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database URL with any password replaced by `***`, for messages.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Stores a view; with `replace`, an existing view of that name is overwritten.
    pub async fn create_view(
        &self,
        view: &ViewRecord,
        replace: bool,
    ) -> Result<(), MetastoreError> {
        let columns = serde_json::to_string(&view.columns)
            .map_err(|source| MetastoreError::Corrupt { source })?;
        let on_conflict = if replace {
            "ON CONFLICT (catalog_name, schema_name, view_name) DO UPDATE SET
                 view_sql = excluded.view_sql, columns_json = excluded.columns_json,
                 comment = excluded.comment, owner = excluded.owner"
        } else {
            ""
        };
        let result = sqlx::query(&format!(
            "INSERT INTO aichemy_views (catalog_name, schema_name, view_name, view_sql, columns_json, comment, owner)
             VALUES ($1, $2, $3, $4, $5, $6, $7) {on_conflict}"
        ))
        .bind(&view.catalog)
        .bind(&view.schema)
        .bind(&view.name)
        .bind(&view.sql)
        .bind(columns)
        .bind(&view.comment)
        .bind(&view.owner)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(MetastoreError::ViewAlreadyExists {
                    catalog: view.catalog.clone(),
                    schema: view.schema.clone(),
                    name: view.name.clone(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_view(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<Option<ViewRecord>, MetastoreError> {
        let row = sqlx::query(
            "SELECT catalog_name, schema_name, view_name, view_sql, columns_json, comment, owner
             FROM aichemy_views WHERE catalog_name = $1 AND schema_name = $2 AND view_name = $3",
        )
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(view_from_row).transpose()
    }

    /// Views of a catalog, of one schema when given, ordered by schema and name.
    pub async fn list_views(
        &self,
        catalog: &str,
        schema: Option<&str>,
    ) -> Result<Vec<ViewRecord>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT catalog_name, schema_name, view_name, view_sql, columns_json, comment, owner
             FROM aichemy_views WHERE catalog_name = $1 AND ($2 IS NULL OR schema_name = $3)
             ORDER BY schema_name, view_name",
        )
        .bind(catalog)
        .bind(schema)
        .bind(schema)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(view_from_row).collect()
    }

    /// Removes a view; answers whether it existed.
    pub async fn drop_view(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<bool, MetastoreError> {
        Ok(self.delete_relation(VIEWS, catalog, schema, name).await? > 0)
    }

    /// Renames a view within its catalog; answers whether it existed.
    pub async fn rename_view(
        &self,
        catalog: &str,
        from: (&str, &str),
        to: (&str, &str),
    ) -> Result<bool, MetastoreError> {
        Ok(self.rename_relation(VIEWS, catalog, from, to).await? > 0)
    }

    /// Deletes one row of a relation table; answers how many went.
    async fn delete_relation(
        &self,
        relations: Relations,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<u64, sqlx::Error> {
        let (table, name_column) = relations;
        let done = sqlx::query(&format!(
            "DELETE FROM {table} WHERE catalog_name = $1 AND schema_name = $2 AND {name_column} = $3"
        ))
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Moves one row of a relation table to a new schema and name.
    async fn rename_relation(
        &self,
        relations: Relations,
        catalog: &str,
        (schema, name): (&str, &str),
        (new_schema, new_name): (&str, &str),
    ) -> Result<u64, sqlx::Error> {
        let (table, name_column) = relations;
        let done = sqlx::query(&format!(
            "UPDATE {table} SET schema_name = $1, {name_column} = $2
             WHERE catalog_name = $3 AND schema_name = $4 AND {name_column} = $5"
        ))
        .bind(new_schema)
        .bind(new_name)
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// An external catalog created with CREATE CATALOG.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogRecord {
    pub name: String,
    pub connector: String,
    pub properties: std::collections::BTreeMap<String, String>,
}

impl Metastore {
    /// Records a catalog; fails with `CatalogAlreadyExists` when it is there.
    pub async fn create_catalog(&self, record: &CatalogRecord) -> Result<(), MetastoreError> {
        let properties = serde_json::to_string(&record.properties)
            .map_err(|source| MetastoreError::Corrupt { source })?;
        let result = sqlx::query(
            "INSERT INTO aichemy_catalogs (catalog_name, connector, properties_json) VALUES ($1, $2, $3)",
        )
        .bind(&record.name)
        .bind(&record.connector)
        .bind(properties)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(MetastoreError::CatalogAlreadyExists {
                    catalog: record.name.clone(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The catalogs created with CREATE CATALOG, by name.
    pub async fn list_catalogs(&self) -> Result<Vec<CatalogRecord>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT catalog_name, connector, properties_json FROM aichemy_catalogs ORDER BY catalog_name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let properties: String = row.get(2);
                Ok(CatalogRecord {
                    name: row.get(0),
                    connector: row.get(1),
                    properties: serde_json::from_str(&properties)
                        .map_err(|source| MetastoreError::Corrupt { source })?,
                })
            })
            .collect()
    }

    /// Removes a catalog; answers whether it existed.
    pub async fn drop_catalog(&self, name: &str) -> Result<bool, MetastoreError> {
        let result = sqlx::query("DELETE FROM aichemy_catalogs WHERE catalog_name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }
}

impl Metastore {
    /// Records a schema; fails with `SchemaAlreadyExists` when it is there.
    pub async fn create_schema(&self, record: &SchemaRecord) -> Result<(), MetastoreError> {
        let result = sqlx::query(
            "INSERT INTO aichemy_schemas (catalog_name, schema_name, location) VALUES ($1, $2, $3)",
        )
        .bind(&record.catalog)
        .bind(&record.schema)
        .bind(&record.location)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(MetastoreError::SchemaAlreadyExists {
                    catalog: record.catalog.clone(),
                    schema: record.schema.clone(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_schema(
        &self,
        catalog: &str,
        schema: &str,
    ) -> Result<Option<SchemaRecord>, MetastoreError> {
        let row = sqlx::query(
            "SELECT catalog_name, schema_name, location FROM aichemy_schemas
             WHERE catalog_name = $1 AND schema_name = $2",
        )
        .bind(catalog)
        .bind(schema)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| -> Result<SchemaRecord, MetastoreError> {
            Ok(SchemaRecord {
                catalog: row.try_get("catalog_name")?,
                schema: row.try_get("schema_name")?,
                location: row.try_get("location")?,
            })
        })
        .transpose()
    }

    /// Schema names of a catalog, sorted.
    pub async fn list_schemas(&self, catalog: &str) -> Result<Vec<String>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT schema_name FROM aichemy_schemas WHERE catalog_name = $1 ORDER BY schema_name",
        )
        .bind(catalog)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get("schema_name").map_err(Into::into))
            .collect()
    }

    /// Removes a schema record; answers whether it existed.
    pub async fn drop_schema(&self, catalog: &str, schema: &str) -> Result<bool, MetastoreError> {
        let done =
            sqlx::query("DELETE FROM aichemy_schemas WHERE catalog_name = $1 AND schema_name = $2")
                .bind(catalog)
                .bind(schema)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a table; fails with `TableAlreadyExists` when it is there.
    pub async fn create_table(&self, record: &TableRecord) -> Result<(), MetastoreError> {
        let properties = properties_json(&record.properties)?;
        let result = sqlx::query(
            "INSERT INTO aichemy_tables (catalog_name, schema_name, table_name, location, external,
                 schema_ipc, properties_json, comment)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&record.catalog)
        .bind(&record.schema)
        .bind(&record.name)
        .bind(&record.location)
        .bind(i64::from(record.external))
        .bind(&record.schema_ipc)
        .bind(properties)
        .bind(&record.comment)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(MetastoreError::TableAlreadyExists {
                    catalog: record.catalog.clone(),
                    schema: record.schema.clone(),
                    name: record.name.clone(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_table(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<Option<TableRecord>, MetastoreError> {
        let row = sqlx::query(
            "SELECT catalog_name, schema_name, table_name, location, external, schema_ipc,
                 properties_json, comment
             FROM aichemy_tables WHERE catalog_name = $1 AND schema_name = $2 AND table_name = $3",
        )
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(table_from_row).transpose()
    }

    /// Table names of a schema, sorted.
    pub async fn list_tables(
        &self,
        catalog: &str,
        schema: &str,
    ) -> Result<Vec<String>, MetastoreError> {
        let rows = sqlx::query(
            "SELECT table_name FROM aichemy_tables WHERE catalog_name = $1 AND schema_name = $2
             ORDER BY table_name",
        )
        .bind(catalog)
        .bind(schema)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get("table_name").map_err(Into::into))
            .collect()
    }

    /// Replaces the stored schema of a table (after ADD COLUMN).
    pub async fn update_table_schema(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
        schema_ipc: &str,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_tables SET schema_ipc = $1
             WHERE catalog_name = $2 AND schema_name = $3 AND table_name = $4",
        )
        .bind(schema_ipc)
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a table record; answers whether it existed.
    pub async fn drop_table(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<bool, MetastoreError> {
        Ok(self.delete_relation(TABLES, catalog, schema, name).await? > 0)
    }

    /// Renames a table within its catalog (its files stay where they are); answers whether
    /// it existed.
    pub async fn rename_table(
        &self,
        catalog: &str,
        (schema, name): (&str, &str),
        (new_schema, new_name): (&str, &str),
    ) -> Result<bool, MetastoreError> {
        let result = self
            .rename_relation(TABLES, catalog, (schema, name), (new_schema, new_name))
            .await;
        match result {
            Ok(renamed) => Ok(renamed > 0),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(MetastoreError::TableAlreadyExists {
                    catalog: catalog.to_string(),
                    schema: new_schema.to_string(),
                    name: new_name.to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// One Iceberg table pointer to move in [`Metastore::swap_iceberg_pointers`].
#[derive(Debug, Clone, PartialEq)]
pub struct PointerSwap {
    /// The namespace, its levels joined by `.` as the Iceberg SQL catalog keeps it.
    pub namespace: String,
    pub name: String,
    /// The metadata file the pointer must still name; `None` when the table must not
    /// exist yet (a create).
    pub expected: Option<String>,
    /// The metadata file it names afterwards.
    pub new: String,
}

impl Metastore {
    /// The current metadata file of an Iceberg table of the SQL catalog `catalog`.
    pub async fn iceberg_pointer(
        &self,
        catalog: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, MetastoreError> {
        let row = sqlx::query(
            "SELECT metadata_location FROM iceberg_tables
             WHERE catalog_name = $1 AND table_namespace = $2 AND table_name = $3
               AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)",
        )
        .bind(catalog)
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|row| row.get::<Option<String>, _>(0)))
    }

    /// Moves every pointer from its expected metadata file to its new one, all or none
    /// (one transaction, each a compare-and-swap); answers false, changing nothing, when
    /// any pointer moved meanwhile or a table to create exists.
    pub async fn swap_iceberg_pointers(
        &self,
        catalog: &str,
        swaps: &[PointerSwap],
    ) -> Result<bool, MetastoreError> {
        let mut tx = self.pool.begin().await?;
        for swap in swaps {
            let done = match &swap.expected {
                Some(expected) => {
                    sqlx::query(
                        "UPDATE iceberg_tables
                         SET metadata_location = $1, previous_metadata_location = $2
                         WHERE catalog_name = $3 AND table_namespace = $4 AND table_name = $5
                           AND metadata_location = $6",
                    )
                    .bind(&swap.new)
                    .bind(expected)
                    .bind(catalog)
                    .bind(&swap.namespace)
                    .bind(&swap.name)
                    .bind(expected)
                    .execute(&mut *tx)
                    .await
                }
                None => {
                    sqlx::query(
                        "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name,
                             metadata_location, iceberg_type)
                         VALUES ($1, $2, $3, $4, 'TABLE')",
                    )
                    .bind(catalog)
                    .bind(&swap.namespace)
                    .bind(&swap.name)
                    .bind(&swap.new)
                    .execute(&mut *tx)
                    .await
                }
            };
            match done {
                Ok(done) if done.rows_affected() == 1 => {}
                Ok(_) => return Ok(false),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(true)
    }
}

impl Metastore {
    /// Adds a user with a password hash; `UserAlreadyExists` when the name is taken.
    pub async fn add_user(&self, name: &str, password_hash: &str) -> Result<(), MetastoreError> {
        self.add_users(&[(name.to_string(), password_hash.to_string())])
            .await
    }

    /// Adds users with their password hashes, all or none: `UserAlreadyExists` names the
    /// first one taken.
    pub async fn add_users(&self, users: &[(String, String)]) -> Result<(), MetastoreError> {
        let mut tx = self.pool.begin().await?;
        for (name, password_hash) in users {
            let result =
                sqlx::query("INSERT INTO aichemy_users (user_name, password_hash) VALUES ($1, $2)")
                    .bind(name)
                    .bind(password_hash)
                    .execute(&mut *tx)
                    .await;
            match result {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(MetastoreError::UserAlreadyExists { user: name.clone() })
                }
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a user's password hash; answers whether the user exists.
    pub async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query("UPDATE aichemy_users SET password_hash = $1 WHERE user_name = $2")
            .bind(password_hash)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a user; answers whether the user existed.
    pub async fn remove_user(&self, name: &str) -> Result<bool, MetastoreError> {
        let done = sqlx::query("DELETE FROM aichemy_users WHERE user_name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A user's password hash, or `None` when there is no such user.
    pub async fn user_password_hash(&self, name: &str) -> Result<Option<String>, MetastoreError> {
        let row = sqlx::query("SELECT password_hash FROM aichemy_users WHERE user_name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// The users' names, sorted.
    pub async fn list_users(&self) -> Result<Vec<String>, MetastoreError> {
        let rows = sqlx::query("SELECT user_name FROM aichemy_users ORDER BY user_name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|row| row.get(0)).collect())
    }

    /// The shared secret `name`. The first caller stores the value `make` gives; callers
    /// racing it, on this server or another, all get the one value stored.
    pub async fn shared_secret(
        &self,
        name: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String, MetastoreError> {
        sqlx::query(
            "INSERT INTO aichemy_secrets (secret_name, secret_value) VALUES ($1, $2)
             ON CONFLICT (secret_name) DO NOTHING",
        )
        .bind(name)
        .bind(make())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT secret_value FROM aichemy_secrets WHERE secret_name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }
}

fn properties_json(properties: &[(String, String)]) -> Result<String, MetastoreError> {
    let map: serde_json::Map<String, serde_json::Value> = properties
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::to_string(&map).map_err(|source| MetastoreError::Corrupt { source })
}

fn table_from_row(row: AnyRow) -> Result<TableRecord, MetastoreError> {
    let properties: String = row.try_get("properties_json")?;
    let properties: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&properties).map_err(|source| MetastoreError::Corrupt { source })?;
    Ok(TableRecord {
        catalog: row.try_get("catalog_name")?,
        schema: row.try_get("schema_name")?,
        name: row.try_get("table_name")?,
        location: row.try_get("location")?,
        external: row.try_get::<i64, _>("external")? != 0,
        schema_ipc: row.try_get("schema_ipc")?,
        properties: properties
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect(),
        comment: row.try_get("comment")?,
    })
}

fn view_from_row(row: AnyRow) -> Result<ViewRecord, MetastoreError> {
    let columns: String = row.try_get("columns_json")?;
    Ok(ViewRecord {
        catalog: row.try_get("catalog_name")?,
        schema: row.try_get("schema_name")?,
        name: row.try_get("view_name")?,
        sql: row.try_get("view_sql")?,
        columns: serde_json::from_str(&columns)
            .map_err(|source| MetastoreError::Corrupt { source })?,
        comment: row.try_get("comment")?,
        owner: row.try_get("owner")?,
    })
}

/// Creates the SQLite file and its folder when missing and switches it to write-ahead
/// logging (a setting the file keeps), so that readers never wait for a writer.
async fn prepare_sqlite(path: &str) -> Result<(), sqlx::Error> {
    if let Some(parent) = Path::new(path).parent() {
        std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
    }
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS));
    let conn = sqlx::SqliteConnection::connect_with(&options).await?;
    conn.close().await
}

/// `url` with the password of its user-info part, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let tail = redact_query_password(tail);
    let Some((user_info, host)) = authority.rsplit_once('@') else {
        return format!("{scheme}://{authority}{tail}");
    };
    let user = user_info.split(':').next().unwrap_or_default();
    let password = if user_info.contains(':') { ":***" } else { "" };
    format!("{scheme}://{user}{password}@{host}{tail}")
}

/// A `password=` query parameter replaced by `***`.
fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, sql: &str) -> ViewRecord {
        ViewRecord {
            catalog: "iceberg".into(),
            schema: "s".into(),
            name: name.into(),
            sql: sql.into(),
            columns: vec![ViewColumn {
                name: "x".into(),
                trino_type: "integer".into(),
            }],
            comment: None,
            owner: None,
        }
    }

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(
            redact_url("postgresql://app:s3cr%40t@db:5432/meta?sslmode=require"),
            "postgresql://app:***@db:5432/meta?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://db/meta?user=app&password=hunter2"),
            "postgresql://db/meta?user=app&password=***"
        );
        assert_eq!(
            redact_url("postgres://app@db/meta"),
            "postgres://app@db/meta"
        );
        assert_eq!(redact_url("sqlite:///tmp/m.db"), "sqlite:///tmp/m.db");
    }

    #[tokio::test]
    async fn unsupported_urls_are_refused_by_name() {
        let err = Metastore::open("mysql://db/meta").await.unwrap_err();
        assert!(err
            .to_string()
            .contains("use sqlite://PATH or postgresql://"));
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/m.db", dir.path().display());
        let store = Metastore::open(&url).await.unwrap();
        let known = Backend::Sqlite.known_version();
        assert_eq!(store.schema_version().await.unwrap(), known);
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES ($1, 'from the future', TRUE, x'00', 0)",
        )
        .bind(known + 1)
        .execute(&store.pool)
        .await
        .unwrap();
        drop(store);
        let err = Metastore::open(&url).await.unwrap_err().to_string();
        assert!(
            err.contains(&format!("schema version {}", known + 1))
                && err.contains("newer than this binary"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn migrate_reports_what_it_applied() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/m.db", dir.path().display());
        let store = Metastore::connect(&url).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 0);
        let report = store.migrate().await.unwrap();
        assert_eq!(report.applied, vec![1, 2, 3, 4, 5]);
        assert_eq!(report.version, 5);
        let again = store.migrate().await.unwrap();
        assert!(again.applied.is_empty());
    }

    #[tokio::test]
    async fn export_and_import_move_everything_into_an_empty_metastore_only() {
        let dir = tempfile::tempdir().unwrap();
        let source = Metastore::open(&format!("sqlite://{}/a.db", dir.path().display()))
            .await
            .unwrap();
        source
            .create_view(&view("v", "SELECT 'it''s' x"), false)
            .await
            .unwrap();
        source
            .create_schema(&SchemaRecord {
                catalog: "delta".into(),
                schema: "s".into(),
                location: "file:///w/delta/s".into(),
            })
            .await
            .unwrap();
        let table = TableRecord {
            catalog: "delta".into(),
            schema: "s".into(),
            name: "t".into(),
            location: "file:///w/delta/s/t".into(),
            external: true,
            schema_ipc: "ff00".into(),
            properties: vec![("format".into(), "'PARQUET'".into())],
            comment: Some("ünïcode".into()),
        };
        source.create_table(&table).await.unwrap();
        source
            .create_catalog(&CatalogRecord {
                name: "sales".into(),
                connector: "postgresql".into(),
                properties: [(
                    "connection-url".to_string(),
                    "jdbc:postgresql://h/db".to_string(),
                )]
                .into(),
            })
            .await
            .unwrap();
        source.add_user("alice", "$2y$10$hash").await.unwrap();
        source.shared_secret("key", || "k1".into()).await.unwrap();
        let export = source.export().await.unwrap();
        assert!(!export.tables.contains_key("aichemy_secrets"));
        let text = serde_json::to_string(&export).unwrap();
        let export: Export = serde_json::from_str(&text).unwrap();

        let target = Metastore::open(&format!("sqlite://{}/b.db", dir.path().display()))
            .await
            .unwrap();
        let summary = target.import(&export).await.unwrap();
        assert_eq!(summary.rows["aichemy_tables"], 1);
        assert_eq!(
            target.get_table("delta", "s", "t").await.unwrap(),
            Some(table)
        );
        assert_eq!(
            target
                .get_view("iceberg", "s", "v")
                .await
                .unwrap()
                .unwrap()
                .sql,
            "SELECT 'it''s' x"
        );
        assert_eq!(target.list_catalogs().await.unwrap().len(), 1);
        assert_eq!(
            target.user_password_hash("alice").await.unwrap().as_deref(),
            Some("$2y$10$hash")
        );
        assert_eq!(target.export().await.unwrap(), export);

        let err = target.import(&export).await.unwrap_err().to_string();
        assert!(err.contains("is not empty"), "{err}");
        let mut bad = export.clone();
        bad.tables.insert("secrets".into(), vec![]);
        let fresh = Metastore::open(&format!("sqlite://{}/c.db", dir.path().display()))
            .await
            .unwrap();
        let err = fresh.import(&bad).await.unwrap_err().to_string();
        assert!(err.contains("unknown table 'secrets'"), "{err}");
        // A row the database refuses leaves nothing behind.
        let mut broken = export.clone();
        broken.tables.get_mut("aichemy_tables").unwrap()[0].insert("location".into(), None);
        assert!(fresh.import(&broken).await.is_err());
        assert_eq!(fresh.list_catalogs().await.unwrap(), vec![]);
    }

    #[tokio::test]
    async fn users_and_shared_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = Metastore::open(&format!("sqlite://{}/m.db", dir.path().display()))
            .await
            .unwrap();
        store.add_user("bob", "h1").await.unwrap();
        store.add_user("alice", "h2").await.unwrap();
        assert!(matches!(
            store.add_user("bob", "h3").await,
            Err(MetastoreError::UserAlreadyExists { .. })
        ));
        assert_eq!(store.list_users().await.unwrap(), vec!["alice", "bob"]);
        let batch = [
            ("carol".to_string(), "h".to_string()),
            ("bob".into(), "h".into()),
        ];
        assert!(matches!(
            store.add_users(&batch).await,
            Err(MetastoreError::UserAlreadyExists { user }) if user == "bob"
        ));
        assert_eq!(
            store.list_users().await.unwrap(),
            vec!["alice", "bob"],
            "all or none"
        );
        assert!(store.set_user_password("bob", "h4").await.unwrap());
        assert!(!store.set_user_password("carol", "h4").await.unwrap());
        assert_eq!(
            store.user_password_hash("bob").await.unwrap().as_deref(),
            Some("h4")
        );
        assert!(store.remove_user("bob").await.unwrap());
        assert!(!store.remove_user("bob").await.unwrap());
        assert_eq!(store.user_password_hash("bob").await.unwrap(), None);

        let first = store.shared_secret("k", || "one".into()).await.unwrap();
        let second = store.shared_secret("k", || "two".into()).await.unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    }

    #[tokio::test]
    async fn views_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/m.db", dir.path().display());
        let store = Metastore::open(&url).await.unwrap();
        store
            .create_view(&view("v", "SELECT 1 x"), false)
            .await
            .unwrap();
        let err = store.create_view(&view("v", "SELECT 2 x"), false).await;
        assert!(matches!(err, Err(MetastoreError::ViewAlreadyExists { .. })));
        store
            .create_view(&view("v", "SELECT 3 x"), true)
            .await
            .unwrap();
        drop(store);

        let store = Metastore::open(&url).await.unwrap();
        let got = store.get_view("iceberg", "s", "v").await.unwrap().unwrap();
        assert_eq!(got.sql, "SELECT 3 x");
        assert_eq!(store.list_views("iceberg", None).await.unwrap().len(), 1);
        assert!(store.drop_view("iceberg", "s", "v").await.unwrap());
        assert!(!store.drop_view("iceberg", "s", "v").await.unwrap());
    }
}
