//! Trino's date formatting and parsing with MySQL's format specifiers (`date_format`,
//! `date_parse`), ISO 8601 dates (`from_iso8601_date`), `human_readable_seconds` and
//! `parse_data_size`.

use std::any::Any;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray, TimestampMillisecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimeUnit};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::datetime::Timestamps;
use crate::functions::{
    invalid_argument as invalid, is_text, scalar_result, unexpected_parameters as unexpected,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    DateFormat,
    DateParse,
    FromIso8601Date,
    HumanReadableSeconds,
    ParseDataSize,
}

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    for kind in [
        Kind::DateFormat,
        Kind::DateParse,
        Kind::FromIso8601Date,
        Kind::HumanReadableSeconds,
        Kind::ParseDataSize,
    ] {
        let arity = match kind {
            Kind::DateFormat | Kind::DateParse => 2,
            _ => 1,
        };
        ctx.register_udf(ScalarUDF::new_from_impl(FormatFunction {
            kind,
            signature: Signature::any(arity, Volatility::Immutable),
        }));
    }
}

/// A MySQL format (`%Y-%m-%d %H:%i:%s`) in chrono's terms.
fn chrono_format(mysql: &str) -> Result<String> {
    let mut out = String::with_capacity(mysql.len() + 8);
    let mut chars = mysql.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(specifier) = chars.next() else {
            out.push_str("%%");
            break;
        };
        out.push_str(match specifier {
            'a' => "%a",
            'b' => "%b",
            'c' => "%-m",
            'd' => "%d",
            'e' => "%-d",
            'f' => "%6f",
            'H' => "%H",
            'h' | 'I' => "%I",
            'i' => "%M",
            'j' => "%j",
            'k' => "%-H",
            'l' => "%-I",
            'M' => "%B",
            'm' => "%m",
            'p' => "%p",
            'r' => "%I:%M:%S %p",
            'S' | 's' => "%S",
            'T' => "%H:%M:%S",
            'W' => "%A",
            'Y' => "%Y",
            'y' => "%y",
            '%' => "%%",
            other => {
                return Err(invalid(format!(
                    "%{other} not supported in date format string"
                )))
            }
        });
    }
    Ok(out)
}

/// A date and time read with a chrono format; the fields the format lacks are those of
/// 1970-01-01 00:00:00, as Trino's `date_parse` fills them.
fn parse_local(text: &str, format: &str) -> Option<NaiveDateTime> {
    use chrono::format::{parse, Parsed, StrftimeItems};
    let mut parsed = Parsed::new();
    parse(&mut parsed, text, StrftimeItems::new(format)).ok()?;
    if parsed.year().is_none() && parsed.year_mod_100().is_none() {
        parsed.set_year(1970).ok()?;
    }
    if parsed.month().is_none() {
        parsed.set_month(1).ok()?;
    }
    if parsed.day().is_none() {
        parsed.set_day(1).ok()?;
    }
    match (parsed.hour_div_12(), parsed.hour_mod_12()) {
        (None, None) => parsed.set_hour(0).ok()?,
        (None, Some(_)) => parsed.set_ampm(false).ok()?,
        _ => {}
    }
    if parsed.minute().is_none() {
        parsed.set_minute(0).ok()?;
    }
    if parsed.second().is_none() {
        parsed.set_second(0).ok()?;
    }
    parsed.to_naive_datetime_with_offset(0).ok()
}

/// An ISO 8601 date: `2020-05-11`, `2020-05`, `2020`, `2020-W10[-1]`, `2020-123`.
fn iso8601_date(text: &str) -> Option<NaiveDate> {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |s: &str| s.parse::<u32>().ok();
    let year = parts
        .first()
        .and_then(|y| (y.len() == 4).then(|| y.parse::<i32>().ok()).flatten())?;
    match parts.as_slice() {
        [_] => NaiveDate::from_ymd_opt(year, 1, 1),
        [_, week, rest @ ..] if week.starts_with('W') && rest.len() <= 1 => {
            let week = number(&week[1..])?;
            let day = rest.first().map_or(Some(1), |d| number(d))?;
            let weekday =
                chrono::Weekday::try_from(u8::try_from(day.checked_sub(1)?).ok()?).ok()?;
            NaiveDate::from_isoywd_opt(year, week, weekday)
        }
        [_, day] if day.len() == 3 => NaiveDate::from_yo_opt(year, number(day)?),
        [_, month] if month.len() == 2 => NaiveDate::from_ymd_opt(year, number(month)?, 1),
        [_, month, day] if month.len() == 2 && day.len() == 2 => {
            NaiveDate::from_ymd_opt(year, number(month)?, number(day)?)
        }
        _ => None,
    }
}

