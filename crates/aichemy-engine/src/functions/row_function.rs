//! `RowFunction`: a scalar function computed value by value over `ScalarValue`s, for the
//! many small Trino functions whose number matters more than their speed (`soundex`,
//! `luhn_check`, `map_from_entries`, …). Arguments are coerced to the kinds each
//! signature names; a NULL argument gives NULL.

use std::any::Any;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::functions::json::cast::array_of;
use crate::functions::{arg_arrays, is_text, unexpected_parameters};

/// What an argument is coerced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Arg {
    Text,
    Int,
    /// A number: integers as BIGINT, others as DOUBLE.
    Number,
    /// An array or map, as it is.
    Nested,
    /// Anything, as it is.
    Any,
}

impl Arg {
    fn coerce(self, given: &DataType) -> Option<DataType> {
        let null = *given == DataType::Null;
        match self {
            Arg::Text if is_text(given) => Some(DataType::Utf8),
            Arg::Int if given.is_integer() || null => Some(DataType::Int64),
            Arg::Number if given.is_integer() || null => Some(DataType::Int64),
            Arg::Number if given.is_numeric() => Some(DataType::Float64),
            Arg::Nested if given.is_nested() || null => Some(given.clone()),
            Arg::Any => Some(given.clone()),
            _ => None,
        }
    }
}

/// The result type from the argument types.
pub(crate) type Returns = fn(&[DataType]) -> Result<DataType>;
/// The result from the argument values.
pub(crate) type Eval = fn(&[ScalarValue], &DataType) -> Result<ScalarValue>;

pub(crate) struct RowFunction {
    name: &'static str,
    signatures: &'static [&'static [Arg]],
    expected: &'static str,
    returns: Returns,
    eval: Eval,
    signature: Signature,
}

impl std::fmt::Debug for RowFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for RowFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for RowFunction {}

impl std::hash::Hash for RowFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl RowFunction {
    /// `name` taking one of `signatures`; `expected` spells them as Trino's error does.
    pub(crate) fn new(
        name: &'static str,
        signatures: &'static [&'static [Arg]],
        expected: &'static str,
        returns: Returns,
        eval: Eval,
    ) -> Self {
        RowFunction {
            name,
            signatures,
            expected,
            returns,
            eval,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// A volatile function (`shuffle`).
    pub(crate) fn volatile(mut self) -> Self {
        self.signature = Signature::user_defined(Volatility::Volatile);
        self
    }

    pub(crate) fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }
}

impl ScalarUDFImpl for RowFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        for signature in self.signatures {
            if signature.len() != arg_types.len() {
                continue;
            }
            let coerced: Option<Vec<DataType>> = signature
                .iter()
                .zip(arg_types)
                .map(|(arg, given)| arg.coerce(given))
                .collect();
            if let Some(coerced) = coerced {
                return Ok(coerced);
            }
        }
        unexpected_parameters(self.name, arg_types, self.expected)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        (self.returns)(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Arc::new(Field::new(
            self.name,
            (self.returns)(&types)?,
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let returned = args.return_field.data_type().clone();
        let arrays = arg_arrays(&args)?;
        let array = each_row(&arrays, args.number_rows, &returned, |row_args| {
            (self.eval)(row_args, &returned)
        })?;
        if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            && !returned.is_nested()
            && self.signature.volatility != Volatility::Volatile
        {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?));
        }
        Ok(ColumnarValue::Array(array))
    }
}

/// The array of `eval`'s answers for each row's argument values, NULL for a row where one
/// argument is NULL.
pub(crate) fn each_row(
    arrays: &[ArrayRef],
    rows: usize,
    returned: &DataType,
    eval: impl Fn(&[ScalarValue]) -> Result<ScalarValue>,
) -> Result<ArrayRef> {
    let mut values = Vec::with_capacity(rows);
    for row in 0..rows {
        let row_args = arrays
            .iter()
            .map(|a| ScalarValue::try_from_array(a, row))
            .collect::<Result<Vec<_>>>()?;
        if row_args.iter().any(ScalarValue::is_null) {
            values.push(ScalarValue::try_from(returned)?);
        } else {
            values.push(eval(&row_args)?);
        }
    }
    array_of(values, returned)
}

