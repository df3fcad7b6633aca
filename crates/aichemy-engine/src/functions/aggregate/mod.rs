//! Trino's aggregate functions DataFusion lacks, as aggregate UDFs whose partial states
//! merge (DataFusion aggregates in two phases: each partition, then each group's states):
//! - `map_agg(key, value)`, `multimap_agg(key, value)`, `map_union(map)`: a map of the input
//!   pairs, with the first value of each key, every value of each key, or the union of maps;
//! - `histogram(x)` and `approx_most_frequent(buckets, value, capacity)`: how often each value
//!   occurs (the latter counts exactly, and keeps the `buckets` most frequent);
//! - `checksum(x)`: Trino's order-insensitive checksum, byte for byte for scalar types;
//! - `geometric_mean(x)`, `kurtosis(x)`, `skewness(x)`: with Trino's formulas;
//! - `approx_percentile(x, percentage)` and `approx_percentile(x, percentages)`: exact, from
//!   the sorted values, picked at the rank Trino's t-digest answers for small inputs;
//! - `every`, `variance`, `bitwise_and_agg`, `bitwise_or_agg`, `bitwise_xor_agg`: DataFusion's
//!   `bool_and`, `var_samp`, `bit_and`, `bit_or`, `bit_xor` under Trino's names.
//!
//! Like Trino's, they skip rows whose arguments are NULL (but `checksum` counts NULLs, and
//! `map_agg` and `multimap_agg` keep NULL values) and answer NULL when no row is left.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    new_empty_array, Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray,
    MapArray, StructArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, concat, filter, sort, take};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type, Decimal32Type,
    Decimal64Type, Field, FieldRef, Fields, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::row::{Row, RowConverter, Rows, SortField};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::cast::{as_float64_array, as_int64_array, as_list_array, as_map_array};
use datafusion::common::{internal_datafusion_err, internal_err, not_impl_err};
use datafusion::common::{Result, ScalarValue};
use datafusion::functions_aggregate::{bit_and_or_xor, bool_and_or, variance};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, GroupsAccumulator, ReversedUDAF, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::{invalid_argument, is_text, unexpected_parameters};

