//! `aichemy metastore export` / `import`: the whole metastore as one JSON document, to move
//! it between SQLite and PostgreSQL or to keep as a backup.
//!
//! Every value travels as text (or null), whatever its column type, so that the document
//! means the same in both databases. An import goes into an empty metastore only, in one
//! transaction: it lands whole or not at all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::{Backend, Metastore, MetastoreError};

/// The value of [`Export::format`].
const FORMAT: &str = "aichemy-metastore";

/// How a column's text value is stored.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Integer,
}

/// A metastore table: its name and columns, its key columns first.
struct Table {
    name: &'static str,
    key: usize,
    columns: &'static [(&'static str, Kind)],
}

use Kind::{Integer, Text};

/// Every table of the metastore, in an order that satisfies the foreign keys. Shared keys
/// (`aichemy_secrets`) stay behind: a new metastore makes its own.
const TABLES: &[Table] = &[
    Table {
        name: "aichemy_catalogs",
        key: 1,
        columns: &[
            ("catalog_name", Text),
            ("connector", Text),
            ("properties_json", Text),
            ("created_at", Text),
        ],
    },
    Table {
        name: "aichemy_schemas",
        key: 2,
        columns: &[
            ("catalog_name", Text),
            ("schema_name", Text),
            ("location", Text),
            ("created_at", Text),
        ],
    },
    Table {
        name: "aichemy_tables",
        key: 3,
        columns: &[
            ("catalog_name", Text),
            ("schema_name", Text),
            ("table_name", Text),
            ("location", Text),
            ("external", Integer),
            ("schema_ipc", Text),
            ("properties_json", Text),
            ("comment", Text),
            ("created_at", Text),
        ],
    },
    Table {
        name: "aichemy_views",
        key: 3,
        columns: &[
            ("catalog_name", Text),
            ("schema_name", Text),
            ("view_name", Text),
            ("view_sql", Text),
            ("columns_json", Text),
            ("comment", Text),
            ("owner", Text),
            ("created_at", Text),
        ],
    },
    Table {
        name: "aichemy_materialized_views",
        key: 3,
        columns: &[
            ("catalog_name", Text),
            ("schema_name", Text),
            ("view_name", Text),
            ("view_sql", Text),
            ("columns_json", Text),
            ("comment", Text),
            ("owner", Text),
            ("grace_period_ms", Integer),
            ("when_stale", Text),
            ("properties_json", Text),
            ("storage_schema", Text),
            ("storage_table", Text),
            ("created_at", Text),
        ],
    },
    Table {
        name: "iceberg_namespace_properties",
        key: 3,
        columns: &[
            ("catalog_name", Text),
            ("namespace", Text),
            ("property_key", Text),
            ("property_value", Text),
        ],
    },
    Table {
        name: "iceberg_tables",
        key: 3,
        columns: &[
            ("catalog_name", Text),
            ("table_namespace", Text),
            ("table_name", Text),
            ("metadata_location", Text),
            ("previous_metadata_location", Text),
            ("iceberg_type", Text),
        ],
    },
    Table {
        name: "aichemy_users",
        key: 1,
        columns: &[
            ("user_name", Text),
            ("password_hash", Text),
            ("created_at", Text),
        ],
    },
    // Leases and reported status belong to the servers running the jobs, not the export.
    Table {
        name: "aichemy_ingestions",
        key: 1,
        columns: &[
            ("ingestion_name", Text),
            ("definition_json", Text),
            ("desired_state", Text),
            ("created_at", Text),
        ],
    },
    // Likewise a pipeline's lease; its schedule starts again from the import, and the
    // history of its runs stays behind.
    Table {
        name: "aichemy_pipelines",
        key: 1,
        columns: &[
            ("pipeline_name", Text),
            ("definition_json", Text),
            ("desired_state", Text),
            ("created_at", Text),
        ],
    },
    Table {
        name: "aichemy_roles",
        key: 1,
        columns: &[
            ("role_name", Text),
            ("created_by", Text),
            ("created_ms", Integer),
        ],
    },
    Table {
        name: "aichemy_role_grants",
        key: 3,
        columns: &[
            ("role_name", Text),
            ("grantee_type", Text),
            ("grantee", Text),
            ("admin_option", Integer),
            ("grantor", Text),
        ],
    },
    Table {
        name: "aichemy_privileges",
        key: 7,
        columns: &[
            ("catalog_name", Text),
            ("schema_name", Text),
            ("table_name", Text),
            ("privilege", Text),
            ("grantee_type", Text),
            ("grantee", Text),
            ("is_deny", Integer),
            ("grant_option", Integer),
            ("grantor", Text),
        ],
    },
    Table {
        name: "aichemy_owners",
        key: 3,
        columns: &[
            ("catalog_name", Text),
            ("schema_name", Text),
            ("table_name", Text),
            ("owner_type", Text),
            ("owner", Text),
        ],
    },
    Table {
        name: "aichemy_restrictions",
        key: 6,
        columns: &[
            ("catalog_name", Text),
            ("schema_name", Text),
            ("table_name", Text),
            ("column_name", Text),
            ("grantee_type", Text),
            ("grantee", Text),
            ("expression", Text),
        ],
    },
];

