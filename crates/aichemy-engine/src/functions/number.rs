//! Trino's `NUMBER`: a decimal floating-point number of at least 50 significant digits, with
//! `Infinity`, `-Infinity` and `NaN`. A value is kept as its text (`3.14159…`, `1.2E+79`,
//! `NaN`) in a `Utf8` column whose field carries the Trino name `number`, which the protocol
//! sends as a string, as Trino does.
//!
//! - `NUMBER '…'` is `CAST('…' AS NUMBER)` (a token pass in the dialect), and casts to NUMBER
//!   go through `"$cast"`, which calls [`cast_to_number`];
//! - [`NumberPlanner`] plans `+ - * / %` and the comparisons of which one operand is a
//!   NUMBER as the internal `"$number_op"('op', a, b)`: arithmetic at 100
//!   significant digits, `Division by zero` an error, NaN equal to nothing (itself neither)
//!   and ordered after `Infinity`, as Trino's documentation states.

use std::any::Any;
use std::cmp::Ordering;
use std::str::FromStr;
use std::sync::Arc;

use bigdecimal::num_bigint::{BigInt, Sign};
use bigdecimal::{BigDecimal, Zero};
use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::DFSchema;
use datafusion::common::{plan_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    lit, ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use crate::error::{ErrorCode, TrinoError};
use crate::types::field_type_name;

/// The significant digits a NUMBER keeps (Trino promises at least 50).
const DIGITS: u64 = 100;

/// The largest power of ten of a NUMBER (Trino promises at least 1e100).
const MAX_EXPONENT: i64 = 16_383;

/// The internal function of NUMBER operators.
pub(crate) const OPERATOR: &str = "$number_op";

/// Trino's name of the type.
pub(crate) const TYPE_NAME: &str = "number";

/// A NUMBER value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Number {
    Finite(BigDecimal),
    Infinity,
    NegativeInfinity,
    NaN,
}

impl Number {
    /// The number a text names (`1.5`, `-2e30`, `Infinity`, `NaN`), `None` when it names none.
    pub(crate) fn parse(text: &str) -> Option<Number> {
        let text = text.trim();
        match text {
            "NaN" => return Some(Number::NaN),
            "Infinity" | "+Infinity" => return Some(Number::Infinity),
            "-Infinity" => return Some(Number::NegativeInfinity),
            _ => {}
        }
        // Digits, an optional point and exponent: nothing else (BigDecimal reads more).
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        let mantissa = digits.split(['e', 'E']).next().unwrap_or("");
        if mantissa.is_empty()
            || !mantissa.chars().any(|c| c.is_ascii_digit())
            || !mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
            || mantissa.matches('.').count() > 1
        {
            return None;
        }
        BigDecimal::from_str(text)
            .ok()
            .and_then(|value| Number::bounded(value).ok())
    }

    /// A finite value kept to [`DIGITS`] significant digits; out of range past
    /// [`MAX_EXPONENT`], so that no operation aligns numbers of millions of digits.
    fn bounded(value: BigDecimal) -> Result<Number> {
        let value = if value.digits() > DIGITS {
            value.with_prec(DIGITS)
        } else {
            value
        };
        if !value.is_zero() {
            let (_, scale) = value.as_bigint_and_exponent();
            let adjusted = value.digits() as i64 - 1 - scale;
            if adjusted.abs() > MAX_EXPONENT {
                return Err(DataFusionError::External(Box::new(TrinoError::new(
                    ErrorCode::NUMERIC_VALUE_OUT_OF_RANGE,
                    format!("NUMBER out of range: its exponent {adjusted} is past {MAX_EXPONENT}"),
                ))));
            }
        }
        Ok(Number::Finite(value))
    }

