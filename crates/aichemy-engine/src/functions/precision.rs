//! `"$precision"(x, p)`: a timestamp or time of Trino's precision `p`, the digits of its
//! fractional seconds (0 to 12). Values stay at the Arrow unit the engine computes in
//! (microseconds, nanoseconds past six digits), so that DataFusion, which compares two
//! timestamps at the coarser unit of the two, never cuts a column down to a literal's unit;
//! the precision rides in the field's metadata ([`crate::types::PRECISION_KEY`]), which the
//! protocol's types and the printed digits follow. The value is rounded half up to `p` digits,
//! as Trino's casts to a lower precision round (a time of day wraps past midnight).
//!
//! The dialect wraps timestamp and time literals (`p` is the number of digits written) and
//! casts to `timestamp(p)`/`time(p)` in it; the `TemporalPrecision` analyzer wraps the outputs
//! of expressions whose precision follows from their operands' (`ts + INTERVAL '1' DAY`,
//! `date_trunc('day', ts)`).

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, PrimitiveArray};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, FieldRef, Time32MillisecondType, Time32SecondType,
    Time64MicrosecondType, Time64NanosecondType, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::types::{MAX_TEMPORAL_PRECISION, PRECISION_KEY};

/// The function's name, which no user can call by mistake (it is quoted and starts with `$`).
pub(crate) const NAME: &str = "$precision";

/// The function that rounds alike but leaves the type as it is (the rows of `VALUES`).
pub(crate) const ROUND_NAME: &str = "$round_precision";

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Precision {
    signature: Signature,
    /// Whether the result's field carries the precision.
    typed: bool,
}

impl Precision {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
            typed: true,
        }
    }

    pub(crate) fn rounding() -> Self {
        Self {
            typed: false,
            ..Self::new()
        }
    }
}

/// `expr` typed at `precision` digits, rounded to them.
pub(crate) fn with_precision(expr: Expr, precision: u8) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(Precision::new())),
        vec![
            expr,
            Expr::Literal(ScalarValue::Int64(Some(precision.into())), None),
        ],
    ))
}

fn is_temporal(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Timestamp(_, _) | DataType::Time32(_) | DataType::Time64(_)
    )
}

fn precision_argument(value: Option<&ScalarValue>) -> Result<u8> {
    let p = match value {
        Some(ScalarValue::Int64(Some(p))) => *p,
        Some(ScalarValue::Int32(Some(p))) => i64::from(*p),
        _ => return plan_err!("{NAME} takes a constant precision"),
    };
    match u8::try_from(p) {
        Ok(p) if p <= MAX_TEMPORAL_PRECISION => Ok(p),
        _ => plan_err!("precision must be in range [0, {MAX_TEMPORAL_PRECISION}]: {p}"),
    }
}

impl ScalarUDFImpl for Precision {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        if self.typed {
            NAME
        } else {
            ROUND_NAME
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let input = &args.arg_fields[0];
        if !is_temporal(input.data_type()) {
            return plan_err!(
                "{NAME} takes a timestamp or a time, not {}",
                input.data_type()
            );
        }
        let precision = precision_argument(args.scalar_arguments[1])?;
        let mut metadata = input.metadata().clone();
        if self.typed {
            metadata.insert(PRECISION_KEY.to_string(), precision.to_string());
        }
        Ok(Arc::new(
            Field::new(self.name(), input.data_type().clone(), input.is_nullable())
                .with_metadata(metadata),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let precision = match &args.args[1] {
            ColumnarValue::Scalar(value) => precision_argument(Some(value))?,
            ColumnarValue::Array(_) => return plan_err!("{NAME} takes a constant precision"),
        };
        let value = &args.args[0];
        let array = value.to_array(args.number_rows)?;
        let rounded = round(&array, precision)?;
        Ok(match value {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&rounded, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(rounded),
        })
    }
}

/// The name of the function of a timestamp's or time's text (`CAST(ts AS VARCHAR)`).
pub(crate) const TEXT_NAME: &str = "$temporal_text";

/// `"$temporal_text"(x)`: a timestamp or time as Trino writes it when cast to text
/// (`2020-06-10 15:55:23.383`, `… Europe/Paris`, `01:02:03`), with the digits of its
/// precision, where DataFusion's cast writes `2020-06-10T15:55:23.383`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct TemporalText {
    signature: Signature,
}

impl TemporalText {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

/// `expr`, a timestamp or time, as Trino's text of it.
pub(crate) fn temporal_text(expr: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(TemporalText::new())),
        vec![expr],
    ))
}

