//! Aggregates group on string views, and copy only their groups' keys into strings.
//!
//! Hive scans read Parquet strings as views (16-byte handles into the file's pages)
//! and copy them into the declared `Utf8` in a projection above their filter. An
//! aggregate grouping on such a column then gets every row's string copied, hashed from
//! its bytes and compared with `memcmp`: TPC-H q1 spends a third of its time there on
//! two one-letter keys over 59 M rows. Grouped as views, short keys are compared and
//! stored by their handles, and the copy into `Utf8` happens once per group.
//!
//! This physical rule takes the cast out of the projection feeding a hash aggregate when
//! the aggregate only groups on the cast column, lets the aggregate (and its final
//! stage above a repartition or merge) group on the views, and casts the keys of its
//! output back to `Utf8`. The plan's output is as before.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::Result;
use datafusion::config::ConfigOptions;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, InputOrderMode};

use crate::optimizer::physical::node_rewrite::replace_each;

#[derive(Debug, Default)]
pub(crate) struct GroupOnStringViews;

impl PhysicalOptimizerRule for GroupOnStringViews {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        replace_each(plan, |aggregate: &AggregateExec| {
            let Some(grouped) = group_on_views(aggregate)? else {
                return Ok(None);
            };
            restore_key_types(aggregate, grouped).map(Some)
        })
    }

    fn name(&self) -> &str {
        "group_on_string_views"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `top` (a final or single-stage aggregate) over views where its first stage grouped
/// on strings cast from views; `None` when there is no such cast to take out.
fn group_on_views(top: &AggregateExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    // The nodes between the final stage and the first, top down.
    let mut between: Vec<Arc<dyn ExecutionPlan>> = Vec::new();
    let below = match top.mode() {
        AggregateMode::Single | AggregateMode::SinglePartitioned => None,
        AggregateMode::Final | AggregateMode::FinalPartitioned => {
            let mut node = top.input().clone();
            while node.as_any().is::<RepartitionExec>()
                || node.as_any().is::<CoalescePartitionsExec>()
            {
                between.push(node.clone());
                node = node.children()[0].clone();
            }
            Some(node)
        }
        _ => return Ok(None),
    };
    let first = match &below {
        None => top,
        Some(node) => match node.as_any().downcast_ref::<AggregateExec>() {
            Some(first) if *first.mode() == AggregateMode::Partial => first,
            _ => return Ok(None),
        },
    };
    let Some(projection) = first.input().as_any().downcast_ref::<ProjectionExec>() else {
        return Ok(None);
    };
    if first.group_expr().has_grouping_set() || *first.input_order_mode() != InputOrderMode::Linear
    {
        return Ok(None);
    }
    let input_schema = projection.input().schema();
    let uncast = |index: usize| -> Result<Option<Arc<dyn PhysicalExpr>>> {
        let expr = &projection.expr()[index].expr;
        let Some(cast) = expr.as_any().downcast_ref::<CastExpr>() else {
            return Ok(None);
        };
        let from_view = cast.expr().data_type(&input_schema)? == DataType::Utf8View;
        Ok((from_view && *cast.cast_type() == DataType::Utf8).then(|| cast.expr().clone()))
    };
    // The projection's columns the first stage groups on, and only groups on.
    let mut keys = Vec::new();
    for (expr, _) in first.group_expr().expr() {
        if let Some(column) = expr.as_any().downcast_ref::<Column>() {
            if let Some(view) = uncast(column.index())? {
                keys.push((column.index(), view));
            }
        }
    }
    let used_otherwise = first
        .aggr_expr()
        .iter()
        .flat_map(|aggregate| {
            let order = aggregate.order_bys().iter().map(|sort| sort.expr.clone());
            aggregate.expressions().into_iter().chain(order)
        })
        .chain(first.filter_expr().iter().flatten().cloned())
        .chain(
            first
                .group_expr()
                .expr()
                .iter()
                .filter(|(expr, _)| !expr.as_any().is::<Column>())
                .map(|(expr, _)| expr.clone()),
        )
        .flat_map(|expr| collect_columns(&expr))
        .any(|column| keys.iter().any(|(index, _)| *index == column.index()));
    if keys.is_empty() || used_otherwise {
        return Ok(None);
    }
    let exprs = projection.expr().iter().enumerate().map(|(index, e)| {
        let expr = keys
            .iter()
            .find(|(key, _)| *key == index)
            .map_or_else(|| e.expr.clone(), |(_, view)| view.clone());
        ProjectionExpr::new(expr, e.alias.clone())
    });
    let projection: Arc<dyn ExecutionPlan> =
        Arc::new(ProjectionExec::try_new(exprs, projection.input().clone())?);
    let mut plan = rebuilt(first, projection.clone(), projection.schema())?;
    if below.is_none() {
        return Ok(Some(plan));
    }
    for node in between.iter().rev() {
        plan = node.clone().with_new_children(vec![plan])?;
    }
    rebuilt(top, plan, projection.schema()).map(Some)
}

/// `aggregate` over `input`, its output schema derived anew.
fn rebuilt(
    aggregate: &AggregateExec,
    input: Arc<dyn ExecutionPlan>,
    input_schema: SchemaRef,
) -> Result<Arc<dyn ExecutionPlan>> {
    let exec = AggregateExec::try_new(
        *aggregate.mode(),
        aggregate.group_expr().clone(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        input,
        input_schema,
    )?
    .with_limit_options(aggregate.limit_options());
    Ok(Arc::new(exec))
}

/// `grouped` with each column whose type differs from `original`'s output cast back to
/// it, under `original`'s names.
fn restore_key_types(
    original: &AggregateExec,
    grouped: Arc<dyn ExecutionPlan>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let schema = grouped.schema();
    let wanted = original.schema();
    let exprs =
        wanted
            .fields()
            .iter()
            .zip(schema.fields())
            .enumerate()
            .map(|(index, (wanted, now))| {
                let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(now.name(), index));
                let expr: Arc<dyn PhysicalExpr> = if wanted.data_type() == now.data_type() {
                    column
                } else {
                    Arc::new(CastExpr::new(column, wanted.data_type().clone(), None))
                };
                ProjectionExpr::new(expr, wanted.name().clone())
            });
    Ok(Arc::new(ProjectionExec::try_new(exprs, grouped)?))
}
