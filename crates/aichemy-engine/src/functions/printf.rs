//! `format(pattern, args…)`: Trino's format, which is Java's `String.format` in the
//! English locale: `%[index$][flags][width][.precision]conversion` with the conversions
//! `s S b B c C d o x X e E f g G %` and `n`, and dates and times with `t`/`T` and a
//! suffix (`%tY`, `%1$tB`, …). Arguments are read as Java reads Trino's values: text as
//! strings, integers as longs, doubles and reals as doubles, decimals as big decimals,
//! dates and timestamps as dates and date-times.

use std::any::Any;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{ArrayRef, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::json::value::java_double;
use crate::functions::{
    arg_arrays, invalid_argument, is_text, result_too_large, scalar_result, unexpected_parameters,
    MAX_RESULT_BYTES,
};

/// Registers `format`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Format {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

impl ScalarUDFImpl for Format {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.is_empty() || !is_text(&arg_types[0]) {
            return unexpected_parameters("format", arg_types, "format(varchar(x), T…)");
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = arg_arrays(&args)?;
        let mut out = StringBuilder::new();
        for row in 0..rows {
            let values = arrays
                .iter()
                .map(|a| ScalarValue::try_from_array(a, row))
                .collect::<Result<Vec<_>>>()?;
            let pattern = match &values[0] {
                ScalarValue::Utf8(Some(p))
                | ScalarValue::Utf8View(Some(p))
                | ScalarValue::LargeUtf8(Some(p)) => p.clone(),
                _ => {
                    out.append_null();
                    continue;
                }
            };
            let text = format(&pattern, &values[1..]).map_err(invalid_argument)?;
            if out.values_slice().len() + text.len() > MAX_RESULT_BYTES {
                return Err(result_too_large("format"));
            }
            out.append_value(text);
        }
        let result: ArrayRef = Arc::new(out.finish());
        scalar_result(&args.args, result)
    }
}

/// The widest field and the longest precision a specifier may ask for (Java has no bound;
/// a value is built whole in memory).
const MAX_WIDTH: usize = u16::MAX as usize;

/// One `%…` specifier.
#[derive(Debug, Default)]
struct Spec {
    index: Option<usize>,
    previous: bool,
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    group: bool,
    parens: bool,
    alternate: bool,
    width: Option<usize>,
    precision: Option<usize>,
    conversion: char,
    time: Option<char>,
}

/// `pattern` with its specifiers replaced by the values.
pub(crate) fn format(pattern: &str, values: &[ScalarValue]) -> std::result::Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut next = 0usize;
    let mut last: Option<usize> = None;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let (spec, after) = parse_spec(&chars, i + 1)?;
        i = after;
        match spec.conversion {
            '%' => {
                out.push_str(&pad(&spec, "%".into()));
                continue;
            }
            'n' => {
                out.push('\n');
                continue;
            }
            _ => {}
        }
        let index = if spec.previous {
            last.ok_or("Missing format argument for '%<'")?
        } else if let Some(index) = spec.index {
            index
                .checked_sub(1)
                .ok_or("Illegal format argument index 0")?
        } else {
            next += 1;
            next - 1
        };
        last = Some(index);
        let value = values
            .get(index)
            .ok_or_else(|| format!("Format specifier '%{}' has no argument", spec.conversion))?;
        let text = convert(&spec, value)?;
        let text =
            if spec.conversion.is_uppercase() && spec.time.is_none() || spec.conversion == 'T' {
                text.to_uppercase()
            } else {
                text
            };
        out.push_str(&pad(&spec, text));
    }
    Ok(out)
}

