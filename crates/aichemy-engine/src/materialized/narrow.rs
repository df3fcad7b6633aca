//! A delta plan's unchanged sources narrowed to what its changed rows can join.
//!
//! An incremental refresh joins one source's gained (or lost) rows with the other sources
//! as they are. Under an inner equi-join `Δ.k = S.k`, a row of `S` whose key lies outside
//! the range of `Δ.k` joins nothing, so `S` is read with `k BETWEEN min(Δ.k) AND max(Δ.k)`:
//! the bound goes down into `S`'s scan, and the files (and row groups) whose column bounds
//! lie outside it are never read. Appending new orders then reads the new orders and their
//! own lines, not every line ever written.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::context::SessionState;
use datafusion::functions_aggregate::expr_fn::{max, min};
use datafusion::logical_expr::{lit, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, TableScan};

use crate::error::Result;
use crate::session::Session;
use crate::statement::query;

/// `plan` (reading `delta` once) with every source it equi-joins on a column of `delta`
/// filtered to the range of `delta`'s values of that column. `plan` comes back optimized;
/// unchanged when no such join is found.
pub(super) async fn narrowed(
    session: &Session,
    state: &SessionState,
    plan: LogicalPlan,
    delta: &Arc<dyn TableProvider>,
) -> Result<LogicalPlan> {
    let plan = state.optimize(&plan)?;
    // (delta column, the joined scan's table and column) for each inner equi-join key.
    let mut pairs: Vec<(String, TableScan, String)> = Vec::new();
    plan.apply(|node| {
        if let LogicalPlan::Join(join) = node {
            if join.join_type == JoinType::Inner {
                for (l, r) in &join.on {
                    let left = origin(&join.left, l);
                    let right = origin(&join.right, r);
                    if let (Some((a, x)), Some((b, y))) = (left, right) {
                        if reads(&a, delta) && !reads(&b, delta) {
                            pairs.push((x, b, y));
                        } else if reads(&b, delta) && !reads(&a, delta) {
                            pairs.push((y, a, x));
                        }
                    }
                }
            }
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })?;
    pairs.retain(|(column, _, _)| {
        delta
            .schema()
            .field_with_name(column)
            .is_ok_and(|f| ranged(f.data_type()))
    });
    if pairs.is_empty() {
        return Ok(plan);
    }
    let columns: Vec<String> = {
        let mut seen: Vec<String> = pairs.iter().map(|(c, _, _)| c.clone()).collect();
        seen.sort();
        seen.dedup();
        seen
    };
    let bounds = key_bounds(session, state, delta, &columns).await?;
    // The filters to put above each narrowed scan, by the scan's table name.
    let mut filters: HashMap<String, Vec<Expr>> = HashMap::new();
    for (column, scan, target) in pairs {
        let (low, high) = &bounds[&column];
        let key = Expr::Column(Column::new(Some(scan.table_name.clone()), target));
        let condition = if low.is_null() || high.is_null() {
            // No value of the delta's key joins: nothing of the other side is needed.
            lit(false)
        } else {
            key.clone()
                .gt_eq(lit(low.clone()))
                .and(key.lt_eq(lit(high.clone())))
        };
        filters
            .entry(scan.table_name.to_string())
            .or_default()
            .push(condition);
    }
    let plan = plan
        .transform_up(|node| {
            let LogicalPlan::TableScan(scan) = &node else {
                return Ok(Transformed::no(node));
            };
            let Some(conditions) = filters.remove(&scan.table_name.to_string()) else {
                return Ok(Transformed::no(node));
            };
            let mut builder = LogicalPlanBuilder::from(node);
            for condition in conditions {
                builder = builder.filter(condition)?;
            }
            Ok(Transformed::yes(builder.build()?))
        })?
        .data;
    Ok(state.optimize(&plan)?)
}

/// The smallest and largest value of each of `columns` in `delta` (nulls when it has none).
async fn key_bounds(
    session: &Session,
    state: &SessionState,
    delta: &Arc<dyn TableProvider>,
    columns: &[String],
) -> Result<HashMap<String, (ScalarValue, ScalarValue)>> {
    let mut aggregates = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        let column = Expr::Column(Column::new_unqualified(column));
        aggregates.push(min(column.clone()).alias(format!("low_{i}")));
        aggregates.push(max(column).alias(format!("high_{i}")));
    }
    let plan = LogicalPlanBuilder::scan("delta", provider_as_source(delta.clone()), None)?
        .aggregate(Vec::<Expr>::new(), aggregates)?
        .build()?;
    let stream = query::execute(session, plan, state.clone()).await?;
    let batches: Vec<_> = futures::TryStreamExt::try_collect(stream).await?;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| crate::error::TrinoError::internal("no key bounds computed"))?;
    let mut bounds = HashMap::new();
    for (i, column) in columns.iter().enumerate() {
        let low = ScalarValue::try_from_array(batch.column(2 * i), 0)?;
        let high = ScalarValue::try_from_array(batch.column(2 * i + 1), 0)?;
        bounds.insert(column.clone(), (low, high));
    }
    Ok(bounds)
}

/// Whether a range of values of this type prunes files: ordered scalars whose file bounds
/// Iceberg and Parquet keep (not floats, whose NaN sorts apart).
fn ranged(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Date32
                | DataType::Date64
                | DataType::Decimal128(_, _)
                | DataType::Decimal256(_, _)
                | DataType::Timestamp(_, _)
        )
}

/// Whether `scan` reads `provider`.
fn reads(scan: &TableScan, provider: &Arc<dyn TableProvider>) -> bool {
    source_as_provider(&scan.source).is_ok_and(|p| Arc::ptr_eq(&p, provider))
}

/// The table scan and column that `expr`, a column of `plan`'s output, carries unchanged,
/// when it is a plain column passed up from one scan.
fn origin(plan: &LogicalPlan, expr: &Expr) -> Option<(TableScan, String)> {
    let Expr::Column(column) = expr else {
        return None;
    };
    let index = plan.schema().index_of_column(column).ok()?;
    trace(plan, index)
}

/// The scan and column that output column `index` of `plan` comes from unchanged.
fn trace(plan: &LogicalPlan, index: usize) -> Option<(TableScan, String)> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let field = scan.projected_schema.field(index);
            Some((scan.clone(), field.name().clone()))
        }
        LogicalPlan::Projection(projection) => {
            let mut expr = &projection.expr[index];
            while let Expr::Alias(alias) = expr {
                expr = &alias.expr;
            }
            origin(&projection.input, expr)
        }
        LogicalPlan::Filter(filter) => trace(&filter.input, index),
        LogicalPlan::SubqueryAlias(alias) => trace(&alias.input, index),
        LogicalPlan::Sort(sort) => trace(&sort.input, index),
        LogicalPlan::Limit(limit) => trace(&limit.input, index),
        LogicalPlan::Repartition(repartition) => trace(&repartition.input, index),
        LogicalPlan::Join(join) => {
            let left = join.left.schema().fields().len();
            match join.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    if index < left {
                        trace(&join.left, index)
                    } else {
                        trace(&join.right, index - left)
                    }
                }
                JoinType::LeftSemi | JoinType::LeftAnti => trace(&join.left, index),
                JoinType::RightSemi | JoinType::RightAnti => trace(&join.right, index),
                _ => None,
            }
        }
        _ => None,
    }
}
