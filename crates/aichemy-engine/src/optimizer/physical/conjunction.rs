//! A filter's conditions evaluated together, each on the rows the ones before it kept or,
//! when that is cheaper, on all of them.
//!
//! DataFusion evaluates `a AND b AND c` as nested binary expressions. When `a` keeps at
//! most a fifth of a batch, `AND` copies the whole batch — every column, not only those
//! `b` reads — down to those rows, evaluates `b` there and writes the result back bit by
//! bit; above a fifth it evaluates `b` on every row, even a `b` that fails on rows `a`
//! removed (`n <> 0 AND 10 / n > 1`). TPC-H q6 has five conditions: its `FilterExec`
//! took 790 ms for 60 M rows, `pre_selection_scatter` alone 10 % of the query's samples,
//! where the five comparisons themselves cost a few percent.
//!
//! [`AllOf`] keeps one bitmap of the rows still in and goes through the conditions in
//! order ([`Runs`] says how each one runs):
//! - a comparison of fixed-width values runs on every row — it cannot fail and costs
//!   less than copying the rows it would skip — and its result is ANDed into the bitmap;
//! - a costlier condition runs on the rows still in, copying only the columns it reads,
//!   and its results are written back at their positions; while more than a fifth of the
//!   rows are in, one that cannot fail runs on all of them instead;
//! - a condition that can fail runs on the rows still in, always.
//!
//! Only a filter's predicate is one of these: there a NULL condition drops the row like a
//! false one, so the bitmap has no NULLs.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, BooleanBufferBuilder};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{internal_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::{BinaryExpr, Column};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::PhysicalExpr;

/// Below this share of rows still in, a condition that cannot fail runs on those rows
/// only (DataFusion's threshold for `AND`).
const FEW_ROWS: f64 = 0.2;

/// Where one condition of an [`AllOf`] is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Runs {
    /// On every row: cheap and cannot fail.
    Everywhere,
    /// On the rows still in when they are few, else on every row: cannot fail.
    WhereKeptIfFew,
    /// On the rows still in: may fail on the others.
    WhereKept,
}

/// The conjunction of a filter's conditions; true where all of them are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AllOf {
    conditions: Vec<Condition>,
}

// PartialEq and Hash by hand: deriving them for `Arc<dyn PhysicalExpr>` fields moves out
// of a reference (rust-lang/rust#78808).
#[derive(Debug, Clone, Eq)]
struct Condition {
    expr: Arc<dyn PhysicalExpr>,
    runs: Runs,
    /// The input columns `expr` reads, ascending.
    columns: Vec<usize>,
    /// `expr` over a batch of only `columns`.
    projected: Arc<dyn PhysicalExpr>,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.expr.eq(&other.expr) && self.runs == other.runs
    }
}

impl Hash for Condition {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
        self.runs.hash(state);
    }
}

impl Condition {
    fn new(expr: Arc<dyn PhysicalExpr>, runs: Runs) -> Result<Self> {
        let mut columns: Vec<usize> = collect_columns(&expr).iter().map(Column::index).collect();
        columns.sort_unstable();
        columns.dedup();
        let projected = Arc::clone(&expr)
            .transform(|node| {
                let Some(column) = node.as_any().downcast_ref::<Column>() else {
                    return Ok(Transformed::no(node));
                };
                let at = columns.partition_point(|&index| index < column.index());
                Ok(Transformed::yes(
                    Arc::new(Column::new(column.name(), at)) as Arc<dyn PhysicalExpr>
                ))
            })
            .data()?;
        Ok(Self {
            expr,
            runs,
            columns,
            projected,
        })
    }
}

impl AllOf {
    pub(crate) fn try_new(conditions: Vec<(Arc<dyn PhysicalExpr>, Runs)>) -> Result<Self> {
        let conditions = conditions
            .into_iter()
            .map(|(expr, runs)| Condition::new(expr, runs))
            .collect::<Result<_>>()?;
        Ok(Self { conditions })
    }
}

impl fmt::Display for AllOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, |expr, f| write!(f, "{expr}"))
    }
}

