//! Trino's varbinary functions: `to_utf8`/`from_utf8`; the base64, base32 and hex
//! encodings; integers and IEEE 754 floats as big-endian bytes; and the hashes `crc32`,
//! `xxhash64`, `murmur3`, `md5`, `sha1`, `sha256`, `sha512` and `hmac_md5|sha1|sha256|sha512`. Decoding accepts and
//! refuses what the Java libraries behind Trino do (`java.util.Base64`, Guava's base32,
//! `HexFormat`, airlift's UTF-8 repair), with their messages. `to_hex` replaces
//! DataFusion's and still hands it integers; `md5`, `sha256` and `sha512` replace
//! DataFusion's, which take text and answer it in hex, with Trino's varbinary ones.

use std::any::Any;
use std::io::Cursor;

use datafusion::arrow::array::{
    new_empty_array, Array, ArrayRef, AsArray, BinaryArray, Float32Array, Float64Array, Int64Array,
    StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type, Int64Type};
use datafusion::common::{internal_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::{Digest, Sha1};
use sha2::{Sha256, Sha512};

use crate::error::{ErrorCode, TrinoError};
use crate::functions::{invalid_argument, scalar_result, unexpected_parameters};

/// Registers every varbinary function.
pub fn register(ctx: &SessionContext) {
    for op in Op::ALL {
        ctx.register_udf(ScalarUDF::new_from_impl(BinaryFunction {
            op,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    ToUtf8,
    FromUtf8,
    ToBase64,
    FromBase64,
    ToBase64Url,
    FromBase64Url,
    ToBase32,
    FromBase32,
    ToHex,
    FromHex,
    ToBigEndian32,
    FromBigEndian32,
    ToBigEndian64,
    FromBigEndian64,
    ToIeee754Binary32,
    FromIeee754Binary32,
    ToIeee754Binary64,
    FromIeee754Binary64,
    Crc32,
    Xxhash64,
    Murmur3,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    HmacMd5,
    HmacSha1,
    HmacSha256,
    HmacSha512,
}

impl Op {
    const ALL: [Op; 29] = [
        Op::ToUtf8,
        Op::FromUtf8,
        Op::ToBase64,
        Op::FromBase64,
        Op::ToBase64Url,
        Op::FromBase64Url,
        Op::ToBase32,
        Op::FromBase32,
        Op::ToHex,
        Op::FromHex,
        Op::ToBigEndian32,
        Op::FromBigEndian32,
        Op::ToBigEndian64,
        Op::FromBigEndian64,
        Op::ToIeee754Binary32,
        Op::FromIeee754Binary32,
        Op::ToIeee754Binary64,
        Op::FromIeee754Binary64,
        Op::Crc32,
        Op::Xxhash64,
        Op::Murmur3,
        Op::Md5,
        Op::Sha1,
        Op::Sha256,
        Op::Sha512,
        Op::HmacMd5,
        Op::HmacSha1,
        Op::HmacSha256,
        Op::HmacSha512,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::ToUtf8 => "to_utf8",
            Op::FromUtf8 => "from_utf8",
            Op::ToBase64 => "to_base64",
            Op::FromBase64 => "from_base64",
            Op::ToBase64Url => "to_base64url",
            Op::FromBase64Url => "from_base64url",
            Op::ToBase32 => "to_base32",
            Op::FromBase32 => "from_base32",
            Op::ToHex => "to_hex",
            Op::FromHex => "from_hex",
            Op::ToBigEndian32 => "to_big_endian_32",
            Op::FromBigEndian32 => "from_big_endian_32",
            Op::ToBigEndian64 => "to_big_endian_64",
            Op::FromBigEndian64 => "from_big_endian_64",
            Op::ToIeee754Binary32 => "to_ieee754_32",
            Op::FromIeee754Binary32 => "from_ieee754_32",
            Op::ToIeee754Binary64 => "to_ieee754_64",
            Op::FromIeee754Binary64 => "from_ieee754_64",
            Op::Crc32 => "crc32",
            Op::Xxhash64 => "xxhash64",
            Op::Murmur3 => "murmur3",
            Op::Md5 => "md5",
            Op::Sha1 => "sha1",
            Op::Sha256 => "sha256",
            Op::Sha512 => "sha512",
            Op::HmacMd5 => "hmac_md5",
            Op::HmacSha1 => "hmac_sha1",
            Op::HmacSha256 => "hmac_sha256",
            Op::HmacSha512 => "hmac_sha512",
        }
    }

    /// The parameter lists the function takes.
    fn signatures(self) -> &'static [&'static [Param]] {
        use Param::*;
        match self {
            Op::ToUtf8 => &[&[Text]],
            Op::FromUtf8 => &[&[Binary], &[Binary, Replacement]],
            Op::FromBase64 | Op::FromBase64Url | Op::FromBase32 | Op::FromHex => &[&[BinaryOrText]],
            Op::ToHex => &[&[BinaryOrInteger]],
            Op::ToBigEndian32 => &[&[Integer]],
            Op::ToBigEndian64 => &[&[Bigint]],
            Op::ToIeee754Binary32 => &[&[Real]],
            Op::ToIeee754Binary64 => &[&[Double]],
            Op::HmacMd5 | Op::HmacSha1 | Op::HmacSha256 | Op::HmacSha512 => &[&[Binary, Binary]],
            _ => &[&[Binary]],
        }
    }

    /// Trino's list of the function's signatures, for a call that matches none.
    fn expected(self) -> String {
        let name = self.name();
        match self {
            Op::ToUtf8 => format!("{name}(varchar(x))"),
            Op::FromUtf8 => format!(
                "{name}(varbinary), {name}(varbinary, varchar(x)), {name}(varbinary, bigint)"
            ),
            Op::FromBase64 | Op::FromBase64Url | Op::FromBase32 | Op::FromHex => {
                format!("{name}(varchar(x)), {name}(varbinary)")
            }
            Op::ToBigEndian32 => format!("{name}(integer)"),
            Op::ToBigEndian64 => format!("{name}(bigint)"),
            Op::ToIeee754Binary32 => format!("{name}(real)"),
            Op::ToIeee754Binary64 => format!("{name}(double)"),
            Op::HmacMd5 | Op::HmacSha1 | Op::HmacSha256 | Op::HmacSha512 => {
                format!("{name}(varbinary, varbinary)")
            }
            _ => format!("{name}(varbinary)"),
        }
    }

    fn return_type(self) -> DataType {
        match self {
            Op::FromUtf8 | Op::ToBase64 | Op::ToBase64Url | Op::ToBase32 | Op::ToHex => {
                DataType::Utf8
            }
            Op::FromBigEndian32 => DataType::Int32,
            Op::FromBigEndian64 | Op::Crc32 => DataType::Int64,
            Op::FromIeee754Binary32 => DataType::Float32,
            Op::FromIeee754Binary64 => DataType::Float64,
            _ => DataType::Binary,
        }
    }

    /// The function on one row whose arguments are all non-NULL.
    fn apply(self, args: &[Arg<'_>]) -> Result<ScalarValue> {
        match (self, args) {
            (Op::ToUtf8, [Arg::Bytes(input)]) => bytes(input.to_vec()),
            (Op::FromUtf8, [Arg::Bytes(input)]) => {
                text(fix_utf8(input, Some(char::REPLACEMENT_CHARACTER)))
            }
            (Op::FromUtf8, [Arg::Bytes(input), replacement]) => {
                text(fix_utf8(input, replacement_character(*replacement)?))
            }
            (Op::ToBase64, [Arg::Bytes(input)]) => text(base64_encode(input, &BASE64)),
            (Op::ToBase64Url, [Arg::Bytes(input)]) => text(base64_encode(input, &BASE64_URL)),
            (Op::FromBase64, [Arg::Bytes(input)]) => {
                bytes(base64_decode(input, &BASE64).map_err(invalid_argument)?)
            }
            (Op::FromBase64Url, [Arg::Bytes(input)]) => {
                bytes(base64_decode(input, &BASE64_URL).map_err(invalid_argument)?)
            }
            (Op::ToBase32, [Arg::Bytes(input)]) => text(base32_encode(input)),
            (Op::FromBase32, [Arg::Bytes(input)]) => {
                bytes(base32_decode(input).map_err(invalid_argument)?)
            }
            (Op::ToHex, [Arg::Bytes(input)]) => text(hex_encode(input)),
            (Op::FromHex, [Arg::Bytes(input)]) => {
                bytes(hex_decode(input).map_err(invalid_argument)?)
            }
            (Op::ToBigEndian32, [Arg::Int(value)]) => {
                // Integer literals are bigint here; Trino would have refused a wider value.
                let value = i32::try_from(*value)
                    .map_err(|_| out_of_range(format!("Out of range for integer: {value}")))?;
                bytes(value.to_be_bytes().to_vec())
            }
            (Op::FromBigEndian32, [Arg::Bytes(input)]) => {
                let word = <[u8; 4]>::try_from(*input).map_err(|_| {
                    invalid_argument(format!(
                        "expected 4-byte input, but got instead: {}",
                        input.len()
                    ))
                })?;
                Ok(ScalarValue::Int32(Some(i32::from_be_bytes(word))))
            }
            (Op::ToBigEndian64, [Arg::Int(value)]) => bytes(value.to_be_bytes().to_vec()),
            (Op::FromBigEndian64, [Arg::Bytes(input)]) => {
                let word = <[u8; 8]>::try_from(*input).map_err(|_| {
                    invalid_argument(format!(
                        "expected 8-byte input, but got instead: {}",
                        input.len()
                    ))
                })?;
                Ok(ScalarValue::Int64(Some(i64::from_be_bytes(word))))
            }
            (Op::ToIeee754Binary32, [Arg::Real(value)]) => {
                bytes(value.to_bits().to_be_bytes().to_vec())
            }
            (Op::FromIeee754Binary32, [Arg::Bytes(input)]) => {
                let word = <[u8; 4]>::try_from(*input).map_err(|_| {
                    invalid_argument("Input floating-point value must be exactly 4 bytes long")
                })?;
                Ok(ScalarValue::Float32(Some(f32::from_bits(
                    u32::from_be_bytes(word),
                ))))
            }
            (Op::ToIeee754Binary64, [Arg::Double(value)]) => {
                // Java's `doubleToLongBits` writes every NaN as the one canonical NaN.
                let bits = if value.is_nan() {
                    f64::NAN.to_bits()
                } else {
                    value.to_bits()
                };
                bytes(bits.to_be_bytes().to_vec())
            }
            (Op::FromIeee754Binary64, [Arg::Bytes(input)]) => {
                let word = <[u8; 8]>::try_from(*input).map_err(|_| {
                    invalid_argument("Input floating-point value must be exactly 8 bytes long")
                })?;
                Ok(ScalarValue::Float64(Some(f64::from_bits(
                    u64::from_be_bytes(word),
                ))))
            }
            (Op::Crc32, [Arg::Bytes(input)]) => {
                Ok(ScalarValue::Int64(Some(i64::from(crc32fast::hash(input)))))
            }
            (Op::Xxhash64, [Arg::Bytes(input)]) => {
                bytes(xxhash_rust::xxh64::xxh64(input, 0).to_be_bytes().to_vec())
            }
            (Op::Murmur3, [Arg::Bytes(input)]) => {
                // Airlift's 128-bit hash: h1 then h2, each little-endian.
                let hash = murmur3::murmur3_x64_128(&mut Cursor::new(*input), 0)?;
                bytes(hash.to_le_bytes().to_vec())
            }
            (Op::Md5, [Arg::Bytes(input)]) => bytes(Md5::digest(input).to_vec()),
            (Op::Sha1, [Arg::Bytes(input)]) => bytes(Sha1::digest(input).to_vec()),
            (Op::Sha256, [Arg::Bytes(input)]) => bytes(Sha256::digest(input).to_vec()),
            (Op::Sha512, [Arg::Bytes(input)]) => bytes(Sha512::digest(input).to_vec()),
            (Op::HmacMd5, [Arg::Bytes(input), Arg::Bytes(key)]) => {
                bytes(mac_of::<Hmac<Md5>>(input, key)?)
            }
            (Op::HmacSha1, [Arg::Bytes(input), Arg::Bytes(key)]) => {
                bytes(mac_of::<Hmac<Sha1>>(input, key)?)
            }
            (Op::HmacSha256, [Arg::Bytes(input), Arg::Bytes(key)]) => {
                bytes(mac_of::<Hmac<Sha256>>(input, key)?)
            }
            (Op::HmacSha512, [Arg::Bytes(input), Arg::Bytes(key)]) => {
                bytes(mac_of::<Hmac<Sha512>>(input, key)?)
            }
            _ => internal_err!("{} called with arguments of unexpected types", self.name()),
        }
    }
}

fn bytes(value: Vec<u8>) -> Result<ScalarValue> {
    Ok(ScalarValue::Binary(Some(value)))
}

fn text(value: String) -> Result<ScalarValue> {
    Ok(ScalarValue::Utf8(Some(value)))
}

/// Trino's NUMERIC_VALUE_OUT_OF_RANGE.
fn out_of_range(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::NUMERIC_VALUE_OUT_OF_RANGE,
        message,
    )))
}

/// What a parameter takes, and the type its argument is cast to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    /// varbinary.
    Binary,
    /// varchar or varbinary: the decoders take the bytes of either.
    BinaryOrText,
    /// varchar.
    Text,
    /// integer. Integer literals are bigint here, so any integer is taken and a value
    /// beyond 32 bits fails when the function runs.
    Integer,
    /// bigint.
    Bigint,
    /// real, which integers and decimals widen to (not double).
    Real,
    /// double, which every number widens to.
    Double,
    /// `from_utf8`'s replacement: a varchar, or a bigint code point.
    Replacement,
    /// `to_hex`'s argument: varbinary, or an integer for DataFusion's `to_hex`.
    BinaryOrInteger,
}

