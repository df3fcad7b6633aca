//! Views: their records and the methods that store, read, list, drop and rename them.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Metastore, MetastoreError, VIEWS};

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

impl Metastore {
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
