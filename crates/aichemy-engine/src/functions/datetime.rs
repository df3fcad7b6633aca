//! Trino's date and time functions DataFusion lacks: the fields of a date, time or
//! timestamp (`year`, `month`, … `day_of_week`, `millisecond`), `date_add`, `date_diff`,
//! `last_day_of_month`, `to_unixtime` and `from_unixtime`.
//!
//! Calendar units (day and longer) count in the value's own zone, as Trino's do: a day
//! added across a change to summer time is 23 hours of the instant.

use std::any::Any;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveDateTime, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, PrimitiveArray,
};
use datafusion::arrow::compute::kernels::temporal::{date_part, DatePart};
use datafusion::arrow::compute::{cast, unary};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, TimeUnit, TimestampMillisecondType,
};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::error::{ErrorCode, TrinoError};
use crate::functions::{
    invalid_argument as invalid, is_text, scalar_result, unexpected_parameters as unexpected,
};

/// The field functions: name, the field, what is added to it (Trino's day of the week is
/// 1 for Monday).
const FIELDS: &[(&str, DatePart, i64)] = &[
    ("year", DatePart::Year, 0),
    ("quarter", DatePart::Quarter, 0),
    ("month", DatePart::Month, 0),
    ("week", DatePart::Week, 0),
    ("week_of_year", DatePart::Week, 0),
    ("day", DatePart::Day, 0),
    ("day_of_month", DatePart::Day, 0),
    ("day_of_week", DatePart::DayOfWeekMonday0, 1),
    ("dow", DatePart::DayOfWeekMonday0, 1),
    ("day_of_year", DatePart::DayOfYear, 0),
    ("doy", DatePart::DayOfYear, 0),
    ("year_of_week", DatePart::YearISO, 0),
    ("yow", DatePart::YearISO, 0),
    ("hour", DatePart::Hour, 0),
    ("minute", DatePart::Minute, 0),
    ("second", DatePart::Second, 0),
    ("millisecond", DatePart::Millisecond, 0),
];

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    for &(name, part, offset) in FIELDS {
        ctx.register_udf(ScalarUDF::new_from_impl(FieldOf::new(name, part, offset)));
    }
    for kind in [
        Kind::DateAdd,
        Kind::DateDiff,
        Kind::LastDayOfMonth,
        Kind::ToUnixtime,
        Kind::FromUnixtime,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(DateFunction::new(kind)));
    }
}

fn is_time(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Time32(_) | DataType::Time64(_))
}

fn is_date_or_timestamp(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
    )
}

/// `year(x)`, `month(x)`, …: one field of a date, time or timestamp, as BIGINT.
#[derive(Debug, PartialEq, Eq)]
struct FieldOf {
    name: &'static str,
    part: DatePart,
    offset: i64,
    signature: Signature,
}

impl std::hash::Hash for FieldOf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl FieldOf {
    fn new(name: &'static str, part: DatePart, offset: i64) -> Self {
        Self {
            name,
            part,
            offset,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    fn of_time(&self) -> bool {
        matches!(
            self.part,
            DatePart::Hour | DatePart::Minute | DatePart::Second | DatePart::Millisecond
        )
    }
}

impl ScalarUDFImpl for FieldOf {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let fits = is_date_or_timestamp(&arg_types[0])
            || arg_types[0] == DataType::Null
            || (self.of_time() && is_time(&arg_types[0]));
        if !fits {
            let expected = format!(
                "{0}(date), {0}(timestamp(p)), {0}(timestamp(p) with time zone)",
                self.name
            );
            return unexpected(self.name, arg_types, &expected);
        }
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result: ArrayRef = if arrays[0].data_type() == &DataType::Null {
            Arc::new(Int64Array::new_null(arrays[0].len()))
        } else {
            let parts = date_part(&arrays[0], self.part)?;
            let offset = self.offset;
            Arc::new(unary::<Int32Type, _, Int64Type>(
                parts.as_primitive::<Int32Type>(),
                |v| i64::from(v) + offset,
            ))
        };
        scalar_result(&args.args, result)
    }
}

/// A unit of `date_add` and `date_diff`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    fn parse(text: &str) -> Result<Unit> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "millisecond" => Unit::Millisecond,
            "second" => Unit::Second,
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            "quarter" => Unit::Quarter,
            "year" => Unit::Year,
            _ => return Err(invalid(format!("'{text}' is not a valid Timestamp field"))),
        })
    }

    /// The length of a unit shorter than a day, in nanoseconds.
    fn nanos(self) -> Option<i64> {
        Some(match self {
            Unit::Millisecond => 1_000_000,
            Unit::Second => 1_000_000_000,
            Unit::Minute => 60_000_000_000,
            Unit::Hour => 3_600_000_000_000,
            _ => return None,
        })
    }

    fn months(self) -> Option<i64> {
        Some(match self {
            Unit::Month => 1,
            Unit::Quarter => 3,
            Unit::Year => 12,
            _ => return None,
        })
    }
}

