//! Kafka messages to rows of the target table.
//!
//! JSON values are decoded by arrow-json against the table's own columns (fields matched
//! by name, others ignored) all at once; when that fails, message by message, so that one
//! bad message costs only itself: it becomes a [`Rejected`] for the dead-letter table and
//! every good message around it still becomes a row. The Kafka attributes the job
//! includes, and `_ingested_at` when the table has it, are filled in by the job.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    new_null_array, ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, RecordBatch,
    RecordBatchOptions, StringBuilder, TimestampMicrosecondArray, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::json::ReaderBuilder;

use aichemy_engine::ingestion::{KafkaColumn, MessageFormat};

/// The column a job fills with the time of the commit that wrote the row; tables the job
/// creates are partitioned by its day.
pub const INGESTED_AT: &str = "_ingested_at";

/// One message read from a partition.
#[derive(Debug, Clone)]
pub struct Message {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: BTreeMap<String, Vec<u8>>,
}

impl Message {
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len)
    }
}

/// A message that did not fit the table, and why.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub message: Message,
    pub error: String,
}

/// How one job turns messages into rows of its table.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The table's columns.
    table: SchemaRef,
    format: MessageFormat,
    /// The Kafka attributes kept, with their column's index in the table.
    attributes: Vec<(KafkaColumn, usize)>,
    ingested_at: Option<usize>,
    /// The columns a JSON value fills (the table's others), in table order.
    json: SchemaRef,
}

impl Decoder {
    /// A decoder into `table`; the Kafka columns of `include` must be among its columns.
    pub fn new(table: SchemaRef, format: MessageFormat, include: &[KafkaColumn]) -> Self {
        let attributes: Vec<(KafkaColumn, usize)> = include
            .iter()
            .filter_map(|c| table.index_of(c.column(format)).ok().map(|i| (*c, i)))
            .collect();
        let ingested_at = table.index_of(INGESTED_AT).ok();
        let json = Arc::new(Schema::new(
            table
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    Some(*i) != ingested_at && !attributes.iter().any(|(_, at)| at == i)
                })
                .map(|(_, f)| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<Field>>(),
        ));
        Self {
            table,
            format,
            attributes,
            ingested_at,
            json,
        }
    }

    /// The rows of `messages` (one batch in the table's columns) and the messages that
    /// could not be rows; `now_us` fills `_ingested_at`.
    pub fn decode(
        &self,
        messages: &[Message],
        now_us: i64,
    ) -> Result<(RecordBatch, Vec<Rejected>), String> {
        let (data, kept, rejected) = match self.format {
            MessageFormat::Raw => (None, messages.iter().collect::<Vec<_>>(), Vec::new()),
            MessageFormat::Json => {
                let (batch, kept, rejected) = self.decode_json(messages)?;
                (Some(batch), kept, rejected)
            }
        };
        Ok((self.assemble(data, &kept, now_us)?, rejected))
    }

    /// The rows of JSON `messages` when every one is a JSON object whose every field has a
    /// column and whose values fit them (arrow-json's strict mode), as most batches are;
    /// `None` otherwise, and then the batch needs [`Self::decode`] and maybe new columns.
    /// It spares a look at each message's keys.
    pub fn decode_known(&self, messages: &[Message], now_us: i64) -> Option<RecordBatch> {
        if self.format != MessageFormat::Json || messages.iter().any(|m| m.value.is_none()) {
            return None;
        }
        let batch = self.decode_values(messages.iter(), true).ok()??;
        if batch.num_rows() != messages.len() {
            return None;
        }
        let kept: Vec<&Message> = messages.iter().collect();
        self.assemble(Some(batch), &kept, now_us).ok()
    }

    /// One batch in the table's columns: the JSON columns of `data` (none for raw
    /// messages) with the Kafka attributes and `_ingested_at` of `kept`.
    fn assemble(
        &self,
        data: Option<RecordBatch>,
        kept: &[&Message],
        now_us: i64,
    ) -> Result<RecordBatch, String> {
        let rows = kept.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.table.fields().len());
        let mut json_column = 0;
        for (i, field) in self.table.fields().iter().enumerate() {
            let array: ArrayRef = if Some(i) == self.ingested_at {
                Arc::new(TimestampMicrosecondArray::from(vec![now_us; rows]).with_timezone("UTC"))
            } else if let Some((attribute, _)) = self.attributes.iter().find(|(_, at)| *at == i) {
                attribute_array(*attribute, kept)
            } else if self.format == MessageFormat::Raw && field.name() == "value" {
                let mut values = BinaryBuilder::new();
                for m in kept {
                    values.append_option(m.value.as_deref());
                }
                Arc::new(values.finish())
            } else if let Some(batch) = &data {
                json_column += 1;
                batch.column(json_column - 1).clone()
            } else {
                new_null_array(field.data_type(), rows)
            };
            let array = if array.data_type() == field.data_type() {
                array
            } else {
                cast(&array, field.data_type()).map_err(|e| e.to_string())?
            };
            columns.push(array);
        }
        RecordBatch::try_new_with_options(
            self.table.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| e.to_string())
    }

    /// The JSON values of `messages` as the table's data columns; the messages kept, in
    /// order; and the rejected ones.
    fn decode_json<'a>(
        &self,
        messages: &'a [Message],
    ) -> Result<(RecordBatch, Vec<&'a Message>, Vec<Rejected>), String> {
        // Most batches are all good: one decoder over every value.
        if messages.iter().all(|m| m.value.is_some()) {
            if let Ok(Some(batch)) = self.decode_values(messages.iter(), false) {
                if batch.num_rows() == messages.len() {
                    return Ok((batch, messages.iter().collect(), Vec::new()));
                }
            }
        }
        let mut batches = Vec::new();
        let mut kept = Vec::new();
        let mut rejected = Vec::new();
        for message in messages {
            let outcome = match &message.value {
                None => Err("message has no value".to_string()),
                Some(_) => match self.decode_values(std::iter::once(message), false) {
                    Ok(Some(batch)) if batch.num_rows() == 1 => Ok(batch),
                    Ok(_) => Err("message value is not one JSON object".to_string()),
                    Err(e) => Err(e),
                },
            };
            match outcome {
                Ok(batch) => {
                    batches.push(batch);
                    kept.push(message);
                }
                Err(error) => rejected.push(Rejected {
                    message: message.clone(),
                    error,
                }),
            }
        }
        let batch = concat_batches(&self.json, &batches).map_err(|e| e.to_string())?;
        Ok((batch, kept, rejected))
    }

    /// The rows of JSON values; `strict`: a field no column holds is an error too.
    fn decode_values<'a>(
        &self,
        messages: impl ExactSizeIterator<Item = &'a Message>,
        strict: bool,
    ) -> Result<Option<RecordBatch>, String> {
        let mut decoder = ReaderBuilder::new(self.json.clone())
            .with_batch_size(messages.len().max(1))
            .with_strict_mode(strict)
            .build_decoder()
            .map_err(|e| e.to_string())?;
        for message in messages {
            let value = message.value.as_deref().unwrap_or_default();
            // A value that is not an object would be read as a row of nulls.
            let first = value.iter().find(|b| !b.is_ascii_whitespace());
            if first != Some(&b'{') {
                return Err("message value is not a JSON object".into());
            }
            let read = decoder.decode(value).map_err(|e| e.to_string())?;
            if read != value.len() {
                return Err("message value holds more than one JSON value".into());
            }
            // Ends the value, so that a truncated one fails here rather than joining the
            // next.
            decoder.decode(b"\n").map_err(|e| e.to_string())?;
            if decoder.has_partial_record() {
                return Err("message value is truncated JSON".into());
            }
        }
        decoder.flush().map_err(|e| e.to_string())
    }
}

