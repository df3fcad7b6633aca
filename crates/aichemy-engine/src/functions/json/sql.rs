//! The SQL/JSON functions, as internal functions the dialect lowers their calls to (see
//! `clauses.rs`, which also documents the arguments):
//!
//! - `"$json_exists"(input, path, on_error, [name, value]…)`;
//! - `"$json_value"(input, path, returning, on_empty, empty_default, on_error,
//!   error_default, [name, value]…)`;
//! - `"$json_query"(input, path, options, [name, value]…)`;
//! - `"$json_array"(options, value…)`, `"$json_object"(options, key, value, …)`;
//! - `"$json_input"(value, encoding)`: a value written `… FORMAT JSON [ENCODING e]`, read
//!   as JSON.
//!
//! Options are `name=value` pairs separated by `;`, written by the lowering.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::cast::{array_of, cast_array, from_json, strings, to_json};
use super::json_field;
use super::path::JsonPath;
use super::value::Json;
use crate::error::{ErrorCode, TrinoError};
use crate::functions::arg_arrays;
use crate::functions::scalar_result;
use crate::types::parse_type_name;

pub(crate) const EXISTS: &str = "$json_exists";
pub(crate) const VALUE: &str = "$json_value";
pub(crate) const QUERY: &str = "$json_query";
pub(crate) const ARRAY: &str = "$json_array";
pub(crate) const OBJECT: &str = "$json_object";
pub(crate) const INPUT: &str = "$json_input";

pub(super) fn register(ctx: &SessionContext) {
    for name in [EXISTS, VALUE, QUERY, ARRAY, OBJECT, INPUT] {
        ctx.register_udf(ScalarUDF::new_from_impl(SqlJson::new(name)));
    }
}

fn error(code: ErrorCode, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(code, message)))
}

fn path_error(message: impl Into<String>) -> DataFusionError {
    error(ErrorCode::INVALID_FUNCTION_ARGUMENT, message)
}

/// The `name=value` options the lowering wrote.
#[derive(Debug, Default)]
struct Options(Vec<(String, String)>);

