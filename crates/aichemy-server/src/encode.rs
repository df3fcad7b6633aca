//! Arrow columns as the Trino protocol carries them: a column's type name and
//! `typeSignature`, and its values as JSON (decimals, dates and times as strings, NaN and
//! infinities as strings, varbinary as base64, arrays as arrays, maps as objects with
//! string keys, rows as arrays in field order).

use aichemy_engine::types::{precision_of, temporal_precision, with_fraction_digits};
use base64::Engine;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, BooleanArray, GenericListArray,
    LargeBinaryArray, OffsetSizeTrait,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{json, Map, Value};

/// Unbounded `varchar`'s length, as Trino reports it.
const UNBOUNDED_VARCHAR: i64 = 2_147_483_647;

fn long(value: i64) -> Value {
    json!({"kind": "LONG", "value": value})
}

/// A column's Trino type: the name `DESCRIBE` and `information_schema` show too (one
/// function, [`aichemy_engine::types::field_type_name`], names types for all of them) and
/// its `typeSignature`.
pub fn field_type(field: &Field) -> (String, Value) {
    (
        aichemy_engine::types::field_type_name(field),
        field_signature(field),
    )
}

/// The `typeSignature` of a field: the name its metadata carries, else its Arrow type's.
fn field_signature(field: &Field) -> Value {
    if let Some(name) = field.metadata().get(aichemy_engine::TRINO_TYPE_KEY) {
        return named_signature(name).unwrap_or_else(|| signature(field.data_type()));
    }
    match (temporal_precision(field), signature(field.data_type())) {
        (Some(p), Value::Object(mut signature)) => {
            signature.insert("arguments".into(), json!([long(p.into())]));
            Value::Object(signature)
        }
        (_, signature) => signature,
    }
}

/// The signature of a name a field's metadata carries where its Arrow type alone does
/// not tell it (`json`, `uuid`, `varchar(255)`, `char(3)` of an external catalog).
fn named_signature(name: &str) -> Option<Value> {
    if ["json", "variant", "number", "uuid"].contains(&name) {
        return Some(json!({"rawType": name, "arguments": []}));
    }
    ["varchar", "char"].into_iter().find_map(|raw| {
        let length = name
            .strip_prefix(raw)?
            .strip_prefix('(')?
            .strip_suffix(')')?
            .parse::<i64>()
            .ok()?;
        Some(json!({"rawType": raw, "arguments": [long(length)]}))
    })
}

/// The `typeSignature` of the type [`aichemy_engine::types::trino_type_name`] names.
fn signature(data_type: &DataType) -> Value {
    let simple = |name: &str| json!({"rawType": name, "arguments": []});
    let of_type = |field: &Field| json!({"kind": "TYPE", "value": field_signature(field)});
    match data_type {
        DataType::Null | DataType::Union(_, _) => simple("unknown"),
        DataType::Boolean => simple("boolean"),
        DataType::Int8 | DataType::UInt8 => simple("tinyint"),
        DataType::Int16 | DataType::UInt16 => simple("smallint"),
        DataType::Int32 | DataType::UInt32 => simple("integer"),
        DataType::Int64 | DataType::UInt64 => simple("bigint"),
        DataType::Float16 | DataType::Float32 => simple("real"),
        DataType::Float64 => simple("double"),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => {
            json!({"rawType": "decimal", "arguments": [long(*p as i64), long(*s as i64)]})
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => simple("varbinary"),
        DataType::Date32 | DataType::Date64 => simple("date"),
        DataType::Time32(unit) | DataType::Time64(unit) => {
            json!({"rawType": "time", "arguments": [long(precision_of(unit).into())]})
        }
        DataType::Timestamp(unit, None) => {
            json!({"rawType": "timestamp", "arguments": [long(precision_of(unit).into())]})
        }
        DataType::Timestamp(unit, Some(_)) => json!({
            "rawType": "timestamp with time zone",
            "arguments": [long(precision_of(unit).into())],
        }),
        DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::YearMonth) => {
            simple("interval year to month")
        }
        DataType::Interval(_) | DataType::Duration(_) => simple("interval day to second"),
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::LargeListView(field)
        | DataType::FixedSizeList(field, _) => {
            json!({"rawType": "array", "arguments": [of_type(field)]})
        }
        DataType::Map(entries, _) => {
            let arguments = match entries.data_type() {
                DataType::Struct(fields) if fields.len() == 2 => {
                    vec![of_type(&fields[0]), of_type(&fields[1])]
                }
                _ => {
                    let unknown = Field::new("unknown", DataType::Null, true);
                    vec![of_type(&unknown), of_type(&unknown)]
                }
            };
            json!({"rawType": "map", "arguments": arguments})
        }
        DataType::Struct(fields) => {
            let arguments: Vec<Value> = fields
                .iter()
                .map(|f| {
                    json!({"kind": "NAMED_TYPE", "value": {
                        "fieldName": {"name": f.name()},
                        "typeSignature": field_signature(f),
                    }})
                })
                .collect();
            json!({"rawType": "row", "arguments": arguments})
        }
        DataType::Dictionary(_, value) => signature(value),
        DataType::RunEndEncoded(_, value) => signature(value.data_type()),
        // varchar: every one carries a length, which clients index unguarded.
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            json!({"rawType": "varchar", "arguments": [long(UNBOUNDED_VARCHAR)]})
        }
    }
}

