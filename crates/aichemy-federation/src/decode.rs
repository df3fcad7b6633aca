//! Binary `COPY … TO STDOUT (FORMAT binary)` output into Arrow record batches.
//!
//! The stream is a signature and header, then one tuple per row (a 16-bit field count,
//! each field a 32-bit length or -1 for NULL and that many bytes in PostgreSQL's binary
//! send format), then a trailer of field count -1. Chunks may split tuples anywhere; the
//! decoder keeps the incomplete tail until the next chunk.

use std::sync::Arc;

use datafusion::arrow::array::NullBufferBuilder;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, ListArray, RecordBatch,
    RecordBatchOptions, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{Field, SchemaRef};

use crate::types::Kind;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the Unix epoch to PostgreSQL's.
const POSTGRES_EPOCH_DAYS: i32 = 10_957;
/// Rows per record batch.
pub const BATCH_ROWS: usize = 8192;

/// Turns binary COPY output into record batches of a schema.
pub struct CopyDecoder {
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    pending: Vec<u8>,
    header_read: bool,
    ended: bool,
    rows: usize,
}

impl CopyDecoder {
    pub fn new(schema: SchemaRef, kinds: &[Kind]) -> Self {
        Self {
            schema,
            builders: kinds.iter().map(ColumnBuilder::new).collect(),
            pending: Vec::new(),
            header_read: false,
            ended: false,
            rows: 0,
        }
    }

    /// Takes the next chunk of COPY output; answers the batches it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<RecordBatch>, String> {
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        let mut batches = Vec::new();
        if !self.header_read {
            // Signature, flags, then a header extension of the given length.
            if self.pending.len() < SIGNATURE.len() + 8 {
                return Ok(batches);
            }
            if &self.pending[..SIGNATURE.len()] != SIGNATURE {
                return Err("unexpected COPY output: not PostgreSQL's binary format".into());
            }
            let extension = read_i32(&self.pending[SIGNATURE.len() + 4..]) as usize;
            let header = SIGNATURE.len() + 8 + extension;
            if self.pending.len() < header {
                return Ok(batches);
            }
            at = header;
            self.header_read = true;
        }
        while !self.ended {
            let Some(end) = tuple_end(&self.pending[at..]) else {
                break;
            };
            let tuple = &self.pending[at..at + end];
            at += end;
            let fields = read_i16(tuple);
            if fields == -1 {
                self.ended = true;
                break;
            }
            if fields as usize != self.builders.len() {
                return Err(format!(
                    "unexpected COPY output: {fields} fields for {} columns",
                    self.builders.len()
                ));
            }
            let mut offset = 2;
            for builder in &mut self.builders {
                let length = read_i32(&tuple[offset..]);
                offset += 4;
                if length < 0 {
                    builder.append(None)?;
                } else {
                    let value = &tuple[offset..offset + length as usize];
                    offset += length as usize;
                    builder.append(Some(value))?;
                }
            }
            self.rows += 1;
            if self.rows == BATCH_ROWS {
                batches.push(self.take_batch()?);
            }
        }
        self.pending.drain(..at);
        Ok(batches)
    }

    /// The rows left after the last chunk; an error when the output was cut short.
    pub fn finish(mut self) -> Result<Option<RecordBatch>, String> {
        if !self.ended || !self.pending.is_empty() {
            return Err("COPY output ended in the middle of a row".into());
        }
        if self.rows == 0 {
            return Ok(None);
        }
        self.take_batch().map(Some)
    }

    fn take_batch(&mut self) -> Result<RecordBatch, String> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|e| e.to_string())
    }
}

/// The length of the complete tuple at the start of `data`, if it is all there.
fn tuple_end(data: &[u8]) -> Option<usize> {
    if data.len() < 2 {
        return None;
    }
    let fields = read_i16(data);
    let mut offset = 2;
    for _ in 0..fields.max(0) {
        if data.len() < offset + 4 {
            return None;
        }
        let length = read_i32(&data[offset..]);
        offset += 4 + length.max(0) as usize;
    }
    (data.len() >= offset).then_some(offset)
}

fn read_i16(data: &[u8]) -> i16 {
    i16::from_be_bytes([data[0], data[1]])
}

fn read_i32(data: &[u8]) -> i32 {
    i32::from_be_bytes([data[0], data[1], data[2], data[3]])
}