/// `2.3MB` as bytes (units of 1024, the fraction truncated), as a DECIMAL(38,0) value.
fn data_size(text: &str) -> Result<i128> {
    let fail = || invalid(format!("Invalid data size: '{text}'"));
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(fail)?;
    let (number, unit) = text.split_at(split);
    let power = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
        .iter()
        .position(|u| *u == unit.trim())
        .ok_or_else(fail)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || number.matches('.').count() > 1 {
        return Err(fail());
    }
    let digits: i128 = format!("{whole}{fraction}").parse().map_err(|_| fail())?;
    let scale = 10i128.checked_pow(fraction.len() as u32).ok_or_else(fail)?;
    digits
        .checked_mul(1i128 << (10 * power))
        .map(|bytes| bytes / scale)
        .ok_or_else(fail)
}

/// Seconds as weeks, days, hours, minutes and seconds (`1 minute, 36 seconds`).
fn human_readable(seconds: f64) -> Result<String> {
    if !seconds.is_finite() {
        return Err(invalid("Invalid argument found: NaN or Infinity"));
    }
    let mut left = seconds.abs().round() as u64;
    let mut parts = Vec::new();
    for (unit, length) in [
        ("week", 604_800u64),
        ("day", 86_400),
        ("hour", 3_600),
        ("minute", 60),
        ("second", 1),
    ] {
        let count = left / length;
        left %= length;
        if count > 0 {
            let plural = if count == 1 { "" } else { "s" };
            parts.push(format!("{count} {unit}{plural}"));
        }
    }
    Ok(if parts.is_empty() {
        "0 seconds".to_string()
    } else {
        parts.join(", ")
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FormatFunction {
    kind: Kind,
    signature: Signature,
}

impl ScalarUDFImpl for FormatFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        match self.kind {
            Kind::DateFormat => "date_format",
            Kind::DateParse => "date_parse",
            Kind::FromIso8601Date => "from_iso8601_date",
            Kind::HumanReadableSeconds => "human_readable_seconds",
            Kind::ParseDataSize => "parse_data_size",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let text = is_text;
        let fits = match self.kind {
            Kind::DateFormat => {
                matches!(
                    arg_types[0],
                    DataType::Timestamp(..) | DataType::Date32 | DataType::Null
                ) && text(&arg_types[1])
            }
            Kind::DateParse => text(&arg_types[0]) && text(&arg_types[1]),
            Kind::FromIso8601Date => text(&arg_types[0]),
            Kind::HumanReadableSeconds => {
                arg_types[0].is_numeric() || arg_types[0] == DataType::Null
            }
            Kind::ParseDataSize => text(&arg_types[0]),
        };
        if !fits {
            let expected = match self.kind {
                Kind::DateFormat => "date_format(timestamp(p), varchar(x))",
                Kind::DateParse => "date_parse(varchar(x), varchar(y))",
                Kind::FromIso8601Date => "from_iso8601_date(varchar(x))",
                Kind::HumanReadableSeconds => "human_readable_seconds(double)",
                Kind::ParseDataSize => "parse_data_size(varchar(x))",
            };
            return unexpected(self.name(), arg_types, expected);
        }
        Ok(match self.kind {
            Kind::DateFormat | Kind::HumanReadableSeconds => DataType::Utf8,
            Kind::DateParse => DataType::Timestamp(TimeUnit::Millisecond, None),
            Kind::FromIso8601Date => DataType::Date32,
            Kind::ParseDataSize => DataType::Decimal128(38, 0),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result: ArrayRef = match self.kind {
            Kind::DateFormat => {
                // The wall-clock time of the value, in its zone when it has one.
                let values = match arrays[0].data_type() {
                    DataType::Timestamp(..) => arrays[0].clone(),
                    _ => cast(
                        &arrays[0],
                        &DataType::Timestamp(TimeUnit::Microsecond, None),
                    )?,
                };
                let timestamps = Timestamps::of(values.data_type())?.expect("a timestamp type");
                let ints = cast(&values, &DataType::Int64)?;
                let ints = ints.as_primitive::<Int64Type>();
                let formats = cast(&arrays[1], &DataType::Utf8)?;
                let formats = formats.as_string::<i32>();
                let mut out = Vec::with_capacity(ints.len());
                for row in 0..ints.len() {
                    if ints.is_null(row) || formats.is_null(row) {
                        out.push(None);
                        continue;
                    }
                    let format = chrono_format(formats.value(row))?;
                    let time = timestamps.local(ints.value(row))?;
                    out.push(Some(time.format(&format).to_string()));
                }
                Arc::new(StringArray::from(out))
            }
            Kind::DateParse => {
                let texts = cast(&arrays[0], &DataType::Utf8)?;
                let formats = cast(&arrays[1], &DataType::Utf8)?;
                let (texts, formats) = (texts.as_string::<i32>(), formats.as_string::<i32>());
                let mut out = Vec::with_capacity(texts.len());
                for row in 0..texts.len() {
                    if texts.is_null(row) || formats.is_null(row) {
                        out.push(None);
                        continue;
                    }
                    let format = chrono_format(formats.value(row))?;
                    let text = texts.value(row);
                    let parsed = parse_local(text, &format).ok_or_else(|| {
                        invalid(format!(
                            "Invalid format: \"{text}\" for format \"{}\"",
                            formats.value(row)
                        ))
                    })?;
                    out.push(Some(parsed.and_utc().timestamp_millis()));
                }
                Arc::new(TimestampMillisecondArray::from(out))
            }
            Kind::FromIso8601Date => {
                let texts = cast(&arrays[0], &DataType::Utf8)?;
                let texts = texts.as_string::<i32>();
                let out = texts
                    .iter()
                    .map(|text| {
                        text.map(|text| {
                            iso8601_date(text.trim())
                                .map(Date32Type::from_naive_date)
                                .ok_or_else(|| invalid(format!("Invalid format: \"{text}\"")))
                        })
                        .transpose()
                    })
                    .collect::<Result<datafusion::arrow::array::Date32Array>>()?;
                Arc::new(out)
            }
            Kind::ParseDataSize => {
                let texts = cast(&arrays[0], &DataType::Utf8)?;
                let out = texts
                    .as_string::<i32>()
                    .iter()
                    .map(|t| t.map(data_size).transpose())
                    .collect::<Result<datafusion::arrow::array::Decimal128Array>>()?
                    .with_precision_and_scale(38, 0)?;
                Arc::new(out)
            }
            Kind::HumanReadableSeconds => {
                let seconds = cast(&arrays[0], &DataType::Float64)?;
                let out = seconds
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|s| s.map(human_readable).transpose())
                    .collect::<Result<StringArray>>()?;
                Arc::new(out)
            }
        };
        scalar_result(&args.args, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trinos_formats_and_dates() {
        assert_eq!(
            chrono_format("%m-%d-%Y %H:%i:%s").unwrap(),
            "%m-%d-%Y %H:%M:%S"
        );
        assert!(chrono_format("%Q").is_err());
        let date = |t: &str| iso8601_date(t).map(|d| d.to_string());
        assert_eq!(date("2020-05-11").as_deref(), Some("2020-05-11"));
        assert_eq!(date("2020-W10").as_deref(), Some("2020-03-02"));
        assert_eq!(date("2020-123").as_deref(), Some("2020-05-02"));
        assert_eq!(date("2020-05").as_deref(), Some("2020-05-01"));
        assert_eq!(date("20-05-11"), None);
        assert_eq!(human_readable(96.0).unwrap(), "1 minute, 36 seconds");
        assert_eq!(
            human_readable(56363463.0).unwrap(),
            "93 weeks, 1 day, 8 hours, 31 minutes, 3 seconds"
        );
        assert_eq!(human_readable(0.2).unwrap(), "0 seconds");
        assert_eq!(
            parse_local("2022/10/20/05", "%Y/%m/%d/%H").map(|t| t.to_string()),
            Some("2022-10-20 05:00:00".to_string())
        );
        assert_eq!(
            parse_local("05", "%H").map(|t| t.to_string()),
            Some("1970-01-01 05:00:00".to_string())
        );
        assert_eq!(data_size("1B").unwrap(), 1);
        assert_eq!(data_size("1kB").unwrap(), 1024);
        assert_eq!(data_size("2.3MB").unwrap(), 2411724);
        assert!(data_size("2.3 parsecs").is_err());
        assert!(data_size("MB").is_err());
    }
}
