//! The sketch scalar functions:
//! - `empty_approx_set()`, an empty HyperLogLog;
//! - `cardinality(HyperLogLog | SetDigest)`, with DataFusion's `cardinality` of arrays and
//!   maps behind the same name;
//! - `intersection_cardinality(SetDigest, SetDigest)`, `jaccard_index(SetDigest, SetDigest)`
//!   and `hash_counts(SetDigest)`;
//! - `value_at_quantile(digest, q)`, `values_at_quantiles(digest, array(double))` (of a
//!   `qdigest(T)`, values of T; of a `tdigest`, doubles) and `quantile_at_value(qdigest, x)`.
//!
//! A sketch argument is read as the type its field's metadata names, or as what its bytes say
//! for a plain VARBINARY. Each row is computed on its own; a NULL argument gives NULL.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{internal_datafusion_err, Result, ScalarValue};
use datafusion::functions_nested::cardinality::cardinality_udf;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use super::hll::{HyperLogLog, DEFAULT_PRECISION};
use super::{binary_or_null, is_binary, Sketch, SketchType};
use crate::functions::aggregate::number_or_null;
use crate::functions::row_function::each_row;
use crate::functions::row_function::{list_items, list_type, list_value, map_type, map_value};
use crate::functions::{invalid_argument, scalar_result, unexpected_parameters};

