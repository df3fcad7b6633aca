//! Arrow types (what the engine plans with) to Iceberg types (what the table stores).
//!
//! Like Trino's Iceberg connector, narrower types are widened where Iceberg has no exact
//! match (`tinyint`/`smallint` → `int`, `varchar(n)`/`char(n)` → `string`, every timestamp
//! precision → microseconds); types Iceberg cannot hold at all are refused.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use iceberg::spec::{
    ListType, MapType, NestedField, NestedFieldRef, PrimitiveType, Schema, StructType, Type,
};

use crate::{ColumnSpec, Result, TableError};

/// Assigns field ids in declaration order, as a fresh Iceberg schema needs.
pub(crate) struct FieldIds(i32);

impl FieldIds {
    pub(crate) fn new() -> Self {
        Self(0)
    }
    fn next(&mut self) -> i32 {
        self.0 += 1;
        self.0
    }
}

/// Builds the Iceberg schema of a new table from the declared columns.
pub(crate) fn schema_from_columns(columns: &[ColumnSpec]) -> Result<Schema> {
    schema_with_ids_after(columns, 0)
}

/// Builds an Iceberg schema from the declared columns with field ids above `last`: a
/// table's replacement schema, whose fields are new fields of the table.
pub(crate) fn schema_with_ids_after(columns: &[ColumnSpec], last: i32) -> Result<Schema> {
    let mut ids = FieldIds(last);
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        let id = ids.next();
        fields.push(column_field(id, column, &mut ids)?);
    }
    Schema::builder()
        .with_fields(fields)
        .build()
        .map_err(|e| TableError::Format {
            format: "Iceberg",
            source: Box::new(e),
        })
}

/// The Iceberg field for one top-level column with the given id.
pub(crate) fn column_field(
    id: i32,
    column: &ColumnSpec,
    ids: &mut FieldIds,
) -> Result<NestedFieldRef> {
    let field_type =
        iceberg_type(&column.data_type, ids).ok_or_else(|| TableError::UnsupportedType {
            format: "Iceberg",
            column: column.name.clone(),
            trino_type: column.trino_type.clone(),
        })?;
    let mut field = if column.nullable {
        NestedField::optional(id, &column.name, field_type)
    } else {
        NestedField::required(id, &column.name, field_type)
    };
    if let Some(comment) = &column.comment {
        field = field.with_doc(comment);
    }
    Ok(Arc::new(field))
}

/// The Iceberg type for an Arrow type; `None` when Iceberg cannot hold it.
pub(crate) fn iceberg_type(data_type: &DataType, ids: &mut FieldIds) -> Option<Type> {
    let primitive = |p| Some(Type::Primitive(p));
    match data_type {
        DataType::Boolean => primitive(PrimitiveType::Boolean),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => primitive(PrimitiveType::Int),
        DataType::Int64 => primitive(PrimitiveType::Long),
        DataType::Float32 => primitive(PrimitiveType::Float),
        DataType::Float64 => primitive(PrimitiveType::Double),
        DataType::Decimal128(precision, scale) if *scale >= 0 && *precision <= 38 => {
            primitive(PrimitiveType::Decimal {
                precision: *precision as u32,
                scale: *scale as u32,
            })
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            primitive(PrimitiveType::String)
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            primitive(PrimitiveType::Binary)
        }
        DataType::Date32 => primitive(PrimitiveType::Date),
        DataType::Time32(_) | DataType::Time64(_) => primitive(PrimitiveType::Time),
        DataType::Timestamp(_, None) => primitive(PrimitiveType::Timestamp),
        DataType::Timestamp(_, Some(_)) => primitive(PrimitiveType::Timestamptz),
        DataType::List(element)
        | DataType::LargeList(element)
        | DataType::FixedSizeList(element, _) => {
            let element_id = ids.next();
            let element_type = iceberg_type(element.data_type(), ids)?;
            let field = NestedField::list_element(element_id, element_type, !element.is_nullable());
            Some(Type::List(ListType::new(Arc::new(field))))
        }
        DataType::Map(entries, _) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return None;
            };
            let (key, value) = (kv.first()?, kv.get(1)?);
            let key_id = ids.next();
            let value_id = ids.next();
            let key_type = iceberg_type(key.data_type(), ids)?;
            let value_type = iceberg_type(value.data_type(), ids)?;
            Some(Type::Map(MapType::new(
                Arc::new(NestedField::map_key_element(key_id, key_type)),
                Arc::new(NestedField::map_value_element(
                    value_id,
                    value_type,
                    !value.is_nullable(),
                )),
            )))
        }
        DataType::Struct(fields) => {
            let ids_of: Vec<i32> = fields.iter().map(|_| ids.next()).collect();
            let mut nested = Vec::with_capacity(fields.len());
            for (id, field) in ids_of.into_iter().zip(fields.iter()) {
                nested.push(struct_field(id, field, ids)?);
            }
            Some(Type::Struct(StructType::new(nested)))
        }
        _ => None,
    }
}

fn struct_field(id: i32, field: &Field, ids: &mut FieldIds) -> Option<NestedFieldRef> {
    let field_type = iceberg_type(field.data_type(), ids)?;
    Some(Arc::new(if field.is_nullable() {
        NestedField::optional(id, field.name(), field_type)
    } else {
        NestedField::required(id, field.name(), field_type)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: DataType) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            trino_type: format!("{data_type}"),
            data_type,
            nullable: true,
            comment: None,
        }
    }

    #[test]
    fn nested_types_get_unique_ids() {
        let list = DataType::List(Arc::new(Field::new("item", DataType::Float64, true)));
        let map = DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(
                    vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new("value", DataType::Utf8, true),
                    ]
                    .into(),
                ),
                false,
            )),
            false,
        );
        let schema = schema_from_columns(&[
            column("a", list),
            column("m", map),
            column("d", DataType::Decimal128(10, 2)),
        ])
        .unwrap();
        assert_eq!(schema.as_struct().fields().len(), 3);
        assert_eq!(schema.highest_field_id(), 6);
    }

    #[test]
    fn intervals_are_refused_naming_the_column() {
        let err = schema_from_columns(&[column(
            "gap",
            DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
        )])
        .unwrap_err();
        assert!(err.to_string().contains("'gap'"), "{err}");
    }
}
