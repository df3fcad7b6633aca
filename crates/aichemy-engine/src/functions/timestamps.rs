//! Trino's functions on time zones, ISO 8601 text and durations:
//! - `at_timezone(ts, zone)`: the same instant in another zone; `with_timezone(ts, zone)`:
//!   a timestamp without zone read as local time in `zone`;
//! - `timezone(ts)`, `timezone_hour(ts)`, `timezone_minute(ts)`: a zoned timestamp's zone
//!   and its offset at that instant;
//! - `to_iso8601(x)`, `from_iso8601_timestamp(s)`, `from_iso8601_timestamp_nanos(s)`
//!   (read as UTC where the text names no offset), `from_unixtime_nanos(n)`;
//! - `to_milliseconds(interval)`, `parse_duration(s)` (`'3.81 d'`, `'42.8ms'`);
//! - `format_datetime(ts, pattern)` and `parse_datetime(s, pattern)` with Joda-Time
//!   patterns (`yyyy-MM-dd HH:mm:ss.SSS`, `EEE, d MMM yyyy`, …), as Trino reads them.

use std::any::Any;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Offset, TimeZone, Utc};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, IntervalMonthDayNano, TimeUnit};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::invalid_argument;
use crate::functions::row_function::{text, Arg, RowFunction};

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    let config = ctx.state().config_options().clone();
    for nanos in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(FromIso8601::new(nanos, &config)));
    }
    for convert in [true, false] {
        ctx.register_udf(ScalarUDF::new_from_impl(Rezone {
            convert,
            signature: Signature::any(2, Volatility::Immutable),
        }));
    }
    let any: &'static [&'static [Arg]] = &[&[Arg::Any]];
    let one_text: &'static [&'static [Arg]] = &[&[Arg::Text]];
    for function in [
        RowFunction::new(
            "timezone",
            any,
            "timezone(timestamp(p) with time zone)",
            zoned(DataType::Utf8),
            |args, _| {
                Ok(ScalarValue::Utf8(Some(
                    trino_zone(zone_of(&args[0]).unwrap_or("UTC")).into(),
                )))
            },
        ),
        RowFunction::new(
            "timezone_hour",
            any,
            "timezone_hour(timestamp(p) with time zone)",
            zoned(DataType::Int64),
            |args, _| Ok(ScalarValue::Int64(Some(offset_seconds(&args[0])? / 3600))),
        ),
        RowFunction::new(
            "timezone_minute",
            any,
            "timezone_minute(timestamp(p) with time zone)",
            zoned(DataType::Int64),
            |args, _| {
                Ok(ScalarValue::Int64(Some(
                    offset_seconds(&args[0])? / 60 % 60,
                )))
            },
        ),
        RowFunction::new(
            "to_iso8601",
            any,
            "to_iso8601(date), to_iso8601(timestamp(p)), to_iso8601(timestamp(p) with time zone)",
            |types| match types[0] {
                DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => Ok(DataType::Utf8),
                ref other => plan_err!(
                    "Unexpected parameters ({}) for function to_iso8601",
                    crate::types::trino_type_name(other)
                ),
            },
            |args, _| iso8601(&args[0]).map(|t| ScalarValue::Utf8(Some(t))),
        ),
        RowFunction::new(
            "from_unixtime_nanos",
            &[&[Arg::Int], &[Arg::Any]],
            "from_unixtime_nanos(bigint), from_unixtime_nanos(decimal(p,s))",
            |types| match types[0] {
                ref t if t.is_numeric() || *t == DataType::Null => Ok(DataType::Timestamp(
                    TimeUnit::Nanosecond,
                    Some("UTC".into()),
                )),
                ref other => plan_err!(
                    "Unexpected parameters ({}) for function from_unixtime_nanos",
                    crate::types::trino_type_name(other)
                ),
            },
            |args, _| {
                let nanos = match &args[0] {
                    ScalarValue::Int64(Some(v)) => *v,
                    ScalarValue::Decimal128(Some(v), _, scale) => {
                        let unit = 10i128.pow(u32::from(scale.unsigned_abs()));
                        let rounded = (v + v.signum() * unit / 2) / unit;
                        i64::try_from(rounded)
                            .map_err(|_| invalid_argument("Value out of range"))?
                    }
                    other => match other.cast_to(&DataType::Float64)? {
                        ScalarValue::Float64(Some(f)) => f.round() as i64,
                        _ => return Err(invalid_argument("Invalid number of nanoseconds")),
                    },
                };
                Ok(ScalarValue::TimestampNanosecond(
                    Some(nanos),
                    Some("UTC".into()),
                ))
            },
        ),
        RowFunction::new(
            "to_milliseconds",
            any,
            "to_milliseconds(interval day to second)",
            |types| match types[0] {
                DataType::Interval(_) | DataType::Duration(_) | DataType::Null => {
                    Ok(DataType::Int64)
                }
                ref other => plan_err!(
                    "Unexpected parameters ({}) for function to_milliseconds",
                    crate::types::trino_type_name(other)
                ),
            },
            |args, _| {
                let millis = match &args[0] {
                    ScalarValue::IntervalDayTime(Some(v)) => {
                        i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds)
                    }
                    ScalarValue::IntervalMonthDayNano(Some(v)) => {
                        i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000
                    }
                    ScalarValue::DurationMillisecond(Some(v)) => *v,
                    ScalarValue::DurationMicrosecond(Some(v)) => v / 1_000,
                    ScalarValue::DurationNanosecond(Some(v)) => v / 1_000_000,
                    ScalarValue::DurationSecond(Some(v)) => v * 1_000,
                    _ => {
                        return Err(invalid_argument(
                            "to_milliseconds takes an interval day to second",
                        ))
                    }
                };
                Ok(ScalarValue::Int64(Some(millis)))
            },
        ),
        RowFunction::new(
            "parse_duration",
            one_text,
            "parse_duration(varchar)",
            |_| {
                Ok(DataType::Interval(
                    datafusion::arrow::datatypes::IntervalUnit::MonthDayNano,
                ))
            },
            |args, _| {
                let nanos = parse_duration(text(&args[0]))?;
                let day = 86_400_000_000_000i128;
                let days = i32::try_from(nanos / day)
                    .map_err(|_| invalid_argument("duration is too large"))?;
                Ok(ScalarValue::IntervalMonthDayNano(Some(
                    IntervalMonthDayNano::new(0, days, (nanos % day) as i64),
                )))
            },
        ),
        RowFunction::new(
            "format_datetime",
            &[&[Arg::Any, Arg::Text]],
            "format_datetime(timestamp(p), varchar), format_datetime(timestamp(p) with time zone, varchar)",
            |types| match types[0] {
                DataType::Timestamp(..) | DataType::Date32 | DataType::Null => Ok(DataType::Utf8),
                ref other => plan_err!(
                    "Unexpected parameters ({}, varchar) for function format_datetime",
                    crate::types::trino_type_name(other)
                ),
            },
            |args, _| {
                let pattern = joda_pattern(text(&args[1]))?;
                let nanos = match &args[0] {
                    ScalarValue::Date32(Some(days)) => i64::from(*days) * 86_400_000_000_000,
                    other => instant_nanos(other).ok_or_else(|| invalid_argument("Invalid timestamp"))?,
                };
                let utc = DateTime::<Utc>::from_timestamp_nanos(nanos);
                let text = match zone_of(&args[0]) {
                    Some(zone) => utc.with_timezone(&parse_zone(zone)?).format(&pattern).to_string(),
                    None => utc.naive_utc().format(&pattern).to_string(),
                };
                Ok(ScalarValue::Utf8(Some(text)))
            },
        ),
        RowFunction::new(
            "parse_datetime",
            &[&[Arg::Text, Arg::Text]],
            "parse_datetime(varchar, varchar)",
            |_| Ok(DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))),
            |args, _| {
                let (input, joda) = (text(&args[0]), text(&args[1]));
                let pattern = joda_pattern(joda)?;
                let invalid = || invalid_argument(format!("Invalid format: \"{input}\""));
                let mut parsed = chrono::format::Parsed::new();
                chrono::format::parse(&mut parsed, input, chrono::format::StrftimeItems::new(&pattern))
                    .map_err(|_| invalid())?;
                // Fields the pattern leaves out are Joda's defaults: midnight, UTC. A
                // setter fails, and changes nothing, where the text gave the field.
                let _ = parsed.set_hour(0);
                let _ = parsed.set_minute(0);
                let _ = parsed.set_second(0);
                let _ = parsed.set_nanosecond(0);
                let _ = parsed.set_offset(0);
                let at = parsed.to_datetime().map_err(|_| invalid())?;
                Ok(ScalarValue::TimestampMillisecond(Some(at.timestamp_millis()), Some("UTC".into())))
            },
        ),
    ] {
        ctx.register_udf(function.udf());
    }
}