fn parse_spec(chars: &[char], mut i: usize) -> std::result::Result<(Spec, usize), String> {
    let mut spec = Spec::default();
    // An argument index is digits followed by '$'.
    let digits_end = (i..chars.len())
        .find(|j| !chars[*j].is_ascii_digit())
        .unwrap_or(chars.len());
    if digits_end > i && chars.get(digits_end) == Some(&'$') {
        let text: String = chars[i..digits_end].iter().collect();
        spec.index = text.parse().ok();
        i = digits_end + 1;
    }
    while let Some(c) = chars.get(i) {
        match c {
            '-' => spec.left = true,
            '0' => spec.zero = true,
            '+' => spec.plus = true,
            ' ' => spec.space = true,
            ',' => spec.group = true,
            '(' => spec.parens = true,
            '#' => spec.alternate = true,
            '<' => spec.previous = true,
            _ => break,
        }
        i += 1;
    }
    let number = |i: &mut usize| -> Option<usize> {
        let start = *i;
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        (*i > start).then(|| chars[start..*i].iter().collect::<String>().parse().ok())?
    };
    spec.width = number(&mut i);
    if chars.get(i) == Some(&'.') {
        i += 1;
        spec.precision = Some(number(&mut i).ok_or("Missing precision in format")?);
    }
    for (what, value) in [("Width", spec.width), ("Precision", spec.precision)] {
        if value.is_some_and(|v| v > MAX_WIDTH) {
            return Err(format!(
                "{what} {} is larger than format allows ({MAX_WIDTH})",
                value.unwrap_or_default()
            ));
        }
    }
    let conversion = *chars
        .get(i)
        .ok_or("Incomplete format specifier at the end")?;
    i += 1;
    spec.conversion = conversion;
    if conversion == 't' || conversion == 'T' {
        spec.time = Some(*chars.get(i).ok_or("Missing date/time conversion suffix")?);
        i += 1;
    } else if !"sSbBcCdoxXeEfgG%n".contains(conversion) {
        return Err(format!("Unknown format conversion: '{conversion}'"));
    }
    Ok((spec, i))
}

/// `text` in the specifier's width.
fn pad(spec: &Spec, text: String) -> String {
    let width = spec.width.unwrap_or(0);
    let length = text.chars().count();
    if length >= width {
        return text;
    }
    let fill = width - length;
    if spec.left {
        return format!("{text}{}", " ".repeat(fill));
    }
    if spec.zero && "doxXeEfgG".contains(spec.conversion) {
        let (sign, digits) = match text.strip_prefix(['-', '+', ' ']) {
            Some(rest) => (&text[..1], rest),
            None => ("", text.as_str()),
        };
        return format!("{sign}{}{digits}", "0".repeat(fill));
    }
    format!("{}{text}", " ".repeat(fill))
}

fn mismatch(spec: &Spec, value: &ScalarValue) -> String {
    format!(
        "{} != {}",
        spec.conversion,
        crate::types::trino_type_name(&value.data_type())
    )
}