impl Param {
    fn coerce(self, data_type: &DataType) -> Option<DataType> {
        use DataType::*;
        let binary = matches!(
            data_type,
            Binary | LargeBinary | BinaryView | FixedSizeBinary(_)
        );
        let text = matches!(data_type, Utf8 | LargeUtf8 | Utf8View);
        let null = *data_type == Null;
        let integer = data_type.is_integer();
        let real = integer || data_type.is_decimal() || matches!(data_type, Float16 | Float32);
        match self {
            Param::Binary | Param::BinaryOrText | Param::BinaryOrInteger if binary || null => {
                Some(Binary)
            }
            Param::BinaryOrText | Param::Text | Param::Replacement if text => Some(Utf8),
            Param::Text | Param::Replacement if null => Some(Utf8),
            Param::Integer | Param::Bigint | Param::Replacement if integer || null => Some(Int64),
            Param::Real if real || null => Some(Float32),
            Param::Double if data_type.is_numeric() || null => Some(Float64),
            Param::BinaryOrInteger if integer => Some(data_type.clone()),
            _ => None,
        }
    }
}

/// One non-NULL argument of a row: text arrives as its UTF-8 bytes.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    Real(f32),
    Double(f64),
}

/// An argument column, read in the type its parameter was coerced to.
enum Column {
    Binary(BinaryArray),
    Text(StringArray),
    Int(Int64Array),
    Real(Float32Array),
    Double(Float64Array),
}

