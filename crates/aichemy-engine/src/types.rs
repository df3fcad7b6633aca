//! Trino types: from SQL type syntax to Arrow, and from Arrow back to Trino's type names
//! (as DESCRIBE, information_schema and the client protocol print them).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, IntervalUnit, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    ArrayElemTypeDef, CharacterLength, DataType as SqlType, ExactNumberInfo, TimezoneInfo,
};

use crate::error::{ErrorCode, Result, TrinoError};

/// A declared type: what the data is in Arrow and what the user wrote, in Trino's spelling.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredType {
    pub arrow: DataType,
    pub trino: String,
}

fn unknown(sql: &SqlType) -> TrinoError {
    TrinoError::new(ErrorCode::TYPE_NOT_FOUND, format!("Unknown type '{sql}'"))
}

/// Timestamps are kept at microseconds, the finest unit Iceberg stores.
const TIMESTAMP_UNIT: TimeUnit = TimeUnit::Microsecond;

/// The longest `char(n)` Trino has: its values are padded to their length.
const MAX_CHAR_LENGTH: u64 = 65_536;

/// The Arrow type for a Trino SQL type.
pub fn declared_type(sql: &SqlType) -> Result<DeclaredType> {
    let simple = |arrow: DataType, trino: &str| {
        Ok(DeclaredType {
            arrow,
            trino: trino.to_string(),
        })
    };
    match sql {
        SqlType::Boolean | SqlType::Bool => simple(DataType::Boolean, "boolean"),
        SqlType::TinyInt(_) => simple(DataType::Int8, "tinyint"),
        SqlType::SmallInt(_) => simple(DataType::Int16, "smallint"),
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::Int4(_) => {
            simple(DataType::Int32, "integer")
        }
        SqlType::BigInt(_) | SqlType::Int8(_) => simple(DataType::Int64, "bigint"),
        SqlType::Real | SqlType::Float4 => simple(DataType::Float32, "real"),
        SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Float8 | SqlType::Float(_) => {
            simple(DataType::Float64, "double")
        }
        SqlType::Decimal(info) | SqlType::Numeric(info) | SqlType::Dec(info) => {
            let (precision, scale) = match info {
                ExactNumberInfo::None => (38, 0),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s as u64),
            };
            if precision == 0 || precision > 38 || scale > precision {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_LITERAL,
                    format!("Invalid decimal type: decimal({precision},{scale})"),
                ));
            }
            simple(
                DataType::Decimal128(precision as u8, scale as i8),
                &format!("decimal({precision},{scale})"),
            )
        }
        SqlType::Varchar(length)
        | SqlType::CharacterVarying(length)
        | SqlType::CharVarying(length) => match length {
            Some(CharacterLength::IntegerLength { length, .. }) => {
                simple(DataType::Utf8, &format!("varchar({length})"))
            }
            _ => simple(DataType::Utf8, "varchar"),
        },
        SqlType::Char(length) | SqlType::Character(length) => {
            let n = match length {
                Some(CharacterLength::IntegerLength { length, .. }) => *length,
                _ => 1,
            };
            if n > MAX_CHAR_LENGTH {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_FUNCTION_ARGUMENT,
                    format!("CHAR length must be in range [0, {MAX_CHAR_LENGTH}], got {n}"),
                ));
            }
            simple(DataType::Utf8, &format!("char({n})"))
        }
        SqlType::String(_) | SqlType::Text => simple(DataType::Utf8, "varchar"),
        SqlType::JSON => simple(DataType::Utf8, "json"),
        SqlType::Uuid => simple(DataType::Utf8, "uuid"),
        SqlType::Varbinary(_) | SqlType::Bytea | SqlType::Blob(_) => {
            simple(DataType::Binary, "varbinary")
        }
        SqlType::Date => simple(DataType::Date32, "date"),
        SqlType::Time(precision, tz) => {
            if matches!(tz, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) {
                return Err(TrinoError::not_supported(
                    "Type time with time zone is not supported",
                ));
            }
            let p = precision.unwrap_or(3);
            simple(
                DataType::Time64(TimeUnit::Microsecond),
                &format!("time({p})"),
            )
        }
        SqlType::Timestamp(precision, tz) => {
            let p = precision.unwrap_or(3);
            if p > 12 {
                return Err(TrinoError::new(
                    ErrorCode::INVALID_LITERAL,
                    format!("TIMESTAMP precision must be in range [0, 12]: {p}"),
                ));
            }
            if matches!(tz, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) {
                simple(
                    DataType::Timestamp(TIMESTAMP_UNIT, Some("UTC".into())),
                    &format!("timestamp({p}) with time zone"),
                )
            } else {
                simple(
                    DataType::Timestamp(TIMESTAMP_UNIT, None),
                    &format!("timestamp({p})"),
                )
            }
        }
        SqlType::Array(
            ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::Parenthesis(inner)
            | ArrayElemTypeDef::SquareBracket(inner, _),
        ) => {
            let element = declared_type(inner)?;
            simple(
                DataType::List(Arc::new(element.field("element", true))),
                &format!("array({})", element.trino),
            )
        }
        SqlType::Map(key, value) => {
            let key = declared_type(key)?;
            let value = declared_type(value)?;
            let trino = format!("map({}, {})", key.trino, value.trino);
            simple(
                map_of(key.field("key", false), value.field("value", true)),
                &trino,
            )
        }
        SqlType::Struct(fields, _) => {
            let mut arrow_fields = Vec::with_capacity(fields.len());
            let mut trino_fields = Vec::with_capacity(fields.len());
            for (i, field) in fields.iter().enumerate() {
                let name = field
                    .field_name
                    .as_ref()
                    .map(|n| n.value.to_ascii_lowercase())
                    .unwrap_or_else(|| format!("field{i}"));
                let ty = declared_type(&field.field_type)?;
                trino_fields.push(format!("{name} {}", ty.trino));
                arrow_fields.push(ty.field(&name, true));
            }
            simple(
                DataType::Struct(Fields::from(arrow_fields)),
                &format!("row({})", trino_fields.join(", ")),
            )
        }
        SqlType::Interval { .. } => Err(TrinoError::not_supported(
            "Interval types cannot be stored in a column",
        )),
        SqlType::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "double" => simple(DataType::Float64, "double"),
                "ipaddress" => simple(DataType::Utf8, "ipaddress"),
                // A semi-structured value kept as its JSON text (see `is_json`).
                "variant" => simple(DataType::Utf8, "variant"),
                // Kept as its text (see `functions/number.rs`).
                "number" => simple(DataType::Utf8, "number"),
                _ => Err(unknown(sql)),
            }
        }
        _ => Err(unknown(sql)),
    }
}

