//! Row changes captured from PostgreSQL, and the rows they become: appended as they are
//! (bronze: flat, or in Debezium's envelope) or folded into the current rows of a mirror
//! table keyed by the source's primary key.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryBuilder, RecordBatch, RecordBatchOptions, StringArray, StructArray,
};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;

use aichemy_engine::ingestion::ChangeFormat;
use aichemy_tables::{Recording, RowLevelTable, PATH_COLUMN};

use crate::decode::INGESTED_AT;
use crate::pgoutput::{json_kind, trino_type, JsonKind, Relation, Value};
use crate::JobError;

/// What happened to a row, as Debezium names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `c`: inserted.
    Create,
    /// `u`: updated.
    Update,
    /// `d`: deleted.
    Delete,
    /// `r`: read by a snapshot.
    Read,
    /// `t`: the table was truncated.
    Truncate,
}

impl Op {
    pub fn letter(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }
}

/// One change of one row (or a truncate of its table).
#[derive(Debug, Clone)]
pub struct Change {
    pub op: Op,
    pub relation: Arc<Relation>,
    pub before: Option<Vec<Value>>,
    pub after: Option<Vec<Value>>,
    /// The change's own WAL position (a snapshot's rows: its consistent point).
    pub lsn: u64,
    /// The end of its transaction's commit record: where the stream stands after it.
    pub commit_lsn: u64,
    /// Its place in its transaction.
    pub seq: i64,
    pub xid: Option<i64>,
    /// The commit time, µs since the epoch.
    pub ts_us: i64,
}

impl Change {
    /// The value of `column` after the change (before it, for a delete); an unchanged
    /// TOASTed value from the old row when it was sent.
    pub fn value(&self, column: &str) -> Option<&str> {
        let index = self
            .relation
            .columns
            .iter()
            .position(|c| c.name == column)?;
        fn pick(row: &Option<Vec<Value>>, index: usize) -> Option<&Value> {
            row.as_ref().and_then(|r| r.get(index))
        }
        let value = match self.after.as_ref() {
            Some(_) => pick(&self.after, index),
            None => pick(&self.before, index),
        }?;
        match value {
            Value::Unchanged => pick(&self.before, index).and_then(Value::text),
            other => other.text(),
        }
    }

    fn size(&self) -> usize {
        [&self.before, &self.after]
            .iter()
            .filter_map(|r| r.as_ref())
            .flatten()
            .map(|v| v.text().map_or(1, str::len))
            .sum()
    }
}

/// The bytes of changes, for the job's status.
pub fn bytes(changes: &[Change]) -> u64 {
    changes.iter().map(Change::size).sum::<usize>() as u64
}

/// The columns (name, Trino type) of a flat bronze table beside the source's.
pub const FLAT_COLUMNS: &[(&str, &str)] = &[
    ("_op", "varchar"),
    ("_lsn", "bigint"),
    ("_commit_lsn", "bigint"),
    ("_seq", "bigint"),
    ("_tx_id", "bigint"),
    ("_ts", "timestamp(3) with time zone"),
];

/// The columns of a bronze table in Debezium's envelope (`before` and `after` as JSON
/// text, so that columns added at the source need no change of the table).
pub const DEBEZIUM_COLUMNS: &[(&str, &str)] = &[
    ("before", "varchar"),
    ("after", "varchar"),
    ("op", "varchar"),
    ("ts_ms", "bigint"),
    (
        "source",
        "row(version varchar, connector varchar, name varchar, ts_ms bigint, snapshot varchar, \
         db varchar, schema varchar, \"table\" varchar, txId bigint, lsn bigint, sequence \
         varchar)",
    ),
];

/// The columns of a job's table for `relation`: the source's (mirror and flat) and the
/// change's attributes.
pub fn table_columns(relation: &Relation, format: Option<ChangeFormat>) -> Vec<(String, String)> {
    let source = || {
        relation
            .columns
            .iter()
            .map(|c| (c.name.clone(), trino_type(c.type_oid, c.type_modifier)))
    };
    let extra = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    };
    match format {
        None => source().collect(),
        Some(ChangeFormat::Flat) => source().chain(extra(FLAT_COLUMNS)).collect(),
        Some(ChangeFormat::Debezium) => extra(DEBEZIUM_COLUMNS),
    }
}