/// Registers the sketch scalar functions (`cardinality` in place of DataFusion's).
pub(super) fn register(ctx: &SessionContext) {
    for function in Function::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(SketchFunction {
            function,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

/// The sketch scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    EmptyApproxSet,
    Cardinality,
    IntersectionCardinality,
    JaccardIndex,
    HashCounts,
    ValueAtQuantile,
    ValuesAtQuantiles,
    QuantileAtValue,
}

impl Function {
    const ALL: [Function; 8] = [
        Function::EmptyApproxSet,
        Function::Cardinality,
        Function::IntersectionCardinality,
        Function::JaccardIndex,
        Function::HashCounts,
        Function::ValueAtQuantile,
        Function::ValuesAtQuantiles,
        Function::QuantileAtValue,
    ];

    fn name(self) -> &'static str {
        match self {
            Function::EmptyApproxSet => "empty_approx_set",
            Function::Cardinality => "cardinality",
            Function::IntersectionCardinality => "intersection_cardinality",
            Function::JaccardIndex => "jaccard_index",
            Function::HashCounts => "hash_counts",
            Function::ValueAtQuantile => "value_at_quantile",
            Function::ValuesAtQuantiles => "values_at_quantiles",
            Function::QuantileAtValue => "quantile_at_value",
        }
    }

    /// Trino's signatures, for the error of a call that none of them takes.
    fn expected(self) -> &'static str {
        match self {
            Function::EmptyApproxSet => "empty_approx_set()",
            Function::Cardinality => {
                "cardinality(array(E)), cardinality(map(K,V)), cardinality(HyperLogLog), \
                 cardinality(SetDigest)"
            }
            Function::IntersectionCardinality => "intersection_cardinality(SetDigest, SetDigest)",
            Function::JaccardIndex => "jaccard_index(SetDigest, SetDigest)",
            Function::HashCounts => "hash_counts(SetDigest)",
            Function::ValueAtQuantile => {
                "value_at_quantile(qdigest(T), double), value_at_quantile(tdigest, double)"
            }
            Function::ValuesAtQuantiles => {
                "values_at_quantiles(qdigest(T), array(double)), \
                 values_at_quantiles(tdigest, array(double))"
            }
            Function::QuantileAtValue => "quantile_at_value(qdigest(T), T)",
        }
    }

    /// How many of the leading arguments are sketches.
    fn sketches(self) -> usize {
        match self {
            Function::EmptyApproxSet => 0,
            Function::IntersectionCardinality | Function::JaccardIndex => 2,
            _ => 1,
        }
    }

    /// Whether a sketch argument may be of this type.
    fn takes(self, sketch_type: SketchType) -> bool {
        match self {
            Function::EmptyApproxSet => false,
            Function::Cardinality => {
                matches!(sketch_type, SketchType::HyperLogLog | SketchType::SetDigest)
            }
            Function::IntersectionCardinality | Function::JaccardIndex | Function::HashCounts => {
                sketch_type == SketchType::SetDigest
            }
            Function::ValueAtQuantile | Function::ValuesAtQuantiles => sketch_type.is_digest(),
            Function::QuantileAtValue => matches!(sketch_type, SketchType::QDigest(_)),
        }
    }

    /// The types a call's arguments are cast to, or `None` for a call no signature takes.
    /// `cardinality` of an array or a map keeps the types DataFusion's takes.
    fn coerce(self, arg_types: &[DataType]) -> Option<Vec<DataType>> {
        use DataType::{Binary, FixedSizeList, LargeList, List, Map, Null};
        let quantiles = list_type(DataType::Float64);
        match (self, arg_types) {
            (Function::EmptyApproxSet, []) => Some(vec![]),
            (Function::Cardinality, [FixedSizeList(element, _)]) => {
                Some(vec![List(Arc::clone(element))])
            }
            (Function::Cardinality, [nested @ (List(_) | LargeList(_) | Map(..) | Null)]) => {
                Some(vec![nested.clone()])
            }
            (Function::Cardinality, [sketch]) if is_binary(sketch) => Some(vec![Binary]),
            (Function::HashCounts, [sketch]) if binary_or_null(sketch) => Some(vec![Binary]),
            (Function::IntersectionCardinality | Function::JaccardIndex, [a, b])
                if binary_or_null(a) && binary_or_null(b) =>
            {
                Some(vec![Binary, Binary])
            }
            (Function::ValueAtQuantile | Function::QuantileAtValue, [digest, number])
                if binary_or_null(digest) && number_or_null(number) =>
            {
                Some(vec![Binary, DataType::Float64])
            }
            (Function::ValuesAtQuantiles, [digest, Null]) if binary_or_null(digest) => {
                Some(vec![Binary, quantiles])
            }
            (
                Function::ValuesAtQuantiles,
                [digest, List(element) | LargeList(element) | FixedSizeList(element, _)],
            ) if binary_or_null(digest) && number_or_null(element.data_type()) => {
                Some(vec![Binary, quantiles])
            }
            _ => None,
        }
    }

    /// The result type, for a first sketch argument of `sketch_type` (`None`: a plain
    /// VARBINARY, whose digests answer doubles).
    fn return_type(self, sketch_type: Option<SketchType>) -> DataType {
        let value = match sketch_type {
            Some(SketchType::QDigest(value)) => value.data_type(),
            _ => DataType::Float64,
        };
        match self {
            Function::EmptyApproxSet => DataType::Binary,
            Function::Cardinality | Function::IntersectionCardinality => DataType::Int64,
            Function::JaccardIndex | Function::QuantileAtValue => DataType::Float64,
            Function::HashCounts => map_type(DataType::Int64, DataType::Int16),
            Function::ValueAtQuantile => value,
            Function::ValuesAtQuantiles => list_type(value),
        }
    }

    /// The result of one row whose arguments are not NULL; `sketch_types` are those the
    /// sketch arguments' fields name.
    fn eval(
        self,
        row: &[ScalarValue],
        sketch_types: &[Option<SketchType>],
        returned: &DataType,
    ) -> Result<ScalarValue> {
        let sketch = |index: usize| -> Result<Sketch> {
            match arg(row, index)? {
                ScalarValue::Binary(Some(bytes)) => {
                    Sketch::decode(bytes, sketch_types.get(index).copied().flatten())
                }
                other => Err(internal_datafusion_err!("Expected a sketch, got {other:?}")),
            }
        };
        match self {
            Function::EmptyApproxSet => {
                let mut empty = Sketch::Hll(HyperLogLog::new(DEFAULT_PRECISION));
                Ok(ScalarValue::Binary(Some(empty.encode())))
            }
            Function::Cardinality => {
                let count = match sketch(0)? {
                    Sketch::Hll(hll) => hll.cardinality(),
                    Sketch::Set(set) => set.cardinality(),
                    Sketch::Digest(digest) => {
                        return Err(invalid_argument(format!(
                            "cardinality takes a HyperLogLog or a SetDigest, not a {}",
                            digest.sketch_type().name()
                        )))
                    }
                };
                Ok(bigint(count))
            }
            Function::IntersectionCardinality => {
                let (a, b) = (sketch(0)?.into_set_digest()?, sketch(1)?.into_set_digest()?);
                Ok(bigint(a.intersection_cardinality(&b)))
            }
            Function::JaccardIndex => {
                let (a, b) = (sketch(0)?.into_set_digest()?, sketch(1)?.into_set_digest()?);
                Ok(ScalarValue::Float64(Some(a.jaccard_index(&b))))
            }
            Function::HashCounts => {
                let set = sketch(0)?.into_set_digest()?;
                let entries = set
                    .hash_counts()
                    .map(|(hash, count)| {
                        (
                            ScalarValue::Int64(Some(hash)),
                            ScalarValue::Int16(Some(count)),
                        )
                    })
                    .collect();
                map_value(entries, returned)
            }
            Function::ValueAtQuantile => {
                let mut digest = sketch(0)?.into_digest()?;
                let q = quantile(arg(row, 1)?)?;
                Ok(number(digest.value_at(q), returned))
            }
            Function::ValuesAtQuantiles => {
                let mut digest = sketch(0)?.into_digest()?;
                let element = match returned {
                    DataType::List(element) => element.data_type().clone(),
                    _ => DataType::Float64,
                };
                let values = list_items(arg(row, 1)?)?
                    .iter()
                    .map(|q| -> Result<ScalarValue> {
                        Ok(number(digest.value_at(quantile(q)?), &element))
                    })
                    .collect::<Result<Vec<_>>>()?;
                list_value(values, returned)
            }
            Function::QuantileAtValue => {
                let mut digest = sketch(0)?.into_digest()?;
                let ScalarValue::Float64(Some(value)) = arg(row, 1)? else {
                    return Err(internal_datafusion_err!("Expected a double value"));
                };
                Ok(ScalarValue::Float64(digest.quantile_at(*value)))
            }
        }
    }
}