/// Registers every function of this module.
pub fn register(ctx: &SessionContext) {
    for kind in Kind::ALL {
        ctx.register_udaf(AggregateUDF::new_from_impl(TrinoAggregate {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
    // Trino's names for DataFusion's own aggregates, which mean the same.
    ctx.register_udaf(
        bool_and_or::bool_and_udaf()
            .as_ref()
            .clone()
            .with_aliases(["every"]),
    );
    ctx.register_udaf(
        variance::var_samp_udaf()
            .as_ref()
            .clone()
            .with_aliases(["variance"]),
    );
    for (name, inner) in [
        ("bitwise_and_agg", bit_and_or_xor::bit_and_udaf()),
        ("bitwise_or_agg", bit_and_or_xor::bit_or_udaf()),
        ("bitwise_xor_agg", bit_and_or_xor::bit_xor_udaf()),
    ] {
        ctx.register_udaf(AggregateUDF::new_from_impl(BigintBitwise {
            name,
            inner,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

/// The functions of this module's [`TrinoAggregate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    MapAgg,
    MultimapAgg,
    MapUnion,
    Histogram,
    ApproxMostFrequent,
    Checksum,
    GeometricMean,
    Kurtosis,
    Skewness,
    ApproxPercentile,
}

impl Kind {
    const ALL: [Kind; 10] = [
        Kind::MapAgg,
        Kind::MultimapAgg,
        Kind::MapUnion,
        Kind::Histogram,
        Kind::ApproxMostFrequent,
        Kind::Checksum,
        Kind::GeometricMean,
        Kind::Kurtosis,
        Kind::Skewness,
        Kind::ApproxPercentile,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::MapAgg => "map_agg",
            Kind::MultimapAgg => "multimap_agg",
            Kind::MapUnion => "map_union",
            Kind::Histogram => "histogram",
            Kind::ApproxMostFrequent => "approx_most_frequent",
            Kind::Checksum => "checksum",
            Kind::GeometricMean => "geometric_mean",
            Kind::Kurtosis => "kurtosis",
            Kind::Skewness => "skewness",
            Kind::ApproxPercentile => "approx_percentile",
        }
    }

    /// Trino's signatures, for the error of a call that none of them takes.
    fn expected(self) -> &'static str {
        match self {
            Kind::MapAgg => "map_agg(K, V) K:comparable",
            Kind::MultimapAgg => "multimap_agg(K, V) K:comparable",
            Kind::MapUnion => "map_union(map(K,V))",
            Kind::Histogram => "histogram(T) T:comparable",
            Kind::ApproxMostFrequent => {
                "approx_most_frequent(bigint, bigint, bigint), \
                 approx_most_frequent(bigint, varchar, bigint)"
            }
            Kind::Checksum => "checksum(T)",
            Kind::GeometricMean => {
                "geometric_mean(bigint), geometric_mean(double), geometric_mean(real)"
            }
            Kind::Kurtosis => "kurtosis(bigint), kurtosis(double)",
            Kind::Skewness => "skewness(bigint), skewness(double)",
            Kind::ApproxPercentile => {
                "approx_percentile(bigint, double), approx_percentile(bigint, array(double)), \
                 approx_percentile(double, double), approx_percentile(double, array(double)), \
                 approx_percentile(real, double), approx_percentile(real, array(double))"
            }
        }
    }

    /// The types a call's arguments are cast to, as Trino resolves its signatures.
    fn coerce(self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let coerced = match (self, arg_types) {
            (Kind::MapAgg | Kind::MultimapAgg, [key, value]) if comparable(key) => {
                Some(vec![key.clone(), value.clone()])
            }
            (Kind::MapUnion, [map @ DataType::Map(..)]) => Some(vec![map.clone()]),
            (Kind::Histogram, [value]) if comparable(value) => Some(vec![value.clone()]),
            (Kind::ApproxMostFrequent, [buckets, value, capacity])
                if integer_or_null(buckets) && integer_or_null(capacity) =>
            {
                if integer_or_null(value) {
                    Some(vec![DataType::Int64; 3])
                } else if is_text(value) {
                    Some(vec![DataType::Int64, DataType::Utf8, DataType::Int64])
                } else {
                    None
                }
            }
            (Kind::Checksum, [value]) => Some(vec![value.clone()]),
            (Kind::GeometricMean, [DataType::Float32]) => Some(vec![DataType::Float32]),
            (Kind::GeometricMean | Kind::Kurtosis | Kind::Skewness, [value])
                if number_or_null(value) =>
            {
                Some(vec![DataType::Float64])
            }
            (Kind::ApproxPercentile, [value, percentage]) => percentile_types(value, percentage),
            _ => None,
        };
        match coerced {
            Some(types) => Ok(types),
            None => unexpected_parameters(self.name(), arg_types, self.expected()),
        }
    }

    /// The result type, of the coerced argument types.
    fn return_type(self, arg_types: &[DataType]) -> DataType {
        let arg = |index: usize| arg_types.get(index).cloned().unwrap_or(DataType::Null);
        match self {
            Kind::MapAgg => map_of(&arg(0), &arg(1)),
            Kind::MultimapAgg => map_of(&arg(0), &list_of(&arg(1))),
            Kind::MapUnion => arg(0),
            Kind::Histogram => map_of(&arg(0), &DataType::Int64),
            Kind::ApproxMostFrequent => map_of(&arg(1), &DataType::Int64),
            Kind::Checksum => DataType::Binary,
            Kind::GeometricMean if arg(0) == DataType::Float32 => DataType::Float32,
            Kind::GeometricMean | Kind::Kurtosis | Kind::Skewness => DataType::Float64,
            Kind::ApproxPercentile => match arg(1) {
                DataType::List(_) => list_of(&arg(0)),
                _ => arg(0),
            },
        }
    }
}

/// Whether values of this type can be keys: arrow's row format encodes them.
fn comparable(data_type: &DataType) -> bool {
    RowConverter::supports_fields(&[SortField::new(data_type.clone())])
}

fn integer_or_null(data_type: &DataType) -> bool {
    data_type.is_integer() || data_type.is_null()
}

fn number_or_null(data_type: &DataType) -> bool {
    data_type.is_numeric() || data_type.is_null()
}

/// `approx_percentile`'s arguments: BIGINT, REAL or DOUBLE values, and a DOUBLE or an
/// ARRAY(DOUBLE) of percentages.
fn percentile_types(value: &DataType, percentage: &DataType) -> Option<Vec<DataType>> {
    let value = if integer_or_null(value) {
        DataType::Int64
    } else if *value == DataType::Float32 {
        DataType::Float32
    } else if value.is_numeric() {
        DataType::Float64
    } else {
        return None;
    };
    let percentage = match percentage {
        DataType::List(element)
        | DataType::LargeList(element)
        | DataType::FixedSizeList(element, _)
            if number_or_null(element.data_type()) =>
        {
            list_of(&DataType::Float64)
        }
        other if number_or_null(other) => DataType::Float64,
        _ => return None,
    };
    Some(vec![value, percentage])
}

/// Trino's MAP(key, value) in arrow's layout.
fn map_of(key: &DataType, value: &DataType) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", key.clone(), false),
        Field::new("value", value.clone(), true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

/// Trino's ARRAY(element) in arrow's layout.
fn list_of(element: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(element.clone(), true)))
}

/// The entries field, the key and value fields, and whether the keys are sorted, of a map.
fn map_fields(map_type: &DataType) -> Result<(FieldRef, Fields, bool)> {
    match map_type {
        DataType::Map(entries, sorted) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => {
                Ok((Arc::clone(entries), fields.clone(), *sorted))
            }
            _ => internal_err!("Expected a map type, got {map_type}"),
        },
        _ => internal_err!("Expected a map type, got {map_type}"),
    }
}

/// The key and value types of the pairs `map_agg`, `multimap_agg` and `map_union` keep for a
/// result of `map_type` (`multimap_agg` keeps the elements of its arrays).
fn pair_types(kind: Kind, map_type: &DataType) -> Result<(DataType, DataType)> {
    let (_, fields, _) = map_fields(map_type)?;
    let value = match (kind, fields[1].data_type()) {
        (Kind::MultimapAgg, DataType::List(element)) => element.data_type().clone(),
        (_, value) => value.clone(),
    };
    Ok((fields[0].data_type().clone(), value))
}

/// One map of `keys` and `values` as a scalar of `map_type`.
fn map_scalar(map_type: &DataType, keys: ArrayRef, values: ArrayRef) -> Result<ScalarValue> {
    let (entries, fields, sorted) = map_fields(map_type)?;
    let length = keys.len();
    let entries_array = StructArray::try_new(fields, vec![keys, values], None)?;
    let map = MapArray::try_new(
        entries,
        OffsetBuffer::from_lengths([length]),
        entries_array,
        None,
        sorted,
    )?;
    Ok(ScalarValue::Map(Arc::new(map)))
}

/// One list of `values` as a scalar, as state columns of a [`list_state`] field hold them.
fn list_scalar(values: ArrayRef) -> ScalarValue {
    let element = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    let length = values.len();
    ScalarValue::List(Arc::new(ListArray::new(
        element,
        OffsetBuffer::from_lengths([length]),
        values,
        None,
    )))
}

/// A state field holding one list of `data_type` per group.
fn list_state(name: &str, part: &str, data_type: &DataType) -> FieldRef {
    Arc::new(Field::new(
        format_state_name(name, part),
        list_of(data_type),
        true,
    ))
}

/// A state field holding one value of `data_type` per group.
fn scalar_state(name: &str, part: &str, data_type: DataType) -> FieldRef {
    Arc::new(Field::new(format_state_name(name, part), data_type, true))
}

/// The arguments (or state columns) an accumulator is given, as many as it takes.
fn args<const N: usize>(arrays: &[ArrayRef]) -> Result<&[ArrayRef; N]> {
    arrays
        .try_into()
        .map_err(|_| internal_datafusion_err!("Expected {N} arrays, got {}", arrays.len()))
}

/// The rows in which no argument is NULL: Trino gives an aggregation only those (unless it
/// declares an argument nullable).
fn rows_without_nulls(arrays: &[ArrayRef]) -> Result<Vec<ArrayRef>> {
    let mut valid: Option<NullBuffer> = None;
    for array in arrays {
        valid = NullBuffer::union(valid.as_ref(), array.logical_nulls().as_ref());
    }
    match valid {
        Some(valid) if valid.null_count() > 0 => {
            let keep = BooleanArray::new(valid.into_inner(), None);
            arrays
                .iter()
                .map(|array| Ok(filter(array.as_ref(), &keep)?))
                .collect()
        }
        _ => Ok(arrays.to_vec()),
    }
}

/// Pieces of one column kept by an accumulator, as one array.
fn concat_pieces(pieces: &[ArrayRef], data_type: &DataType) -> Result<ArrayRef> {
    match pieces {
        [] => Ok(new_empty_array(data_type)),
        [one] => Ok(Arc::clone(one)),
        _ => {
            let arrays: Vec<&dyn Array> = pieces.iter().map(|piece| piece.as_ref()).collect();
            Ok(concat(&arrays)?)
        }
    }
}

/// Joins the pieces once there are many, so that a long input is not thousands of arrays.
fn compact(pieces: &mut Vec<ArrayRef>, data_type: &DataType) -> Result<()> {
    if pieces.len() >= 64 {
        let joined = concat_pieces(pieces, data_type)?;
        *pieces = vec![joined];
    }
    Ok(())
}

/// The memory of the pieces, counting a slice as the part it covers.
fn pieces_size(pieces: &[ArrayRef]) -> usize {
    pieces
        .iter()
        .map(|piece| {
            size_of::<ArrayRef>() + piece.to_data().get_slice_memory_size().unwrap_or_default()
        })
        .sum()
}

fn positions_array(positions: &[usize]) -> UInt64Array {
    UInt64Array::from_iter_values(positions.iter().map(|&position| position as u64))
}

/// The aggregate functions of [`Kind`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct TrinoAggregate {
    kind: Kind,
    signature: Signature,
}

impl AggregateUDFImpl for TrinoAggregate {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.kind.coerce(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.kind.return_type(arg_types))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let name = args.name;
        let input = |index: usize| {
            args.input_fields
                .get(index)
                .map_or(DataType::Null, |field| field.data_type().clone())
        };
        let moment = |part: &str| scalar_state(name, part, DataType::Float64);
        Ok(match self.kind {
            Kind::MapAgg | Kind::MultimapAgg | Kind::MapUnion => {
                let (key, value) = pair_types(self.kind, args.return_type())?;
                vec![
                    list_state(name, "keys", &key),
                    list_state(name, "values", &value),
                ]
            }
            Kind::Histogram => vec![
                list_state(name, "values", &input(0)),
                list_state(name, "counts", &DataType::Int64),
            ],
            Kind::ApproxMostFrequent => vec![
                list_state(name, "values", &input(1)),
                list_state(name, "counts", &DataType::Int64),
                scalar_state(name, "buckets", DataType::Int64),
            ],
            Kind::Checksum => vec![scalar_state(name, "checksum", DataType::Int64)],
            Kind::GeometricMean => vec![
                scalar_state(name, "count", DataType::Int64),
                scalar_state(name, "sum_of_logs", DataType::Float64),
            ],
            Kind::Kurtosis | Kind::Skewness => vec![
                scalar_state(name, "count", DataType::Int64),
                moment("m1"),
                moment("m2"),
                moment("m3"),
                moment("m4"),
            ],
            Kind::ApproxPercentile => vec![
                list_state(name, "values", &input(0)),
                list_state(name, "percentages", &DataType::Float64),
            ],
        })
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if acc_args.is_distinct {
            return not_impl_err!("{}(DISTINCT ...) is not supported", self.name());
        }
        let input = |index: usize| {
            acc_args
                .expr_fields
                .get(index)
                .map_or(DataType::Null, |field| field.data_type().clone())
        };
        let return_type = acc_args.return_field.data_type().clone();
        let accumulator: Box<dyn Accumulator> = match self.kind {
            Kind::MapAgg | Kind::MultimapAgg | Kind::MapUnion => {
                Box::new(PairsAccumulator::new(self.kind, return_type)?)
            }
            Kind::Histogram => Box::new(CountsAccumulator::new(&input(0), false)?),
            Kind::ApproxMostFrequent => Box::new(CountsAccumulator::new(&input(1), true)?),
            Kind::Checksum => Box::<ChecksumAccumulator>::default(),
            Kind::GeometricMean => Box::new(GeometricMeanAccumulator::new(
                return_type == DataType::Float32,
            )),
            Kind::Kurtosis => Box::new(MomentsAccumulator::new(Statistic::Kurtosis)),
            Kind::Skewness => Box::new(MomentsAccumulator::new(Statistic::Skewness)),
            Kind::ApproxPercentile => Box::new(PercentileAccumulator::new(
                &input(0),
                matches!(return_type, DataType::List(_)),
            )),
        };
        Ok(accumulator)
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

/// The distinct non-NULL values of a column in their order of arrival, each with its
/// position, held in arrow's row format (whose bytes compare as the values do).
#[derive(Debug)]
struct DistinctValues {
    data_type: DataType,
    converter: RowConverter,
    rows: Rows,
    positions: HashMap<Box<[u8]>, usize>,
    /// Bytes of the keys of `positions`.
    key_bytes: usize,
}

impl DistinctValues {
    fn new(data_type: &DataType) -> Result<Self> {
        let converter = RowConverter::new(vec![SortField::new(data_type.clone())])?;
        let rows = converter.empty_rows(0, 0);
        Ok(Self {
            data_type: data_type.clone(),
            converter,
            rows,
            positions: HashMap::new(),
            key_bytes: 0,
        })
    }

    fn len(&self) -> usize {
        self.rows.num_rows()
    }

    /// The position of each value of `array` (`None` for NULL), after adding the new ones.
    fn insert(&mut self, array: &ArrayRef) -> Result<Vec<Option<usize>>> {
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(array))?;
        let nulls = array.logical_nulls();
        let mut positions = Vec::with_capacity(array.len());
        for (index, row) in rows.iter().enumerate() {
            if nulls.as_ref().is_some_and(|nulls| nulls.is_null(index)) {
                positions.push(None);
                continue;
            }
            let position = match self.positions.get(row.data()) {
                Some(position) => *position,
                None => {
                    let position = self.rows.num_rows();
                    self.positions.insert(row.data().into(), position);
                    self.key_bytes += row.data().len();
                    self.rows.push(row);
                    position
                }
            };
            positions.push(Some(position));
        }
        Ok(positions)
    }

    /// The value at a position, as a row that compares as the values do.
    fn row(&self, position: usize) -> Row<'_> {
        self.rows.row(position)
    }

    /// The values, in the order of their positions.
    fn values(&self) -> Result<ArrayRef> {
        let values = self
            .converter
            .convert_rows(&self.rows)?
            .pop()
            .ok_or_else(|| internal_datafusion_err!("No column decoded from rows"))?;
        // The row format hands dictionaries back decoded.
        if values.data_type() == &self.data_type {
            Ok(values)
        } else {
            Ok(cast(&values, &self.data_type)?)
        }
    }

    fn size(&self) -> usize {
        self.converter.size()
            + self.rows.size()
            + self.key_bytes
            + self.positions.capacity() * (size_of::<(Box<[u8]>, usize)>() + 1)
    }
}

/// `map_agg`, `multimap_agg` and `map_union`: the distinct non-NULL keys of the input pairs,
/// each with its first value (`multimap_agg`: with every value, in order of arrival). As in
/// Trino, which value of a repeated key `map_agg` and `map_union` keep is arbitrary: the
/// first to reach the accumulator. The state is the kept pairs.
#[derive(Debug)]
struct PairsAccumulator {
    map_type: DataType,
    value_type: DataType,
    /// `multimap_agg` keeps every value of a key.
    every_value: bool,
    /// `map_union` is given maps rather than keys and values.
    input_maps: bool,
    keys: DistinctValues,
    /// The kept values in pieces, in their order of arrival.
    values: Vec<ArrayRef>,
    /// The position in `keys` of the key of each kept value.
    value_keys: Vec<usize>,
}

impl PairsAccumulator {
    fn new(kind: Kind, map_type: DataType) -> Result<Self> {
        let (key_type, value_type) = pair_types(kind, &map_type)?;
        Ok(Self {
            keys: DistinctValues::new(&key_type)?,
            map_type,
            value_type,
            every_value: kind == Kind::MultimapAgg,
            input_maps: kind == Kind::MapUnion,
            values: Vec::new(),
            value_keys: Vec::new(),
        })
    }

    /// Adds the pairs whose key is not NULL.
    fn add(&mut self, keys: &ArrayRef, values: &ArrayRef) -> Result<()> {
        let mut kept = Vec::new();
        for (row, position) in self.keys.insert(keys)?.into_iter().enumerate() {
            let Some(position) = position else { continue };
            // Without every value, a key is new when it has no value yet.
            if self.every_value || position == self.value_keys.len() {
                kept.push(row as u32);
                self.value_keys.push(position);
            }
        }
        if !kept.is_empty() {
            let kept = take(values.as_ref(), &UInt32Array::from(kept), None)?;
            self.values.push(kept);
            compact(&mut self.values, &self.value_type)?;
        }
        Ok(())
    }

    /// The values of each key as one list, the keys in order.
    fn grouped(&self, values: ArrayRef) -> Result<ArrayRef> {
        let mut lengths = vec![0usize; self.keys.len()];
        for &key in &self.value_keys {
            lengths[key] += 1;
        }
        let mut next = Vec::with_capacity(lengths.len());
        let mut start = 0;
        for length in &lengths {
            next.push(start);
            start += length;
        }
        let mut order = vec![0u64; self.value_keys.len()];
        for (index, &key) in self.value_keys.iter().enumerate() {
            order[next[key]] = index as u64;
            next[key] += 1;
        }
        let ordered = take(values.as_ref(), &UInt64Array::from(order), None)?;
        let element = Arc::new(Field::new_list_field(self.value_type.clone(), true));
        Ok(Arc::new(ListArray::try_new(
            element,
            OffsetBuffer::from_lengths(lengths),
            ordered,
            None,
        )?))
    }
}

impl Accumulator for PairsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if !self.input_maps {
            let [keys, values] = args::<2>(values)?;
            return self.add(keys, values);
        }
        let [maps] = args::<1>(values)?;
        let maps = as_map_array(maps)?;
        for row in 0..maps.len() {
            if maps.is_valid(row) {
                let entries = maps.value(row);
                self.add(entries.column(0), entries.column(1))?;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [keys, values] = args::<2>(states)?;
        let (keys, values) = (as_list_array(keys)?, as_list_array(values)?);
        for row in 0..keys.len() {
            if keys.is_valid(row) && values.is_valid(row) {
                self.add(&keys.value(row), &values.value(row))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let keys = self.keys.values()?;
        let keys = take(keys.as_ref(), &positions_array(&self.value_keys), None)?;
        let values = concat_pieces(&self.values, &self.value_type)?;
        Ok(vec![list_scalar(keys), list_scalar(values)])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.value_keys.is_empty() {
            return ScalarValue::try_from(&self.map_type);
        }
        let values = concat_pieces(&self.values, &self.value_type)?;
        let values = if self.every_value {
            self.grouped(values)?
        } else {
            values
        };
        map_scalar(&self.map_type, self.keys.values()?, values)
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.keys.size()
            + pieces_size(&self.values)
            + self.value_keys.capacity() * size_of::<usize>()
    }
}

/// `histogram` and `approx_most_frequent`: how often each distinct non-NULL value occurs.
///
/// `approx_most_frequent` counts exactly (Trino's stream summary of `capacity` counters
/// estimates), so `capacity` is not used; it returns the `buckets` most frequent values,
/// ties in the order of the values (arbitrary in Trino).
#[derive(Debug)]
struct CountsAccumulator {
    map_type: DataType,
    values: DistinctValues,
    counts: Vec<i64>,
    most_frequent: bool,
    /// `approx_most_frequent`'s bucket count, as its first row gives it.
    buckets: Option<i64>,
}

impl CountsAccumulator {
    fn new(value_type: &DataType, most_frequent: bool) -> Result<Self> {
        Ok(Self {
            map_type: map_of(value_type, &DataType::Int64),
            values: DistinctValues::new(value_type)?,
            counts: Vec::new(),
            most_frequent,
            buckets: None,
        })
    }

    /// Counts each non-NULL value of `values` `count(row)` times.
    fn add(&mut self, values: &ArrayRef, count: impl Fn(usize) -> i64) -> Result<()> {
        for (row, position) in self.values.insert(values)?.into_iter().enumerate() {
            let Some(position) = position else { continue };
            if position == self.counts.len() {
                self.counts.push(0);
            }
            self.counts[position] += count(row);
        }
        Ok(())
    }

    fn set_buckets(&mut self, buckets: i64) -> Result<()> {
        if self.buckets.is_none() {
            if buckets < 2 {
                return Err(invalid_argument(
                    "approx_most_frequent bucket count must be greater than one",
                ));
            }
            self.buckets = Some(buckets);
        }
        Ok(())
    }
}

impl Accumulator for CountsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if !self.most_frequent {
            let [values] = args::<1>(values)?;
            return self.add(values, |_| 1);
        }
        let rows = rows_without_nulls(values)?;
        let [buckets, values, _capacity] = args::<3>(&rows)?;
        if values.is_empty() {
            return Ok(());
        }
        self.set_buckets(as_int64_array(buckets)?.value(0))?;
        self.add(values, |_| 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let values = as_list_array(&states[0])?;
        let counts = as_list_array(&states[1])?;
        let buckets = states
            .get(2)
            .map(|buckets| as_int64_array(buckets.as_ref()))
            .transpose()?;
        for row in 0..values.len() {
            if let Some(buckets) = buckets.filter(|buckets| buckets.is_valid(row)) {
                self.set_buckets(buckets.value(row))?;
            }
            if values.is_valid(row) && counts.is_valid(row) {
                let row_counts = counts.value(row);
                let row_counts = as_int64_array(&row_counts)?;
                self.add(&values.value(row), |index| row_counts.value(index))?;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut state = vec![
            list_scalar(self.values.values()?),
            list_scalar(Arc::new(Int64Array::from(self.counts.clone()))),
        ];
        if self.most_frequent {
            state.push(ScalarValue::Int64(self.buckets));
        }
        Ok(state)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.counts.is_empty() {
            return ScalarValue::try_from(&self.map_type);
        }
        let values = self.values.values()?;
        let Some(buckets) = self.buckets.filter(|_| self.most_frequent) else {
            let counts = Arc::new(Int64Array::from(self.counts.clone()));
            return map_scalar(&self.map_type, values, counts);
        };
        // The most frequent first, ties in the order of the values.
        let mut order: Vec<usize> = (0..self.counts.len()).collect();
        order.sort_by(|&a, &b| {
            self.counts[b]
                .cmp(&self.counts[a])
                .then_with(|| self.values.row(a).cmp(&self.values.row(b)))
        });
        order.truncate(usize::try_from(buckets).unwrap_or(usize::MAX));
        let values = take(values.as_ref(), &positions_array(&order), None)?;
        let counts = Int64Array::from_iter_values(order.iter().map(|&index| self.counts[index]));
        map_scalar(&self.map_type, values, Arc::new(counts))
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.values.size() + self.counts.capacity() * size_of::<i64>()
    }
}

/// Trino's `checksum` prime: a NULL adds it, a value its hash times it.
const CHECKSUM_PRIME: u64 = 0x9E37_79B1_85EB_CA87;

/// `checksum`: the wrapping sum over the rows of Trino's XX_HASH_64 of the value times
/// [`CHECKSUM_PRIME`], or the prime for NULL, as 8 little-endian bytes; NULL for no rows.
/// The bytes are Trino's for booleans, integers, REAL, DOUBLE, DECIMAL, VARCHAR, VARBINARY,
/// DATE, TIME, TIMESTAMP and TIMESTAMP WITH TIME ZONE; other types hash their text.
#[derive(Debug, Default)]
struct ChecksumAccumulator {
    sum: u64,
    seen: bool,
}

impl Accumulator for ChecksumAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [values] = args::<1>(values)?;
        for hash in value_hashes(values)? {
            let term = hash.map_or(CHECKSUM_PRIME, |hash| hash.wrapping_mul(CHECKSUM_PRIME));
            self.sum = self.sum.wrapping_add(term);
            self.seen = true;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [sums] = args::<1>(states)?;
        for sum in as_int64_array(sums)?.iter().flatten() {
            self.sum = self.sum.wrapping_add(sum as u64);
            self.seen = true;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(
            self.seen.then_some(self.sum as i64),
        )])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Binary(
            self.seen.then(|| self.sum.to_le_bytes().to_vec()),
        ))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// Trino's XX_HASH_64 of a BIGINT (and of the smaller types it widens to one).
fn long_hash(value: i64) -> u64 {
    xxhash64(&value.to_le_bytes())
}

/// Java's `doubleToLongBits` of a DOUBLE, with -0 as 0, as Trino hashes it.
fn double_bits(value: f64) -> i64 {
    if value.is_nan() {
        0x7FF8_0000_0000_0000
    } else if value == 0.0 {
        0
    } else {
        value.to_bits() as i64
    }
}

/// Java's `floatToIntBits` of a REAL, with -0 as 0, as Trino hashes it.
fn real_bits(value: f32) -> i64 {
    let bits = if value.is_nan() {
        0x7FC0_0000
    } else if value == 0.0 {
        0
    } else {
        value.to_bits()
    };
    i64::from(bits as i32)
}

/// Trino's XX_HASH_64 of a TIMESTAMP: of its microseconds (milliseconds with a time zone),
/// XORed with that of the picoseconds within them at a finer precision.
fn timestamp_hash(value: i64, unit: &TimeUnit, zoned: bool) -> u64 {
    let per_second: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let base = if zoned { 1_000 } else { 1_000_000 };
    if per_second <= base {
        return long_hash(value.wrapping_mul(base / per_second));
    }
    let ratio = per_second / base;
    let picos = value.rem_euclid(ratio) * (1_000_000_000_000 / per_second);
    long_hash(value.div_euclid(ratio)) ^ long_hash(picos)
}

fn text_hash(value: Option<&str>) -> Option<u64> {
    value.map(|value| xxhash64(value.as_bytes()))
}

fn bytes_hash(value: Option<&[u8]>) -> Option<u64> {
    value.map(xxhash64)
}

/// Trino's XX_HASH_64 of each value (`None` for NULL).
fn value_hashes(array: &ArrayRef) -> Result<Vec<Option<u64>>> {
    fn each<T: ArrowPrimitiveType>(
        array: &ArrayRef,
        hash: impl Fn(T::Native) -> u64,
    ) -> Vec<Option<u64>> {
        array
            .as_primitive::<T>()
            .iter()
            .map(|value| value.map(&hash))
            .collect()
    }
    Ok(match array.data_type() {
        DataType::Null => vec![None; array.len()],
        DataType::Boolean => array
            .as_boolean()
            .iter()
            .map(|value| value.map(|value| long_hash(i64::from(value))))
            .collect(),
        DataType::Int8 => each::<Int8Type>(array, |v| long_hash(v.into())),
        DataType::Int16 => each::<Int16Type>(array, |v| long_hash(v.into())),
        DataType::Int32 => each::<Int32Type>(array, |v| long_hash(v.into())),
        DataType::Int64 => each::<Int64Type>(array, long_hash),
        DataType::UInt8 => each::<UInt8Type>(array, |v| long_hash(v.into())),
        DataType::UInt16 => each::<UInt16Type>(array, |v| long_hash(v.into())),
        DataType::UInt32 => each::<UInt32Type>(array, |v| long_hash(v.into())),
        DataType::UInt64 => each::<UInt64Type>(array, |v| long_hash(v as i64)),
        DataType::Float32 => each::<Float32Type>(array, |v| long_hash(real_bits(v))),
        DataType::Float64 => each::<Float64Type>(array, |v| long_hash(double_bits(v))),
        DataType::Decimal32(..) => each::<Decimal32Type>(array, |v| long_hash(v.into())),
        DataType::Decimal64(..) => each::<Decimal64Type>(array, long_hash),
        // Trino keeps a DECIMAL of up to 18 digits in a BIGINT, a longer one in two.
        DataType::Decimal128(precision, _) if *precision <= 18 => {
            each::<Decimal128Type>(array, |v| long_hash(v as i64))
        }
        DataType::Decimal128(..) => {
            each::<Decimal128Type>(array, |v| long_hash((v >> 64) as i64) ^ long_hash(v as i64))
        }
        DataType::Date32 => each::<Date32Type>(array, |v| long_hash(v.into())),
        DataType::Date64 => each::<Date64Type>(array, |v| long_hash(v.div_euclid(86_400_000))),
        // Trino's TIME is picoseconds of the day.
        DataType::Time32(TimeUnit::Second) => {
            each::<Time32SecondType>(array, |v| long_hash(i64::from(v) * 1_000_000_000_000))
        }
        DataType::Time32(_) => {
            each::<Time32MillisecondType>(array, |v| long_hash(i64::from(v) * 1_000_000_000))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            each::<Time64MicrosecondType>(array, |v| long_hash(v * 1_000_000))
        }
        DataType::Time64(_) => each::<Time64NanosecondType>(array, |v| long_hash(v * 1_000)),
        DataType::Timestamp(unit, zone) => {
            let values = cast(array, &DataType::Int64)?;
            each::<Int64Type>(&values, |v| timestamp_hash(v, unit, zone.is_some()))
        }
        DataType::Utf8 => array.as_string::<i32>().iter().map(text_hash).collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().map(text_hash).collect(),
        DataType::Utf8View => array.as_string_view().iter().map(text_hash).collect(),
        DataType::Binary => array.as_binary::<i32>().iter().map(bytes_hash).collect(),
        DataType::LargeBinary => array.as_binary::<i64>().iter().map(bytes_hash).collect(),
        DataType::BinaryView => array.as_binary_view().iter().map(bytes_hash).collect(),
        DataType::FixedSizeBinary(_) => array
            .as_fixed_size_binary()
            .iter()
            .map(bytes_hash)
            .collect(),
        DataType::Dictionary(_, value_type) => return value_hashes(&cast(array, value_type)?),
        _ => {
            let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?;
            let nulls = array.logical_nulls();
            (0..array.len())
                .map(|row| {
                    let valid = nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row));
                    valid.then(|| xxhash64(formatter.value(row).to_string().as_bytes()))
                })
                .collect()
        }
    })
}

const XXHASH_PRIME_1: u64 = 0x9E37_79B1_85EB_CA87;
const XXHASH_PRIME_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const XXHASH_PRIME_3: u64 = 0x1656_67B1_9E37_79F9;
const XXHASH_PRIME_4: u64 = 0x85EB_CA77_C2B2_AE63;
const XXHASH_PRIME_5: u64 = 0x27D4_EB2F_1656_67C5;

/// XXH64 of `data` with seed 0, as Trino (airlift's `XxHash64`) computes it.
fn xxhash64(data: &[u8]) -> u64 {
    fn round(accumulator: u64, input: u64) -> u64 {
        accumulator
            .wrapping_add(input.wrapping_mul(XXHASH_PRIME_2))
            .rotate_left(31)
            .wrapping_mul(XXHASH_PRIME_1)
    }
    fn word(bytes: &[u8]) -> u64 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[..8]);
        u64::from_le_bytes(word)
    }
    let mut rest = data;
    let mut hash = if data.len() >= 32 {
        let mut lanes = [
            XXHASH_PRIME_1.wrapping_add(XXHASH_PRIME_2),
            XXHASH_PRIME_2,
            0,
            0u64.wrapping_sub(XXHASH_PRIME_1),
        ];
        while rest.len() >= 32 {
            for (index, lane) in lanes.iter_mut().enumerate() {
                *lane = round(*lane, word(&rest[index * 8..]));
            }
            rest = &rest[32..];
        }
        let mut hash = lanes[0]
            .rotate_left(1)
            .wrapping_add(lanes[1].rotate_left(7))
            .wrapping_add(lanes[2].rotate_left(12))
            .wrapping_add(lanes[3].rotate_left(18));
        for lane in lanes {
            hash = (hash ^ round(0, lane))
                .wrapping_mul(XXHASH_PRIME_1)
                .wrapping_add(XXHASH_PRIME_4);
        }
        hash
    } else {
        XXHASH_PRIME_5
    };
    hash = hash.wrapping_add(data.len() as u64);
    while rest.len() >= 8 {
        hash = (hash ^ round(0, word(rest)))
            .rotate_left(27)
            .wrapping_mul(XXHASH_PRIME_1)
            .wrapping_add(XXHASH_PRIME_4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        let mut half = [0u8; 4];
        half.copy_from_slice(&rest[..4]);
        hash = (hash ^ u64::from(u32::from_le_bytes(half)).wrapping_mul(XXHASH_PRIME_1))
            .rotate_left(23)
            .wrapping_mul(XXHASH_PRIME_2)
            .wrapping_add(XXHASH_PRIME_3);
        rest = &rest[4..];
    }
    for &byte in rest {
        hash = (hash ^ u64::from(byte).wrapping_mul(XXHASH_PRIME_5))
            .rotate_left(11)
            .wrapping_mul(XXHASH_PRIME_1);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(XXHASH_PRIME_2);
    hash ^= hash >> 29;
    hash = hash.wrapping_mul(XXHASH_PRIME_3);
    hash ^ (hash >> 32)
}

/// `geometric_mean`: `exp` of the mean of the natural logarithms, as Trino computes it (a
/// negative value makes it NaN, a zero 0); REAL for a REAL argument, DOUBLE otherwise.
#[derive(Debug)]
struct GeometricMeanAccumulator {
    real: bool,
    count: i64,
    sum_of_logs: f64,
}

impl GeometricMeanAccumulator {
    fn new(real: bool) -> Self {
        Self {
            real,
            count: 0,
            sum_of_logs: 0.0,
        }
    }
}

impl Accumulator for GeometricMeanAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [values] = args::<1>(values)?;
        let values = cast(values, &DataType::Float64)?;
        for value in as_float64_array(&values)?.iter().flatten() {
            self.count += 1;
            self.sum_of_logs += value.ln();
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [counts, sums] = args::<2>(states)?;
        let (counts, sums) = (as_int64_array(counts)?, as_float64_array(sums)?);
        for row in 0..counts.len() {
            if counts.is_valid(row) && sums.is_valid(row) {
                self.count += counts.value(row);
                self.sum_of_logs += sums.value(row);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Float64(Some(self.sum_of_logs)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mean = (self.count > 0).then(|| (self.sum_of_logs / self.count as f64).exp());
        Ok(if self.real {
            ScalarValue::Float32(mean.map(|mean| mean as f32))
        } else {
            ScalarValue::Float64(mean)
        })
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// The statistic a [`MomentsAccumulator`] answers.
#[derive(Debug, Clone, Copy)]
enum Statistic {
    Kurtosis,
    Skewness,
}

/// A count and the sums of the powers 2 to 4 of the deviations from the mean `m1`, updated
/// and merged with Trino's formulas (`CentralMomentsState`).
#[derive(Debug, Default, Clone, Copy)]
struct Moments {
    count: i64,
    m1: f64,
    m2: f64,
    m3: f64,
    m4: f64,
}

impl Moments {
    fn update(&mut self, value: f64) {
        let Moments {
            count: n1,
            m1,
            m2,
            m3,
            m4,
        } = *self;
        let n = (n1 + 1) as f64;
        let delta = value - m1;
        let delta_n = delta / n;
        let delta_n2 = delta_n * delta_n;
        let dm2 = delta * delta_n * n1 as f64;
        self.count = n1 + 1;
        self.m1 = m1 + delta_n;
        self.m2 = m2 + dm2;
        self.m3 = m3 + dm2 * delta_n * (n - 2.0) - 3.0 * delta_n * m2;
        self.m4 = m4 + dm2 * delta_n2 * (n * n - 3.0 * n + 3.0) + 6.0 * delta_n2 * m2
            - 4.0 * delta_n * m3;
    }

    fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let (a, b) = (*self, *other);
        let n = na + nb;
        let delta = b.m1 - a.m1;
        let delta2 = delta * delta;
        let delta3 = delta * delta2;
        let delta4 = delta2 * delta2;
        self.count = a.count + b.count;
        self.m1 = (na * a.m1 + nb * b.m1) / n;
        self.m2 = a.m2 + b.m2 + delta2 * na * nb / n;
        self.m3 = a.m3
            + b.m3
            + delta3 * na * nb * (na - nb) / (n * n)
            + 3.0 * delta * (na * b.m2 - nb * a.m2) / n;
        self.m4 = a.m4
            + b.m4
            + delta4 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * delta2 * (na * na * b.m2 + nb * nb * a.m2) / (n * n)
            + 4.0 * delta * (na * b.m3 - nb * a.m3) / n;
    }

    /// Trino's `skewness`: the population skewness, √n·m3/m2^1.5; NULL under 3 values.
    fn skewness(&self) -> Option<f64> {
        (self.count >= 3).then(|| (self.count as f64).sqrt() * self.m3 / self.m2.powf(1.5))
    }

    /// Trino's `kurtosis`: the sample excess kurtosis,
    /// (n-1)n(n+1)/((n-2)(n-3))·m4/m2² - 3(n-1)²/((n-2)(n-3)); NULL under 4 values.
    fn kurtosis(&self) -> Option<f64> {
        let n = self.count as f64;
        (self.count >= 4).then(|| {
            ((n - 1.0) * n * (n + 1.0)) / ((n - 2.0) * (n - 3.0)) * self.m4 / (self.m2 * self.m2)
                - 3.0 * ((n - 1.0) * (n - 1.0)) / ((n - 2.0) * (n - 3.0))
        })
    }
}

/// `kurtosis` and `skewness`.
#[derive(Debug)]
struct MomentsAccumulator {
    statistic: Statistic,
    moments: Moments,
}

impl MomentsAccumulator {
    fn new(statistic: Statistic) -> Self {
        Self {
            statistic,
            moments: Moments::default(),
        }
    }
}

impl Accumulator for MomentsAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [values] = args::<1>(values)?;
        let values = cast(values, &DataType::Float64)?;
        for value in as_float64_array(&values)?.iter().flatten() {
            self.moments.update(value);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [counts, m1, m2, m3, m4] = args::<5>(states)?;
        let counts = as_int64_array(counts)?;
        let (m1, m2) = (as_float64_array(m1)?, as_float64_array(m2)?);
        let (m3, m4) = (as_float64_array(m3)?, as_float64_array(m4)?);
        for row in 0..counts.len() {
            if counts.is_valid(row) {
                self.moments.merge(&Moments {
                    count: counts.value(row),
                    m1: m1.value(row),
                    m2: m2.value(row),
                    m3: m3.value(row),
                    m4: m4.value(row),
                });
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let Moments {
            count,
            m1,
            m2,
            m3,
            m4,
        } = self.moments;
        Ok(vec![
            ScalarValue::Int64(Some(count)),
            ScalarValue::Float64(Some(m1)),
            ScalarValue::Float64(Some(m2)),
            ScalarValue::Float64(Some(m3)),
            ScalarValue::Float64(Some(m4)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(match self.statistic {
            Statistic::Kurtosis => self.moments.kurtosis(),
            Statistic::Skewness => self.moments.skewness(),
        }))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

/// `approx_percentile(x, percentage)` and `approx_percentile(x, percentages)`, exactly: every
/// value is kept, and the answer at percentage p of n sorted values is the one at index
/// min(⌊p·n⌋, n-1), which is what Trino's t-digest answers while it holds each value as a
/// centroid of its own (up to about a hundred values); on larger inputs Trino's answer is an
/// interpolated estimate near it. A BIGINT must be exact as a DOUBLE, a REAL or DOUBLE finite,
/// and the percentages (those of the first row) between 0 and 1, as in Trino.
#[derive(Debug)]
struct PercentileAccumulator {
    value_type: DataType,
    /// Given an array of percentages, it answers an array.
    many: bool,
    values: Vec<ArrayRef>,
    percentages: Option<Vec<f64>>,
}

impl PercentileAccumulator {
    fn new(value_type: &DataType, many: bool) -> Self {
        Self {
            value_type: value_type.clone(),
            many,
            values: Vec::new(),
            percentages: None,
        }
    }

    fn return_type(&self) -> DataType {
        if self.many {
            list_of(&self.value_type)
        } else {
            self.value_type.clone()
        }
    }
}

/// The percentages of a row: its one percentage, or the elements of its array.
fn percentages_at(percentages: &ArrayRef, row: usize) -> Result<Vec<f64>> {
    let values: Vec<f64> = if let DataType::List(_) = percentages.data_type() {
        let element = as_list_array(percentages)?.value(row);
        as_float64_array(&element)?
            .iter()
            .map(|p| p.ok_or_else(|| invalid_argument("Percentile cannot be null")))
            .collect::<Result<_>>()?
    } else {
        vec![as_float64_array(percentages)?.value(row)]
    };
    if values.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return Err(invalid_argument("Percentile must be between 0 and 1"));
    }
    Ok(values)
}

/// Trino's checks of the values a t-digest takes.
fn check_percentile_values(values: &ArrayRef) -> Result<()> {
    fn not_finite(value: f64) -> Result<()> {
        let shown = if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        Err(invalid_argument(format!(
            "value must be finite; was {shown}"
        )))
    }
    match values.data_type() {
        DataType::Float64 => {
            let values = values.as_primitive::<Float64Type>();
            if let Some(value) = values.iter().flatten().find(|v| !v.is_finite()) {
                return not_finite(value);
            }
        }
        DataType::Float32 => {
            let values = values.as_primitive::<Float32Type>();
            if let Some(value) = values.iter().flatten().find(|v| !v.is_finite()) {
                return not_finite(f64::from(value));
            }
        }
        DataType::Int64 => {
            let values = values.as_primitive::<Int64Type>();
            if let Some(value) = values.iter().flatten().find(|&v| v as f64 as i64 != v) {
                return Err(invalid_argument(format!(
                    "no exact double representation for long: {value}"
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

impl Accumulator for PercentileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = rows_without_nulls(values)?;
        let [values, percentages] = args::<2>(&rows)?;
        if values.is_empty() {
            return Ok(());
        }
        check_percentile_values(values)?;
        if self.percentages.is_none() {
            self.percentages = Some(percentages_at(percentages, 0)?);
        }
        self.values.push(Arc::clone(values));
        compact(&mut self.values, &self.value_type)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, percentages] = args::<2>(states)?;
        let values = as_list_array(values)?;
        for row in 0..values.len() {
            if self.percentages.is_none() && percentages.is_valid(row) {
                self.percentages = Some(percentages_at(percentages, row)?);
            }
            if values.is_valid(row) {
                let row_values = values.value(row);
                if !row_values.is_empty() {
                    self.values.push(row_values);
                }
            }
        }
        compact(&mut self.values, &self.value_type)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let percentages = match &self.percentages {
            Some(percentages) => list_scalar(Arc::new(Float64Array::from(percentages.clone()))),
            None => ScalarValue::new_null_list(DataType::Float64, true, 1),
        };
        Ok(vec![
            list_scalar(concat_pieces(&self.values, &self.value_type)?),
            percentages,
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let values = concat_pieces(&self.values, &self.value_type)?;
        let Some(percentages) = self.percentages.as_ref().filter(|_| !values.is_empty()) else {
            return ScalarValue::try_from(&self.return_type());
        };
        let sorted = sort(values.as_ref(), None)?;
        let count = sorted.len();
        let index = |p: f64| ((p * count as f64).floor() as usize).min(count - 1);
        if self.many {
            let indices = percentages.iter().map(|&p| index(p) as u64);
            let indices = UInt64Array::from_iter_values(indices);
            return Ok(list_scalar(take(sorted.as_ref(), &indices, None)?));
        }
        match percentages.first() {
            Some(&p) => ScalarValue::try_from_array(&sorted, index(p)),
            None => ScalarValue::try_from(&self.return_type()),
        }
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + pieces_size(&self.values)
            + self
                .percentages
                .as_ref()
                .map_or(0, |percentages| percentages.capacity() * size_of::<f64>())
    }
}

/// Trino's `bitwise_and_agg`, `bitwise_or_agg` and `bitwise_xor_agg`: DataFusion's `bit_and`,
/// `bit_or` and `bit_xor` on BIGINT, as Trino widens every integer argument to one (DataFusion
/// would answer in the argument's type).
#[derive(Debug, PartialEq, Eq, Hash)]
struct BigintBitwise {
    name: &'static str,
    inner: Arc<AggregateUDF>,
    signature: Signature,
}

impl AggregateUDFImpl for BigintBitwise {
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
        match arg_types {
            [value] if integer_or_null(value) => Ok(vec![DataType::Int64]),
            _ => unexpected_parameters(self.name, arg_types, &format!("{}(bigint)", self.name)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(acc_args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        self.inner.groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.inner.create_groups_accumulator(args)
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float32Array, Int32Array, StringArray};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::Schema;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionConfig;

    use super::*;

    type NewAccumulator<'a> = &'a dyn Fn() -> Result<Box<dyn Accumulator>>;

    fn int64s(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn float64s(values: &[Option<f64>]) -> ArrayRef {
        Arc::new(Float64Array::from(values.to_vec()))
    }

    /// The states of partial accumulators as the columns of one batch, as the final phase
    /// of an aggregation merges them.
    fn states(parts: &mut [Box<dyn Accumulator>]) -> Result<Vec<ArrayRef>> {
        let rows = parts
            .iter_mut()
            .map(|part| part.state())
            .collect::<Result<Vec<_>>>()?;
        (0..rows[0].len())
            .map(|column| ScalarValue::iter_to_array(rows.iter().map(|row| row[column].clone())))
            .collect()
    }

    /// Updates one accumulator per batch of arguments, merges their states into a new one
    /// and evaluates it.
    fn aggregate(new: NewAccumulator<'_>, batches: &[Vec<ArrayRef>]) -> Result<ScalarValue> {
        let mut parts = batches
            .iter()
            .map(|batch| {
                let mut part = new()?;
                part.update_batch(batch)?;
                Ok(part)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut total = new()?;
        total.merge_batch(&states(&mut parts)?)?;
        total.evaluate()
    }

    fn text(array: &ArrayRef, row: usize) -> String {
        array_value_to_string(array, row).unwrap()
    }

    /// The entries of one map, as `key: value` text, in order.
    fn entry_texts(entries: &StructArray) -> Vec<String> {
        (0..entries.len())
            .map(|i| {
                format!(
                    "{}: {}",
                    text(entries.column(0), i),
                    text(entries.column(1), i)
                )
            })
            .collect()
    }

    fn entries(map: &ScalarValue) -> Vec<String> {
        let ScalarValue::Map(map) = map else {
            panic!("not a map: {map:?}")
        };
        entry_texts(&map.value(0))
    }

    fn hex(value: &ScalarValue) -> String {
        let ScalarValue::Binary(Some(bytes)) = value else {
            panic!("not a varbinary: {value:?}")
        };
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn float(value: &ScalarValue) -> f64 {
        match value {
            ScalarValue::Float64(Some(value)) => *value,
            ScalarValue::Float32(Some(value)) => f64::from(*value),
            other => panic!("not a number: {other:?}"),
        }
    }

    #[test]
    fn map_agg_keeps_the_first_value_of_each_key_and_skips_null_keys() -> Result<()> {
        let map_type = Kind::MapAgg.return_type(&[DataType::Int64, DataType::Utf8]);
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PairsAccumulator::new(
                Kind::MapAgg,
                map_type.clone(),
            )?))
        };
        let result = aggregate(
            &new,
            &[
                vec![
                    int64s(&[Some(1), None, Some(2), Some(1)]),
                    strings(&[Some("a"), Some("x"), None, Some("b")]),
                ],
                vec![
                    int64s(&[Some(3), Some(1)]),
                    strings(&[Some("c"), Some("d")]),
                ],
            ],
        )?;
        assert_eq!(result.data_type(), map_type);
        assert_eq!(entries(&result), ["1: a", "2: ", "3: c"]);
        assert!(new()?.evaluate()?.is_null());
        Ok(())
    }

    #[test]
    fn multimap_agg_keeps_every_value_in_order() -> Result<()> {
        let map_type = Kind::MultimapAgg.return_type(&[DataType::Int64, DataType::Utf8]);
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PairsAccumulator::new(
                Kind::MultimapAgg,
                map_type.clone(),
            )?))
        };
        let result = aggregate(
            &new,
            &[
                vec![
                    int64s(&[Some(1), Some(2), Some(1), None]),
                    strings(&[Some("a"), Some("b"), None, Some("z")]),
                ],
                vec![
                    int64s(&[Some(2), Some(1)]),
                    strings(&[Some("c"), Some("d")]),
                ],
            ],
        )?;
        assert_eq!(result.data_type(), map_type);
        assert_eq!(entries(&result), ["1: [a, , d]", "2: [b, c]"]);
        assert!(new()?.evaluate()?.is_null());
        Ok(())
    }

    #[test]
    fn map_union_keeps_the_first_value_of_each_key() -> Result<()> {
        let map_type = map_of(&DataType::Int64, &DataType::Utf8);
        let map = |keys: &[i64], values: &[&str]| {
            let keys: Vec<Option<i64>> = keys.iter().copied().map(Some).collect();
            let values: Vec<Option<&str>> = values.iter().copied().map(Some).collect();
            map_scalar(&map_type, int64s(&keys), strings(&values))
        };
        let maps = ScalarValue::iter_to_array([
            map(&[1, 2], &["a", "b"])?,
            ScalarValue::try_from(&map_type)?,
            map(&[2, 3], &["x", "c"])?,
        ])?;
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PairsAccumulator::new(
                Kind::MapUnion,
                map_type.clone(),
            )?))
        };
        let more = ScalarValue::iter_to_array([map(&[4, 1], &["d", "y"])?])?;
        let result = aggregate(&new, &[vec![maps], vec![more]])?;
        assert_eq!(entries(&result), ["1: a", "2: b", "3: c", "4: d"]);
        Ok(())
    }

    #[test]
    fn histogram_counts_each_value() -> Result<()> {
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(CountsAccumulator::new(&DataType::Utf8, false)?))
        };
        let result = aggregate(
            &new,
            &[
                vec![strings(&[Some("a"), Some("b"), None, Some("a")])],
                vec![strings(&[Some("b"), Some("a"), Some("c")])],
            ],
        )?;
        assert_eq!(
            result.data_type(),
            Kind::Histogram.return_type(&[DataType::Utf8])
        );
        assert_eq!(entries(&result), ["a: 3", "b: 2", "c: 1"]);
        assert!(new()?.evaluate()?.is_null());
        Ok(())
    }

    fn most_frequent_args(buckets: i64, values: &[Option<i64>]) -> Vec<ArrayRef> {
        vec![
            int64s(&vec![Some(buckets); values.len()]),
            int64s(values),
            int64s(&vec![Some(10); values.len()]),
        ]
    }

    #[test]
    fn approx_most_frequent_keeps_the_most_frequent_values() -> Result<()> {
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(CountsAccumulator::new(&DataType::Int64, true)?))
        };
        let result = aggregate(
            &new,
            &[
                most_frequent_args(2, &[Some(1), Some(2), Some(2), None, Some(3)]),
                most_frequent_args(2, &[Some(3), Some(1), Some(2), Some(4)]),
            ],
        )?;
        // 1 and 3 both occur twice: the smaller value wins the tie.
        assert_eq!(entries(&result), ["2: 3", "1: 2"]);

        let error = new()?
            .update_batch(&most_frequent_args(1, &[Some(1)]))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("bucket count must be greater than one"),
            "{error}"
        );
        Ok(())
    }

    #[test]
    fn xxhash64_matches_the_reference_vectors() {
        for (data, expected) in [
            ("", 0xEF46_DB37_51D8_E999_u64),
            ("a", 0xD24E_C4F1_A98C_6E5B),
            ("abc", 0x44BC_2CF5_AD77_0999),
            ("1234", 0xD831_6E61_D84F_6BA4),
            ("12345678", 0xD2D0_2F08_CF7C_FD4A),
            ("1234567890123456789012345678901", 0x8F36_7CB8_73A5_376E),
            ("12345678901234567890123456789012", 0x40FD_1AA5_2D98_274C),
            (
                "The quick brown fox jumps over the lazy dog",
                0x0B24_2D36_1FDA_71BC,
            ),
        ] {
            assert_eq!(xxhash64(data.as_bytes()), expected, "{data:?}");
        }
    }

    #[test]
    fn checksum_is_trinos_whatever_the_order() -> Result<()> {
        let new = || -> Result<Box<dyn Accumulator>> { Ok(Box::<ChecksumAccumulator>::default()) };
        // The bytes of Trino's definition, computed apart: the sum of xxhash64(value) times
        // 0x9E3779B185EBCA87 (the prime itself for NULL), little-endian.
        let split = aggregate(
            &new,
            &[vec![int64s(&[Some(1), None])], vec![int64s(&[Some(2)])]],
        )?;
        assert_eq!(hex(&split), "ea51bc7b38d908d5");
        let mut whole = new()?;
        whole.update_batch(&[int64s(&[Some(2), None, Some(1)])])?;
        assert_eq!(whole.evaluate()?, split);

        let mut varchar = new()?;
        varchar.update_batch(&[strings(&[Some("a"), None, Some("abc")])])?;
        assert_eq!(hex(&varchar.evaluate()?), "339462068e86f3d1");

        let mut nulls = new()?;
        nulls.update_batch(&[int64s(&[None])])?;
        assert_eq!(hex(&nulls.evaluate()?), "87caeb85b179379e");

        assert_eq!(new()?.evaluate()?, ScalarValue::Binary(None));
        Ok(())
    }

    #[test]
    fn checksum_hashes_zeros_and_nans_as_trino_does() -> Result<()> {
        let doubles = float64s(&[Some(0.0), Some(-0.0), Some(f64::NAN), Some(-f64::NAN)]);
        let hashes = value_hashes(&doubles)?;
        assert_eq!(hashes[0], hashes[1]);
        assert_eq!(hashes[2], hashes[3]);
        assert_eq!(hashes[0], Some(long_hash(0)));
        let integers: ArrayRef = Arc::new(Int32Array::from(vec![-1]));
        assert_eq!(value_hashes(&integers)?, [Some(long_hash(-1))]);
        Ok(())
    }

    #[test]
    fn geometric_mean_of_doubles_and_reals() -> Result<()> {
        let new = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(GeometricMeanAccumulator::new(false)))
        };
        let result = aggregate(
            &new,
            &[
                vec![float64s(&[Some(1.0), Some(2.0)])],
                vec![float64s(&[Some(4.0), None])],
            ],
        )?;
        assert!((float(&result) - 2.0).abs() < 1e-12, "{result:?}");
        assert_eq!(new()?.evaluate()?, ScalarValue::Float64(None));

        let mut real = GeometricMeanAccumulator::new(true);
        let reals: ArrayRef = Arc::new(Float32Array::from(vec![1.0, 2.0, 4.0]));
        real.update_batch(&[reals])?;
        let result = real.evaluate()?;
        assert!(
            matches!(result, ScalarValue::Float32(Some(_))),
            "{result:?}"
        );
        assert!((float(&result) - 2.0).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn kurtosis_and_skewness_follow_trino() -> Result<()> {
        let values = [1.0, 2.0, 3.0, 4.0, 10.0];
        // Two-pass central moments: mean 4, sums of powers of deviations 50, 180, 1394.
        for (statistic, expected) in [
            (Statistic::Skewness, 5f64.sqrt() * 180.0 / 50f64.powf(1.5)),
            (
                Statistic::Kurtosis,
                120.0 / 6.0 * 1394.0 / 2500.0 - 3.0 * 16.0 / 6.0,
            ),
        ] {
            let new = || -> Result<Box<dyn Accumulator>> {
                Ok(Box::new(MomentsAccumulator::new(statistic)))
            };
            let result = aggregate(
                &new,
                &[
                    vec![float64s(&[Some(values[0]), None, Some(values[1])])],
                    vec![float64s(&[
                        Some(values[2]),
                        Some(values[3]),
                        Some(values[4]),
                    ])],
                ],
            )?;
            assert!((float(&result) - expected).abs() < 1e-9, "{result:?}");
        }

        let mut kurtosis = MomentsAccumulator::new(Statistic::Kurtosis);
        kurtosis.update_batch(&[float64s(&[Some(1.0), Some(2.0), Some(3.0)])])?;
        assert_eq!(kurtosis.evaluate()?, ScalarValue::Float64(None));
        let mut skewness = MomentsAccumulator::new(Statistic::Skewness);
        skewness.update_batch(&[float64s(&[Some(1.0), Some(2.0)])])?;
        assert_eq!(skewness.evaluate()?, ScalarValue::Float64(None));
        skewness.update_batch(&[float64s(&[Some(3.0)])])?;
        assert_eq!(skewness.evaluate()?, ScalarValue::Float64(Some(0.0)));
        Ok(())
    }

    fn percentile_args(values: ArrayRef, percentage: f64) -> Vec<ArrayRef> {
        let rows = values.len();
        vec![values, float64s(&vec![Some(percentage); rows])]
    }

    fn percentiles_args(values: ArrayRef, percentages: &[f64]) -> Vec<ArrayRef> {
        let row = Some(percentages.iter().copied().map(Some).collect::<Vec<_>>());
        let lists = ListArray::from_iter_primitive::<Float64Type, _, _>(std::iter::repeat_n(
            row,
            values.len(),
        ));
        vec![values, Arc::new(lists)]
    }

    // Expected answers from Trino's TestApproximatePercentileAggregation.
    #[test]
    fn approx_percentile_picks_trinos_rank() -> Result<()> {
        let one = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PercentileAccumulator::new(
                &DataType::Int64,
                false,
            )))
        };
        let many = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PercentileAccumulator::new(&DataType::Int64, true)))
        };
        let small = || int64s(&[None, Some(1), Some(2), Some(3)]);
        let result = aggregate(&one, &[percentile_args(small(), 0.5)])?;
        assert_eq!(result, ScalarValue::Int64(Some(2)));
        let result = aggregate(&many, &[percentiles_args(small(), &[0.8, 0.2, 0.5])])?;
        assert_eq!(text(&result.to_array()?, 0), "[3, 1, 2]");

        let (first, second) = (
            int64s(&[
                Some(1),
                None,
                Some(2),
                Some(2),
                None,
                Some(2),
                Some(2),
                None,
                Some(2),
            ]),
            int64s(&[
                Some(2),
                None,
                Some(3),
                Some(3),
                None,
                Some(3),
                None,
                Some(3),
            ]),
        );
        let third = int64s(&[Some(4), Some(5), Some(6), Some(7)]);
        let result = aggregate(
            &one,
            &[
                percentile_args(Arc::clone(&first), 0.5),
                percentile_args(Arc::clone(&second), 0.5),
                percentile_args(Arc::clone(&third), 0.5),
            ],
        )?;
        assert_eq!(result, ScalarValue::Int64(Some(3)));
        let result = aggregate(
            &many,
            &[
                percentiles_args(first, &[0.01, 0.5]),
                percentiles_args(second, &[0.01, 0.5]),
                percentiles_args(third, &[0.01, 0.5]),
            ],
        )?;
        assert_eq!(text(&result.to_array()?, 0), "[1, 3]");

        let reals = || -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(PercentileAccumulator::new(
                &DataType::Float32,
                false,
            )))
        };
        let values: ArrayRef = Arc::new(Float32Array::from(vec![-1.0, 1.0]));
        let result = aggregate(&reals, &[percentile_args(values, 0.5)])?;
        assert_eq!(result, ScalarValue::Float32(Some(1.0)));
        let values: ArrayRef = Arc::new(Float32Array::from(vec![-2.0, 3.0, -1.0]));
        let result = aggregate(&reals, &[percentile_args(values, 0.5)])?;
        assert_eq!(result, ScalarValue::Float32(Some(-1.0)));

        assert_eq!(one()?.evaluate()?, ScalarValue::Int64(None));
        let error = one()?
            .update_batch(&percentile_args(int64s(&[Some(1)]), 1.5))
            .unwrap_err();
        assert!(error
            .to_string()
            .contains("Percentile must be between 0 and 1"));
        let mut doubles = PercentileAccumulator::new(&DataType::Float64, false);
        let error = doubles
            .update_batch(&percentile_args(float64s(&[Some(f64::NAN)]), 0.5))
            .unwrap_err();
        assert!(error.to_string().contains("value must be finite; was NaN"));
        Ok(())
    }

    /// The entries of the map in `row` of a column, as `key: value` text, sorted (partitions
    /// reach the final phase in any order).
    fn sorted_entries(column: &ArrayRef, row: usize) -> Vec<String> {
        let mut entries = entry_texts(&column.as_map().value(row));
        entries.sort();
        entries
    }

    #[tokio::test]
    async fn sql_aggregates_merge_partial_states() -> Result<()> {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        register(&ctx);
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Int64, true),
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, true),
        ]));
        let batch = |g: &[Option<i64>], k: &[Option<i64>], v: &[Option<&str>]| {
            RecordBatch::try_new(Arc::clone(&schema), vec![int64s(g), int64s(k), strings(v)])
        };
        let first = batch(
            &[Some(1), Some(1), Some(2), Some(2)],
            &[Some(1), Some(1), Some(5), Some(5)],
            &[Some("a"), Some("c"), Some("e"), Some("f")],
        )?;
        let second = batch(
            &[Some(1), Some(2)],
            &[Some(2), None],
            &[Some("b"), Some("x")],
        )?;
        let table = MemTable::try_new(Arc::clone(&schema), vec![vec![first], vec![second]])?;
        ctx.register_table("t", Arc::new(table))?;

        let batches = ctx
            .sql(
                "SELECT g, multimap_agg(k, v), histogram(v), checksum(k), \
                 approx_percentile(k, 0.5), every(k > 0), bitwise_or_agg(CAST(k AS INT)), \
                 variance(k), map_agg(v, k) \
                 FROM t GROUP BY g ORDER BY g",
            )
            .await?
            .collect()
            .await?;
        let result = concat_batches(&batches[0].schema(), &batches)?;
        assert_eq!(result.num_rows(), 2);
        assert_eq!(result.schema().field(3).data_type(), &DataType::Binary);
        assert_eq!(result.schema().field(4).data_type(), &DataType::Int64);
        assert_eq!(result.schema().field(6).data_type(), &DataType::Int64);

        let column = |index: usize| result.column(index);
        assert_eq!(sorted_entries(column(1), 0), ["1: [a, c]", "2: [b]"]);
        assert_eq!(sorted_entries(column(1), 1), ["5: [e, f]"]);
        assert_eq!(sorted_entries(column(2), 0), ["a: 1", "b: 1", "c: 1"]);
        assert_eq!(sorted_entries(column(2), 1), ["e: 1", "f: 1", "x: 1"]);
        for (row, keys) in [
            (0, [Some(1), Some(1), Some(2)]),
            (1, [Some(5), Some(5), None]),
        ] {
            let mut checksum = ChecksumAccumulator::default();
            checksum.update_batch(&[int64s(&keys)])?;
            let actual = ScalarValue::try_from_array(column(3), row)?;
            assert_eq!(actual, checksum.evaluate()?);
        }
        assert_eq!(text(column(4), 0), "1");
        assert_eq!(text(column(4), 1), "5");
        assert_eq!(text(column(5), 0), "true");
        assert_eq!(text(column(5), 1), "true");
        assert_eq!(text(column(6), 0), "3");
        assert_eq!(text(column(6), 1), "5");
        let variance = ScalarValue::try_from_array(column(7), 0)?;
        assert!((float(&variance) - 1.0 / 3.0).abs() < 1e-12, "{variance:?}");
        assert_eq!(sorted_entries(column(8), 1), ["e: 5", "f: 5", "x: "]);
        Ok(())
    }
}