impl Column {
    fn new(array: &ArrayRef) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                Column::Text(cast(array, &DataType::Utf8)?.as_string::<i32>().clone())
            }
            DataType::Float32 => Column::Real(array.as_primitive::<Float32Type>().clone()),
            DataType::Float64 => Column::Double(array.as_primitive::<Float64Type>().clone()),
            data_type if data_type.is_integer() => Column::Int(
                cast(array, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .clone(),
            ),
            DataType::Null => Column::Binary(BinaryArray::new_null(array.len())),
            _ => Column::Binary(cast(array, &DataType::Binary)?.as_binary::<i32>().clone()),
        })
    }

    fn get(&self, row: usize) -> Option<Arg<'_>> {
        match self {
            Column::Binary(values) => values.is_valid(row).then(|| Arg::Bytes(values.value(row))),
            Column::Text(values) => values
                .is_valid(row)
                .then(|| Arg::Bytes(values.value(row).as_bytes())),
            Column::Int(values) => values.is_valid(row).then(|| Arg::Int(values.value(row))),
            Column::Real(values) => values.is_valid(row).then(|| Arg::Real(values.value(row))),
            Column::Double(values) => values.is_valid(row).then(|| Arg::Double(values.value(row))),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct BinaryFunction {
    op: Op,
    signature: Signature,
}

impl ScalarUDFImpl for BinaryFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.op.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        for params in self.op.signatures() {
            if params.len() != arg_types.len() {
                continue;
            }
            let coerced: Option<Vec<DataType>> = params
                .iter()
                .zip(arg_types)
                .map(|(param, data_type)| param.coerce(data_type))
                .collect();
            if let Some(types) = coerced {
                return Ok(types);
            }
        }
        unexpected_parameters(self.op.name(), arg_types, &self.op.expected())
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.op.return_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if self.op == Op::ToHex && args.arg_fields[0].data_type().is_integer() {
            return datafusion::functions::string::to_hex().invoke_with_args(args);
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let columns = arrays.iter().map(Column::new).collect::<Result<Vec<_>>>()?;
        let rows = arrays.first().map_or(0, |array| array.len());
        let return_type = self.op.return_type();
        let null = ScalarValue::try_from(&return_type)?;
        let mut values = Vec::with_capacity(rows);
        let mut row_args = Vec::with_capacity(columns.len());
        for row in 0..rows {
            row_args.clear();
            row_args.extend(columns.iter().map_while(|column| column.get(row)));
            values.push(if row_args.len() == columns.len() {
                self.op.apply(&row_args)?
            } else {
                null.clone()
            });
        }
        let result = if values.is_empty() {
            new_empty_array(&return_type)
        } else {
            ScalarValue::iter_to_array(values)?
        };
        scalar_result(&args.args, result)
    }
}

