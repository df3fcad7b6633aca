//! What the evaluator does to items: sequences of borrowed or computed JSON values, the
//! accessors' navigation, arithmetic, and the item methods' conversions.

use std::borrow::Cow;

use super::syntax::{ArithOp, Method};
use super::PathError;
use crate::functions::json::value::Json;

/// A sequence of items: borrowed from the input, the parameters or the path's literals
/// where possible, owned where computed.
pub(super) type Seq<'a> = Vec<Cow<'a, Json>>;

pub(super) type Evaluated<'a> = Result<Seq<'a>, PathError>;

/// Picks values out of a JSON value (its members, elements, …), given a key.
type Pick = for<'x> fn(&'x Json, &str) -> Vec<&'x Json>;

pub(super) fn owned<'a>(json: Json) -> Cow<'a, Json> {
    Cow::Owned(json)
}

pub(super) fn path_error(message: impl Into<String>) -> PathError {
    PathError(message.into())
}

pub(super) fn type_error(expected: &str, found: &Json) -> PathError {
    path_error(format!(
        "expected {expected} but found a JSON {}",
        type_name(found)
    ))
}

/// The name `type()` gives a value.
pub(super) fn type_name(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Int(_) | Json::Float(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Applies `pick` to an item: borrowed items give borrowed values, owned ones clones.
pub(super) fn project<'a>(item: &Cow<'a, Json>, key: &str, pick: Pick) -> Seq<'a> {
    match *item {
        Cow::Borrowed(json) => pick(json, key).into_iter().map(Cow::Borrowed).collect(),
        Cow::Owned(ref json) => pick(json, key).into_iter().cloned().map(owned).collect(),
    }
}

pub(super) fn pick_member<'x>(json: &'x Json, key: &str) -> Vec<&'x Json> {
    json.member(key).into_iter().collect()
}

pub(super) fn pick_values<'x>(json: &'x Json, _key: &str) -> Vec<&'x Json> {
    match json {
        Json::Object(members) => members.iter().map(|(_, value)| value).collect(),
        _ => Vec::new(),
    }
}

/// The values of member `key` in `root` and everything nested in it, in preorder (an
/// object's own member before those of its children), walked without recursion.
fn pick_descendants<'x>(root: &'x Json, key: &str) -> Vec<&'x Json> {
    let mut found = Vec::new();
    let mut pending = vec![root];
    while let Some(json) = pending.pop() {
        match json {
            Json::Object(members) => {
                found.extend(json.member(key));
                pending.extend(members.iter().rev().map(|(_, value)| value));
            }
            Json::Array(elements) => pending.extend(elements.iter().rev()),
            _ => {}
        }
    }
    found
}

/// `..key` over a sequence (the same in both modes: arrays are searched, not unwrapped).
pub(super) fn descendants<'a>(items: &[Cow<'a, Json>], key: &str) -> Seq<'a> {
    items
        .iter()
        .flat_map(|item| project(item, key, pick_descendants))
        .collect()
}

/// The elements of an array item, or the item back if it is not an array.
pub(super) fn into_elements(item: Cow<'_, Json>) -> Result<Seq<'_>, Cow<'_, Json>> {
    match item {
        Cow::Borrowed(Json::Array(elements)) => Ok(elements.iter().map(Cow::Borrowed).collect()),
        Cow::Owned(Json::Array(elements)) => Ok(elements.into_iter().map(owned).collect()),
        other => Err(other),
    }
}

/// The sequence with its arrays replaced by their elements (one level).
pub(super) fn unwrap_arrays(items: Seq<'_>) -> Seq<'_> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match into_elements(item) {
            Ok(elements) => out.extend(elements),
            Err(item) => out.push(item),
        }
    }
    out
}

/// A number taken out of an item for arithmetic.
#[derive(Clone, Copy)]
pub(super) enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn float(self) -> f64 {
        match self {
            Number::Int(value) => value as f64,
            Number::Float(value) => value,
        }
    }

    pub(super) fn into_json(self) -> Json {
        match self {
            Number::Int(value) => Json::Int(value),
            Number::Float(value) => Json::Float(value),
        }
    }
}

pub(super) fn number_of(item: &Json) -> Result<Number, PathError> {
    match item {
        Json::Int(value) => Ok(Number::Int(*value)),
        Json::Float(value) => Ok(Number::Float(*value)),
        _ => Err(type_error("a number", item)),
    }
}

/// An integer result, which must fit a `bigint` as in Trino.
fn checked_int(value: Option<i128>) -> Result<i128, PathError> {
    value
        .filter(|value| i64::try_from(*value).is_ok())
        .ok_or_else(|| path_error("numeric value out of range"))
}

