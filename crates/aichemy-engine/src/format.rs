//! Values as text, the way the Trino CLI shows them: `NULL` for null, timestamps with a
//! space separator, decimals with all their scale digits.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::error::{Result, TrinoError};

fn options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_null("NULL")
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.6f"))
        .with_timestamp_tz_format(Some("%Y-%m-%d %H:%M:%S%.6f %Z"))
        .with_time_format(Some("%H:%M:%S%.6f"))
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
    Ok((0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(column, formatter)| {
                    column
                        .is_valid(row)
                        .then(|| formatter.value(row).to_string())
                })
                .collect()
        })
        .collect())
}