/// A Joda-Time pattern as a chrono format: letters repeated `n` times (`yyyy`, `MMM`,
/// `SSS`), text quoted with `'`.
fn joda_pattern(joda: &str) -> Result<String> {
    let chars: Vec<char> = joda.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // 'text' is literal; '' is one quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            while j < chars.len() && chars[j] != '\'' {
                push_literal(&mut out, chars[j]);
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut out, c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        let item = match (c, n) {
            ('y' | 'Y' | 'x', 2) => "%y".to_string(),
            ('y' | 'Y' | 'x', _) => "%Y".to_string(),
            ('M', 1) => "%-m".to_string(),
            ('M', 2) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('M', _) => "%B".to_string(),
            ('d', 1) => "%-d".to_string(),
            ('d', _) => "%d".to_string(),
            ('D', _) => "%j".to_string(),
            ('H', 1) => "%-H".to_string(),
            ('H', _) => "%H".to_string(),
            ('k', _) => "%k".to_string(),
            ('h', 1) => "%-I".to_string(),
            ('h', _) => "%I".to_string(),
            ('K', _) => "%-I".to_string(),
            ('m', 1) => "%-M".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', 1) => "%-S".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', n) if n <= 3 => "%3f".to_string(),
            ('S', n) if n <= 6 => "%6f".to_string(),
            ('S', _) => "%9f".to_string(),
            ('a', _) => "%p".to_string(),
            ('E', n) if n <= 3 => "%a".to_string(),
            ('E', _) => "%A".to_string(),
            ('e', _) => "%u".to_string(),
            ('w', _) => "%V".to_string(),
            ('Z', 1) => "%z".to_string(),
            ('Z', 2) => "%:z".to_string(),
            ('Z', _) | ('z', _) => "%Z".to_string(),
            ('G', _) => "AD".to_string(),
            (other, _) => {
                return Err(invalid_argument(format!(
                    "Illegal pattern component: {}",
                    other.to_string().repeat(n)
                )))
            }
        };
        out.push_str(&item);
        i += n;
    }
    Ok(out)
}

