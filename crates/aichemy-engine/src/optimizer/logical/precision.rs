//! `TemporalPrecision`: the precision of a timestamp or time a projection computes, as Trino
//! types it from the operands: `ts + INTERVAL '1' DAY`, `date_trunc('day', ts)`,
//! `date_add('hour', 9, ts)`, `at_timezone(ts, zone)` and `CASE … THEN ts …` have the
//! precision of their timestamp operand (the finest of several), which the literal or
//! column carries in its field (`types::PRECISION_KEY`) but DataFusion's operators and
//! functions do not pass on. An analyzer rule after type coercion: each projected expression
//! of a temporal type whose field carries no precision while one of its operands does is
//! wrapped in `"$precision"(expr, p)`, so that the column the client sees has it.

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::{Alias, Cast, TryCast};
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
            let schema = plan.inputs()[0].schema().clone();
            let rewritten = plan.map_expressions(|expr| {
                expr.transform_up(|e| typeof_argument_typed(e, &schema))?
                    .transform_parent(|e| typed(e, &schema))
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

fn is_temporal(expr: &Expr, schema: &DFSchema) -> bool {
    use datafusion::arrow::datatypes::DataType;
    matches!(
        expr.get_type(schema),
        Ok(DataType::Timestamp(_, _) | DataType::Time32(_) | DataType::Time64(_))
    )
}

/// `typeof(x)` with `x` typed: the name it answers is the type of its argument's field.
fn typeof_argument_typed(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match expr {
        Expr::ScalarFunction(mut function) if function.func.name() == "typeof" => {
            let mut changed = false;
            for arg in function.args.iter_mut() {
                let rewritten = typed(arg.clone(), schema)?;
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

/// A projected expression wrapped at the precision its operands give it, under its name.
fn typed(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    if !is_temporal(&expr, schema)
        || (carried(&expr, schema).is_some() && !matches!(expr, Expr::Case(_)))
    {
        return Ok(Transformed::no(expr));
    }
    let Some(precision) = inferred(&expr, schema) else {
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
        other => {
            let name = other.schema_name().to_string();
            with_precision(other, precision).alias(name)
        }
    }))
}

/// The precision `expr`'s own field carries.
fn carried(expr: &Expr, schema: &DFSchema) -> Option<u8> {
    let (_, field) = expr.to_field(schema).ok()?;
    temporal_precision(&field)
}

/// The precision of a temporal expression: the one its field carries, else the finest of its
/// operands' (through casts: type coercion adds a time to a day as a duration), of a
/// function's temporal arguments'.
fn inferred(expr: &Expr, schema: &DFSchema) -> Option<u8> {
    let finest = |operands: &mut dyn Iterator<Item = &Expr>| {
        operands.filter_map(|e| inferred(e, schema)).max()
    };
    // DataFusion gives a CASE its first branch's field.
    if let Some(p) = carried(expr, schema).filter(|_| !matches!(expr, Expr::Case(_))) {
        return Some(p);
    }
    match expr {
        Expr::Alias(Alias { expr, .. })
        | Expr::Cast(Cast { expr, .. })
        | Expr::TryCast(TryCast { expr, .. }) => inferred(expr, schema),
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
            finest(&mut function.args.iter().filter(|arg| is_temporal(arg, schema)))
        }
        _ => None,
    }
}