/// `from_utf8`'s replacement: a string of at most one character, or a code point.
fn replacement_character(replacement: Arg<'_>) -> Result<Option<char>> {
    match replacement {
        Arg::Bytes(text) => {
            let text = String::from_utf8_lossy(text);
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (first, None) => Ok(first),
                _ => Err(invalid_argument(
                    "Replacement character string must empty or a single character",
                )),
            }
        }
        Arg::Int(code_point) => u32::try_from(code_point)
            .ok()
            .and_then(char::from_u32)
            .map(Some)
            .ok_or_else(|| invalid_argument("Invalid replacement character")),
        _ => internal_err!("from_utf8 called with a replacement of an unexpected type"),
    }
}

/// The bytes as text, each invalid UTF-8 sequence replaced by `replacement` (or dropped),
/// a sequence measured as airlift's `SliceUtf8.fixInvalidUtf8` measures it.
fn fix_utf8(input: &[u8], replacement: Option<char>) -> String {
    if let Ok(text) = std::str::from_utf8(input) {
        return text.to_string();
    }
    let mut out = String::with_capacity(input.len());
    let mut position = 0;
    while position < input.len() {
        match code_point_at(input, position) {
            Ok((c, length)) => {
                out.push(c);
                position += length;
            }
            Err(length) => {
                position += length;
                if let Some(replacement) = replacement {
                    out.push(replacement);
                }
            }
        }
    }
    out
}

