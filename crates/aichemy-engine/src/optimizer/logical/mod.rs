//! Rules on logical plans: join order, semi-join and group filters; the analyzer rules that
//! give casts Trino's rules, add intervals to times, check the overflow of integer constants,
//! run `CROSS JOIN UNNEST` of the left side's arrays and sort by subqueries.

use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{Expr, LogicalPlan};

pub(crate) mod casts;
pub(crate) mod checked_constants;
pub(crate) mod group_filter;
pub(crate) mod join_order;
pub(crate) mod lateral_unnest;
pub(crate) mod nearest;
pub(crate) mod order_subqueries;
pub(crate) mod precision;
pub(crate) mod semi_join;
pub(crate) mod time_arithmetic;

/// `plan` (its subqueries too) with every expression rewritten bottom up by `rewrite`, given
/// the schema of the rows its node reads: the walk of the analyzer rules that decide by the
/// types of operands.
pub(crate) fn rewrite_typed_expressions(
    plan: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|plan| {
        let schema = if plan.inputs().is_empty() {
            plan.schema().as_ref().clone()
        } else {
            merge_schema(&plan.inputs())
        };
        plan.map_expressions(|expr| expr.transform_up(|e| rewrite(e, &schema)))
    })
    .data()
}
