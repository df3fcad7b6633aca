//! Casts to and from JSON with Trino's rules, and casts to types DataFusion's SQL planner
//! does not know (`MAP(K, V)`), through one internal function:
//! `"$cast"(value, 'target type')` (and `"$try_cast"`, NULL where a value does not cast).
//!
//! - to JSON: text becomes a JSON string (`CAST('abc' AS JSON)` is `"abc"`), numbers and
//!   booleans JSON numbers and booleans, dates and times strings, arrays arrays, maps
//!   objects sorted by key, rows objects with their field names;
//! - from JSON: a scalar to a scalar type (numbers from numbers, booleans and numeric
//!   strings; text from any scalar; JSON `null` is NULL), an array to an array, an object
//!   to a map (keys read as the key type) or to a row (fields by name), an array to a row
//!   (fields by position); `json` inside a target (`array(json)`) keeps that part as JSON.
//!
//! The dialect writes `CAST(x AS JSON)` and casts to maps this way; the analyzer rule
//! `JsonCasts` rewrites a CAST whose operand is JSON.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{new_empty_array, Array, ArrayRef, StringArray, StructArray};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::value::Json;
use crate::error::{ErrorCode, TrinoError};
use crate::functions::row_function::{list_value, map_value};
use crate::types::{field_type_name, is_json, parse_type_name};

/// The name of the internal cast function.
pub(crate) const CAST: &str = "$cast";
/// The name of the internal cast function that gives NULL where a value does not cast.
pub(crate) const TRY_CAST: &str = "$try_cast";

fn cast_error(message: impl Into<String>) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::INVALID_CAST_ARGUMENT,
        message,
    )))
}

/// `"$cast"(value, 'type')`: `value` cast to the named type.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Cast {
    name: &'static str,
    signature: Signature,
}

impl Cast {
    pub(crate) fn new(try_cast: bool) -> Self {
        Self {
            name: if try_cast { TRY_CAST } else { CAST },
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// The target field a cast's second argument names: a type name, or (as the analyzer
/// writes it) a NULL of the target type.
fn target_field(arg: &FieldRef, scalar: Option<&ScalarValue>) -> Result<FieldRef> {
    match scalar {
        Some(ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text))) => {
            let declared = parse_type_name(text)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            Ok(Arc::new(declared.field("cast", true)))
        }
        Some(s) if s.is_null() => Ok(Arc::new(arg.as_ref().clone().with_name("cast"))),
        _ => plan_err!("the target of a cast must be a type name"),
    }
}

impl ScalarUDFImpl for Cast {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("{} answers its return field from its arguments", self.name)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        target_field(&args.arg_fields[1], args.scalar_arguments[1])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows)?;
        let output = cast_array(
            &input,
            &args.arg_fields[0],
            &args.return_field,
            self.name == TRY_CAST,
        )?;
        // A nested scalar taken from an array loses its fields' metadata (`array(json)`).
        if all_scalar && !output.data_type().is_nested() {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &output, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(output))
        }
    }
}

