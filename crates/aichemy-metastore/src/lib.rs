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

mod audit;
mod catalogs;
mod grants;
mod iceberg;
mod ingestions;
mod lineage;
mod locations;
mod materialized_views;
mod pipelines;
mod tables;
mod transfer;
mod users;
mod views;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, Connection, Executor};

pub use audit::{AuditRecord, NodeRecord, QueryRun, TableRead};
pub use catalogs::CatalogRecord;
pub use iceberg::PointerSwap;
pub use ingestions::IngestionRecord;
pub use lineage::{LineageRecord, KEPT_LINEAGE};
pub use locations::RecordedLocation;
pub use materialized_views::MaterializedViewRecord;
pub use pipelines::{
    PipelineCheckRecord, PipelineRecord, PipelineRunRecord, PipelineStepRecord, RunPublish,
};
pub use tables::{SchemaRecord, TableRecord};
pub use transfer::{Export, ImportSummary};
pub use views::{ViewColumn, ViewRecord};

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
    #[error("ingestion '{name}' already exists")]
    IngestionAlreadyExists { name: String },
    #[error("pipeline '{name}' already exists")]
    PipelineAlreadyExists { name: String },
    #[error("user '{user}' already exists")]
    UserAlreadyExists { user: String },
    #[error("cannot import: {message}")]
    Import { message: String },
    #[error("stored grant is invalid: {message}")]
    InvalidGrant { message: String },
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
    async fn grants_round_trip_and_follow_their_objects() {
        use aichemy_access::{
            Grantee, Object, PrivilegeGrant, Restriction, RoleGrant, TablePrivilege,
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Metastore::open(&format!("sqlite://{}/m.db", dir.path().display()))
            .await
            .unwrap();
        assert!(store.create_role("analyst", "root").await.unwrap());
        assert!(!store.create_role("analyst", "root").await.unwrap());
        let ann = Grantee::User("ann".into());
        let role = |admin_option| RoleGrant {
            role: "analyst".into(),
            grantee: ann.clone(),
            admin_option,
            grantor: "root".into(),
        };
        store.grant_role(&role(true)).await.unwrap();
        // Granting again without the admin option keeps it.
        store.grant_role(&role(false)).await.unwrap();
        let t = Object::table("iceberg", "s", "t");
        let privilege = |deny| PrivilegeGrant {
            object: t.clone(),
            privilege: TablePrivilege::Select,
            grantee: Grantee::Role("analyst".into()),
            grant_option: false,
            deny,
            grantor: "root".into(),
        };
        store.grant_privilege(&privilege(false)).await.unwrap();
        // A denial replaces the grant for the same grantee.
        store.grant_privilege(&privilege(true)).await.unwrap();
        store.set_owner(&t, &ann, false).await.unwrap();
        store
            .set_owner(&t, &Grantee::User("bob".into()), false)
            .await
            .unwrap();
        let filter = Restriction {
            object: t.clone(),
            column: None,
            grantee: Grantee::Role("analyst".into()),
            expression: "region = 'EU'".into(),
        };
        assert!(store.set_restriction(&filter, false).await.unwrap());
        assert!(!store.set_restriction(&filter, false).await.unwrap());
        let grants = store.grants().await.unwrap();
        assert_eq!(grants.roles.len(), 1);
        assert_eq!(grants.role_grants, vec![role(true)]);
        assert_eq!(grants.privileges, vec![privilege(true)]);
        assert_eq!(grants.owners.get(&t), Some(&ann));
        assert_eq!(grants.restrictions, vec![filter]);
        // A rename carries them; a drop forgets them; dropping the role its grants.
        let u = Object::table("iceberg", "s", "u");
        store.rename_object(&t, &u).await.unwrap();
        let grants = store.grants().await.unwrap();
        assert_eq!(grants.owners.get(&u), Some(&ann));
        assert!(grants.privileges.iter().all(|g| g.object == u));
        store.forget_object(&u).await.unwrap();
        let grants = store.grants().await.unwrap();
        assert!(grants.owners.is_empty() && grants.privileges.is_empty());
        assert!(grants.restrictions.is_empty());
        assert!(store.drop_role("analyst").await.unwrap());
        let grants = store.grants().await.unwrap();
        assert!(grants.roles.is_empty() && grants.role_grants.is_empty());
    }

    #[tokio::test]
    async fn audit_records_are_kept_newest_first_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Metastore::open(&format!("sqlite://{}/m.db", dir.path().display()))
            .await
            .unwrap();
        let record = |i: i64, user: &str| AuditRecord {
            event_id: format!("e{i}"),
            recorded_ms: 1_000 + i,
            kind: "QUERY".into(),
            user: Some(user.into()),
            action: "SELECT 1".into(),
            rows: Some(i),
            bytes: Some(10 * i),
            decision: "ALLOWED".into(),
            read: vec!["iceberg.s.t".into()],
            columns_read: vec!["iceberg.s.t.a".into()],
            rows_read: Some(100 * i),
            bytes_read: Some(1_000 * i),
            ..Default::default()
        };
        let records: Vec<AuditRecord> = (1..=5)
            .map(|i| record(i, ["ann", "bob"][i as usize % 2]))
            .collect();
        store.record_audit(&records).await.unwrap();
        let all = store.audit_records(None).await.unwrap();
        assert_eq!(all.first(), records.last());
        assert_eq!(store.audit_records(Some("ann")).await.unwrap().len(), 2);
        assert_eq!(store.read_since("bob", 1_002).await.unwrap(), (3 + 5, 80));
        store.prune_audit(2).await.unwrap();
        let kept = store.audit_records(None).await.unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].event_id, "e5");
    }

    #[tokio::test]
    async fn migrate_reports_what_it_applied() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/m.db", dir.path().display());
        let store = Metastore::connect(&url).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), 0);
        let report = store.migrate().await.unwrap();
        assert_eq!(report.applied, (1..=15).collect::<Vec<i64>>());
        assert_eq!(report.version, 15);
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
