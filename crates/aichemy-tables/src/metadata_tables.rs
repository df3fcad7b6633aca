//! What the metadata tables of every format (`"t$history"`, `"t$properties"`, …) are made
//! of: rows built in memory, in Trino's column types.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;

use crate::{Result, TableError};

/// `timestamp(3) with time zone`, in UTC.
pub(crate) fn utc_millis() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// A `map(varchar, varchar)` column named `name`.
pub(crate) fn text_map(name: &str) -> Field {
    Field::new(
        name,
        DataType::Map(
            Arc::new(Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("keys", DataType::Utf8, false),
                    Field::new("values", DataType::Utf8, true),
                ])),
                false,
            )),
            false,
        ),
        true,
    )
}

/// A table of one batch: `columns` under `fields` (the builders' nested field names are
/// their own; the fields name the columns).
pub(crate) fn memory_table(
    format: &'static str,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
) -> Result<Arc<dyn TableProvider>> {
    let error = |e: datafusion::error::DataFusionError| TableError::Format {
        format,
        source: Box::new(e),
    };
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| error(datafusion::error::DataFusionError::from(e)))?;
    let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(error)?;
    Ok(Arc::new(table))
}
