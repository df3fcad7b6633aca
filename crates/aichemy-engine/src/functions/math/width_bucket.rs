//! `width_bucket(x, bound1, bound2, n)` and `width_bucket(x, bins)`, as Trino computes them.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type};
use datafusion::common::{internal_err, DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature};

use super::{check, float64s, int64s, is_integer_or_null, is_number_or_null};
use crate::error::{ErrorCode, TrinoError};
use crate::functions::json::value::java_double;
use crate::functions::{invalid_argument, scalar_result, unexpected_parameters};

/// Trino's NUMERIC_VALUE_OUT_OF_RANGE.
fn out_of_range(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::NUMERIC_VALUE_OUT_OF_RANGE,
        message,
    )))
}

/// `width_bucket(x, bound1, bound2, n)`, the bucket of `x` among `n` equal ones between
/// the bounds (0 below, n + 1 above), and `width_bucket(x, bins)`, the number of sorted
/// `bins` at or below `x`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct WidthBucket {
    pub(super) signature: Signature,
}

fn bins_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)))
}

fn is_number_list(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(field) | DataType::LargeList(field) | DataType::FixedSizeList(field, _) => {
            is_number_or_null(field.data_type())
        }
        DataType::Null => true,
        _ => false,
    }
}

/// Trino's `widthBucket(double, double, double, bigint)`, checks and all.
fn width_bucket(operand: f64, bound1: f64, bound2: f64, count: i64) -> Result<i64> {
    check(count > 0, "bucketCount must be greater than 0")?;
    check(!operand.is_nan(), "operand must not be NaN")?;
    check(bound1.is_finite(), "first bound must be finite")?;
    check(bound2.is_finite(), "second bound must be finite")?;
    check(bound1 != bound2, "bounds cannot equal each other")?;
    let (lower, upper) = (bound1.min(bound2), bound1.max(bound2));
    let bucket = if operand < lower {
        0
    } else if operand >= upper {
        count.checked_add(1).ok_or_else(|| {
            out_of_range(format!(
                "Bucket for value {} is out of range",
                java_double(operand)
            ))
        })?
    } else {
        (count as f64 * (operand - lower) / (upper - lower) + 1.0) as i64
    };
    Ok(if bound1 > bound2 {
        count.wrapping_sub(bucket).wrapping_add(1)
    } else {
        bucket
    })
}

/// Trino's `widthBucket(double, array(double))`: a binary search that checks the bins it
/// visits are sorted and finite.
fn bucket_of(operand: f64, bins: &[f64]) -> Result<i64> {
    check(!bins.is_empty(), "Bins cannot be an empty array")?;
    check(!operand.is_nan(), "Operand cannot be NaN")?;
    let (mut lower, mut upper) = (0, bins.len());
    while lower < upper {
        if bins[lower] > bins[upper - 1] {
            return Err(invalid_argument(
                "Bin values are not sorted in ascending order",
            ));
        }
        let index = (lower + upper) / 2;
        let bin = bins[index];
        if !bin.is_finite() {
            return Err(invalid_argument(format!(
                "Bin value must be finite, got {}",
                java_double(bin)
            )));
        }
        if operand < bin {
            upper = index;
        } else {
            lower = index + 1;
        }
    }
    Ok(lower as i64)
}

