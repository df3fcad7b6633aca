//! `LateralUnnest`: Trino's `FROM t CROSS JOIN UNNEST(t.a, …) AS u(x, …)` (and the comma
//! form) unnests each row's arrays beside that row. DataFusion plans the `UNNEST` as a
//! subquery over references to the outer row, which it cannot run; this analyzer rule
//! turns the join into an `Unnest` over the left side, whose rows keep their columns and
//! gain the unnested ones under the alias `u`. As in Trino, a row whose arrays are empty
//! or NULL gives no rows, except under `LEFT JOIN UNNEST(…) ON TRUE`, where it gives one
//! with NULLs.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue, UnnestOptions};
use datafusion::functions_nested::expr_fn::cardinality;
use datafusion::logical_expr::{
    lit, when, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, Projection, Subquery,
    SubqueryAlias, Unnest,
};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub(crate) struct LateralUnnest;

impl AnalyzerRule for LateralUnnest {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(rewrite).data()
    }

    fn name(&self) -> &str {
        "lateral_unnest"
    }
}

/// The parts of `SubqueryAlias(Subquery(Projection…(Unnest(Projection(one row)))))`: the
/// alias, the projections above the unnest (outermost first), the unnest and the
/// projection of the arrays below it.
type Parts<'a> = (
    &'a SubqueryAlias,
    Vec<&'a Projection>,
    &'a Unnest,
    &'a Projection,
);

fn lateral_parts(plan: &LogicalPlan) -> Option<Parts<'_>> {
    let LogicalPlan::SubqueryAlias(alias) = plan else {
        return None;
    };
    let LogicalPlan::Subquery(Subquery { subquery, .. }) = alias.input.as_ref() else {
        return None;
    };
    let mut above = Vec::new();
    let mut node = subquery.as_ref();
    while let LogicalPlan::Projection(projection) = node {
        above.push(projection);
        node = projection.input.as_ref();
    }
    let LogicalPlan::Unnest(unnest) = node else {
        return None;
    };
    let LogicalPlan::Projection(inner) = unnest.input.as_ref() else {
        return None;
    };
    match inner.input.as_ref() {
        LogicalPlan::EmptyRelation(empty) if empty.produce_one_row && !above.is_empty() => {
            Some((alias, above, unnest, inner))
        }
        _ => None,
    }
}

fn rewrite(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let LogicalPlan::Join(join) = &plan else {
        return Ok(Transformed::no(plan));
    };
    let always = match &join.filter {
        None => true,
        Some(Expr::Literal(ScalarValue::Boolean(Some(true)), _)) => true,
        Some(_) => false,
    };
    let keep_empty = match join.join_type {
        JoinType::Inner => false,
        JoinType::Left => true,
        _ => return Ok(Transformed::no(plan)),
    };
    if !join.on.is_empty() || !always {
        return Ok(Transformed::no(plan));
    }
    let Some((alias, above, unnest, inner)) = lateral_parts(&join.right) else {
        return Ok(Transformed::no(plan));
    };
    let left = join.left.as_ref().clone();
    let left_columns: Vec<Expr> = left
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    // The arrays, now over the left side's own columns.
    let mut arrays = left_columns.clone();
    for expr in &inner.expr {
        let mut expr = expr
            .clone()
            .transform_up(|e| match e {
                Expr::OuterReferenceColumn(_, column) => Ok(Transformed::yes(Expr::Column(column))),
                other => Ok(Transformed::no(other)),
            })?
            .data;
        if keep_empty {
            // An empty array unnests to one row of NULL, as a NULL array does.
            let (value, name) = match expr {
                Expr::Alias(alias) => (*alias.expr, Some(alias.name)),
                other => (other, None),
            };
            let empty = cardinality(value.clone()).eq(lit(0u64));
            let null = Expr::Literal(ScalarValue::Null, None);
            let kept = when(empty, null).otherwise(value)?;
            expr = match name {
                Some(name) => kept.alias(name),
                None => kept,
            };
        }
        arrays.push(expr);
    }
    let options = UnnestOptions {
        preserve_nulls: keep_empty,
        ..unnest.options.clone()
    };
    let mut builder = LogicalPlanBuilder::from(left)
        .project(arrays)?
        .unnest_columns_with_options(unnest.exec_columns.clone(), options)?;
    // Each projection above the unnest keeps the left side's columns; the outermost names
    // its columns under the alias.
    for (depth, projection) in above.iter().enumerate().rev() {
        let mut output = left_columns.clone();
        for (expr, (_, field)) in projection.expr.iter().zip(projection.schema.iter()) {
            if depth > 0 {
                output.push(expr.clone());
                continue;
            }
            let value = match expr {
                Expr::Alias(alias) => alias.expr.as_ref().clone(),
                other => other.clone(),
            };
            output.push(value.alias_qualified(Some(alias.alias.clone()), field.name()));
        }
        builder = builder.project(output)?;
    }
    Ok(Transformed::yes(builder.build()?))
}