    /// The number of a SQL value: a NUMBER's or a text's text, an integer, a decimal, a
    /// double; `None` for NULL.
    fn of_scalar(value: &ScalarValue) -> Result<Option<Number>> {
        if value.is_null() {
            return Ok(None);
        }
        let text = match value {
            ScalarValue::Decimal128(Some(v), _, scale) => {
                let value = BigDecimal::new(BigInt::from(*v), i64::from(*scale));
                return Number::bounded(value).map(Some);
            }
            ScalarValue::Utf8(Some(text))
            | ScalarValue::LargeUtf8(Some(text))
            | ScalarValue::Utf8View(Some(text)) => text.clone(),
            ScalarValue::Float64(Some(v)) => float_text(*v),
            ScalarValue::Float32(Some(v)) => float_text(f64::from(*v)),
            other => other.to_string(),
        };
        match Number::parse(&text) {
            Some(n) => Ok(Some(n)),
            None => Err(cast_error(format!("Cannot cast '{text}' to NUMBER"))),
        }
    }

    /// Trino's text of the number: Java's `BigDecimal.toString()` of its value without
    /// trailing zeros in the fraction (plain digits, or scientific notation for a negative
    /// scale or a number below 1e-6).
    pub(crate) fn text(&self) -> String {
        let value = match self {
            Number::Finite(value) => value,
            Number::Infinity => return "Infinity".into(),
            Number::NegativeInfinity => return "-Infinity".into(),
            Number::NaN => return "NaN".into(),
        };
        if value.is_zero() {
            return "0".into();
        }
        let (mut unscaled, mut scale) = value.as_bigint_and_exponent();
        let ten = BigInt::from(10);
        // Trailing zeros of a fraction go, and those of a number written with an exponent;
        // an integer's stay (`1000`).
        while scale != 0 && (&unscaled % &ten).is_zero() {
            unscaled /= &ten;
            scale -= 1;
        }
        let negative = unscaled.sign() == Sign::Minus;
        let digits = unscaled.magnitude().to_string();
        let adjusted = digits.len() as i64 - 1 - scale;
        let body = if scale >= 0 && adjusted >= -6 {
            let point = digits.len() as i64 - scale;
            if point > 0 {
                let (whole, fraction) = digits.split_at(point as usize);
                if fraction.is_empty() {
                    whole.to_string()
                } else {
                    format!("{whole}.{fraction}")
                }
            } else {
                format!("0.{}{digits}", "0".repeat((-point) as usize))
            }
        } else {
            let (first, rest) = digits.split_at(1);
            let mantissa = if rest.is_empty() {
                first.to_string()
            } else {
                format!("{first}.{rest}")
            };
            let sign = if adjusted >= 0 { "+" } else { "-" };
            format!("{mantissa}E{sign}{}", adjusted.abs())
        };
        if negative {
            format!("-{body}")
        } else {
            body
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Number::NegativeInfinity => 0,
            Number::Finite(_) => 1,
            Number::Infinity => 2,
            Number::NaN => 3,
        }
    }

