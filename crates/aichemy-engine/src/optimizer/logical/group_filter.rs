//! Groups of an aggregate kept to the keys a filtered join lets through, before they
//! are aggregated.
//!
//! DataFusion turns a correlated scalar subquery into an aggregate grouped by the
//! correlated columns, joined to the outer query on them. In TPC-H q17 that aggregate
//! averages all 60 M lineitems into 2 M parts, and the join then keeps the 2 K parts the
//! outer query's filter on part lets through. Groups are independent of one another, so
//! the aggregate can drop the rows of every other part first: a semi join of its input
//! with the filtered table's keys, before it groups them.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, Join, JoinConstraint, JoinType, LogicalPlan, Projection, SubqueryAlias,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::optimizer::logical::join_order::Joins;
use crate::optimizer::logical::semi_join::filtered;

/// The name of the key columns the semi joins this rule adds read; seeing it, the rule
/// knows an aggregate is already filtered.
const KEY: &str = "__aichemy_group_key";

#[derive(Debug, Default)]
pub(crate) struct FilterGroupsByJoinKeys;

impl OptimizerRule for FilterGroupsByJoinKeys {
    fn name(&self) -> &str {
        "filter_groups_by_join_keys"
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
        let LogicalPlan::Join(join) = plan else {
            return Ok(Transformed::no(plan));
        };
        if join.join_type != JoinType::Inner
            || join.null_equality != NullEquality::NullEqualsNothing
        {
            return Ok(Transformed::no(LogicalPlan::Join(join)));
        }
        let mut join = join;
        let mut changed = false;
        for aggregate_on_left in [true, false] {
            let (side, other) = if aggregate_on_left {
                (&join.left, &join.right)
            } else {
                (&join.right, &join.left)
            };
            let Some(keys) = filtered_keys(&join.on, side, other, aggregate_on_left)? else {
                continue;
            };
            let Some(filtered_side) = keep_groups(side, &keys.0, &keys.1)? else {
                continue;
            };
            let (left, right) = if aggregate_on_left {
                (Arc::new(filtered_side), Arc::clone(&join.right))
            } else {
                (Arc::clone(&join.left), Arc::new(filtered_side))
            };
            join = Join::try_new(
                left,
                right,
                join.on.clone(),
                join.filter.clone(),
                join.join_type,
                join.join_constraint,
                join.null_equality,
                join.null_aware,
            )?;
            changed = true;
        }
        Ok(Transformed::new_transformed(
            LogicalPlan::Join(join),
            changed,
        ))
    }
}

/// The join's columns on the aggregate's side, and a plan of the keys the other side can
/// give for them, read from the one filtered table they come from: `None` when there is
/// no such table.
fn filtered_keys(
    on: &[(Expr, Expr)],
    side: &LogicalPlan,
    other: &LogicalPlan,
    side_is_left: bool,
) -> Result<Option<(Vec<Column>, LogicalPlan)>> {
    let mut tables = Joins::default();
    tables.flatten(other);
    let mut source = None;
    let (mut columns, mut keys) = (Vec::new(), Vec::new());
    for (left, right) in on {
        let (mine, theirs) = if side_is_left {
            (left, right)
        } else {
            (right, left)
        };
        let (Expr::Column(mine), Expr::Column(theirs)) = (mine, theirs) else {
            continue;
        };
        if !side.schema().has_column(mine) {
            continue;
        }
        let Some(table) = tables
            .tables
            .iter()
            .position(|table| table.schema().has_column(theirs))
        else {
            continue;
        };
        if *source.get_or_insert(table) != table {
            continue;
        }
        keys.push(Expr::Column(theirs.clone()).alias(format!("{KEY}{}", keys.len())));
        columns.push(mine.clone());
    }
    let Some(source) = source else {
        return Ok(None);
    };
    let table = &tables.tables[source];
    if !cheap(table)? || !filtered(table)? {
        return Ok(None);
    }
    let keys = Projection::try_new(keys, Arc::new(table.clone()))?;
    Ok(Some((columns, LogicalPlan::Projection(keys))))
}