/// The column of one Kafka attribute for `messages`.
fn attribute_array(attribute: KafkaColumn, messages: &[&Message]) -> ArrayRef {
    match attribute {
        KafkaColumn::Partition => {
            let mut b = Int32Builder::with_capacity(messages.len());
            messages.iter().for_each(|m| b.append_value(m.partition));
            Arc::new(b.finish())
        }
        KafkaColumn::Offset => {
            let mut b = Int64Builder::with_capacity(messages.len());
            messages.iter().for_each(|m| b.append_value(m.offset));
            Arc::new(b.finish())
        }
        KafkaColumn::Timestamp => {
            let mut b = TimestampMillisecondBuilder::with_capacity(messages.len());
            messages.iter().for_each(|m| b.append_value(m.timestamp_ms));
            Arc::new(b.finish().with_timezone("UTC"))
        }
        KafkaColumn::Key => {
            let mut b = StringBuilder::new();
            for m in messages {
                b.append_option(m.key.as_deref().map(String::from_utf8_lossy));
            }
            Arc::new(b.finish())
        }
        KafkaColumn::Headers => {
            let mut b = StringBuilder::new();
            for m in messages {
                if m.headers.is_empty() {
                    b.append_null();
                } else {
                    let object: serde_json::Map<String, serde_json::Value> = m
                        .headers
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                serde_json::Value::String(String::from_utf8_lossy(v).into()),
                            )
                        })
                        .collect();
                    b.append_value(serde_json::Value::Object(object).to_string());
                }
            }
            Arc::new(b.finish())
        }
    }
}

/// The Trino type of a Kafka attribute's column.
pub fn attribute_type(attribute: KafkaColumn, format: MessageFormat) -> &'static str {
    match (attribute, format) {
        (KafkaColumn::Key, MessageFormat::Raw) => "varbinary",
        (KafkaColumn::Key, MessageFormat::Json) => "varchar",
        (KafkaColumn::Partition, _) => "integer",
        (KafkaColumn::Offset, _) => "bigint",
        (KafkaColumn::Timestamp, _) => "timestamp(3) with time zone",
        (KafkaColumn::Headers, _) => "varchar",
    }
}

