//! `+`, `-` and `*` of decimals on the values' machine words when they cannot overflow.
//!
//! Arrow computes every decimal sum and product with overflow-checked 128-bit
//! arithmetic, per value, and a difference with a checked product of each side by its
//! rescaling factor too. TPC-H q1 spends a quarter of its time there, on
//! `l_extendedprice * (1 - l_discount) * (1 + l_tax)` over 60 M rows. Yet values that
//! fit in 64 bits (every decimal of up to 18 digits) multiply into 128 bits without
//! overflowing, and two such products add without overflowing. This physical rule
//! evaluates the decimal arithmetic of projections, filters and aggregate arguments that
//! way; a batch with a value beyond 64 bits goes to Arrow's kernel, which reports the
//! overflow as before. Results, types and errors are Arrow's.

use std::any::Any;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Schema};
use datafusion::common::{internal_err, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::datum::apply;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::optimizer::physical::node_rewrite::replace_binary_exprs;

#[derive(Debug, Default)]
pub(crate) struct WordSizedDecimalArithmetic;

impl PhysicalOptimizerRule for WordSizedDecimalArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        replace_binary_exprs(plan, |binary, schema| {
            Ok(WordSized::try_new(binary, schema)?.map(|fast| Arc::new(fast) as _))
        })
    }

    fn name(&self) -> &str {
        "word_sized_decimal_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A decimal `+`, `-` or `*` computed on 64-bit values where they fit; displayed and
/// typed as the [`BinaryExpr`] it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WordSized {
    binary: BinaryExpr,
    /// The factors that bring each side to the result's scale (1 for a product).
    left_factor: i64,
    right_factor: i64,
    precision: u8,
    scale: i8,
}

impl WordSized {
    /// `None` unless `binary` is a `+`, `-` or `*` of two Decimal128 values whose result
    /// Arrow types as DataFusion does, with rescaling factors that fit in 64 bits.
    fn try_new(binary: &BinaryExpr, schema: &Schema) -> Result<Option<Self>> {
        let (DataType::Decimal128(p1, s1), DataType::Decimal128(p2, s2)) = (
            binary.left().data_type(schema)?,
            binary.right().data_type(schema)?,
        ) else {
            return Ok(None);
        };
        let (precision, scale, left_factor, right_factor) = match binary.op() {
            Operator::Plus | Operator::Minus => {
                let scale = s1.max(s2);
                let digits = (p1 as i8 - s1).max(p2 as i8 - s2);
                let precision = (scale + digits + 1).clamp(1, 38) as u8;
                let (Some(l), Some(r)) = (power_of_ten(scale - s1), power_of_ten(scale - s2))
                else {
                    return Ok(None);
                };
                (precision, scale, l, r)
            }
            Operator::Multiply => {
                let scale = s1 + s2;
                if scale > 38 {
                    return Ok(None);
                }
                ((p1 + p2 + 1).min(38), scale, 1, 1)
            }
            _ => return Ok(None),
        };
        if binary.data_type(schema)? != DataType::Decimal128(precision, scale) {
            return Ok(None);
        }
        Ok(Some(WordSized {
            binary: binary.clone(),
            left_factor,
            right_factor,
            precision,
            scale,
        }))
    }

    /// The result of one batch's operands, or `None` if a value is beyond 64 bits.
    fn compute(&self, left: &ColumnarValue, right: &ColumnarValue) -> Option<ArrayRef> {
        let (left, left_nulls) = side(left)?;
        let (right, right_nulls) = side(right)?;
        if !left.words() || !right.words() {
            return None;
        }
        // Every value fits in 64 bits: a product of two stays below 2^126, so neither
        // the products nor the sum of two of them can overflow.
        let word = |v: i128| i128::from(v as i64);
        let (lf, rf) = (i128::from(self.left_factor), i128::from(self.right_factor));
        let values = match self.binary.op() {
            Operator::Plus => zip_with(&left, &right, |l, r| word(l) * lf + word(r) * rf),
            Operator::Minus => zip_with(&left, &right, |l, r| word(l) * lf - word(r) * rf),
            _ => zip_with(&left, &right, |l, r| word(l) * word(r)),
        }?;
        let nulls = NullBuffer::union(left_nulls.as_ref(), right_nulls.as_ref());
        let array = PrimitiveArray::<Decimal128Type>::new(values.into(), nulls)
            .with_precision_and_scale(self.precision, self.scale)
            .ok()?;
        Some(Arc::new(array))
    }
}

