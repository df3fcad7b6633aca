//! Trino's bitwise functions: `bit_count`, `bitwise_and|or|xor|not` on BIGINT, and the
//! shifts, which keep their value's integer type and shift within its width.

use std::any::Any;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, PrimitiveArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Int16Type, Int32Type, Int64Type, Int8Type,
};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::{invalid_argument as invalid, scalar_result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Count,
    And,
    Or,
    Xor,
    Not,
    LeftShift,
    RightShift,
    RightShiftArithmetic,
}

impl Op {
    const ALL: [Op; 8] = [
        Op::Count,
        Op::And,
        Op::Or,
        Op::Xor,
        Op::Not,
        Op::LeftShift,
        Op::RightShift,
        Op::RightShiftArithmetic,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::Count => "bit_count",
            Op::And => "bitwise_and",
            Op::Or => "bitwise_or",
            Op::Xor => "bitwise_xor",
            Op::Not => "bitwise_not",
            Op::LeftShift => "bitwise_left_shift",
            Op::RightShift => "bitwise_right_shift",
            Op::RightShiftArithmetic => "bitwise_right_shift_arithmetic",
        }
    }

    fn is_shift(self) -> bool {
        matches!(
            self,
            Op::LeftShift | Op::RightShift | Op::RightShiftArithmetic
        )
    }
}

/// Registers every bitwise function.
pub fn register(ctx: &SessionContext) {
    for op in Op::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(Bitwise::new(op)));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bitwise {
    op: Op,
    signature: Signature,
}

impl Bitwise {
    fn new(op: Op) -> Self {
        use DataType::*;
        let signature = match op {
            Op::Not => Signature::exact(vec![Int64], Volatility::Immutable),
            // The value keeps its type: the narrowest that takes it without a cast.
            _ if op.is_shift() => Signature::one_of(
                [Int8, Int16, Int32, Int64]
                    .into_iter()
                    .map(|value| TypeSignature::Exact(vec![value, Int64]))
                    .collect(),
                Volatility::Immutable,
            ),
            _ => Signature::exact(vec![Int64, Int64], Volatility::Immutable),
        };
        Self { op, signature }
    }
}

/// `bit_count(x, bits)`: the 1 bits of `x` as a `bits`-wide two's complement number.
fn bit_count(x: i64, bits: i64) -> Result<i64> {
    if !(2..=64).contains(&bits) {
        return Err(invalid(format!(
            "Bits specified in bit_count must be between 2 and 64, got {bits}"
        )));
    }
    let low = -(1i128 << (bits - 1));
    let high = (1i128 << (bits - 1)) - 1;
    if !(low..=high).contains(&i128::from(x)) {
        return Err(invalid(format!(
            "Number must be representable with the bits specified. {x} cannot be represented with {bits} bits"
        )));
    }
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    Ok(i64::from(((x as u64) & mask).count_ones() as u8))
}

/// A shift of `value`, a number of `width` bits, by `shift` places.
fn shift(op: Op, value: i64, shift: i64, width: u32) -> i64 {
    let mask = if width == 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    };
    let out_of_range = shift < 0 || shift >= i64::from(width);
    let bits = (value as u64) & mask;
    let shifted = match op {
        Op::LeftShift if out_of_range => 0,
        Op::LeftShift => bits << shift,
        Op::RightShift if out_of_range => 0,
        Op::RightShift => bits >> shift,
        Op::RightShiftArithmetic if out_of_range => {
            return if value < 0 { -1 } else { 0 };
        }
        Op::RightShiftArithmetic => return value >> shift,
        _ => unreachable!("not a shift"),
    };
    // Back to a signed number of `width` bits.
    let unused = 64 - width;
    (((shifted & mask) << unused) as i64) >> unused
}

fn shifted<T>(op: Op, values: &ArrayRef, shifts: &Int64Array) -> Result<ArrayRef>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64> + TryFrom<i64>,
{
    let width = (std::mem::size_of::<T::Native>() * 8) as u32;
    let values = values.as_primitive::<T>();
    let out: PrimitiveArray<T> = values
        .iter()
        .zip(shifts.iter())
        .map(|(value, by)| {
            let (value, by) = (value?, by?);
            T::Native::try_from(shift(op, value.into(), by, width)).ok()
        })
        .collect();
    Ok(std::sync::Arc::new(out))
}

impl ScalarUDFImpl for Bitwise {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.op.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.op.is_shift() {
            arg_types[0].clone()
        } else {
            DataType::Int64
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let int64 = |array: &ArrayRef| -> Result<Int64Array> {
            Ok(cast(array, &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone())
        };
        let result: ArrayRef = if self.op.is_shift() {
            let shifts = int64(&arrays[1])?;
            match arrays[0].data_type() {
                DataType::Int8 => shifted::<Int8Type>(self.op, &arrays[0], &shifts)?,
                DataType::Int16 => shifted::<Int16Type>(self.op, &arrays[0], &shifts)?,
                DataType::Int32 => shifted::<Int32Type>(self.op, &arrays[0], &shifts)?,
                _ => shifted::<Int64Type>(self.op, &arrays[0], &shifts)?,
            }
        } else if self.op == Op::Not {
            let x = int64(&arrays[0])?;
            std::sync::Arc::new(x.iter().map(|x| x.map(|x| !x)).collect::<Int64Array>())
        } else {
            let (x, y) = (int64(&arrays[0])?, int64(&arrays[1])?);
            let out = x
                .iter()
                .zip(y.iter())
                .map(|pair| match pair {
                    (Some(x), Some(y)) => match self.op {
                        Op::Count => bit_count(x, y).map(Some),
                        Op::And => Ok(Some(x & y)),
                        Op::Or => Ok(Some(x | y)),
                        _ => Ok(Some(x ^ y)),
                    },
                    _ => Ok(None),
                })
                .collect::<Result<Int64Array>>()?;
            std::sync::Arc::new(out)
        };
        scalar_result(&args.args, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_counted_and_shifted_as_trino_does() {
        assert_eq!(bit_count(9, 64).unwrap(), 2);
        assert_eq!(bit_count(-7, 64).unwrap(), 62);
        assert_eq!(bit_count(-7, 8).unwrap(), 6);
        assert!(bit_count(9, 4).is_err());
        assert!(bit_count(1, 65).is_err());
        assert_eq!(shift(Op::LeftShift, 5, 2, 64), 20);
        assert_eq!(shift(Op::RightShift, 8, 3, 64), 1);
        assert_eq!(shift(Op::RightShift, -45, 64, 64), 0);
        assert_eq!(shift(Op::RightShiftArithmetic, -45, 64, 64), -1);
        assert_eq!(shift(Op::RightShiftArithmetic, -8, 1, 64), -4);
        // Within the value's own width: 0b0111_1111 << 1 is -2 as a TINYINT.
        assert_eq!(shift(Op::LeftShift, 127, 1, 8), -2);
        assert_eq!(shift(Op::RightShift, -1, 4, 8), 15);
    }
}
