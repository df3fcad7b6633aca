//! `+`, `-`, `*` and `/` of integers fail on overflow, as in Trino
//! (`NUMERIC_VALUE_OUT_OF_RANGE: bigint multiplication overflow: 9223372036854775807 * 2`),
//! where DataFusion's kernels wrap around and answer a wrong number. This physical rule
//! evaluates the integer arithmetic of projections, filters and aggregate arguments with
//! Arrow's checked kernels; [`CheckedConstants`](crate::optimizer::logical::checked_constants)
//! does the same for constants, which DataFusion folds before any physical plan exists.

use std::any::Any;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{internal_err, DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

use crate::error::{ErrorCode, TrinoError};
use crate::optimizer::physical::node_rewrite::replace_binary_exprs;

#[derive(Debug, Default)]
pub(crate) struct CheckedIntegerArithmetic;

impl PhysicalOptimizerRule for CheckedIntegerArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        replace_binary_exprs(plan, |binary, schema| {
            Ok(Checked::try_new(binary, schema)?.map(|checked| Arc::new(checked) as _))
        })
    }

    fn name(&self) -> &str {
        "checked_integer_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The Trino name of an integer type whose arithmetic is checked.
pub(crate) fn integer_name(data_type: &DataType) -> Option<&'static str> {
    Some(match data_type {
        DataType::Int8 => "tinyint",
        DataType::Int16 => "smallint",
        DataType::Int32 => "integer",
        DataType::Int64 => "bigint",
        _ => return None,
    })
}

/// Trino's word for an arithmetic operator's overflow.
pub(crate) fn operation_name(op: &Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Plus => "addition",
        Operator::Minus => "subtraction",
        Operator::Multiply => "multiplication",
        Operator::Divide => "division",
        _ => return None,
    })
}

/// Trino's error for an overflow of `left op right` on `type_name` values.
pub(crate) fn overflow_error(
    type_name: &str,
    op: &Operator,
    operands: impl fmt::Display,
) -> DataFusionError {
    let operation = operation_name(op).unwrap_or("arithmetic");
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{type_name} {operation} overflow: {operands}"),
    )))
}

/// An integer `+`, `-`, `*` or `/` that fails on overflow with Trino's error; displayed
/// and typed as the [`BinaryExpr`] it replaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Checked {
    binary: BinaryExpr,
    type_name: &'static str,
}

impl Checked {
    fn try_new(binary: &BinaryExpr, schema: &Schema) -> Result<Option<Self>> {
        let left = binary.left().data_type(schema)?;
        let Some(type_name) = integer_name(&left) else {
            return Ok(None);
        };
        if operation_name(binary.op()).is_none() || binary.right().data_type(schema)? != left {
            return Ok(None);
        }
        Ok(Some(Checked {
            binary: Self::checked(binary),
            type_name,
        }))
    }

    fn checked(binary: &BinaryExpr) -> BinaryExpr {
        BinaryExpr::new(
            Arc::clone(binary.left()),
            *binary.op(),
            Arc::clone(binary.right()),
        )
        .with_fail_on_overflow(true)
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.binary.fmt(f)
    }
}

impl PhysicalExpr for Checked {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.binary.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.binary.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        self.binary.evaluate(batch).map_err(|error| match error {
            // Arrow names the operands: "Overflow happened on: 9223372036854775807 * 2".
            DataFusionError::ArrowError(arrow, _)
                if matches!(*arrow, ArrowError::ArithmeticOverflow(_)) =>
            {
                let ArrowError::ArithmeticOverflow(message) = *arrow else {
                    unreachable!("matched above")
                };
                let operands = message
                    .strip_prefix("Overflow happened on: ")
                    .unwrap_or(&message)
                    .to_string();
                overflow_error(self.type_name, self.binary.op(), operands)
            }
            other => other,
        })
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
            Err(_) => return internal_err!("checked integer arithmetic takes two operands"),
        };
        Ok(Arc::new(Checked {
            binary: Self::checked(&BinaryExpr::new(left, *self.binary.op(), right)),
            type_name: self.type_name,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.binary.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, Int32Array, Int64Array};
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::Column;

    use super::*;

    fn evaluate(op: Operator, left: ArrayRef, right: ArrayRef) -> Result<ArrayRef> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", left.data_type().clone(), true),
            Field::new("b", right.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![left, right]).unwrap();
        let binary = BinaryExpr::new(
            Arc::new(Column::new("a", 0)),
            op,
            Arc::new(Column::new("b", 1)),
        );
        let checked = Checked::try_new(&binary, &schema)
            .unwrap()
            .expect("integer arithmetic is checked");
        checked.evaluate(&batch)?.into_array(batch.num_rows())
    }

    #[test]
    fn overflow_is_trinos_error_and_other_values_are_computed() {
        let big = Arc::new(Int64Array::from(vec![Some(i64::MAX), None])) as ArrayRef;
        let two = Arc::new(Int64Array::from(vec![Some(2), Some(2)])) as ArrayRef;
        let error = evaluate(Operator::Multiply, big.clone(), two.clone()).unwrap_err();
        assert_eq!(
            crate::TrinoError::from(error).message,
            "bigint multiplication overflow: 9223372036854775807 * 2"
        );
        let small = Arc::new(Int32Array::from(vec![i32::MIN])) as ArrayRef;
        let one = Arc::new(Int32Array::from(vec![1])) as ArrayRef;
        let error = evaluate(Operator::Minus, small, one).unwrap_err();
        assert_eq!(
            crate::TrinoError::from(error).message,
            "integer subtraction overflow: -2147483648 - 1"
        );
        let sum = evaluate(Operator::Plus, two.clone(), two).unwrap();
        let sum = sum.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(sum.values(), &[4, 4]);
    }
}