/// One operand of a batch: a column's values or one literal value.
enum Side<'a> {
    Values(&'a [i128]),
    Value(i128),
}

impl Side<'_> {
    /// True if every value fits in 64 bits.
    fn words(&self) -> bool {
        let fits = |v: &i128| i64::try_from(*v).is_ok();
        match self {
            Side::Values(values) => values.iter().all(fits),
            Side::Value(value) => fits(value),
        }
    }
}

/// `value`'s values and nulls; `None` for a NULL literal or another type.
fn side(value: &ColumnarValue) -> Option<(Side<'_>, Option<NullBuffer>)> {
    match value {
        ColumnarValue::Array(array) => {
            let array = array.as_primitive_opt::<Decimal128Type>()?;
            Some((Side::Values(array.values()), array.nulls().cloned()))
        }
        ColumnarValue::Scalar(scalar) => Some((Side::Value(decimal_scalar(scalar)?), None)),
    }
}

/// `f` of each pair of values; `None` for two literals (folded before they get here).
fn zip_with(left: &Side, right: &Side, f: impl Fn(i128, i128) -> i128) -> Option<Vec<i128>> {
    Some(match (left, right) {
        (Side::Values(l), Side::Values(r)) => {
            l.iter().zip(r.iter()).map(|(l, r)| f(*l, *r)).collect()
        }
        (Side::Value(l), Side::Values(r)) => r.iter().map(|r| f(*l, *r)).collect(),
        (Side::Values(l), Side::Value(r)) => l.iter().map(|l| f(*l, *r)).collect(),
        (Side::Value(_), Side::Value(_)) => return None,
    })
}

/// The value of a non-null Decimal128 scalar.
fn decimal_scalar(scalar: &datafusion::common::ScalarValue) -> Option<i128> {
    match scalar {
        datafusion::common::ScalarValue::Decimal128(Some(v), _, _) => Some(*v),
        _ => None,
    }
}

/// 10^`exponent`, if it fits in 64 bits.
fn power_of_ten(exponent: i8) -> Option<i64> {
    10i64.checked_pow(u32::try_from(exponent).ok()?)
}

impl fmt::Display for WordSized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.binary.fmt(f)
    }
}

