//! Trino's mathematical functions DataFusion lacks or names differently: `sign`, `mod`,
//! `e()`, `is_finite`/`is_infinite`, `from_base`/`to_base`, `width_bucket`, `rand`, and
//! the statistical functions (`normal_cdf`, `inverse_normal_cdf`, `beta_cdf`,
//! `inverse_beta_cdf`, `t_cdf`, `t_pdf`, `wilson_interval_lower|upper`) with the special
//! functions they rest on: erf through the incomplete gamma function (as Trino's Commons
//! Math computes it), log-gamma by Lanczos' approximation, and the regularized incomplete
//! beta function by its continued fraction. `ceiling`, `truncate` and `is_nan` are
//! DataFusion's `ceil`, `trunc` and `isnan` under Trino's names.
//!
//! The statistical functions and the special functions they rest on are in
//! `distributions`, `width_bucket` in a file of its own; the rest is here.

mod distributions;
mod width_bucket;

use std::any::Any;
use std::f64::consts::E;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::numeric::rem;
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
};
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::functions::math as datafusion_math;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::{
    arg_arrays, invalid_argument, scalar_result, unexpected_parameters, Constant,
};

use distributions::{Statistic, StatisticFunction};
use width_bucket::WidthBucket;

/// Registers every mathematical function.
pub fn register(ctx: &SessionContext) {
    for (function, alias) in [
        (datafusion_math::ceil(), "ceiling"),
        (datafusion_math::trunc(), "truncate"),
        (datafusion_math::isnan(), "is_nan"),
    ] {
        ctx.register_udf(ScalarUDF::clone(&function).with_aliases([alias]));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(
        "e",
        ScalarValue::Float64(Some(E)),
    )));
    ctx.register_udf(ScalarUDF::new_from_impl(Sign {
        signature: user_defined(),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(Mod {
        signature: user_defined(),
    }));
    for infinite in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(FloatTest {
            infinite,
            signature: user_defined(),
        }));
    }
    for to_base in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(BaseConversion {
            to_base,
            signature: user_defined(),
        }));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(WidthBucket {
        signature: user_defined(),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(Rand {
        signature: Signature::user_defined(Volatility::Volatile),
    }));
    for statistic in Statistic::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(StatisticFunction {
            statistic,
            signature: user_defined(),
        }));
    }
}

fn user_defined() -> Signature {
    Signature::user_defined(Volatility::Immutable)
}

/// Trino's `checkCondition`: INVALID_FUNCTION_ARGUMENT with `message` unless `condition`.
fn check(condition: bool, message: &str) -> Result<()> {
    if condition {
        Ok(())
    } else {
        Err(invalid_argument(message))
    }
}

fn float64s(array: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

fn int64s(array: &ArrayRef) -> Result<Int64Array> {
    Ok(cast(array, &DataType::Int64)?
        .as_primitive::<Int64Type>()
        .clone())
}

fn is_number_or_null(data_type: &DataType) -> bool {
    data_type.is_numeric() || *data_type == DataType::Null
}

fn is_integer_or_null(data_type: &DataType) -> bool {
    data_type.is_integer() || *data_type == DataType::Null
}

/// The signed integer type that holds an integer type's values (NULL as bigint).
fn signed_integer(data_type: &DataType) -> Option<DataType> {
    use DataType::*;
    Some(match data_type {
        Int8 | Int16 | Int32 | Int64 => data_type.clone(),
        UInt8 => Int16,
        UInt16 => Int32,
        UInt32 | UInt64 | Null => Int64,
        _ => return None,
    })
}

/// The wider of two signed integer types.
fn wider_integer(left: &DataType, right: &DataType) -> DataType {
    let width = |data_type: &DataType| match data_type {
        DataType::Int8 => 1,
        DataType::Int16 => 2,
        DataType::Int32 => 3,
        _ => 4,
    };
    if width(left) >= width(right) {
        left.clone()
    } else {
        right.clone()
    }
}

/// A numeric argument type in Trino's terms.
#[derive(Debug, Clone, PartialEq)]
enum Number {
    /// tinyint, smallint, integer or bigint, as the Arrow type that holds it.
    Integer(DataType),
    Decimal(u8, i8),
    Real,
    Double,
}

impl Number {
    fn of(data_type: &DataType) -> Option<Self> {
        use DataType::*;
        Some(match data_type {
            Float16 | Float32 => Number::Real,
            Float64 => Number::Double,
            UInt64 => Number::Decimal(20, 0),
            Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) => Number::Decimal(*p, *s),
            Decimal256(p, s) if *p <= 38 => Number::Decimal(*p, *s),
            Null => return None,
            _ => Number::Integer(signed_integer(data_type)?),
        })
    }

    /// The decimal this number widens to, as Trino widens `bigint` to `decimal(19,0)`.
    fn decimal(&self) -> Option<(u8, i8)> {
        match self {
            Number::Decimal(precision, scale) => Some((*precision, *scale)),
            Number::Integer(DataType::Int8) => Some((3, 0)),
            Number::Integer(DataType::Int16) => Some((5, 0)),
            Number::Integer(DataType::Int32) => Some((10, 0)),
            Number::Integer(_) => Some((19, 0)),
            Number::Real | Number::Double => None,
        }
    }

    /// The Arrow type its values are read in.
    fn data_type(&self) -> DataType {
        match self {
            Number::Integer(data_type) => data_type.clone(),
            Number::Decimal(precision, scale) => DataType::Decimal128(*precision, *scale),
            Number::Real => DataType::Float32,
            Number::Double => DataType::Float64,
        }
    }
}