impl AllOf {
    /// Writes the conditions joined by `AND`, as DataFusion writes a conjunction.
    fn write(
        &self,
        f: &mut fmt::Formatter<'_>,
        one: impl Fn(&Arc<dyn PhysicalExpr>, &mut fmt::Formatter<'_>) -> fmt::Result,
    ) -> fmt::Result {
        for (at, condition) in self.conditions.iter().enumerate() {
            if at > 0 {
                f.write_str(" AND ")?;
            }
            let or = condition
                .expr
                .as_any()
                .downcast_ref::<BinaryExpr>()
                .is_some_and(|binary| *binary.op() == Operator::Or);
            if or {
                f.write_str("(")?;
            }
            one(&condition.expr, f)?;
            if or {
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

impl PhysicalExpr for AllOf {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _input_schema: &Schema) -> Result<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let rows = batch.num_rows();
        // `None` while every row is in.
        let mut kept: Option<BooleanBuffer> = None;
        for condition in &self.conditions {
            let count = kept.as_ref().map_or(rows, BooleanBuffer::count_set_bits);
            if count == 0 {
                break;
            }
            let everywhere = match condition.runs {
                Runs::Everywhere => true,
                Runs::WhereKeptIfFew => count as f64 > rows as f64 * FEW_ROWS,
                Runs::WhereKept => false,
            };
            kept = Some(match &kept {
                None => truth(condition.expr.evaluate(batch)?, rows)?,
                Some(kept) if everywhere || count == rows => {
                    kept & &truth(condition.expr.evaluate(batch)?, rows)?
                }
                Some(kept) => {
                    let selection = BooleanArray::new(kept.clone(), None);
                    let input =
                        filter_record_batch(&batch.project(&condition.columns)?, &selection)?;
                    scatter(kept, &truth(condition.projected.evaluate(&input)?, count)?)
                }
            });
        }
        let kept = kept.unwrap_or_else(|| BooleanBuffer::new_set(rows));
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            kept, None,
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.conditions
            .iter()
            .map(|condition| &condition.expr)
            .collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        if children.len() != self.conditions.len() {
            return internal_err!(
                "a conjunction of {} conditions got {} children",
                self.conditions.len(),
                children.len()
            );
        }
        let conditions = children
            .into_iter()
            .zip(&self.conditions)
            .map(|(expr, old)| (expr, old.runs))
            .collect();
        Ok(Arc::new(Self::try_new(conditions)?))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, |expr, f| expr.fmt_sql(f))
    }
}

/// Where `value`, a condition's result for `rows` rows, is true (NULL is not).
fn truth(value: ColumnarValue, rows: usize) -> Result<BooleanBuffer> {
    match value {
        ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => Ok(BooleanBuffer::new_set(rows)),
        ColumnarValue::Scalar(ScalarValue::Boolean(_)) => Ok(BooleanBuffer::new_unset(rows)),
        ColumnarValue::Scalar(other) => {
            internal_err!("a condition evaluated to {other:?}, not a boolean")
        }
        ColumnarValue::Array(array) => {
            let Some(booleans) = array.as_boolean_opt() else {
                return internal_err!("a condition evaluated to {}", array.data_type());
            };
            if booleans.len() != rows {
                return internal_err!("a condition gave {} rows of {rows}", booleans.len());
            }
            Ok(match booleans.nulls() {
                Some(nulls) => booleans.values() & nulls.inner(),
                None => booleans.values().clone(),
            })
        }
    }
}

/// `kept` with each of its set bits replaced by the next bit of `results`, which has one
/// bit per row `kept` keeps.
fn scatter(kept: &BooleanBuffer, results: &BooleanBuffer) -> BooleanBuffer {
    let passed = results.count_set_bits();
    if passed == results.len() {
        return kept.clone();
    }
    if passed == 0 {
        return BooleanBuffer::new_unset(kept.len());
    }
    let mut out = BooleanBufferBuilder::new(kept.len());
    out.append_n(kept.len(), false);
    for (row, passes) in kept.set_indices().zip(results.iter()) {
        if passes {
            out.set_bit(row, true);
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{binary, lit};

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Int32, false),
        ]);
        let a = Int32Array::from(vec![Some(1), None, Some(3), Some(4), Some(0), Some(6)]);
        let b = Int32Array::from(vec![10, 20, 30, 40, 50, 60]);
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(a), Arc::new(b)]).unwrap()
    }

    fn condition(
        column: &str,
        at: usize,
        op: Operator,
        value: i32,
        schema: &Schema,
    ) -> Arc<dyn PhysicalExpr> {
        binary(Arc::new(Column::new(column, at)), op, lit(value), schema).unwrap()
    }

    fn rows_kept(all_of: &AllOf, batch: &RecordBatch) -> Vec<bool> {
        let result = all_of
            .evaluate(batch)
            .unwrap()
            .into_array(batch.num_rows())
            .unwrap();
        assert_eq!(result.null_count(), 0);
        result.as_boolean().iter().map(|v| v.unwrap()).collect()
    }

    #[test]
    fn each_way_of_running_keeps_the_rows_all_conditions_hold_on() {
        let batch = batch();
        let schema = batch.schema();
        for first in [Runs::Everywhere, Runs::WhereKeptIfFew, Runs::WhereKept] {
            for second in [Runs::Everywhere, Runs::WhereKeptIfFew, Runs::WhereKept] {
                // a > 1 (NULL drops the row), then b < 60 read from the second column.
                let all_of = AllOf::try_new(vec![
                    (condition("a", 0, Operator::Gt, 1, &schema), first),
                    (condition("b", 1, Operator::Lt, 60, &schema), second),
                ])
                .unwrap();
                assert_eq!(
                    rows_kept(&all_of, &batch),
                    [false, false, true, true, false, false],
                    "{first:?} {second:?}"
                );
            }
        }
    }

    #[test]
    fn a_condition_that_can_fail_sees_only_the_rows_kept_before_it() {
        let batch = batch();
        let schema = batch.schema();
        let nonzero = condition("a", 0, Operator::NotEq, 0, &schema);
        // 12 / a fails on the row where a = 0, which the condition before removes.
        let quotient = binary(
            lit(12),
            Operator::Divide,
            Arc::new(Column::new("a", 0)),
            &schema,
        );
        let divides = binary(quotient.unwrap(), Operator::Gt, lit(2), &schema).unwrap();
        let all_of = AllOf::try_new(vec![
            (nonzero, Runs::Everywhere),
            (Arc::clone(&divides), Runs::WhereKept),
        ])
        .unwrap();
        assert_eq!(
            rows_kept(&all_of, &batch),
            [true, false, true, true, false, false]
        );
        assert!(divides.evaluate(&batch).is_err());
    }

    #[test]
    fn it_reads_and_rewrites_as_its_conditions() {
        let batch = batch();
        let schema = batch.schema();
        let all_of = Arc::new(
            AllOf::try_new(vec![
                (
                    condition("b", 1, Operator::Lt, 60, &schema),
                    Runs::Everywhere,
                ),
                (condition("a", 0, Operator::Gt, 1, &schema), Runs::WhereKept),
            ])
            .unwrap(),
        );
        assert_eq!(all_of.to_string(), "b@1 < 60 AND a@0 > 1");
        // The columns swapped, as a projection below the filter might.
        let swapped = Arc::clone(&all_of)
            .with_new_children(vec![
                condition("b", 0, Operator::Lt, 60, &schema),
                condition("a", 1, Operator::Gt, 1, &schema),
            ])
            .unwrap();
        let b = Int32Array::from(vec![10, 20, 30, 40, 50, 60]);
        let a = Int32Array::from(vec![Some(1), None, Some(3), Some(4), Some(0), Some(6)]);
        let columns = vec![Arc::new(b) as _, Arc::new(a) as _];
        let swapped_schema = Schema::new(vec![
            Field::new("b", DataType::Int32, false),
            Field::new("a", DataType::Int32, true),
        ]);
        let swapped_batch = RecordBatch::try_new(Arc::new(swapped_schema), columns).unwrap();
        let swapped = swapped.as_any().downcast_ref::<AllOf>().unwrap();
        assert_eq!(
            rows_kept(swapped, &swapped_batch),
            [false, false, true, true, false, false]
        );
    }
}
