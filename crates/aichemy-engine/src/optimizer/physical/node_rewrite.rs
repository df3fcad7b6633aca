//! The walks physical rules share: one that rewrites nodes of one kind, one that rewrites
//! the binary expressions of the nodes that evaluate them.

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::ExecutionPlan;

/// `plan` with each node of type `T`, bottom up, replaced by what `replacement` returns
/// for it; a node it returns `None` for stays.
pub(crate) fn replace_each<T: ExecutionPlan + 'static>(
    plan: Arc<dyn ExecutionPlan>,
    replacement: impl Fn(&T) -> Result<Option<Arc<dyn ExecutionPlan>>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let replaced = match node.as_any().downcast_ref::<T>() {
            Some(typed) => replacement(typed)?,
            None => None,
        };
        Ok(match replaced {
            Some(new) => Transformed::yes(new),
            None => Transformed::no(node),
        })
    })
    .map(|transformed| transformed.data)
}

/// What [`replace_binary_exprs`] puts in place of one binary expression, given the schema
/// of the rows it reads; `None` keeps it.
pub(crate) type BinaryReplacement<'a> =
    dyn Fn(&BinaryExpr, &Schema) -> Result<Option<Arc<dyn PhysicalExpr>>> + 'a;

/// `plan` with the binary expressions of its projections, filters and the arguments of its
/// first aggregates (a final aggregate merges states, it evaluates no arguments) replaced,
/// bottom up, by what `replacement` returns for them.
pub(crate) fn replace_binary_exprs(
    plan: Arc<dyn ExecutionPlan>,
    replacement: impl Fn(&BinaryExpr, &Schema) -> Result<Option<Arc<dyn PhysicalExpr>>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let replacement: &BinaryReplacement = &replacement;
    plan.transform_up(|node| {
        let any = node.as_any();
        let schema = match node.children().first() {
            Some(input) => input.schema(),
            None => return Ok(Transformed::no(node)),
        };
        if let Some(projection) = any.downcast_ref::<ProjectionExec>() {
            let mut changed = false;
            let exprs = projection
                .expr()
                .iter()
                .map(|e| {
                    let expr = rewrite(&e.expr, &schema, replacement)?;
                    changed |= expr.transformed;
                    Ok(ProjectionExpr {
                        expr: expr.data,
                        alias: e.alias.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if !changed {
                return Ok(Transformed::no(node));
            }
            let input = Arc::clone(projection.input());
            return Ok(Transformed::yes(Arc::new(ProjectionExec::try_new(
                exprs, input,
            )?)));
        }
        if let Some(filter) = any.downcast_ref::<FilterExec>() {
            let predicate = rewrite(filter.predicate(), &schema, replacement)?;
            if !predicate.transformed {
                return Ok(Transformed::no(node));
            }
            let filter = FilterExecBuilder::from(filter)
                .with_predicate(predicate.data)
                .build()?;
            return Ok(Transformed::yes(Arc::new(filter)));
        }
        if let Some(aggregate) = any.downcast_ref::<AggregateExec>().filter(|a| {
            matches!(
                a.mode(),
                AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
            )
        }) {
            let mut changed = false;
            let mut aggregates = Vec::with_capacity(aggregate.aggr_expr().len());
            for aggr in aggregate.aggr_expr() {
                match rewrite_aggregate(aggr, &schema, replacement)? {
                    Some(new) => {
                        changed = true;
                        aggregates.push(Arc::new(new));
                    }
                    None => aggregates.push(Arc::clone(aggr)),
                }
            }
            if !changed {
                return Ok(Transformed::no(node));
            }
            return Ok(Transformed::yes(Arc::new(
                aggregate.with_new_aggr_exprs(aggregates),
            )));
        }
        Ok(Transformed::no(node))
    })
    .map(|transformed| transformed.data)
}

/// `aggr` with its arguments rewritten, if any changed and the aggregate takes them.
fn rewrite_aggregate(
    aggr: &AggregateFunctionExpr,
    schema: &Schema,
    replacement: &BinaryReplacement,
) -> Result<Option<AggregateFunctionExpr>> {
    let mut changed = false;
    let mut args = Vec::new();
    for arg in aggr.expressions() {
        let arg = rewrite(&arg, schema, replacement)?;
        changed |= arg.transformed;
        args.push(arg.data);
    }
    if !changed {
        return Ok(None);
    }
    let order = aggr
        .order_bys()
        .iter()
        .map(|o| Arc::clone(&o.expr))
        .collect();
    Ok(aggr.with_new_expressions(args, order))
}

fn rewrite(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
    replacement: &BinaryReplacement,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        let Some(binary) = e.as_any().downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(e));
        };
        Ok(match replacement(binary, schema)? {
            Some(new) => Transformed::yes(new),
            None => Transformed::no(e),
        })
    })
}