/// The character at `position` and its length in bytes, or the length of the invalid
/// sequence there: up to the first byte that is missing or not a continuation, or the
/// whole sequence when it is overlong, a surrogate, beyond U+10FFFF or 5-6 bytes long.
fn code_point_at(input: &[u8], position: usize) -> Result<(char, usize), usize> {
    let first = input[position];
    let length: usize = match first {
        0x00..=0x7F => return Ok((char::from(first), 1)),
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        0xF8..=0xFB => 5,
        0xFC..=0xFD => 6,
        // A continuation byte where a character should start, 0xFE or 0xFF.
        _ => return Err(1),
    };
    let mut code_point = u32::from(first) & (0x7F_u32 >> length);
    for offset in 1..length {
        match input.get(position + offset) {
            Some(&byte) if byte & 0xC0 == 0x80 => {
                code_point = (code_point << 6) | u32::from(byte & 0x3F);
            }
            _ => return Err(offset),
        }
    }
    let valid = match length {
        2 => code_point >= 0x80,
        3 => code_point >= 0x800 && !(0xD800..=0xDFFF).contains(&code_point),
        4 => (0x1_0000..0x11_0000).contains(&code_point),
        _ => false,
    };
    match char::from_u32(code_point) {
        Some(c) if valid => Ok((c, length)),
        _ => Err(length),
    }
}

/// A base64 alphabet and its decoding table.
struct Base64 {
    alphabet: &'static [u8; 64],
    /// The value of each byte, [`NOT_BASE64`] for bytes outside the alphabet.
    values: [u8; 256],
}

const NOT_BASE64: u8 = u8::MAX;

impl Base64 {
    const fn new(alphabet: &'static [u8; 64]) -> Self {
        let mut values = [NOT_BASE64; 256];
        let mut i = 0;
        while i < 64 {
            values[alphabet[i] as usize] = i as u8;
            i += 1;
        }
        Self { alphabet, values }
    }
}