/// `left op right`: integers stay exact (division truncates), otherwise doubles.
pub(super) fn arithmetic(op: ArithOp, left: Number, right: Number) -> Result<Number, PathError> {
    let (Number::Int(a), Number::Int(b)) = (left, right) else {
        let result = float_arithmetic(op, left.float(), right.float())?;
        return Ok(Number::Float(result));
    };
    if b == 0 && matches!(op, ArithOp::Divide | ArithOp::Modulo) {
        return Err(path_error("division by zero"));
    }
    let result = match op {
        ArithOp::Add => a.checked_add(b),
        ArithOp::Subtract => a.checked_sub(b),
        ArithOp::Multiply => a.checked_mul(b),
        ArithOp::Divide => a.checked_div(b),
        ArithOp::Modulo => a.checked_rem(b),
    };
    checked_int(result).map(Number::Int)
}

/// `a op b` on doubles; dividing by zero or overflowing to an infinity fails (the result
/// must stay writable as JSON).
fn float_arithmetic(op: ArithOp, a: f64, b: f64) -> Result<f64, PathError> {
    if b == 0.0 && matches!(op, ArithOp::Divide | ArithOp::Modulo) {
        return Err(path_error("division by zero"));
    }
    let result = match op {
        ArithOp::Add => a + b,
        ArithOp::Subtract => a - b,
        ArithOp::Multiply => a * b,
        ArithOp::Divide => a / b,
        ArithOp::Modulo => a % b,
    };
    if result.is_infinite() && a.is_finite() && b.is_finite() {
        return Err(path_error("numeric value out of range"));
    }
    Ok(result)
}

/// `+item` or `-item`.
pub(super) fn signed(item: Cow<'_, Json>, negate: bool) -> Result<Cow<'_, Json>, PathError> {
    let number = number_of(&item)?;
    if !negate {
        return Ok(item);
    }
    let negated = match number {
        Number::Int(value) => Json::Int(checked_int(value.checked_neg())?),
        Number::Float(value) => Json::Float(-value),
    };
    Ok(owned(negated))
}

/// `double()` of an item: numbers and numeric strings.
pub(super) fn double(item: &Json) -> Result<Json, PathError> {
    match item {
        Json::Int(value) => Ok(Json::Float(*value as f64)),
        Json::Float(value) => Ok(Json::Float(*value)),
        Json::String(text) => match text.trim().parse::<f64>() {
            Ok(value) => Ok(Json::Float(value)),
            Err(_) => Err(path_error(format!(
                "cannot convert {} to a double",
                item.to_text()
            ))),
        },
        _ => Err(type_error("a number or a string", item)),
    }
}

/// `ceiling()`, `floor()` or `abs()` of an item (integers stay integers).
pub(super) fn rounded(method: Method, item: &Json) -> Result<Json, PathError> {
    Ok(match (number_of(item)?, method) {
        (Number::Int(value), Method::Abs) => Json::Int(checked_int(value.checked_abs())?),
        (Number::Int(value), _) => Json::Int(value),
        (Number::Float(value), Method::Ceiling) => Json::Float(value.ceil()),
        (Number::Float(value), Method::Floor) => Json::Float(value.floor()),
        (Number::Float(value), _) => Json::Float(value.abs()),
    })
}

#[cfg(test)]
mod tests {
    use crate::functions::json::path::test_support::{check, fails};

    #[test]
    fn arithmetic_expressions() {
        for (path, expected) in [
            ("1 + 2 * 3", "7"),
            ("(1 + 2) * 3", "9"),
            ("2 - 1 - 1", "0"),
            ("8 / 2 / 2", "2"),
            ("7 / 2", "3"),
            ("-7 / 2", "-3"),
            ("7 % 3", "1"),
            ("-7 % 3", "-1"),
            ("1.5 + 1", "2.5"),
            ("10 / 4.0", "2.5"),
            ("-2 * 3", "-6"),
            ("- - 1", "1"),
            ("+1", "1"),
            ("-(1 + 2)", "-3"),
            ("9223372036854775806 + 1", "9223372036854775807"),
        ] {
            check(path, "null", &[expected]);
        }
        for (path, message) in [
            ("9223372036854775807 + 1", "range"),
            ("-9223372036854775807 - 2", "range"),
            ("1 / 0", "division by zero"),
            ("1 % 0", "division by zero"),
            ("1.5 / 0", "division by zero"),
            ("1e308 * 10", "range"),
            (r#""a" + 1"#, "number"),
            ("null + 1", "number"),
            (r#"-"a""#, "number"),
            (r#"+"a""#, "number"),
        ] {
            fails(path, "null", message);
        }

        let input = r#"{"price": 95, "tax": 5.5, "one": [5], "many": [1, 2]}"#;
        check("$.price + $.tax", input, &["100.5"]);
        check("lax $.one + 1", input, &["6"]);
        fails("strict $.one + 1", input, "number");
        fails("lax $.many + 1", input, "single number");
        fails("lax $.missing + 1", input, "single number");
        check("-$.many", input, &["-1", "-2"]);
        check("lax -$.missing", input, &[]);
        fails("strict -$.many", input, "number");
        // The documented paths.
        check("strict ($.price + $.tax)?(@ > 99.9)", input, &["100.5"]);
        let prices = "[10.5, 11.5, 20]";
        check("lax $[0 to 1].floor()?(@ > 10)", prices, &["11.0"]);
        check("lax $[last].abs().floor()", "[1, -2.5]", &["2.0"]);
    }
}
