//! Trino's vector functions: `cosine_similarity` and `cosine_distance` of two arrays of
//! numbers (element by element) or of two maps (value by key; a key missing on one side
//! counts as 0 there), `dot_product` and `euclidean_distance` of two arrays. As in Trino 465:
//! arrays of different lengths are an error; a cosine of arrays with a null element is null,
//! of an array without length an error (`Vector magnitude cannot be zero`); the other two
//! read a null element as 0; a cosine of maps with a null value is null, of a map without
//! length NaN.

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::{
    invalid_argument as invalid, scalar_result, unexpected_parameters as unexpected,
};

/// Registers every vector function.
pub fn register(ctx: &SessionContext) {
    for metric in [
        Metric::CosineSimilarity,
        Metric::CosineDistance,
        Metric::DotProduct,
        Metric::EuclideanDistance,
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Vector {
            metric,
            signature: Signature::any(2, Volatility::Immutable),
        }));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Metric {
    CosineSimilarity,
    CosineDistance,
    DotProduct,
    EuclideanDistance,
}

impl Metric {
    /// The measure of two vectors given as pairs of coordinates; `None` where it is
    /// undefined (the cosine of a vector without length).
    fn measure(self, pairs: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
        match self {
            Metric::CosineSimilarity => cosine(pairs),
            Metric::CosineDistance => cosine(pairs).map(|s| 1.0 - s),
            Metric::DotProduct => Some(pairs.map(|(a, b)| a * b).sum()),
            Metric::EuclideanDistance => {
                Some(pairs.map(|(a, b)| (a - b) * (a - b)).sum::<f64>().sqrt())
            }
        }
    }

