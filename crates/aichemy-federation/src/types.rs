//! PostgreSQL column types as Arrow types and Trino type names.
//!
//! Each remote column becomes a [`Kind`]: how its values arrive in binary `COPY` output
//! and which Arrow type holds them. Types without a binary decoder here (interval, inet,
//! enums, ranges, …) are cast to `text` remotely and read as `varchar`, as Trino's
//! `unsupported-type-handling=CONVERT_TO_VARCHAR` does.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};

/// Field metadata key holding the Trino type of a column when its Arrow type alone does
/// not tell it (`json`, `uuid`, `varchar(255)`, `char(3)`).
pub const TRINO_TYPE_KEY: &str = "aichemy.trino_type";

/// Scale of decimals read from `numeric` columns declared without precision.
pub const UNCONSTRAINED_NUMERIC_SCALE: i8 = 9;

/// How one remote column is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Bool,
    Int16,
    Int32,
    Int64,
    /// `oid`: an unsigned 32-bit integer, read as bigint.
    Oid,
    Float32,
    Float64,
    Numeric {
        precision: u8,
        scale: i8,
    },
    /// Text in the database's encoding (UTF-8): text, varchar, char, name, json, and the
    /// types cast to text.
    Text,
    /// `jsonb`: a version byte, then JSON text.
    Jsonb,
    Uuid,
    Bytea,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    /// A one-dimensional array of the element kind.
    Array(Box<Kind>),
}

/// One column of a remote table.
#[derive(Debug, Clone)]
pub struct RemoteColumn {
    pub name: String,
    pub kind: Kind,
    /// Whether the column is selected as `CAST(col AS text)` (or `text[]`).
    pub cast_to_text: bool,
    /// The Trino type name shown for it.
    pub trino_type: String,
    /// Whether comparisons with it mean the same remotely as in the engine (false for
    /// json, which has no equality in PostgreSQL, and for values cast to text).
    pub comparable: bool,
    /// Whether it holds text compared byte-wise by the engine, so range comparisons are
    /// pushed with `COLLATE "C"`.
    pub textual: bool,
    pub nullable: bool,
    pub comment: Option<String>,
}

impl RemoteColumn {
    /// Maps a column from its `pg_type.typname`, `atttypmod`, and for arrays the element
    /// type's name.
    pub fn new(
        name: String,
        type_name: &str,
        type_modifier: i32,
        element_type: Option<&str>,
        nullable: bool,
        comment: Option<String>,
    ) -> Self {
        let (kind, trino_type, cast_to_text) = match element_type {
            Some(element) => match scalar(element, -1) {
                Some((kind, trino)) => (
                    Kind::Array(Box::new(kind)),
                    format!("array({trino})"),
                    false,
                ),
                None => (
                    Kind::Array(Box::new(Kind::Text)),
                    "array(varchar)".to_string(),
                    true,
                ),
            },
            None => match scalar(type_name, type_modifier) {
                Some((kind, trino)) => (kind, trino, false),
                None => (Kind::Text, "varchar".to_string(), true),
            },
        };
        let comparable = !cast_to_text
            && !matches!(type_name, "json" | "jsonb")
            && !matches!(kind, Kind::Array(_) | Kind::Bytea);
        let textual = kind == Kind::Text && comparable;
        Self {
            name,
            kind,
            cast_to_text,
            trino_type,
            comparable,
            textual,
            nullable,
            comment,
        }
    }

    /// The select-list expression reading this column, given its (qualified) quoted
    /// name: the name itself, or a cast to text for types read as text.
    pub fn select_sql(&self, name: &str) -> String {
        if !self.cast_to_text {
            return name.to_string();
        }
        let target = if matches!(self.kind, Kind::Array(_)) {
            "text[]"
        } else {
            "text"
        };
        format!("CAST({name} AS {target})")
    }

    /// The Arrow field of this column, with the Trino type in its metadata when the Arrow
    /// type does not tell it.
    pub fn field(&self) -> Field {
        let data_type = self.kind.data_type();
        let field = Field::new(&self.name, data_type, self.nullable);
        if needs_trino_type(&self.trino_type) {
            field.with_metadata(HashMap::from([(
                TRINO_TYPE_KEY.to_string(),
                self.trino_type.clone(),
            )]))
        } else {
            field
        }
    }
}

/// Whether a Trino type name must ride in field metadata (the Arrow type maps elsewhere).
fn needs_trino_type(trino: &str) -> bool {
    trino == "json"
        || trino == "uuid"
        || trino.starts_with("varchar(")
        || trino.starts_with("char(")
}