/// The source columns a table lacks (added at the source since it was created).
pub fn missing_columns(schema: &Schema, relation: &Relation) -> Vec<(String, String)> {
    relation
        .columns
        .iter()
        .filter(|c| schema.field_with_name(&c.name).is_err())
        .map(|c| (c.name.clone(), trino_type(c.type_oid, c.type_modifier)))
        .collect()
}

/// Where the job identifies itself in Debezium's `source` block.
pub struct SourceInfo {
    pub job: String,
    pub database: String,
}

/// The text of one column (or `source.field`) of the row a change becomes.
fn cell(
    change: &Change,
    column: &str,
    format: Option<ChangeFormat>,
    info: &SourceInfo,
    now_us: i64,
) -> Option<String> {
    if column == INGESTED_AT {
        return Some(now_us.to_string());
    }
    match format {
        Some(ChangeFormat::Flat) => match column {
            "_op" => return Some(change.op.letter().into()),
            "_lsn" => return Some(change.lsn.to_string()),
            "_commit_lsn" => return Some(change.commit_lsn.to_string()),
            "_seq" => return Some(change.seq.to_string()),
            "_tx_id" => return change.xid.map(|x| x.to_string()),
            "_ts" => return Some((change.ts_us / 1000).to_string()),
            _ => {}
        },
        Some(ChangeFormat::Debezium) => {
            // Trino folds the row fields' names to lower case.
            return match column.to_ascii_lowercase().as_str() {
                "before" => change.before.as_ref().map(|_| row_json(change, true)),
                "after" => change.after.as_ref().map(|_| row_json(change, false)),
                "op" => Some(change.op.letter().into()),
                "ts_ms" => Some((now_us / 1000).to_string()),
                "source.version" => Some(env!("CARGO_PKG_VERSION").into()),
                "source.connector" => Some("postgresql".into()),
                "source.name" => Some(info.job.clone()),
                "source.ts_ms" => Some((change.ts_us / 1000).to_string()),
                "source.snapshot" => Some((change.op == Op::Read).to_string()),
                "source.db" => Some(info.database.clone()),
                "source.schema" => Some(change.relation.table.schema.clone()),
                "source.table" => Some(change.relation.table.table.clone()),
                "source.txid" => change.xid.map(|x| x.to_string()),
                "source.lsn" => Some(change.lsn.to_string()),
                "source.sequence" => {
                    Some(format!("[\"{}\",\"{}\"]", change.commit_lsn, change.seq))
                }
                _ => None,
            };
        }
        None => {}
    }
    change.value(column).map(str::to_string)
}

/// The old (`before`) or new row of a change as a JSON object, values typed as
/// Debezium's JSON converter writes them.
fn row_json(change: &Change, before: bool) -> String {
    let row = if before {
        &change.before
    } else {
        &change.after
    };
    let mut object = serde_json::Map::new();
    for (i, column) in change.relation.columns.iter().enumerate() {
        let value = match row.as_ref().and_then(|r| r.get(i)) {
            Some(Value::Text(text)) => text.as_str(),
            Some(Value::Unchanged) if !before => {
                match change.before.as_ref().and_then(|r| r.get(i)) {
                    Some(Value::Text(text)) => text.as_str(),
                    _ => {
                        object.insert(column.name.clone(), serde_json::Value::Null);
                        continue;
                    }
                }
            }
            _ => {
                object.insert(column.name.clone(), serde_json::Value::Null);
                continue;
            }
        };
        let json = match json_kind(column.type_oid) {
            JsonKind::Boolean => serde_json::Value::Bool(value == "t" || value == "true"),
            JsonKind::Number => serde_json::from_str::<serde_json::Number>(value)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|_| serde_json::Value::String(value.into())),
            JsonKind::Json => serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.into())),
            JsonKind::String => serde_json::Value::String(value.into()),
        };
        object.insert(column.name.clone(), json);
    }
    serde_json::Value::Object(object).to_string()
}

/// The rows `changes` become in a table of `schema`.
pub fn rows(
    schema: &SchemaRef,
    changes: &[Change],
    format: Option<ChangeFormat>,
    info: &SourceInfo,
    now_us: i64,
) -> Result<RecordBatch, JobError> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| column(field, field.name(), changes, format, info, now_us))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(changes.len())),
    )
    .map_err(|e| JobError::fatal(e.to_string()))
}