/// A number's digits with the specifier's sign and grouping flags.
fn signed(spec: &Spec, negative: bool, digits: String) -> String {
    let digits = if spec.group {
        let (whole, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
        let mut grouped = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if fraction.is_empty() && !digits.contains('.') {
            grouped
        } else {
            format!("{grouped}.{fraction}")
        }
    } else {
        digits
    };
    if negative {
        if spec.parens {
            format!("({digits})")
        } else {
            format!("-{digits}")
        }
    } else if spec.plus {
        format!("+{digits}")
    } else if spec.space {
        format!(" {digits}")
    } else {
        digits
    }
}

fn integer(value: &ScalarValue) -> Option<i128> {
    Some(match value {
        ScalarValue::Int8(Some(v)) => (*v).into(),
        ScalarValue::Int16(Some(v)) => (*v).into(),
        ScalarValue::Int32(Some(v)) => (*v).into(),
        ScalarValue::Int64(Some(v)) => (*v).into(),
        ScalarValue::UInt8(Some(v)) => (*v).into(),
        ScalarValue::UInt16(Some(v)) => (*v).into(),
        ScalarValue::UInt32(Some(v)) => (*v).into(),
        ScalarValue::UInt64(Some(v)) => (*v).into(),
        _ => return None,
    })
}

fn float(value: &ScalarValue) -> Option<f64> {
    match value {
        ScalarValue::Float32(Some(v)) => v.to_string().parse().ok(),
        ScalarValue::Float64(Some(v)) => Some(*v),
        ScalarValue::Decimal128(Some(v), _, scale) => Some(*v as f64 / 10f64.powi((*scale).into())),
        _ => None,
    }
}

/// A value as Java's `toString` prints it.
fn java_text(value: &ScalarValue) -> String {
    match value {
        v if v.is_null() => "null".into(),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s.clone(),
        ScalarValue::Float64(Some(v)) => java_double(*v),
        ScalarValue::Float32(Some(v)) => java_double(v.to_string().parse().unwrap_or(*v as f64)),
        ScalarValue::TimestampSecond(..)
        | ScalarValue::TimestampMillisecond(..)
        | ScalarValue::TimestampMicrosecond(..)
        | ScalarValue::TimestampNanosecond(..) => value.to_string(),
        other => other.to_string(),
    }
}

fn convert(spec: &Spec, value: &ScalarValue) -> std::result::Result<String, String> {
    let lower = spec.conversion.to_ascii_lowercase();
    if let Some(suffix) = spec.time {
        return time(suffix, value).ok_or_else(|| mismatch(spec, value));
    }
    if value.is_null() && lower != 'b' {
        return Ok("null".into());
    }
    let text = match lower {
        's' => java_text(value),
        'b' => match value {
            v if v.is_null() => "false".into(),
            ScalarValue::Boolean(Some(b)) => b.to_string(),
            _ => "true".into(),
        },
        'c' => match integer(value) {
            Some(code) => u32::try_from(code)
                .ok()
                .and_then(char::from_u32)
                .map(String::from)
                .ok_or_else(|| format!("Illegal code point: {code}"))?,
            None => match value {
                ScalarValue::Utf8(Some(s)) if s.chars().count() == 1 => s.clone(),
                _ => return Err(mismatch(spec, value)),
            },
        },
        'd' => {
            let v = integer(value).ok_or_else(|| mismatch(spec, value))?;
            signed(spec, v < 0, v.unsigned_abs().to_string())
        }
        'o' | 'x' => {
            let v = integer(value).ok_or_else(|| mismatch(spec, value))?;
            // Java prints a negative long as its two's complement.
            let bits = if v < 0 { (v as i64) as u64 } else { v as u64 };
            let digits = if lower == 'o' {
                format!("{bits:o}")
            } else {
                format!("{bits:x}")
            };
            match (spec.alternate, lower) {
                (true, 'o') => format!("0{digits}"),
                (true, _) => format!("0x{digits}"),
                _ => digits,
            }
        }
        'f' | 'e' | 'g' => {
            // As in Java, integers are not floating-point arguments.
            let v = float(value).ok_or_else(|| mismatch(spec, value))?;
            if v.is_nan() {
                return Ok("NaN".into());
            }
            if v.is_infinite() {
                return Ok(signed(spec, v < 0.0, "Infinity".into()));
            }
            let precision = spec.precision.unwrap_or(6);
            let magnitude = v.abs();
            let digits = match lower {
                'f' => format!("{magnitude:.precision$}"),
                'e' => java_exponent(magnitude, precision),
                _ => {
                    // %g: scientific below 10⁻⁴ or at 10^precision and above.
                    let precision = precision.max(1);
                    if magnitude != 0.0
                        && (magnitude < 1e-4 || magnitude >= 10f64.powi(precision as i32))
                    {
                        java_exponent(magnitude, precision - 1)
                    } else {
                        let whole = if magnitude == 0.0 {
                            1
                        } else {
                            magnitude.log10().floor() as i64 + 1
                        };
                        let decimals = (precision as i64 - whole).max(0) as usize;
                        format!("{magnitude:.decimals$}")
                    }
                }
            };
            signed(spec, v.is_sign_negative() && v != 0.0, digits)
        }
        _ => return Err(format!("Unknown format conversion: '{}'", spec.conversion)),
    };
    Ok(match spec.precision {
        Some(p) if matches!(lower, 's' | 'b') => text.chars().take(p).collect(),
        _ => text,
    })
}

/// `1.234560e+01` as Java writes it.
fn java_exponent(value: f64, precision: usize) -> String {
    let text = format!("{value:.precision$e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A date or timestamp's part for `%t<suffix>`.
fn time(suffix: char, value: &ScalarValue) -> Option<String> {
    let at: NaiveDateTime = match value {
        ScalarValue::Date32(Some(days)) => {
            NaiveDate::from_num_days_from_ce_opt(719_163 + days)?.and_hms_opt(0, 0, 0)?
        }
        ScalarValue::TimestampSecond(Some(v), _) => {
            chrono::DateTime::from_timestamp(*v, 0)?.naive_utc()
        }
        ScalarValue::TimestampMillisecond(Some(v), _) => {
            chrono::DateTime::from_timestamp_millis(*v)?.naive_utc()
        }
        ScalarValue::TimestampMicrosecond(Some(v), _) => {
            chrono::DateTime::from_timestamp_micros(*v)?.naive_utc()
        }
        ScalarValue::TimestampNanosecond(Some(v), _) => {
            chrono::DateTime::from_timestamp_nanos(*v).naive_utc()
        }
        _ => return None,
    };
    let month = MONTHS[at.month0() as usize];
    let day = DAYS[at.weekday().num_days_from_monday() as usize];
    Some(match suffix {
        'A' => day.into(),
        'a' => day[..3].into(),
        'B' => month.into(),
        'b' | 'h' => month[..3].into(),
        'C' => format!("{:02}", at.year() / 100),
        'Y' => format!("{:04}", at.year()),
        'y' => format!("{:02}", at.year() % 100),
        'm' => format!("{:02}", at.month()),
        'd' => format!("{:02}", at.day()),
        'e' => at.day().to_string(),
        'j' => format!("{:03}", at.ordinal()),
        'H' => format!("{:02}", at.hour()),
        'k' => at.hour().to_string(),
        'I' => format!("{:02}", (at.hour() + 11) % 12 + 1),
        'l' => ((at.hour() + 11) % 12 + 1).to_string(),
        'M' => format!("{:02}", at.minute()),
        'S' => format!("{:02}", at.second()),
        'L' => format!("{:03}", at.nanosecond() / 1_000_000),
        'N' => format!("{:09}", at.nanosecond()),
        'p' => if at.hour() < 12 { "am" } else { "pm" }.into(),
        'R' => format!("{:02}:{:02}", at.hour(), at.minute()),
        'T' => format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second()),
        'D' => format!("{:02}/{:02}/{:02}", at.month(), at.day(), at.year() % 100),
        'F' => format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day()),
        's' => at.and_utc().timestamp().to_string(),
        'Q' => at.and_utc().timestamp_millis().to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.into()))
    }

    #[test]
    fn trinos_documented_examples() {
        let pi = ScalarValue::Float64(Some(std::f64::consts::PI));
        assert_eq!(
            format("%s%%", &[ScalarValue::Int32(Some(123))]).unwrap(),
            "123%"
        );
        assert_eq!(format("%.5f", &[pi]).unwrap(), "3.14159");
        assert_eq!(
            format("%03d", &[ScalarValue::Int32(Some(8))]).unwrap(),
            "008"
        );
        assert_eq!(
            format("%,.2f", &[ScalarValue::Float64(Some(1234567.89))]).unwrap(),
            "1,234,567.89"
        );
        assert_eq!(
            format("%-7s,%7s", &[text("hello"), text("world")]).unwrap(),
            "hello  ,  world"
        );
        assert_eq!(
            format("%2$s %3$s %1$s", &[text("a"), text("b"), text("c")]).unwrap(),
            "b c a"
        );
        let date = ScalarValue::Date32(Some(13333)); // 2006-07-04
        assert_eq!(
            format("%1$tA, %1$tB %1$te, %1$tY", &[date]).unwrap(),
            "Tuesday, July 4, 2006"
        );
    }

    #[test]
    fn other_conversions() {
        assert_eq!(
            format(
                "%x %X %o",
                &[
                    ScalarValue::Int64(Some(255)),
                    ScalarValue::Int64(Some(255)),
                    ScalarValue::Int64(Some(8))
                ]
            )
            .unwrap(),
            "ff FF 10"
        );
        assert_eq!(
            format(
                "%+d %(d",
                &[ScalarValue::Int64(Some(5)), ScalarValue::Int64(Some(-5))]
            )
            .unwrap(),
            "+5 (5)"
        );
        assert_eq!(
            format("%.2e", &[ScalarValue::Float64(Some(12345.678))]).unwrap(),
            "1.23e+04"
        );
        assert_eq!(
            format(
                "%b %S %.2s",
                &[ScalarValue::Boolean(Some(true)), text("ab"), text("xyz")]
            )
            .unwrap(),
            "true AB xy"
        );
        assert!(format("%d", &[text("x")]).is_err());
        assert!(format("%q", &[text("x")]).is_err());
        assert!(format("%s %s", &[text("x")]).is_err());
    }
}
