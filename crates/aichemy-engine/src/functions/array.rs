//! Trino's array functions that pick elements by position: `ngrams`, `combinations` and
//! `trim_array`, for arrays of any element type.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, UInt32Array};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::{
    invalid_argument as invalid, scalar_result, unexpected_parameters as unexpected,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Ngrams,
    Combinations,
    TrimArray,
}

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    for kind in [Kind::Ngrams, Kind::Combinations, Kind::TrimArray] {
        ctx.register_udf(ScalarUDF::new_from_impl(ArrayFunction {
            kind,
            signature: Signature::any(2, Volatility::Immutable),
        }));
    }
}

/// The positions each `n`-gram of a list of `len` elements takes.
fn ngrams(len: usize, n: usize) -> Vec<Vec<usize>> {
    if len <= n {
        return vec![(0..len).collect()];
    }
    (0..=len - n)
        .map(|start| (start..start + n).collect())
        .collect()
}

/// The positions of every combination of `n` of `len` elements, in order.
fn combinations(len: usize, n: usize) -> Vec<Vec<usize>> {
    let mut all = Vec::new();
    if n > len {
        return all;
    }
    let mut current: Vec<usize> = (0..n).collect();
    loop {
        all.push(current.clone());
        // The rightmost position that can still move right.
        let Some(i) = (0..n).rev().find(|&i| current[i] < len - n + i) else {
            return all;
        };
        current[i] += 1;
        for j in i + 1..n {
            current[j] = current[j - 1] + 1;
        }
    }
}

fn item_field(data_type: &DataType) -> FieldRef {
    Arc::new(Field::new("item", data_type.clone(), true))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ArrayFunction {
    kind: Kind,
    signature: Signature,
}

impl ArrayFunction {
    /// For each row, the lists of positions its result takes, or `None` for NULL.
    fn positions(&self, len: usize, n: i64) -> Result<Vec<Vec<usize>>> {
        match self.kind {
            Kind::Ngrams => {
                if n <= 0 {
                    return Err(invalid("N must be positive"));
                }
                Ok(ngrams(len, n as usize))
            }
            Kind::Combinations => {
                if n < 0 {
                    return Err(invalid("combination size must not be negative"));
                }
                if n > 5 {
                    return Err(invalid("combination size must not exceed 5"));
                }
                Ok(combinations(len, n as usize))
            }
            Kind::TrimArray => {
                if n < 0 {
                    return Err(invalid("size must not be negative"));
                }
                if n as usize > len {
                    return Err(invalid(format!(
                        "size must not exceed array cardinality {len}: {n}"
                    )));
                }
                Ok(vec![(0..len - n as usize).collect()])
            }
        }
    }
}

impl ScalarUDFImpl for ArrayFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        match self.kind {
            Kind::Ngrams => "ngrams",
            Kind::Combinations => "combinations",
            Kind::TrimArray => "trim_array",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let element = match &arg_types[0] {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
                if arg_types[1].is_integer() || arg_types[1] == DataType::Null =>
            {
                f.data_type().clone()
            }
            _ => {
                let expected = format!("{}(array(T), bigint)", self.name());
                return unexpected(self.name(), arg_types, &expected);
            }
        };
        let list = DataType::List(item_field(&element));
        Ok(match self.kind {
            Kind::TrimArray => list,
            _ => DataType::List(item_field(&list)),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let element = match arrays[0].data_type() {
            DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                f.data_type().clone()
            }
            _ => return plan_err!("{} takes an array", self.name()),
        };
        let lists = cast(&arrays[0], &DataType::List(item_field(&element)))?;
        let lists = lists.as_list::<i32>();
        let counts = cast(&arrays[1], &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        // Positions into the flat values, the inner lists' ends, and each row's end.
        let mut picked: Vec<u32> = Vec::new();
        let mut inner_ends = vec![0i32];
        let mut row_ends = vec![0i32];
        let mut valid = Vec::with_capacity(lists.len());
        for row in 0..lists.len() {
            if lists.is_null(row) || counts.is_null(row) {
                if self.kind == Kind::TrimArray {
                    inner_ends.push(picked.len() as i32);
                }
                valid.push(false);
                row_ends.push(inner_ends.len() as i32 - 1);
                continue;
            }
            let start = lists.value_offsets()[row] as usize;
            let len = lists.value_length(row) as usize;
            for group in self.positions(len, counts.value(row))? {
                picked.extend(group.into_iter().map(|p| (start + p) as u32));
                inner_ends.push(picked.len() as i32);
            }
            valid.push(true);
            row_ends.push(inner_ends.len() as i32 - 1);
        }
        let values = take(lists.values(), &UInt32Array::from(picked), None)?;
        let nulls = Some(NullBuffer::from(valid));
        let result: ArrayRef = if self.kind == Kind::TrimArray {
            // One inner list per row: the rows are the inner lists.
            Arc::new(ListArray::try_new(
                item_field(&element),
                OffsetBuffer::new(inner_ends.into()),
                values,
                nulls,
            )?)
        } else {
            let inner = ListArray::try_new(
                item_field(&element),
                OffsetBuffer::new(inner_ends.into()),
                values,
                None,
            )?;
            Arc::new(ListArray::try_new(
                item_field(inner.data_type()),
                OffsetBuffer::new(row_ends.into()),
                Arc::new(inner),
                nulls,
            )?)
        };
        scalar_result(&args.args, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_trinos() {
        assert_eq!(ngrams(4, 2), vec![vec![0, 1], vec![1, 2], vec![2, 3]]);
        assert_eq!(ngrams(4, 5), vec![vec![0, 1, 2, 3]]);
        assert_eq!(combinations(3, 2), vec![vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert_eq!(combinations(2, 3), Vec::<Vec<usize>>::new());
        assert_eq!(combinations(3, 0), vec![Vec::<usize>::new()]);
    }
}
