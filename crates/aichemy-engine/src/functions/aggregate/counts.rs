//! `histogram` and `approx_most_frequent`: the accumulator that counts each distinct value.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::cast::{as_int64_array, as_list_array};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Accumulator;

use super::{
    args, list_scalar, map_of, map_scalar, positions_array, rows_without_nulls, DistinctValues,
};
use crate::functions::invalid_argument;

/// `histogram` and `approx_most_frequent`: how often each distinct non-NULL value occurs.
///
/// `approx_most_frequent` counts exactly (Trino's stream summary of `capacity` counters
/// estimates), so `capacity` is not used; it returns the `buckets` most frequent values,
/// ties in the order of the values (arbitrary in Trino).
#[derive(Debug)]
pub(super) struct CountsAccumulator {
    map_type: DataType,
    values: DistinctValues,
    counts: Vec<i64>,
    most_frequent: bool,
    /// `approx_most_frequent`'s bucket count, as its first row gives it.
    buckets: Option<i64>,
}

impl CountsAccumulator {
    pub(super) fn new(value_type: &DataType, most_frequent: bool) -> Result<Self> {
        Ok(Self {
            map_type: map_of(value_type, &DataType::Int64),
            values: DistinctValues::new(value_type)?,
            counts: Vec::new(),
            most_frequent,
            buckets: None,
        })
    }

    /// Counts each non-NULL value of `values` `count(row)` times.
    fn add(&mut self, values: &ArrayRef, count: impl Fn(usize) -> i64) -> Result<()> {
        for (row, position) in self.values.insert(values)?.into_iter().enumerate() {
            let Some(position) = position else { continue };
            if position == self.counts.len() {
                self.counts.push(0);
            }
            self.counts[position] += count(row);
        }
        Ok(())
    }

    fn set_buckets(&mut self, buckets: i64) -> Result<()> {
        if self.buckets.is_none() {
            if buckets < 2 {
                return Err(invalid_argument(
                    "approx_most_frequent bucket count must be greater than one",
                ));
            }
            self.buckets = Some(buckets);
        }
        Ok(())
    }
}

impl Accumulator for CountsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if !self.most_frequent {
            let [values] = args::<1>(values)?;
            return self.add(values, |_| 1);
        }
        let rows = rows_without_nulls(values)?;
        let [buckets, values, _capacity] = args::<3>(&rows)?;
        if values.is_empty() {
            return Ok(());
        }
        self.set_buckets(as_int64_array(buckets)?.value(0))?;
        self.add(values, |_| 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let values = as_list_array(&states[0])?;
        let counts = as_list_array(&states[1])?;
        let buckets = states
            .get(2)
            .map(|buckets| as_int64_array(buckets.as_ref()))
            .transpose()?;
        for row in 0..values.len() {
            if let Some(buckets) = buckets.filter(|buckets| buckets.is_valid(row)) {
                self.set_buckets(buckets.value(row))?;
            }
            if values.is_valid(row) && counts.is_valid(row) {
                let row_counts = counts.value(row);
                let row_counts = as_int64_array(&row_counts)?;
                self.add(&values.value(row), |index| row_counts.value(index))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut state = vec![
            list_scalar(self.values.values()?),
            list_scalar(Arc::new(Int64Array::from(self.counts.clone()))),
        ];
        if self.most_frequent {
            state.push(ScalarValue::Int64(self.buckets));
        }
        Ok(state)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.counts.is_empty() {
            return ScalarValue::try_from(&self.map_type);
        }
        let values = self.values.values()?;
        let Some(buckets) = self.buckets.filter(|_| self.most_frequent) else {
            let counts = Arc::new(Int64Array::from(self.counts.clone()));
            return map_scalar(&self.map_type, values, counts);
        };
        // The most frequent first, ties in the order of the values.
        let mut order: Vec<usize> = (0..self.counts.len()).collect();
        order.sort_by(|&a, &b| {
            self.counts[b]
                .cmp(&self.counts[a])
                .then_with(|| self.values.row(a).cmp(&self.values.row(b)))
        });
        order.truncate(usize::try_from(buckets).unwrap_or(usize::MAX));
        let values = take(values.as_ref(), &positions_array(&order), None)?;
        let counts = Int64Array::from_iter_values(order.iter().map(|&index| self.counts[index]));
        map_scalar(&self.map_type, values, Arc::new(counts))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.values.size() + self.counts.capacity() * size_of::<i64>()
    }
}

#[cfg(test)]
mod tests {
    use crate::functions::aggregate::test_support::{aggregate, entries, int64s, strings};
    use crate::functions::aggregate::Kind;

    use super::*;

    #[test]
    fn histogram_counts_each_value() -> Result<()> {
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(CountsAccumulator::new(&DataType::Utf8, false)?))
        };
        let result = aggregate(
            &new,
            &[
                vec![strings(&[Some("a"), Some("b"), None, Some("a")])],
                vec![strings(&[Some("b"), Some("a"), Some("c")])],
            ],
        )?;
        assert_eq!(
            result.data_type(),
            Kind::Histogram.return_type(&[DataType::Utf8])
        );
        assert_eq!(entries(&result), ["a: 3", "b: 2", "c: 1"]);
        assert!(new()?.evaluate()?.is_null());
        Ok(())
    }

    fn most_frequent_args(buckets: i64, values: &[Option<i64>]) -> Vec<ArrayRef> {
        vec![
            int64s(&vec![Some(buckets); values.len()]),
            int64s(values),
            int64s(&vec![Some(10); values.len()]),
        ]
    }

    #[test]
    fn approx_most_frequent_keeps_the_most_frequent_values() -> Result<()> {
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(CountsAccumulator::new(&DataType::Int64, true)?))
        };
        let result = aggregate(
            &new,
            &[
                most_frequent_args(2, &[Some(1), Some(2), Some(2), None, Some(3)]),
                most_frequent_args(2, &[Some(3), Some(1), Some(2), Some(4)]),
            ],
        )?;
        // 1 and 3 both occur twice: the smaller value wins the tie.
        assert_eq!(entries(&result), ["2: 3", "1: 2"]);

        let error = new()?
            .update_batch(&most_frequent_args(1, &[Some(1)]))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("bucket count must be greater than one"),
            "{error}"
        );
        Ok(())
    }
}
