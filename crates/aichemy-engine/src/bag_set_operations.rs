//! `EXCEPT ALL` and `INTERSECT ALL` as Trino (and the SQL standard) define them, on bags:
//! a row that `A` holds `m` times and `B` `n` times is in `A EXCEPT ALL B` `max(m - n, 0)`
//! times and in `A INTERSECT ALL B` `min(m, n)` times. DataFusion plans both as an anti or
//! semi join on every column, which keeps all `m` copies or none. Here the right side of
//! each is marked on the syntax tree, and the join DataFusion plans for it is rebuilt on
//! each row's copy number (`row_number()` over its equal rows) as one more key, so that
//! the `k`-th copy in `A` meets only the `k`-th copy in `B`.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, TableReference};
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{
    col, ExprFunctionExt, Join, JoinType, LogicalPlan, LogicalPlanBuilder, SubqueryAlias,
};
use datafusion::sql::sqlparser::ast::{
    Query, SetExpr, SetOperator, SetQuantifier, Statement, TableFactor, VisitMut, VisitorMut,
};

use crate::error::Result;

/// The alias the right side of a bag operation is marked with.
const MARK: &str = "$bag_right";

/// Marks the right side of every `EXCEPT ALL` and `INTERSECT ALL` of `statement`.
pub(crate) fn mark(statement: &mut datafusion::sql::sqlparser::ast::Statement) {
    let _ = VisitMut::visit(statement, &mut Marker);
}

struct Marker;

impl VisitorMut for Marker {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        mark_set_expr(query.body.as_mut());
        ControlFlow::Continue(())
    }
}

fn mark_set_expr(body: &mut SetExpr) {
    let SetExpr::SetOperation {
        op,
        set_quantifier,
        left,
        right,
    } = body
    else {
        return;
    };
    mark_set_expr(left.as_mut());
    mark_set_expr(right.as_mut());
    if !matches!(op, SetOperator::Except | SetOperator::Intersect)
        || *set_quantifier != SetQuantifier::All
    {
        return;
    }
    // `SELECT * FROM (<right>) AS "$bag_right"`, from a parsed template.
    let template = format!("SELECT * FROM (SELECT 1) AS \"{MARK}\"");
    let Ok(mut parsed) = crate::dialect::parse_statements(&template) else {
        return;
    };
    let Some(Statement::Query(mut wrapper)) = parsed.pop() else {
        return;
    };
    if let SetExpr::Select(select) = wrapper.body.as_mut() {
        if let Some(TableFactor::Derived { subquery, .. }) =
            select.from.first_mut().map(|from| &mut from.relation)
        {
            std::mem::swap(subquery.body.as_mut(), right.as_mut());
            std::mem::swap(right.as_mut(), wrapper.body.as_mut());
        }
    }
}

/// Whether `plan` is the marked right side (through the projection of `SELECT *`).
fn is_marked(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::Projection(projection) => is_marked(&projection.input),
        LogicalPlan::SubqueryAlias(SubqueryAlias { alias, .. }) => alias.table() == MARK,
        _ => false,
    }
}

/// Rebuilds the joins DataFusion planned for the marked bag operations.
pub(crate) fn rewrite(plan: LogicalPlan) -> Result<LogicalPlan> {
    Ok(plan
        .transform_up(|node| match node {
            LogicalPlan::Join(join)
                if matches!(join.join_type, JoinType::LeftAnti | JoinType::LeftSemi)
                    && is_marked(&join.right) =>
            {
                Ok(Transformed::yes(copies_join(join)?))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

/// `join` again with each side's copy number as one more key.
fn copies_join(join: Join) -> datafusion::error::Result<LogicalPlan> {
    let numbered =
        |plan: Arc<LogicalPlan>, alias: &str| -> datafusion::error::Result<LogicalPlan> {
            let columns: Vec<_> = plan.schema().columns().into_iter().map(col).collect();
            let copy = row_number().partition_by(columns).build()?;
            let name = copy.schema_name().to_string();
            let windowed = LogicalPlanBuilder::from(plan.as_ref().clone())
                .window(vec![copy])?
                .build()?;
            let mut keep: Vec<_> = plan.schema().columns().into_iter().map(col).collect();
            keep.push(col(Column::from_name(name)).alias("$copy"));
            LogicalPlanBuilder::from(windowed)
                .project(keep)?
                .alias(alias)?
                .build()
        };
    let left_fields: Vec<(Option<TableReference>, String)> = join
        .left
        .schema()
        .iter()
        .map(|(qualifier, field)| (qualifier.cloned(), field.name().clone()))
        .collect();
    let keys = |side: &str, plan: &LogicalPlan| -> Vec<Column> {
        plan.schema()
            .fields()
            .iter()
            .map(|f| Column::new(Some(side), f.name()))
            .chain(std::iter::once(Column::new(Some(side), "$copy")))
            .collect()
    };
    let left_keys = keys("$bag_l", &join.left);
    let right_keys = keys("$bag_r", &join.right);
    let left = numbered(join.left.clone(), "$bag_l")?;
    let right = numbered(join.right.clone(), "$bag_r")?;
    let joined = LogicalPlanBuilder::from(left)
        .join_detailed(
            right,
            join.join_type,
            (left_keys, right_keys),
            None,
            NullEquality::NullEqualsNull,
        )?
        .build()?;
    // The left side's columns under their own names again, for the plan above.
    let back: Vec<_> = left_fields
        .into_iter()
        .map(|(qualifier, name)| {
            col(Column::new(Some("$bag_l"), &name)).alias_qualified(qualifier, name)
        })
        .collect();
    LogicalPlanBuilder::from(joined).project(back)?.build()
}
