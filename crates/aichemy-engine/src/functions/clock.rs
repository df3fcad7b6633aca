//! The statement's clock as Trino reads it: `current_timestamp[(p)]` (and `now()`), a
//! `timestamp(p) with time zone` in the session's zone (UTC without one),
//! `localtimestamp[(p)]`, the session zone's wall clock as a `timestamp(p)`, and
//! `localtime[(p)]`, that clock's time of day. Every call in
//! one statement answers the statement's start, cut to `p` fractional digits (3 unless
//! given). Values are kept at microseconds (nanoseconds past six digits), the unit of a
//! table's timestamps: DataFusion compares two timestamps at the coarser unit.

use std::any::Any;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

/// Registers `current_timestamp` (with `now`), `localtimestamp` and `localtime` for the
/// context's zone.
pub fn register(ctx: &SessionContext) {
    let config = ctx.state().config_options().clone();
    for reading in [Reading::Instant, Reading::WallClock, Reading::TimeOfDay] {
        ctx.register_udf(ScalarUDF::new_from_impl(Clock::new(reading, &config)));
    }
}

/// What a clock function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reading {
    /// `current_timestamp`: the instant, in the session's zone.
    Instant,
    /// `localtimestamp`: the wall clock, without its zone.
    WallClock,
    /// `localtime`: the wall clock's time of day.
    TimeOfDay,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Clock {
    reading: Reading,
    /// The wall clock, without a zone (`localtimestamp`, `localtime`).
    local: bool,
    /// The session's zone (UTC when it has none).
    zone: Arc<str>,
    aliases: Vec<String>,
    signature: Signature,
}

impl Clock {
    fn new(reading: Reading, config: &ConfigOptions) -> Self {
        let zone = config.execution.time_zone.as_deref().unwrap_or("UTC");
        let local = reading != Reading::Instant;
        Clock {
            reading,
            local,
            zone: Arc::from(zone),
            aliases: if local { vec![] } else { vec!["now".into()] },
            signature: Signature::user_defined(Volatility::Stable),
        }
    }

    /// The digits asked for: the literal argument, else 3.
    fn precision(argument: Option<&ScalarValue>) -> Result<u32> {
        let Some(value) = argument else {
            return Ok(3);
        };
        match value.cast_to(&DataType::Int64)? {
            ScalarValue::Int64(Some(p)) if (0..=12).contains(&p) => Ok(p as u32),
            ScalarValue::Int64(Some(p)) => {
                plan_err!("TIMESTAMP precision must be in range [0, 12]: {p}")
            }
            _ => plan_err!("The precision of the current timestamp must be a constant"),
        }
    }

    fn unit(precision: u32) -> TimeUnit {
        if precision <= 6 {
            TimeUnit::Microsecond
        } else {
            TimeUnit::Nanosecond
        }
    }

    fn data_type(&self, precision: u32) -> DataType {
        if self.reading == Reading::TimeOfDay {
            return DataType::Time64(Self::unit(precision));
        }
        let zone = (!self.local).then(|| self.zone.clone());
        DataType::Timestamp(Self::unit(precision), zone)
    }

    /// The statement's start as this function answers it.
    fn value(&self, start: DateTime<Utc>, precision: u32) -> Result<ScalarValue> {
        let mut nanos = match self.local {
            false => start.timestamp_nanos_opt(),
            true => {
                let zone: Tz = self.zone.parse()?;
                start
                    .with_timezone(&zone)
                    .naive_local()
                    .and_utc()
                    .timestamp_nanos_opt()
            }
        };
        let step = 10i64.pow(9u32.saturating_sub(precision));
        nanos = nanos.map(|n| n - n.rem_euclid(step));
        if self.reading == Reading::TimeOfDay {
            let day = nanos.map(|n| n.rem_euclid(86_400_000_000_000));
            return Ok(match Self::unit(precision) {
                TimeUnit::Nanosecond => ScalarValue::Time64Nanosecond(day),
                _ => ScalarValue::Time64Microsecond(day.map(|n| n / 1_000)),
            });
        }
        let zone = (!self.local).then(|| self.zone.clone());
        Ok(match Self::unit(precision) {
            TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(nanos, zone),
            _ => ScalarValue::TimestampMicrosecond(nanos.map(|n| n / 1_000), zone),
        })
    }
}

impl ScalarUDFImpl for Clock {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        match self.reading {
            Reading::Instant => "current_timestamp",
            Reading::WallClock => "localtimestamp",
            Reading::TimeOfDay => "localtime",
        }
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [] => Ok(vec![]),
            [t] if t.is_integer() => Ok(vec![DataType::Int64]),
            _ => plan_err!(
                "Unexpected parameters for function {}. Expected: {}(integer)",
                self.name(),
                self.name()
            ),
        }
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        Some(ScalarUDF::new_from_impl(Clock::new(self.reading, config)))
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("return_field_from_args is called instead")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let precision = Self::precision(args.scalar_arguments.first().copied().flatten())?;
        Ok(Arc::new(Field::new(
            self.name(),
            self.data_type(precision),
            false,
        )))
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        internal_err!("{} is replaced by its value while planning", self.name())
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let Some(start) = info.query_execution_start_time() else {
            return Ok(ExprSimplifyResult::Original(args));
        };
        let precision = match args.first() {
            None => 3,
            Some(Expr::Literal(value, _)) => Self::precision(Some(value))?,
            Some(_) => return Ok(ExprSimplifyResult::Original(args)),
        };
        Ok(ExprSimplifyResult::Simplified(Expr::Literal(
            self.value(start, precision)?,
            None,
        )))
    }
}