/// One row: column name to text value.
pub type ExportRow = BTreeMap<String, Option<String>>;

/// The whole metastore as a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    /// Always `aichemy-metastore`.
    pub format: String,
    /// The schema version of the metastore it came from.
    pub schema_version: i64,
    /// Table name to its rows, in key order.
    pub tables: BTreeMap<String, Vec<ExportRow>>,
}

/// What an import wrote: rows per table.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    pub rows: BTreeMap<String, usize>,
}

impl Metastore {
    /// Reads every row of the metastore in one consistent snapshot.
    pub async fn export(&self) -> Result<Export, MetastoreError> {
        let version = self.schema_version().await?;
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let mut tables = BTreeMap::new();
        for table in TABLES {
            let select: Vec<String> = table
                .columns
                .iter()
                .map(|(column, _)| format!("CAST({column} AS TEXT) AS {column}"))
                .collect();
            let order: Vec<&str> = table.columns[..table.key]
                .iter()
                .map(|(column, _)| *column)
                .collect();
            let rows = sqlx::query(&format!(
                "SELECT {} FROM {} ORDER BY {}",
                select.join(", "),
                table.name,
                order.join(", ")
            ))
            .fetch_all(&mut *tx)
            .await?;
            let rows = rows
                .iter()
                .map(|row| {
                    table
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(i, (column, _))| Ok((column.to_string(), row.try_get(i)?)))
                        .collect::<Result<ExportRow, sqlx::Error>>()
                })
                .collect::<Result<Vec<_>, _>>()?;
            tables.insert(table.name.to_string(), rows);
        }
        tx.commit().await?;
        Ok(Export {
            format: FORMAT.to_string(),
            schema_version: version,
            tables,
        })
    }

    /// Writes an export into this metastore, which must be empty, in one transaction.
    pub async fn import(&self, export: &Export) -> Result<ImportSummary, MetastoreError> {
        let refuse = |message: String| MetastoreError::Import { message };
        if export.format != FORMAT {
            return Err(refuse(format!(
                "not an AIchemy metastore export (format '{}', expected '{FORMAT}')",
                export.format
            )));
        }
        let version = self.schema_version().await?;
        if export.schema_version > version {
            return Err(refuse(format!(
                "the export has schema version {}, newer than this metastore's {version}: \
                 import it with the AIchemy that wrote it, or upgrade this one",
                export.schema_version
            )));
        }
        for (name, rows) in &export.tables {
            let Some(table) = TABLES.iter().find(|t| t.name == name) else {
                return Err(refuse(format!("unknown table '{name}' in the export")));
            };
            for row in rows {
                if let Some(column) = row
                    .keys()
                    .find(|c| !table.columns.iter().any(|(known, _)| known == c))
                {
                    return Err(refuse(format!(
                        "unknown column '{column}' of table '{name}' in the export"
                    )));
                }
            }
        }
        let mut tx = self.pool.begin().await?;
        let mut occupied = Vec::new();
        for table in TABLES {
            let count: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM {}", table.name))
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if count > 0 {
                occupied.push(format!("{count} rows in {}", table.name));
            }
        }
        if !occupied.is_empty() {
            return Err(refuse(format!(
                "the metastore at {} is not empty ({}); import only into a new metastore",
                self.display_url(),
                occupied.join(", ")
            )));
        }
        let mut summary = BTreeMap::new();
        for table in TABLES {
            let rows = export
                .tables
                .get(table.name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for row in rows {
                insert_row(&mut tx, table, row).await?;
            }
            summary.insert(table.name.to_string(), rows.len());
        }
        tx.commit().await?;
        Ok(ImportSummary { rows: summary })
    }
}

async fn insert_row(
    tx: &mut Transaction<'static, Any>,
    table: &Table,
    row: &ExportRow,
) -> Result<(), MetastoreError> {
    let present: Vec<_> = table
        .columns
        .iter()
        .filter(|(column, _)| row.contains_key(*column))
        .collect();
    let names: Vec<&str> = present.iter().map(|(column, _)| *column).collect();
    let values: Vec<String> = present
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            Kind::Text => format!("${}", i + 1),
            Kind::Integer => format!("CAST(${} AS BIGINT)", i + 1),
        })
        .collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        table.name,
        names.join(", "),
        values.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for (column, _) in &present {
        query = query.bind(row.get(*column).cloned().flatten());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}
