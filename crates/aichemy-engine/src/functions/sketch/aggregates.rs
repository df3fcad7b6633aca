//! The sketch aggregates: `approx_set(x [, e])`, `make_set_digest(x)`,
//! `merge_set_digest(setdigest)`, `qdigest_agg(x [, w [, accuracy]])`, `tdigest_agg(x [, w])`
//! and `merge(sketch)`, which merges HyperLogLogs, SetDigests, qdigests or tdigests into one of
//! the same type (the type its argument's field names; a plain VARBINARY takes the type of
//! its first value).
//!
//! Each keeps one sketch per group, made at its first non-NULL input; rows with a NULL
//! argument are skipped, and no row left answers NULL. The partial state is the serialized
//! sketch: one Binary value, NULL before any input.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::cast::{as_binary_array, as_float64_array};
use datafusion::common::{internal_datafusion_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use super::digest::{Digest, DEFAULT_COMPRESSION};
use super::hll::{HyperLogLog, DEFAULT_PRECISION};
use super::set_digest::SetDigest;
use super::{binary_or_null, value_hashes, Sketch, SketchType, ValueType};
use crate::functions::aggregate::number_or_null;
use crate::functions::unexpected_parameters;

/// Registers the sketch aggregates.
pub(super) fn register(ctx: &SessionContext) {
    for aggregate in Aggregate::ALL {
        ctx.register_udaf(AggregateUDF::new_from_impl(SketchAggregate {
            aggregate,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

/// The sketch aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Aggregate {
    ApproxSet,
    MakeSetDigest,
    MergeSetDigest,
    QDigestAgg,
    TDigestAgg,
    Merge,
}

impl Aggregate {
    const ALL: [Aggregate; 6] = [
        Aggregate::ApproxSet,
        Aggregate::MakeSetDigest,
        Aggregate::MergeSetDigest,
        Aggregate::QDigestAgg,
        Aggregate::TDigestAgg,
        Aggregate::Merge,
    ];

    fn name(self) -> &'static str {
        match self {
            Aggregate::ApproxSet => "approx_set",
            Aggregate::MakeSetDigest => "make_set_digest",
            Aggregate::MergeSetDigest => "merge_set_digest",
            Aggregate::QDigestAgg => "qdigest_agg",
            Aggregate::TDigestAgg => "tdigest_agg",
            Aggregate::Merge => "merge",
        }
    }

    /// Trino's signatures, for the error of a call that none of them takes.
    fn expected(self) -> &'static str {
        match self {
            Aggregate::ApproxSet => "approx_set(T), approx_set(T, double)",
            Aggregate::MakeSetDigest => "make_set_digest(T)",
            Aggregate::MergeSetDigest => "merge_set_digest(SetDigest)",
            Aggregate::QDigestAgg => {
                "qdigest_agg(bigint), qdigest_agg(bigint, bigint), \
                 qdigest_agg(bigint, bigint, double), qdigest_agg(double), \
                 qdigest_agg(double, bigint), qdigest_agg(double, bigint, double), \
                 qdigest_agg(real), qdigest_agg(real, bigint), qdigest_agg(real, bigint, double)"
            }
            Aggregate::TDigestAgg => "tdigest_agg(double), tdigest_agg(double, double)",
            Aggregate::Merge => {
                "merge(HyperLogLog), merge(SetDigest), merge(qdigest(T)), merge(tdigest)"
            }
        }
    }

    /// The types a call's arguments are cast to, or `None` for a call no signature takes.
    fn coerce(self, arg_types: &[DataType]) -> Option<Vec<DataType>> {
        let integer_or_null = |t: &DataType| t.is_integer() || t.is_null();
        match (self, arg_types) {
            (Aggregate::ApproxSet | Aggregate::MakeSetDigest, [value]) => Some(vec![value.clone()]),
            (Aggregate::ApproxSet, [value, error]) if number_or_null(error) => {
                Some(vec![value.clone(), DataType::Float64])
            }
            (Aggregate::MergeSetDigest | Aggregate::Merge, [sketch]) if binary_or_null(sketch) => {
                Some(vec![DataType::Binary])
            }
            (Aggregate::QDigestAgg, [value, rest @ ..]) if rest.len() <= 2 => {
                let value = if integer_or_null(value) {
                    DataType::Int64
                } else if *value == DataType::Float32 {
                    DataType::Float32
                } else if value.is_numeric() {
                    DataType::Float64
                } else {
                    return None;
                };
                let weight_ok = rest.first().is_none_or(integer_or_null);
                let accuracy_ok = rest.get(1).is_none_or(number_or_null);
                let rest = [DataType::Int64, DataType::Float64];
                (weight_ok && accuracy_ok).then(|| {
                    std::iter::once(value)
                        .chain(rest)
                        .take(arg_types.len())
                        .collect()
                })
            }
            (Aggregate::TDigestAgg, [_] | [_, _]) if arg_types.iter().all(number_or_null) => {
                Some(vec![DataType::Float64; arg_types.len()])
            }
            _ => None,
        }
    }

    /// The type of sketch the aggregate answers, from its (coerced) argument fields: `None`
    /// for `merge` of a plain VARBINARY.
    fn result(self, arg_fields: &[FieldRef]) -> Result<Option<SketchType>> {
        let argument = arg_fields.first().and_then(|f| SketchType::of_field(f));
        let result = match self {
            Aggregate::ApproxSet => Some(SketchType::HyperLogLog),
            Aggregate::MakeSetDigest => Some(SketchType::SetDigest),
            Aggregate::MergeSetDigest => match argument {
                None | Some(SketchType::SetDigest) => Some(SketchType::SetDigest),
                Some(_) => return self.unexpected(arg_fields),
            },
            Aggregate::QDigestAgg => {
                let value = arg_fields.first().map(|f| f.data_type());
                Some(SketchType::QDigest(ValueType::of(
                    value.unwrap_or(&DataType::Float64),
                )))
            }
            Aggregate::TDigestAgg => Some(SketchType::TDigest),
            Aggregate::Merge => argument,
        };
        Ok(result)
    }

    fn unexpected<T>(self, arg_fields: &[FieldRef]) -> Result<T> {
        let types: Vec<DataType> = arg_fields.iter().map(|f| f.data_type().clone()).collect();
        unexpected_parameters(self.name(), &types, self.expected())
    }
}

/// A sketch aggregate.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SketchAggregate {
    aggregate: Aggregate,
    signature: Signature,
}

impl AggregateUDFImpl for SketchAggregate {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.aggregate.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match self.aggregate.coerce(arg_types) {
            Some(types) => Ok(types),
            None => unexpected_parameters(self.name(), arg_types, self.aggregate.expected()),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Binary)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        let field = match self.aggregate.result(arg_fields)? {
            Some(sketch_type) => sketch_type.field(self.name()),
            None => Field::new(self.name(), DataType::Binary, true),
        };
        Ok(Arc::new(field))
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SketchAccumulator {
            aggregate: self.aggregate,
            result: self.aggregate.result(acc_args.expr_fields)?,
            sketch: None,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let name = format_state_name(args.name, "sketch");
        Ok(vec![Arc::new(Field::new(name, DataType::Binary, true))])
    }
}

/// The sketch of one group.
#[derive(Debug)]
struct SketchAccumulator {
    aggregate: Aggregate,
    /// The type of sketch built; `None` for `merge` of plain VARBINARY, whose values say.
    result: Option<SketchType>,
    sketch: Option<Sketch>,
}

impl SketchAccumulator {
    /// The group's sketch, made by `make` if there is none yet.
    fn sketch(&mut self, make: impl FnOnce() -> Result<Sketch>) -> Result<&mut Sketch> {
        if self.sketch.is_none() {
            self.sketch = Some(make()?);
        }
        self.sketch
            .as_mut()
            .ok_or_else(|| internal_datafusion_err!("A sketch aggregate lost its sketch"))
    }

    /// Merges serialized sketches (`merge`'s argument, or partial states) into the group's.
    fn merge_serialized(&mut self, sketches: &ArrayRef) -> Result<()> {
        for bytes in as_binary_array(sketches)?.iter().flatten() {
            let sketch = Sketch::decode(bytes, self.result)?;
            match &mut self.sketch {
                Some(mine) => mine.merge(sketch)?,
                None => self.sketch = Some(sketch),
            }
        }
        Ok(())
    }

    /// Adds the hashes of `approx_set`'s or `make_set_digest`'s values.
    fn add_hashes(&mut self, values: &[ArrayRef]) -> Result<()> {
        let hashes = value_hashes(first(values)?)?;
        if hashes.is_empty() {
            return Ok(());
        }
        let max_error = values.get(1).map(first_number).transpose()?.flatten();
        let aggregate = self.aggregate;
        let sketch = self.sketch(|| match aggregate {
            Aggregate::MakeSetDigest => Ok(Sketch::Set(SetDigest::new())),
            _ => {
                let precision = match max_error {
                    Some(max_error) => HyperLogLog::precision_for(max_error)?,
                    None => DEFAULT_PRECISION,
                };
                Ok(Sketch::Hll(HyperLogLog::new(precision)))
            }
        })?;
        match sketch {
            Sketch::Hll(hll) => hashes.into_iter().for_each(|hash| hll.add(hash)),
            Sketch::Set(set) => hashes.into_iter().for_each(|hash| set.add(hash)),
            Sketch::Digest(_) => {}
        }
        Ok(())
    }

    /// Adds the (value, weight) rows of `qdigest_agg` or `tdigest_agg`.
    fn add_weighted(&mut self, values: &[ArrayRef]) -> Result<()> {
        let numbers = cast(first(values)?, &DataType::Float64)?;
        let numbers = as_float64_array(&numbers)?;
        let weights = values
            .get(1)
            .map(|w| cast(w, &DataType::Float64))
            .transpose()?;
        let weights = weights.as_ref().map(|w| as_float64_array(w)).transpose()?;
        let rows: Vec<(f64, f64)> = (0..numbers.len())
            .filter(|&row| numbers.is_valid(row) && weights.is_none_or(|w| w.is_valid(row)))
            .map(|row| (numbers.value(row), weights.map_or(1.0, |w| w.value(row))))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let accuracy = values.get(2).map(first_number).transpose()?.flatten();
        let sketch_type = self.result.unwrap_or(SketchType::TDigest);
        let sketch = self.sketch(|| {
            let compression = match accuracy {
                Some(accuracy) => Digest::compression_for(accuracy)?,
                None => DEFAULT_COMPRESSION,
            };
            Ok(Sketch::Digest(Digest::new(sketch_type, compression)))
        })?;
        if let Sketch::Digest(digest) = sketch {
            for (value, weight) in rows {
                digest.add(value, weight)?;
            }
        }
        Ok(())
    }
}

/// The first argument of a call.
fn first(values: &[ArrayRef]) -> Result<&ArrayRef> {
    values
        .first()
        .ok_or_else(|| internal_datafusion_err!("A sketch aggregate takes an argument"))
}

/// The first non-NULL number of a (Float64) argument: the constant Trino asks it to be.
fn first_number(values: &ArrayRef) -> Result<Option<f64>> {
    Ok(as_float64_array(values)?.iter().flatten().next())
}

impl Accumulator for SketchAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match self.aggregate {
            Aggregate::ApproxSet | Aggregate::MakeSetDigest => self.add_hashes(values),
            Aggregate::QDigestAgg | Aggregate::TDigestAgg => self.add_weighted(values),
            Aggregate::MergeSetDigest | Aggregate::Merge => self.merge_serialized(first(values)?),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.merge_serialized(first(states)?)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(
            self.sketch.as_mut().map(Sketch::encode),
        ))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.sketch.as_ref().map_or(0, Sketch::size)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{BinaryArray, Float64Array, Int64Array};

    use super::*;

    fn accumulator(aggregate: Aggregate, result: Option<SketchType>) -> SketchAccumulator {
        SketchAccumulator {
            aggregate,
            result,
            sketch: None,
        }
    }

    fn int64s(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
        Arc::new(Int64Array::from_iter(values))
    }

    /// The bytes of an evaluated sketch.
    fn bytes(value: ScalarValue) -> Vec<u8> {
        match value {
            ScalarValue::Binary(Some(bytes)) => bytes,
            other => panic!("not a sketch: {other:?}"),
        }
    }

    #[test]
    fn partial_states_merge_into_the_whole() -> Result<()> {
        let mut whole = accumulator(Aggregate::ApproxSet, Some(SketchType::HyperLogLog));
        whole.update_batch(&[int64s((0..1000).map(Some))])?;
        let mut parts = Vec::new();
        for range in [0..400, 400..1000] {
            let mut part = accumulator(Aggregate::ApproxSet, Some(SketchType::HyperLogLog));
            part.update_batch(&[int64s(range.map(Some).chain([None]))])?;
            parts.push(bytes(part.state()?.remove(0)));
        }
        let mut total = accumulator(Aggregate::ApproxSet, Some(SketchType::HyperLogLog));
        let states: ArrayRef = Arc::new(BinaryArray::from_iter_values(&parts));
        total.merge_batch(&[states])?;
        assert_eq!(total.evaluate()?, whole.evaluate()?);
        Ok(())
    }

    #[test]
    fn no_rows_answer_null() -> Result<()> {
        for aggregate in Aggregate::ALL {
            let mut empty = accumulator(aggregate, None);
            let nulls = int64s([None, None]);
            let values = match aggregate {
                Aggregate::MergeSetDigest | Aggregate::Merge => {
                    vec![Arc::new(BinaryArray::from(vec![None::<&[u8]>])) as ArrayRef]
                }
                _ => vec![nulls],
            };
            empty.update_batch(&values)?;
            assert_eq!(
                empty.evaluate()?,
                ScalarValue::Binary(None),
                "{aggregate:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn merge_rejects_mixed_or_bad_sketches() -> Result<()> {
        let mut hll = accumulator(Aggregate::ApproxSet, Some(SketchType::HyperLogLog));
        hll.update_batch(&[int64s([Some(1)])])?;
        let mut tdigest = accumulator(Aggregate::TDigestAgg, Some(SketchType::TDigest));
        let values: ArrayRef = Arc::new(Float64Array::from(vec![1.5]));
        tdigest.update_batch(&[values])?;
        let mixed: ArrayRef = Arc::new(BinaryArray::from_iter_values([
            bytes(hll.evaluate()?),
            bytes(tdigest.evaluate()?),
        ]));
        let mut untyped = accumulator(Aggregate::Merge, None);
        assert!(untyped.update_batch(&[mixed]).is_err());
        let mut typed = accumulator(Aggregate::Merge, Some(SketchType::TDigest));
        let bad: ArrayRef = Arc::new(BinaryArray::from_iter_values([[1u8, 2, 3]]));
        assert!(typed.update_batch(&[bad]).is_err());
        Ok(())
    }

    #[test]
    fn coerces_as_trino_resolves() {
        use DataType::*;
        assert_eq!(
            Aggregate::QDigestAgg.coerce(&[Int32, Int8, Float32]),
            Some(vec![Int64, Int64, Float64])
        );
        assert_eq!(
            Aggregate::QDigestAgg.coerce(&[Float32]),
            Some(vec![Float32])
        );
        assert_eq!(Aggregate::QDigestAgg.coerce(&[Float64, Float64]), None);
        assert_eq!(
            Aggregate::TDigestAgg.coerce(&[Int64, Int32]),
            Some(vec![Float64; 2])
        );
        assert_eq!(Aggregate::Merge.coerce(&[Utf8]), None);
        assert_eq!(
            Aggregate::ApproxSet.coerce(&[Utf8, Float32]),
            Some(vec![Utf8, Float64])
        );
    }
}