fn overflow() -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::NUMERIC_VALUE_OUT_OF_RANGE,
        "Date or time out of range",
    )))
}

/// `date` plus `count` calendar units (day and longer).
fn add_to_date(date: NaiveDate, unit: Unit, count: i64) -> Result<NaiveDate> {
    let shifted = match (unit, unit.months()) {
        (_, Some(months)) => {
            let months = count.checked_mul(months).ok_or_else(overflow)?;
            let amount = Months::new(u32::try_from(months.unsigned_abs()).map_err(|_| overflow())?);
            if months >= 0 {
                date.checked_add_months(amount)
            } else {
                date.checked_sub_months(amount)
            }
        }
        (Unit::Week, _) => count
            .checked_mul(7)
            .and_then(|days| date.checked_add_signed(chrono::Duration::try_days(days)?)),
        _ => chrono::Duration::try_days(count).and_then(|days| date.checked_add_signed(days)),
    };
    shifted.ok_or_else(overflow)
}

/// Whole months from `a` to `b` (negative when `b` is earlier), as Java's `ChronoUnit`
/// counts them: a month is complete when the day and time of the month are reached.
fn months_between(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    let months = (i64::from(b.year()) * 12 + i64::from(b.month0()))
        - (i64::from(a.year()) * 12 + i64::from(a.month0()));
    let key = |t: NaiveDateTime| (t.day(), t.time());
    if months > 0 && key(b) < key(a) {
        months - 1
    } else if months < 0 && key(b) > key(a) {
        months + 1
    } else {
        months
    }
}

/// Timestamps of one Arrow type as instants (nanoseconds) and back, with their zone.
pub(crate) struct Timestamps {
    unit: TimeUnit,
    zone: Option<Tz>,
}

impl Timestamps {
    pub(crate) fn of(data_type: &DataType) -> Result<Option<Self>> {
        let DataType::Timestamp(unit, zone) = data_type else {
            return Ok(None);
        };
        let zone = zone.as_deref().map(Tz::from_str).transpose()?;
        Ok(Some(Self { unit: *unit, zone }))
    }

    fn nanos_per_value(&self) -> i64 {
        match self.unit {
            TimeUnit::Second => 1_000_000_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Nanosecond => 1,
        }
    }

    /// The value's date and time on the wall clock of its zone (UTC without one).
    pub(crate) fn local(&self, value: i64) -> Result<NaiveDateTime> {
        let per = self.nanos_per_value();
        let seconds = value.div_euclid(1_000_000_000 / per);
        let nanos = value.rem_euclid(1_000_000_000 / per) * per;
        let utc = DateTime::from_timestamp(seconds, nanos as u32).ok_or_else(overflow)?;
        Ok(match &self.zone {
            Some(zone) => utc.with_timezone(zone).naive_local(),
            None => utc.naive_utc(),
        })
    }

