//! Trino functions DataFusion lacks or names differently.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::plan_err;
use datafusion::common::{Result, ScalarValue};
use datafusion::functions_nested::extract::array_element_udf;
use datafusion::functions_nested::map_extract::map_extract_udf;
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
    ctx.register_udf(ScalarUDF::new_from_impl(ElementAt::new()));
    for (name, value) in [
        ("nan", ScalarValue::Float64(Some(f64::NAN))),
        ("infinity", ScalarValue::Float64(Some(f64::INFINITY))),
        (
            "version",
            ScalarValue::Utf8(Some(crate::VERSION.to_string())),
        ),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(name, value)));
    }
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

/// `element_at(array, index)` and `element_at(map, key)`, as Trino has them: the element at a
/// 1-based index (negative counts from the end) or the value of a key, NULL when absent.
/// DataFusion's `element_at` is an alias of `map_extract`, which takes maps only.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ElementAt {
    signature: Signature,
}

impl ElementAt {
    fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ElementAt {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "element_at"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::List(element) | DataType::LargeList(element) => {
                Ok(element.data_type().clone())
            }
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(fields) if fields.len() == 2 => Ok(fields[1].data_type().clone()),
                other => plan_err!("Unexpected map entries type {other}"),
            },
            other => plan_err!(
                "element_at expects an array or a map, not {}",
                trino_type_name(other)
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if !matches!(args.arg_fields[0].data_type(), DataType::Map(..)) {
            return array_element_udf().invoke_with_args(args);
        }
        // map_extract answers a list holding the value (or nothing); take its first element.
        let values: FieldRef = Arc::new(Field::new_list(
            "values",
            Field::new_list_field(args.return_field.data_type().clone(), true),
            true,
        ));
        let number_rows = args.number_rows;
        let config_options = args.config_options.clone();
        let return_field = args.return_field.clone();
        let extracted = map_extract_udf().invoke_with_args(ScalarFunctionArgs {
            return_field: values.clone(),
            ..args
        })?;
        array_element_udf().invoke_with_args(ScalarFunctionArgs {
            args: vec![
                extracted,
                ColumnarValue::Scalar(ScalarValue::Int64(Some(1))),
            ],
            arg_fields: vec![
                values,
                Arc::new(Field::new("index", DataType::Int64, false)),
            ],
            number_rows,
            return_field,
            config_options,
        })
    }
}

/// Functions of no arguments with one value: `nan()`, `infinity()` (Trino's DOUBLE constants)
/// and `version()`.
#[derive(Debug)]
struct Constant {
    name: &'static str,
    value: ScalarValue,
    signature: Signature,
}

impl Constant {
    fn new(name: &'static str, value: ScalarValue) -> Self {
        Self {
            name,
            value,
            signature: Signature::nullary(Volatility::Immutable),
        }
    }
}

impl PartialEq for Constant {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Constant {}

impl std::hash::Hash for Constant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Constant {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.value.data_type())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(self.value.clone()))
    }
}