/// `sign(x)`: -1, 0 or 1 in the type of `x` (`decimal(1,0)` for a decimal). A float keeps
/// NaN and the sign of a zero, as Java's `Math.signum` does.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sign {
    signature: Signature,
}

impl ScalarUDFImpl for Sign {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "sign"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Null] => Ok(vec![DataType::Int64]),
            [data_type] => match Number::of(data_type) {
                Some(number) => Ok(vec![number.data_type()]),
                None => unexpected_parameters("sign", arg_types, SIGN_EXPECTED),
            },
            _ => unexpected_parameters("sign", arg_types, SIGN_EXPECTED),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types {
            [DataType::Decimal128(..)] => DataType::Decimal128(1, 0),
            [data_type] => data_type.clone(),
            _ => DataType::Int64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [values] = arrays.as_slice() else {
            return internal_err!("sign takes one argument");
        };
        let result: ArrayRef = match values.data_type() {
            DataType::Int8 => Arc::new(
                values
                    .as_primitive::<Int8Type>()
                    .unary::<_, Int8Type>(i8::signum),
            ),
            DataType::Int16 => Arc::new(
                values
                    .as_primitive::<Int16Type>()
                    .unary::<_, Int16Type>(i16::signum),
            ),
            DataType::Int32 => Arc::new(
                values
                    .as_primitive::<Int32Type>()
                    .unary::<_, Int32Type>(i32::signum),
            ),
            DataType::Int64 => Arc::new(
                values
                    .as_primitive::<Int64Type>()
                    .unary::<_, Int64Type>(i64::signum),
            ),
            DataType::Float32 => Arc::new(
                values
                    .as_primitive::<Float32Type>()
                    .unary::<_, Float32Type>(|x| float_sign(f64::from(x)) as f32),
            ),
            DataType::Float64 => Arc::new(
                values
                    .as_primitive::<Float64Type>()
                    .unary::<_, Float64Type>(float_sign),
            ),
            DataType::Decimal128(..) => Arc::new(
                values
                    .as_primitive::<Decimal128Type>()
                    .unary::<_, Decimal128Type>(i128::signum)
                    .with_precision_and_scale(1, 0)?,
            ),
            other => return internal_err!("sign of {other}"),
        };
        scalar_result(&args.args, result)
    }
}

const SIGN_EXPECTED: &str = "sign(bigint), sign(integer), sign(smallint), sign(tinyint), \
     sign(double), sign(real), sign(decimal(p,s))";

/// Java's `Math.signum`: ±1, or the argument itself when it is a zero or NaN.
fn float_sign(x: f64) -> f64 {
    if x == 0.0 || x.is_nan() {
        x
    } else {
        x.signum()
    }
}