/// A character of a pattern's text, escaped for chrono.
fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// A result type for functions of a zoned timestamp.
fn zoned(returns: DataType) -> fn(&[DataType]) -> Result<DataType> {
    match returns {
        DataType::Utf8 => |types| match types[0] {
            DataType::Timestamp(_, Some(_)) | DataType::Null => Ok(DataType::Utf8),
            ref other => plan_err!(
                "Unexpected parameters ({}): expected timestamp(p) with time zone",
                crate::types::trino_type_name(other)
            ),
        },
        _ => |types| match types[0] {
            DataType::Timestamp(_, Some(_)) | DataType::Null => Ok(DataType::Int64),
            ref other => plan_err!(
                "Unexpected parameters ({}): expected timestamp(p) with time zone",
                crate::types::trino_type_name(other)
            ),
        },
    }
}

/// Trino's name of a time zone: a zero offset is `UTC`.
pub(crate) fn trino_zone(zone: &str) -> &str {
    match zone {
        "+00:00" | "Z" | "z" | "utc" | "Etc/UTC" | "UTC" | "GMT" => "UTC",
        other => other,
    }
}

fn zone_of(value: &ScalarValue) -> Option<&str> {
    match value {
        ScalarValue::TimestampSecond(_, zone)
        | ScalarValue::TimestampMillisecond(_, zone)
        | ScalarValue::TimestampMicrosecond(_, zone)
        | ScalarValue::TimestampNanosecond(_, zone) => zone.as_deref(),
        _ => None,
    }
}