impl ScalarUDFImpl for WidthBucket {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "width_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [operand, bound1, bound2, count]
                if [operand, bound1, bound2].into_iter().all(is_number_or_null)
                    && is_integer_or_null(count) =>
            {
                Ok(vec![
                    DataType::Float64,
                    DataType::Float64,
                    DataType::Float64,
                    DataType::Int64,
                ])
            }
            [operand, bins] if is_number_or_null(operand) && is_number_list(bins) => {
                Ok(vec![DataType::Float64, bins_type()])
            }
            _ => unexpected_parameters(
                "width_bucket",
                arg_types,
                "width_bucket(double, double, double, bigint), width_bucket(double, array(double))",
            ),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result: Int64Array = match arrays.as_slice() {
            [operand, bound1, bound2, count] => {
                let operands = float64s(operand)?;
                let (lows, highs, counts) = (float64s(bound1)?, float64s(bound2)?, int64s(count)?);
                (0..operands.len())
                    .map(|row| {
                        if operands.is_null(row)
                            || lows.is_null(row)
                            || highs.is_null(row)
                            || counts.is_null(row)
                        {
                            return Ok(None);
                        }
                        width_bucket(
                            operands.value(row),
                            lows.value(row),
                            highs.value(row),
                            counts.value(row),
                        )
                        .map(Some)
                    })
                    .collect::<Result<_>>()?
            }
            [operand, bins] => {
                let operands = float64s(operand)?;
                let bins = cast(bins, &bins_type())?;
                let bins = bins.as_list::<i32>();
                (0..operands.len())
                    .map(|row| {
                        if operands.is_null(row) || bins.is_null(row) {
                            return Ok(None);
                        }
                        let values = bins.value(row);
                        bucket_of(
                            operands.value(row),
                            values.as_primitive::<Float64Type>().values(),
                        )
                        .map(Some)
                    })
                    .collect::<Result<_>>()?
            }
            _ => return internal_err!("width_bucket takes two or four arguments"),
        };
        scalar_result(&args.args, Arc::new(result))
    }
}

#[cfg(test)]
mod tests {
    use crate::functions::math::test_support::message;

    use super::*;

    #[test]
    fn width_buckets_follow_trino() {
        assert_eq!(width_bucket(3.25, 0.0, 4.0, 3).unwrap(), 3);
        assert_eq!(width_bucket(2.0, 0.0, 4.0, 3).unwrap(), 2);
        assert_eq!(width_bucket(f64::INFINITY, 0.0, 4.0, 3).unwrap(), 4);
        assert_eq!(width_bucket(-1.0, 0.0, 3.2, 4).unwrap(), 0);
        // Descending bounds are not the mirror image of ascending ones.
        assert_eq!(width_bucket(3.25, 4.0, 0.0, 3).unwrap(), 1);
        assert_eq!(width_bucket(2.0, 4.0, 0.0, 3).unwrap(), 2);
        assert_eq!(width_bucket(f64::INFINITY, 4.0, 0.0, 3).unwrap(), 0);
        assert_eq!(width_bucket(-1.0, 3.2, 0.0, 4).unwrap(), 5);
        let failure = |operand, bound1, bound2, count| {
            message(width_bucket(operand, bound1, bound2, count).unwrap_err())
        };
        assert_eq!(
            failure(3.25, 0.0, 4.0, 0),
            "bucketCount must be greater than 0"
        );
        assert_eq!(failure(f64::NAN, 0.0, 4.0, 3), "operand must not be NaN");
        assert_eq!(
            failure(3.25, -1.0, -1.0, 3),
            "bounds cannot equal each other"
        );
        assert_eq!(
            failure(3.25, f64::NAN, -1.0, 3),
            "first bound must be finite"
        );
        assert_eq!(
            failure(3.25, -1.0, f64::INFINITY, 3),
            "second bound must be finite"
        );
        assert_eq!(
            failure(f64::INFINITY, 0.0, 4.0, i64::MAX),
            "Bucket for value Infinity is out of range"
        );
        assert_eq!(bucket_of(3.5, &[1.0, 2.0, 3.0, 4.0]).unwrap(), 3);
        assert_eq!(bucket_of(0.0, &[1.0, 2.0]).unwrap(), 0);
        assert_eq!(bucket_of(2.0, &[1.0, 2.0]).unwrap(), 2);
        assert_eq!(
            message(bucket_of(1.0, &[]).unwrap_err()),
            "Bins cannot be an empty array"
        );
        assert_eq!(
            message(bucket_of(1.0, &[3.0, 2.0, 1.0]).unwrap_err()),
            "Bin values are not sorted in ascending order"
        );
        assert_eq!(
            message(bucket_of(1.0, &[0.0, f64::INFINITY, 5.0]).unwrap_err()),
            "Bin value must be finite, got Infinity"
        );
        assert_eq!(
            message(bucket_of(1.0, &[0.0, f64::NAN, 5.0]).unwrap_err()),
            "Bin value must be finite, got NaN"
        );
    }
}
