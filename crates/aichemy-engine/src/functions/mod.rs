//! Trino functions DataFusion lacks or names differently.

mod aggregate;
mod array;
mod binary;
mod bitwise;
mod clock;
mod coalesce;
mod collections;
mod color;
mod datetime;
mod format;
mod geospatial;
pub(crate) mod ipaddress;
pub(crate) mod json;
pub(crate) mod lambda;
mod math;
pub(crate) mod number;
pub(crate) mod precision;
mod printf;
mod regexp;
pub(crate) mod rewrites;
pub(crate) mod row_function;
pub(crate) mod search;
mod sketch;
mod string;
pub(crate) mod timestamps;
mod url;
mod vector;

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::{Field, FieldRef};
use datafusion::common::{plan_err, DataFusionError};
use datafusion::common::{Result, ScalarValue};
use datafusion::functions::{core, unicode};
use datafusion::functions_nested::extract::array_element_udf;
use datafusion::functions_nested::map_extract::map_extract_udf;
use datafusion::functions_nested::range::{gen_series_udf, range_udf};
use datafusion::functions_nested::repeat::array_repeat_udf;
use datafusion::functions_nested::resize::array_resize_udf;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::error::{ErrorCode, TrinoError};
use crate::functions::coalesce::Coalesce;
use crate::types::trino_type_name;

/// The methods of a function that wraps another, `self.inner` (a `ScalarUDF`), and is planned
/// as it is: its name and aliases, signature, argument coercion, return type and
/// documentation.
macro_rules! planned_as_inner {
    () => {
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }

        fn name(&self) -> &str {
            self.inner.name()
        }

        fn aliases(&self) -> &[String] {
            self.inner.aliases()
        }

        fn signature(&self) -> &datafusion::logical_expr::Signature {
            self.inner.signature()
        }

        fn return_type(
            &self,
            arg_types: &[datafusion::arrow::datatypes::DataType],
        ) -> datafusion::common::Result<datafusion::arrow::datatypes::DataType> {
            self.inner.return_type(arg_types)
        }

        fn coerce_types(
            &self,
            arg_types: &[datafusion::arrow::datatypes::DataType],
        ) -> datafusion::common::Result<Vec<datafusion::arrow::datatypes::DataType>> {
            self.inner.coerce_types(arg_types)
        }

        fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
            self.inner.documentation()
        }
    };
}
pub(crate) use planned_as_inner;

/// Registers every AIchemy function into a context.
pub fn register_all(ctx: &SessionContext) {
    // Trino's SEQUENCE(start, stop [, step]) includes `stop`, like generate_series; both
    // and `range` hold Trino's bound on the entries of one array.
    ctx.register_udf(
        ScalarUDF::new_from_impl(BoundedSeries::new(gen_series_udf())).with_aliases(["sequence"]),
    );
    ctx.register_udf(ScalarUDF::new_from_impl(BoundedSeries::new(range_udf())));
    // Trino's `repeat(element, count)` builds an array (DataFusion's repeats a string).
    ctx.register_udf(ScalarUDF::new_from_impl(SizeBound::new(
        "repeat",
        array_repeat_udf(),
        1,
        Bound::Entries,
    )));
    for (inner, size, bound) in [
        (array_repeat_udf(), 1, Bound::Entries),
        (array_resize_udf(), 1, Bound::Entries),
        (unicode::lpad(), 1, Bound::Characters),
        (unicode::rpad(), 1, Bound::Characters),
    ] {
        let names = std::iter::once(inner.name().to_string()).chain(inner.aliases().to_vec());
        for name in names {
            let name: &'static str = Box::leak(name.into_boxed_str());
            let bounded = SizeBound::new(name, inner.clone(), size, bound);
            ctx.register_udf(ScalarUDF::new_from_impl(bounded));
        }
    }
    ctx.register_udf(ScalarUDF::new_from_impl(TypeOf::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(RowField::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(precision::Precision::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(precision::Precision::rounding()));
    ctx.register_udf(ScalarUDF::new_from_impl(precision::TemporalText::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(number::NumberOperator::new()));
    for spelling in [core::coalesce(), core::nvl()] {
        ctx.register_udf(ScalarUDF::new_from_impl(Coalesce::new(spelling)));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(ElementAt::new()));
    for (name, value) in [
        ("nan", ScalarValue::Float64(Some(f64::NAN))),
        ("infinity", ScalarValue::Float64(Some(f64::INFINITY))),
        (
            "version",
            ScalarValue::Utf8(Some(crate::VERSION.to_string())),
        ),
        // The groups of the session's user: AIchemy has no groups.
        (
            "current_groups",
            ScalarValue::List(ScalarValue::new_list_nullable(&[], &DataType::Utf8)),
        ),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(Constant::new(name, value)));
    }
    array::register(ctx);
    bitwise::register(ctx);
    clock::register(ctx);
    color::register(ctx);
    datetime::register(ctx);
    url::register(ctx);
    regexp::register(ctx);
    format::register(ctx);
    vector::register(ctx);
    search::register(ctx);
    json::register(ctx);
    string::register(ctx);
    collections::register(ctx);
    binary::register(ctx);
    math::register(ctx);
    timestamps::register(ctx);
    aggregate::register(ctx);
    printf::register(ctx);
    // Geometry: geodatafusion's ST_ functions, on GeoArrow types.
    geodatafusion::register(ctx);
    // Trino's geospatial functions geodatafusion lacks (some in place of its own).
    geospatial::register(ctx);
    // Trino's contains(array, x) and contains(cidr, address), in place of DataFusion's
    // string contains.
    ipaddress::register(ctx);
    crate::functions::lambda::register(ctx, register_all);
    // Last: its cardinality (of sketches too) replaces DataFusion's.
    sketch::register(ctx);
}

/// Trino's INVALID_FUNCTION_ARGUMENT, as the error of a function's evaluation.
pub(crate) fn invalid_argument(message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::INVALID_FUNCTION_ARGUMENT,
        message,
    )))
}

