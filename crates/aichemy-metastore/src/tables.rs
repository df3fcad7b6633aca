//! The schemas and tables of the metastore-kept catalogs (delta, lance, hive).

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Metastore, MetastoreError, TABLES};

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
