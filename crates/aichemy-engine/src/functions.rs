//! Trino functions DataFusion lacks or names differently.

use std::any::Any;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue};
use datafusion::functions_nested::range::gen_series_udf;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::types::trino_type_name;

/// Registers every AIchemy function into a context.
pub fn register_all(ctx: &SessionContext) {
    // Trino's SEQUENCE(start, stop [, step]) includes `stop`, like generate_series.
    ctx.register_udf(gen_series_udf().as_ref().clone().with_aliases(["sequence"]));
    ctx.register_udf(ScalarUDF::new_from_impl(TypeOf::new()));
    crate::lambda::register(ctx, register_all);
}

/// `typeof(x)`: the Trino name of the argument's type (`decimal(4,2)`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct TypeOf {
    signature: Signature,
}

impl TypeOf {
    fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for TypeOf {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "typeof"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = trino_type_name(args.arg_fields[0].data_type());
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(name))))
    }
}
