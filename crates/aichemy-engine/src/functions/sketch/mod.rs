//! Trino's sketches: approximate sets (`HyperLogLog`, `SetDigest`) and quantile digests
//! (`qdigest(T)`, `tdigest`), with the functions that build, merge and read them.
//!
//! A sketch is an opaque VARBINARY (Arrow `Binary`) whose field carries its Trino type name in
//! its metadata ([`crate::TRINO_TYPE_KEY`]). Its bytes are this module's own little-endian
//! format: a leading tag byte naming the kind of sketch ([`SketchType::tag`]), then the body
//! its file writes. Every reader checks the bytes, and answers INVALID_FUNCTION_ARGUMENT for
//! bytes that are not a sketch of the kind expected; a plain `Binary` value, without the
//! metadata, is read as whatever sketch its tag names.
//!
//! Files: `hll` (HyperLogLog), `set_digest` (SetDigest), `digest` (the t-digest behind both
//! `qdigest(T)` and `tdigest`), `aggregates` (`approx_set`, `make_set_digest`,
//! `merge_set_digest`, `qdigest_agg`, `tdigest_agg`, `merge`) and `scalars` (`cardinality`,
//! `empty_approx_set`, `intersection_cardinality`, `jaccard_index`, `hash_counts`,
//! `value_at_quantile`, `values_at_quantiles`, `quantile_at_value`). This file holds what they
//! share: the sketch types and their fields, the [`Sketch`] of any kind with its
//! (de)serialization, the byte [`Reader`] and the hash of input values.

mod aggregates;
mod digest;
mod hll;
mod scalars;
mod set_digest;

use std::collections::HashMap;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::cast::{
    as_binary_array, as_float64_array, as_int64_array, as_string_array, as_uint64_array,
};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::prelude::SessionContext;
use xxhash_rust::xxh64::xxh64;

use crate::functions::invalid_argument;
use digest::Digest;
use hll::HyperLogLog;
use set_digest::SetDigest;

/// Registers the sketch functions; `cardinality` replaces DataFusion's (and hands it arrays
/// and maps), so this comes after every other registration.
pub fn register(ctx: &SessionContext) {
    aggregates::register(ctx);
    scalars::register(ctx);
}

/// The values a `qdigest` takes, its type parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ValueType {
    Bigint,
    Double,
    Real,
}

impl ValueType {
    /// The Arrow type of these values.
    fn data_type(self) -> DataType {
        match self {
            ValueType::Bigint => DataType::Int64,
            ValueType::Double => DataType::Float64,
            ValueType::Real => DataType::Float32,
        }
    }

    /// The value type of a (coerced) `qdigest_agg` argument.
    fn of(data_type: &DataType) -> Self {
        match data_type {
            DataType::Int64 => ValueType::Bigint,
            DataType::Float32 => ValueType::Real,
            _ => ValueType::Double,
        }
    }
}

/// The kinds of sketch, as Trino types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SketchType {
    HyperLogLog,
    SetDigest,
    QDigest(ValueType),
    TDigest,
}

impl SketchType {
    const ALL: [SketchType; 6] = [
        SketchType::HyperLogLog,
        SketchType::SetDigest,
        SketchType::QDigest(ValueType::Bigint),
        SketchType::QDigest(ValueType::Double),
        SketchType::QDigest(ValueType::Real),
        SketchType::TDigest,
    ];

