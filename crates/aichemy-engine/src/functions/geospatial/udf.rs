//! The one scalar UDF every geospatial function is an instance of: a name, the argument kinds
//! it takes (one list per arity), the kind of its result and a function of one row.
//!
//! Evaluation reads each argument into a column of Rust values ([`Column`]), calls the
//! function on every row whose arguments are all non-NULL (NULL in, NULL out) and builds the
//! result array from the answers ([`Out`]).

use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int32Array, Int8Array, ListArray,
    StringArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{internal_datafusion_err, DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::spherical::geography_field;
use super::tile::{self, Tile};
use super::{geometries, geometry_field, is_geometry, metadata_of, wkb_array, Geometry};
use crate::functions::{is_text, scalar_result, unexpected_parameters};

/// The kind of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Arg {
    /// A GeoArrow geometry.
    Geometry,
    /// A geometry as WKT text.
    Wkt,
    /// A geometry as WKB binary.
    Wkb,
    /// A number, read as a double.
    Double,
    /// A number, read as a bigint.
    Integer,
    /// Text.
    Text,
    /// An array of geometries.
    Geometries,
    /// A Bing tile (see [`tile`]).
    Tile,
}

impl Arg {
    /// Whether a value described by `field` fits this kind.
    fn accepts(self, field: &Field) -> bool {
        let data_type = field.data_type();
        match self {
            Arg::Geometry => is_geometry(field),
            Arg::Wkt | Arg::Text => is_text(data_type),
            Arg::Wkb => matches!(
                data_type,
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null
            ),
            Arg::Double | Arg::Integer => data_type.is_numeric() || data_type == &DataType::Null,
            Arg::Geometries => match data_type {
                DataType::List(item)
                | DataType::LargeList(item)
                | DataType::FixedSizeList(item, _) => is_geometry(item),
                DataType::Null => true,
                _ => false,
            },
            Arg::Tile => tile::is_tile_type(data_type),
        }
    }

    /// The kind's name in Trino's signatures.
    fn trino_name(self) -> &'static str {
        match self {
            Arg::Geometry => "Geometry",
            Arg::Wkt | Arg::Text => "varchar",
            Arg::Wkb => "varbinary",
            Arg::Double => "double",
            Arg::Integer => "integer",
            Arg::Geometries => "array(Geometry)",
            Arg::Tile => "BingTile",
        }
    }
}

/// The kind of a function's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Returns {
    Geometry,
    /// A geometry Trino types as SphericalGeography: its field's metadata names the type
    /// (see [`geography_field`]).
    Geography,
    Geometries,
    Boolean,
    TinyInt,
    Integer,
    Double,
    Varchar,
    Tile,
    Tiles,
    /// Trino's `row(x integer, y integer)`.
    Coordinates,
}

impl Returns {
    /// The result's field; geometries carry `metadata`.
    fn field(self, name: &str, metadata: Arc<geoarrow_schema::Metadata>) -> Field {
        let data_type = match self {
            Returns::Geometry => return geometry_field(name, metadata),
            Returns::Geography => return geography_field(name, metadata),
            Returns::Geometries => DataType::List(Arc::new(geometry_field(
                Field::LIST_FIELD_DEFAULT_NAME,
                metadata,
            ))),
            Returns::Boolean => DataType::Boolean,
            Returns::TinyInt => DataType::Int8,
            Returns::Integer => DataType::Int32,
            Returns::Double => DataType::Float64,
            Returns::Varchar => DataType::Utf8,
            Returns::Tile => tile::tile_type(),
            Returns::Tiles => {
                DataType::List(Arc::new(Field::new_list_field(tile::tile_type(), true)))
            }
            Returns::Coordinates => tile::coordinates_type(),
        };
        Field::new(name, data_type, true)
    }
}

/// One argument of one row.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Geometry(&'a Geometry),
    Double(f64),
    Integer(i64),
    Text(&'a str),
    Geometries(&'a [Option<Geometry>]),
    Tile(Tile),
}

/// The (non-NULL) arguments of one row.
pub(super) struct Row<'a>(Vec<Value<'a>>);

