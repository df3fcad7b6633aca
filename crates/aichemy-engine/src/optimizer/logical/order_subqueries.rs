//! `SubqueriesInOrderBy`: a subquery in ORDER BY (`ORDER BY x = (SELECT max(x) FROM t)`),
//! which Trino sorts by and DataFusion plans no join for — its rules turn subqueries into
//! joins in filters and projections only, and the physical planner then refuses the sort.
//! An analyzer rule after type coercion: the sort keys that hold a subquery are computed
//! by a projection below the sort, the sort orders by their columns, and a projection
//! above it drops them again.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, Projection, Sort, SortExpr};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug)]
pub(crate) struct SubqueriesInOrderBy;

impl AnalyzerRule for SubqueriesInOrderBy {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| match plan {
            LogicalPlan::Sort(sort) if sort.expr.iter().any(|key| has_subquery(&key.expr)) => {
                computed_below(sort).map(Transformed::yes)
            }
            plan => Ok(Transformed::no(plan)),
        })
        .data()
    }

    fn name(&self) -> &str {
        "subqueries_in_order_by"
    }
}

fn has_subquery(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
        ))
    })
    .unwrap_or(false)
}

/// `sort` over a projection that adds its keys with subqueries as columns, under a
/// projection of the columns the sort read.
fn computed_below(sort: Sort) -> Result<LogicalPlan> {
    let columns: Vec<Expr> = sort
        .input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let mut below = columns.clone();
    let mut keys = Vec::with_capacity(sort.expr.len());
    for (at, key) in sort.expr.into_iter().enumerate() {
        if !has_subquery(&key.expr) {
            keys.push(key);
            continue;
        }
        let name = format!("__aichemy_order_key_{at}");
        below.push(key.expr.alias(&name));
        keys.push(SortExpr {
            expr: Expr::Column(Column::from_name(name)),
            ..key
        });
    }
    let computed = LogicalPlan::Projection(Projection::try_new(below, sort.input)?);
    let sorted = LogicalPlan::Sort(Sort {
        expr: keys,
        input: Arc::new(computed),
        fetch: sort.fetch,
    });
    Ok(LogicalPlan::Projection(Projection::try_new(
        columns,
        Arc::new(sorted),
    )?))
}
