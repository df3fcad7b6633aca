//! Trino functions DataFusion lacks or names differently.

use datafusion::functions_nested::range::gen_series_udf;
use datafusion::prelude::SessionContext;

/// Registers every AIchemy function into a context.
pub fn register_all(ctx: &SessionContext) {
    // Trino's SEQUENCE(start, stop [, step]) includes `stop`, like generate_series.
    ctx.register_udf(gen_series_udf().as_ref().clone().with_aliases(["sequence"]));
    crate::lambda::register(ctx, register_all);
}
