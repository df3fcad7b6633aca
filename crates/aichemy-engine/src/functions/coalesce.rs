//! `coalesce` (and its two-argument spellings `nvl`, `ifnull`) with a size that stays linear
//! in the statement.
//!
//! DataFusion lowers `coalesce(a, b)` to `CASE WHEN a IS NOT NULL THEN a ELSE b END`, which
//! evaluates `b` only where `a` is null, as Trino does. The CASE repeats every argument but
//! the last, so a coalesce nested inside the first argument of another doubles at each
//! level: fifty levels never finish planning, and planning cannot be stopped. Here nested
//! coalesces are flattened first (`coalesce(coalesce(a, b), c)` is `coalesce(a, b, c)`),
//! and an argument larger than [`MAX_REPEATED_NODES`] is never repeated: such a call keeps
//! its arguments and evaluates each of them for the whole batch, taking per row the first
//! that is not null. The one difference a user can see is that an error in a later
//! argument of such a call is raised even for rows an earlier argument answers.

use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::compute::is_not_null;
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::datatypes::FieldRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
};

/// The most expression nodes an argument may have and still be repeated by the CASE that
/// evaluates later arguments only where needed.
pub const MAX_REPEATED_NODES: usize = 128;

/// DataFusion's `coalesce` or `nvl` with the flattening and the bound above.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Coalesce {
    inner: Arc<ScalarUDF>,
}

impl Coalesce {
    pub fn new(inner: Arc<ScalarUDF>) -> Self {
        Self { inner }
    }

    /// A call of this function with the given arguments.
    fn call(args: Vec<Expr>) -> Expr {
        let udf = ScalarUDF::new_from_impl(Coalesce::new(datafusion::functions::core::coalesce()));
        Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf), args))
    }
}

/// The arguments of `expr` when it is itself a coalesce of any spelling.
fn coalesce_arguments(expr: &Expr) -> Option<&[Expr]> {
    match expr {
        Expr::ScalarFunction(f) if f.func.inner().as_any().is::<Coalesce>() => Some(&f.args),
        _ => None,
    }
}

/// Whether `expr` has more than `limit` nodes, counting no further than that.
fn larger_than(expr: &Expr, limit: usize) -> bool {
    let mut nodes = 0usize;
    // Counting cannot fail.
    let _ = expr.apply(|_| {
        nodes += 1;
        Ok(if nodes > limit {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    nodes > limit
}

impl ScalarUDFImpl for Coalesce {
    crate::functions::planned_as_inner!();

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.conditional_arguments(args)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let nested = args.iter().any(|a| coalesce_arguments(a).is_some());
        let args: Vec<Expr> = if nested {
            args.into_iter()
                .flat_map(|a| match coalesce_arguments(&a) {
                    Some(inner) => inner.to_vec(),
                    None => vec![a],
                })
                .collect()
        } else {
            args
        };
        let repeated = &args[..args.len().saturating_sub(1)];
        if repeated.iter().all(|a| !larger_than(a, MAX_REPEATED_NODES)) {
            return self.inner.simplify(args, info);
        }
        Ok(if nested {
            ExprSimplifyResult::Simplified(Coalesce::call(args))
        } else {
            ExprSimplifyResult::Original(args)
        })
    }

    /// Only calls with an argument too large to repeat get here: every argument has been
    /// evaluated, and each row takes the first that is not null.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let mut values = args.args.into_iter();
        let Some(first) = values.next() else {
            return datafusion::common::plan_err!("coalesce must have at least one argument");
        };
        let mut result = first.into_array(rows)?;
        for value in values {
            if result.null_count() == 0 {
                break;
            }
            let next = value.into_array(rows)?;
            result = zip(&is_not_null(&result)?, &result, &next)?;
        }
        Ok(if scalar {
            ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?)
        } else {
            ColumnarValue::Array(result)
        })
    }
}