/// Trino's error for a call whose argument types no signature of `name` takes.
pub(crate) fn unexpected_parameters<T>(
    name: &str,
    types: &[DataType],
    expected: &str,
) -> Result<T> {
    let given: Vec<String> = types.iter().map(trino_type_name).collect();
    plan_err!(
        "Unexpected parameters ({}) for function {name}. Expected: {expected}",
        given.join(", ")
    )
}

/// Whether an argument of this type is text (NULL is any type's).
pub(crate) fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 | DataType::Null
    )
}

/// A call's arguments as arrays of the batch's rows.
pub(crate) fn arg_arrays(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    args.args
        .iter()
        .map(|a| a.to_array(args.number_rows))
        .collect()
}

/// A function's result: a scalar when every argument was one, the array otherwise. A list
/// scalar keeps its array's item field (with its metadata: `array(json)`, geometries).
pub(crate) fn scalar_result(args: &[ColumnarValue], array: ArrayRef) -> Result<ColumnarValue> {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        if let Some(list) = array.as_any().downcast_ref::<ListArray>() {
            return Ok(ColumnarValue::Scalar(ScalarValue::List(Arc::new(
                list.slice(0, 1),
            ))));
        }
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// `"$row_field"(row, n)`: the `n`th field of a row (1-based), which `(row).* AS (a, b)`
/// names (see `dialect::row_fields_star`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct RowField {
    signature: Signature,
}

/// The `position`th field (1-based) of the row `row`.
pub(crate) fn row_field(
    row: datafusion::logical_expr::Expr,
    position: usize,
) -> datafusion::logical_expr::Expr {
    datafusion::logical_expr::Expr::ScalarFunction(
        datafusion::logical_expr::expr::ScalarFunction::new_udf(
            Arc::new(ScalarUDF::new_from_impl(RowField::new())),
            vec![row, datafusion::logical_expr::lit(position as i64)],
        ),
    )
}

impl RowField {
    fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    /// The field's position among the row's fields, from the constant second argument.
    fn position(fields: &[FieldRef], index: Option<&ScalarValue>) -> Result<usize> {
        let n = match index {
            Some(ScalarValue::Int64(Some(n))) => *n,
            _ => return plan_err!("{} takes a constant position", crate::dialect::ROW_FIELD),
        };
        match usize::try_from(n) {
            Ok(n) if n >= 1 && n <= fields.len() => Ok(n - 1),
            _ => Err(DataFusionError::External(Box::new(TrinoError::new(
                ErrorCode::MISMATCHED_COLUMN_ALIASES,
                format!(
                    "Column alias list has more entries than the row has fields ({})",
                    fields.len()
                ),
            )))),
        }
    }
}