static BASE64: Base64 =
    Base64::new(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
static BASE64_URL: Base64 =
    Base64::new(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

/// RFC 4648 base64 with `=` padding, as Java's encoders write it.
fn base64_encode(input: &[u8], base64: &Base64) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bits = chunk.iter().enumerate().fold(0u32, |bits, (i, &byte)| {
            bits | (u32::from(byte) << (16 - 8 * i))
        });
        let characters = chunk.len() + 1;
        for i in 0..4 {
            out.push(if i < characters {
                char::from(base64.alphabet[((bits >> (18 - 6 * i)) & 0x3F) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// Base64 decoded as Java's `Base64.getDecoder()` (or `getUrlDecoder()`) decodes it:
/// padding optional but correct when present, the unused bits of the last character
/// ignored, nothing allowed after the padding, and Java's messages.
fn base64_decode(input: &[u8], base64: &Base64) -> Result<Vec<u8>, String> {
    if input.len() == 1 {
        return Err("Input byte[] should at least have 2 bytes for base64 bytes".into());
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut bits = 0u32;
    // Where the next character's 6 bits go: 18, 12, 6, then 0 within each group of four.
    let mut shift = 18i32;
    let mut position = 0;
    while position < input.len() {
        let byte = input[position];
        position += 1;
        if byte == b'=' {
            // Padding ends the data; after two characters of a group it must be `==`.
            if shift == 18 || (shift == 6 && input.get(position) != Some(&b'=')) {
                return Err("Input byte array has wrong 4-byte ending unit".into());
            }
            if shift == 6 {
                position += 1;
            }
            break;
        }
        let value = base64.values[usize::from(byte)];
        if value == NOT_BASE64 {
            return Err(format!("Illegal base64 character {}", signed_hex(byte)));
        }
        bits |= u32::from(value) << shift;
        shift -= 6;
        if shift < 0 {
            out.extend_from_slice(&[(bits >> 16) as u8, (bits >> 8) as u8, bits as u8]);
            bits = 0;
            shift = 18;
        }
    }
    match shift {
        6 => out.push((bits >> 16) as u8),
        0 => out.extend_from_slice(&[(bits >> 16) as u8, (bits >> 8) as u8]),
        12 => return Err("Last unit does not have enough valid bits".into()),
        _ => {}
    }
    if position < input.len() {
        return Err(format!(
            "Input byte array has incorrect ending byte at {position}"
        ));
    }
    Ok(out)
}

/// A byte as Java prints a `byte` in hex: signed, `-3d` for 0xC3.
fn signed_hex(byte: u8) -> String {
    let value = i32::from(byte as i8);
    if value < 0 {
        format!("-{:x}", -value)
    } else {
        format!("{value:x}")
    }
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 with `=` padding, as Guava's `BaseEncoding.base32()` writes it.
fn base32_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(5) * 8);
    for chunk in input.chunks(5) {
        let bits = chunk.iter().enumerate().fold(0u64, |bits, (i, &byte)| {
            bits | (u64::from(byte) << (32 - 8 * i))
        });
        let characters = (chunk.len() * 8).div_ceil(5);
        for i in 0..8 {
            out.push(if i < characters {
                char::from(BASE32[((bits >> (35 - 5 * i)) & 0x1F) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// Base32 decoded as Guava's `BaseEncoding.base32()` decodes it: trailing padding
/// dropped, then a length that some number of bytes encodes to, upper-case letters and
/// the digits 2-7 only, and Guava's messages (characters counted in UTF-16 units).
fn base32_decode(input: &[u8]) -> Result<Vec<u8>, String> {
    let units: Vec<u16> = String::from_utf8_lossy(input).encode_utf16().collect();
    let end = units
        .iter()
        .rposition(|&unit| unit != u16::from(b'='))
        .map_or(0, |last| last + 1);
    let units = &units[..end];
    if !matches!(units.len() % 8, 0 | 2 | 4 | 5 | 7) {
        return Err(format!("Invalid input length {}", units.len()));
    }
    let mut out = Vec::with_capacity(units.len() * 5 / 8);
    for chunk in units.chunks(8) {
        let mut bits = 0u64;
        for &unit in chunk {
            bits = (bits << 5) | u64::from(base32_value(unit)?);
        }
        bits <<= 5 * (8 - chunk.len());
        for i in 0..chunk.len() * 5 / 8 {
            out.push((bits >> (32 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

/// A base32 character's value; otherwise Guava's message, which shows control
/// characters, the space, DEL and anything beyond ASCII in hex.
fn base32_value(unit: u16) -> Result<u8, String> {
    match unit {
        0x41..=0x5A => Ok((unit - 0x41) as u8),
        0x32..=0x37 => Ok((unit - 0x32) as u8 + 26),
        _ if !(0x21..0x7F).contains(&unit) => Err(format!("Unrecognized character: 0x{unit:x}")),
        _ => Err(format!(
            "Unrecognized character: {}",
            char::from(unit as u8)
        )),
    }
}

/// Upper-case hex, as Trino's `to_hex` writes it.
fn hex_encode(input: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len() * 2);
    for &byte in input {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xF)]));
    }
    out
}

/// Hex in either case, decoded as Trino's `from_hex` decodes it.
fn hex_decode(input: &[u8]) -> Result<Vec<u8>, String> {
    if input.len() % 2 == 1 {
        return Err(format!("invalid input length {}", input.len()));
    }
    let mut out = Vec::with_capacity(input.len() / 2);
    for pair in input.chunks(2) {
        out.push((hex_digit(pair[0])? << 4) | hex_digit(pair[1])?);
    }
    Ok(out)
}

/// A hex digit's value; otherwise Java's `HexFormat.fromHexDigit` message, which reads
/// the byte as a signed number.
fn hex_digit(byte: u8) -> Result<u8, String> {
    match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        b'A'..=b'F' => Ok(byte - b'A' + 10),
        _ => {
            let signed = i32::from(byte as i8);
            let shown =
                char::from_u32(signed as u32 & 0xFFFF).unwrap_or(char::REPLACEMENT_CHARACTER);
            Err(format!("not a hexadecimal digit: \"{shown}\" = {signed}"))
        }
    }
}

/// The HMAC of `input` under `key`. Java's `SecretKeySpec` refuses an empty key.
fn mac_of<M: Mac + hmac::digest::KeyInit>(input: &[u8], key: &[u8]) -> Result<Vec<u8>> {
    if key.is_empty() {
        return Err(invalid_argument("Empty key"));
    }
    let mut mac =
        <M as Mac>::new_from_slice(key).map_err(|error| invalid_argument(error.to_string()))?;
    Mac::update(&mut mac, input);
    Ok(Mac::finalize(mac).into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        hex_decode(text.as_bytes()).unwrap()
    }

    fn apply(op: Op, args: &[Arg<'_>]) -> ScalarValue {
        op.apply(args).unwrap()
    }

    /// The message of a failed call, as the client would read it.
    fn failure(op: Op, args: &[Arg<'_>]) -> String {
        match op.apply(args).unwrap_err() {
            DataFusionError::External(error) => match error.downcast::<TrinoError>() {
                Ok(trino) => trino.message,
                Err(other) => other.to_string(),
            },
            other => other.to_string(),
        }
    }

    #[test]
    fn base64_is_written_and_read_as_java_does() {
        assert_eq!(base64_encode(b"hello world", &BASE64), "aGVsbG8gd29ybGQ=");
        assert_eq!(base64_encode(b"a", &BASE64), "YQ==");
        assert_eq!(base64_encode(&[0xFB, 0xFF, 0xFE], &BASE64), "+//+");
        assert_eq!(base64_encode(&[0xFB, 0xFF, 0xFE], &BASE64_URL), "-__-");
        assert_eq!(base64_encode(b"", &BASE64), "");
        let decode = |text: &str| base64_decode(text.as_bytes(), &BASE64);
        assert_eq!(decode("aGVsbG8gd29ybGQ=").unwrap(), b"hello world");
        // Padding is optional, and the bits after the last byte are ignored.
        assert_eq!(decode("aaaaaa").unwrap(), [0x69, 0xA6, 0x9A, 0x69]);
        assert_eq!(decode("YR").unwrap(), b"a");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(
            base64_decode(b"-__-", &BASE64_URL).unwrap(),
            [0xFB, 0xFF, 0xFE]
        );
        let error = |text: &str| decode(text).unwrap_err();
        assert_eq!(
            error("A"),
            "Input byte[] should at least have 2 bytes for base64 bytes"
        );
        assert_eq!(
            error("AB="),
            "Input byte array has wrong 4-byte ending unit"
        );
        assert_eq!(
            error("AAAA="),
            "Input byte array has wrong 4-byte ending unit"
        );
        assert_eq!(error("A==="), "Last unit does not have enough valid bits");
        assert_eq!(error("AAAAA"), "Last unit does not have enough valid bits");
        assert_eq!(
            error("AA==x"),
            "Input byte array has incorrect ending byte at 4"
        );
        assert_eq!(error("A-"), "Illegal base64 character 2d");
        assert_eq!(error("A\u{e9}"), "Illegal base64 character -3d");
    }

    #[test]
    fn base32_is_written_and_read_as_guava_does() {
        assert_eq!(base32_encode(b"hello world"), "NBSWY3DPEB3W64TMMQ======");
        assert_eq!(base32_encode(b"a"), "ME======");
        assert_eq!(base32_encode(b"abc"), "MFRGG===");
        assert_eq!(base32_encode(&[0, 1, 2, 3, 4, 5, 6]), "AAAQEAYEAUDA====");
        assert_eq!(
            base32_decode(b"NBSWY3DPEB3W64TMMQ======").unwrap(),
            b"hello world"
        );
        assert_eq!(base32_decode(b"MFRGG").unwrap(), b"abc");
        assert_eq!(base32_decode(b"").unwrap(), b"");
        assert_eq!(base32_decode(b"1=").unwrap_err(), "Invalid input length 1");
        assert_eq!(
            base32_decode(b"M1======").unwrap_err(),
            "Unrecognized character: 1"
        );
        assert_eq!(
            base32_decode(b"me").unwrap_err(),
            "Unrecognized character: m"
        );
        assert_eq!(
            base32_decode(b"M ").unwrap_err(),
            "Unrecognized character: 0x20"
        );
    }

    #[test]
    fn hex_is_upper_case_out_and_either_case_in() {
        assert_eq!(hex_encode(b"hello world"), "68656C6C6F20776F726C64");
        assert_eq!(hex("617a6F"), b"azo");
        assert_eq!(hex_decode(b"fff").unwrap_err(), "invalid input length 3");
        assert_eq!(
            hex_decode(b"fg").unwrap_err(),
            "not a hexadecimal digit: \"g\" = 103"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_a_sequence_at_a_time() {
        assert_eq!(fix_utf8(&hex("58BF"), Some('\u{FFFD}')), "X\u{FFFD}");
        assert_eq!(fix_utf8(&hex("58DF"), Some('\u{FFFD}')), "X\u{FFFD}");
        assert_eq!(fix_utf8(&hex("58F7"), Some('#')), "X#");
        assert_eq!(fix_utf8(&hex("58BF"), None), "X");
        // An overlong encoding is one invalid sequence, not two.
        assert_eq!(fix_utf8(&hex("C080"), Some('?')), "?");
        assert_eq!(fix_utf8(&hex("E28241"), Some('?')), "?A");
        assert_eq!(fix_utf8("héllo".as_bytes(), None), "héllo");
        let from_utf8 =
            |replacement| apply(Op::FromUtf8, &[Arg::Bytes(&[0x58, 0xBF]), replacement]);
        assert_eq!(
            from_utf8(Arg::Int(35)),
            ScalarValue::Utf8(Some("X#".into()))
        );
        assert_eq!(
            from_utf8(Arg::Bytes(b"")),
            ScalarValue::Utf8(Some("X".into()))
        );
        assert_eq!(
            failure(Op::FromUtf8, &[Arg::Bytes(b"a"), Arg::Bytes(b"foo")]),
            "Replacement character string must empty or a single character"
        );
        assert_eq!(
            failure(Op::FromUtf8, &[Arg::Bytes(b"a"), Arg::Int(1_114_112)]),
            "Invalid replacement character"
        );
    }

    #[test]
    fn numbers_are_encoded_big_endian() {
        assert_eq!(
            apply(Op::ToBigEndian32, &[Arg::Int(-2)]),
            ScalarValue::Binary(Some(hex("FFFFFFFE")))
        );
        assert_eq!(
            apply(Op::FromBigEndian64, &[Arg::Bytes(&hex("0000000000000100"))]),
            ScalarValue::Int64(Some(256))
        );
        assert_eq!(
            apply(Op::ToIeee754Binary32, &[Arg::Real(1.5)]),
            ScalarValue::Binary(Some(hex("3FC00000")))
        );
        assert_eq!(
            apply(Op::ToIeee754Binary64, &[Arg::Double(-f64::NAN)]),
            ScalarValue::Binary(Some(hex("7FF8000000000000")))
        );
        assert_eq!(
            apply(
                Op::FromIeee754Binary64,
                &[Arg::Bytes(&hex("3FF0000000000000"))]
            ),
            ScalarValue::Float64(Some(1.0))
        );
        assert_eq!(
            failure(Op::FromBigEndian32, &[Arg::Bytes(&hex("1111"))]),
            "expected 4-byte input, but got instead: 2"
        );
        assert_eq!(
            failure(Op::FromIeee754Binary32, &[Arg::Bytes(&hex("0000"))]),
            "Input floating-point value must be exactly 4 bytes long"
        );
        assert_eq!(
            failure(Op::ToBigEndian32, &[Arg::Int(1 << 40)]),
            "Out of range for integer: 1099511627776"
        );
    }

    #[test]
    fn hashes_match_trinos() {
        let hash = |op: Op, input: &[u8]| apply(op, &[Arg::Bytes(input)]);
        let binary = |text: &str| ScalarValue::Binary(Some(hex(text)));
        assert_eq!(
            hash(Op::Crc32, b"CRC me!"),
            ScalarValue::Int64(Some(38_028_046))
        );
        assert_eq!(
            hash(Op::Crc32, b"ABCDEFGHIJKLM"),
            ScalarValue::Int64(Some(4_223_167_559))
        );
        assert_eq!(hash(Op::Xxhash64, b""), binary("EF46DB3751D8E999"));
        assert_eq!(hash(Op::Xxhash64, b"hashme"), binary("F9D96E0E1165E892"));
        assert_eq!(
            hash(Op::Murmur3, b""),
            binary("00000000000000000000000000000000")
        );
        assert_eq!(
            hash(Op::Murmur3, b"hashme"),
            binary("93192FE805BE23041C8318F67EC4F2BC")
        );
        assert_eq!(
            hash(Op::Murmur3, &[0x69, 0xA6, 0x9A, 0x69]),
            binary("BA5855635569B42F4920372CA0E396EF")
        );
        assert_eq!(
            hash(Op::Sha1, b"hashme"),
            binary("FB78992E561929A6967D5328F49413FA99048D06")
        );
        let mac = |op: Op| apply(op, &[Arg::Bytes(b"hello world"), Arg::Bytes(b"key")]);
        assert_eq!(mac(Op::HmacMd5), binary("ae92cf51adf91130130aefc2b39a7595"));
        assert_eq!(
            mac(Op::HmacSha1),
            binary("34dd234b92683593560528f6193ea68c8005f615")
        );
        assert_eq!(
            mac(Op::HmacSha256),
            binary("0ba06f1f9a6300461e43454535dc3c4223e47b1d357073d7536eae90ec095be1")
        );
        assert_eq!(
            failure(Op::HmacSha512, &[Arg::Bytes(b"x"), Arg::Bytes(b"")]),
            "Empty key"
        );
    }

    #[test]
    fn parameters_take_what_trino_takes() {
        let coerce = |op: Op, types: &[DataType]| {
            BinaryFunction {
                op,
                signature: Signature::user_defined(Volatility::Immutable),
            }
            .coerce_types(types)
        };
        assert_eq!(
            coerce(Op::FromBase64, &[DataType::Utf8View]).unwrap(),
            [DataType::Utf8]
        );
        assert_eq!(
            coerce(Op::FromBase64, &[DataType::LargeBinary]).unwrap(),
            [DataType::Binary]
        );
        assert_eq!(
            coerce(Op::FromUtf8, &[DataType::Binary, DataType::Int32]).unwrap(),
            [DataType::Binary, DataType::Int64]
        );
        assert_eq!(
            coerce(Op::ToHex, &[DataType::Int16]).unwrap(),
            [DataType::Int16]
        );
        assert!(coerce(Op::ToBase64, &[DataType::Utf8]).is_err());
        assert!(coerce(Op::ToIeee754Binary32, &[DataType::Float64]).is_err());
        assert!(coerce(Op::Sha1, &[DataType::Binary, DataType::Binary]).is_err());
    }
}