/// `mod(n, m)`: the remainder of `n / m` with the sign of `n`, in the type both arguments
/// share (for decimals Trino's `decimal(min(p1 - s1, p2 - s2) + max(s1, s2), max(s1, s2))`).
/// A zero `m` is Trino's DIVISION_BY_ZERO for integers and decimals, NaN for floats.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Mod {
    signature: Signature,
}

const MOD_EXPECTED: &str = "mod(tinyint, tinyint), mod(smallint, smallint), \
     mod(integer, integer), mod(bigint, bigint), mod(real, real), mod(double, double), \
     mod(decimal(a_precision,a_scale), decimal(b_precision,b_scale))";

/// The types `mod`'s arguments are cast to: the wider integer, real or double, or each
/// argument as a decimal.
fn mod_types(left: &Number, right: &Number) -> Option<Vec<DataType>> {
    Some(match (left, right) {
        (Number::Double, _) | (_, Number::Double) => vec![DataType::Float64; 2],
        (Number::Real, _) | (_, Number::Real) => vec![DataType::Float32; 2],
        (Number::Integer(left), Number::Integer(right)) => vec![wider_integer(left, right); 2],
        _ => {
            let (left_precision, left_scale) = left.decimal()?;
            let (right_precision, right_scale) = right.decimal()?;
            vec![
                DataType::Decimal128(left_precision, left_scale),
                DataType::Decimal128(right_precision, right_scale),
            ]
        }
    })
}

impl ScalarUDFImpl for Mod {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let coerced = match arg_types {
            [DataType::Null, DataType::Null] => Some(vec![DataType::Int64; 2]),
            [DataType::Null, other] | [other, DataType::Null] => {
                Number::of(other).map(|number| vec![number.data_type(); 2])
            }
            [left, right] => match (Number::of(left), Number::of(right)) {
                (Some(left), Some(right)) => mod_types(&left, &right),
                _ => None,
            },
            _ => None,
        };
        match coerced {
            Some(types) => Ok(types),
            None => unexpected_parameters("mod", arg_types, MOD_EXPECTED),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types {
            [DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)] => {
                let scale = (*s1).max(*s2);
                let integral =
                    (i16::from(*p1) - i16::from(*s1)).min(i16::from(*p2) - i16::from(*s2));
                let precision = (integral + i16::from(scale)).clamp(1, 38);
                DataType::Decimal128(precision as u8, scale)
            }
            [first, ..] => first.clone(),
            [] => DataType::Int64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [left, right] = arrays.as_slice() else {
            return internal_err!("mod takes two arguments");
        };
        // Arrow's remainder: truncated, an error for an integer or decimal zero (which
        // error.rs reports as DIVISION_BY_ZERO), and `i64::MIN % -1` is 0 as in Java.
        let remainder = rem(left, right)?;
        let result = if remainder.data_type() == args.return_field.data_type() {
            remainder
        } else {
            cast(&remainder, args.return_field.data_type())?
        };
        scalar_result(&args.args, result)
    }
}

/// `is_finite(x)` and `is_infinite(x)` on doubles (every other number widens to one).
#[derive(Debug, PartialEq, Eq, Hash)]
struct FloatTest {
    infinite: bool,
    signature: Signature,
}

impl ScalarUDFImpl for FloatTest {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        if self.infinite {
            "is_infinite"
        } else {
            "is_finite"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [data_type] if is_number_or_null(data_type) => Ok(vec![DataType::Float64]),
            _ => {
                let name = self.name();
                unexpected_parameters(name, arg_types, &format!("{name}(double)"))
            }
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [values] = arrays.as_slice() else {
            return internal_err!("{} takes one argument", self.name());
        };
        let result: BooleanArray = float64s(values)?
            .iter()
            .map(|value| {
                value.map(|x| {
                    if self.infinite {
                        x.is_infinite()
                    } else {
                        x.is_finite()
                    }
                })
            })
            .collect();
        scalar_result(&args.args, Arc::new(result))
    }
}

/// `from_base(string, radix)` and `to_base(x, radix)`: integers written in base 2 to 36 as
/// Java's `Long.parseLong` reads them and `Long.toString` writes them (lower case, `-`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct BaseConversion {
    to_base: bool,
    signature: Signature,
}