impl ScalarUDFImpl for RowField {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        crate::dialect::ROW_FIELD
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        plan_err!("{} answers its field from its arguments", self.name())
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<FieldRef> {
        let DataType::Struct(fields) = args.arg_fields[0].data_type() else {
            return plan_err!(
                "Unexpected parameters ({}) for .*: a row is expected",
                trino_type_name(args.arg_fields[0].data_type())
            );
        };
        let at = Self::position(fields, args.scalar_arguments[1])?;
        Ok(Arc::new(fields[at].as_ref().clone().with_nullable(true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::Array as _;
        let row = args.args[0].to_array(args.number_rows)?;
        let row = datafusion::arrow::array::AsArray::as_struct(row.as_ref());
        let index = match &args.args[1] {
            ColumnarValue::Scalar(value) => Some(value),
            ColumnarValue::Array(_) => None,
        };
        let at = Self::position(row.fields(), index)?;
        let column = Arc::clone(row.column(at));
        // A NULL row has NULL fields.
        let column = match row.nulls() {
            Some(nulls) => {
                let merged = datafusion::arrow::buffer::NullBuffer::union(
                    Some(nulls),
                    column.logical_nulls().as_ref(),
                );
                datafusion::arrow::array::make_array(
                    column.to_data().into_builder().nulls(merged).build()?,
                )
            }
            None => column,
        };
        Ok(ColumnarValue::Array(column))
    }
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
        let name = crate::types::field_type_name(&args.arg_fields[0]);
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

/// Functions of no arguments with one value: `nan()`, `infinity()` (Trino's DOUBLE constants),
/// `version()` and `current_groups()`.
#[derive(Debug)]
pub(crate) struct Constant {
    name: &'static str,
    value: ScalarValue,
    signature: Signature,
}

impl Constant {
    pub(crate) fn new(name: &'static str, value: ScalarValue) -> Self {
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

/// The most bytes of text one call of a function may build for one batch of rows: its
/// result is built whole in memory, out of the memory pool's sight, so `lpad(x, 2000000000)`
/// on every row would otherwise take the process down.
pub(crate) const MAX_RESULT_BYTES: usize = 256 << 20;

/// Trino's EXCEEDED_FUNCTION_MEMORY_LIMIT, for a function whose result would pass
/// [`MAX_RESULT_BYTES`].
pub(crate) fn result_too_large(name: &str) -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::EXCEEDED_FUNCTION_MEMORY_LIMIT,
        format!(
            "The result of {name} would exceed {} MB",
            MAX_RESULT_BYTES >> 20
        ),
    )))
}

/// What [`SizeBound`] holds its size argument to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bound {
    /// The entries of one row's array, at most [`MAX_SEQUENCE_ENTRIES`] (Trino's `repeat`).
    Entries,
    /// The characters of a padded string: from 0 to `i32::MAX` per row (Trino's range), and
    /// [`MAX_RESULT_BYTES`] for the batch.
    Characters,
}

/// A built-in function whose result grows with one integer argument, with that argument
/// checked on every row before anything is built.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SizeBound {
    name: &'static str,
    inner: Arc<ScalarUDF>,
    /// The position of the size argument.
    size: usize,
    bound: Bound,
}

impl SizeBound {
    fn new(name: &'static str, inner: Arc<ScalarUDF>, size: usize, bound: Bound) -> Self {
        Self {
            name,
            inner,
            size,
            bound,
        }
    }

    /// Checks one row's size; answers the bytes it will take.
    fn check(&self, size: i64) -> Result<i64> {
        match self.bound {
            Bound::Entries if size < 0 => Err(invalid_argument(format!(
                "count argument of {} function must be greater than or equal to 0",
                self.name
            ))),
            Bound::Entries if size as i128 > MAX_SEQUENCE_ENTRIES => {
                Err(invalid_argument(format!(
                    "count argument of {} function must be less than or equal to \
                     {MAX_SEQUENCE_ENTRIES}",
                    self.name
                )))
            }
            Bound::Entries => Ok(0),
            Bound::Characters if !(0..=i32::MAX as i64).contains(&size) => Err(invalid_argument(
                format!("Target length must be in the range [0..{}]", i32::MAX),
            )),
            Bound::Characters => Ok(size),
        }
    }
}