impl ScalarUDFImpl for TemporalText {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        TEXT_NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            t if is_temporal(t) => Ok(DataType::Utf8),
            other => plan_err!("{TEXT_NAME} takes a timestamp or a time, not {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
        let field = &args.arg_fields[0];
        let array = args.args[0].to_array(args.number_rows)?;
        let (unit, zone) = match array.data_type() {
            DataType::Timestamp(unit, zone) => (*unit, zone.clone()),
            DataType::Time32(unit) | DataType::Time64(unit) => (*unit, None),
            other => return plan_err!("{TEXT_NAME} takes a timestamp or a time, not {other}"),
        };
        let precision = crate::types::temporal_precision(field)
            .unwrap_or_else(|| crate::types::precision_of(&unit));
        let options = FormatOptions::default()
            .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.9f"))
            .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.9f"))
            .with_time_format(Some("%H:%M:%S%.9f"));
        let formatter = ArrayFormatter::try_new(array.as_ref(), &options)?;
        let zone = zone.map(|z| crate::functions::timestamps::trino_zone(&z).to_string());
        let mut out = datafusion::arrow::array::StringBuilder::new();
        for row in 0..array.len() {
            if array.is_null(row) {
                out.append_null();
                continue;
            }
            let text =
                crate::types::with_fraction_digits(&formatter.value(row).to_string(), precision);
            match &zone {
                Some(zone) => out.append_value(format!("{text} {zone}")),
                None => out.append_value(text),
            }
        }
        let texts: ArrayRef = Arc::new(out.finish());
        Ok(match &args.args[0] {
            ColumnarValue::Scalar(_) => {
                ColumnarValue::Scalar(ScalarValue::try_from_array(&texts, 0)?)
            }
            ColumnarValue::Array(_) => ColumnarValue::Array(texts),
        })
    }
}

/// The digits of one unit's values.
fn unit_digits(unit: &TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

/// `array`'s values rounded half up to `precision` digits of their seconds.
fn round(array: &ArrayRef, precision: u8) -> Result<ArrayRef> {
    let (unit, time_of_day) = match array.data_type() {
        DataType::Timestamp(unit, _) => (*unit, false),
        DataType::Time32(unit) | DataType::Time64(unit) => (*unit, true),
        other => return plan_err!("{NAME} takes a timestamp or a time, not {other}"),
    };
    let digits = unit_digits(&unit);
    if precision >= digits {
        return Ok(Arc::clone(array));
    }
    let step = 10_i64.pow(u32::from(digits - precision));
    let day = NANOS_PER_DAY / 10_i64.pow(u32::from(9 - digits));
    let round_one = move |v: i64| -> i64 {
        let rounded = (v + step / 2).div_euclid(step) * step;
        if time_of_day {
            rounded.rem_euclid(day)
        } else {
            rounded
        }
    };
    Ok(match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => map::<TimestampSecondType>(array, round_one),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            map::<TimestampMillisecondType>(array, round_one)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            map::<TimestampMicrosecondType>(array, round_one)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            map::<TimestampNanosecondType>(array, round_one)
        }
        DataType::Time32(TimeUnit::Second) => map32::<Time32SecondType>(array, round_one),
        DataType::Time32(_) => map32::<Time32MillisecondType>(array, round_one),
        DataType::Time64(TimeUnit::Microsecond) => map::<Time64MicrosecondType>(array, round_one),
        _ => map::<Time64NanosecondType>(array, round_one),
    })
}

fn map<T>(array: &ArrayRef, f: impl Fn(i64) -> i64) -> ArrayRef
where
    T: ArrowPrimitiveType<Native = i64>,
{
    let values: &PrimitiveArray<T> = array
        .as_any()
        .downcast_ref()
        .expect("the array of its data type");
    Arc::new(
        values
            .unary::<_, T>(f)
            .with_data_type(array.data_type().clone()),
    )
}

fn map32<T>(array: &ArrayRef, f: impl Fn(i64) -> i64) -> ArrayRef
where
    T: ArrowPrimitiveType<Native = i32>,
{
    let values: &PrimitiveArray<T> = array
        .as_any()
        .downcast_ref()
        .expect("the array of its data type");
    // A rounded time of day stays within the day, which an i32 of seconds or
    // milliseconds holds.
    Arc::new(values.unary::<_, T>(|v| f(i64::from(v)) as i32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampMicrosecondArray;

    #[test]
    fn rounds_half_up_to_the_digits() {
        let array: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            1_383_345, -1_383_345, 1_350_000, 1_000_000,
        ]));
        let rounded = round(&array, 1).unwrap();
        let rounded = rounded
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(
            rounded.values().to_vec(),
            vec![1_400_000, -1_400_000, 1_400_000, 1_000_000]
        );
        assert_eq!(round(&array, 6).unwrap().len(), 4);
    }

    #[test]
    fn a_time_of_day_wraps_past_midnight() {
        let array: ArrayRef = Arc::new(datafusion::arrow::array::Time64MicrosecondArray::from(
            vec![86_399_999_999],
        ));
        let rounded = round(&array, 0).unwrap();
        let rounded = rounded
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Time64MicrosecondArray>()
            .unwrap();
        assert_eq!(rounded.value(0), 0);
    }
}