/// Text as Trino's `uuid`: checked, in its canonical lower-case form.
fn uuids(input: &ArrayRef, try_cast: bool) -> Result<ArrayRef> {
    let texts = strings(input)?;
    let mut out = datafusion::arrow::array::StringBuilder::new();
    for text in texts.iter() {
        match text.map(|t| (t, uuid::Uuid::parse_str(t.trim()))) {
            None => out.append_null(),
            Some((_, Ok(uuid))) => out.append_value(uuid.hyphenated().to_string()),
            Some(_) if try_cast => out.append_null(),
            Some((text, Err(_))) if text.len() != 36 => {
                return Err(cast_error(format!(
                    "Invalid UUID string length: {}",
                    text.len()
                )))
            }
            Some((text, Err(_))) => {
                return Err(cast_error(format!("Cannot cast value to UUID: {text}")))
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Text as Trino's `ipaddress`: checked, in its canonical form.
fn ip_addresses(input: &ArrayRef, try_cast: bool) -> Result<ArrayRef> {
    let texts = strings(input)?;
    let mut out = datafusion::arrow::array::StringBuilder::new();
    for text in texts.iter() {
        match text.map(|t| (t, crate::functions::ipaddress::canonical(t))) {
            None => out.append_null(),
            Some((_, Some(address))) => out.append_value(address),
            Some(_) if try_cast => out.append_null(),
            Some((text, None)) => {
                return Err(cast_error(format!(
                    "Cannot cast value to IPADDRESS: {text}"
                )))
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Whether a field is JSON or holds JSON somewhere inside.
fn holds_json(field: &Field) -> bool {
    if is_json(field) {
        return true;
    }
    match field.data_type() {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => holds_json(f),
        DataType::Map(entries, _) => holds_json(entries),
        DataType::Struct(fields) => fields.iter().any(|f| holds_json(f)),
        _ => false,
    }
}

/// `input` (of field `from`) cast to field `to`; `try_cast` answers NULL for values that
/// do not cast.
pub(crate) fn cast_array(
    input: &ArrayRef,
    from: &Field,
    to: &Field,
    try_cast: bool,
) -> Result<ArrayRef> {
    if field_type_name(to) == "uuid" && field_type_name(from) != "uuid" {
        return uuids(input, try_cast);
    }
    if crate::functions::number::is_number(to) && !crate::functions::number::is_number(from) {
        return crate::functions::number::cast_to_number(input, try_cast);
    }
    if field_type_name(to) == "ipaddress" && field_type_name(from) != "ipaddress" {
        return ip_addresses(input, try_cast);
    }
    if !is_json(from) && !holds_json(to) {
        let options = CastOptions {
            safe: try_cast,
            ..Default::default()
        };
        return cast_with_options(input, to.data_type(), &options)
            .map_err(|e| cast_error(e.to_string()));
    }
    let mut values = Vec::with_capacity(input.len());
    for row in 0..input.len() {
        let value = ScalarValue::try_from_array(input, row)?;
        let cast = if value.is_null() {
            ScalarValue::try_from(to.data_type())
        } else {
            cast_value(&value, from, to)
        };
        match cast {
            Ok(v) => values.push(v),
            Err(_) if try_cast => values.push(ScalarValue::try_from(to.data_type())?),
            Err(e) => return Err(e),
        }
    }
    array_of(values, to.data_type())
}

fn cast_value(value: &ScalarValue, from: &Field, to: &Field) -> Result<ScalarValue> {
    let json = to_json(value, from)?;
    if is_json(to) {
        if is_json(from) && json == Json::Null {
            // JSON 'null' stays JSON; a SQL NULL was answered before.
            return Ok(ScalarValue::Utf8(Some("null".into())));
        }
        return Ok(ScalarValue::Utf8(Some(json.to_text())));
    }
    from_json(&json, to)
}

/// The JSON value of a SQL value of field `field`.
pub(crate) fn to_json(value: &ScalarValue, field: &Field) -> Result<Json> {
    if value.is_null() {
        return Ok(Json::Null);
    }
    if is_json(field) {
        let text = text_of(value)?;
        return Json::parse(&text)
            .map_err(|_| cast_error(format!("Cannot convert '{text}' to JSON")));
    }
    Ok(match value {
        ScalarValue::Boolean(Some(b)) => Json::Bool(*b),
        ScalarValue::Int8(Some(v)) => Json::Int((*v).into()),
        ScalarValue::Int16(Some(v)) => Json::Int((*v).into()),
        ScalarValue::Int32(Some(v)) => Json::Int((*v).into()),
        ScalarValue::Int64(Some(v)) => Json::Int((*v).into()),
        ScalarValue::UInt8(Some(v)) => Json::Int((*v).into()),
        ScalarValue::UInt16(Some(v)) => Json::Int((*v).into()),
        ScalarValue::UInt32(Some(v)) => Json::Int((*v).into()),
        ScalarValue::UInt64(Some(v)) => Json::Int((*v).into()),
        // A real as its own shortest digits (1.1, not 1.100000023841858).
        ScalarValue::Float32(Some(v)) => Json::Float(v.to_string().parse().unwrap_or(*v as f64)),
        ScalarValue::Float64(Some(v)) => Json::Float(*v),
        ScalarValue::Decimal128(Some(v), _, scale) if *scale <= 0 => {
            Json::Int(*v * 10i128.pow(scale.unsigned_abs().into()))
        }
        ScalarValue::Decimal128(Some(v), _, scale) => {
            Json::Float(*v as f64 / 10f64.powi((*scale).into()))
        }
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Json::String(s.clone()),
        ScalarValue::List(list) => list_json(list.value(0), list_field(field))?,
        ScalarValue::LargeList(list) => list_json(list.value(0), list_field(field))?,
        ScalarValue::FixedSizeList(list) => list_json(list.value(0), list_field(field))?,
        ScalarValue::Map(map) => {
            let entries = map.value(0);
            let (key_field, value_field) = match field.data_type() {
                DataType::Map(e, _) => match e.data_type() {
                    DataType::Struct(kv) if kv.len() == 2 => (kv[0].clone(), kv[1].clone()),
                    _ => return exec_err!("a map without key and value fields"),
                },
                _ => return exec_err!("a map value of a field that is not a map"),
            };
            let mut members = Vec::with_capacity(entries.len());
            for i in 0..entries.len() {
                let key = ScalarValue::try_from_array(entries.column(0), i)?;
                let key = match to_json(&key, &key_field)? {
                    Json::String(s) => s,
                    other => other.to_text(),
                };
                let value = ScalarValue::try_from_array(entries.column(1), i)?;
                members.push((key, to_json(&value, &value_field)?));
            }
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(members)
        }
        ScalarValue::Struct(row) => {
            let mut members = Vec::with_capacity(row.num_columns());
            for (field, column) in row.fields().iter().zip(row.columns()) {
                let value = ScalarValue::try_from_array(column, 0)?;
                members.push((field.name().clone(), to_json(&value, field)?));
            }
            Json::Object(members)
        }
        ScalarValue::Date32(_) | ScalarValue::Date64(_) => Json::String(value.to_string()),
        ScalarValue::TimestampSecond(..)
        | ScalarValue::TimestampMillisecond(..)
        | ScalarValue::TimestampMicrosecond(..)
        | ScalarValue::TimestampNanosecond(..)
        | ScalarValue::Time32Second(_)
        | ScalarValue::Time32Millisecond(_)
        | ScalarValue::Time64Microsecond(_)
        | ScalarValue::Time64Nanosecond(_) => Json::String(value.to_string().replace('T', " ")),
        other => {
            return Err(cast_error(format!(
                "Cannot cast {} to JSON",
                field_type_name(&Field::new("", other.data_type(), true))
            )))
        }
    })
}

fn list_field(field: &Field) -> Option<&FieldRef> {
    match field.data_type() {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => Some(f),
        _ => None,
    }
}

fn list_json(values: ArrayRef, element: Option<&FieldRef>) -> Result<Json> {
    let plain = Arc::new(Field::new("element", values.data_type().clone(), true));
    let element = element.unwrap_or(&plain);
    let mut items = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        items.push(to_json(&ScalarValue::try_from_array(&values, i)?, element)?);
    }
    Ok(Json::Array(items))
}

fn text_of(value: &ScalarValue) -> Result<String> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Ok(s.clone()),
        other => exec_err!("JSON held as {other:?}"),
    }
}

/// A JSON value as a SQL value of field `to`, by Trino's rules for casts from JSON.
pub(crate) fn from_json(json: &Json, to: &Field) -> Result<ScalarValue> {
    let fail = || {
        cast_error(format!(
            "Cannot cast JSON '{}' to {}",
            json.to_text(),
            field_type_name(to)
        ))
    };
    if is_json(to) {
        return Ok(ScalarValue::Utf8(Some(json.to_text())));
    }
    if *json == Json::Null {
        return ScalarValue::try_from(to.data_type());
    }
    let target = to.data_type();
    let scalar = match target {
        DataType::Boolean => ScalarValue::Boolean(Some(match json {
            Json::Bool(b) => *b,
            Json::Int(i) => *i != 0,
            Json::Float(f) => *f != 0.0,
            Json::String(s) if s.eq_ignore_ascii_case("true") => true,
            Json::String(s) if s.eq_ignore_ascii_case("false") => false,
            _ => return Err(fail()),
        })),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let whole: i128 = match json {
                Json::Int(i) => *i,
                Json::Float(f) if f.is_finite() => f.round() as i128,
                Json::Bool(b) => (*b).into(),
                Json::String(s) => s.trim().parse().map_err(|_| fail())?,
                _ => return Err(fail()),
            };
            let out_of_range =
                || cast_error(format!("Out of range for {}: {whole}", field_type_name(to)));
            match target {
                DataType::Int8 => {
                    ScalarValue::Int8(Some(whole.try_into().map_err(|_| out_of_range())?))
                }
                DataType::Int16 => {
                    ScalarValue::Int16(Some(whole.try_into().map_err(|_| out_of_range())?))
                }
                DataType::Int32 => {
                    ScalarValue::Int32(Some(whole.try_into().map_err(|_| out_of_range())?))
                }
                _ => ScalarValue::Int64(Some(whole.try_into().map_err(|_| out_of_range())?)),
            }
        }
        DataType::Float32 | DataType::Float64 => {
            let number = match json {
                Json::Int(i) => *i as f64,
                Json::Float(f) => *f,
                Json::Bool(b) => f64::from(u8::from(*b)),
                Json::String(s) => s.trim().parse().map_err(|_| fail())?,
                _ => return Err(fail()),
            };
            if matches!(target, DataType::Float32) {
                ScalarValue::Float32(Some(number as f32))
            } else {
                ScalarValue::Float64(Some(number))
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = match json {
                Json::String(s) => s.clone(),
                Json::Array(_) | Json::Object(_) => return Err(fail()),
                other => other.to_text(),
            };
            match target {
                DataType::Utf8View => ScalarValue::Utf8View(Some(text)),
                DataType::LargeUtf8 => ScalarValue::LargeUtf8(Some(text)),
                _ => ScalarValue::Utf8(Some(text)),
            }
        }
        DataType::List(element) => {
            let Json::Array(items) = json else {
                return Err(fail());
            };
            let values = items
                .iter()
                .map(|item| from_json(item, element))
                .collect::<Result<Vec<_>>>()?;
            list_value(values, target)?
        }
        DataType::Map(entries, _) => {
            let Json::Object(members) = json else {
                return Err(fail());
            };
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(fail());
            };
            let pairs = members
                .iter()
                .map(|(key, value)| {
                    Ok((
                        from_json(&Json::String(key.clone()), &kv[0])?,
                        from_json(value, &kv[1])?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            map_value(pairs, target)?
        }
        DataType::Struct(fields) => {
            let values: Vec<ScalarValue> = match json {
                Json::Object(members) => fields
                    .iter()
                    .map(|f| {
                        let member = members
                            .iter()
                            .rev()
                            .find(|(k, _)| k.eq_ignore_ascii_case(f.name()))
                            .map_or(&Json::Null, |(_, v)| v);
                        from_json(member, f)
                    })
                    .collect::<Result<_>>()?,
                Json::Array(items) if items.len() == fields.len() => fields
                    .iter()
                    .zip(items)
                    .map(|(f, item)| from_json(item, f))
                    .collect::<Result<_>>()?,
                _ => return Err(fail()),
            };
            let columns = values
                .iter()
                .map(|v| v.to_array_of_size(1))
                .collect::<Result<Vec<_>>>()?;
            ScalarValue::Struct(Arc::new(StructArray::try_new(
                fields.clone(),
                columns,
                None,
            )?))
        }
        _ => {
            let text = match json {
                Json::String(s) => s.clone(),
                Json::Array(_) | Json::Object(_) => return Err(fail()),
                other => other.to_text(),
            };
            ScalarValue::try_from_string(text, target).map_err(|_| fail())?
        }
    };
    Ok(scalar)
}

/// The values as one array of `data_type` (building arrays from scalars drops the
/// metadata of nested fields, which the cast puts back).
pub(crate) fn array_of(values: Vec<ScalarValue>, data_type: &DataType) -> Result<ArrayRef> {
    if values.is_empty() {
        return Ok(new_empty_array(data_type));
    }
    let array = ScalarValue::iter_to_array(values)?;
    if array.data_type() == data_type {
        Ok(array)
    } else {
        Ok(datafusion::arrow::compute::cast(&array, data_type)?)
    }
}

/// The rows of a text column, whatever its string type.
pub(crate) fn strings(array: &ArrayRef) -> Result<StringArray> {
    let cast = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
    Ok(cast
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .unwrap_or_else(|| StringArray::from(Vec::<Option<String>>::new())))
}
