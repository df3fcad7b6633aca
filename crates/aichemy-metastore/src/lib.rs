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
            "DELETE FROM {table} WHERE catalog_name = ? AND schema_name = ? AND {name_column} = ?"
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
            "UPDATE {table} SET schema_name = ?, {name_column} = ?
             WHERE catalog_name = ? AND schema_name = ? AND {name_column} = ?"
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
            "INSERT INTO aichemy_catalogs (catalog_name, connector, properties_json) VALUES (?, ?, ?)",
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
        let result = sqlx::query("DELETE FROM aichemy_catalogs WHERE catalog_name = ?")
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
            "INSERT INTO aichemy_schemas (catalog_name, schema_name, location) VALUES (?, ?, ?)",
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
             WHERE catalog_name = ? AND schema_name = ?",
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
            "SELECT schema_name FROM aichemy_schemas WHERE catalog_name = ? ORDER BY schema_name",
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
            sqlx::query("DELETE FROM aichemy_schemas WHERE catalog_name = ? AND schema_name = ?")
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.catalog)
        .bind(&record.schema)
        .bind(&record.name)
        .bind(&record.location)
        .bind(record.external)
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
             FROM aichemy_tables WHERE catalog_name = ? AND schema_name = ? AND table_name = ?",
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
            "SELECT table_name FROM aichemy_tables WHERE catalog_name = ? AND schema_name = ?
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
            "UPDATE aichemy_tables SET schema_ipc = ?
             WHERE catalog_name = ? AND schema_name = ? AND table_name = ?",
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

fn properties_json(properties: &[(String, String)]) -> Result<String, MetastoreError> {
    let map: serde_json::Map<String, serde_json::Value> = properties
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::to_string(&map).map_err(|source| MetastoreError::Corrupt { source })
}

fn table_from_row(row: sqlx::sqlite::SqliteRow) -> Result<TableRecord, MetastoreError> {
    let properties: String = row.try_get("properties_json")?;
    let properties: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&properties).map_err(|source| MetastoreError::Corrupt { source })?;
    Ok(TableRecord {
        catalog: row.try_get("catalog_name")?,
        schema: row.try_get("schema_name")?,
        name: row.try_get("table_name")?,
        location: row.try_get("location")?,
        external: row.try_get("external")?,
        schema_ipc: row.try_get("schema_ipc")?,
        properties: properties
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect(),
        comment: row.try_get("comment")?,
    })
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
