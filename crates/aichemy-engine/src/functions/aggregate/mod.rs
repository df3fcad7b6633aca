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
//!
//! One file per family: `maps` (`map_agg`, `multimap_agg`, `map_union`), `counts`
//! (`histogram`, `approx_most_frequent`), `checksum`, `moments` (`geometric_mean`,
//! `kurtosis`, `skewness`), `percentile` (`approx_percentile`) and `bitwise`; this file
//! holds their signatures ([`Kind`]), the UDF that dispatches to their accumulators and the
//! helpers they share.

mod bitwise;
mod checksum;
mod counts;
mod maps;
mod moments;
mod percentile;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    new_empty_array, Array, ArrayRef, BooleanArray, ListArray, MapArray, StructArray, UInt64Array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::{cast, concat, filter};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::arrow::row::{Row, RowConverter, Rows, SortField};
use datafusion::common::{internal_datafusion_err, internal_err, not_impl_err};
use datafusion::common::{Result, ScalarValue};
use datafusion::functions_aggregate::{bit_and_or_xor, bool_and_or, variance};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ReversedUDAF, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::functions::{is_text, unexpected_parameters};

use bitwise::BigintBitwise;
use checksum::ChecksumAccumulator;
use counts::CountsAccumulator;
use maps::PairsAccumulator;
use moments::{GeometricMeanAccumulator, MomentsAccumulator, Statistic};
use percentile::PercentileAccumulator;

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

pub(super) fn number_or_null(data_type: &DataType) -> bool {
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

/// What the tests of this module's files share: argument columns, running accumulators
/// through both phases of an aggregation, and reading their results.
#[cfg(test)]
mod test_support {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        Array, ArrayRef, Float64Array, Int64Array, StringArray, StructArray,
    };
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::common::{Result, ScalarValue};
    use datafusion::logical_expr::Accumulator;

    type NewAccumulator<'a> = &'a dyn Fn() -> Result<Box<dyn Accumulator>>;

    pub(super) fn int64s(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    pub(super) fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    pub(super) fn float64s(values: &[Option<f64>]) -> ArrayRef {
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
    pub(super) fn aggregate(
        new: NewAccumulator<'_>,
        batches: &[Vec<ArrayRef>],
    ) -> Result<ScalarValue> {
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

    pub(super) fn text(array: &ArrayRef, row: usize) -> String {
        array_value_to_string(array, row).unwrap()
    }

    /// The entries of one map, as `key: value` text, in order.
    pub(super) fn entry_texts(entries: &StructArray) -> Vec<String> {
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

    pub(super) fn entries(map: &ScalarValue) -> Vec<String> {
        let ScalarValue::Map(map) = map else {
            panic!("not a map: {map:?}")
        };
        entry_texts(&map.value(0))
    }

    pub(super) fn float(value: &ScalarValue) -> f64 {
        match value {
            ScalarValue::Float64(Some(value)) => *value,
            ScalarValue::Float32(Some(value)) => f64::from(*value),
            other => panic!("not a number: {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::Schema;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionConfig;

    use super::test_support::{entry_texts, float, int64s, strings, text};
    use super::*;

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
