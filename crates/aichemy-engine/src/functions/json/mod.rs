//! Trino's JSON type and functions. A JSON value is its text in a `Utf8` column whose field
//! carries the Trino name `json` (so clients see the type `json`).
//!
//! - `value.rs`: the JSON value model, its parser and Trino's way of writing it;
//! - `cast.rs`: casts to and from JSON (and to maps), `"$cast"`;
//! - `path/`: the SQL/JSON path language (lexer, parser, evaluator);
//! - `sql.rs`: the SQL/JSON functions `json_exists`, `json_value`, `json_query`,
//!   `json_array`, `json_object`;
//! - `clauses.rs`: their clauses (`WITH ARRAY WRAPPER`, `RETURNING`, `KEY … VALUE`, …),
//!   lowered from the token stream to plain arguments;
//! - this file: `json_parse`, `json_format`, `is_json_scalar`, `json_array_contains`,
//!   `json_array_get`, `json_array_length`, `json_extract`, `json_extract_scalar` and
//!   `json_size`, with Trino's JSONPath subset for extraction (`$.a.b`, `$[0]`, `$["a b"]`).

pub(crate) mod cast;
pub(crate) mod clauses;
mod path;
mod sql;
pub(crate) mod value;

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder, Int64Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::{
    arg_arrays, invalid_argument, is_text, scalar_result, unexpected_parameters,
};
use cast::strings;
pub(crate) use value::Json;

/// A field of Trino's `json` type.
pub(crate) fn json_field(name: &str) -> Field {
    crate::types::DeclaredType {
        arrow: DataType::Utf8,
        trino: "json".into(),
    }
    .field(name, true)
}

