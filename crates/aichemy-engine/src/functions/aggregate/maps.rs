//! `map_agg`, `multimap_agg` and `map_union`: the accumulator that keeps the input pairs.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ListArray, UInt32Array, UInt64Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::cast::{as_list_array, as_map_array};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Accumulator;

use super::{
    args, compact, concat_pieces, list_scalar, map_scalar, pair_types, pieces_size,
    positions_array, DistinctValues, Kind,
};

/// `map_agg`, `multimap_agg` and `map_union`: the distinct non-NULL keys of the input pairs,
/// each with its first value (`multimap_agg`: with every value, in order of arrival). As in
/// Trino, which value of a repeated key `map_agg` and `map_union` keep is arbitrary: the
/// first to reach the accumulator. The state is the kept pairs.
#[derive(Debug)]
pub(super) struct PairsAccumulator {
    map_type: DataType,
    value_type: DataType,
    /// `multimap_agg` keeps every value of a key.
    every_value: bool,
    /// `map_union` is given maps rather than keys and values.
    input_maps: bool,
    keys: DistinctValues,
    /// The kept values in pieces, in their order of arrival.
    values: Vec<ArrayRef>,
    /// The position in `keys` of the key of each kept value.
    value_keys: Vec<usize>,
}

impl PairsAccumulator {
    pub(super) fn new(kind: Kind, map_type: DataType) -> Result<Self> {
        let (key_type, value_type) = pair_types(kind, &map_type)?;
        Ok(Self {
            keys: DistinctValues::new(&key_type)?,
            map_type,
            value_type,
            every_value: kind == Kind::MultimapAgg,
            input_maps: kind == Kind::MapUnion,
            values: Vec::new(),
            value_keys: Vec::new(),
        })
    }

    /// Adds the pairs whose key is not NULL.
    fn add(&mut self, keys: &ArrayRef, values: &ArrayRef) -> Result<()> {
        let mut kept = Vec::new();
        for (row, position) in self.keys.insert(keys)?.into_iter().enumerate() {
            let Some(position) = position else { continue };
            // Without every value, a key is new when it has no value yet.
            if self.every_value || position == self.value_keys.len() {
                kept.push(row as u32);
                self.value_keys.push(position);
            }
        }
        if !kept.is_empty() {
            let kept = take(values.as_ref(), &UInt32Array::from(kept), None)?;
            self.values.push(kept);
            compact(&mut self.values, &self.value_type)?;
        }
        Ok(())
    }

    /// The values of each key as one list, the keys in order.
    fn grouped(&self, values: ArrayRef) -> Result<ArrayRef> {
        let mut lengths = vec![0usize; self.keys.len()];
        for &key in &self.value_keys {
            lengths[key] += 1;
        }
        let mut next = Vec::with_capacity(lengths.len());
        let mut start = 0;
        for length in &lengths {
            next.push(start);
            start += length;
        }
        let mut order = vec![0u64; self.value_keys.len()];
        for (index, &key) in self.value_keys.iter().enumerate() {
            order[next[key]] = index as u64;
            next[key] += 1;
        }
        let ordered = take(values.as_ref(), &UInt64Array::from(order), None)?;
        let element = Arc::new(Field::new_list_field(self.value_type.clone(), true));
        Ok(Arc::new(ListArray::try_new(
            element,
            OffsetBuffer::from_lengths(lengths),
            ordered,
            None,
        )?))
    }
}

