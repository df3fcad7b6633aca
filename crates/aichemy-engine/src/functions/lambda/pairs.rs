//! The lambda functions over two values at a time: `zip_with` (elements of two arrays at
//! the same position, NULL past the shorter one), `array_sort` with a comparator (each
//! array sorted by the sign of the comparator on every pair of its elements) and the map
//! functions, whose lambdas
//! take a key and its value: `transform_keys`, `transform_values`, `map_filter` and
//! `map_zip_with` (the keys of both maps, NULL for the value a map lacks).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, ListArray, MapArray, StructArray,
    UInt32Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, filter, interleave, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;

use super::{evaluate as run_body, LambdaKind};
use crate::functions::invalid_argument;

/// Evaluates a two-parameter lambda function over its array or map arguments.
pub(super) fn evaluate(
    kind: LambdaKind,
    body: &Arc<dyn PhysicalExpr>,
    arrays: &[ArrayRef],
    captures: &[ArrayRef],
    returned: &FieldRef,
    rows: usize,
) -> Result<ArrayRef> {
    let inputs = if kind == LambdaKind::ZipWith || kind == LambdaKind::MapZipWith {
        &arrays[..2]
    } else {
        &arrays[..1]
    };
    if inputs.iter().any(|a| a.data_type() == &DataType::Null) {
        return Ok(new_null_array(returned.data_type(), rows));
    }
    let capture_types: Vec<DataType> = captures.iter().map(|a| a.data_type().clone()).collect();
    let lambda = Lambda {
        body,
        captures,
        capture_types: &capture_types,
    };
    match kind {
        LambdaKind::ZipWith => zip_with(&lambda, &arrays[0], &arrays[1], returned, rows),
        LambdaKind::ArraySort => sort_with(&lambda, &arrays[0], returned, rows),
        LambdaKind::MapZipWith => map_zip_with(
            &lambda,
            arrays[0].as_map(),
            arrays[1].as_map(),
            returned,
            rows,
        ),
        _ => map_lambda(kind, &lambda, arrays[0].as_map(), returned, rows),
    }
}

struct Lambda<'a> {
    body: &'a Arc<dyn PhysicalExpr>,
    captures: &'a [ArrayRef],
    capture_types: &'a [DataType],
}

impl Lambda<'_> {
    /// The body over `params` (one value per element), each element seeing the captured
    /// values of the row `owner` names.
    fn run(&self, params: Vec<ArrayRef>, owner: &UInt32Array) -> Result<ArrayRef> {
        let types: Vec<DataType> = params.iter().map(|p| p.data_type().clone()).collect();
        let count = owner.len();
        let mut columns = params;
        for capture in self.captures {
            columns.push(take(capture.as_ref(), owner, None)?);
        }
        run_body(self.body, columns, count, &types, self.capture_types)
    }
}

/// The row of each element between `offsets`.
fn owners(offsets: &[i32]) -> UInt32Array {
    let mut owner = Vec::with_capacity((offsets[offsets.len() - 1] - offsets[0]) as usize);
    for row in 0..offsets.len() - 1 {
        owner.extend(std::iter::repeat_n(
            row as u32,
            (offsets[row + 1] - offsets[row]) as usize,
        ));
    }
    UInt32Array::from(owner)
}

fn rebased(offsets: &[i32]) -> OffsetBuffer<i32> {
    let first = offsets[0];
    OffsetBuffer::new(offsets.iter().map(|o| o - first).collect::<Vec<_>>().into())
}

/// The entries field and key/value fields of a map type.
fn map_fields(data_type: &DataType) -> Result<(FieldRef, Fields)> {
    match data_type {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => Ok((entries.clone(), kv.clone())),
            other => exec_err!("Expected map entries, got {other}"),
        },
        other => exec_err!("Expected a map, got {other}"),
    }
}