fn column(
    field: &Field,
    path: &str,
    changes: &[Change],
    format: Option<ChangeFormat>,
    info: &SourceInfo,
    now_us: i64,
) -> Result<ArrayRef, JobError> {
    if let DataType::Struct(children) = field.data_type() {
        let arrays = children
            .iter()
            .map(|child| {
                column(
                    child,
                    &format!("{path}.{}", child.name()),
                    changes,
                    format,
                    info,
                    now_us,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Arc::new(
            StructArray::try_new(children.clone(), arrays, None)
                .map_err(|e| JobError::fatal(e.to_string()))?,
        ));
    }
    let texts: Vec<Option<String>> = changes
        .iter()
        .map(|c| cell(c, path, format, info, now_us))
        .collect();
    from_text(field, texts)
}

/// Text values (PostgreSQL's output forms, or numbers for our own columns) as an array
/// of the field's type.
pub fn from_text(field: &Field, texts: Vec<Option<String>>) -> Result<ArrayRef, JobError> {
    let wrong = |e: &dyn std::fmt::Display| {
        JobError::fatal(format!(
            "A value of column '{}' does not fit its type {}: {e}",
            field.name(),
            field.data_type()
        ))
    };
    match field.data_type() {
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            let mut builder = BinaryBuilder::new();
            for text in &texts {
                match text {
                    None => builder.append_null(),
                    Some(text) => builder.append_value(
                        hex_bytes(text).ok_or_else(|| wrong(&"not a \\x hex bytea"))?,
                    ),
                }
            }
            let array: ArrayRef = Arc::new(builder.finish());
            cast(&array, field.data_type()).map_err(|e| wrong(&e))
        }
        DataType::Timestamp(unit, zone) if texts.iter().flatten().all(|t| is_integer(t)) => {
            // Our own columns: integers in the column's unit (ms for `_ts`, µs else).
            let numbers: Vec<Option<i64>> = texts
                .iter()
                .map(|t| t.as_ref().and_then(|t| t.parse().ok()))
                .collect();
            let array: ArrayRef = Arc::new(datafusion::arrow::array::Int64Array::from(numbers));
            let unit_of_text = if field.name() == "_ts" {
                TimeUnit::Millisecond
            } else {
                TimeUnit::Microsecond
            };
            let typed = cast(&array, &DataType::Timestamp(unit_of_text, zone.clone()))
                .map_err(|e| wrong(&e))?;
            cast(&typed, &DataType::Timestamp(*unit, zone.clone())).map_err(|e| wrong(&e))
        }
        data_type => {
            let normalized: Vec<Option<String>> = match data_type {
                DataType::Timestamp(_, Some(_)) => texts
                    .into_iter()
                    .map(|t| t.map(|t| full_offset(&t)))
                    .collect(),
                _ => texts,
            };
            let array: ArrayRef = Arc::new(StringArray::from(normalized));
            cast(&array, data_type).map_err(|e| wrong(&e))
        }
    }
}

fn cast(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, datafusion::arrow::error::ArrowError> {
    cast_with_options(
        array,
        to,
        &CastOptions {
            safe: false,
            ..Default::default()
        },
    )
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `2024-05-01 10:00:00+00` → `…+00:00` (PostgreSQL leaves out zero offset minutes).
fn full_offset(text: &str) -> String {
    let bytes = text.as_bytes();
    let n = bytes.len();
    if n > 3
        && (bytes[n - 3] == b'+' || bytes[n - 3] == b'-')
        && bytes[n - 2].is_ascii_digit()
        && bytes[n - 1].is_ascii_digit()
    {
        format!("{text}:00")
    } else {
        text.to_string()
    }
}

/// `\x0a0b` → bytes.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a batch of changes leaves of each key of a mirror table: its last row, or gone.
#[derive(Debug, Default)]
pub struct Folded {
    /// Whether the table was truncated in the batch (every row before it is gone).
    pub truncated: bool,
    /// Key text → the last change of that key.
    pub last: HashMap<Vec<Option<String>>, Change>,
}

/// Folds changes into the last state of each key (`key` the key columns' names).
pub fn fold(changes: Vec<Change>, key: &[String]) -> Result<Folded, JobError> {
    let mut folded = Folded::default();
    for change in changes {
        if change.op == Op::Truncate {
            folded.truncated = true;
            folded.last.clear();
            continue;
        }
        let values: Vec<Option<String>> = key
            .iter()
            .map(|k| change.value(k).map(str::to_string))
            .collect();
        if values.iter().any(Option::is_none) {
            return Err(JobError::fatal(format!(
                "A change of {} has no value for its key ({}): the mirror needs the primary \
                 key in every change",
                change.relation.table,
                key.join(", ")
            )));
        }
        folded.last.insert(values, change);
    }
    Ok(folded)
}

/// Commits a folded batch to a mirror table: the files holding a changed key are
/// rewritten without those rows, and the last row of every key not deleted is added, in
/// one commit recording `position`. Answers the keys changed.
#[allow(clippy::too_many_arguments)]
pub async fn merge(
    rows: &Arc<dyn RowLevelTable>,
    schema: &SchemaRef,
    key: &[String],
    folded: Folded,
    info: &SourceInfo,
    job: &str,
    expected: Option<&str>,
    position: &str,
) -> Result<u64, JobError> {
    let now_us = chrono::Utc::now().timestamp_micros();
    let changes: Vec<Change> = folded.last.into_values().collect();
    let upserts: Vec<Change> = changes
        .iter()
        .filter(|c| c.op != Op::Delete)
        .cloned()
        .collect();
    let added = self::rows(schema, &upserts, None, info, now_us)?;
    // The keys touched, typed as the table's columns.
    let key_fields: Vec<Field> = key
        .iter()
        .map(|k| {
            schema
                .field_with_name(k)
                .cloned()
                .map(|f| f.with_nullable(true))
                .map_err(|_| JobError::fatal(format!("The mirror table lacks key column {k}")))
        })
        .collect::<Result<_, _>>()?;
    let key_columns = key_fields
        .iter()
        .map(|f| {
            let texts = changes
                .iter()
                .map(|c| c.value(f.name()).map(str::to_string))
                .collect();
            from_text(f, texts)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let keys = RecordBatch::try_new(Arc::new(Schema::new(key_fields)), key_columns)
        .map_err(|e| JobError::fatal(e.to_string()))?;
    merge_batches(
        rows,
        schema,
        key,
        MirrorChange {
            truncated: folded.truncated,
            added,
            keys,
        },
        job,
        expected,
        position,
    )
    .await?;
    Ok(changes.len() as u64)
}

/// What one commit does to a mirror: empties it first (a truncate), then replaces the
/// rows of `keys` (the key columns of every key changed) by `added` (the table's columns).
pub struct MirrorChange {
    pub truncated: bool,
    pub added: RecordBatch,
    pub keys: RecordBatch,
}

/// Commits `change` to a mirror keyed by `key`, recording `position`.
pub async fn merge_batches(
    rows: &Arc<dyn RowLevelTable>,
    schema: &SchemaRef,
    key: &[String],
    change: MirrorChange,
    job: &str,
    expected: Option<&str>,
    position: &str,
) -> Result<(), JobError> {
    let df = |e: datafusion::error::DataFusionError| JobError::retry(e.to_string());
    let ctx = SessionContext::new();
    ctx.register_batch("added", change.added).map_err(df)?;
    let (files, kept) = if change.truncated {
        let files: Vec<String> = rows.files().await?.into_iter().map(|f| f.path).collect();
        (files, None)
    } else if change.keys.num_rows() == 0 {
        (Vec::new(), None)
    } else {
        let keys = change.keys;
        ctx.register_table(
            "changed",
            Arc::new(MemTable::try_new(keys.schema(), vec![vec![keys]]).map_err(df)?),
        )
        .map_err(df)?;
        ctx.register_table("current", rows.scan(None).await?)
            .map_err(df)?;
        let on = key
            .iter()
            .map(|k| format!("t.{q} = c.{q}", q = quote(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let found = ctx
            .sql(&format!(
                "SELECT DISTINCT t.{path} FROM current t JOIN changed c ON {on}",
                path = quote(PATH_COLUMN)
            ))
            .await
            .map_err(df)?
            .collect()
            .await
            .map_err(df)?;
        let mut files = Vec::new();
        for batch in &found {
            let paths = cast(batch.column(0), &DataType::Utf8)
                .map_err(|e| JobError::retry(e.to_string()))?;
            let paths = paths.as_any().downcast_ref::<StringArray>().unwrap();
            files.extend(paths.iter().flatten().map(str::to_string));
        }
        if files.is_empty() {
            (files, None)
        } else {
            let set: HashSet<String> = files.iter().cloned().collect();
            ctx.register_table("touched", rows.scan(Some(Arc::new(set))).await?)
                .map_err(df)?;
            let list = schema
                .fields()
                .iter()
                .map(|f| format!("t.{}", quote(f.name())))
                .collect::<Vec<_>>()
                .join(", ");
            let kept = ctx
                .sql(&format!(
                    "SELECT {list} FROM touched t LEFT ANTI JOIN changed c ON {on}"
                ))
                .await
                .map_err(df)?;
            (files, Some(kept))
        }
    };
    let mut result = ctx.table("added").await.map_err(df)?;
    if let Some(kept) = kept {
        result = kept.union(result).map_err(df)?;
    }
    let stream = result.execute_stream().await.map_err(df)?;
    // The table's own column types and names, whatever the union made of them.
    let target = schema.clone();
    let conformed = futures::StreamExt::map(stream, move |batch| {
        let batch = batch?;
        let columns = batch
            .columns()
            .iter()
            .zip(target.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c.clone())
                } else {
                    cast(c, f.data_type()).map_err(datafusion::error::DataFusionError::from)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new_with_options(
            target.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?)
    });
    let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), conformed));
    let recording = Recording {
        job,
        expected,
        position,
    };
    rows.commit_recording(files, stream, recording).await?;
    Ok(())
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgoutput::Column;
    use aichemy_engine::ingestion::SourceTable;

    fn relation() -> Arc<Relation> {
        Arc::new(Relation {
            id: 1,
            table: SourceTable {
                schema: "public".into(),
                table: "t".into(),
            },
            columns: vec![
                Column {
                    name: "id".into(),
                    type_oid: 23,
                    type_modifier: -1,
                    key: true,
                },
                Column {
                    name: "note".into(),
                    type_oid: 25,
                    type_modifier: -1,
                    key: false,
                },
            ],
        })
    }

    fn change(op: Op, id: &str, note: Option<&str>) -> Change {
        let row = vec![
            Value::Text(id.into()),
            note.map_or(Value::Null, |n| Value::Text(n.into())),
        ];
        Change {
            op,
            relation: relation(),
            before: (op == Op::Delete).then(|| row.clone()),
            after: (op != Op::Delete).then_some(row),
            lsn: 1,
            commit_lsn: 2,
            seq: 0,
            xid: Some(7),
            ts_us: 0,
        }
    }

    #[test]
    fn folding_keeps_the_last_change_of_each_key() {
        let key = vec!["id".to_string()];
        let folded = fold(
            vec![
                change(Op::Create, "1", Some("a")),
                change(Op::Update, "1", Some("b")),
                change(Op::Create, "2", None),
                change(Op::Delete, "2", None),
            ],
            &key,
        )
        .unwrap();
        assert!(!folded.truncated);
        assert_eq!(folded.last.len(), 2);
        let one = &folded.last[&vec![Some("1".to_string())]];
        assert_eq!(one.value("note"), Some("b"));
        assert_eq!(folded.last[&vec![Some("2".to_string())]].op, Op::Delete);

        let mut truncate = change(Op::Create, "3", None);
        truncate.op = Op::Truncate;
        let folded = fold(
            vec![
                change(Op::Create, "1", None),
                truncate,
                change(Op::Create, "4", None),
            ],
            &key,
        )
        .unwrap();
        assert!(folded.truncated);
        assert_eq!(folded.last.len(), 1);
    }

    #[test]
    fn unchanged_toast_values_come_from_the_old_row() {
        let mut c = change(Op::Update, "1", None);
        c.before = Some(vec![Value::Text("1".into()), Value::Text("long".into())]);
        c.after = Some(vec![Value::Text("1".into()), Value::Unchanged]);
        assert_eq!(c.value("note"), Some("long"));
        assert_eq!(row_json(&c, false), r#"{"id":1,"note":"long"}"#);
    }

    #[test]
    fn postgres_text_forms_become_typed_values() {
        use datafusion::arrow::array::{BooleanArray, TimestampMicrosecondArray};
        let field = Field::new("b", DataType::Boolean, true);
        let array = from_text(&field, vec![Some("t".into()), Some("f".into()), None]).unwrap();
        let array = array.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert!(array.value(0) && !array.value(1) && array.is_null(2));
        let field = Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        );
        let array = from_text(&field, vec![Some("2024-05-01 10:00:00.5+02".into())]).unwrap();
        let array = array
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(array.value(0), 1_714_550_400_500_000);
        let field = Field::new("v", DataType::Binary, true);
        assert!(from_text(&field, vec![Some("\\x0aff".into())]).is_ok());
        assert!(from_text(&field, vec![Some("\\x0".into())]).is_err());
        let field = Field::new("n", DataType::Int32, true);
        assert!(from_text(&field, vec![Some("x".into())]).is_err());
    }
}