fn float(value: f64) -> Value {
    if value.is_nan() {
        Value::from("NaN")
    } else if value.is_infinite() {
        Value::from(if value > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// A year-month interval as Trino writes it: `3-5`, `-1-2`.
fn year_month(months: i64) -> String {
    let sign = if months < 0 { "-" } else { "" };
    let months = months.unsigned_abs();
    format!("{sign}{}-{}", months / 12, months % 12)
}

/// A day-second interval as Trino writes it: `3 19:26:24.000`, `-0 02:00:00.000`.
fn day_second(millis: i64) -> String {
    let sign = if millis < 0 { "-" } else { "" };
    let millis = millis.unsigned_abs();
    let (days, rest) = (millis / 86_400_000, millis % 86_400_000);
    let (hours, rest) = (rest / 3_600_000, rest % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1_000, rest % 1_000);
    format!("{sign}{days} {hours:02}:{minutes:02}:{seconds:02}.{millis:03}")
}

/// Trino's name of an Arrow time zone: a zero offset is `UTC`.
fn trino_zone(zone: &str) -> &str {
    match zone {
        "+00:00" | "Z" | "z" | "utc" | "Etc/UTC" | "UTC" => "UTC",
        other => other,
    }
}

fn temporal_options(data_type: &DataType) -> FormatOptions<'static> {
    let (date_time, zoned, time) = match data_type {
        DataType::Timestamp(TimeUnit::Second, _) | DataType::Time32(TimeUnit::Second) => {
            ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%H:%M:%S")
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Time32(TimeUnit::Millisecond) => {
            (
                "%Y-%m-%d %H:%M:%S%.3f",
                "%Y-%m-%d %H:%M:%S%.3f",
                "%H:%M:%S%.3f",
            )
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) | DataType::Time64(TimeUnit::Nanosecond) => (
            "%Y-%m-%d %H:%M:%S%.9f",
            "%Y-%m-%d %H:%M:%S%.9f",
            "%H:%M:%S%.9f",
        ),
        _ => (
            "%Y-%m-%d %H:%M:%S%.6f",
            "%Y-%m-%d %H:%M:%S%.6f",
            "%H:%M:%S%.6f",
        ),
    };
    FormatOptions::default()
        .with_timestamp_format(Some(date_time))
        .with_timestamp_tz_format(Some(zoned))
        .with_time_format(Some(time))
}

/// Every value of a column as Trino's JSON, nulls as `null`.
pub fn encode_column(array: &ArrayRef) -> Result<Vec<Value>, String> {
    encode_values(array, None)
}

/// Every value of a field's column as Trino's JSON: timestamps and times with the digits of
/// the precision its metadata carries.
pub fn encode_field_column(field: &Field, array: &ArrayRef) -> Result<Vec<Value>, String> {
    encode_values(array, temporal_precision(field))
}

fn encode_values(array: &ArrayRef, precision: Option<u8>) -> Result<Vec<Value>, String> {
    let n = array.len();
    let mut values: Vec<Value> = match array.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => {
            let a: &BooleanArray = array.as_boolean();
            (0..n).map(|i| Value::from(a.value(i))).collect()
        }
        DataType::Int8 => ints(array.as_primitive::<Int8Type>().values().iter().copied()),
        DataType::Int16 => ints(array.as_primitive::<Int16Type>().values().iter().copied()),
        DataType::Int32 => ints(array.as_primitive::<Int32Type>().values().iter().copied()),
        DataType::Int64 => ints(array.as_primitive::<Int64Type>().values().iter().copied()),
        DataType::UInt8 => ints(array.as_primitive::<UInt8Type>().values().iter().copied()),
        DataType::UInt16 => ints(array.as_primitive::<UInt16Type>().values().iter().copied()),
        DataType::UInt32 => ints(array.as_primitive::<UInt32Type>().values().iter().copied()),
        DataType::UInt64 => array
            .as_primitive::<UInt64Type>()
            .values()
            .iter()
            .map(|v| Value::from(*v))
            .collect(),
        DataType::Float32 => array
            .as_primitive::<Float32Type>()
            .values()
            .iter()
            .map(|v| float(*v as f64))
            .collect(),
        DataType::Float64 => array
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|v| float(*v))
            .collect(),
        DataType::Utf8 => array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(Value::from).unwrap_or(Value::Null))
            .collect(),
        DataType::LargeUtf8 => array
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(Value::from).unwrap_or(Value::Null))
            .collect(),
        DataType::Utf8View => array
            .as_string_view()
            .iter()
            .map(|v| v.map(Value::from).unwrap_or(Value::Null))
            .collect(),
        DataType::Binary => base64_values(array.as_any().downcast_ref::<BinaryArray>()),
        DataType::LargeBinary => base64_values(array.as_any().downcast_ref::<LargeBinaryArray>()),
        DataType::BinaryView => base64_values(array.as_any().downcast_ref::<BinaryViewArray>()),
        DataType::List(field) => list_values(field, array.as_list::<i32>())?,
        DataType::LargeList(field) => list_values(field, array.as_list::<i64>())?,
        DataType::FixedSizeList(_, size) => {
            let list = array.as_fixed_size_list();
            let children = encode_column(list.values())?;
            let size = *size as usize;
            (0..n)
                .map(|i| {
                    let start = (list.offset() + i) * size;
                    Value::Array(children[start..start + size].to_vec())
                })
                .collect()
        }
        DataType::Map(_, _) => {
            let map = array.as_map();
            let offsets = map.value_offsets();
            // Only the entries of these rows: a slice's offsets index into all of them.
            let first = offsets[0] as usize;
            let entries = offsets[n] as usize - first;
            let keys = encode_column(&map.keys().slice(first, entries))?;
            let values = encode_column(&map.values().slice(first, entries))?;
            (0..n)
                .map(|i| {
                    let mut object = Map::new();
                    for j in offsets[i] as usize - first..offsets[i + 1] as usize - first {
                        let key = match &keys[j] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        object.insert(key, values[j].clone());
                    }
                    Value::Object(object)
                })
                .collect()
        }
        DataType::Struct(fields) => {
            let row = array.as_struct();
            let fields = row
                .columns()
                .iter()
                .zip(fields.iter())
                .map(|(column, field)| encode_field_column(field, column))
                .collect::<Result<Vec<_>, _>>()?;
            (0..n)
                .map(|i| Value::Array(fields.iter().map(|f| f[i].clone()).collect()))
                .collect()
        }
        DataType::Dictionary(_, value) => {
            let plain = cast(array, value).map_err(|e| e.to_string())?;
            return encode_column(&plain);
        }
        DataType::Interval(unit) => {
            use datafusion::arrow::datatypes::{
                IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType,
            };
            match unit {
                IntervalUnit::YearMonth => array
                    .as_primitive::<IntervalYearMonthType>()
                    .values()
                    .iter()
                    .map(|months| Value::from(year_month(i64::from(*months))))
                    .collect(),
                IntervalUnit::DayTime => array
                    .as_primitive::<IntervalDayTimeType>()
                    .values()
                    .iter()
                    .map(|v| {
                        let millis = i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds);
                        Value::from(day_second(millis))
                    })
                    .collect(),
                IntervalUnit::MonthDayNano => array
                    .as_primitive::<IntervalMonthDayNanoType>()
                    .values()
                    .iter()
                    .map(|v| {
                        // Months alone are a year-month interval; days and time a
                        // day-second one (months counted as 30 days beside them).
                        if v.days == 0 && v.nanoseconds == 0 && v.months != 0 {
                            return Value::from(year_month(i64::from(v.months)));
                        }
                        let days = i64::from(v.months) * 30 + i64::from(v.days);
                        let millis = days * 86_400_000 + v.nanoseconds / 1_000_000;
                        Value::from(day_second(millis))
                    })
                    .collect(),
            }
        }
        other => {
            // Decimals, dates, times, timestamps: Trino's text forms.
            let options = temporal_options(other);
            let formatter =
                ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| e.to_string())?;
            // A zoned timestamp is its local time in the column's zone, then the zone as
            // Trino names it (`… UTC`, `… Europe/Paris`, `… +05:30`).
            let zone = match other {
                DataType::Timestamp(_, Some(zone)) => Some(trino_zone(zone)),
                _ => None,
            };
            (0..n)
                .map(|i| {
                    let text = formatter.value(i).to_string();
                    let text = match precision {
                        Some(p) => with_fraction_digits(&text, p),
                        None => text,
                    };
                    Value::from(match &zone {
                        Some(zone) => format!("{text} {zone}"),
                        None => text,
                    })
                })
                .collect()
        }
    };
    if array.null_count() > 0 {
        for (i, value) in values.iter_mut().enumerate() {
            if array.is_null(i) {
                *value = Value::Null;
            }
        }
    }
    Ok(values)
}