impl<'a> Row<'a> {
    /// The number of arguments.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    fn wrong_kind(index: usize) -> DataFusionError {
        internal_datafusion_err!("Geometry function argument {index} is not of the expected kind")
    }

    pub(super) fn geometry(&self, index: usize) -> Result<&'a Geometry> {
        match self.0.get(index) {
            Some(Value::Geometry(geometry)) => Ok(*geometry),
            _ => Err(Self::wrong_kind(index)),
        }
    }

    pub(super) fn double(&self, index: usize) -> Result<f64> {
        match self.0.get(index) {
            Some(Value::Double(value)) => Ok(*value),
            _ => Err(Self::wrong_kind(index)),
        }
    }

    pub(super) fn integer(&self, index: usize) -> Result<i64> {
        match self.0.get(index) {
            Some(Value::Integer(value)) => Ok(*value),
            _ => Err(Self::wrong_kind(index)),
        }
    }

    pub(super) fn text(&self, index: usize) -> Result<&'a str> {
        match self.0.get(index) {
            Some(Value::Text(text)) => Ok(*text),
            _ => Err(Self::wrong_kind(index)),
        }
    }

    pub(super) fn geometries(&self, index: usize) -> Result<&'a [Option<Geometry>]> {
        match self.0.get(index) {
            Some(Value::Geometries(geometries)) => Ok(*geometries),
            _ => Err(Self::wrong_kind(index)),
        }
    }

    pub(super) fn tile(&self, index: usize) -> Result<Tile> {
        match self.0.get(index) {
            Some(Value::Tile(tile)) => Ok(*tile),
            _ => Err(Self::wrong_kind(index)),
        }
    }
}

/// One answer of a function, of the kind its [`Returns`] says.
#[derive(Debug, Clone)]
pub(super) enum Out {
    Geometry(Geometry),
    Geometries(Vec<Geometry>),
    Boolean(bool),
    TinyInt(i8),
    Integer(i32),
    Double(f64),
    Varchar(String),
    Tile(Tile),
    Tiles(Vec<Tile>),
    Coordinates(i32, i32),
}

/// A function of one row: its answer, `None` for NULL.
type RowFn = fn(&Row<'_>) -> Result<Option<Out>>;
/// A function of one geometry: its answer, `None` for NULL.
type GeometryFn = fn(&Geometry) -> Result<Option<Out>>;

/// What a function computes.
#[derive(Debug, Clone, Copy)]
enum Eval {
    Row(RowFn),
    Geometry(GeometryFn),
}

/// A geospatial scalar function.
#[derive(Debug)]
pub(super) struct GeoFunction {
    name: &'static str,
    /// The argument kinds of each arity it takes.
    arguments: &'static [&'static [Arg]],
    returns: Returns,
    eval: Eval,
    signature: Signature,
}

impl GeoFunction {
    /// A function of the arguments of one of `arguments` (one list per arity).
    pub(super) fn new(
        name: &'static str,
        arguments: &'static [&'static [Arg]],
        returns: Returns,
        eval: RowFn,
    ) -> Self {
        Self::with_eval(name, arguments, returns, Eval::Row(eval))
    }

    /// A function of one geometry.
    pub(super) fn unary(name: &'static str, returns: Returns, eval: GeometryFn) -> Self {
        Self::with_eval(name, &[&[Arg::Geometry]], returns, Eval::Geometry(eval))
    }

    fn with_eval(
        name: &'static str,
        arguments: &'static [&'static [Arg]],
        returns: Returns,
        eval: Eval,
    ) -> Self {
        let arities = arguments
            .iter()
            .map(|kinds| TypeSignature::Any(kinds.len()));
        let signature = Signature::one_of(arities.collect(), Volatility::Immutable);
        Self {
            name,
            arguments,
            returns,
            eval,
            signature,
        }
    }

    /// The argument kinds for `count` arguments.
    fn kinds(&self, count: usize) -> Option<&'static [Arg]> {
        self.arguments
            .iter()
            .copied()
            .find(|kinds| kinds.len() == count)
    }

    /// Trino's error for arguments this function does not take.
    fn unexpected<T>(&self, fields: &[FieldRef]) -> Result<T> {
        let types: Vec<DataType> = fields.iter().map(|f| f.data_type().clone()).collect();
        let expected: Vec<String> = self
            .arguments
            .iter()
            .map(|kinds| {
                let names: Vec<&str> = kinds.iter().map(|k| k.trino_name()).collect();
                format!("{}({})", self.name, names.join(", "))
            })
            .collect();
        unexpected_parameters(self.name, &types, &expected.join(", "))
    }

    fn answer(&self, row: &Row<'_>) -> Result<Option<Out>> {
        match self.eval {
            Eval::Row(eval) => eval(row),
            Eval::Geometry(eval) => eval(row.geometry(0)?),
        }
    }
}

impl PartialEq for GeoFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for GeoFunction {}

