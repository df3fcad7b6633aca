//! Result printing for `aichemy sql`: aligned tables like the Trino CLI, CSV or JSON lines.

use std::io::Write;

use aichemy_engine::format::batch_cells;
use aichemy_engine::TrinoError;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header and a row count.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per row.
    Json,
}

/// Prints rows; answers how many were printed.
pub fn print_rows(
    out: &mut impl Write,
    format: Format,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<usize, TrinoError> {
    let mut rows = Vec::new();
    for batch in batches {
        rows.extend(batch_cells(batch)?);
    }
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let io = |e: std::io::Error| TrinoError::internal(format!("cannot write output: {e}"));
    match format {
        Format::Table => {
            let numeric: Vec<bool> = schema
                .fields()
                .iter()
                .map(|f| f.data_type().is_numeric())
                .collect();
            let text = |cell: &Option<String>| cell.clone().unwrap_or_else(|| "NULL".into());
            let widths: Vec<usize> = names
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    rows.iter()
                        .map(|r| text(&r[i]).chars().count())
                        .chain([name.chars().count()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let header: Vec<String> = names
                .iter()
                .zip(&widths)
                .map(|(n, w)| format!(" {n:^w$} "))
                .collect();
            writeln!(out, "{}", header.join("|")).map_err(io)?;
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
            writeln!(out, "{}", rule.join("+")).map_err(io)?;
            for row in &rows {
                let cells: Vec<String> = row
                    .iter()
                    .enumerate()
                    .map(|(i, cell)| {
                        let w = widths[i];
                        if numeric[i] {
                            format!(" {:>w$} ", text(cell))
                        } else {
                            format!(" {:<w$} ", text(cell))
                        }
                    })
                    .collect();
                writeln!(out, "{}", cells.join("|").trim_end()).map_err(io)?;
            }
            let n = rows.len();
            writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" }).map_err(io)?;
        }
        Format::Csv => {
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            writeln!(
                out,
                "{}",
                names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(",")
            )
            .map_err(io)?;
            for row in &rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|c| c.as_deref().map(quote).unwrap_or_default())
                    .collect();
                writeln!(out, "{}", cells.join(",")).map_err(io)?;
            }
        }
        Format::Json => {
            let mut line = Vec::new();
            for batch in batches {
                // Like the Trino CLI, a NULL is written as `null`, not left out.
                let mut writer = datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, datafusion::arrow::json::writer::LineDelimited>(&mut line);
                writer
                    .write(batch)
                    .map_err(|e| TrinoError::internal(e.to_string()))?;
                writer
                    .finish()
                    .map_err(|e| TrinoError::internal(e.to_string()))?;
            }
            out.write_all(&line).map_err(io)?;
        }
    }
    Ok(rows.len())
}
