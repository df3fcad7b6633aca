//! Semi joins moved below the inner joins they do not need, to the table they filter.
//!
//! DataFusion turns `x IN (SELECT …)` into a semi join over the whole FROM clause. In
//! TPC-H q18 the subquery picks 624 of 15M orders, but those are found only after orders
//! were joined with their 60M lineitems. A semi join whose conditions use the columns of
//! one side of an inner join keeps the same rows when it is applied to that side first.
//!
//! Without cardinalities the rule moves a semi join only where that is likely to pay: its
//! subquery is filtered (so it matches few rows) and the inner joins it passes have no
//! filter on their other side (so they do not already make the rows few). q21's EXISTS
//! over all lineitems stays where it is, above joins whose filters keep 1 row in 50.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::logical_expr::{Expr, Join, JoinType, LogicalPlan, Projection};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

#[derive(Debug, Default)]
pub(crate) struct PushSemiJoins;

impl OptimizerRule for PushSemiJoins {
    fn name(&self) -> &str {
        "push_semi_joins"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Join(semi) = plan else {
            return Ok(Transformed::no(plan));
        };
        if semi.join_type != JoinType::LeftSemi || semi.null_aware || !filtered(&semi.right)? {
            return Ok(Transformed::no(LogicalPlan::Join(semi)));
        }
        let left_schema = semi.left.schema();
        let columns: HashSet<Column> = semi
            .on
            .iter()
            .map(|(left, _)| left)
            .chain(&semi.filter)
            .flat_map(Expr::column_refs)
            .filter(|column| left_schema.has_column(column))
            .cloned()
            .collect();
        match below(&semi.left, &columns, &semi)? {
            Some(plan) => Ok(Transformed::yes(plan)),
            None => Ok(Transformed::no(LogicalPlan::Join(semi))),
        }
    }
}

/// Whether a plan filters rows of its tables. A filter of `true`, which decorrelated
/// subqueries leave on scans (TPC-H q15's supplier), keeps every row.
pub(crate) fn filtered(plan: &LogicalPlan) -> Result<bool> {
    let keeps_all = |predicate: &Expr| {
        matches!(
            predicate,
            Expr::Literal(ScalarValue::Boolean(Some(true)), _)
        )
    };
    plan.exists(|node| {
        Ok(match node {
            LogicalPlan::Filter(filter) => !keeps_all(&filter.predicate),
            LogicalPlan::TableScan(scan) => !scan.filters.iter().all(keeps_all),
            _ => false,
        })
    })
}

/// Whether a projection only picks columns.
pub(crate) fn plain(projection: &Projection) -> bool {
    projection
        .expr
        .iter()
        .all(|expr| matches!(expr, Expr::Column(_)))
}

/// `plan` with the semi join applied below an inner join inside it, or `None` when the
/// semi join cannot go below one.
fn below(
    plan: &LogicalPlan,
    columns: &HashSet<Column>,
    semi: &Join,
) -> Result<Option<LogicalPlan>> {
    match plan {
        LogicalPlan::Projection(projection) if plain(projection) => {
            let Some(input) = below(&projection.input, columns, semi)? else {
                return Ok(None);
            };
            Ok(Some(LogicalPlan::Projection(
                Projection::try_new_with_schema(
                    projection.expr.clone(),
                    Arc::new(input),
                    projection.schema.clone(),
                )?,
            )))
        }
        LogicalPlan::Join(inner) if inner.join_type == JoinType::Inner => {
            let within = |side: &LogicalPlan| columns.iter().all(|c| side.schema().has_column(c));
            let (mut left, mut right) = (inner.left.clone(), inner.right.clone());
            let (side, other) = if within(&left) {
                (&mut left, &right)
            } else if within(&right) {
                (&mut right, &left)
            } else {
                return Ok(None);
            };
            if filtered(other)? {
                return Ok(None);
            }
            *side = Arc::new(match below(side, columns, semi)? {
                Some(pushed) => pushed,
                None => LogicalPlan::Join(Join::try_new(
                    side.clone(),
                    semi.right.clone(),
                    semi.on.clone(),
                    semi.filter.clone(),
                    JoinType::LeftSemi,
                    semi.join_constraint,
                    semi.null_equality,
                    false,
                )?),
            });
            Ok(Some(LogicalPlan::Join(Join::try_new(
                left,
                right,
                inner.on.clone(),
                inner.filter.clone(),
                JoinType::Inner,
                inner.join_constraint,
                inner.null_equality,
                inner.null_aware,
            )?)))
        }
        _ => Ok(None),
    }
}