/// The columns a JSON value's fields infer, from the values of `messages` (the first
/// [`INFERENCE_SAMPLE`] that are objects); `None` when none is.
pub fn infer_columns(messages: &[Message]) -> Option<Vec<(String, DataType)>> {
    // arrow-json's inference keeps the fields in the order they first appear. It reads
    // the first objects only (as Spark's and Kafka Connect's inference sample): a field
    // first seen later becomes a column when it comes.
    let mut text = Vec::new();
    let mut objects = 0;
    for value in messages.iter().filter_map(|m| m.value.as_deref()) {
        if objects == INFERENCE_SAMPLE {
            break;
        }
        let is_object =
            serde_json::from_slice::<serde_json::Value>(value).is_ok_and(|v| v.is_object());
        if is_object {
            objects += 1;
            text.extend_from_slice(value);
            text.push(b'\n');
        }
    }
    let (schema, _) =
        datafusion::arrow::json::reader::infer_json_schema(std::io::Cursor::new(&text), None)
            .ok()?;
    if schema.fields().is_empty() {
        return None;
    }
    // Its fields come in no useful order: the order of the messages' keys.
    let mut order: Vec<String> = Vec::new();
    for value in text.split(|b| *b == b'\n').filter(|v| !v.is_empty()) {
        if let Ok(KeyOrder(keys)) = serde_json::from_slice::<KeyOrder>(value) {
            for key in keys {
                if !order.contains(&key) {
                    order.push(key);
                }
            }
        }
    }
    let mut fields: Vec<_> = schema.fields().iter().collect();
    fields.sort_by_key(|f| {
        order
            .iter()
            .position(|k| k == f.name())
            .unwrap_or(usize::MAX)
    });
    Some(
        fields
            .into_iter()
            .map(|f| (f.name().to_ascii_lowercase(), widen(f.data_type())))
            .collect(),
    )
}

/// How many JSON objects column types are inferred from.
const INFERENCE_SAMPLE: usize = 10_000;

/// The keys of a JSON object in the order written.
pub struct KeyOrder(pub Vec<String>);

impl<'de> serde::Deserialize<'de> for KeyOrder {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(KeyOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// Inferred types as a table stores them: text for what has no better type.
fn widen(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Null => DataType::Utf8,
        DataType::List(item) => DataType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(widen(item.data_type())),
        )),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| f.as_ref().clone().with_data_type(widen(f.data_type())))
                .collect(),
        ),
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(offset: i64, value: &str) -> Message {
        Message {
            partition: 2,
            offset,
            timestamp_ms: 1_000,
            key: Some(b"k".to_vec()),
            value: Some(value.as_bytes().to_vec()),
            headers: BTreeMap::new(),
        }
    }

    fn table() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("_kafka_partition", DataType::Int32, true),
            Field::new("_kafka_offset", DataType::Int64, true),
        ]))
    }

    #[test]
    fn bad_messages_are_set_aside_and_the_rest_kept() {
        let decoder = Decoder::new(
            table(),
            MessageFormat::Json,
            &[KafkaColumn::Partition, KafkaColumn::Offset],
        );
        let messages = [
            message(0, r#"{"id": 1, "name": "a", "extra": true}"#),
            message(1, r#"{"id": "not a number"}"#),
            message(2, r#"{"id": 3"#),
            message(3, r#"[1, 2]"#),
            message(4, r#"{"id": 5}"#),
        ];
        let (batch, rejected) = decoder.decode(&messages, 0).unwrap();
        assert_eq!(batch.num_rows(), 2);
        let offsets: Vec<i64> = rejected.iter().map(|r| r.message.offset).collect();
        assert_eq!(offsets, [1, 2, 3]);
        let kept = batch
            .column(3)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap();
        assert_eq!(kept.values(), &[0, 4]);
        // All good: the fast path.
        let (batch, rejected) = decoder.decode(&messages[..1], 0).unwrap();
        assert_eq!((batch.num_rows(), rejected.len()), (1, 0));
    }

    #[test]
    fn only_batches_whose_every_field_has_a_column_take_the_strict_path() {
        let decoder = Decoder::new(
            table(),
            MessageFormat::Json,
            &[KafkaColumn::Partition, KafkaColumn::Offset],
        );
        let good = [
            message(7, r#"{"id": 1, "name": "a"}"#),
            message(8, r#"{"id": 2}"#),
        ];
        let batch = decoder.decode_known(&good, 0).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), table());
        // A new field, a value of the wrong type, not an object: the lenient path.
        for odd in [
            r#"{"id": 3, "extra": 1}"#,
            r#"{"id": "x"}"#,
            "[1]",
            r#"{"id": 4"#,
        ] {
            let messages = [good[0].clone(), message(9, odd)];
            assert!(decoder.decode_known(&messages, 0).is_none(), "{odd}");
        }
    }

    #[test]
    fn columns_are_inferred_from_the_values() {
        let columns = infer_columns(&[
            message(0, r#"{"id": 1, "Name": "a"}"#),
            message(1, r#"{"id": 2, "tags": ["x"], "n": null}"#),
        ])
        .unwrap();
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["id", "name", "tags", "n"]);
        assert_eq!(columns[0].1, DataType::Int64);
        assert_eq!(columns[3].1, DataType::Utf8);
    }
}