/// `plan` with the aggregate that gives `columns` as its grouping columns reading only
/// the rows whose groups are among `keys`; `None` when `columns` do not come straight
/// from such an aggregate.
fn keep_groups(
    plan: &LogicalPlan,
    columns: &[Column],
    keys: &LogicalPlan,
) -> Result<Option<LogicalPlan>> {
    let schema = plan.schema();
    let mut indices = Vec::with_capacity(columns.len());
    for column in columns {
        match schema.maybe_index_of_column(column) {
            Some(index) => indices.push(index),
            None => return Ok(None),
        }
    }
    let below = |input: &LogicalPlan, exprs: Option<&[Expr]>| -> Option<Vec<Column>> {
        indices
            .iter()
            .map(|&index| match exprs {
                None => Some(Column::from(input.schema().qualified_field(index))),
                Some(exprs) => match exprs.get(index)?.clone().unalias() {
                    Expr::Column(column) => Some(column),
                    _ => None,
                },
            })
            .collect()
    };
    Ok(match plan {
        LogicalPlan::SubqueryAlias(alias) => {
            let Some(inner) = below(&alias.input, None) else {
                return Ok(None);
            };
            keep_groups(&alias.input, &inner, keys)?
                .map(|input| SubqueryAlias::try_new(Arc::new(input), alias.alias.clone()))
                .transpose()?
                .map(LogicalPlan::SubqueryAlias)
        }
        LogicalPlan::Projection(projection) => {
            let Some(inner) = below(&projection.input, Some(&projection.expr)) else {
                return Ok(None);
            };
            keep_groups(&projection.input, &inner, keys)?
                .map(|input| {
                    Projection::try_new_with_schema(
                        projection.expr.clone(),
                        Arc::new(input),
                        Arc::clone(&projection.schema),
                    )
                })
                .transpose()?
                .map(LogicalPlan::Projection)
        }
        LogicalPlan::Filter(filter) => keep_groups(&filter.input, columns, keys)?
            .map(|input| Filter::try_new(filter.predicate.clone(), Arc::new(input)))
            .transpose()?
            .map(LogicalPlan::Filter),
        LogicalPlan::Aggregate(aggregate) => {
            let Some(grouped) = below(&aggregate.input, Some(&aggregate.group_expr)) else {
                return Ok(None);
            };
            if already_kept(&aggregate.input)? {
                return Ok(None);
            }
            let on = grouped
                .into_iter()
                .zip(keys.schema().columns())
                .map(|(group, key)| (Expr::Column(group), Expr::Column(key)))
                .collect();
            let input = LogicalPlan::Join(Join::try_new(
                Arc::clone(&aggregate.input),
                Arc::new(keys.clone()),
                on,
                None,
                JoinType::LeftSemi,
                JoinConstraint::On,
                NullEquality::NullEqualsNothing,
                false,
            )?);
            Some(LogicalPlan::Aggregate(Aggregate::try_new_with_schema(
                Arc::new(input),
                aggregate.group_expr.clone(),
                aggregate.aggr_expr.clone(),
                Arc::clone(&aggregate.schema),
            )?))
        }
        _ => None,
    })
}

/// Whether a plan only reads tables, filters them and picks columns, so that reading it
/// a second time for its keys costs little next to an aggregate.
fn cheap(plan: &LogicalPlan) -> Result<bool> {
    plan.exists(|node| {
        Ok(!matches!(
            node,
            LogicalPlan::TableScan(_)
                | LogicalPlan::Filter(_)
                | LogicalPlan::Projection(_)
                | LogicalPlan::SubqueryAlias(_)
        ) && !matches!(node, LogicalPlan::Join(join) if join.join_type == JoinType::LeftSemi))
    })
    .map(|costly| !costly)
}

/// Whether an aggregate's input has a semi join this rule added.
fn already_kept(input: &LogicalPlan) -> Result<bool> {
    input.exists(|node| {
        Ok(matches!(node, LogicalPlan::Join(join)
            if join.join_type == JoinType::LeftSemi
                && join.right.schema().fields().iter().any(|f| f.name().starts_with(KEY))))
    })
}