/// Registers every JSON function.
pub fn register(ctx: &SessionContext) {
    for kind in Kind::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(JsonFunction::new(kind)));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(cast::Cast::new(false)));
    ctx.register_udf(ScalarUDF::new_from_impl(cast::Cast::new(true)));
    sql::register(ctx);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Parse,
    Format,
    IsScalar,
    ArrayContains,
    ArrayGet,
    ArrayLength,
    Extract,
    ExtractScalar,
    Size,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Parse,
        Kind::Format,
        Kind::IsScalar,
        Kind::ArrayContains,
        Kind::ArrayGet,
        Kind::ArrayLength,
        Kind::Extract,
        Kind::ExtractScalar,
        Kind::Size,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Parse => "json_parse",
            Kind::Format => "json_format",
            Kind::IsScalar => "is_json_scalar",
            Kind::ArrayContains => "json_array_contains",
            Kind::ArrayGet => "json_array_get",
            Kind::ArrayLength => "json_array_length",
            Kind::Extract => "json_extract",
            Kind::ExtractScalar => "json_extract_scalar",
            Kind::Size => "json_size",
        }
    }

    fn arguments(self) -> usize {
        match self {
            Kind::Parse | Kind::Format | Kind::IsScalar | Kind::ArrayLength => 1,
            _ => 2,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Parse => "json_parse(varchar)",
            Kind::Format => "json_format(json)",
            Kind::IsScalar => "is_json_scalar(json), is_json_scalar(varchar)",
            Kind::ArrayContains => "json_array_contains(json, boolean|bigint|double|varchar)",
            Kind::ArrayGet => "json_array_get(json, bigint)",
            Kind::ArrayLength => "json_array_length(json)",
            Kind::Extract => "json_extract(json, JsonPath)",
            Kind::ExtractScalar => "json_extract_scalar(json, JsonPath)",
            Kind::Size => "json_size(json, JsonPath)",
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonFunction {
    kind: Kind,
    signature: Signature,
}

impl JsonFunction {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for JsonFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let kind = self.kind;
        let wrong = || unexpected_parameters(kind.name(), arg_types, kind.expected());
        if arg_types.len() != kind.arguments() || !is_text(&arg_types[0]) {
            return wrong();
        }
        let mut types = vec![DataType::Utf8];
        if let Some(second) = arg_types.get(1) {
            types.push(match kind {
                Kind::ArrayGet if second.is_integer() || *second == DataType::Null => {
                    DataType::Int64
                }
                Kind::ArrayContains => match second {
                    DataType::Boolean => DataType::Boolean,
                    t if t.is_integer() => DataType::Int64,
                    t if t.is_numeric() => DataType::Float64,
                    t if is_text(t) => DataType::Utf8,
                    _ => return wrong(),
                },
                Kind::Extract | Kind::ExtractScalar | Kind::Size if is_text(second) => {
                    DataType::Utf8
                }
                _ => return wrong(),
            });
        }
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!(
            "{} answers its return field from its arguments",
            self.name()
        )
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        let name = self.name();
        Ok(Arc::new(match self.kind {
            Kind::Parse | Kind::ArrayGet | Kind::Extract => json_field(name),
            Kind::Format | Kind::ExtractScalar => Field::new(name, DataType::Utf8, true),
            Kind::IsScalar | Kind::ArrayContains => Field::new(name, DataType::Boolean, true),
            Kind::ArrayLength | Kind::Size => Field::new(name, DataType::Int64, true),
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = arg_arrays(&args)?;
        let texts = strings(&arrays[0])?;
        let result = match self.kind {
            Kind::Parse => text_rows(&texts, |text| {
                Json::parse(text)
                    .map(|json| Some(json.to_sorted_text()))
                    .map_err(|_| {
                        invalid_argument(format!("Cannot convert value to JSON: '{text}'"))
                    })
            })?,
            Kind::Format => text_rows(&texts, |text| Ok(Some(text.to_string())))?,
            Kind::IsScalar => {
                let mut out = BooleanBuilder::with_capacity(rows);
                for text in texts.iter() {
                    match text {
                        None => out.append_null(),
                        Some(text) => {
                            let json = Json::parse(text).map_err(|_| {
                                invalid_argument(format!("Invalid JSON value: {text}"))
                            })?;
                            out.append_value(json.is_scalar());
                        }
                    }
                }
                Arc::new(out.finish()) as ArrayRef
            }
            Kind::ArrayContains => array_contains(&texts, &arrays[1])?,
            Kind::ArrayGet => {
                let index = arrays[1]
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>();
                let mut out = StringBuilder::new();
                for row in 0..rows {
                    let at = index.filter(|i| i.is_valid(row)).map(|i| i.value(row));
                    let item = match (texts.is_valid(row).then(|| texts.value(row)), at) {
                        (Some(text), Some(at)) => array_item(text, at),
                        _ => None,
                    };
                    out.append_option(item);
                }
                Arc::new(out.finish())
            }
            Kind::ArrayLength => {
                let mut out = Int64Builder::with_capacity(rows);
                for text in texts.iter() {
                    out.append_option(text.and_then(|t| match Json::parse(t) {
                        Ok(Json::Array(items)) => Some(items.len() as i64),
                        _ => None,
                    }));
                }
                Arc::new(out.finish())
            }
            Kind::Extract | Kind::ExtractScalar | Kind::Size => {
                let paths = strings(&arrays[1])?;
                extract(self.kind, &texts, &paths)?
            }
        };
        scalar_result(&args.args, result)
    }
}

/// One text result per row; NULL in, NULL out.
fn text_rows(
    texts: &datafusion::arrow::array::StringArray,
    mut each: impl FnMut(&str) -> Result<Option<String>>,
) -> Result<ArrayRef> {
    let mut out = StringBuilder::new();
    for text in texts.iter() {
        match text {
            None => out.append_null(),
            Some(text) => out.append_option(each(text)?),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// `json_array_get`: the element at `at` (from the end when negative), a string element
/// without its quotes as Trino's deprecated function gives it.
fn array_item(text: &str, at: i64) -> Option<String> {
    let Ok(Json::Array(items)) = Json::parse(text) else {
        return None;
    };
    let index = if at < 0 {
        items.len().checked_sub(at.unsigned_abs() as usize)?
    } else {
        at as usize
    };
    match items.get(index)? {
        Json::String(s) => Some(s.clone()),
        other => Some(other.to_text()),
    }
}

fn array_contains(
    texts: &datafusion::arrow::array::StringArray,
    values: &ArrayRef,
) -> Result<ArrayRef> {
    let mut out = BooleanBuilder::with_capacity(texts.len());
    for row in 0..texts.len() {
        let value = ScalarValue::try_from_array(values, row)?;
        if !texts.is_valid(row) || value.is_null() {
            out.append_null();
            continue;
        }
        let Ok(Json::Array(items)) = Json::parse(texts.value(row)) else {
            out.append_null();
            continue;
        };
        let found = items.iter().any(|item| match (&value, item) {
            (ScalarValue::Boolean(Some(b)), Json::Bool(x)) => b == x,
            (ScalarValue::Int64(Some(v)), Json::Int(x)) => i128::from(*v) == *x,
            (ScalarValue::Float64(Some(v)), Json::Int(x)) => *v == *x as f64,
            (ScalarValue::Float64(Some(v)), Json::Float(x)) => v == x,
            (ScalarValue::Utf8(Some(v)), Json::String(x)) => v == x,
            _ => false,
        });
        out.append_value(found);
    }
    Ok(Arc::new(out.finish()))
}

/// One step of Trino's extraction path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn invalid_path(path: &str) -> datafusion::error::DataFusionError {
    invalid_argument(format!("Invalid JSON path: '{path}'"))
}

/// Parses Trino's JSONPath subset: `$`, then `.name`, `[index]`, `["name"]` or `[name]`.
fn extraction_path(path: &str) -> Result<Vec<Step>> {
    let rest = path.trim();
    let Some(mut rest) = rest.strip_prefix('$') else {
        return Err(invalid_path(path));
    };
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() || name.contains([' ', ']', '"']) {
                return Err(invalid_path(path));
            }
            steps.push(Step::Key(name.to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let (inside, after) = if let Some(quoted) = after.strip_prefix('"') {
                let end = quoted.find('"').ok_or_else(|| invalid_path(path))?;
                let after = quoted[end + 1..]
                    .strip_prefix(']')
                    .ok_or_else(|| invalid_path(path))?;
                steps.push(Step::Key(quoted[..end].to_string()));
                rest = after;
                continue;
            } else {
                let end = after.find(']').ok_or_else(|| invalid_path(path))?;
                (&after[..end], &after[end + 1..])
            };
            let inside = inside.trim();
            if inside.is_empty() {
                return Err(invalid_path(path));
            }
            steps.push(match inside.parse::<usize>() {
                Ok(index) => Step::Index(index),
                Err(_) => Step::Key(inside.to_string()),
            });
            rest = after;
        } else {
            return Err(invalid_path(path));
        }
    }
    Ok(steps)
}

fn follow<'a>(mut json: &'a Json, steps: &[Step]) -> Option<&'a Json> {
    for step in steps {
        json = match (step, json) {
            (Step::Key(key), Json::Object(_)) => json.member(key)?,
            (Step::Index(i), Json::Array(items)) => items.get(*i)?,
            (Step::Index(i), Json::Object(_)) => json.member(&i.to_string())?,
            _ => return None,
        };
    }
    Some(json)
}

/// `json_extract`, `json_extract_scalar` and `json_size`: NULL where the text is not JSON
/// or the path selects nothing.
fn extract(
    kind: Kind,
    texts: &datafusion::arrow::array::StringArray,
    paths: &datafusion::arrow::array::StringArray,
) -> Result<ArrayRef> {
    let mut parsed: Option<(String, Vec<Step>)> = None;
    let mut text_out = StringBuilder::new();
    let mut size_out = Int64Builder::new();
    for row in 0..texts.len() {
        let found = if texts.is_valid(row) && paths.is_valid(row) {
            let path = paths.value(row);
            if parsed.as_ref().is_none_or(|(p, _)| p != path) {
                parsed = Some((path.to_string(), extraction_path(path)?));
            }
            let steps = parsed.as_ref().map_or(&[][..], |(_, s)| s.as_slice());
            Json::parse(texts.value(row))
                .ok()
                .and_then(|json| follow(&json, steps).cloned())
        } else {
            None
        };
        match kind {
            Kind::Extract => text_out.append_option(found.map(|j| j.to_text())),
            Kind::ExtractScalar => text_out.append_option(found.and_then(|j| j.scalar_text())),
            _ => size_out.append_option(found.map(|j| match j {
                Json::Array(items) => items.len() as i64,
                Json::Object(members) => members.len() as i64,
                _ => 0,
            })),
        }
    }
    Ok(match kind {
        Kind::Size => Arc::new(size_out.finish()),
        _ => Arc::new(text_out.finish()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction_paths_read_trinos_subset() {
        assert_eq!(
            extraction_path("$.store.book[0].author").unwrap(),
            vec![
                Step::Key("store".into()),
                Step::Key("book".into()),
                Step::Index(0),
                Step::Key("author".into())
            ]
        );
        assert_eq!(
            extraction_path("$.store[\"book name\"]").unwrap(),
            vec![Step::Key("store".into()), Step::Key("book name".into())]
        );
        assert_eq!(
            extraction_path("$.store[book]").unwrap(),
            vec![Step::Key("store".into()), Step::Key("book".into())]
        );
        for bad in ["", "store", "$.", "$[", "$[0", "$x"] {
            assert!(extraction_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn array_items_count_from_either_end() {
        let text = r#"["a", [3, 9], "c"]"#;
        assert_eq!(array_item(text, 0).as_deref(), Some("a"));
        assert_eq!(array_item(text, 1).as_deref(), Some("[3,9]"));
        assert_eq!(array_item(text, -1).as_deref(), Some("c"));
        assert_eq!(array_item(text, 10), None);
        assert_eq!(array_item(text, -10), None);
    }
}
