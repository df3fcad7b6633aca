//! `TimeArithmetic`: `time ± interval` as Trino computes it, the time of day the interval
//! reaches, wrapping around midnight (`TIME '01:00' - INTERVAL '3' HOUR` is `22:00`), where
//! DataFusion answers an interval. An analyzer rule before type coercion: the operands'
//! types decide, and the sum is taken on the epoch's day as a timestamp, whose time of day
//! is the answer.

use datafusion::arrow::datatypes::{DataType, IntervalUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::{binary_expr, cast, lit, BinaryExpr, Expr, ExprSchemable};
use datafusion::logical_expr::{LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

use super::rewrite_typed_expressions;

#[derive(Debug)]
pub(crate) struct TimeArithmetic;

impl AnalyzerRule for TimeArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_typed_expressions(plan, rewrite)
    }

    fn name(&self) -> &str {
        "time_arithmetic"
    }
}

fn rewrite(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(op, Operator::Plus | Operator::Minus) {
        return Ok(Transformed::no(expr));
    }
    let is_time = |t: &DataType| matches!(t, DataType::Time32(_) | DataType::Time64(_));
    let is_day_time = |t: &DataType| {
        matches!(
            t,
            DataType::Interval(IntervalUnit::DayTime | IntervalUnit::MonthDayNano)
                | DataType::Duration(_)
        )
    };
    let (left_type, right_type) = (left.get_type(schema)?, right.get_type(schema)?);
    let (time, interval, time_type) = if is_time(&left_type) && is_day_time(&right_type) {
        (left, right, left_type)
    } else if *op == Operator::Plus && is_day_time(&left_type) && is_time(&right_type) {
        (right, left, right_type)
    } else {
        return Ok(Transformed::no(expr));
    };
    let epoch = lit(ScalarValue::Date32(Some(0)));
    let on_epoch = binary_expr(epoch, Operator::Plus, (**time).clone());
    let moved = binary_expr(on_epoch, *op, (**interval).clone());
    Ok(Transformed::yes(cast(moved, time_type)))
}