fn build_map(
    returned: &DataType,
    offsets: OffsetBuffer<i32>,
    keys: ArrayRef,
    values: ArrayRef,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef> {
    let (entries, kv) = map_fields(returned)?;
    let keys = cast(&keys, kv[0].data_type())?;
    let values = cast(&values, kv[1].data_type())?;
    let entries_array = StructArray::try_new(kv, vec![keys, values], None)?;
    Ok(Arc::new(MapArray::try_new(
        entries,
        offsets,
        entries_array,
        nulls,
        false,
    )?))
}

/// `transform_keys`, `transform_values`, `map_filter`.
fn map_lambda(
    kind: LambdaKind,
    lambda: &Lambda,
    map: &MapArray,
    returned: &FieldRef,
    rows: usize,
) -> Result<ArrayRef> {
    let offsets = map.value_offsets();
    let (first, last) = (offsets[0] as usize, offsets[rows] as usize);
    let keys = map.keys().slice(first, last - first);
    let values = map.values().slice(first, last - first);
    let owner = owners(&offsets[..=rows]);
    let result = lambda.run(vec![keys.clone(), values.clone()], &owner)?;
    match kind {
        LambdaKind::TransformValues => build_map(
            returned.data_type(),
            rebased(&offsets[..=rows]),
            keys,
            result,
            map.nulls().cloned(),
        ),
        LambdaKind::TransformKeys => {
            let (_, kv) = map_fields(returned.data_type())?;
            let new_keys = cast(&result, kv[0].data_type())?;
            check_keys(&new_keys, &offsets[..=rows])?;
            build_map(
                returned.data_type(),
                rebased(&offsets[..=rows]),
                new_keys,
                values,
                map.nulls().cloned(),
            )
        }
        _ => {
            let mask = cast(&result, &DataType::Boolean)?;
            let mask = mask.as_boolean();
            let keep = BooleanArray::from(
                (0..mask.len())
                    .map(|i| Some(mask.is_valid(i) && mask.value(i)))
                    .collect::<Vec<_>>(),
            );
            let mut new_offsets = vec![0i32];
            for row in 0..rows {
                let start = offsets[row] as usize - first;
                let end = offsets[row + 1] as usize - first;
                let kept = (start..end).filter(|i| keep.value(*i)).count() as i32;
                new_offsets.push(new_offsets[row] + kept);
            }
            build_map(
                returned.data_type(),
                OffsetBuffer::new(new_offsets.into()),
                filter(keys.as_ref(), &keep)?,
                filter(values.as_ref(), &keep)?,
                map.nulls().cloned(),
            )
        }
    }
}

/// Trino's checks on the keys `transform_keys` makes: none NULL, none twice in a map.
fn check_keys(keys: &ArrayRef, offsets: &[i32]) -> Result<()> {
    let first = offsets[0] as usize;
    for row in 0..offsets.len() - 1 {
        let mut seen = HashMap::new();
        for i in offsets[row] as usize - first..offsets[row + 1] as usize - first {
            let key = ScalarValue::try_from_array(keys, i)?;
            if key.is_null() {
                return Err(invalid_argument("map key cannot be null"));
            }
            if seen.insert(key.clone(), ()).is_some() {
                return Err(invalid_argument(format!(
                    "Duplicate keys ({key}) are not allowed"
                )));
            }
        }
    }
    Ok(())
}

/// `zip_with(a, b, (x, y) -> …)`.
fn zip_with(
    lambda: &Lambda,
    left: &ArrayRef,
    right: &ArrayRef,
    returned: &FieldRef,
    rows: usize,
) -> Result<ArrayRef> {
    let as_list = |array: &ArrayRef| -> Result<ArrayRef> {
        let element = super::element_type(array.data_type())?;
        Ok(cast(
            array,
            &DataType::List(Arc::new(Field::new("element", element, true))),
        )?)
    };
    let (left, right) = (as_list(left)?, as_list(right)?);
    let (left, right) = (left.as_list::<i32>(), right.as_list::<i32>());
    let mut offsets = vec![0i32];
    let (mut left_at, mut right_at, mut owner) = (Vec::new(), Vec::new(), Vec::new());
    let mut valid = Vec::with_capacity(rows);
    for row in 0..rows {
        let present = left.is_valid(row) && right.is_valid(row);
        valid.push(present);
        let (left_len, right_len) = if present {
            (left.value_length(row), right.value_length(row))
        } else {
            (0, 0)
        };
        let length = left_len.max(right_len);
        for i in 0..length {
            let at = |list: &ListArray, len: i32| {
                (i < len).then(|| (list.value_offsets()[row] + i) as u32)
            };
            left_at.push(at(left, left_len));
            right_at.push(at(right, right_len));
            owner.push(row as u32);
        }
        offsets.push(offsets[row] + length);
    }
    let x = take(left.values().as_ref(), &UInt32Array::from(left_at), None)?;
    let y = take(right.values().as_ref(), &UInt32Array::from(right_at), None)?;
    let result = lambda.run(vec![x, y], &UInt32Array::from(owner))?;
    let field = match returned.data_type() {
        DataType::List(f) => f.clone(),
        _ => Arc::new(Field::new("element", result.data_type().clone(), true)),
    };
    let result = cast(&result, field.data_type())?;
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(offsets.into()),
        result,
        Some(NullBuffer::from(valid)),
    )?))
}

/// Most elements an array sorted with a comparator may have: the comparator runs on every
/// pair of them at once.
const MAX_SORTED_WITH_COMPARATOR: usize = 2_048;