    /// The value of a wall-clock time in the zone (the earlier one where the clock repeats).
    fn value(&self, local: NaiveDateTime) -> Result<i64> {
        let utc = match &self.zone {
            Some(zone) => zone
                .from_local_datetime(&local)
                .earliest()
                .ok_or_else(overflow)?
                .naive_utc(),
            None => local,
        };
        let nanos = utc.and_utc().timestamp_nanos_opt().ok_or_else(overflow)?;
        Ok(nanos.div_euclid(self.nanos_per_value()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    DateAdd,
    DateDiff,
    LastDayOfMonth,
    ToUnixtime,
    FromUnixtime,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DateFunction {
    kind: Kind,
    signature: Signature,
}

impl DateFunction {
    fn new(kind: Kind) -> Self {
        let arity = match kind {
            Kind::DateAdd | Kind::DateDiff => 3,
            _ => 1,
        };
        Self {
            kind,
            signature: Signature::any(arity, Volatility::Immutable),
        }
    }

    fn date_add(&self, arrays: &[ArrayRef]) -> Result<ArrayRef> {
        let units = cast(&arrays[0], &DataType::Utf8)?;
        let units = units.as_string::<i32>();
        let counts = cast(&arrays[1], &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        let values = &arrays[2];
        let rows = (0..values.len()).map(|i| {
            (!units.is_null(i) && !counts.is_null(i) && !values.is_null(i))
                .then(|| Ok::<_, DataFusionError>((Unit::parse(units.value(i))?, counts.value(i))))
                .transpose()
        });
        if let Some(timestamps) = Timestamps::of(values.data_type())? {
            let as_int = cast(values, &DataType::Int64)?;
            let as_int = as_int.as_primitive::<Int64Type>();
            let out = rows
                .enumerate()
                .map(|(i, row)| {
                    let Some((unit, count)) = row? else {
                        return Ok(None);
                    };
                    let value = as_int.value(i);
                    Ok(Some(match unit.nanos() {
                        Some(nanos) => {
                            let step = i128::from(count) * i128::from(nanos)
                                / i128::from(timestamps.nanos_per_value());
                            i64::try_from(step)
                                .ok()
                                .and_then(|step| value.checked_add(step))
                                .ok_or_else(overflow)?
                        }
                        None => {
                            let local = timestamps.local(value)?;
                            let date = add_to_date(local.date(), unit, count)?;
                            timestamps.value(date.and_time(local.time()))?
                        }
                    }))
                })
                .collect::<Result<Int64Array>>()?;
            return Ok(cast(&out, values.data_type())?);
        }
        if matches!(values.data_type(), DataType::Date32 | DataType::Date64) {
            let dates = cast(values, &DataType::Date32)?;
            let dates = dates.as_primitive::<Date32Type>();
            let out = rows
                .enumerate()
                .map(|(i, row)| {
                    let Some((unit, count)) = row? else {
                        return Ok(None);
                    };
                    if unit.nanos().is_some() {
                        return Err(invalid(format!(
                            "'{}' is not a valid DATE field",
                            units.value(i).to_ascii_lowercase()
                        )));
                    }
                    let date =
                        Date32Type::to_naive_date_opt(dates.value(i)).ok_or_else(overflow)?;
                    Ok(Some(Date32Type::from_naive_date(add_to_date(
                        date, unit, count,
                    )?)))
                })
                .collect::<Result<Date32Array>>()?;
            return Ok(cast(&out, values.data_type())?);
        }
        // TIME: the units of a day, around the clock.
        let nanos = cast(values, &DataType::Time64(TimeUnit::Nanosecond))?;
        let nanos = cast(&nanos, &DataType::Int64)?;
        let nanos = nanos.as_primitive::<Int64Type>();
        const DAY: i64 = 86_400_000_000_000;
        let out = rows
            .enumerate()
            .map(|(i, row)| {
                let Some((unit, count)) = row? else {
                    return Ok(None);
                };
                let Some(step) = unit.nanos() else {
                    return Err(invalid(format!(
                        "'{}' is not a valid TIME field",
                        units.value(i).to_ascii_lowercase()
                    )));
                };
                let step = (count % (DAY / step)) * step;
                Ok(Some((nanos.value(i) + step).rem_euclid(DAY)))
            })
            .collect::<Result<Int64Array>>()?;
        let out = cast(&out, &DataType::Time64(TimeUnit::Nanosecond))?;
        Ok(cast(&out, values.data_type())?)
    }

    fn date_diff(&self, arrays: &[ArrayRef]) -> Result<ArrayRef> {
        let units = cast(&arrays[0], &DataType::Utf8)?;
        let units = units.as_string::<i32>();
        // Both as timestamps of the same type: a date is its midnight.
        let target = match (arrays[1].data_type(), arrays[2].data_type()) {
            (t @ DataType::Timestamp(..), _) | (_, t @ DataType::Timestamp(..)) => t.clone(),
            _ => DataType::Timestamp(TimeUnit::Nanosecond, None),
        };
        let timestamps = Timestamps::of(&target)?.expect("a timestamp type");
        let [from, to] = [&arrays[1], &arrays[2]].map(|a| cast(a, &target));
        let (from, to) = (
            cast(&from?, &DataType::Int64)?,
            cast(&to?, &DataType::Int64)?,
        );
        let (from, to) = (
            from.as_primitive::<Int64Type>(),
            to.as_primitive::<Int64Type>(),
        );
        let per = timestamps.nanos_per_value();
        let out = (0..from.len())
            .map(|i| {
                if units.is_null(i) || from.is_null(i) || to.is_null(i) {
                    return Ok(None);
                }
                let unit = Unit::parse(units.value(i))?;
                let (a, b) = (from.value(i), to.value(i));
                Ok(Some(match (unit.nanos(), unit.months()) {
                    (Some(nanos), _) => {
                        (i128::from(b - a) * i128::from(per) / i128::from(nanos)) as i64
                    }
                    (_, Some(months)) => {
                        months_between(timestamps.local(a)?, timestamps.local(b)?) / months
                    }
                    _ => {
                        let days = (timestamps.local(b)? - timestamps.local(a)?).num_days();
                        if unit == Unit::Week {
                            days / 7
                        } else {
                            days
                        }
                    }
                }))
            })
            .collect::<Result<Int64Array>>()?;
        Ok(Arc::new(out))
    }

    fn last_day_of_month(&self, array: &ArrayRef) -> Result<ArrayRef> {
        let dates: Vec<Option<NaiveDate>> = match Timestamps::of(array.data_type())? {
            Some(timestamps) => {
                let values = cast(array, &DataType::Int64)?;
                values
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| v.map(|v| timestamps.local(v).map(|t| t.date())).transpose())
                    .collect::<Result<_>>()?
            }
            None => cast(array, &DataType::Date32)?
                .as_primitive::<Date32Type>()
                .iter()
                .map(|d| d.and_then(Date32Type::to_naive_date_opt))
                .collect(),
        };
        let out: Date32Array = dates
            .into_iter()
            .map(|date| {
                date.map(|d| {
                    let first = d.with_day(1).expect("day 1 exists");
                    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
                    Date32Type::from_naive_date(next.pred_opt().unwrap_or(d))
                })
            })
            .collect();
        Ok(Arc::new(out))
    }
}

impl ScalarUDFImpl for DateFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        match self.kind {
            Kind::DateAdd => "date_add",
            Kind::DateDiff => "date_diff",
            Kind::LastDayOfMonth => "last_day_of_month",
            Kind::ToUnixtime => "to_unixtime",
            Kind::FromUnixtime => "from_unixtime",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let name = self.name();
        let text = is_text;
        let integer = |t: &DataType| t.is_integer() || *t == DataType::Null;
        let temporal = |t: &DataType| is_date_or_timestamp(t) || *t == DataType::Null;
        match self.kind {
            Kind::DateAdd
                if text(&arg_types[0])
                    && integer(&arg_types[1])
                    && (temporal(&arg_types[2]) || is_time(&arg_types[2])) =>
            {
                Ok(arg_types[2].clone())
            }
            Kind::DateDiff
                if text(&arg_types[0]) && temporal(&arg_types[1]) && temporal(&arg_types[2]) =>
            {
                Ok(DataType::Int64)
            }
            Kind::LastDayOfMonth if temporal(&arg_types[0]) => Ok(DataType::Date32),
            Kind::ToUnixtime if temporal(&arg_types[0]) => Ok(DataType::Float64),
            Kind::FromUnixtime if arg_types[0].is_numeric() || arg_types[0] == DataType::Null => {
                Ok(DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())))
            }
            Kind::DateAdd => unexpected(name, arg_types, "date_add(varchar(x), bigint, date), date_add(varchar(x), bigint, time(p)), date_add(varchar(x), bigint, timestamp(p))"),
            Kind::DateDiff => unexpected(name, arg_types, "date_diff(varchar(x), date, date), date_diff(varchar(x), timestamp(p), timestamp(p))"),
            Kind::LastDayOfMonth => unexpected(name, arg_types, "last_day_of_month(date), last_day_of_month(timestamp(p))"),
            Kind::ToUnixtime => unexpected(name, arg_types, "to_unixtime(timestamp(p) with time zone)"),
            Kind::FromUnixtime => unexpected(name, arg_types, "from_unixtime(double)"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result: ArrayRef = match self.kind {
            Kind::DateAdd => self.date_add(&arrays)?,
            Kind::DateDiff => self.date_diff(&arrays)?,
            Kind::LastDayOfMonth => self.last_day_of_month(&arrays[0])?,
            Kind::ToUnixtime => {
                let nanos = cast(&arrays[0], &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
                let nanos = cast(&nanos, &DataType::Int64)?;
                Arc::new(unary::<Int64Type, _, Float64Type>(
                    nanos.as_primitive::<Int64Type>(),
                    |n| n as f64 / 1e9,
                ))
            }
            Kind::FromUnixtime => {
                let seconds = cast(&arrays[0], &DataType::Float64)?;
                let seconds: &Float64Array = seconds.as_primitive::<Float64Type>();
                let millis: PrimitiveArray<TimestampMillisecondType> = seconds
                    .iter()
                    .map(|s| s.map(|s| (s * 1000.0).round() as i64))
                    .collect();
                Arc::new(millis.with_timezone("UTC"))
            }
        };
        scalar_result(&args.args, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn months_are_counted_and_added_as_java_does() {
        let date = |t: &str| NaiveDate::parse_from_str(t, "%Y-%m-%d").unwrap();
        assert_eq!(
            add_to_date(date("2020-01-31"), Unit::Month, 1).unwrap(),
            date("2020-02-29")
        );
        assert_eq!(
            add_to_date(date("2020-03-31"), Unit::Quarter, -1).unwrap(),
            date("2019-12-31")
        );
        assert_eq!(
            add_to_date(date("2020-01-01"), Unit::Week, 2).unwrap(),
            date("2020-01-15")
        );
        assert_eq!(
            months_between(at("2020-01-31 00:00:00"), at("2020-02-29 00:00:00")),
            0
        );
        assert_eq!(
            months_between(at("2020-01-15 10:00:00"), at("2021-01-15 10:00:00")),
            12
        );
        assert_eq!(
            months_between(at("2021-01-15 10:00:00"), at("2020-01-15 11:00:00")),
            -11
        );
    }
}
