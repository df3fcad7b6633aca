//! Trino's string functions DataFusion lacks or has in part:
//! - `split(string, delimiter [, limit])`: the parts of a string between its delimiters
//!   (at most `limit`, the last one holding the rest);
//! - `strpos(string, substring [, instance])`: the position (in characters, from 1) of the
//!   `instance`-th occurrence, counted from the end when negative; 0 when there is none.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, ListBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::json::cast::strings;
use crate::functions::{invalid_argument, is_text, scalar_result, unexpected_parameters};

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Split {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    ctx.register_udf(
        ScalarUDF::new_from_impl(Strpos {
            signature: Signature::user_defined(Volatility::Immutable),
        })
        .with_aliases(["instr", "position"]),
    );
}

/// Text arguments, then an optional integer one, coerced to `Utf8`, `Utf8`, `Int64`.
fn two_texts_and_a_number(
    name: &str,
    arg_types: &[DataType],
    expected: &str,
) -> Result<Vec<DataType>> {
    let texts = arg_types.len() >= 2 && arg_types[..2].iter().all(is_text);
    let number = arg_types
        .get(2)
        .is_none_or(|t| t.is_integer() || *t == DataType::Null);
    if !(2..=3).contains(&arg_types.len()) || !texts || !number {
        return unexpected_parameters(name, arg_types, expected);
    }
    let mut types = vec![DataType::Utf8, DataType::Utf8];
    if arg_types.len() == 3 {
        types.push(DataType::Int64);
    }
    Ok(types)
}

/// The integers of an optional argument, `default` where it is absent.
fn numbers(arg: Option<&ArrayRef>, rows: usize, default: i64) -> Result<Int64Array> {
    match arg {
        Some(values) => Ok(cast(values, &DataType::Int64)?
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .unwrap_or_else(|| Int64Array::from(vec![None::<i64>; rows]))),
        None => Ok(Int64Array::from(vec![default; rows])),
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Strpos {
    signature: Signature,
}

impl ScalarUDFImpl for Strpos {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "strpos"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        two_texts_and_a_number(
            "strpos",
            arg_types,
            "strpos(varchar(x), varchar(y)), strpos(varchar(x), varchar(y), bigint)",
        )
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let texts = strings(&arrays[0])?;
        let subs = strings(&arrays[1])?;
        let instances = numbers(arrays.get(2), rows, 1)?;
        let mut out = datafusion::arrow::array::Int64Builder::with_capacity(rows);
        for row in 0..rows {
            if texts.is_null(row) || subs.is_null(row) || instances.is_null(row) {
                out.append_null();
                continue;
            }
            let instance = instances.value(row);
            if instance == 0 {
                return Err(invalid_argument(
                    "'instance' must be a positive or negative number.",
                ));
            }
            out.append_value(position(texts.value(row), subs.value(row), instance));
        }
        let result: ArrayRef = Arc::new(out.finish());
        scalar_result(&args.args, result)
    }
}

/// The character position (from 1) of the `instance`-th occurrence of `sub` in `text`
/// (from the end when negative), 0 when there is none.
fn position(text: &str, sub: &str, instance: i64) -> i64 {
    let starts: Vec<usize> = if sub.is_empty() {
        (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .collect()
    } else {
        text.match_indices(sub).map(|(i, _)| i).collect()
    };
    let n = usize::try_from(instance.unsigned_abs()).unwrap_or(usize::MAX);
    let found = if instance > 0 {
        starts.get(n - 1)
    } else {
        starts.len().checked_sub(n).and_then(|i| starts.get(i))
    };
    found.map_or(0, |byte| text[..*byte].chars().count() as i64 + 1)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Split {
    signature: Signature,
}

const EXPECTED: &str = "split(varchar(x), varchar(y)), split(varchar(x), varchar(y), bigint)";

impl ScalarUDFImpl for Split {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "split"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        two_texts_and_a_number("split", arg_types, EXPECTED)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let texts = strings(&arrays[0])?;
        let delimiters = strings(&arrays[1])?;
        let limits = numbers(arrays.get(2), rows, i64::MAX)?;
        let mut out = ListBuilder::new(StringBuilder::new());
        for row in 0..rows {
            if texts.is_null(row) || delimiters.is_null(row) || limits.is_null(row) {
                out.append_null();
                continue;
            }
            let limit = limits.value(row);
            if limit <= 0 {
                return Err(invalid_argument("Limit must be positive"));
            }
            let delimiter = delimiters.value(row);
            if delimiter.is_empty() {
                return Err(invalid_argument(
                    "The delimiter may not be the empty string",
                ));
            }
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            for part in texts.value(row).splitn(limit, delimiter) {
                out.values().append_value(part);
            }
            out.append(true);
        }
        let result: ArrayRef = Arc::new(out.finish());
        scalar_result(&args.args, result)
    }
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn positions_count_characters_from_either_end() {
        assert_eq!(position("hello", "l", 1), 3);
        assert_eq!(position("hello", "l", 2), 4);
        assert_eq!(position("hello", "l", -1), 4);
        assert_eq!(position("hello", "l", 3), 0);
        assert_eq!(position("héllo", "l", 1), 3);
        assert_eq!(position("hello", "", 1), 1);
        assert_eq!(position("", "x", -1), 0);
    }
}