/// A map type of these key and value fields, laid out as Iceberg and Parquet readers
/// expect.
fn map_of(key: Field, value: Field) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "key_value",
            DataType::Struct(Fields::from(vec![key, value])),
            false,
        )),
        false,
    )
}

impl DeclaredType {
    /// A field of this type; it carries the Trino name where the Arrow type alone does
    /// not tell it (`json`, `uuid`, `ipaddress`, `char(n)`).
    pub fn field(&self, name: &str, nullable: bool) -> Field {
        let field = Field::new(name, self.arrow.clone(), nullable);
        if ["json", "variant", "number", "uuid", "ipaddress"].contains(&self.trino.as_str())
            || self.trino.starts_with("char(")
        {
            field.with_metadata(
                [(
                    aichemy_federation::TRINO_TYPE_KEY.to_string(),
                    self.trino.clone(),
                )]
                .into(),
            )
        } else {
            field
        }
    }
}

/// The type a Trino type name (`array(json)`, `char(12)`, `map(varchar, integer)`) names.
pub fn parse_type_name(text: &str) -> Result<DeclaredType> {
    let tokens = crate::dialect::tokens(text).map_err(crate::dialect::syntax_error)?;
    let dialect = crate::dialect::dialect();
    let mut parser = datafusion::sql::sqlparser::parser::Parser::new(&dialect)
        .with_tokens_with_locations(tokens);
    let sql = parser
        .parse_data_type()
        .map_err(crate::dialect::syntax_error)?;
    declared_type(&sql)
}