impl Accumulator for PairsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if !self.input_maps {
            let [keys, values] = args::<2>(values)?;
            return self.add(keys, values);
        }
        let [maps] = args::<1>(values)?;
        let maps = as_map_array(maps)?;
        for row in 0..maps.len() {
            if maps.is_valid(row) {
                let entries = maps.value(row);
                self.add(entries.column(0), entries.column(1))?;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [keys, values] = args::<2>(states)?;
        let (keys, values) = (as_list_array(keys)?, as_list_array(values)?);
        for row in 0..keys.len() {
            if keys.is_valid(row) && values.is_valid(row) {
                self.add(&keys.value(row), &values.value(row))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let keys = self.keys.values()?;
        let keys = take(keys.as_ref(), &positions_array(&self.value_keys), None)?;
        let values = concat_pieces(&self.values, &self.value_type)?;
        Ok(vec![list_scalar(keys), list_scalar(values)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.value_keys.is_empty() {
            return ScalarValue::try_from(&self.map_type);
        }
        let values = concat_pieces(&self.values, &self.value_type)?;
        let values = if self.every_value {
            self.grouped(values)?
        } else {
            values
        };
        map_scalar(&self.map_type, self.keys.values()?, values)
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.keys.size()
            + pieces_size(&self.values)
            + self.value_keys.capacity() * size_of::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use crate::functions::aggregate::map_of;
    use crate::functions::aggregate::test_support::{aggregate, entries, int64s, strings};

    use super::*;

    #[test]
    fn map_agg_keeps_the_first_value_of_each_key_and_skips_null_keys() -> Result<()> {
        let map_type = Kind::MapAgg.return_type(&[DataType::Int64, DataType::Utf8]);
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PairsAccumulator::new(
                Kind::MapAgg,
                map_type.clone(),
            )?))
        };
        let result = aggregate(
            &new,
            &[
                vec![
                    int64s(&[Some(1), None, Some(2), Some(1)]),
                    strings(&[Some("a"), Some("x"), None, Some("b")]),
                ],
                vec![
                    int64s(&[Some(3), Some(1)]),
                    strings(&[Some("c"), Some("d")]),
                ],
            ],
        )?;
        assert_eq!(result.data_type(), map_type);
        assert_eq!(entries(&result), ["1: a", "2: ", "3: c"]);
        assert!(new()?.evaluate()?.is_null());
        Ok(())
    }

    #[test]
    fn multimap_agg_keeps_every_value_in_order() -> Result<()> {
        let map_type = Kind::MultimapAgg.return_type(&[DataType::Int64, DataType::Utf8]);
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PairsAccumulator::new(
                Kind::MultimapAgg,
                map_type.clone(),
            )?))
        };
        let result = aggregate(
            &new,
            &[
                vec![
                    int64s(&[Some(1), Some(2), Some(1), None]),
                    strings(&[Some("a"), Some("b"), None, Some("z")]),
                ],
                vec![
                    int64s(&[Some(2), Some(1)]),
                    strings(&[Some("c"), Some("d")]),
                ],
            ],
        )?;
        assert_eq!(result.data_type(), map_type);
        assert_eq!(entries(&result), ["1: [a, , d]", "2: [b, c]"]);
        assert!(new()?.evaluate()?.is_null());
        Ok(())
    }

    #[test]
    fn map_union_keeps_the_first_value_of_each_key() -> Result<()> {
        let map_type = map_of(&DataType::Int64, &DataType::Utf8);
        let map = |keys: &[i64], values: &[&str]| {
            let keys: Vec<Option<i64>> = keys.iter().copied().map(Some).collect();
            let values: Vec<Option<&str>> = values.iter().copied().map(Some).collect();
            map_scalar(&map_type, int64s(&keys), strings(&values))
        };
        let maps = ScalarValue::iter_to_array([
            map(&[1, 2], &["a", "b"])?,
            ScalarValue::try_from(&map_type)?,
            map(&[2, 3], &["x", "c"])?,
        ])?;
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PairsAccumulator::new(
                Kind::MapUnion,
                map_type.clone(),
            )?))
        };
        let more = ScalarValue::iter_to_array([map(&[4, 1], &["d", "y"])?])?;
        let result = aggregate(&new, &[vec![maps], vec![more]])?;
        assert_eq!(entries(&result), ["1: a", "2: b", "3: c", "4: d"]);
        Ok(())
    }
}
