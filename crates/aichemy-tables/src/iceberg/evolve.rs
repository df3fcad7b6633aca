//! Schema evolution of an Iceberg table: a column dropped, renamed, widened, made
//! nullable or commented, committed as a new current schema. Columns keep their field ids,
//! so every existing data file reads right afterwards, and a column dropped and added
//! again under its old name gets a new id (its old values do not come back).
//! `SET PROPERTIES partitioning = …` evolves the partitioning the same way: a new default
//! spec for the files written from then on, the existing files staying in theirs.

use std::sync::Arc;

use iceberg::spec::{NestedField, PrimitiveType, Schema, TableMetadataBuilder, Type};
use iceberg::table::Table;
use iceberg::{TableRequirement, TableUpdate};

use super::commit::TableChange;
use super::{format_error, partitioning, types, IcebergFormat, TABLE_PROPERTIES};
use crate::{ColumnChange, PropertyValue, Result, TableError};

fn not_supported(message: String) -> TableError {
    TableError::NotSupported { message }
}

/// Whether Iceberg lets a column of type `from` be read as `to` (its type promotions).
fn widens(from: &PrimitiveType, to: &PrimitiveType) -> bool {
    use PrimitiveType::*;
    match (from, to) {
        (a, b) if a == b => true,
        (Int, Long) | (Float, Double) => true,
        (
            Decimal {
                precision: p1,
                scale: s1,
            },
            Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s1 == s2 && p2 >= p1,
        _ => false,
    }
}

impl IcebergFormat {
    /// Commits `change` as the table's next schema.
    pub(super) async fn evolve(&self, table: &Table, change: ColumnChange) -> Result<()> {
        let metadata = table.metadata();
        let current = metadata.current_schema();
        let wanted = change.column().to_string();
        let fields: Vec<Arc<NestedField>> = current.as_struct().fields().to_vec();
        let Some(index) = fields.iter().position(|f| f.name == wanted) else {
            return Err(TableError::ColumnNotFound { column: wanted });
        };
        let field = fields[index].clone();
        let mut fields = fields;
        let partitioned_by = metadata
            .partition_specs_iter()
            .flat_map(|spec| spec.fields().iter().map(|f| f.source_id))
            .any(|id| id == field.id);
        match change {
            ColumnChange::Drop { .. } => {
                if fields.len() == 1 {
                    return Err(not_supported(
                        "Cannot drop the only column in a table".to_string(),
                    ));
                }
                if partitioned_by {
                    return Err(not_supported(format!(
                        "Cannot drop partition field: {wanted}"
                    )));
                }
                fields.remove(index);
            }
            ColumnChange::Rename { to, .. } => {
                if fields.iter().any(|f| f.name == to) {
                    return Err(TableError::ColumnAlreadyExists { column: to });
                }
                let mut renamed = field.as_ref().clone();
                renamed.name = to;
                fields[index] = Arc::new(renamed);
            }
            ColumnChange::SetType { to, .. } => {
                let mut ids = types::FieldIds::new();
                let target = types::iceberg_type(&to.data_type, &mut ids);
                let (Type::Primitive(from), Some(Type::Primitive(target))) =
                    (field.field_type.as_ref(), target)
                else {
                    return Err(not_supported(format!(
                        "Cannot change type from {} to {}",
                        field.field_type, to.trino_type
                    )));
                };
                if !widens(from, &target) {
                    return Err(not_supported(format!(
                        "Cannot change type from {from} to {}",
                        to.trino_type
                    )));
                }
                let mut changed = field.as_ref().clone();
                changed.field_type = Box::new(Type::Primitive(target));
                fields[index] = Arc::new(changed);
            }
            ColumnChange::DropNotNull { .. } => {
                let mut changed = field.as_ref().clone();
                changed.required = false;
                fields[index] = Arc::new(changed);
            }
            ColumnChange::Comment { comment, .. } => {
                let mut changed = field.as_ref().clone();
                changed.doc = comment;
                fields[index] = Arc::new(changed);
            }
        }
        let next_id = metadata
            .schemas_iter()
            .map(|s| s.schema_id())
            .max()
            .unwrap_or(0)
            + 1;
        let identifiers: Vec<i32> = current
            .identifier_field_ids()
            .filter(|id| fields.iter().any(|f| f.id == *id))
            .collect();
        let schema = Schema::builder()
            .with_schema_id(next_id)
            .with_fields(fields)
            .with_identifier_field_ids(identifiers)
            .build()
            .map_err(format_error)?;
        let change = TableChange {
            ident: table.identifier().clone(),
            requirements: vec![
                TableRequirement::UuidMatch {
                    uuid: metadata.uuid(),
                },
                TableRequirement::CurrentSchemaIdMatch {
                    current_schema_id: current.schema_id(),
                },
            ],
            updates: vec![
                TableUpdate::AddSchema { schema },
                TableUpdate::SetCurrentSchema { schema_id: -1 },
            ],
        };
        self.commit_changes(vec![change]).await?;
        Ok(())
    }

    /// `ALTER TABLE … SET PROPERTIES`: `partitioning` becomes the default spec; the format
    /// and format version can only be set to what they are.
    pub(super) async fn set_table_properties(
        &self,
        table: &Table,
        properties: Vec<(String, PropertyValue)>,
    ) -> Result<()> {
        let metadata = table.metadata();
        let mut partitioning = None;
        for (key, value) in properties {
            match (key.as_str(), value) {
                ("partitioning", PropertyValue::Array(fields)) => partitioning = Some(fields),
                ("partitioning", _) => {
                    return Err(TableError::InvalidProperty {
                        property: key,
                        message: "expected an array of strings".into(),
                    })
                }
                ("format", PropertyValue::String(f)) if f.eq_ignore_ascii_case("PARQUET") => {}
                ("format_version", PropertyValue::Number(v)) if v == "2" => {}
                (known, _) if TABLE_PROPERTIES.contains(&known) => {
                    return Err(not_supported(format!(
                        "Updating the {key} property is not supported"
                    )))
                }
                _ => {
                    return Err(TableError::InvalidProperty {
                        message: format!(
                            "Catalog '{}' table property '{key}' does not exist",
                            self.catalog_name
                        ),
                        property: key,
                    })
                }
            }
        }
        let Some(fields) = partitioning else {
            return Ok(());
        };
        let spec = partitioning::partition_spec(metadata.current_schema(), &fields)?;
        let updates = TableMetadataBuilder::new_from_metadata(
            metadata.clone(),
            table.metadata_location().map(str::to_string),
        )
        .add_default_partition_spec(spec)
        .map_err(format_error)?
        .build()
        .map_err(format_error)?
        .changes;
        let change = TableChange {
            ident: table.identifier().clone(),
            requirements: vec![
                TableRequirement::UuidMatch {
                    uuid: metadata.uuid(),
                },
                TableRequirement::CurrentSchemaIdMatch {
                    current_schema_id: metadata.current_schema_id(),
                },
                TableRequirement::DefaultSpecIdMatch {
                    default_spec_id: metadata.default_partition_spec_id(),
                },
            ],
            updates,
        };
        self.commit_changes(vec![change]).await?;
        Ok(())
    }
}
