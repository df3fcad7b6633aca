//! Values as text, the way the Trino CLI shows them: `NULL` for null, timestamps with a
//! space separator, decimals with all their scale digits.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Result, TrinoError};

fn options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.9f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.9f %Z"))
        .with_time_format(Some("%H:%M:%S%.9f"))
}

/// Every cell of a batch as text, row by row; `None` for SQL NULL.
pub fn batch_cells(batch: &RecordBatch) -> Result<Vec<Vec<Option<String>>>> {
    let options = options();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| TrinoError::internal(e.to_string()))?;
    let schema = batch.schema();
    // Timestamps and times with the digits of their precision, as the protocol sends them.
    let precisions: Vec<Option<u8>> = schema
        .fields()
        .iter()
        .map(|f| {
            crate::types::temporal_precision(f).or(match f.data_type() {
                DataType::Timestamp(unit, _) | DataType::Time32(unit) | DataType::Time64(unit) => {
                    Some(crate::types::precision_of(unit))
                }
                _ => None,
            })
        })
        .collect();
    Ok((0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .zip(&precisions)
                .map(|((column, formatter), precision)| {
                    column.is_valid(row).then(|| {
                        let text = formatter.value(row).to_string();
                        match precision {
                            Some(p) => crate::types::with_fraction_digits(&text, *p),
                            None => text,
                        }
                    })
                })
                .collect()
        })
        .collect())
}