/// Whether a field holds JSON text: Trino's `json` type, and its `variant`, which casts to
/// and from other types as JSON does (a JSON null is a variant null, not a SQL NULL).
pub fn is_json(field: &Field) -> bool {
    field
        .metadata()
        .get(aichemy_federation::TRINO_TYPE_KEY)
        .is_some_and(|name| name == "json" || name == "variant")
}

/// Trino's name for the type of a field: the name its metadata carries (`json`, `uuid`,
/// `varchar(255)` from an external catalog), else the name of its Arrow type at the
/// precision its metadata carries ([`temporal_precision`]).
pub fn field_type_name(field: &Field) -> String {
    if let Some(name) = field.metadata().get(aichemy_federation::TRINO_TYPE_KEY) {
        return name.clone();
    }
    match temporal_precision(field) {
        Some(p) => temporal_type_name(field.data_type(), p),
        None => trino_type_name(field.data_type()),
    }
}

/// The field metadata key of a timestamp's or time's precision in Trino's terms, the digits
/// of its fractional seconds, where they are fewer than its Arrow unit's (values are kept at
/// microseconds or nanoseconds whatever their precision: see `functions/precision.rs`).
pub const PRECISION_KEY: &str = "trino.precision";

/// The most digits of fractional seconds a Trino timestamp or time has.
pub const MAX_TEMPORAL_PRECISION: u8 = 12;

/// The precision a timestamp or time field's metadata carries; `None` for other types (a
/// CAST keeps its operand's metadata) and where the unit tells it.
pub fn temporal_precision(field: &Field) -> Option<u8> {
    if !matches!(
        field.data_type(),
        DataType::Timestamp(_, _) | DataType::Time32(_) | DataType::Time64(_)
    ) {
        return None;
    }
    field
        .metadata()
        .get(PRECISION_KEY)?
        .parse()
        .ok()
        .filter(|p| *p <= MAX_TEMPORAL_PRECISION)
}

/// Trino's name of a timestamp or time type at `precision` digits.
pub fn temporal_type_name(data_type: &DataType, precision: u8) -> String {
    match data_type {
        DataType::Timestamp(_, None) => format!("timestamp({precision})"),
        DataType::Timestamp(_, Some(_)) => format!("timestamp({precision}) with time zone"),
        DataType::Time32(_) | DataType::Time64(_) => format!("time({precision})"),
        other => trino_type_name(other),
    }
}

/// A timestamp's or time's text (`2020-06-10 15:55:23.383345`, `01:02:03`, either followed by
/// a zone) with `precision` digits of fractional seconds: cut or padded with zeros, no point
/// for none.
pub fn with_fraction_digits(text: &str, precision: u8) -> String {
    // The seconds end six characters after the first colon, the one after the hour.
    let Some(seconds_end) = text.find(':').map(|at| at + 6) else {
        return text.to_string();
    };
    if seconds_end > text.len() || !text.is_char_boundary(seconds_end) {
        return text.to_string();
    }
    let (head, rest) = text.split_at(seconds_end);
    let (digits, tail) = match rest.strip_prefix('.') {
        Some(after) => {
            let n = after.bytes().take_while(u8::is_ascii_digit).count();
            after.split_at(n)
        }
        None => ("", rest),
    };
    let p = usize::from(precision);
    if p == 0 {
        return format!("{head}{tail}");
    }
    let digits = if digits.len() >= p {
        digits[..p].to_string()
    } else {
        format!("{digits:0<p$}")
    };
    format!("{head}.{digits}{tail}")
}