/// The instant of a timestamp value, in nanoseconds since the epoch.
fn instant_nanos(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        _ => None,
    }
}

fn parse_zone(zone: &str) -> Result<Tz> {
    Tz::from_str(zone).map_err(|_| invalid_argument(format!("Unknown time zone: {zone}")))
}

/// The offset from UTC, in seconds, of a zoned timestamp's zone at its instant.
fn offset_seconds(value: &ScalarValue) -> Result<i64> {
    let zone = parse_zone(zone_of(value).unwrap_or("UTC"))?;
    let nanos = instant_nanos(value).ok_or_else(|| invalid_argument("Invalid timestamp"))?;
    let utc = DateTime::<Utc>::from_timestamp_nanos(nanos).naive_utc();
    Ok(i64::from(
        zone.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
    ))
}

/// ISO 8601 text of a date or timestamp, as Trino writes it (`2020-05-11T11:15:05.055Z`).
fn iso8601(value: &ScalarValue) -> Result<String> {
    if let ScalarValue::Date32(Some(days)) = value {
        let date = chrono::NaiveDate::from_num_days_from_ce_opt(719_163 + days)
            .ok_or_else(|| invalid_argument("Invalid date"))?;
        return Ok(date.format("%Y-%m-%d").to_string());
    }
    let nanos = instant_nanos(value).ok_or_else(|| invalid_argument("Invalid timestamp"))?;
    let digits = match value {
        ScalarValue::TimestampSecond(..) => 0,
        ScalarValue::TimestampMillisecond(..) => 3,
        ScalarValue::TimestampMicrosecond(..) => 6,
        _ => 9,
    };
    let utc = DateTime::<Utc>::from_timestamp_nanos(nanos);
    let fraction = match digits {
        0 => String::new(),
        3 => utc.format("%.3f").to_string(),
        6 => utc.format("%.6f").to_string(),
        _ => utc.format("%.9f").to_string(),
    };
    match zone_of(value) {
        None => Ok(format!(
            "{}{fraction}",
            utc.naive_utc().format("%Y-%m-%dT%H:%M:%S")
        )),
        Some(zone) => {
            let zone = parse_zone(zone)?;
            let local = utc.with_timezone(&zone);
            let offset = local.offset().fix().local_minus_utc();
            let suffix = if offset == 0 {
                "Z".to_string()
            } else {
                local.format("%:z").to_string()
            };
            Ok(format!(
                "{}{fraction}{suffix}",
                local.format("%Y-%m-%dT%H:%M:%S")
            ))
        }
    }
}

/// The instant an ISO 8601 date or date-time names, in nanoseconds; UTC where the text
/// names no offset.
/// The instant an ISO 8601 text names, in nanoseconds, and the offset it names (`+01:00`,
/// `UTC` for `Z`) if any; a text without one is a local time in `zone`.
fn parse_iso8601(text: &str, zone: &Tz) -> Result<(i64, Option<String>)> {
    let text = text.trim();
    let invalid = || invalid_argument(format!("Invalid format: \"{text}\""));
    let offset_of = |at: &DateTime<chrono::FixedOffset>| {
        let seconds = at.offset().local_minus_utc();
        if seconds == 0 && text.ends_with(['Z', 'z']) {
            return "UTC".to_string();
        }
        let sign = if seconds < 0 { '-' } else { '+' };
        let minutes = seconds.abs() / 60;
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        let nanos = at.timestamp_nanos_opt().ok_or_else(invalid)?;
        return Ok((nanos, Some(offset_of(&at))));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M:%S%.f%#z",
    ] {
        if let Ok(at) = DateTime::parse_from_str(text, format) {
            let nanos = at.timestamp_nanos_opt().ok_or_else(invalid)?;
            return Ok((nanos, Some(offset_of(&at))));
        }
    }
    let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok());
    let local = match local {
        Some(local) => local,
        None => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .or_else(|_| chrono::NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d"))
            .map_err(|_| invalid())?
            .and_hms_opt(0, 0, 0)
            .ok_or_else(invalid)?,
    };
    let at = zone
        .from_local_datetime(&local)
        .earliest()
        .ok_or_else(invalid)?;
    Ok((at.timestamp_nanos_opt().ok_or_else(invalid)?, None))
}

