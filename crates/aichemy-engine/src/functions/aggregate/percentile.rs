//! `approx_percentile`, exactly, from the sorted values.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, UInt64Array};
use datafusion::arrow::compute::{sort, take};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type};
use datafusion::common::cast::{as_float64_array, as_list_array};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Accumulator;

use super::{args, compact, concat_pieces, list_of, list_scalar, pieces_size, rows_without_nulls};
use crate::functions::invalid_argument;

/// `approx_percentile(x, percentage)` and `approx_percentile(x, percentages)`, exactly: every
/// value is kept, and the answer at percentage p of n sorted values is the one at index
/// min(⌊p·n⌋, n-1), which is what Trino's t-digest answers while it holds each value as a
/// centroid of its own (up to about a hundred values); on larger inputs Trino's answer is an
/// interpolated estimate near it. A BIGINT must be exact as a DOUBLE, a REAL or DOUBLE finite,
/// and the percentages (those of the first row) between 0 and 1, as in Trino.
#[derive(Debug)]
pub(super) struct PercentileAccumulator {
    value_type: DataType,
    /// Given an array of percentages, it answers an array.
    many: bool,
    values: Vec<ArrayRef>,
    percentages: Option<Vec<f64>>,
}

impl PercentileAccumulator {
    pub(super) fn new(value_type: &DataType, many: bool) -> Self {
        Self {
            value_type: value_type.clone(),
            many,
            values: Vec::new(),
            percentages: None,
        }
    }

    fn return_type(&self) -> DataType {
        if self.many {
            list_of(&self.value_type)
        } else {
            self.value_type.clone()
        }
    }
}

/// The percentages of a row: its one percentage, or the elements of its array.
fn percentages_at(percentages: &ArrayRef, row: usize) -> Result<Vec<f64>> {
    let values: Vec<f64> = if let DataType::List(_) = percentages.data_type() {
        let element = as_list_array(percentages)?.value(row);
        as_float64_array(&element)?
            .iter()
            .map(|p| p.ok_or_else(|| invalid_argument("Percentile cannot be null")))
            .collect::<Result<_>>()?
    } else {
        vec![as_float64_array(percentages)?.value(row)]
    };
    if values.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return Err(invalid_argument("Percentile must be between 0 and 1"));
    }
    Ok(values)
}

