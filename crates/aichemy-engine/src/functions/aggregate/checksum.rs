//! `checksum`: Trino's order-insensitive checksum, with Trino's XX_HASH_64 of each value.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Decimal128Type, Decimal32Type,
    Decimal64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::cast::as_int64_array;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::Accumulator;

use super::args;

/// Trino's `checksum` prime: a NULL adds it, a value its hash times it.
const CHECKSUM_PRIME: u64 = 0x9E37_79B1_85EB_CA87;

/// `checksum`: the wrapping sum over the rows of Trino's XX_HASH_64 of the value times
/// [`CHECKSUM_PRIME`], or the prime for NULL, as 8 little-endian bytes; NULL for no rows.
/// The bytes are Trino's for booleans, integers, REAL, DOUBLE, DECIMAL, VARCHAR, VARBINARY,
/// DATE, TIME, TIMESTAMP and TIMESTAMP WITH TIME ZONE; other types hash their text.
#[derive(Debug, Default)]
pub(super) struct ChecksumAccumulator {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::Int32Array;

    use crate::functions::aggregate::test_support::{aggregate, float64s, int64s, strings};

    use super::*;

    fn hex(value: &ScalarValue) -> String {
        let ScalarValue::Binary(Some(bytes)) = value else {
            panic!("not a varbinary: {value:?}")
        };
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
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
}