impl ScalarUDFImpl for SizeBound {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let sizes = match &args.args[self.size] {
            ColumnarValue::Scalar(value) => value.to_array_of_size(1)?,
            ColumnarValue::Array(array) => array.clone(),
        };
        let sizes = datafusion::arrow::compute::cast(&sizes, &DataType::Int64)?;
        let sizes = datafusion::common::cast::as_int64_array(&sizes)?;
        // A scalar size applies to every row the call builds.
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = match &args.args[self.size] {
            ColumnarValue::Scalar(_) if !all_scalar => args.number_rows as i64,
            _ => 1,
        };
        let mut bytes: i64 = 0;
        for size in sizes.iter().flatten() {
            bytes = bytes.saturating_add(self.check(size)?.saturating_mul(rows));
        }
        if bytes > MAX_RESULT_BYTES as i64 {
            return Err(result_too_large(self.name));
        }
        self.inner.invoke_with_args(args)
    }
}

/// Entries one `sequence` may return, as Trino bounds it: an array is built whole in
/// memory, out of the memory pool's sight, so `sequence(1, 9223372036854775807)` would
/// otherwise take the process down.
const MAX_SEQUENCE_ENTRIES: i128 = 10_000;

/// `generate_series`/`sequence` and `range` with [`MAX_SEQUENCE_ENTRIES`] checked on every
/// row before any array is built.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BoundedSeries {
    inner: Arc<ScalarUDF>,
    /// `generate_series` includes its stop; `range` does not.
    includes_stop: bool,
}

impl BoundedSeries {
    fn new(inner: Arc<ScalarUDF>) -> Self {
        let includes_stop = inner.name() != "range";
        Self {
            inner,
            includes_stop,
        }
    }

    /// The entries of one row's series, from its arguments as nanoseconds or integers.
    fn entries(&self, start: i128, stop: i128, step: i128) -> i128 {
        if step == 0 || (step > 0 && stop < start) || (step < 0 && stop > start) {
            return 0;
        }
        let span = (stop - start).abs();
        let whole = span / step.abs();
        if self.includes_stop || span % step.abs() != 0 {
            whole + 1
        } else {
            whole
        }
    }
}

/// A value of a series argument as a number: integers as they are, dates and timestamps
/// in nanoseconds, an interval step in nanoseconds with a month as 30 days.
fn series_number(value: &ScalarValue) -> Option<i128> {
    const DAY: i128 = 86_400_000_000_000;
    Some(match value {
        ScalarValue::Int64(v) => (*v)? as i128,
        ScalarValue::Date32(v) => (*v)? as i128 * DAY,
        ScalarValue::Date64(v) => (*v)? as i128 * 1_000_000,
        ScalarValue::TimestampSecond(v, _) => (*v)? as i128 * 1_000_000_000,
        ScalarValue::TimestampMillisecond(v, _) => (*v)? as i128 * 1_000_000,
        ScalarValue::TimestampMicrosecond(v, _) => (*v)? as i128 * 1_000,
        ScalarValue::TimestampNanosecond(v, _) => (*v)? as i128,
        ScalarValue::IntervalMonthDayNano(v) => {
            let v = (*v)?;
            (v.months as i128 * 30 + v.days as i128) * DAY + v.nanoseconds as i128
        }
        _ => return None,
    })
}

impl ScalarUDFImpl for BoundedSeries {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        for row in 0..rows {
            let values = args
                .args
                .iter()
                .map(|arg| match arg {
                    ColumnarValue::Scalar(value) => Ok(value.clone()),
                    ColumnarValue::Array(array) => ScalarValue::try_from_array(array, row),
                })
                .collect::<Result<Vec<_>>>()?;
            let numbers: Option<Vec<i128>> = values.iter().map(series_number).collect();
            let Some(numbers) = numbers else { continue };
            let (start, stop, step) = match numbers.as_slice() {
                [stop] => (0, *stop, 1),
                [start, stop] => (*start, *stop, 1),
                [start, stop, step] => (*start, *stop, *step),
                _ => continue,
            };
            if self.entries(start, stop, step) > MAX_SEQUENCE_ENTRIES {
                return Err(datafusion::error::DataFusionError::External(Box::new(
                    crate::TrinoError::new(
                        crate::ErrorCode::INVALID_FUNCTION_ARGUMENT,
                        format!(
                            "result of sequence function must not have more than \
                             {MAX_SEQUENCE_ENTRIES} entries"
                        ),
                    ),
                )));
            }
            // A scalar call has one row whatever the batch holds.
            if args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            {
                break;
            }
        }
        self.inner.invoke_with_args(args)
    }
}