/// The argument at `index` of a row.
fn arg(row: &[ScalarValue], index: usize) -> Result<&ScalarValue> {
    row.get(index)
        .ok_or_else(|| internal_datafusion_err!("A sketch function lacks argument {index}"))
}

/// A quantile argument, checked to be in [0, 1].
fn quantile(value: &ScalarValue) -> Result<f64> {
    match value {
        ScalarValue::Float64(Some(q)) if (0.0..=1.0).contains(q) => Ok(*q),
        ScalarValue::Float64(Some(q)) => Err(invalid_argument(format!(
            "Quantile should be within bounds [0, 1], was: {q:?}"
        ))),
        _ => Err(invalid_argument("All quantiles should be non-null.")),
    }
}

/// A count as a BIGINT.
fn bigint(count: u64) -> ScalarValue {
    ScalarValue::Int64(Some(i64::try_from(count).unwrap_or(i64::MAX)))
}

/// A digest's value as a value of `data_type`: a BIGINT rounds, a REAL narrows.
fn number(value: Option<f64>, data_type: &DataType) -> ScalarValue {
    match data_type {
        DataType::Int64 => ScalarValue::Int64(value.map(|v| v.round() as i64)),
        DataType::Float32 => ScalarValue::Float32(value.map(|v| v as f32)),
        _ => ScalarValue::Float64(value),
    }
}

/// A sketch scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchFunction {
    function: Function,
    signature: Signature,
}

impl SketchFunction {
    /// Whether this is `cardinality` of an array or a map, DataFusion's to answer.
    fn delegates(&self, first: Option<&DataType>) -> bool {
        self.function == Function::Cardinality && !first.is_some_and(is_binary)
    }
}

impl ScalarUDFImpl for SketchFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match self.function.coerce(arg_types) {
            Some(types) => Ok(types),
            None => unexpected_parameters(self.name(), arg_types, self.function.expected()),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if self.delegates(arg_types.first()) {
            return cardinality_udf().return_type(arg_types);
        }
        Ok(self.function.return_type(None))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if self.delegates(args.arg_fields.first().map(|f| f.data_type())) {
            return cardinality_udf().return_field_from_args(args);
        }
        let sketch_types: Vec<Option<SketchType>> = args
            .arg_fields
            .iter()
            .take(self.function.sketches())
            .map(|f| SketchType::of_field(f))
            .collect();
        if sketch_types
            .iter()
            .flatten()
            .any(|&sketch_type| !self.function.takes(sketch_type))
        {
            let types: Vec<DataType> = args
                .arg_fields
                .iter()
                .map(|f| f.data_type().clone())
                .collect();
            return unexpected_parameters(self.name(), &types, self.function.expected());
        }
        let field = match self.function {
            Function::EmptyApproxSet => SketchType::HyperLogLog.field(self.name()),
            function => {
                let first = sketch_types.first().copied().flatten();
                Field::new(self.name(), function.return_type(first), true)
            }
        };
        Ok(Arc::new(field))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if self.delegates(args.arg_fields.first().map(|f| f.data_type())) {
            return cardinality_udf().invoke_with_args(args);
        }
        let sketch_types: Vec<Option<SketchType>> = args
            .arg_fields
            .iter()
            .map(|f| SketchType::of_field(f))
            .collect();
        let returned = args.return_field.data_type().clone();
        // A call of scalars is one row, whatever the batch holds.
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        let array = each_row(&arrays, rows, &returned, |row_args| {
            self.function.eval(row_args, &sketch_types, &returned)
        })?;
        scalar_result(&args.args, array)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Array;