    /// Trino's name of the type.
    fn name(self) -> &'static str {
        match self {
            SketchType::HyperLogLog => "HyperLogLog",
            SketchType::SetDigest => "SetDigest",
            SketchType::QDigest(ValueType::Bigint) => "qdigest(bigint)",
            SketchType::QDigest(ValueType::Double) => "qdigest(double)",
            SketchType::QDigest(ValueType::Real) => "qdigest(real)",
            SketchType::TDigest => "tdigest",
        }
    }

    /// The first byte of a serialized sketch of this type.
    fn tag(self) -> u8 {
        match self {
            SketchType::HyperLogLog => 0x11,
            SketchType::SetDigest => 0x21,
            SketchType::QDigest(ValueType::Bigint) => 0x31,
            SketchType::QDigest(ValueType::Double) => 0x32,
            SketchType::QDigest(ValueType::Real) => 0x33,
            SketchType::TDigest => 0x41,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.tag() == tag)
    }

    /// Whether this is one of the quantile digests.
    fn is_digest(self) -> bool {
        matches!(self, SketchType::QDigest(_) | SketchType::TDigest)
    }

    /// A nullable `Binary` field of this type, named `name`.
    fn field(self, name: &str) -> Field {
        Field::new(name, DataType::Binary, true).with_metadata(HashMap::from([(
            crate::TRINO_TYPE_KEY.to_string(),
            self.name().to_string(),
        )]))
    }

    /// The sketch type a field's metadata names; `None` for a field that names none (a plain
    /// VARBINARY, whose values say what they are).
    fn of_field(field: &Field) -> Option<Self> {
        let name = field.metadata().get(crate::TRINO_TYPE_KEY)?;
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

/// Whether values of this type are bytes a sketch can be read from.
fn is_binary(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

/// Whether an argument of this type can be a sketch (NULL is any type's).
fn binary_or_null(data_type: &DataType) -> bool {
    is_binary(data_type) || data_type.is_null()
}

/// The error for bytes that are not a valid sketch of type `name`.
fn invalid_sketch(name: &str) -> DataFusionError {
    invalid_argument(format!("Invalid {name} value"))
}

/// A sketch of any kind.
#[derive(Debug, Clone)]
enum Sketch {
    Hll(HyperLogLog),
    Set(SetDigest),
    Digest(Digest),
}

impl Sketch {
    fn sketch_type(&self) -> SketchType {
        match self {
            Sketch::Hll(_) => SketchType::HyperLogLog,
            Sketch::Set(_) => SketchType::SetDigest,
            Sketch::Digest(digest) => digest.sketch_type(),
        }
    }

    /// Reads a serialized sketch: of type `expected`, or of any type when that is `None`.
    fn decode(bytes: &[u8], expected: Option<SketchType>) -> Result<Self> {
        let found = bytes.first().and_then(|&tag| SketchType::from_tag(tag));
        let sketch_type = match (found, expected) {
            (Some(found), None) => found,
            (Some(found), Some(expected)) if found == expected => found,
            (_, Some(expected)) => return Err(invalid_sketch(expected.name())),
            (None, None) => return Err(invalid_sketch("sketch")),
        };
        let mut reader = Reader {
            bytes: bytes.get(1..).unwrap_or_default(),
            sketch_type,
        };
        let sketch = match sketch_type {
            SketchType::HyperLogLog => Sketch::Hll(HyperLogLog::read(&mut reader)?),
            SketchType::SetDigest => Sketch::Set(SetDigest::read(&mut reader)?),
            digest => Sketch::Digest(Digest::read(&mut reader, digest)?),
        };
        reader.finish()?;
        Ok(sketch)
    }

    /// The serialized sketch: its tag, then its body.
    fn encode(&mut self) -> Vec<u8> {
        let mut out = vec![self.sketch_type().tag()];
        match self {
            Sketch::Hll(hll) => hll.write(&mut out),
            Sketch::Set(set) => set.write(&mut out),
            Sketch::Digest(digest) => digest.write(&mut out),
        }
        out
    }

    /// Merges a sketch of the same type into this one.
    fn merge(&mut self, other: Sketch) -> Result<()> {
        let (mine, theirs) = (self.sketch_type(), other.sketch_type());
        match (self, other) {
            (Sketch::Hll(a), Sketch::Hll(b)) => a.merge(&b),
            (Sketch::Set(a), Sketch::Set(b)) => a.merge(&b),
            (Sketch::Digest(a), Sketch::Digest(b)) if mine == theirs => a.merge(&b),
            _ => {
                return Err(invalid_argument(format!(
                    "Cannot merge a {} with a {}",
                    mine.name(),
                    theirs.name()
                )))
            }
        }
        Ok(())
    }

    /// The SetDigest this is.
    fn into_set_digest(self) -> Result<SetDigest> {
        match self {
            Sketch::Set(set) => Ok(set),
            other => Err(invalid_argument(format!(
                "Expected a SetDigest, not a {}",
                other.sketch_type().name()
            ))),
        }
    }

    /// The quantile digest this is.
    fn into_digest(self) -> Result<Digest> {
        match self {
            Sketch::Digest(digest) => Ok(digest),
            other => Err(invalid_argument(format!(
                "Expected a qdigest or a tdigest, not a {}",
                other.sketch_type().name()
            ))),
        }
    }

    /// The bytes the sketch holds, for the memory accounting of aggregates.
    fn size(&self) -> usize {
        match self {
            Sketch::Hll(hll) => hll.size(),
            Sketch::Set(set) => set.size(),
            Sketch::Digest(digest) => digest.size(),
        }
    }
}

/// Reads the body of a serialized sketch, each read checked: bytes too few, or a value out of
/// its range, are the error of an invalid sketch.
struct Reader<'a> {
    bytes: &'a [u8],
    sketch_type: SketchType,
}

impl<'a> Reader<'a> {
    fn invalid(&self) -> DataFusionError {
        invalid_sketch(self.sketch_type.name())
    }

    /// `Ok` if `valid`, else the error of an invalid sketch.
    fn check(&self, valid: bool) -> Result<()> {
        if valid {
            Ok(())
        } else {
            Err(self.invalid())
        }
    }

    /// The next `count` bytes.
    fn take(&mut self, count: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < count {
            return Err(self.invalid());
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        <[u8; N]>::try_from(bytes).map_err(|_| self.invalid())
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_le_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A count of items of `item_bytes` bytes each, checked against the bytes left (so that
    /// no bad count makes a large allocation).
    fn count(&mut self, item_bytes: usize) -> Result<usize> {
        let count = u32::from_le_bytes(self.array()?) as usize;
        let fits = count
            .checked_mul(item_bytes)
            .is_some_and(|bytes| bytes <= self.bytes.len());
        self.check(fits)?;
        Ok(count)
    }

    /// Checks that nothing is left.
    fn finish(self) -> Result<()> {
        self.check(self.bytes.is_empty())
    }
}

/// Writes a count of items as [`Reader::count`] reads it.
fn write_count(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(&(count as u32).to_le_bytes());
}

/// The hashes of an array's non-NULL values: xxh64 (seed 0) of a canonical byte form of each,
/// so that equal values of different types hash alike: integers (and booleans, dates, times,
/// timestamps) as i64 LE, floats as f64 LE, text as UTF-8, binary as it is, anything else as
/// its text.
fn value_hashes(array: &ArrayRef) -> Result<Vec<u64>> {
    fn hash(bytes: &[u8]) -> u64 {
        xxh64(bytes, 0)
    }
    let data_type = array.data_type();
    if let DataType::Dictionary(_, values) = data_type {
        return value_hashes(&cast(array, values)?);
    }
    if *data_type == DataType::UInt64 {
        // The bits of an i64, which a cast would lose above i64::MAX.
        let values = as_uint64_array(array)?;
        return Ok(values
            .iter()
            .flatten()
            .map(|v| hash(&v.to_le_bytes()))
            .collect());
    }
    if data_type.is_integer()
        || matches!(
            data_type,
            DataType::Boolean
                | DataType::Date32
                | DataType::Date64
                | DataType::Time32(_)
                | DataType::Time64(_)
                | DataType::Timestamp(..)
        )
    {
        let values = cast(array, &DataType::Int64)?;
        let values = as_int64_array(&values)?;
        return Ok(values
            .iter()
            .flatten()
            .map(|v| hash(&v.to_le_bytes()))
            .collect());
    }
    if data_type.is_floating() {
        let values = cast(array, &DataType::Float64)?;
        let values = as_float64_array(&values)?;
        let canonical = |v: f64| {
            if v == 0.0 {
                0.0
            } else if v.is_nan() {
                f64::NAN
            } else {
                v
            }
        };
        return Ok(values
            .iter()
            .flatten()
            .map(|v| hash(&canonical(v).to_le_bytes()))
            .collect());
    }
    if matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        let values = cast(array, &DataType::Utf8)?;
        let values = as_string_array(&values)?;
        return Ok(values
            .iter()
            .flatten()
            .map(|v| hash(v.as_bytes()))
            .collect());
    }
    if is_binary(data_type) {
        let values = cast(array, &DataType::Binary)?;
        let values = as_binary_array(&values)?;
        return Ok(values.iter().flatten().map(hash).collect());
    }
    let nulls = array.logical_nulls();
    (0..array.len())
        .filter(|&row| nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row)))
        .map(|row| -> Result<u64> {
            let value = ScalarValue::try_from_array(array, row)?;
            Ok(hash(value.to_string().as_bytes()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int64Array, StringArray};
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::{Float64Type, Int64Type, UInt64Type};

    use super::*;

    #[test]
    fn equal_values_of_any_type_hash_alike() -> Result<()> {
        let ints: ArrayRef = std::sync::Arc::new(Int64Array::from(vec![Some(7), None]));
        let small: ArrayRef =
            std::sync::Arc::new(datafusion::arrow::array::Int8Array::from(vec![Some(7)]));
        assert_eq!(value_hashes(&ints)?, value_hashes(&small)?);
        assert_eq!(value_hashes(&ints)?, vec![xxh64(&7i64.to_le_bytes(), 0)]);
        let text: ArrayRef = std::sync::Arc::new(StringArray::from(vec!["a"]));
        assert_eq!(value_hashes(&text)?, vec![xxh64(b"a", 0)]);
        Ok(())
    }

    #[test]
    fn bad_bytes_are_an_error() {
        let cases: [&[u8]; 6] = [
            &[],
            &[0x00],
            &[0x11],
            &[0x11, 30, 0],
            &[0x21, 11, 0],
            &[0x41, 1],
        ];
        for bytes in cases {
            assert!(Sketch::decode(bytes, None).is_err(), "{bytes:?}");
        }
        let mut hll = Sketch::Hll(HyperLogLog::new(hll::DEFAULT_PRECISION));
        let bytes = hll.encode();
        assert!(Sketch::decode(&bytes, Some(SketchType::SetDigest)).is_err());
        assert!(Sketch::decode(&bytes[..bytes.len() - 1], None).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Sketch::decode(&longer, None).is_err());
        assert!(Sketch::decode(&bytes, Some(SketchType::HyperLogLog)).is_ok());
    }

    #[tokio::test]
    async fn sql_builds_merges_and_reads_sketches() -> Result<()> {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx
            .sql(
                "SELECT cardinality(approx_set(value)) AS a, \
                 value_at_quantile(qdigest_agg(value), 0.5) AS q, \
                 value_at_quantile(tdigest_agg(value), 0.5) AS t, \
                 cardinality(make_set_digest(value)) AS s, \
                 qdigest_agg(value) AS d, \
                 cardinality([1, 2, 3]) AS c \
                 FROM generate_series(1, 1001)",
            )
            .await?
            .collect()
            .await?;
        let row = concat_batches(&batches[0].schema(), &batches)?;
        let approx = row.column(0).as_primitive::<Int64Type>().value(0);
        assert!((approx - 1001).abs() < 50, "{approx}");
        let median = row.column(1).as_primitive::<Int64Type>().value(0);
        assert!((median - 501).abs() <= 1, "{median}");
        let median = row.column(2).as_primitive::<Float64Type>().value(0);
        assert!((median - 501.0).abs() <= 1.0, "{median}");
        assert_eq!(row.column(3).as_primitive::<Int64Type>().value(0), 1001);
        let digest_field = row.schema().field(4).clone();
        assert_eq!(
            SketchType::of_field(&digest_field),
            Some(SketchType::QDigest(ValueType::Bigint))
        );
        assert_eq!(row.column(5).as_primitive::<UInt64Type>().value(0), 3);

        // `merge` of the sketches of parts is the sketch of the whole.
        let merged = ctx
            .sql(
                "SELECT cardinality(merge(h)), value_at_quantile(merge(d), 0.5) \
                 FROM (SELECT approx_set(value) AS h, qdigest_agg(value) AS d \
                 FROM generate_series(1, 1001) GROUP BY value % 4)",
            )
            .await?
            .collect()
            .await?;
        let merged = concat_batches(&merged[0].schema(), &merged)?;
        assert_eq!(
            merged.column(0).as_primitive::<Int64Type>().value(0),
            approx
        );
        let median = merged.column(1).as_primitive::<Int64Type>().value(0);
        assert!((median - 501).abs() <= 1, "{median}");
        Ok(())
    }
}
