//! Trino's vector similarity functions: `cosine_similarity` and `cosine_distance` of two
//! arrays of numbers (element by element) or of two maps (value by key; a key missing on
//! one side counts as 0 there).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
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

/// Registers `cosine_similarity` and `cosine_distance`.
pub fn register(ctx: &SessionContext) {
    for distance in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(Cosine {
            distance,
            signature: Signature::any(2, Volatility::Immutable),
        }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Cosine {
    distance: bool,
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

impl ScalarUDFImpl for Cosine {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        if self.distance {
            "cosine_distance"
        } else {
            "cosine_similarity"
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
            || (map(&arg_types[0]) && map(&arg_types[1]));
        if !fits {
            let expected = "{0}(array(double), array(double)), {0}(map(varchar, double), map(varchar, double))";
            return unexpected(
                self.name(),
                arg_types,
                &expected.replace("{0}", self.name()),
            );
        }
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let rows = arrays[0].len();
        let mut out = Vec::with_capacity(rows);
        let is_map = matches!(arrays[0].data_type(), DataType::Map(..));
        for row in 0..rows {
            if arrays[0].is_null(row) || arrays[1].is_null(row) {
                out.push(None);
                continue;
            }
            let similarity = if is_map {
                let entries = |array: &ArrayRef| -> Result<HashMap<String, f64>> {
                    let map = array.as_map();
                    let entries = map.value(row);
                    let keys = cast(entries.column(0), &DataType::Utf8)?;
                    let keys = keys.as_string::<i32>();
                    let values = numbers(entries.column(1))?;
                    keys.iter()
                        .zip(values)
                        .map(|(k, v)| match (k, v) {
                            (Some(k), Some(v)) => Ok((k.to_string(), v)),
                            _ => Err(invalid("Map vectors must not contain null values")),
                        })
                        .collect()
                };
                let (left, right) = (entries(&arrays[0])?, entries(&arrays[1])?);
                let keys: std::collections::BTreeSet<&String> =
                    left.keys().chain(right.keys()).collect();
                cosine(keys.into_iter().map(|k| {
                    (
                        left.get(k).copied().unwrap_or(0.0),
                        right.get(k).copied().unwrap_or(0.0),
                    )
                }))
            } else {
                let list = |array: &ArrayRef| -> Result<Vec<f64>> {
                    let list = cast(
                        array,
                        &DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
                    )?;
                    numbers(&list.as_list::<i32>().value(row))?
                        .into_iter()
                        .map(|v| v.ok_or_else(|| invalid("Vectors must not contain null values")))
                        .collect()
                };
                let (left, right) = (list(&arrays[0])?, list(&arrays[1])?);
                if left.len() != right.len() {
                    return Err(invalid("The arguments must have the same length"));
                }
                cosine(left.into_iter().zip(right))
            };
            out.push(similarity.map(|s| if self.distance { 1.0 - s } else { s }));
        }
        scalar_result(&args.args, Arc::new(Float64Array::from(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::cosine;

    #[test]
    fn cosines_are_trinos() {
        let similarity = cosine([(1.0, 3.0), (2.0, 4.0)].into_iter()).unwrap();
        assert!((similarity - 0.9838699100999074).abs() < 1e-15);
        assert_eq!(cosine([(0.0, 1.0)].into_iter()), None);
    }
}