fn fixed<const N: usize>(value: &[u8], what: &str) -> Result<[u8; N], String> {
    value
        .try_into()
        .map_err(|_| format!("unexpected {what} value of {} bytes", value.len()))
}

/// Builds one Arrow column from binary values.
enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Oid(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Numeric(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Jsonb(StringBuilder),
    Uuid(StringBuilder),
    Bytea(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    TimestampTz(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
    Array {
        element: Box<ColumnBuilder>,
        field: Arc<Field>,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
    },
}

impl ColumnBuilder {
    fn new(kind: &Kind) -> Self {
        match kind {
            Kind::Bool => Self::Bool(BooleanBuilder::new()),
            Kind::Int16 => Self::Int16(Int16Builder::new()),
            Kind::Int32 => Self::Int32(Int32Builder::new()),
            Kind::Int64 => Self::Int64(Int64Builder::new()),
            Kind::Oid => Self::Oid(Int64Builder::new()),
            Kind::Float32 => Self::Float32(Float32Builder::new()),
            Kind::Float64 => Self::Float64(Float64Builder::new()),
            Kind::Numeric { precision, scale } => {
                Self::Numeric(Decimal128Builder::new(), *precision, *scale)
            }
            Kind::Text => Self::Text(StringBuilder::new()),
            Kind::Jsonb => Self::Jsonb(StringBuilder::new()),
            Kind::Uuid => Self::Uuid(StringBuilder::new()),
            Kind::Bytea => Self::Bytea(BinaryBuilder::new()),
            Kind::Date => Self::Date(Date32Builder::new()),
            Kind::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::new()),
            Kind::TimestampTz => {
                Self::TimestampTz(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            Kind::Time => Self::Time(Time64MicrosecondBuilder::new()),
            Kind::Array(element) => Self::Array {
                element: Box::new(Self::new(element)),
                field: Arc::new(Field::new("item", element.data_type(), true)),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
            },
        }
    }

    fn append(&mut self, value: Option<&[u8]>) -> Result<(), String> {
        let Some(v) = value else {
            match self {
                Self::Bool(b) => b.append_null(),
                Self::Int16(b) => b.append_null(),
                Self::Int32(b) => b.append_null(),
                Self::Int64(b) | Self::Oid(b) => b.append_null(),
                Self::Float32(b) => b.append_null(),
                Self::Float64(b) => b.append_null(),
                Self::Numeric(b, _, _) => b.append_null(),
                Self::Text(b) | Self::Jsonb(b) | Self::Uuid(b) => b.append_null(),
                Self::Bytea(b) => b.append_null(),
                Self::Date(b) => b.append_null(),
                Self::Timestamp(b) | Self::TimestampTz(b) => b.append_null(),
                Self::Time(b) => b.append_null(),
                Self::Array { offsets, nulls, .. } => {
                    offsets.push(*offsets.last().expect("starts with 0"));
                    nulls.append_null();
                }
            }
            return Ok(());
        };
        match self {
            Self::Bool(b) => b.append_value(fixed::<1>(v, "boolean")?[0] != 0),
            Self::Int16(b) => b.append_value(i16::from_be_bytes(fixed(v, "smallint")?)),
            Self::Int32(b) => b.append_value(i32::from_be_bytes(fixed(v, "integer")?)),
            Self::Int64(b) => b.append_value(i64::from_be_bytes(fixed(v, "bigint")?)),
            Self::Oid(b) => b.append_value(u32::from_be_bytes(fixed(v, "oid")?) as i64),
            Self::Float32(b) => b.append_value(f32::from_be_bytes(fixed(v, "real")?)),
            Self::Float64(b) => b.append_value(f64::from_be_bytes(fixed(v, "double")?)),
            Self::Numeric(b, precision, scale) => b.append_value(numeric(v, *precision, *scale)?),
            Self::Text(b) => b.append_value(text(v)?),
            Self::Jsonb(b) => match v.split_first() {
                Some((1, json)) => b.append_value(text(json)?),
                _ => return Err("unexpected jsonb format version".into()),
            },
            Self::Uuid(b) => b.append_value(uuid(&fixed::<16>(v, "uuid")?)),
            Self::Bytea(b) => b.append_value(v),
            Self::Date(b) => {
                let days = i32::from_be_bytes(fixed(v, "date")?);
                if days == i32::MAX || days == i32::MIN {
                    return Err("infinite dates cannot be read as Trino dates".into());
                }
                b.append_value(days + POSTGRES_EPOCH_DAYS)
            }
            Self::Timestamp(b) | Self::TimestampTz(b) => {
                let micros = i64::from_be_bytes(fixed(v, "timestamp")?);
                if micros == i64::MAX || micros == i64::MIN {
                    return Err("infinite timestamps cannot be read as Trino timestamps".into());
                }
                b.append_value(micros + POSTGRES_EPOCH_MICROS)
            }
            Self::Time(b) => b.append_value(i64::from_be_bytes(fixed(v, "time")?)),
            Self::Array {
                element,
                offsets,
                nulls,
                ..
            } => {
                let count = array_elements(v, element)?;
                let last = *offsets.last().expect("starts with 0");
                offsets.push(last + count as i32);
                nulls.append_non_null();
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) | Self::Oid(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Numeric(b, precision, scale) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*precision, *scale)
                    .expect("precision checked when the column was mapped"),
            ),
            Self::Text(b) | Self::Jsonb(b) | Self::Uuid(b) => Arc::new(b.finish()),
            Self::Bytea(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::TimestampTz(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Array {
                element,
                field,
                offsets,
                nulls,
            } => {
                let values = element.finish();
                let offsets = std::mem::replace(offsets, vec![0]);
                Arc::new(ListArray::new(
                    field.clone(),
                    OffsetBuffer::new(offsets.into()),
                    values,
                    nulls.finish(),
                ))
            }
        }
    }
}

/// Appends the elements of a binary array value; answers how many there were.
fn array_elements(v: &[u8], element: &mut ColumnBuilder) -> Result<usize, String> {
    let short = || "unexpected array value: too short".to_string();
    if v.len() < 12 {
        return Err(short());
    }
    let dimensions = read_i32(v);
    if dimensions == 0 {
        return Ok(0);
    }
    if dimensions != 1 {
        return Err(format!(
            "arrays of {dimensions} dimensions cannot be read as Trino arrays"
        ));
    }
    if v.len() < 20 {
        return Err(short());
    }
    let count = read_i32(&v[12..]).max(0) as usize;
    let mut offset = 20;
    for _ in 0..count {
        if v.len() < offset + 4 {
            return Err(short());
        }
        let length = read_i32(&v[offset..]);
        offset += 4;
        if length < 0 {
            element.append(None)?;
        } else {
            let end = offset + length as usize;
            element.append(Some(v.get(offset..end).ok_or_else(short)?))?;
            offset = end;
        }
    }
    Ok(count)
}

fn text(v: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(v).map_err(|_| "text value is not valid UTF-8".to_string())
}

fn uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A binary `numeric` as an unscaled decimal of the given scale, rounding half away from
/// zero when the value has more fractional digits.
fn numeric(v: &[u8], precision: u8, scale: i8) -> Result<i128, String> {
    if v.len() < 8 {
        return Err("unexpected numeric value: too short".into());
    }
    let digits = read_i16(v).max(0) as usize;
    let weight = read_i16(&v[2..]) as i32;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN cannot be read as a Trino decimal".into()),
        _ => return Err("infinity cannot be read as a Trino decimal".into()),
    }
    if v.len() < 8 + 2 * digits {
        return Err("unexpected numeric value: too short".into());
    }
    let overflow = || format!("numeric value does not fit decimal({precision},{scale})");
    let mut unscaled: i128 = 0;
    for i in 0..digits {
        let digit = read_i16(&v[8 + 2 * i..]) as i128;
        unscaled = unscaled
            .checked_mul(10_000)
            .and_then(|u| u.checked_add(digit))
            .ok_or_else(overflow)?;
    }
    // The last base-10000 digit stands for 10000^(weight - digits + 1).
    let shift = 4 * (weight - digits as i32 + 1) + scale as i32;
    if shift >= 0 {
        let factor = 10i128.checked_pow(shift as u32).ok_or_else(overflow)?;
        unscaled = if unscaled == 0 {
            0
        } else {
            unscaled.checked_mul(factor).ok_or_else(overflow)?
        };
    } else {
        let divisor = 10i128.checked_pow((-shift) as u32);
        unscaled = match divisor {
            Some(d) => (unscaled + d / 2) / d,
            None => 0,
        };
    }
    if unscaled >= 10i128.pow(precision as u32) {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Decimal128Type, Int32Type, Schema};

    /// Binary numeric: base-10000 digits with a weight.
    fn numeric_bytes(digits: &[i16], weight: i16, negative: bool, dscale: i16) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend((digits.len() as i16).to_be_bytes());
        out.extend(weight.to_be_bytes());
        out.extend((if negative { 0x4000u16 } else { 0 }).to_be_bytes());
        out.extend(dscale.to_be_bytes());
        for d in digits {
            out.extend(d.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_scale_and_round() {
        // 1234.5678 = [1234, 5678] weight 0
        let v = numeric_bytes(&[1234, 5678], 0, false, 4);
        assert_eq!(numeric(&v, 10, 4).unwrap(), 12_345_678);
        assert_eq!(numeric(&v, 10, 2).unwrap(), 123_457);
        // -0.05 = [500] weight -1
        let v = numeric_bytes(&[500], -1, true, 2);
        assert_eq!(numeric(&v, 10, 2).unwrap(), -5);
        // 20000 = [2] weight 1
        let v = numeric_bytes(&[2], 1, false, 0);
        assert_eq!(numeric(&v, 10, 2).unwrap(), 2_000_000);
        assert!(numeric(&v, 3, 0).is_err());
        assert_eq!(numeric(&numeric_bytes(&[], 0, false, 0), 5, 2).unwrap(), 0);
    }

    fn copy_stream(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend(0i32.to_be_bytes());
        out.extend(0i32.to_be_bytes());
        for row in rows {
            out.extend((row.len() as i16).to_be_bytes());
            for value in row {
                match value {
                    None => out.extend((-1i32).to_be_bytes()),
                    Some(v) => {
                        out.extend((v.len() as i32).to_be_bytes());
                        out.extend(v);
                    }
                }
            }
        }
        out.extend((-1i16).to_be_bytes());
        out
    }

    #[test]
    fn tuples_split_across_chunks_decode_whole() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", Kind::Int32.data_type(), true),
            Field::new(
                "amount",
                Kind::Numeric {
                    precision: 10,
                    scale: 2,
                }
                .data_type(),
                true,
            ),
            Field::new("tags", Kind::Array(Box::new(Kind::Int32)).data_type(), true),
        ]));
        let mut array = Vec::new();
        for part in [1i32, 0, 23, 2, 1] {
            array.extend(part.to_be_bytes());
        }
        for element in [7i32, 8] {
            array.extend(4i32.to_be_bytes());
            array.extend(element.to_be_bytes());
        }
        let stream = copy_stream(&[
            vec![
                Some(1i32.to_be_bytes().to_vec()),
                Some(numeric_bytes(&[12, 5000], 0, false, 2)),
                Some(array),
            ],
            vec![Some(2i32.to_be_bytes().to_vec()), None, None],
        ]);
        let mut decoder = CopyDecoder::new(
            schema,
            &[
                Kind::Int32,
                Kind::Numeric {
                    precision: 10,
                    scale: 2,
                },
                Kind::Array(Box::new(Kind::Int32)),
            ],
        );
        for chunk in stream.chunks(5) {
            assert!(decoder.push(chunk).unwrap().is_empty());
        }
        let batch = decoder.finish().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(0).as_primitive::<Int32Type>().value(1), 2);
        let amounts = batch.column(1).as_primitive::<Decimal128Type>();
        assert_eq!(amounts.value(0), 1250);
        assert!(amounts.is_null(1));
        let tags = batch.column(2).as_list::<i32>();
        assert_eq!(tags.value(0).as_primitive::<Int32Type>().values(), &[7, 8]);
        assert!(tags.is_null(1));
    }

    #[test]
    fn a_cut_stream_is_an_error() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "id",
            Kind::Int32.data_type(),
            true,
        )]));
        let stream = copy_stream(&[vec![Some(1i32.to_be_bytes().to_vec())]]);
        let mut decoder = CopyDecoder::new(schema, &[Kind::Int32]);
        decoder.push(&stream[..stream.len() - 4]).unwrap();
        assert!(decoder.finish().is_err());
    }

    #[test]
    fn uuids_print_hyphenated() {
        let bytes: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(uuid(&bytes), "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }
}