impl Hash for GeoFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for GeoFunction {
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
        let field = self.returns.field(self.name, Default::default());
        Ok(field.data_type().clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let Some(kinds) = self.kinds(args.arg_fields.len()) else {
            return self.unexpected(args.arg_fields);
        };
        let fits = kinds
            .iter()
            .zip(args.arg_fields)
            .all(|(kind, field)| kind.accepts(field));
        if !fits {
            return self.unexpected(args.arg_fields);
        }
        // The CRS of the only geometry argument, if there is one.
        let geometry_fields: Vec<&FieldRef> = kinds
            .iter()
            .zip(args.arg_fields)
            .filter(|(kind, _)| **kind == Arg::Geometry)
            .map(|(_, field)| field)
            .collect();
        let metadata = match geometry_fields.as_slice() {
            [only] => metadata_of(only),
            _ => Default::default(),
        };
        Ok(Arc::new(self.returns.field(self.name, metadata)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(kinds) = self.kinds(arrays.len()) else {
            return self.unexpected(&args.arg_fields);
        };
        let columns = kinds
            .iter()
            .zip(&arrays)
            .zip(&args.arg_fields)
            .map(|((kind, array), field)| Column::read(*kind, array, field))
            .collect::<Result<Vec<_>>>()?;
        let rows = arrays.first().map_or(0, |array| array.len());
        let mut answers = Vec::with_capacity(rows);
        for row in 0..rows {
            let values: Option<Vec<Value<'_>>> =
                columns.iter().map(|column| column.value(row)).collect();
            answers.push(match values {
                Some(values) => self.answer(&Row(values))?,
                None => None,
            });
        }
        let array = build(self.returns, answers, &args.return_field)?;
        scalar_result(&args.args, array)
    }
}

/// One argument of every row, as Rust values.
enum Column {
    Geometry(Vec<Option<Geometry>>),
    Double(Vec<Option<f64>>),
    Integer(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Geometries(Vec<Option<Vec<Option<Geometry>>>>),
    Tile(Vec<Option<Tile>>),
}

impl Column {
    /// Reads an argument of a kind.
    fn read(kind: Arg, array: &ArrayRef, field: &Field) -> Result<Column> {
        Ok(match kind {
            Arg::Geometry => Column::Geometry(geometries(array, field)?),
            // Text and binary without GeoArrow metadata read as WKT and WKB.
            Arg::Wkt | Arg::Wkb => {
                let plain = Field::new(field.name(), array.data_type().clone(), true);
                Column::Geometry(geometries(array, &plain)?)
            }
            Arg::Double => {
                let doubles = cast(array, &DataType::Float64)?;
                Column::Double(doubles.as_primitive::<Float64Type>().iter().collect())
            }
            Arg::Integer => {
                let integers = cast(array, &DataType::Int64)?;
                Column::Integer(integers.as_primitive::<Int64Type>().iter().collect())
            }
            Arg::Text => {
                let text = cast(array, &DataType::Utf8)?;
                let text = text.as_string::<i32>();
                Column::Text(text.iter().map(|s| s.map(str::to_string)).collect())
            }
            Arg::Geometries => Column::Geometries(geometry_lists(array)?),
            Arg::Tile => Column::Tile(tile::read_tiles(array)?),
        })
    }

    /// The value of a row; `None` when it is NULL.
    fn value(&self, row: usize) -> Option<Value<'_>> {
        match self {
            Column::Geometry(values) => values.get(row)?.as_ref().map(Value::Geometry),
            Column::Double(values) => values.get(row).copied().flatten().map(Value::Double),
            Column::Integer(values) => values.get(row).copied().flatten().map(Value::Integer),
            Column::Text(values) => values.get(row)?.as_deref().map(Value::Text),
            Column::Geometries(values) => values.get(row)?.as_deref().map(Value::Geometries),
            Column::Tile(values) => values.get(row).copied().flatten().map(Value::Tile),
        }
    }
}

/// The geometries of each array of an array column (its elements keep their NULLs).
fn geometry_lists(array: &ArrayRef) -> Result<Vec<Option<Vec<Option<Geometry>>>>> {
    let item = match array.data_type() {
        DataType::Null => return Ok(vec![None; array.len()]),
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            Arc::clone(item)
        }
        other => {
            return Err(internal_datafusion_err!(
                "Expected an array of geometries, got {other}"
            ))
        }
    };
    let list = cast(array, &DataType::List(Arc::clone(&item)))?;
    let list = list.as_list::<i32>();
    let values = geometries(list.values(), &item)?;
    let offsets = list.value_offsets();
    let mut lists = Vec::with_capacity(list.len());
    for row in 0..list.len() {
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let elements = values.get(start..end).ok_or_else(|| {
            internal_datafusion_err!("Array offsets out of the bounds of its values")
        })?;
        lists.push(list.is_valid(row).then(|| elements.to_vec()));
    }
    Ok(lists)
}

/// The answers of one kind, with an error for an answer of another kind.
fn answers_of<T>(
    answers: Vec<Option<Out>>,
    pick: impl Fn(Out) -> Option<T>,
) -> Result<Vec<Option<T>>> {
    answers
        .into_iter()
        .map(|answer| {
            answer
                .map(|out| {
                    pick(out).ok_or_else(|| {
                        internal_datafusion_err!(
                            "A geometry function answered a value of another kind"
                        )
                    })
                })
                .transpose()
        })
        .collect()
}

/// A List array of rows of `lengths` elements (`None` for a NULL row) taken in order from
/// `values`, whose item field is `item`.
pub(super) fn list_array(
    item: FieldRef,
    lengths: &[Option<usize>],
    values: ArrayRef,
) -> Result<ArrayRef> {
    let offsets = OffsetBuffer::<i32>::from_lengths(lengths.iter().map(|l| l.unwrap_or(0)));
    let nulls = NullBuffer::from(lengths.iter().map(Option::is_some).collect::<Vec<bool>>());
    Ok(Arc::new(ListArray::try_new(
        item,
        offsets,
        values,
        Some(nulls),
    )?))
}

/// The item field of a List result field.
fn item_field(return_field: &Field) -> Result<FieldRef> {
    match return_field.data_type() {
        DataType::List(item) => Ok(Arc::clone(item)),
        other => Err(internal_datafusion_err!(
            "Expected a List result, got {other}"
        )),
    }
}

/// The result array of a function's answers.
fn build(returns: Returns, answers: Vec<Option<Out>>, return_field: &Field) -> Result<ArrayRef> {
    Ok(match returns {
        Returns::Geometry | Returns::Geography => {
            let geometries = answers_of(answers, |out| match out {
                Out::Geometry(geometry) => Some(geometry),
                _ => None,
            })?;
            wkb_array(geometries.iter().map(Option::as_ref))?
        }
        Returns::Geometries => {
            let lists = answers_of(answers, |out| match out {
                Out::Geometries(geometries) => Some(geometries),
                _ => None,
            })?;
            let lengths: Vec<Option<usize>> = lists
                .iter()
                .map(|list| list.as_ref().map(Vec::len))
                .collect();
            let values = wkb_array(lists.iter().flatten().flatten().map(Some))?;
            list_array(item_field(return_field)?, &lengths, values)?
        }
        Returns::Boolean => Arc::new(BooleanArray::from(answers_of(answers, |out| match out {
            Out::Boolean(value) => Some(value),
            _ => None,
        })?)),
        Returns::TinyInt => Arc::new(Int8Array::from(answers_of(answers, |out| match out {
            Out::TinyInt(value) => Some(value),
            _ => None,
        })?)),
        Returns::Integer => Arc::new(Int32Array::from(answers_of(answers, |out| match out {
            Out::Integer(value) => Some(value),
            _ => None,
        })?)),
        Returns::Double => Arc::new(Float64Array::from(answers_of(answers, |out| match out {
            Out::Double(value) => Some(value),
            _ => None,
        })?)),
        Returns::Varchar => Arc::new(StringArray::from(answers_of(answers, |out| match out {
            Out::Varchar(value) => Some(value),
            _ => None,
        })?)),
        Returns::Tile => tile::tiles_array(&answers_of(answers, |out| match out {
            Out::Tile(tile) => Some(tile),
            _ => None,
        })?)?,
        Returns::Tiles => {
            let lists = answers_of(answers, |out| match out {
                Out::Tiles(tiles) => Some(tiles),
                _ => None,
            })?;
            let lengths: Vec<Option<usize>> = lists
                .iter()
                .map(|list| list.as_ref().map(Vec::len))
                .collect();
            let tiles: Vec<Option<Tile>> = lists
                .iter()
                .flatten()
                .flatten()
                .copied()
                .map(Some)
                .collect();
            list_array(
                item_field(return_field)?,
                &lengths,
                tile::tiles_array(&tiles)?,
            )?
        }
        Returns::Coordinates => tile::coordinates_array(&answers_of(answers, |out| match out {
            Out::Coordinates(x, y) => Some((x, y)),
            _ => None,
        })?)?,
    })
}