/// `from_iso8601_timestamp(text)` (milliseconds) and `from_iso8601_timestamp_nanos(text)`:
/// the instant the text names, in the zone of its offset when the text is a constant that
/// names one, else in the session's zone (UTC without one), in which a text without an
/// offset is read.
#[derive(Debug, PartialEq, Eq, Hash)]
struct FromIso8601 {
    nanos: bool,
    zone: Arc<str>,
    signature: Signature,
}

impl FromIso8601 {
    fn new(nanos: bool, config: &datafusion::common::config::ConfigOptions) -> Self {
        let zone = config.execution.time_zone.as_deref().unwrap_or("UTC");
        FromIso8601 {
            nanos,
            zone: Arc::from(zone),
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    fn unit(&self) -> TimeUnit {
        if self.nanos {
            TimeUnit::Nanosecond
        } else {
            TimeUnit::Millisecond
        }
    }

    fn session_zone(&self) -> Result<Tz> {
        parse_zone(&self.zone)
    }
}

impl ScalarUDFImpl for FromIso8601 {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        if self.nanos {
            "from_iso8601_timestamp_nanos"
        } else {
            "from_iso8601_timestamp"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if crate::functions::is_text(t) => Ok(vec![DataType::Utf8]),
            _ => crate::functions::unexpected_parameters(
                self.name(),
                arg_types,
                &format!("{}(varchar)", self.name()),
            ),
        }
    }

    fn with_updated_config(
        &self,
        config: &datafusion::common::config::ConfigOptions,
    ) -> Option<ScalarUDF> {
        Some(ScalarUDF::new_from_impl(FromIso8601::new(
            self.nanos, config,
        )))
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("return_field_from_args is called instead")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let named = match args.scalar_arguments.first().copied().flatten() {
            Some(ScalarValue::Utf8(Some(text))) => parse_iso8601(text, &self.session_zone()?)
                .ok()
                .and_then(|(_, zone)| zone),
            _ => None,
        };
        let zone: Arc<str> = named.map(Arc::from).unwrap_or_else(|| self.zone.clone());
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Timestamp(self.unit(), Some(zone)),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let zone = self.session_zone()?;
        let texts =
            crate::functions::json::cast::strings(&args.args[0].to_array(args.number_rows)?)?;
        let divisor = if self.nanos { 1 } else { 1_000_000 };
        let mut values = Vec::with_capacity(texts.len());
        for text in texts.iter() {
            values.push(match text {
                Some(text) => Some(parse_iso8601(text, &zone)?.0.div_euclid(divisor)),
                None => None,
            });
        }
        let tz = match args.return_field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let array: ArrayRef = if self.nanos {
            Arc::new(
                datafusion::arrow::array::TimestampNanosecondArray::from(values)
                    .with_timezone_opt(tz),
            )
        } else {
            Arc::new(
                datafusion::arrow::array::TimestampMillisecondArray::from(values)
                    .with_timezone_opt(tz),
            )
        };
        crate::functions::scalar_result(&args.args, array)
    }
}

/// Nanoseconds of an Airlift duration: a number and a unit (`ns`, `us`, `ms`, `s`, `m`,
/// `h`, `d`), rounded to milliseconds as Trino's interval holds them.
fn parse_duration(text: &str) -> Result<i128> {
    let trimmed = text.trim();
    let invalid = || {
        invalid_argument(format!(
            "duration is not a valid data duration string: {text}"
        ))
    };
    let split = trimmed
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(invalid)?;
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.trim().parse().map_err(|_| invalid())?;
    let nanos_per_unit = match unit.trim() {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3_600e9,
        "d" => 86_400e9,
        _ => return Err(invalid()),
    };
    if !number.is_finite() || number < 0.0 {
        return Err(invalid());
    }
    let millis = (number * nanos_per_unit / 1e6).round();
    Ok(millis as i128 * 1_000_000)
}

/// `at_timezone` (`convert`: the same instant in `zone`) and `with_timezone` (a timestamp
/// without zone read as local time in `zone`). The zone must be a literal: it is the
/// result's type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Rezone {
    convert: bool,
    signature: Signature,
}