impl PhysicalExpr for WordSized {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.binary.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.binary.nullable(input_schema)
    }

    fn evaluate(
        &self,
        batch: &datafusion::arrow::record_batch::RecordBatch,
    ) -> Result<ColumnarValue> {
        let left = self.binary.left().evaluate(batch)?;
        let right = self.binary.right().evaluate(batch)?;
        if let Some(array) = self.compute(&left, &right) {
            return Ok(ColumnarValue::Array(array));
        }
        // Arrow's kernels, as the BinaryExpr would have called them.
        match self.binary.op() {
            Operator::Plus => apply(&left, &right, numeric::add_wrapping),
            Operator::Minus => apply(&left, &right, numeric::sub_wrapping),
            Operator::Multiply => apply(&left, &right, numeric::mul_wrapping),
            op => internal_err!("word-sized decimal arithmetic has no {op}"),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![self.binary.left(), self.binary.right()]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [left, right]: [Arc<dyn PhysicalExpr>; 2] = match children.try_into() {
            Ok(pair) => pair,
            Err(_) => return internal_err!("word-sized decimal arithmetic takes two operands"),
        };
        let mut new = (*self).clone();
        new.binary = BinaryExpr::new(left, *self.binary.op(), right);
        Ok(Arc::new(new))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.binary.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Decimal128Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{Column, Literal};

    use super::*;

    fn decimals(values: &[Option<i128>], precision: u8, scale: i8) -> ArrayRef {
        Arc::new(
            Decimal128Array::from(values.to_vec())
                .with_precision_and_scale(precision, scale)
                .unwrap(),
        )
    }

    /// Evaluates `left op right` on `batch` both ways: as a word-sized expression (which
    /// must be chosen) and as Arrow's BinaryExpr.
    fn both(
        batch: &RecordBatch,
        left: Arc<dyn PhysicalExpr>,
        op: Operator,
        right: Arc<dyn PhysicalExpr>,
    ) -> (Result<ArrayRef>, Result<ArrayRef>) {
        let binary = BinaryExpr::new(left, op, right);
        let fast = WordSized::try_new(&binary, &batch.schema())
            .unwrap()
            .expect("a decimal operation is computed on words");
        let array = |v: Result<ColumnarValue>| v.and_then(|v| v.into_array(batch.num_rows()));
        (array(fast.evaluate(batch)), array(binary.evaluate(batch)))
    }

    #[test]
    fn results_and_errors_are_arrows() {
        let small = [
            Some(10025),
            Some(-3310),
            None,
            Some(999_999_999_999_999),
            Some(0),
        ];
        let rates = [Some(5), Some(10), Some(2), None, Some(-7)];
        let huge = [
            Some(10i128.pow(20)),
            Some(-5),
            None,
            Some(10i128.pow(37)),
            Some(1),
        ];
        let fine = [Some(12345), Some(-1), None, Some(99999), Some(7)];
        let schema = Arc::new(Schema::new(vec![
            Field::new("price", DataType::Decimal128(15, 2), true),
            Field::new("rate", DataType::Decimal128(15, 2), true),
            Field::new("big", DataType::Decimal128(38, 0), true),
            Field::new("fine", DataType::Decimal128(10, 4), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                decimals(&small, 15, 2),
                decimals(&rates, 15, 2),
                decimals(&huge, 38, 0),
                decimals(&fine, 10, 4),
            ],
        )
        .unwrap();
        let col = |name: &str, i: usize| Arc::new(Column::new(name, i)) as Arc<dyn PhysicalExpr>;
        let one = Arc::new(Literal::new(ScalarValue::Decimal128(Some(1), 20, 0)))
            as Arc<dyn PhysicalExpr>;
        let pairs = [
            (col("price", 0), col("rate", 1)),
            (one.clone(), col("rate", 1)),
            (col("price", 0), one),
            (col("price", 0), col("fine", 3)),
            (col("fine", 3), col("big", 2)),
            (col("big", 2), col("big", 2)),
        ];
        for (left, right) in pairs {
            for op in [Operator::Plus, Operator::Minus, Operator::Multiply] {
                let (fast, arrow) = both(&batch, left.clone(), op, right.clone());
                match (fast, arrow) {
                    (Ok(fast), Ok(arrow)) => assert_eq!(&fast, &arrow, "{left} {op} {right}"),
                    (Err(fast), Err(arrow)) => {
                        assert_eq!(fast.to_string(), arrow.to_string(), "{left} {op} {right}")
                    }
                    (fast, arrow) => panic!("{left} {op} {right}: {fast:?} but Arrow {arrow:?}"),
                }
            }
        }
    }

    #[test]
    fn values_beyond_64_bits_go_to_arrows_kernel() {
        let expr = |l: i128, r: i128| {
            let fast = WordSized {
                binary: BinaryExpr::new(
                    Arc::new(Column::new("a", 0)),
                    Operator::Multiply,
                    Arc::new(Column::new("b", 1)),
                ),
                left_factor: 1,
                right_factor: 1,
                precision: 38,
                scale: 0,
            };
            let a = ColumnarValue::Array(decimals(&[Some(l)], 19, 0));
            let b = ColumnarValue::Array(decimals(&[Some(r)], 19, 0));
            fast.compute(&a, &b)
        };
        assert!(expr(i128::from(i64::MAX), i128::from(i64::MIN)).is_some());
        assert!(expr(i128::from(i64::MAX) + 1, 1).is_none());
    }
}