/// The lists of `list`, encoding only the elements its rows hold: the offsets of a slice
/// index into every element of the array it was cut from.
fn list_values<O: OffsetSizeTrait>(
    field: &Field,
    list: &GenericListArray<O>,
) -> Result<Vec<Value>, String> {
    let offsets = list.value_offsets();
    let first = offsets[0].as_usize();
    let last = offsets[offsets.len() - 1].as_usize();
    let children = encode_field_column(field, &list.values().slice(first, last - first))?;
    Ok(offsets
        .windows(2)
        .map(|w| Value::Array(children[w[0].as_usize() - first..w[1].as_usize() - first].to_vec()))
        .collect())
}

fn ints<T: Into<i64>>(values: impl Iterator<Item = T>) -> Vec<Value> {
    values.map(|v| Value::from(v.into())).collect()
}

fn base64_values<'a, A>(array: Option<&'a A>) -> Vec<Value>
where
    &'a A: IntoIterator<Item = Option<&'a [u8]>>,
{
    let engine = base64::engine::general_purpose::STANDARD;
    array
        .map(|a| {
            a.into_iter()
                .map(|v| {
                    v.map(|b| Value::from(engine.encode(b)))
                        .unwrap_or(Value::Null)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Decimal128Array, Float64Array, Int32Array, Int32Builder, ListArray, MapBuilder,
        StringArray, StringBuilder, StructArray,
    };
    use datafusion::arrow::datatypes::{Field, Fields, Int32Type};

    use super::*;

    #[test]
    fn intervals_and_zones_as_trino_writes_them() {
        assert_eq!(year_month(41), "3-5");
        assert_eq!(year_month(-14), "-1-2");
        assert_eq!(day_second(329_184_000), "3 19:26:24.000");
        assert_eq!(day_second(-7_200_000), "-0 02:00:00.000");
        assert_eq!(day_second(43), "0 00:00:00.043");
        assert_eq!(trino_zone("+00:00"), "UTC");
        assert_eq!(trino_zone("Europe/Paris"), "Europe/Paris");
    }

    #[test]
    fn type_signatures_carry_the_arguments_clients_index() {
        let column_type =
            |data_type: &DataType| field_type(&Field::new("c", data_type.clone(), true));
        let (name, signature) = column_type(&DataType::Decimal128(10, 2));
        assert_eq!(name, "decimal(10,2)");
        assert_eq!(signature["arguments"][1]["value"], 2);
        let (name, signature) = column_type(&DataType::Utf8);
        assert_eq!(name, "varchar");
        assert_eq!(signature["arguments"][0]["value"], UNBOUNDED_VARCHAR);
        let row = DataType::Struct(Fields::from(vec![Field::new("x", DataType::Int32, true)]));
        let (name, signature) = column_type(&row);
        assert_eq!(name, "row(x integer)");
        assert_eq!(signature["arguments"][0]["value"]["fieldName"]["name"], "x");
        let (name, _) = column_type(&DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(name, "timestamp(6)");
        // Names as DESCRIBE gives them: a field name that is not a plain identifier quoted.
        let row = DataType::Struct(Fields::from(vec![Field::new(
            "Mixed",
            DataType::Int32,
            true,
        )]));
        let (name, signature) = column_type(&row);
        assert_eq!(name, aichemy_engine::types::trino_type_name(&row));
        assert_eq!(name, "row(\"Mixed\" integer)");
        assert_eq!(
            signature["arguments"][0]["value"]["fieldName"]["name"],
            "Mixed"
        );
    }

    #[test]
    fn values_are_encoded_as_trino_encodes_them() {
        let doubles: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(1.5),
            Some(f64::NAN),
            Some(f64::NEG_INFINITY),
            None,
        ]));
        assert_eq!(
            encode_column(&doubles).unwrap(),
            vec![json!(1.5), json!("NaN"), json!("-Infinity"), Value::Null]
        );
        let decimals: ArrayRef = Arc::new(
            Decimal128Array::from(vec![9999, 14950])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        assert_eq!(
            encode_column(&decimals).unwrap(),
            vec![json!("99.99"), json!("149.50")]
        );
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
        ]));
        assert_eq!(
            encode_column(&lists).unwrap(),
            vec![json!([1, null]), Value::Null]
        );
        let rows: ArrayRef = Arc::new(StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Int32, true)),
                Arc::new(Int32Array::from(vec![1])) as ArrayRef,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
            ),
        ]));
        assert_eq!(encode_column(&rows).unwrap(), vec![json!([1, "x"])]);
    }

    #[test]
    fn a_slice_encodes_its_own_rows() {
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
            Some(vec![Some(3)]),
            Some(vec![Some(4), Some(5), Some(6)]),
        ]));
        assert_eq!(
            encode_column(&lists.slice(1, 2)).unwrap(),
            vec![Value::Null, json!([3])]
        );
        assert_eq!(
            encode_column(&lists.slice(3, 1)).unwrap(),
            vec![json!([4, 5, 6])]
        );
        assert_eq!(
            encode_column(&lists.slice(0, 0)).unwrap(),
            Vec::<Value>::new()
        );
        let mut maps = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        for (key, value) in [("a", 1), ("b", 2), ("c", 3)] {
            maps.keys().append_value(key);
            maps.values().append_value(value);
            maps.append(true).unwrap();
        }
        let maps: ArrayRef = Arc::new(maps.finish());
        assert_eq!(
            encode_column(&maps.slice(1, 2)).unwrap(),
            vec![json!({"b": 2}), json!({"c": 3})]
        );
    }
}
