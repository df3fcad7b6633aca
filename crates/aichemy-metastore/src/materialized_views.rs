//! Materialized views: their records and the methods that store, read, list and drop them.
//! The rows live in an Iceberg storage table; what they were computed from is recorded in
//! that table's commits, not here.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::views::ViewColumn;
use crate::{Metastore, MetastoreError, Relations};

const MATERIALIZED_VIEWS: Relations = ("aichemy_materialized_views", "view_name");

/// A materialized view as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct MaterializedViewRecord {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    pub sql: String,
    /// The columns a query of the view sees (the storage table may hold more: the state
    /// an incremental refresh keeps).
    pub columns: Vec<ViewColumn>,
    pub comment: Option<String>,
    pub owner: Option<String>,
    /// How long stored rows answer queries after the sources changed; `None`: always.
    pub grace_period_ms: Option<i64>,
    /// `INLINE` (run the definition) or `FAIL` once stale beyond the grace period.
    pub when_stale: String,
    /// The `WITH` properties as written, `(name, SQL text of the value)`.
    pub properties: Vec<(String, String)>,
    pub storage_schema: String,
    pub storage_table: String,
}

impl MaterializedViewRecord {
    /// Whether the view's rows live in table `schema.table` of its catalog.
    pub fn stores_in(&self, schema: &str, table: &str) -> bool {
        self.storage_schema == schema && self.storage_table == table
    }
}

const COLUMNS: &str = "catalog_name, schema_name, view_name, view_sql, columns_json, comment, \
     owner, grace_period_ms, when_stale, properties_json, storage_schema, storage_table";

impl Metastore {
    /// Stores a materialized view; with `replace`, one of that name is overwritten.
    pub async fn create_materialized_view(
        &self,
        view: &MaterializedViewRecord,
        replace: bool,
    ) -> Result<(), MetastoreError> {
        let corrupt = |source| MetastoreError::Corrupt { source };
        let columns = serde_json::to_string(&view.columns).map_err(corrupt)?;
        let properties = serde_json::to_string(&view.properties).map_err(corrupt)?;
        let on_conflict = if replace {
            "ON CONFLICT (catalog_name, schema_name, view_name) DO UPDATE SET
                 view_sql = excluded.view_sql, columns_json = excluded.columns_json,
                 comment = excluded.comment, owner = excluded.owner,
                 grace_period_ms = excluded.grace_period_ms, when_stale = excluded.when_stale,
                 properties_json = excluded.properties_json,
                 storage_schema = excluded.storage_schema, storage_table = excluded.storage_table"
        } else {
            ""
        };
        let result = sqlx::query(&format!(
            "INSERT INTO aichemy_materialized_views ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) {on_conflict}"
        ))
        .bind(&view.catalog)
        .bind(&view.schema)
        .bind(&view.name)
        .bind(&view.sql)
        .bind(columns)
        .bind(&view.comment)
        .bind(&view.owner)
        .bind(view.grace_period_ms)
        .bind(&view.when_stale)
        .bind(properties)
        .bind(&view.storage_schema)
        .bind(&view.storage_table)
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

    pub async fn get_materialized_view(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<Option<MaterializedViewRecord>, MetastoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM aichemy_materialized_views
             WHERE catalog_name = $1 AND schema_name = $2 AND view_name = $3"
        ))
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(materialized_view_from_row).transpose()
    }

    /// The materialized view named `schema.name` in `catalog`, or the one whose rows live
    /// in the table of that name.
    pub async fn materialized_view_named_or_stored_in(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<Option<MaterializedViewRecord>, MetastoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM aichemy_materialized_views WHERE catalog_name = $1
             AND ((schema_name = $2 AND view_name = $3)
                  OR (storage_schema = $4 AND storage_table = $5))"
        ))
        .bind(catalog)
        .bind(schema)
        .bind(name)
        .bind(schema)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(materialized_view_from_row).transpose()
    }

    /// Materialized views of a catalog (every catalog when `None`), of one schema when
    /// given, ordered by catalog, schema and name.
    pub async fn list_materialized_views(
        &self,
        catalog: Option<&str>,
        schema: Option<&str>,
    ) -> Result<Vec<MaterializedViewRecord>, MetastoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM aichemy_materialized_views
             WHERE ($1 IS NULL OR catalog_name = $2) AND ($3 IS NULL OR schema_name = $4)
             ORDER BY catalog_name, schema_name, view_name"
        ))
        .bind(catalog)
        .bind(catalog)
        .bind(schema)
        .bind(schema)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(materialized_view_from_row).collect()
    }

    /// Removes a materialized view's record; answers whether it existed.
    pub async fn drop_materialized_view(
        &self,
        catalog: &str,
        schema: &str,
        name: &str,
    ) -> Result<bool, MetastoreError> {
        Ok(self
            .delete_relation(MATERIALIZED_VIEWS, catalog, schema, name)
            .await?
            > 0)
    }
}

fn materialized_view_from_row(row: AnyRow) -> Result<MaterializedViewRecord, MetastoreError> {
    let corrupt = |source| MetastoreError::Corrupt { source };
    let columns: String = row.try_get("columns_json")?;
    let properties: String = row.try_get("properties_json")?;
    Ok(MaterializedViewRecord {
        catalog: row.try_get("catalog_name")?,
        schema: row.try_get("schema_name")?,
        name: row.try_get("view_name")?,
        sql: row.try_get("view_sql")?,
        columns: serde_json::from_str(&columns).map_err(corrupt)?,
        comment: row.try_get("comment")?,
        owner: row.try_get("owner")?,
        grace_period_ms: row.try_get("grace_period_ms")?,
        when_stale: row.try_get("when_stale")?,
        properties: serde_json::from_str(&properties).map_err(corrupt)?,
        storage_schema: row.try_get("storage_schema")?,
        storage_table: row.try_get("storage_table")?,
    })
}
