//! Debezium change events read from Kafka (`format = 'debezium'`): the JSON converter's
//! envelope (`before`, `after`, `op`, `source`, `ts_ms`), with or without its
//! `schema`/`payload` wrapping. Each event becomes a plain JSON object, the row after the
//! change (before it, for a delete) plus `_op`, `_ts`, `_lsn` and `_tx_id`, which the JSON
//! decoder then reads like any other message; tombstones (no value) are skipped.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::util::display::array_value_to_string;
use serde_json::{Map, Value};

use crate::decode::{Message, Rejected};

/// The columns (name, Trino type) every flattened event has beside its row's.
pub const META_COLUMNS: &[(&str, &str)] = &[
    ("_op", "varchar"),
    ("_ts", "timestamp(3) with time zone"),
    ("_lsn", "bigint"),
    ("_tx_id", "bigint"),
];

/// The envelope inside a converter's `{"schema": …, "payload": …}` wrapping.
fn unwrapped(value: Value) -> Value {
    match value {
        Value::Object(mut object) if object.contains_key("schema") => {
            object.remove("payload").unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// The flattened form of each event; those that are not change events are rejected.
pub fn flatten(messages: &[Message]) -> (Vec<Message>, Vec<Rejected>) {
    let mut flat = Vec::with_capacity(messages.len());
    let mut rejected = Vec::new();
    for message in messages {
        let Some(value) = message.value.as_deref() else {
            continue;
        };
        match flatten_one(value) {
            Ok(None) => {}
            Ok(Some(object)) => flat.push(Message {
                value: Some(Value::Object(object).to_string().into_bytes()),
                ..message.clone()
            }),
            Err(error) => rejected.push(Rejected {
                message: message.clone(),
                error,
            }),
        }
    }
    (flat, rejected)
}

fn flatten_one(value: &[u8]) -> Result<Option<Map<String, Value>>, String> {
    let parsed: Value =
        serde_json::from_slice(value).map_err(|e| format!("message value is not JSON: {e}"))?;
    let envelope = match unwrapped(parsed) {
        Value::Null => return Ok(None),
        Value::Object(object) => object,
        _ => return Err("message value is not a Debezium change event".into()),
    };
    let op = envelope
        .get("op")
        .and_then(Value::as_str)
        .ok_or("message value is not a Debezium change event (no 'op')")?
        .to_string();
    let row = match op.as_str() {
        "d" => envelope.get("before"),
        "c" | "u" | "r" => envelope.get("after"),
        "t" => None,
        other => return Err(format!("Debezium event with unknown op '{other}'")),
    };
    let mut flat = match row {
        Some(Value::Object(row)) => row.clone(),
        None | Some(Value::Null) if op == "t" => Map::new(),
        _ => {
            return Err(format!(
                "Debezium event '{op}' without its row ('before' or 'after')"
            ))
        }
    };
    let source = envelope.get("source");
    // As text: the column holds microseconds, whatever unit a number would be read in.
    let ts = source
        .and_then(|s| s.get("ts_ms"))
        .or_else(|| envelope.get("ts_ms"))
        .and_then(Value::as_i64)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or(Value::Null, |t| {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        });
    flat.insert("_op".into(), Value::String(op));
    flat.insert("_ts".into(), ts);
    for (name, field) in [("_lsn", "lsn"), ("_tx_id", "txId")] {
        let value = source
            .and_then(|s| s.get(field))
            .cloned()
            .unwrap_or(Value::Null);
        flat.insert(name.into(), value);
    }
    Ok(Some(flat))
}

/// The fields of the first message key that is a JSON object (a Debezium key).
pub fn key_fields(messages: &[Message]) -> Option<Vec<String>> {
    messages.iter().find_map(|m| {
        let parsed: Value = serde_json::from_slice(m.key.as_deref()?).ok()?;
        match unwrapped(parsed) {
            Value::Object(key) if !key.is_empty() => {
                Some(key.keys().map(|k| k.to_lowercase()).collect())
            }
            _ => None,
        }
    })
}

/// What a batch of decoded events leaves for a mirror: whether a truncate emptied the
/// table first, the last row of each key that was not deleted, and every key changed.
pub struct Folded {
    pub truncated: bool,
    pub added: RecordBatch,
    pub keys: RecordBatch,
}

/// Folds decoded events (the table's columns, `_op` among them, in order) per `key`.
pub fn fold(rows: &RecordBatch, key: &[String]) -> Result<Folded, String> {
    let schema = rows.schema();
    let op_index = schema
        .index_of("_op")
        .map_err(|_| "the mirror table has no _op column".to_string())?;
    let ops = datafusion::arrow::compute::cast(
        rows.column(op_index),
        &datafusion::arrow::datatypes::DataType::Utf8,
    )
    .map_err(|e| e.to_string())?;
    let ops = ops
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8");
    let key_indices = key
        .iter()
        .map(|k| {
            schema
                .index_of(k)
                .map_err(|_| format!("the mirror table has no key column '{k}'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Rows before the last truncate are gone with it.
    let start = (0..rows.num_rows())
        .rev()
        .find(|i| ops.value(*i) == "t")
        .map_or(0, |i| i + 1);
    let truncated = start > 0;
    let mut last: HashMap<Vec<String>, usize> = HashMap::new();
    let mut order: Vec<Vec<String>> = Vec::new();
    for i in start..rows.num_rows() {
        let mut values = Vec::with_capacity(key_indices.len());
        for &k in &key_indices {
            let column = rows.column(k);
            if column.is_null(i) {
                return Err(format!(
                    "an event has no value for key column '{}'",
                    schema.field(k).name()
                ));
            }
            values.push(array_value_to_string(column, i).map_err(|e| e.to_string())?);
        }
        if last.insert(values.clone(), i).is_none() {
            order.push(values);
        }
    }
    let latest: Vec<u32> = order.iter().map(|k| last[k] as u32).collect();
    let kept: Vec<u32> = latest
        .iter()
        .copied()
        .filter(|i| ops.value(*i as usize) != "d")
        .collect();
    let added = take_record_batch(rows, &UInt32Array::from(kept)).map_err(|e| e.to_string())?;
    let keys = take_record_batch(rows, &UInt32Array::from(latest))
        .and_then(|b| b.project(&key_indices))
        .map_err(|e| e.to_string())?;
    Ok(Folded {
        truncated,
        added,
        keys: RecordBatch::try_new(
            Arc::new(datafusion::arrow::datatypes::Schema::new(
                keys.schema()
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
            )),
            keys.columns().to_vec(),
        )
        .map_err(|e| e.to_string())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn message(offset: i64, key: &str, value: Option<&str>) -> Message {
        Message {
            partition: 0,
            offset,
            timestamp_ms: 0,
            key: Some(key.as_bytes().to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
            headers: BTreeMap::new(),
        }
    }

    #[test]
    fn events_become_their_rows_with_the_change_attributes() {
        let messages = [
            message(
                0,
                r#"{"id":1}"#,
                Some(
                    r#"{"schema":{},"payload":{"before":null,"after":{"id":1,"v":"a"},"op":"c","source":{"ts_ms":5,"lsn":77,"txId":3},"ts_ms":9}}"#,
                ),
            ),
            message(
                1,
                r#"{"id":1}"#,
                Some(r#"{"before":{"id":1,"v":"a"},"after":null,"op":"d","source":{"ts_ms":6}}"#),
            ),
            message(2, r#"{"id":1}"#, None),
            message(3, "k", Some(r#"{"id":1}"#)),
            message(4, "k", Some("not json")),
        ];
        let (flat, rejected) = flatten(&messages);
        assert_eq!(flat.len(), 2);
        let first: Value = serde_json::from_slice(flat[0].value.as_ref().unwrap()).unwrap();
        assert_eq!(first["v"], "a");
        assert_eq!(first["_op"], "c");
        assert_eq!(first["_ts"], "1970-01-01T00:00:00.005Z");
        assert_eq!(first["_lsn"], 77);
        let second: Value = serde_json::from_slice(flat[1].value.as_ref().unwrap()).unwrap();
        assert_eq!(
            (second["id"].clone(), second["_op"].clone()),
            (1.into(), "d".into())
        );
        assert_eq!(rejected.len(), 2);
        assert!(
            rejected[0].error.contains("no 'op'"),
            "{}",
            rejected[0].error
        );
        assert_eq!(key_fields(&messages).unwrap(), ["id"]);
    }

    #[test]
    fn folding_keeps_the_last_event_of_each_key() {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("_op", DataType::Utf8, true),
        ]));
        let batch = |ids: Vec<i64>, ops: Vec<&str>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(ops)),
                ],
            )
            .unwrap()
        };
        let key = vec!["id".to_string()];
        let folded = fold(
            &batch(vec![1, 2, 1, 3, 2], vec!["c", "c", "u", "c", "d"]),
            &key,
        )
        .unwrap();
        assert!(!folded.truncated);
        assert_eq!(folded.keys.num_rows(), 3);
        assert_eq!(folded.added.num_rows(), 2);
        let folded = fold(&batch(vec![1, 0, 4], vec!["c", "t", "c"]), &key).unwrap();
        assert!(folded.truncated);
        assert_eq!(folded.added.num_rows(), 1);
    }
}
