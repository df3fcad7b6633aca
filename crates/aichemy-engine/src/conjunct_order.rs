//! The conditions of a filter evaluated cheapest first.
//!
//! DataFusion evaluates `a AND b` by evaluating `b` only on the rows `a` kept, when those
//! are few, so the order of a filter's conditions decides what each costs. It keeps the
//! order they were written in. TPC-H q12 writes a string comparison on `l_shipmode`
//! before four date comparisons, and pays for 60 M string comparisons where the dates
//! would have left 9 M.
//!
//! This physical rule orders the conditions of each `FilterExec` by a cost estimate:
//! comparisons of fixed-width values before those of strings, before `IN` lists and
//! `LIKE`. Only conditions that cannot fail move forward; any other (arithmetic, casts of
//! columns, function calls) keeps its order behind them, so it never meets a row that a
//! condition before it in the query would have removed.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::Result;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, LikeExpr, Literal, NotExpr,
};
use datafusion::physical_expr::{conjunction, split_conjunction, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::ExecutionPlan;

use crate::node_rewrite::replace_each;

#[derive(Debug, Default)]
pub(crate) struct CheapConditionsFirst;

impl PhysicalOptimizerRule for CheapConditionsFirst {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        replace_each(plan, |filter: &FilterExec| {
            let Some(predicate) = reordered(filter.predicate(), &filter.input().schema()) else {
                return Ok(None);
            };
            let filter = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            Ok(Some(Arc::new(filter) as Arc<dyn ExecutionPlan>))
        })
    }

    fn name(&self) -> &str {
        "cheap_conditions_first"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `predicate` with the conditions that cannot fail first, cheapest first, then the
/// others as written; `None` if that is the order they are in.
fn reordered(predicate: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    let conditions = split_conjunction(predicate);
    if conditions.len() < 2 {
        return None;
    }
    let mut safe = Vec::new();
    let mut others = Vec::new();
    for (at, condition) in conditions.iter().enumerate() {
        match cost(condition, schema) {
            Some(cost) => safe.push((cost, at, Arc::clone(condition))),
            None => others.push(Arc::clone(condition)),
        }
    }
    safe.sort_by_key(|(cost, at, _)| (*cost, *at));
    let order: Vec<Arc<dyn PhysicalExpr>> = safe
        .into_iter()
        .map(|(_, _, condition)| condition)
        .chain(others)
        .collect();
    let unchanged = order
        .iter()
        .zip(&conditions)
        .all(|(new, old)| Arc::ptr_eq(new, old));
    (!unchanged).then(|| conjunction(order))
}

/// A rough cost per row of evaluating `expr`, or `None` if it may fail (or is not one
/// this rule knows).
fn cost(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<u32> {
    let any = expr.as_any();
    if any.is::<Column>() || any.is::<Literal>() {
        return Some(0);
    }
    if let Some(cast) = any.downcast_ref::<CastExpr>() {
        return cast.expr().as_any().is::<Literal>().then_some(0);
    }
    if let Some(binary) = any.downcast_ref::<BinaryExpr>() {
        let operands = cost(binary.left(), schema)? + cost(binary.right(), schema)?;
        return match binary.op() {
            Operator::And | Operator::Or => Some(operands),
            Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom => Some(operands + compare(binary.left(), schema)),
            _ => None,
        };
    }
    if let Some(not) = any.downcast_ref::<NotExpr>() {
        return Some(cost(not.arg(), schema)? + 1);
    }
    if let Some(is_null) = any.downcast_ref::<IsNullExpr>() {
        return Some(cost(is_null.arg(), schema)? + 1);
    }
    if let Some(is_not_null) = any.downcast_ref::<IsNotNullExpr>() {
        return Some(cost(is_not_null.arg(), schema)? + 1);
    }
    if let Some(in_list) = any.downcast_ref::<InListExpr>() {
        if !in_list
            .list()
            .iter()
            .all(|item| cost(item, schema) == Some(0))
        {
            return None;
        }
        // A set of the literals is probed once per row.
        return Some(cost(in_list.expr(), schema)? + 2 * compare(in_list.expr(), schema));
    }
    if let Some(like) = any.downcast_ref::<LikeExpr>() {
        return Some(cost(like.expr(), schema)? + cost(like.pattern(), schema)? + 20);
    }
    None
}

/// What comparing one value of `operand`'s type costs.
fn compare(operand: &Arc<dyn PhysicalExpr>, schema: &Schema) -> u32 {
    match operand.data_type(schema) {
        Ok(
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView,
        ) => 4,
        Ok(DataType::Decimal128(..) | DataType::Decimal256(..)) => 2,
        Ok(t) if t.is_primitive() || t == DataType::Boolean => 1,
        _ => 8,
    }
}