impl ScalarUDFImpl for Rezone {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        if self.convert {
            "at_timezone"
        } else {
            "with_timezone"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!(
            "{} answers its return field from its arguments",
            self.name()
        )
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let unit = match args.arg_fields[0].data_type() {
            DataType::Timestamp(unit, zone) if self.convert || zone.is_none() => *unit,
            other => {
                let expected = if self.convert {
                    "at_timezone(timestamp(p) with time zone, varchar)"
                } else {
                    "with_timezone(timestamp(p), varchar)"
                };
                return plan_err!(
                    "Unexpected parameters ({}, varchar) for function {}. Expected: {expected}",
                    crate::types::trino_type_name(other),
                    self.name()
                );
            }
        };
        let zone = match args.scalar_arguments.get(1).copied().flatten() {
            Some(ScalarValue::Utf8(Some(z)) | ScalarValue::Utf8View(Some(z))) => z.clone(),
            _ => return plan_err!("The time zone of {} must be a literal", self.name()),
        };
        parse_zone(&zone)?;
        Ok(Arc::new(Field::new(
            self.name(),
            DataType::Timestamp(unit, Some(zone.into())),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let target = args.return_field.data_type();
        let output: ArrayRef = if self.convert {
            // The same instants: only the zone the values are shown in changes.
            let data = input
                .to_data()
                .into_builder()
                .data_type(target.clone())
                .build()?;
            datafusion::arrow::array::make_array(data)
        } else {
            // Arrow reads a timestamp without zone as local time of the target zone.
            cast(&input, target)?
        };
        crate::functions::scalar_result(&args.args, output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joda_patterns_as_chrono_formats() {
        assert_eq!(
            joda_pattern("yyyy-MM-dd HH:mm:ss.SSS").unwrap(),
            "%Y-%m-%d %H:%M:%S.%3f"
        );
        assert_eq!(
            joda_pattern("EEE, d MMM yy 'at' h a").unwrap(),
            "%a, %-d %b %y at %-I %p"
        );
        assert_eq!(joda_pattern("''Z").unwrap(), "'%z");
        assert!(joda_pattern("qq").is_err());
    }

    #[test]
    fn durations_as_airlift_reads_them() {
        assert_eq!(parse_duration("42.8ms").unwrap(), 43_000_000);
        assert_eq!(parse_duration("5m").unwrap(), 300_000_000_000);
        assert_eq!(parse_duration("3.81 d").unwrap(), 329_184_000_000_000);
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn iso8601_texts_are_read_as_instants() {
        let utc: Tz = "UTC".parse().unwrap();
        assert_eq!(parse_iso8601("1970-01-01", &utc).unwrap(), (0, None));
        assert_eq!(
            parse_iso8601("1970-01-01T00:00:01", &utc).unwrap().0,
            1_000_000_000
        );
        assert_eq!(
            parse_iso8601("1970-01-01T01:00:00+01:00", &utc).unwrap(),
            (0, Some("+01:00".into()))
        );
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(parse_iso8601("1970-01-01T01:00:00", &paris).unwrap().0, 0);
        assert!(parse_iso8601("yesterday", &utc).is_err());
        let value = ScalarValue::TimestampMillisecond(Some(1_589_195_705_055), Some("UTC".into()));
        assert_eq!(iso8601(&value).unwrap(), "2020-05-11T11:15:05.055Z");
    }
}