    /// The order Trino sorts NUMBER in: -Infinity, finite values, Infinity, NaN.
    fn order(&self, other: &Number) -> Ordering {
        match (self, other) {
            (Number::Finite(a), Number::Finite(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn arithmetic(&self, op: &str, other: &Number) -> Result<Number> {
        use Number::*;
        if let (Finite(a), Finite(b)) = (self, other) {
            return Number::bounded(match op {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                "/" | "%" if b.is_zero() => return Err(division_by_zero()),
                "/" => a / b,
                "%" => a % b,
                _ => return plan_err!("{OPERATOR} does not know {op}"),
            });
        }
        if matches!(op, "/" | "%") && matches!(other, Finite(b) if b.is_zero()) {
            return Err(division_by_zero());
        }
        let infinite = |n: &Number| matches!(n, Infinity | NegativeInfinity);
        let sign = |n: &Number| match n {
            Finite(v) if v.is_zero() => 0,
            Finite(v) if v.sign() == Sign::Minus => -1,
            NegativeInfinity => -1,
            _ => 1,
        };
        let signed = |s: i32| if s < 0 { NegativeInfinity } else { Infinity };
        Ok(match (op, self, other) {
            (_, NaN, _) | (_, _, NaN) => NaN,
            ("+", a, b) if infinite(a) && infinite(b) && a != b => NaN,
            ("+", a, _) if infinite(a) => a.clone(),
            ("+", _, b) => b.clone(),
            ("-", a, b) if infinite(a) && infinite(b) && a == b => NaN,
            ("-", a, _) if infinite(a) => a.clone(),
            ("-", _, b) => signed(-sign(b)),
            ("*", a, b) if sign(a) == 0 || sign(b) == 0 => NaN,
            ("*", a, b) => signed(sign(a) * sign(b)),
            ("/", a, b) if infinite(a) && infinite(b) => NaN,
            ("/", a, b) if infinite(a) => signed(sign(a) * sign(b)),
            ("/", _, _) => Finite(BigDecimal::zero()),
            ("%", a, _) if infinite(a) => NaN,
            ("%", a, _) => a.clone(),
            _ => return plan_err!("{OPERATOR} does not know {op}"),
        })
    }

    fn compare(&self, op: &str, other: &Number) -> Result<bool> {
        if matches!(self, Number::NaN) || matches!(other, Number::NaN) {
            return Ok(op == "<>" || op == "!=");
        }
        let order = self.order(other);
        Ok(match op {
            "=" => order == Ordering::Equal,
            "<>" | "!=" => order != Ordering::Equal,
            "<" => order == Ordering::Less,
            "<=" => order != Ordering::Greater,
            ">" => order == Ordering::Greater,
            ">=" => order != Ordering::Less,
            _ => return plan_err!("{OPERATOR} does not know {op}"),
        })
    }
}

/// A double's text as a number's: Rust writes `inf` and `NaN`, Trino `Infinity`.
fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{v:e}")
    }
}

fn cast_error(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::INVALID_CAST_ARGUMENT,
        message,
    )))
}

fn division_by_zero() -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::DIVISION_BY_ZERO,
        "Division by zero",
    )))
}

/// Whether a field holds NUMBER values.
pub(crate) fn is_number(field: &Field) -> bool {
    field_type_name(field) == TYPE_NAME
}

/// `input` cast to NUMBER: its values' text in Trino's form; `try_cast` answers NULL for a
/// value that names no number.
pub(crate) fn cast_to_number(input: &ArrayRef, try_cast: bool) -> Result<ArrayRef> {
    let mut out = StringBuilder::new();
    for row in 0..input.len() {
        match Number::of_scalar(&ScalarValue::try_from_array(input, row)?) {
            Ok(Some(n)) => out.append_value(n.text()),
            Ok(None) => out.append_null(),
            Err(_) if try_cast => out.append_null(),
            Err(e) => return Err(e),
        }
    }
    Ok(Arc::new(out.finish()))
}

/// Plans the arithmetic operators and comparisons of which one operand is a NUMBER as
/// `"$number_op"`, where DataFusion would add or compare texts (or refuse to).
#[derive(Debug)]
pub(crate) struct NumberPlanner;

impl ExprPlanner for NumberPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let symbol = match expr.op {
            BinaryOperator::Plus => "+",
            BinaryOperator::Minus => "-",
            BinaryOperator::Multiply => "*",
            BinaryOperator::Divide => "/",
            BinaryOperator::Modulo => "%",
            BinaryOperator::Eq => "=",
            BinaryOperator::NotEq => "<>",
            BinaryOperator::Lt => "<",
            BinaryOperator::LtEq => "<=",
            BinaryOperator::Gt => ">",
            BinaryOperator::GtEq => ">=",
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let number = |e: &Expr| e.to_field(schema).is_ok_and(|(_, f)| is_number(&f));
        if !number(&expr.left) && !number(&expr.right) {
            return Ok(PlannerResult::Original(expr));
        }
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(
                Arc::new(ScalarUDF::new_from_impl(NumberOperator::new())),
                vec![lit(symbol), expr.left, expr.right],
            ),
        )))
    }
}

/// `"$number_op"('op', a, b)`: an arithmetic operator or comparison of which one operand is
/// a NUMBER (the other may be any number).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct NumberOperator {
    signature: Signature,
}

impl NumberOperator {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::any(3, Volatility::Immutable),
        }
    }
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "=" | "<>" | "!=" | "<" | "<=" | ">" | ">=")
}

