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
//!
//! The ordered conditions become one [`AllOf`] predicate, which runs the comparisons of
//! fixed-width values on every row and the others on the rows still in (see
//! [`crate::optimizer::physical::conjunction`]). Equalities of string views and texts, in any filter, become
//! [`crate::optimizer::physical::view_equals::ViewEquals`].

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::Result;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, LikeExpr, Literal, NotExpr,
};
use datafusion::physical_expr::{split_conjunction, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::ExecutionPlan;

use crate::optimizer::physical::conjunction::{AllOf, Runs};
use crate::optimizer::physical::node_rewrite::replace_each;
use crate::optimizer::physical::view_equals::views_compared;

#[derive(Debug, Default)]
pub(crate) struct CheapConditionsFirst;

impl PhysicalOptimizerRule for CheapConditionsFirst {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        replace_each(plan, |filter: &FilterExec| {
            let schema = filter.input().schema();
            let ordered = all_of(filter.predicate(), &schema)?;
            let reordered = ordered.is_some();
            let predicate = ordered.unwrap_or_else(|| Arc::clone(filter.predicate()));
            let compared = views_compared(predicate, &schema)?;
            if !reordered && !compared.transformed {
                return Ok(None);
            }
            let filter = FilterExecBuilder::from(filter)
                .with_predicate(compared.data)
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

/// The conditions of `predicate` as one [`AllOf`]: those that cannot fail first,
/// cheapest first, then the others as written; `None` if it has only one condition.
fn all_of(
    predicate: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let conditions = split_conjunction(predicate);
    if conditions.len() < 2 {
        return Ok(None);
    }
    let mut safe = Vec::new();
    let mut others = Vec::new();
    for (at, condition) in conditions.iter().enumerate() {
        match cost(condition, schema) {
            Some(cost) => {
                let runs = if cost <= EVERY_ROW_COST && !has_list(condition) {
                    Runs::Everywhere
                } else {
                    Runs::WhereKeptIfFew
                };
                safe.push((cost, at, Arc::clone(condition), runs));
            }
            None => others.push((Arc::clone(condition), Runs::WhereKept)),
        }
    }
    safe.sort_by_key(|(cost, at, _, _)| (*cost, *at));
    let order = safe
        .into_iter()
        .map(|(_, _, condition, runs)| (condition, runs))
        .chain(others)
        .collect();
    Ok(Some(Arc::new(AllOf::try_new(order)?)))
}

/// The most a condition may cost to run on every row, whatever the conditions before it
/// kept: a few comparisons of fixed-width values.
const EVERY_ROW_COST: u32 = 3;

/// Whether `expr` probes an `IN` list somewhere: a hash lookup a row.
fn has_list(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.as_any().is::<InListExpr>() || expr.children().into_iter().any(has_list)
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