/// The kind and Trino type of a scalar type; `None` when it is read as text.
fn scalar(type_name: &str, type_modifier: i32) -> Option<(Kind, String)> {
    let modifier = (type_modifier >= 4).then(|| type_modifier - 4);
    Some(match type_name {
        "bool" => (Kind::Bool, "boolean".into()),
        "int2" => (Kind::Int16, "smallint".into()),
        "int4" => (Kind::Int32, "integer".into()),
        "int8" => (Kind::Int64, "bigint".into()),
        "oid" => (Kind::Oid, "bigint".into()),
        "float4" => (Kind::Float32, "real".into()),
        "float8" => (Kind::Float64, "double".into()),
        "numeric" => {
            let (precision, scale) = match modifier {
                Some(m) if ((m >> 16) & 0xffff) <= 38 => {
                    (((m >> 16) & 0xffff) as u8, (m & 0xffff) as i16 as i8)
                }
                _ => (38, UNCONSTRAINED_NUMERIC_SCALE),
            };
            (
                Kind::Numeric { precision, scale },
                format!("decimal({precision},{scale})"),
            )
        }
        "text" | "name" | "citext" => (Kind::Text, "varchar".into()),
        "varchar" => match modifier {
            Some(n) => (Kind::Text, format!("varchar({n})")),
            None => (Kind::Text, "varchar".into()),
        },
        "bpchar" => (Kind::Text, format!("char({})", modifier.unwrap_or(1))),
        "json" => (Kind::Text, "json".into()),
        "jsonb" => (Kind::Jsonb, "json".into()),
        "uuid" => (Kind::Uuid, "uuid".into()),
        "bytea" => (Kind::Bytea, "varbinary".into()),
        "date" => (Kind::Date, "date".into()),
        "timestamp" => (Kind::Timestamp, "timestamp(6)".into()),
        "timestamptz" => (Kind::TimestampTz, "timestamp(6) with time zone".into()),
        "time" => (Kind::Time, "time(6)".into()),
        _ => return None,
    })
}

impl Kind {
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::Int16 => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 | Kind::Oid => DataType::Int64,
            Kind::Float32 => DataType::Float32,
            Kind::Float64 => DataType::Float64,
            Kind::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            Kind::Text | Kind::Jsonb | Kind::Uuid => DataType::Utf8,
            Kind::Bytea => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Array(element) => {
                DataType::List(Arc::new(Field::new("item", element.data_type(), true)))
            }
        }
    }
}

/// The PostgreSQL type a column of an Arrow type is created with.
pub fn postgres_type(data_type: &DataType, trino_type: Option<&str>) -> Option<String> {
    if let Some(trino) = trino_type {
        if trino == "json" {
            return Some("jsonb".into());
        }
        if trino == "uuid" {
            return Some("uuid".into());
        }
    }
    Some(match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("numeric({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => match trino_type {
            Some(t) if t.starts_with("varchar(") || t.starts_with("char(") => t.into(),
            _ => "text".into(),
        },
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::List(f) | DataType::LargeList(f) => {
            format!("{}[]", postgres_type(f.data_type(), None)?)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_modifiers_become_decimal_precision_and_scale() {
        // numeric(12,2): typmod = ((12 << 16) | 2) + 4
        let column = RemoteColumn::new("a".into(), "numeric", (12 << 16 | 2) + 4, None, true, None);
        assert_eq!(
            column.kind,
            Kind::Numeric {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(column.trino_type, "decimal(12,2)");
        let column = RemoteColumn::new("a".into(), "numeric", -1, None, true, None);
        assert_eq!(column.trino_type, "decimal(38,9)");
    }

    #[test]
    fn types_without_decoder_are_read_as_text() {
        let column = RemoteColumn::new("a".into(), "interval", -1, None, true, None);
        assert!(column.cast_to_text);
        assert_eq!(column.trino_type, "varchar");
        let column = RemoteColumn::new("a".into(), "_inet", -1, Some("inet"), true, None);
        assert!(column.cast_to_text);
        assert_eq!(column.trino_type, "array(varchar)");
    }

    #[test]
    fn json_and_uuid_keep_their_trino_names_in_metadata() {
        let column = RemoteColumn::new("j".into(), "jsonb", -1, None, true, None);
        let field = column.field();
        assert_eq!(field.data_type(), &DataType::Utf8);
        assert_eq!(field.metadata()[TRINO_TYPE_KEY], "json");
        assert!(!column.comparable);
        let column = RemoteColumn::new("v".into(), "varchar", 255 + 4, None, true, None);
        assert_eq!(column.field().metadata()[TRINO_TYPE_KEY], "varchar(255)");
    }
}