/// `array_sort(a, (x, y) -> …)`: each array's elements ordered by the comparator's sign.
fn sort_with(
    lambda: &Lambda,
    array: &ArrayRef,
    returned: &FieldRef,
    rows: usize,
) -> Result<ArrayRef> {
    let element = super::element_type(array.data_type())?;
    let list = cast(
        array,
        &DataType::List(Arc::new(Field::new("element", element, true))),
    )?;
    let list = list.as_list::<i32>();
    let mut order: Vec<u32> = Vec::with_capacity(list.values().len());
    let mut new_offsets = vec![0i32];
    for (row, start) in list.value_offsets()[..rows].iter().enumerate() {
        let (start, len) = (*start as usize, list.value_length(row) as usize);
        if list.is_valid(row) && len > 1 {
            if len > MAX_SORTED_WITH_COMPARATOR {
                return Err(invalid_argument(format!(
                    "array_sort with a comparator takes arrays of at most {MAX_SORTED_WITH_COMPARATOR} elements"
                )));
            }
            let pairs =
                (0..len * len).map(|p| ((start + p / len) as u32, (start + p % len) as u32));
            let (left, right): (Vec<u32>, Vec<u32>) = pairs.unzip();
            let x = take(list.values().as_ref(), &UInt32Array::from(left), None)?;
            let y = take(list.values().as_ref(), &UInt32Array::from(right), None)?;
            let owner = UInt32Array::from(vec![row as u32; len * len]);
            let signs = cast(&lambda.run(vec![x, y], &owner)?, &DataType::Int64)?;
            let signs = signs.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            if signs.null_count() > 0 {
                return Err(invalid_argument(
                    "Lambda comparator must return either -1, 0, or 1",
                ));
            }
            let mut positions: Vec<usize> = (0..len).collect();
            positions.sort_by(|a, b| signs.value(a * len + b).cmp(&0));
            order.extend(positions.into_iter().map(|p| (start + p) as u32));
        } else if list.is_valid(row) {
            order.extend((start..start + len).map(|p| p as u32));
        }
        new_offsets.push(order.len() as i32);
    }
    let values = take(list.values().as_ref(), &UInt32Array::from(order), None)?;
    let field = match returned.data_type() {
        DataType::List(f) => f.clone(),
        _ => Arc::new(Field::new("element", values.data_type().clone(), true)),
    };
    let values = cast(&values, field.data_type())?;
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(new_offsets.into()),
        values,
        list.nulls().cloned(),
    )?))
}

/// `map_zip_with(m1, m2, (k, v1, v2) -> …)`: the keys of `m1` in order, then those only
/// `m2` has.
fn map_zip_with(
    lambda: &Lambda,
    left: &MapArray,
    right: &MapArray,
    returned: &FieldRef,
    rows: usize,
) -> Result<ArrayRef> {
    let (left_keys, right_keys) = (left.keys(), right.keys());
    let mut offsets = vec![0i32];
    let (mut key_from, mut left_at, mut right_at, mut owner) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut valid = Vec::with_capacity(rows);
    for row in 0..rows {
        let present = left.is_valid(row) && right.is_valid(row);
        valid.push(present);
        let mut count = 0;
        if present {
            let left_range =
                left.value_offsets()[row] as usize..left.value_offsets()[row + 1] as usize;
            let right_range =
                right.value_offsets()[row] as usize..right.value_offsets()[row + 1] as usize;
            let mut right_index = HashMap::new();
            for i in right_range.clone() {
                right_index.insert(ScalarValue::try_from_array(right_keys, i)?, i);
            }
            let mut left_seen = HashMap::new();
            for i in left_range {
                let key = ScalarValue::try_from_array(left_keys, i)?;
                key_from.push((0, i));
                left_at.push(Some(i as u32));
                right_at.push(right_index.get(&key).map(|j| *j as u32));
                left_seen.insert(key, ());
                count += 1;
            }
            for i in right_range {
                let key = ScalarValue::try_from_array(right_keys, i)?;
                if !left_seen.contains_key(&key) {
                    key_from.push((1, i));
                    left_at.push(None);
                    right_at.push(Some(i as u32));
                    count += 1;
                }
            }
        }
        owner.extend(std::iter::repeat_n(row as u32, count));
        offsets.push(offsets[row] + count as i32);
    }
    let right_keys = cast(right_keys, left_keys.data_type())?;
    let keys = interleave(&[left_keys.as_ref(), right_keys.as_ref()], &key_from)?;
    let v1 = take(left.values().as_ref(), &UInt32Array::from(left_at), None)?;
    let v2 = take(right.values().as_ref(), &UInt32Array::from(right_at), None)?;
    let result = lambda.run(vec![keys.clone(), v1, v2], &UInt32Array::from(owner))?;
    build_map(
        returned.data_type(),
        OffsetBuffer::new(offsets.into()),
        keys,
        result,
        Some(NullBuffer::from(valid)),
    )
}