    /// Whether the function takes maps too (the cosine functions).
    fn takes_maps(self) -> bool {
        matches!(self, Metric::CosineSimilarity | Metric::CosineDistance)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Vector {
    metric: Metric,
    signature: Signature,
}

/// The cosine of the angle between two vectors; `None` when either has no length.
fn cosine(pairs: impl Iterator<Item = (f64, f64)>) -> Option<f64> {
    let (mut dot, mut left, mut right) = (0.0, 0.0, 0.0);
    for (a, b) in pairs {
        dot += a * b;
        left += a * a;
        right += b * b;
    }
    (left > 0.0 && right > 0.0).then(|| dot / (left.sqrt() * right.sqrt()))
}

/// The numbers of one list or map value as doubles, with their keys for a map.
fn numbers(values: &ArrayRef) -> Result<Vec<Option<f64>>> {
    let doubles = cast(values, &DataType::Float64)?;
    Ok(doubles.as_primitive::<Float64Type>().iter().collect())
}

impl ScalarUDFImpl for Vector {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        match self.metric {
            Metric::CosineSimilarity => "cosine_similarity",
            Metric::CosineDistance => "cosine_distance",
            Metric::DotProduct => "dot_product",
            Metric::EuclideanDistance => "euclidean_distance",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let numeric_list = |t: &DataType| match t {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                f.data_type().is_numeric()
            }
            _ => false,
        };
        let map = |t: &DataType| matches!(t, DataType::Map(..));
        let fits = (numeric_list(&arg_types[0]) && numeric_list(&arg_types[1]))
            || (self.metric.takes_maps() && map(&arg_types[0]) && map(&arg_types[1]));
        if !fits {
            let expected = if self.metric.takes_maps() {
                "{0}(array(double), array(double)), {0}(map(varchar, double), map(varchar, double))"
            } else {
                "{0}(array(double), array(double))"
            };
            return unexpected(
                self.name(),
                arg_types,
                &expected.replace("{0}", self.name()),
            );
        }
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let is_map = args
            .args
            .first()
            .is_some_and(|a| matches!(a.data_type(), DataType::Map(..)));
        if !is_map {
            return self.of_lists(&args);
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = arrays[0].len();
        let mut out = Vec::with_capacity(rows);
        // A map's entries; `None` when a value is null (Trino's cosine of it is null).
        let entries = |array: &ArrayRef, row: usize| -> Result<Option<HashMap<String, f64>>> {
            let entries = array.as_map().value(row);
            let keys = cast(entries.column(0), &DataType::Utf8)?;
            let keys = keys.as_string::<i32>();
            let values = numbers(entries.column(1))?;
            Ok(keys
                .iter()
                .zip(values)
                .map(|(k, v)| Some((k?.to_string(), v?)))
                .collect())
        };
        for row in 0..rows {
            if arrays[0].is_null(row) || arrays[1].is_null(row) {
                out.push(None);
                continue;
            }
            let (Some(left), Some(right)) = (entries(&arrays[0], row)?, entries(&arrays[1], row)?)
            else {
                out.push(None);
                continue;
            };
            let keys: std::collections::BTreeSet<&String> =
                left.keys().chain(right.keys()).collect();
            let pairs = keys.into_iter().map(|k| {
                (
                    left.get(k).copied().unwrap_or(0.0),
                    right.get(k).copied().unwrap_or(0.0),
                )
            });
            // A map without length gives 0 / 0, as in Trino.
            out.push(self.metric.measure(pairs).or(Some(f64::NAN)));
        }
        scalar_result(&args.args, Arc::new(Float64Array::from(out)))
    }
}

/// One argument's vectors as doubles, converted once per batch; a constant once.
struct Doubles {
    list: ListArray,
    constant: bool,
}

impl Doubles {
    fn new(value: &ColumnarValue) -> Result<Self> {
        let (array, constant) = match value {
            ColumnarValue::Array(array) => (array.clone(), false),
            ColumnarValue::Scalar(scalar) => (scalar.to_array_of_size(1)?, true),
        };
        let list = cast(
            &array,
            &DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
        )?;
        Ok(Self {
            list: list.as_list::<i32>().clone(),
            constant,
        })
    }

    /// Row `row`'s numbers, a null element read as 0 (as Trino reads it), and whether it
    /// has one; `None` for a null vector.
    fn row(&self, row: usize) -> Option<(Cow<'_, [f64]>, bool)> {
        let i = if self.constant { 0 } else { row };
        if self.list.is_null(i) {
            return None;
        }
        let offsets = self.list.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        let values = self.list.values();
        let numbers = &values.as_primitive::<Float64Type>().values()[start..end];
        if values.null_count() == 0 || !(start..end).any(|j| values.is_null(j)) {
            return Some((Cow::Borrowed(numbers), false));
        }
        let zeroed = (start..end)
            .zip(numbers)
            .map(|(j, x)| if values.is_null(j) { 0.0 } else { *x })
            .collect();
        Some((Cow::Owned(zeroed), true))
    }
}

impl Vector {
    /// The measure of two arguments of arrays, row by row.
    fn of_lists(&self, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (left, right) = (Doubles::new(&args.args[0])?, Doubles::new(&args.args[1])?);
        let rows = match (left.constant, right.constant) {
            (true, true) => 1,
            _ => args.number_rows,
        };
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let (Some((a, a_nulls)), Some((b, b_nulls))) = (left.row(row), right.row(row)) else {
                out.push(None);
                continue;
            };
            if a.len() != b.len() {
                return Err(invalid("The arguments must have the same length"));
            }
            // Trino's cosine of vectors with a null element is null; of a vector without
            // length, an error.
            if self.metric.takes_maps() && (a_nulls || b_nulls) {
                out.push(None);
                continue;
            }
            let measured = self
                .metric
                .measure(a.iter().copied().zip(b.iter().copied()));
            if measured.is_none() {
                return Err(invalid("Vector magnitude cannot be zero"));
            }
            out.push(measured);
        }
        scalar_result(&args.args, Arc::new(Float64Array::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::{cosine, Metric};

    #[test]
    fn products_and_distances() {
        let pairs = || [(1.0, 3.0), (2.0, 4.0)].into_iter();
        assert_eq!(Metric::DotProduct.measure(pairs()), Some(11.0));
        let euclid = Metric::EuclideanDistance.measure(pairs()).unwrap();
        assert!((euclid - 8f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn cosines_are_trinos() {
        let similarity = cosine([(1.0, 3.0), (2.0, 4.0)].into_iter()).unwrap();
        assert!((similarity - 0.9838699100999074).abs() < 1e-15);
        assert_eq!(cosine([(0.0, 1.0)].into_iter()), None);
    }
}
