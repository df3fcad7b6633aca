//! INSERT into remote tables: the rows go in one `COPY … FROM STDIN` inside one
//! transaction, so a failed INSERT leaves the table as it was.

use std::any::Any;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::Result as DFResult;
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;

use crate::sql::quote_ident;
use crate::Remote;

/// Appends an INSERT's rows to one remote table in one transaction.
#[derive(Debug)]
pub struct PostgresSink {
    remote: Arc<Remote>,
    table: String,
    columns: Vec<String>,
    schema: SchemaRef,
}

impl PostgresSink {
    pub fn new(
        remote: Arc<Remote>,
        table: String,
        columns: Vec<String>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            remote,
            table,
            columns,
            schema,
        }
    }
}

impl DisplayAs for PostgresSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "PostgresSink: catalog={}, table={}",
            self.remote.catalog, self.table
        )
    }
}

#[async_trait]
impl DataSink for PostgresSink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DFResult<u64> {
        let remote = &self.remote;
        let external = crate::remote_failure;
        let mut transaction = remote
            .pool
            .begin()
            .await
            .map_err(|e| external(remote.describe_error(&e)))?;
        let statement = format!(
            "COPY {} ({}) FROM STDIN",
            self.table,
            self.columns
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut copy = transaction
            .copy_in_raw(&statement)
            .await
            .map_err(|e| external(remote.describe_error(&e)))?;
        let mut rows = 0u64;
        while let Some(batch) = data.next().await {
            let encoded = batch.and_then(|b| {
                rows += b.num_rows() as u64;
                copy_text(&b).map_err(|e| external(remote.message(&e)))
            });
            let text = match encoded {
                Ok(text) => text,
                Err(e) => {
                    let _ = copy.abort("the INSERT failed").await;
                    return Err(e);
                }
            };
            if let Err(e) = copy.send(text.into_bytes()).await {
                let _ = copy.abort("the INSERT failed").await;
                return Err(external(remote.describe_error(&e)));
            }
        }
        copy.finish()
            .await
            .map_err(|e| external(remote.describe_error(&e)))?;
        transaction
            .commit()
            .await
            .map_err(|e| external(remote.describe_error(&e)))?;
        Ok(rows)
    }
}

/// A batch in COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
fn copy_text(batch: &RecordBatch) -> Result<String, String> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|array| ValueText::new(array, &options))
        .collect::<Result<Vec<_>, String>>()?;
    let mut out = String::new();
    let mut value = String::new();
    for row in 0..batch.num_rows() {
        for (i, formatter) in formatters.iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            value.clear();
            if formatter.write(row, &mut value)? {
                escape_into(&value, &mut out);
            } else {
                out.push_str("\\N");
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// COPY text escaping of one value.
fn escape_into(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

/// The PostgreSQL input text of one column's values.
enum ValueText<'a> {
    Binary(&'a ArrayRef),
    List(&'a ArrayRef),
    Display(&'a ArrayRef, ArrayFormatter<'a>),
}

impl<'a> ValueText<'a> {
    fn new(array: &'a ArrayRef, options: &'a FormatOptions<'a>) -> Result<Self, String> {
        Ok(match array.data_type() {
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Self::Binary(array),
            DataType::List(_) | DataType::LargeList(_) => Self::List(array),
            DataType::Struct(_) | DataType::Map(_, _) | DataType::Union(_, _) => {
                return Err(format!(
                    "values of type {} cannot be written to PostgreSQL",
                    array.data_type()
                ))
            }
            _ => Self::Display(
                array,
                ArrayFormatter::try_new(array.as_ref(), options).map_err(|e| e.to_string())?,
            ),
        })
    }

    /// Writes the value of a row; false when it is NULL.
    fn write(&self, row: usize, out: &mut String) -> Result<bool, String> {
        let array = match self {
            Self::Binary(a) | Self::List(a) | Self::Display(a, _) => a,
        };
        if array.is_null(row) {
            return Ok(false);
        }
        match self {
            Self::Binary(array) => {
                out.push_str("\\x");
                let bytes: &[u8] = match array.data_type() {
                    DataType::Binary => array.as_binary::<i32>().value(row),
                    DataType::LargeBinary => array.as_binary::<i64>().value(row),
                    _ => array.as_binary_view().value(row),
                };
                for b in bytes {
                    let _ = write!(out, "{b:02x}");
                }
            }
            Self::List(array) => {
                let items = match array.data_type() {
                    DataType::List(_) => array.as_list::<i32>().value(row),
                    _ => array.as_list::<i64>().value(row),
                };
                let options = FormatOptions::default();
                let inner = ValueText::new(&items, &options)?;
                out.push('{');
                let mut item = String::new();
                for i in 0..items.len() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.clear();
                    if inner.write(i, &mut item)? {
                        out.push('"');
                        for c in item.chars() {
                            if c == '"' || c == '\\' {
                                out.push('\\');
                            }
                            out.push(c);
                        }
                        out.push('"');
                    } else {
                        out.push_str("NULL");
                    }
                }
                out.push('}');
            }
            Self::Display(_, formatter) => {
                write!(out, "{}", formatter.value(row)).map_err(|e| e.to_string())?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BinaryArray, Int32Array, ListArray, StringArray};
    use datafusion::arrow::datatypes::{Field, Int32Type, Schema};

    #[test]
    fn copy_text_escapes_and_marks_nulls() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("raw", DataType::Binary, true),
            Field::new("tags", DataType::new_list(DataType::Int32, true), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None])),
                Arc::new(StringArray::from(vec![Some("a\tb\\c\nd"), Some("\\N")])),
                Arc::new(BinaryArray::from(vec![Some(&[1u8, 255][..]), None])),
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(1), None]),
                    None,
                ])),
            ],
        )
        .unwrap();
        assert_eq!(
            copy_text(&batch).unwrap(),
            "1\ta\\tb\\\\c\\nd\t\\\\x01ff\t{\"1\",NULL}\n\\N\t\\\\N\t\\N\t\\N\n"
        );
    }
}