/// Trino's names for the column types of a loaded table.
pub fn column_type_names(table: &aichemy_tables::TableHandle) -> Vec<String> {
    let schema = table.provider.schema();
    table
        .columns
        .iter()
        .map(|c| match schema.field_with_name(&c.name) {
            Ok(field) if field.data_type() == &c.data_type => field_type_name(field),
            _ => trino_type_name(&c.data_type),
        })
        .collect()
}

/// Trino's name for an Arrow type.
pub fn trino_type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::UInt8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt16 => "smallint".into(),
        DataType::Int32 | DataType::UInt32 => "integer".into(),
        DataType::Int64 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            format!("decimal({p},{s})")
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "varbinary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(unit) | DataType::Time64(unit) => format!("time({})", precision_of(unit)),
        DataType::Timestamp(unit, None) => format!("timestamp({})", precision_of(unit)),
        DataType::Timestamp(unit, Some(_)) => {
            format!("timestamp({}) with time zone", precision_of(unit))
        }
        DataType::Interval(IntervalUnit::YearMonth) => "interval year to month".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval day to second".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => {
            format!("array({})", field_type_name(f))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!(
                    "map({}, {})",
                    field_type_name(&kv[0]),
                    field_type_name(&kv[1])
                )
            }
            _ => "map(unknown, unknown)".into(),
        },
        DataType::Struct(fields) => format!(
            "row({})",
            fields
                .iter()
                .map(|f| format!("{} {}", quote_field_name(f.name()), field_type_name(f)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::Dictionary(_, value) => trino_type_name(value),
        DataType::RunEndEncoded(_, value) => trino_type_name(value.data_type()),
        DataType::Union(_, _) => "unknown".into(),
    }
}

/// `name` as SQL writes it: bare when it is a plain lowercase identifier, else quoted.
pub(crate) fn quote_field_name(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.is_empty()
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Trino's precision digits for an Arrow time unit.
pub fn precision_of(unit: &TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(text: &str) -> DeclaredType {
        let mut parser = Parser::new(&GenericDialect {}).try_with_sql(text).unwrap();
        declared_type(&parser.parse_data_type().unwrap()).unwrap()
    }

    #[test]
    fn fraction_digits_follow_the_precision() {
        assert_eq!(
            with_fraction_digits("2020-06-10 15:55:23.383345", 0),
            "2020-06-10 15:55:23"
        );
        assert_eq!(
            with_fraction_digits("2020-06-10 15:55:23.383345 +01:00", 3),
            "2020-06-10 15:55:23.383 +01:00"
        );
        assert_eq!(
            with_fraction_digits("2020-06-10 15:55:23 UTC", 12),
            "2020-06-10 15:55:23.000000000000 UTC"
        );
        assert_eq!(with_fraction_digits("01:02:03.456789012", 1), "01:02:03.4");
        assert_eq!(with_fraction_digits("not a time", 3), "not a time");
    }

    #[test]
    fn trino_names_round_trip() {
        for text in [
            "decimal(10,2)",
            "varchar",
            "date",
            "timestamp(6)",
            "timestamp(6) with time zone",
            "array(double)",
            "map(varchar, bigint)",
            "row(a integer, b varchar)",
        ] {
            let tokens = crate::dialect::tokens(text).unwrap();
            let mut parser = Parser::new(&GenericDialect {}).with_tokens_with_locations(tokens);
            let declared = declared_type(&parser.parse_data_type().unwrap()).unwrap();
            assert_eq!(trino_type_name(&declared.arrow), text);
        }
    }

    #[test]
    fn bounded_varchar_keeps_its_length_in_the_name() {
        assert_eq!(parse("VARCHAR(10)").trino, "varchar(10)");
        assert_eq!(parse("CHAR(3)").trino, "char(3)");
    }
}