/// Trino's checks of the values a t-digest takes.
fn check_percentile_values(values: &ArrayRef) -> Result<()> {
    fn not_finite(value: f64) -> Result<()> {
        let shown = if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        Err(invalid_argument(format!(
            "value must be finite; was {shown}"
        )))
    }
    match values.data_type() {
        DataType::Float64 => {
            let values = values.as_primitive::<Float64Type>();
            if let Some(value) = values.iter().flatten().find(|v| !v.is_finite()) {
                return not_finite(value);
            }
        }
        DataType::Float32 => {
            let values = values.as_primitive::<Float32Type>();
            if let Some(value) = values.iter().flatten().find(|v| !v.is_finite()) {
                return not_finite(f64::from(value));
            }
        }
        DataType::Int64 => {
            let values = values.as_primitive::<Int64Type>();
            if let Some(value) = values.iter().flatten().find(|&v| v as f64 as i64 != v) {
                return Err(invalid_argument(format!(
                    "no exact double representation for long: {value}"
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = rows_without_nulls(values)?;
        let [values, percentages] = args::<2>(&rows)?;
        if values.is_empty() {
            return Ok(());
        }
        check_percentile_values(values)?;
        if self.percentages.is_none() {
            self.percentages = Some(percentages_at(percentages, 0)?);
        }
        self.values.push(Arc::clone(values));
        compact(&mut self.values, &self.value_type)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, percentages] = args::<2>(states)?;
        let values = as_list_array(values)?;
        for row in 0..values.len() {
            if self.percentages.is_none() && percentages.is_valid(row) {
                self.percentages = Some(percentages_at(percentages, row)?);
            }
            if values.is_valid(row) {
                let row_values = values.value(row);
                if !row_values.is_empty() {
                    self.values.push(row_values);
                }
            }
        }
        compact(&mut self.values, &self.value_type)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let percentages = match &self.percentages {
            Some(percentages) => list_scalar(Arc::new(Float64Array::from(percentages.clone()))),
            None => ScalarValue::new_null_list(DataType::Float64, true, 1),
        };
        Ok(vec![
            list_scalar(concat_pieces(&self.values, &self.value_type)?),
            percentages,
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let values = concat_pieces(&self.values, &self.value_type)?;
        let Some(percentages) = self.percentages.as_ref().filter(|_| !values.is_empty()) else {
            return ScalarValue::try_from(&self.return_type());
        };
        let sorted = sort(values.as_ref(), None)?;
        let count = sorted.len();
        let index = |p: f64| ((p * count as f64).floor() as usize).min(count - 1);
        if self.many {
            let indices = percentages.iter().map(|&p| index(p) as u64);
            let indices = UInt64Array::from_iter_values(indices);
            return Ok(list_scalar(take(sorted.as_ref(), &indices, None)?));
        }
        match percentages.first() {
            Some(&p) => ScalarValue::try_from_array(&sorted, index(p)),
            None => ScalarValue::try_from(&self.return_type()),
        }
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + pieces_size(&self.values)
            + self
                .percentages
                .as_ref()
                .map_or(0, |percentages| percentages.capacity() * size_of::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float32Array, ListArray};

    use crate::functions::aggregate::test_support::{aggregate, float64s, int64s, text};

    use super::*;

    fn percentile_args(values: ArrayRef, percentage: f64) -> Vec<ArrayRef> {
        let rows = values.len();
        vec![values, float64s(&vec![Some(percentage); rows])]
    }

    fn percentiles_args(values: ArrayRef, percentages: &[f64]) -> Vec<ArrayRef> {
        let row = Some(percentages.iter().copied().map(Some).collect::<Vec<_>>());
        let lists = ListArray::from_iter_primitive::<Float64Type, _, _>(std::iter::repeat_n(
            row,
            values.len(),
        ));
        vec![values, Arc::new(lists)]
    }

    // Expected answers from Trino's TestApproximatePercentileAggregation.
    #[test]
    fn approx_percentile_picks_trinos_rank() -> Result<()> {
        let one = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PercentileAccumulator::new(
                &DataType::Int64,
                false,
            )))
        };
        let many = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PercentileAccumulator::new(&DataType::Int64, true)))
        };
        let small = || int64s(&[None, Some(1), Some(2), Some(3)]);
        let result = aggregate(&one, &[percentile_args(small(), 0.5)])?;
        assert_eq!(result, ScalarValue::Int64(Some(2)));
        let result = aggregate(&many, &[percentiles_args(small(), &[0.8, 0.2, 0.5])])?;
        assert_eq!(text(&result.to_array()?, 0), "[3, 1, 2]");

        let (first, second) = (
            int64s(&[
                Some(1),
                None,
                Some(2),
                Some(2),
                None,
                Some(2),
                Some(2),
                None,
                Some(2),
            ]),
            int64s(&[
                Some(2),
                None,
                Some(3),
                Some(3),
                None,
                Some(3),
                None,
                Some(3),
            ]),
        );
        let third = int64s(&[Some(4), Some(5), Some(6), Some(7)]);
        let result = aggregate(
            &one,
            &[
                percentile_args(Arc::clone(&first), 0.5),
                percentile_args(Arc::clone(&second), 0.5),
                percentile_args(Arc::clone(&third), 0.5),
            ],
        )?;
        assert_eq!(result, ScalarValue::Int64(Some(3)));
        let result = aggregate(
            &many,
            &[
                percentiles_args(first, &[0.01, 0.5]),
                percentiles_args(second, &[0.01, 0.5]),
                percentiles_args(third, &[0.01, 0.5]),
            ],
        )?;
        assert_eq!(text(&result.to_array()?, 0), "[1, 3]");

        let reals = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PercentileAccumulator::new(
                &DataType::Float32,
                false,
            )))
        };
        let values: ArrayRef = Arc::new(Float32Array::from(vec![-1.0, 1.0]));
        let result = aggregate(&reals, &[percentile_args(values, 0.5)])?;
        assert_eq!(result, ScalarValue::Float32(Some(1.0)));
        let values: ArrayRef = Arc::new(Float32Array::from(vec![-2.0, 3.0, -1.0]));
        let result = aggregate(&reals, &[percentile_args(values, 0.5)])?;
        assert_eq!(result, ScalarValue::Float32(Some(-1.0)));

        assert_eq!(one()?.evaluate()?, ScalarValue::Int64(None));
        let error = one()?
            .update_batch(&percentile_args(int64s(&[Some(1)]), 1.5))
            .unwrap_err();
        assert!(error
            .to_string()
            .contains("Percentile must be between 0 and 1"));
        let mut doubles = PercentileAccumulator::new(&DataType::Float64, false);
        let error = doubles
            .update_batch(&percentile_args(float64s(&[Some(f64::NAN)]), 0.5))
            .unwrap_err();
        assert!(error.to_string().contains("value must be finite; was NaN"));
        Ok(())
    }
}
