//! `TemporalPrecision`: the precision of a timestamp or time a projection computes, as Trino
//! types it from the operands: `ts + INTERVAL '1' DAY`, `date_trunc('day', ts)`,
//! `date_add('hour', 9, ts)`, `at_timezone(ts, zone)` and `CASE … THEN ts …` have the
//! precision of their timestamp operand (the finest of several), which the literal or
//! column carries in its field (`types::PRECISION_KEY`) but DataFusion's operators and
//! functions do not pass on. An analyzer rule after type coercion: each projected expression
//! of a temporal type whose field carries no precision while one of its operands does is
//! wrapped in `"$precision"(expr, p)`, so that the column the client sees has it. The
//! columns of an aggregation below the projection have the precision of what they group
//! by or of the argument of `min`, `max` and the other aggregates that answer one of their
//! input's values.

use std::collections::HashMap;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::expr::{AggregateFunction, Alias, Cast, TryCast};
use datafusion::logical_expr::{BinaryExpr, Case, Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

use crate::functions::precision::with_precision;
use crate::types::temporal_precision;

#[derive(Debug)]
pub(crate) struct TemporalPrecision;

impl AnalyzerRule for TemporalPrecision {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let LogicalPlan::Projection(_) = &plan else {
                return Ok(Transformed::no(plan));
            };
            let input = plan.inputs()[0];
            let operands = Operands {
                schema: input.schema().as_ref().clone(),
                aggregated: aggregated(input),
            };
            let rewritten = plan.map_expressions(|expr| {
                expr.transform_up(|e| operands.arguments_typed(e))?
                    .transform_parent(|e| operands.typed(e))
            })?;
            if rewritten.transformed {
                rewritten.map_data(|plan| plan.recompute_schema())
            } else {
                Ok(rewritten)
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "temporal_precision"
    }
}

/// The aggregates that answer one of their input's values, whose precision is their
/// argument's.
const VALUE_AGGREGATES: &[&str] = &[
    "min",
    "max",
    "first_value",
    "last_value",
    "any_value",
    "nth_value",
];

/// The precisions of an aggregation's columns, when `plan` is one.
fn aggregated(plan: &LogicalPlan) -> HashMap<Column, u8> {
    let mut precisions = HashMap::new();
    let LogicalPlan::Aggregate(aggregate) = plan else {
        return precisions;
    };
    if aggregate
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return precisions;
    }
    let below = Operands {
        schema: aggregate.input.schema().as_ref().clone(),
        aggregated: HashMap::new(),
    };
    let outputs = aggregate.group_expr.iter().chain(&aggregate.aggr_expr);
    for (expr, (qualifier, field)) in outputs.zip(aggregate.schema.iter()) {
        let value = match expr {
            Expr::Alias(Alias { expr, .. }) => expr.as_ref(),
            other => other,
        };
        let precision = match value {
            Expr::AggregateFunction(AggregateFunction { func, params })
                if VALUE_AGGREGATES.contains(&func.name()) =>
            {
                params.args.first().and_then(|arg| below.inferred(arg))
            }
            Expr::AggregateFunction(_) => None,
            group => below.inferred(group),
        };
        if let Some(p) = precision {
            precisions.insert(Column::new(qualifier.cloned(), field.name()), p);
        }
    }
    precisions
}

/// What a projection's expressions read: its input's schema, and the precisions of the
/// columns of an aggregation below it.
struct Operands {
    schema: DFSchema,
    aggregated: HashMap<Column, u8>,
}

impl Operands {
    fn is_temporal(&self, expr: &Expr) -> bool {
        use datafusion::arrow::datatypes::DataType;
        matches!(
            expr.get_type(&self.schema),
            Ok(DataType::Timestamp(_, _) | DataType::Time32(_) | DataType::Time64(_))
        )
    }

    /// `typeof(x)` and the text of a timestamp with `x` typed: what they answer follows
    /// their argument's field.
    fn arguments_typed(&self, expr: Expr) -> Result<Transformed<Expr>> {
        match expr {
            Expr::ScalarFunction(mut function)
                if ["typeof", crate::functions::precision::TEXT_NAME]
                    .contains(&function.func.name()) =>
            {
                let mut changed = false;
                for arg in function.args.iter_mut() {
                    let rewritten = self.typed(arg.clone())?;
                    changed |= rewritten.transformed;
                    *arg = rewritten.data;
                }
                Ok(Transformed::new_transformed(
                    Expr::ScalarFunction(function),
                    changed,
                ))
            }
            other => Ok(Transformed::no(other)),
        }
    }

    /// A projected expression wrapped at the precision its operands give it, under its
    /// name.
    fn typed(&self, expr: Expr) -> Result<Transformed<Expr>> {
        if !self.is_temporal(&expr)
            || (self.carried(&expr).is_some() && !matches!(expr, Expr::Case(_)))
        {
            return Ok(Transformed::no(expr));
        }
        let Some(precision) = self.inferred(&expr) else {
            return Ok(Transformed::no(expr));
        };
        Ok(Transformed::yes(match expr {
            Expr::Alias(Alias {
                expr,
                relation,
                name,
                metadata,
            }) => Expr::Alias(Alias {
                expr: Box::new(with_precision(*expr, precision)),
                relation,
                name,
                metadata,
            }),
            Expr::Column(column) => {
                let name = column.name.clone();
                with_precision(Expr::Column(column.clone()), precision)
                    .alias_qualified(column.relation, name)
            }
            other => {
                let name = other.schema_name().to_string();
                with_precision(other, precision).alias(name)
            }
        }))
    }

    /// The precision `expr`'s own field carries.
    fn carried(&self, expr: &Expr) -> Option<u8> {
        let (_, field) = expr.to_field(&self.schema).ok()?;
        temporal_precision(&field)
    }

    /// The precision of a temporal expression: the one its field carries (an aggregation's
    /// column, the one it was computed at), else the finest of its operands' (through
    /// casts: type coercion adds a time to a day as a duration), of a function's temporal
    /// arguments'.
    fn inferred(&self, expr: &Expr) -> Option<u8> {
        let finest = |operands: &mut dyn Iterator<Item = &Expr>| {
            operands.filter_map(|e| self.inferred(e)).max()
        };
        // DataFusion gives a CASE its first branch's field.
        if let Some(p) = self
            .carried(expr)
            .filter(|_| !matches!(expr, Expr::Case(_)))
        {
            return Some(p);
        }
        match expr {
            Expr::Column(column) => self.aggregated.get(column).copied(),
            Expr::Alias(Alias { expr, .. })
            | Expr::Cast(Cast { expr, .. })
            | Expr::TryCast(TryCast { expr, .. }) => self.inferred(expr),
            Expr::BinaryExpr(BinaryExpr { left, right, .. }) => {
                finest(&mut [left.as_ref(), right.as_ref()].into_iter())
            }
            Expr::Case(Case {
                when_then_expr,
                else_expr,
                ..
            }) => finest(
                &mut when_then_expr
                    .iter()
                    .map(|(_, then)| then.as_ref())
                    .chain(else_expr.as_deref()),
            ),
            Expr::ScalarFunction(function) => {
                finest(&mut function.args.iter().filter(|arg| self.is_temporal(arg)))
            }
            _ => None,
        }
    }
}