/// The text of a text value.
pub(crate) fn text(value: &ScalarValue) -> &str {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => s,
        _ => "",
    }
}

/// The integer of an integer value.
pub(crate) fn int(value: &ScalarValue) -> i64 {
    match value {
        ScalarValue::Int64(Some(v)) => *v,
        _ => 0,
    }
}

/// The elements of an array value.
pub(crate) fn list_items(value: &ScalarValue) -> Result<Vec<ScalarValue>> {
    let values = match value {
        ScalarValue::List(list) => list.value(0),
        ScalarValue::LargeList(list) => list.value(0),
        ScalarValue::FixedSizeList(list) => list.value(0),
        _ => return Ok(Vec::new()),
    };
    (0..values.len())
        .map(|i| ScalarValue::try_from_array(&values, i))
        .collect()
}

/// The entries of a map value.
pub(crate) fn map_entries(value: &ScalarValue) -> Result<Vec<(ScalarValue, ScalarValue)>> {
    let ScalarValue::Map(map) = value else {
        return Ok(Vec::new());
    };
    let entries = map.value(0);
    (0..entries.len())
        .map(|i| {
            Ok((
                ScalarValue::try_from_array(entries.column(0), i)?,
                ScalarValue::try_from_array(entries.column(1), i)?,
            ))
        })
        .collect()
}

/// An array value of `list_type` holding `items`.
pub(crate) fn list_value(items: Vec<ScalarValue>, list_type: &DataType) -> Result<ScalarValue> {
    use datafusion::arrow::array::ListArray;
    use datafusion::arrow::buffer::OffsetBuffer;
    let DataType::List(element) = list_type else {
        return datafusion::common::exec_err!("not an array type: {list_type}");
    };
    let count = items.len();
    let values = array_of(items, element.data_type())?;
    let list = ListArray::try_new(
        element.clone(),
        OffsetBuffer::from_lengths([count]),
        values,
        None,
    )?;
    Ok(ScalarValue::List(Arc::new(list)))
}

/// A map value of `map_type` holding `entries`.
pub(crate) fn map_value(
    entries: Vec<(ScalarValue, ScalarValue)>,
    map_type: &DataType,
) -> Result<ScalarValue> {
    use datafusion::arrow::array::{MapArray, StructArray};
    use datafusion::arrow::buffer::OffsetBuffer;
    let DataType::Map(entries_field, sorted) = map_type else {
        return datafusion::common::exec_err!("not a map type: {map_type}");
    };
    let DataType::Struct(kv) = entries_field.data_type() else {
        return datafusion::common::exec_err!("not a map type: {map_type}");
    };
    let count = entries.len();
    let (keys, values): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
    let columns = vec![
        array_of(keys, kv[0].data_type())?,
        array_of(values, kv[1].data_type())?,
    ];
    let entries_array = StructArray::try_new(kv.clone(), columns, None)?;
    let map = MapArray::try_new(
        entries_field.clone(),
        OffsetBuffer::from_lengths([count]),
        entries_array,
        None,
        *sorted,
    )?;
    Ok(ScalarValue::Map(Arc::new(map)))
}

/// A map type of these key and value types, laid out as DataFusion's `map()` makes them.
pub(crate) fn map_type(key: DataType, value: DataType) -> DataType {
    DataType::Map(
        Arc::new(Field::new(
            "entries",
            DataType::Struct(
                vec![
                    Field::new("key", key, false),
                    Field::new("value", value, true),
                ]
                .into(),
            ),
            false,
        )),
        false,
    )
}

/// An array type of this element type.
pub(crate) fn list_type(element: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(element, true)))
}
