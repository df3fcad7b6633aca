//! `CheckedConstants`: integer `+`, `-`, `*` and `/` of constants computed with overflow
//! checks, as Trino computes them (`SELECT 9223372036854775807 * 2` fails with
//! `NUMERIC_VALUE_OUT_OF_RANGE`), before DataFusion's simplifier folds them with wrapping
//! arithmetic into a wrong number. An analyzer rule after type coercion, so both operands
//! have their common type; the arithmetic of columns is checked by the physical rule
//! [`CheckedIntegerArithmetic`](crate::optimizer::physical::integer_overflow).

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

use crate::optimizer::physical::integer_overflow::{integer_name, overflow_error};

#[derive(Debug)]
pub(crate) struct CheckedConstants;

impl AnalyzerRule for CheckedConstants {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            plan.map_expressions(|expr| expr.transform_up(fold))
        })
        .data()
    }

    fn name(&self) -> &str {
        "checked_constants"
    }
}

/// `left op right` of two integer literals, computed; an overflow is Trino's error.
fn fold(expr: Expr) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let (Expr::Literal(l, _), Expr::Literal(r, _)) = (left.as_ref(), right.as_ref()) else {
        return Ok(Transformed::no(expr));
    };
    let (Some(type_name), Some(a), Some(b)) =
        (integer_name(&l.data_type()), integer(l), integer(r))
    else {
        return Ok(Transformed::no(expr));
    };
    if l.data_type() != r.data_type() {
        return Ok(Transformed::no(expr));
    }
    let value = match op {
        Operator::Plus => a.checked_add(b),
        Operator::Minus => a.checked_sub(b),
        Operator::Multiply => a.checked_mul(b),
        // Division by zero stays an error of the query's execution.
        Operator::Divide if b != 0 => a.checked_div(b),
        _ => return Ok(Transformed::no(expr)),
    };
    // The result in the operands' type: i64 arithmetic on narrower types overflows there.
    let value = value.and_then(|v| ScalarValue::Int64(Some(v)).cast_to(&l.data_type()).ok());
    match value {
        Some(value) => Ok(Transformed::yes(Expr::Literal(value, None))),
        None => Err(overflow_error(type_name, op, format!("{a} {op} {b}"))),
    }
}

/// The value of a non-null integer literal.
fn integer(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => *v,
        _ => None,
    }
}