fn radix_of(radix: i64) -> Result<u32> {
    match u32::try_from(radix) {
        Ok(radix) if (2..=36).contains(&radix) => Ok(radix),
        _ => Err(invalid_argument("Radix must be between 2 and 36")),
    }
}

fn from_base(text: &str, radix: i64) -> Result<i64> {
    let radix = radix_of(radix)?;
    i64::from_str_radix(text, radix)
        .map_err(|_| invalid_argument(format!("Not a valid base-{radix} number: {text}")))
}

fn to_base(value: i64, radix: i64) -> Result<String> {
    let radix = radix_of(radix)?;
    let mut rest = value.unsigned_abs();
    let mut digits = Vec::new();
    loop {
        let digit = (rest % u64::from(radix)) as u32;
        digits.push(char::from_digit(digit, radix).unwrap_or('?'));
        rest /= u64::from(radix);
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        digits.push('-');
    }
    Ok(digits.iter().rev().collect())
}

impl ScalarUDFImpl for BaseConversion {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        if self.to_base {
            "to_base"
        } else {
            "from_base"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value, radix]
                if self.to_base && is_integer_or_null(value) && is_integer_or_null(radix) =>
            {
                Ok(vec![DataType::Int64; 2])
            }
            [DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null, radix]
                if !self.to_base && is_integer_or_null(radix) =>
            {
                Ok(vec![DataType::Utf8, DataType::Int64])
            }
            _ if self.to_base => {
                unexpected_parameters("to_base", arg_types, "to_base(bigint, bigint)")
            }
            _ => unexpected_parameters("from_base", arg_types, "from_base(varchar(x), bigint)"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.to_base {
            DataType::Utf8
        } else {
            DataType::Int64
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [values, radixes] = arrays.as_slice() else {
            return internal_err!("{} takes two arguments", self.name());
        };
        let radixes = int64s(radixes)?;
        let result: ArrayRef = if self.to_base {
            let values = int64s(values)?;
            let texts = values
                .iter()
                .zip(radixes.iter())
                .map(|pair| match pair {
                    (Some(value), Some(radix)) => to_base(value, radix).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<StringArray>>()?;
            Arc::new(texts)
        } else {
            let texts = cast(values, &DataType::Utf8)?;
            let numbers = texts
                .as_string::<i32>()
                .iter()
                .zip(radixes.iter())
                .map(|pair| match pair {
                    (Some(text), Some(radix)) => from_base(text, radix).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<Int64Array>>()?;
            Arc::new(numbers)
        };
        scalar_result(&args.args, result)
    }
}

/// `rand()`, a double in [0, 1); `rand(n)`, an integer in [0, n); `rand(m, n)`, one in
/// [m, n). The integers keep their argument's type. A new value on every row.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Rand {
    signature: Signature,
}

fn random_below(bound: i64) -> Result<i64> {
    check(bound > 0, "bound must be positive")?;
    Ok(fastrand::i64(0..bound))
}

fn random_between(start: i64, stop: i64) -> Result<i64> {
    check(start < stop, "start value must be less than stop value")?;
    Ok(fastrand::i64(start..stop))
}

impl ScalarUDFImpl for Rand {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "rand"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let coerced = match arg_types {
            [] => Some(vec![]),
            [bound] => signed_integer(bound).map(|bound| vec![bound]),
            [start, stop] => match (signed_integer(start), signed_integer(stop)) {
                (Some(start), Some(stop)) => Some(vec![wider_integer(&start, &stop); 2]),
                _ => None,
            },
            _ => None,
        };
        match coerced {
            Some(types) => Ok(types),
            None => unexpected_parameters(
                "rand",
                arg_types,
                "rand(), rand(bigint), rand(bigint, bigint)",
            ),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(arg_types.first().cloned().unwrap_or(DataType::Float64))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = arg_arrays(&args)?;
        let numbers: Int64Array = match arrays.as_slice() {
            [] => {
                let values = Float64Array::from_iter_values((0..rows).map(|_| fastrand::f64()));
                return Ok(ColumnarValue::Array(Arc::new(values)));
            }
            [bound] => int64s(bound)?
                .iter()
                .map(|bound| bound.map(random_below).transpose())
                .collect::<Result<_>>()?,
            [start, stop] => int64s(start)?
                .iter()
                .zip(int64s(stop)?.iter())
                .map(|pair| match pair {
                    (Some(start), Some(stop)) => random_between(start, stop).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<_>>()?,
            _ => return internal_err!("rand takes at most two arguments"),
        };
        Ok(ColumnarValue::Array(cast(
            &numbers,
            args.return_field.data_type(),
        )?))
    }
}

/// What the tests of this module's files share.
#[cfg(test)]
mod test_support {
    use datafusion::common::DataFusionError;

    use crate::error::TrinoError;

    /// The message of a failed call, as the client would read it.
    pub(super) fn message(error: DataFusionError) -> String {
        match error {
            DataFusionError::External(error) => match error.downcast::<TrinoError>() {
                Ok(trino) => trino.message,
                Err(other) => other.to_string(),
            },
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::message;
    use super::*;

    #[test]
    fn bases_convert_as_java_does() {
        assert_eq!(to_base(2_147_483_648, 16).unwrap(), "80000000");
        assert_eq!(to_base(255, 2).unwrap(), "11111111");
        assert_eq!(to_base(-2_147_483_647, 16).unwrap(), "-7fffffff");
        assert_eq!(to_base(0, 7).unwrap(), "0");
        assert_eq!(to_base(i64::MIN, 16).unwrap(), "-8000000000000000");
        assert_eq!(from_base("80000000", 16).unwrap(), 2_147_483_648);
        assert_eq!(from_base("-7FFFFFFF", 16).unwrap(), -2_147_483_647);
        assert_eq!(from_base("-9223372036854775808", 10).unwrap(), i64::MIN);
        assert_eq!(
            message(from_base("Z", 35).unwrap_err()),
            "Not a valid base-35 number: Z"
        );
        assert_eq!(
            message(from_base("9223372036854775808", 10).unwrap_err()),
            "Not a valid base-10 number: 9223372036854775808"
        );
        assert_eq!(
            message(to_base(255, 1).unwrap_err()),
            "Radix must be between 2 and 36"
        );
        assert_eq!(
            message(from_base("Z", 37).unwrap_err()),
            "Radix must be between 2 and 36"
        );
    }

    #[test]
    fn signs_keep_nan_and_signed_zeros() {
        assert_eq!(float_sign(-2.5), -1.0);
        assert_eq!(float_sign(0.1), 1.0);
        assert!(float_sign(-0.0).is_sign_negative());
        assert_eq!(float_sign(0.0), 0.0);
        assert!(float_sign(f64::NAN).is_nan());
    }

    #[test]
    fn mod_arguments_meet_in_trinos_types() {
        let mod_function = Mod {
            signature: user_defined(),
        };
        let coerce = |types: &[DataType]| mod_function.coerce_types(types).unwrap();
        assert_eq!(
            coerce(&[DataType::Int8, DataType::Int32]),
            [DataType::Int32, DataType::Int32]
        );
        assert_eq!(
            coerce(&[DataType::Int64, DataType::Float32]),
            [DataType::Float32, DataType::Float32]
        );
        assert_eq!(
            coerce(&[DataType::Decimal128(5, 2), DataType::Int32]),
            [DataType::Decimal128(5, 2), DataType::Decimal128(10, 0)]
        );
        assert_eq!(
            coerce(&[DataType::Null, DataType::Int16]),
            [DataType::Int16, DataType::Int16]
        );
        assert!(mod_function
            .coerce_types(&[DataType::Utf8, DataType::Int64])
            .is_err());
        assert_eq!(
            mod_function
                .return_type(&[DataType::Decimal128(2, 1), DataType::Decimal128(3, 2)])
                .unwrap(),
            DataType::Decimal128(3, 2)
        );
        assert_eq!(
            mod_function
                .return_type(&[DataType::Decimal128(19, 2), DataType::Decimal128(19, 2)])
                .unwrap(),
            DataType::Decimal128(19, 2)
        );
    }
}
