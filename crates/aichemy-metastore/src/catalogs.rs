//! Catalogs made with CREATE CATALOG: their records and the methods that keep them.

use sqlx::Row;

use crate::{Metastore, MetastoreError};

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
