//! The Iceberg SQL catalog's table pointers: read one, or swap several in one transaction.

use sqlx::Row;

use crate::{Metastore, MetastoreError};

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
        let swaps: Vec<(&str, &PointerSwap)> = swaps.iter().map(|s| (catalog, s)).collect();
        self.swap_iceberg_pointers_across(&swaps).await
    }

    /// [`Self::swap_iceberg_pointers`] for tables of several catalogs, still in one
    /// transaction: each swap with the name of its catalog.
    pub async fn swap_iceberg_pointers_across(
        &self,
        swaps: &[(&str, &PointerSwap)],
    ) -> Result<bool, MetastoreError> {
        let mut tx = self.pool.begin().await?;
        if !swap_in(&mut tx, swaps).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// The swaps of [`Metastore::swap_iceberg_pointers_across`] inside a transaction of the
/// caller's; false when one of them failed (the caller rolls back).
pub(crate) async fn swap_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    swaps: &[(&str, &PointerSwap)],
) -> Result<bool, MetastoreError> {
    {
        for (catalog, swap) in swaps {
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
                    .bind(*catalog)
                    .bind(&swap.namespace)
                    .bind(&swap.name)
                    .bind(expected)
                    .execute(&mut **tx)
                    .await
                }
                None => {
                    sqlx::query(
                        "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name,
                             metadata_location, iceberg_type)
                         VALUES ($1, $2, $3, $4, 'TABLE')",
                    )
                    .bind(*catalog)
                    .bind(&swap.namespace)
                    .bind(&swap.name)
                    .bind(&swap.new)
                    .execute(&mut **tx)
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
        Ok(true)
    }
}
