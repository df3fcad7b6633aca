//! Every location the metastore records, across all catalogs: the schemas and tables of
//! the registered catalogs (`hive`, `delta`, `lance`) and the namespaces and tables of the
//! Iceberg SQL catalog. Table formats check a new location against all of them so that no
//! table or schema is placed over another one's files.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::{Metastore, MetastoreError};

/// One location the metastore records, and what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedLocation {
    /// A schema of a registered catalog.
    Schema {
        catalog: String,
        schema: String,
        location: String,
    },
    /// A table of a registered catalog; `external` when DROP leaves its files.
    Table {
        catalog: String,
        schema: String,
        name: String,
        location: String,
        external: bool,
    },
    /// A namespace of an Iceberg SQL catalog (levels joined by `.`), with its `location`
    /// property when it has one (else it lies under the catalog's warehouse).
    IcebergNamespace {
        catalog: String,
        namespace: String,
        location: Option<String>,
    },
    /// A table of an Iceberg SQL catalog and its current metadata file.
    IcebergTable {
        catalog: String,
        namespace: String,
        name: String,
        metadata_location: String,
    },
}

impl Metastore {
    /// Every schema, table, Iceberg namespace and Iceberg table location recorded, of
    /// every catalog.
    pub async fn recorded_locations(&self) -> Result<Vec<RecordedLocation>, MetastoreError> {
        let mut found = Vec::new();
        for row in sqlx::query("SELECT catalog_name, schema_name, location FROM aichemy_schemas")
            .fetch_all(&self.pool)
            .await?
        {
            found.push(RecordedLocation::Schema {
                catalog: row.try_get("catalog_name")?,
                schema: row.try_get("schema_name")?,
                location: row.try_get("location")?,
            });
        }
        for row in sqlx::query(
            "SELECT catalog_name, schema_name, table_name, location, external FROM aichemy_tables",
        )
        .fetch_all(&self.pool)
        .await?
        {
            found.push(RecordedLocation::Table {
                catalog: row.try_get("catalog_name")?,
                schema: row.try_get("schema_name")?,
                name: row.try_get("table_name")?,
                location: row.try_get("location")?,
                external: row.try_get::<i64, _>("external")? != 0,
            });
        }
        // A namespace has at least one property row (`exists`), so every one is listed.
        let mut namespaces: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
        for row in sqlx::query(
            "SELECT catalog_name, namespace, property_key, property_value
             FROM iceberg_namespace_properties",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let key = (row.try_get("catalog_name")?, row.try_get("namespace")?);
            let property: Option<String> = row.try_get("property_key")?;
            let value: Option<String> = row.try_get("property_value")?;
            let entry = namespaces.entry(key).or_default();
            if property.as_deref() == Some("location") {
                *entry = value;
            }
        }
        for ((catalog, namespace), location) in namespaces {
            found.push(RecordedLocation::IcebergNamespace {
                catalog,
                namespace,
                location,
            });
        }
        for row in sqlx::query(
            "SELECT catalog_name, table_namespace, table_name, metadata_location
             FROM iceberg_tables WHERE iceberg_type = 'TABLE' OR iceberg_type IS NULL",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let Some(metadata_location) = row.try_get::<Option<String>, _>("metadata_location")?
            else {
                continue;
            };
            found.push(RecordedLocation::IcebergTable {
                catalog: row.try_get("catalog_name")?,
                namespace: row.try_get("table_namespace")?,
                name: row.try_get("table_name")?,
                metadata_location,
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PointerSwap, SchemaRecord, TableRecord};

    #[tokio::test]
    async fn every_catalog_s_locations_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/m.db", dir.path().display());
        let metastore = Metastore::open(&url).await.unwrap();
        metastore
            .create_schema(&SchemaRecord {
                catalog: "delta".into(),
                schema: "s".into(),
                location: "file:///wh/delta/s".into(),
            })
            .await
            .unwrap();
        metastore
            .create_table(&TableRecord {
                catalog: "delta".into(),
                schema: "s".into(),
                name: "t".into(),
                location: "file:///wh/delta/s/t".into(),
                external: false,
                schema_ipc: String::new(),
                properties: vec![],
                comment: None,
            })
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO iceberg_namespace_properties VALUES
                 ('iceberg', 'n', 'exists', 'true'), ('iceberg', 'm', 'location', 'file:///x')",
        )
        .execute(&metastore.pool)
        .await
        .unwrap();
        metastore
            .swap_iceberg_pointers(
                "iceberg",
                &[PointerSwap {
                    namespace: "n".into(),
                    name: "i".into(),
                    expected: None,
                    new: "file:///wh/iceberg/n/i/metadata/0.metadata.json".into(),
                }],
            )
            .await
            .unwrap();
        let found = metastore.recorded_locations().await.unwrap();
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found.contains(&RecordedLocation::IcebergNamespace {
            catalog: "iceberg".into(),
            namespace: "m".into(),
            location: Some("file:///x".into()),
        }));
        assert!(found.contains(&RecordedLocation::IcebergNamespace {
            catalog: "iceberg".into(),
            namespace: "n".into(),
            location: None,
        }));
        assert!(found.contains(&RecordedLocation::Table {
            catalog: "delta".into(),
            schema: "s".into(),
            name: "t".into(),
            location: "file:///wh/delta/s/t".into(),
            external: false,
        }));
        assert!(found.iter().any(|l| matches!(l,
            RecordedLocation::IcebergTable { metadata_location, .. }
                if metadata_location.ends_with("0.metadata.json"))));
    }
}
