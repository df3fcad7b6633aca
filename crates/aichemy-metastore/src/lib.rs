//! The metastore: the durable record of schemas, tables and views.
//!
//! It is one SQL database — an SQLite file by default. Its schema is versioned by the
//! migrations in `migrations/`, applied on open; a database written by a newer AIchemy
//! (with migrations this binary does not know) is refused rather than silently misread.
#![forbid(unsafe_code)]

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

/// Errors of the metastore.
#[derive(Debug, thiserror::Error)]
pub enum MetastoreError {
    #[error("unsupported metastore URL '{url}': only sqlite:// is supported in this version")]
    UnsupportedUrl { url: String },
    #[error("cannot open metastore: {source}")]
    Open { source: sqlx::Error },
    #[error("metastore schema is newer than this binary or damaged: {source}")]
    Migrate { source: sqlx::migrate::MigrateError },
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
    #[error("stored view definition is invalid: {source}")]
    Corrupt { source: serde_json::Error },
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

/// A handle on the metastore database.
#[derive(Debug, Clone)]
pub struct Metastore {
    pool: SqlitePool,
    url: String,
}

impl Metastore {
    /// Opens (creating when missing) the metastore at `url` and applies migrations.
    pub async fn open(url: &str) -> Result<Self, MetastoreError> {
        let Some(path) = url.strip_prefix("sqlite://") else {
            return Err(MetastoreError::UnsupportedUrl {
                url: url.to_string(),
            });
        };
        let path = path.split('?').next().unwrap_or(path);
        if let Some(parent) = Path::new(path).parent() {
            std::fs::create_dir_all(parent).map_err(|e| MetastoreError::Open {
                source: sqlx::Error::Io(e),
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|source| MetastoreError::Open { source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| MetastoreError::Open { source })?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|source| MetastoreError::Migrate { source })?;
        Ok(Self {
            pool,
            url: format!("sqlite://{path}"),
        })
    }

    /// The database URL, for components that keep their own tables in the same database
    /// (the Iceberg SQL catalog).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stores a view; with `replace`, an existing view of that name is overwritten.
    pub async fn create_view(
        &self,
        view: &ViewRecord,
        replace: bool,
    ) -> Result<(), MetastoreError> {
        let columns = serde_json::to_string(&view.columns)
            .map_err(|source| MetastoreError::Corrupt { source })?;
        let verb = if replace {
            "INSERT OR REPLACE"
        } else {
            "INSERT"
        };
        let result = sqlx::query(&format!(
            "{verb} INTO aichemy_views (catalog_name, schema_name, view_name, view_sql, columns_json, comment, owner)
             VALUES (?, ?, ?, ?, ?, ?, ?)"
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
             FROM aichemy_views WHERE catalog_name = ? AND schema_name = ? AND view_name = ?",
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
             FROM aichemy_views WHERE catalog_name = ? AND (? IS NULL OR schema_name = ?)
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
        let done = sqlx::query(
            "DELETE FROM aichemy_views WHERE catalog_name = ? AND schema_name = ? AND view_name = ?",
        )
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Renames a view within its catalog; answers whether it existed.
    pub async fn rename_view(
        &self,
        catalog: &str,
        (schema, name): (&str, &str),
        (new_schema, new_name): (&str, &str),
    ) -> Result<bool, MetastoreError> {
        let done = sqlx::query(
            "UPDATE aichemy_views SET schema_name = ?, view_name = ?
             WHERE catalog_name = ? AND schema_name = ? AND view_name = ?",
        )
        .bind(new_schema)
        .bind(new_name)
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

fn view_from_row(row: sqlx::sqlite::SqliteRow) -> Result<ViewRecord, MetastoreError> {
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