    use super::super::set_digest::SetDigest;
    use super::super::ValueType;
    use super::*;

    fn encoded(mut sketch: Sketch) -> ScalarValue {
        ScalarValue::Binary(Some(sketch.encode()))
    }

    #[test]
    fn reads_sketches_by_type_or_by_bytes() -> Result<()> {
        let mut set = SetDigest::new();
        (0..10u64).for_each(|v| set.add(v.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let set = encoded(Sketch::Set(set));
        let bigint_type = DataType::Int64;
        for typed in [None, Some(SketchType::SetDigest)] {
            let count =
                Function::Cardinality.eval(std::slice::from_ref(&set), &[typed], &bigint_type)?;
            assert_eq!(count, ScalarValue::Int64(Some(10)));
        }
        // The bytes of a SetDigest where a HyperLogLog is expected.
        let typed = [Some(SketchType::HyperLogLog)];
        assert!(Function::Cardinality
            .eval(std::slice::from_ref(&set), &typed, &bigint_type)
            .is_err());
        let counts_type = Function::HashCounts.return_type(None);
        let counts = Function::HashCounts.eval(&[set], &[None], &counts_type)?;
        assert!(matches!(counts, ScalarValue::Map(map) if map.value(0).len() == 10));
        let empty = Function::EmptyApproxSet.eval(&[], &[], &DataType::Binary)?;
        let count = Function::Cardinality.eval(&[empty], &[None], &bigint_type)?;
        assert_eq!(count, ScalarValue::Int64(Some(0)));
        Ok(())
    }

    #[test]
    fn quantiles_are_checked_and_typed() -> Result<()> {
        let digest_type = SketchType::QDigest(ValueType::Bigint);
        let mut digest = super::super::digest::Digest::new(digest_type, 100.0);
        for value in 1..=5 {
            digest.add(f64::from(value), 1.0)?;
        }
        let digest = encoded(Sketch::Digest(digest));
        let typed = [Some(digest_type)];
        let returned = Function::ValueAtQuantile.return_type(Some(digest_type));
        assert_eq!(returned, DataType::Int64);
        let at = |q: f64| {
            Function::ValueAtQuantile.eval(
                &[digest.clone(), ScalarValue::Float64(Some(q))],
                &typed,
                &returned,
            )
        };
        assert_eq!(at(0.5)?, ScalarValue::Int64(Some(3)));
        assert_eq!(at(1.0)?, ScalarValue::Int64(Some(5)));
        let error = at(1.5).unwrap_err().to_string();
        assert!(
            error.contains("Quantile should be within bounds [0, 1], was: 1.5"),
            "{error}"
        );
        let quantile = Function::QuantileAtValue.eval(
            &[digest.clone(), ScalarValue::Float64(Some(4.0))],
            &typed,
            &DataType::Float64,
        )?;
        assert_eq!(quantile, ScalarValue::Float64(Some(0.6)));
        let outside = Function::QuantileAtValue.eval(
            &[digest, ScalarValue::Float64(Some(9.0))],
            &typed,
            &DataType::Float64,
        )?;
        assert_eq!(outside, ScalarValue::Float64(None));
        Ok(())
    }

    #[test]
    fn coerces_as_trino_resolves() {
        use DataType::*;
        assert_eq!(
            Function::Cardinality.coerce(&[LargeBinary]),
            Some(vec![Binary])
        );
        assert_eq!(
            Function::Cardinality.coerce(&[list_type(Int32)]),
            Some(vec![list_type(Int32)])
        );
        assert_eq!(Function::Cardinality.coerce(&[Utf8]), None);
        assert_eq!(
            Function::ValuesAtQuantiles.coerce(&[Binary, list_type(Int32)]),
            Some(vec![Binary, list_type(Float64)])
        );
        assert_eq!(Function::JaccardIndex.coerce(&[Binary]), None);
    }
}
