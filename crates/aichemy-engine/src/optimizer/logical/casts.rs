//! `TrinoCasts`: casts with Trino's rules where DataFusion's differ, decided by the
//! operand's type, which is known only once the plan is built (an analyzer rule, first of
//! all, so that no other rule folds a cast before):
//! - a CAST whose operand is JSON follows Trino's rules for JSON
//!   (`CAST(JSON '"abc"' AS VARCHAR)` is `abc`, `CAST(JSON '[1,2]' AS ARRAY(INTEGER))` an
//!   array), not DataFusion's cast of its text;
//! - a CAST of a double, real or decimal to an integer type rounds half away from zero
//!   (`CAST(2.5 AS INTEGER)` is 3), where DataFusion truncates;
//! - a CAST of a timestamp or time to text writes it as Trino does (`2020-06-10 15:55:23`,
//!   with the digits of its precision and its zone's name), not with DataFusion's `T`.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::functions::math::round;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan, ScalarUDF, TryCast};
use datafusion::optimizer::AnalyzerRule;

use super::rewrite_typed_expressions;
use crate::functions::json::cast::Cast as JsonCast;
use crate::functions::precision::temporal_text;
use crate::types::is_json;

#[derive(Debug)]
pub(crate) struct TrinoCasts {
    cast: Arc<ScalarUDF>,
    try_cast: Arc<ScalarUDF>,
}

impl TrinoCasts {
    pub(crate) fn new() -> Self {
        Self {
            cast: Arc::new(ScalarUDF::new_from_impl(JsonCast::new(false))),
            try_cast: Arc::new(ScalarUDF::new_from_impl(JsonCast::new(true))),
        }
    }

    fn rewrite(&self, expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        let (inner, data_type, udf) = match &expr {
            Expr::Cast(Cast { expr, data_type }) => (expr, data_type, &self.cast),
            Expr::TryCast(TryCast { expr, data_type }) => (expr, data_type, &self.try_cast),
            _ => return Ok(Transformed::no(expr)),
        };
        let (_, field) = inner.to_field(schema)?;
        let temporal = matches!(
            field.data_type(),
            DataType::Timestamp(..) | DataType::Time32(_) | DataType::Time64(_)
        );
        if temporal
            && matches!(
                data_type,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        {
            let text = temporal_text((**inner).clone());
            return Ok(Transformed::yes(if data_type == &DataType::Utf8 {
                text
            } else {
                Expr::Cast(Cast::new(Box::new(text), data_type.clone()))
            }));
        }
        if data_type.is_integer() && is_fractional(field.data_type()) {
            let rounded = round().call(vec![(**inner).clone()]);
            return Ok(Transformed::yes(match expr {
                Expr::TryCast(_) => {
                    Expr::TryCast(TryCast::new(Box::new(rounded), data_type.clone()))
                }
                _ => Expr::Cast(Cast::new(Box::new(rounded), data_type.clone())),
            }));
        }
        if !is_json(&field) {
            return Ok(Transformed::no(expr));
        }
        let target = Expr::Literal(ScalarValue::try_from(data_type)?, None);
        let call = ScalarFunction::new_udf(udf.clone(), vec![(**inner).clone(), target]);
        Ok(Transformed::yes(Expr::ScalarFunction(call)))
    }
}

/// Whether values of this type can have a fraction (floating point or decimal).
fn is_fractional(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

impl AnalyzerRule for TrinoCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        rewrite_typed_expressions(plan, |e, schema| self.rewrite(e, schema))
    }

    fn name(&self) -> &str {
        "trino_casts"
    }
}