fn operator_of(value: Option<&ScalarValue>) -> Result<String> {
    match value {
        Some(ScalarValue::Utf8(Some(op))) => Ok(op.clone()),
        _ => plan_err!("{OPERATOR} takes its operator as a constant"),
    }
}

impl ScalarUDFImpl for NumberOperator {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        OPERATOR
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("{OPERATOR} answers its return field from its arguments")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let op = operator_of(args.scalar_arguments[0])?;
        Ok(Arc::new(if is_comparison(&op) {
            Field::new(OPERATOR, DataType::Boolean, true)
        } else {
            crate::types::DeclaredType {
                arrow: DataType::Utf8,
                trino: TYPE_NAME.into(),
            }
            .field(OPERATOR, true)
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let op = match &args.args[0] {
            ColumnarValue::Scalar(value) => operator_of(Some(value))?,
            ColumnarValue::Array(_) => return plan_err!("{OPERATOR} takes a constant operator"),
        };
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if all_scalar { 1 } else { args.number_rows };
        let (left, right) = (args.args[1].to_array(n)?, args.args[2].to_array(n)?);
        let operand = |array: &ArrayRef, row: usize| -> Result<Option<Number>> {
            Number::of_scalar(&ScalarValue::try_from_array(array, row)?)
        };
        let result: ArrayRef = if is_comparison(&op) {
            let mut out = BooleanBuilder::with_capacity(n);
            for row in 0..n {
                match (operand(&left, row)?, operand(&right, row)?) {
                    (Some(a), Some(b)) => out.append_value(a.compare(&op, &b)?),
                    _ => out.append_null(),
                }
            }
            Arc::new(out.finish())
        } else {
            let mut out = StringBuilder::new();
            for row in 0..n {
                match (operand(&left, row)?, operand(&right, row)?) {
                    (Some(a), Some(b)) => out.append_value(a.arithmetic(&op, &b)?.text()),
                    _ => out.append_null(),
                }
            }
            Arc::new(out.finish())
        };
        Ok(if all_scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?)
        } else {
            ColumnarValue::Array(result)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        Number::parse(s).expect("a number").text()
    }

    #[test]
    fn writes_numbers_as_trino_does() {
        assert_eq!(
            text("3.1415926535897932384626433832795028841971693993751"),
            "3.1415926535897932384626433832795028841971693993751"
        );
        assert_eq!(
            text("12345678901234567890123456789012345678901234567890e30"),
            "1.234567890123456789012345678901234567890123456789E+79"
        );
        assert_eq!(text("10.300"), "10.3");
        assert_eq!(text("1234567890"), "1234567890");
        assert_eq!(text("1e3"), "1E+3");
        assert_eq!(text("-0.0000001"), "-1E-7");
        assert_eq!(text("0.000"), "0");
        assert_eq!(text("NaN"), "NaN");
        assert!(Number::parse("1.2.3").is_none());
        assert!(Number::parse("1e1000000000").is_none());
        let long = format!("1{}", "2".repeat(149));
        assert_eq!(text(&long).len(), "1.".len() + 99 + "E+149".len());
        assert!(Number::parse("abc").is_none());
    }

    #[test]
    fn arithmetic_and_comparisons_follow_the_documentation() {
        let n = |s: &str| Number::parse(s).expect("a number");
        assert_eq!(n("1").arithmetic("/", &n("3")).unwrap().text().len(), 102);
        assert!(n("1").arithmetic("/", &n("0")).is_err());
        assert!(!n("NaN").compare("=", &n("NaN")).unwrap());
        assert!(n("NaN").compare("<>", &n("NaN")).unwrap());
        assert!(n("Infinity").compare(">", &n("1e100")).unwrap());
        assert_eq!(
            n("Infinity").arithmetic("-", &n("Infinity")).unwrap(),
            Number::NaN
        );
        assert_eq!(n("0.1").arithmetic("+", &n("0.2")).unwrap().text(), "0.3");
        assert!(n("1e16000").arithmetic("*", &n("1e16000")).is_err());
    }
}