impl Options {
    fn parse(text: &str) -> Self {
        Options(
            text.split(';')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

fn literal_text(scalar: Option<&ScalarValue>) -> Option<&str> {
    match scalar {
        Some(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))) => Some(s),
        _ => None,
    }
}

/// The field a `RETURNING` clause names (`varchar` when there is none).
fn returning_field(name: &str, options: &Options) -> Result<Field> {
    match options.get("returning") {
        "" => Ok(Field::new(name, DataType::Utf8, true)),
        "varbinary" => Ok(Field::new(name, DataType::Binary, true)),
        text => parse_type_name(text)
            .map(|declared| declared.field(name, true))
            .map_err(|e| DataFusionError::External(Box::new(e))),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SqlJson {
    name: &'static str,
    signature: Signature,
}

impl SqlJson {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SqlJson {
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
        let options_at = match self.name {
            VALUE => 2,
            QUERY => 2,
            ARRAY | OBJECT => 0,
            EXISTS => {
                return Ok(Arc::new(Field::new(self.name, DataType::Boolean, true)));
            }
            _ => return Ok(Arc::new(json_field(self.name))),
        };
        let Some(text) = literal_text(args.scalar_arguments.get(options_at).copied().flatten())
        else {
            return plan_err!("{} needs its options as a literal", self.name);
        };
        let options = if self.name == VALUE {
            Options(vec![("returning".into(), text.to_string())])
        } else {
            Options::parse(text)
        };
        Ok(Arc::new(returning_field(self.name, &options)?))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = arg_arrays(&args)?;
        let fields = &args.arg_fields;
        let result = match self.name {
            EXISTS => exists(&arrays, fields)?,
            VALUE => value(&arrays, fields, &args.return_field)?,
            QUERY => query(&arrays, fields)?,
            ARRAY => array(&arrays, fields)?,
            OBJECT => object(&arrays, fields)?,
            _ => input(&arrays)?,
        };
        scalar_result(&args.args, result)
    }
}

fn option_at(arrays: &[ArrayRef], at: usize) -> Result<Options> {
    let texts = strings(&arrays[at])?;
    Ok(Options::parse(if texts.is_empty() || texts.is_null(0) {
        ""
    } else {
        texts.value(0)
    }))
}

/// A row's input, path and `PASSING` values, read.
struct PathCall {
    inputs: StringArray,
    paths: StringArray,
    parameters: Vec<(String, ArrayRef, FieldRef)>,
    cached: Option<(String, JsonPath)>,
}

/// What evaluating the path on one row gave.
enum Outcome {
    Null,
    Items(Vec<Json>),
    Failed(String),
}

impl PathCall {
    fn new(arrays: &[ArrayRef], fields: &[FieldRef], first_parameter: usize) -> Result<Self> {
        let mut parameters = Vec::new();
        let mut at = first_parameter;
        while at + 1 < arrays.len() {
            let names = strings(&arrays[at])?;
            let name = if names.is_empty() || names.is_null(0) {
                String::new()
            } else {
                names.value(0).to_string()
            };
            parameters.push((name, arrays[at + 1].clone(), fields[at + 1].clone()));
            at += 2;
        }
        Ok(PathCall {
            inputs: strings(&arrays[0])?,
            paths: strings(&arrays[1])?,
            parameters,
            cached: None,
        })
    }

    fn evaluate(&mut self, row: usize) -> Result<Outcome> {
        if self.inputs.is_null(row) || self.paths.is_null(row) {
            return Ok(Outcome::Null);
        }
        let path_text = self.paths.value(row);
        if self
            .cached
            .as_ref()
            .is_none_or(|(text, _)| text != path_text)
        {
            let path = JsonPath::parse(path_text)
                .map_err(|e| path_error(format!("Invalid JSON path '{path_text}': {e}")))?;
            self.cached = Some((path_text.to_string(), path));
        }
        let Some((_, path)) = &self.cached else {
            return Ok(Outcome::Null);
        };
        let input = match Json::parse(self.inputs.value(row)) {
            Ok(json) => json,
            Err(e) => return Ok(Outcome::Failed(format!("malformed JSON input: {e}"))),
        };
        let mut parameters = Vec::with_capacity(self.parameters.len());
        for (name, values, field) in &self.parameters {
            let value = ScalarValue::try_from_array(values, row)?;
            parameters.push((name.clone(), to_json(&value, field)?));
        }
        Ok(match path.evaluate(&input, &parameters) {
            Ok(items) => Outcome::Items(items),
            Err(e) => Outcome::Failed(e.0),
        })
    }
}

/// `json_exists`: whether the path selects anything; `on_error` says what an error gives.
fn exists(arrays: &[ArrayRef], fields: &[FieldRef]) -> Result<ArrayRef> {
    let on_error = option_at(arrays, 2)?.get("error").to_string();
    let mut call = PathCall::new(arrays, fields, 3)?;
    let mut out = BooleanBuilder::with_capacity(arrays[0].len());
    for row in 0..arrays[0].len() {
        match call.evaluate(row)? {
            Outcome::Null => out.append_null(),
            Outcome::Items(items) => out.append_value(!items.is_empty()),
            Outcome::Failed(message) => match on_error.as_str() {
                "true" => out.append_value(true),
                "unknown" => out.append_null(),
                "error" => return Err(path_error(message)),
                _ => out.append_value(false),
            },
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `json_value`: the one scalar the path selects, as the `RETURNING` type.
fn value(arrays: &[ArrayRef], fields: &[FieldRef], returned: &FieldRef) -> Result<ArrayRef> {
    let kind_at =
        |at: usize| -> Result<String> { Ok(option_at(arrays, at)?.get("on").to_string()) };
    let (on_empty, on_error) = (kind_at(3)?, kind_at(5)?);
    let rows = arrays[0].len();
    let default_of =
        |at: usize| -> Result<ArrayRef> { cast_array(&arrays[at], &fields[at], returned, false) };
    let (empty_default, error_default) = (default_of(4)?, default_of(6)?);
    let char_length = crate::types::field_type_name(returned)
        .strip_prefix("char(")
        .and_then(|n| n.trim_end_matches(')').parse::<usize>().ok());
    let mut call = PathCall::new(arrays, fields, 7)?;
    let mut values = Vec::with_capacity(rows);
    for row in 0..rows {
        let failure = |message: String, values: &mut Vec<ScalarValue>| -> Result<()> {
            match on_error.as_str() {
                "error" => Err(path_error(message)),
                "default" => {
                    values.push(ScalarValue::try_from_array(&error_default, row)?);
                    Ok(())
                }
                _ => {
                    values.push(ScalarValue::try_from(returned.data_type())?);
                    Ok(())
                }
            }
        };
        match call.evaluate(row)? {
            Outcome::Null => values.push(ScalarValue::try_from(returned.data_type())?),
            Outcome::Failed(message) => failure(message, &mut values)?,
            Outcome::Items(items) if items.is_empty() => match on_empty.as_str() {
                "error" => return Err(path_error("JSON path found no items")),
                "default" => values.push(ScalarValue::try_from_array(&empty_default, row)?),
                _ => values.push(ScalarValue::try_from(returned.data_type())?),
            },
            Outcome::Items(items) => {
                if items.len() > 1 {
                    failure("JSON path found multiple items".into(), &mut values)?;
                } else if !items[0].is_scalar() {
                    failure(
                        "JSON path found an item that is not a scalar".into(),
                        &mut values,
                    )?;
                } else {
                    match from_json(&items[0], returned) {
                        Ok(ScalarValue::Utf8(Some(text))) if char_length.is_some() => {
                            let width = char_length.unwrap_or(0);
                            let padded = format!("{text:<width$}");
                            values.push(ScalarValue::Utf8(Some(padded)));
                        }
                        Ok(v) => values.push(v),
                        Err(e) => failure(e.to_string(), &mut values)?,
                    }
                }
            }
        }
    }
    array_of(values, returned.data_type())
}

/// Text in `encoding` (`UTF8`, `UTF16`, `UTF32`, little-endian as Trino writes them).
fn encode(text: &str, encoding: &str) -> Vec<u8> {
    match encoding.to_ascii_uppercase().as_str() {
        "UTF16" => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "UTF32" => text
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect(),
        _ => text.as_bytes().to_vec(),
    }
}

fn decode(bytes: &[u8], encoding: &str) -> Option<String> {
    match encoding.to_ascii_uppercase().as_str() {
        "UTF16" => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        "UTF32" => bytes
            .chunks_exact(4)
            .map(|c| char::from_u32(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        _ => String::from_utf8(bytes.to_vec()).ok(),
    }
}

/// The results of `json_query`, `json_array` and `json_object` as their `RETURNING`
/// clause asks (text, or bytes in an encoding).
struct Output {
    binary: Option<(BinaryBuilder, String)>,
    text: StringBuilder,
}

impl Output {
    fn new(options: &Options) -> Self {
        let binary = (options.get("returning") == "varbinary")
            .then(|| (BinaryBuilder::new(), options.get("encoding").to_string()));
        Output {
            binary,
            text: StringBuilder::new(),
        }
    }

    fn push(&mut self, value: Option<String>) {
        match &mut self.binary {
            Some((builder, encoding)) => builder.append_option(value.map(|v| encode(&v, encoding))),
            None => self.text.append_option(value),
        }
    }

    fn finish(self) -> ArrayRef {
        match self.binary {
            Some((mut builder, _)) => Arc::new(builder.finish()),
            None => {
                let mut text = self.text;
                Arc::new(text.finish())
            }
        }
    }
}

/// `json_query`: the items the path selects as one JSON text, wrapped in an array as the
/// wrapper clause asks.
fn query(arrays: &[ArrayRef], fields: &[FieldRef]) -> Result<ArrayRef> {
    let options = option_at(arrays, 2)?;
    let mut call = PathCall::new(arrays, fields, 3)?;
    let mut out = Output::new(&options);
    let special = |behaviour: &str, message: String| -> Result<Option<String>> {
        match behaviour {
            "error" => Err(path_error(message)),
            "array" => Ok(Some("[]".into())),
            "object" => Ok(Some("{}".into())),
            _ => Ok(None),
        }
    };
    for row in 0..arrays[0].len() {
        let items = match call.evaluate(row)? {
            Outcome::Null => {
                out.push(None);
                continue;
            }
            Outcome::Failed(message) => {
                out.push(special(options.get("error"), message)?);
                continue;
            }
            Outcome::Items(items) => items,
        };
        if items.is_empty() {
            out.push(special(
                options.get("empty"),
                "JSON path found no items".into(),
            )?);
            continue;
        }
        let wrap = match options.get("wrapper") {
            "unconditional" => true,
            "conditional" => items.len() != 1 || items[0].is_scalar(),
            _ => false,
        };
        let result = if wrap {
            Json::Array(items).to_text()
        } else if items.len() > 1 {
            out.push(special(
                options.get("error"),
                "JSON path found multiple items".into(),
            )?);
            continue;
        } else {
            match &items[0] {
                Json::String(s) if options.get("quotes") == "omit" => s.clone(),
                item => item.to_text(),
            }
        };
        out.push(Some(result));
    }
    Ok(out.finish())
}

/// The JSON of argument `at` on `row` (NULL as `None`).
fn argument_json(
    arrays: &[ArrayRef],
    fields: &[FieldRef],
    at: usize,
    row: usize,
) -> Result<Option<Json>> {
    let value = ScalarValue::try_from_array(&arrays[at], row)?;
    if value.is_null() {
        return Ok(None);
    }
    to_json(&value, &fields[at]).map(Some)
}

/// `json_array(value, …)`.
fn array(arrays: &[ArrayRef], fields: &[FieldRef]) -> Result<ArrayRef> {
    let options = option_at(arrays, 0)?;
    let absent = options.get("null") != "null";
    let rows = arrays.first().map_or(0, |a| a.len());
    let mut out = Output::new(&options);
    for row in 0..rows {
        let mut items = Vec::with_capacity(arrays.len() - 1);
        for at in 1..arrays.len() {
            match argument_json(arrays, fields, at, row)? {
                Some(json) => items.push(json),
                None if absent => {}
                None => items.push(Json::Null),
            }
        }
        out.push(Some(Json::Array(items).to_text()));
    }
    Ok(out.finish())
}

/// `json_object(key : value, …)`.
fn object(arrays: &[ArrayRef], fields: &[FieldRef]) -> Result<ArrayRef> {
    let options = option_at(arrays, 0)?;
    let absent = options.get("null") == "absent";
    let unique = options.get("unique") == "with";
    let rows = arrays.first().map_or(0, |a| a.len());
    let mut out = Output::new(&options);
    for row in 0..rows {
        let mut members: Vec<(String, Json)> = Vec::new();
        for at in (1..arrays.len()).step_by(2) {
            let key = match argument_json(arrays, fields, at, row)? {
                Some(Json::String(key)) => key,
                Some(other) => other.to_text(),
                None => {
                    return Err(error(
                        ErrorCode::INVALID_FUNCTION_ARGUMENT,
                        "null value passed for JSON object key to JSON_OBJECT function",
                    ))
                }
            };
            let value = match argument_json(arrays, fields, at + 1, row)? {
                Some(json) => json,
                None if absent => continue,
                None => Json::Null,
            };
            if unique && members.iter().any(|(k, _)| *k == key) {
                return Err(error(
                    ErrorCode::INVALID_FUNCTION_ARGUMENT,
                    "duplicate key passed to JSON_OBJECT function",
                ));
            }
            members.push((key, value));
        }
        // Written member by member: a repeated key (without UNIQUE KEYS) appears twice.
        let mut text = String::from("{");
        for (i, (key, value)) in members.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            super::value::write_string(&mut text, key);
            text.push(':');
            value.write(&mut text, false);
        }
        text.push('}');
        out.push(Some(text));
    }
    Ok(out.finish())
}

/// `value FORMAT JSON [ENCODING e]`: text or bytes read as JSON, kept as written.
fn input(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let encoding = option_at(arrays, 1)?.get("encoding").to_string();
    let values = &arrays[0];
    let mut out = StringBuilder::new();
    for row in 0..values.len() {
        let value = ScalarValue::try_from_array(values, row)?;
        let text = match &value {
            v if v.is_null() => {
                out.append_null();
                continue;
            }
            ScalarValue::Binary(Some(b))
            | ScalarValue::LargeBinary(Some(b))
            | ScalarValue::BinaryView(Some(b)) => decode(b, &encoding),
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
            _ => None,
        };
        let json = text
            .as_deref()
            .and_then(|t| Json::parse(t).ok())
            .ok_or_else(|| {
                error(
                    ErrorCode::INVALID_FUNCTION_ARGUMENT,
                    "conversion to JSON failed: the value is not a JSON text",
                )
            })?;
        out.append_value(json.to_text());
    }
    Ok(Arc::new(out.finish()))
}
