//! How many distinct values a string column of Parquet files holds, from the
//! dictionaries of a few of its column chunks.
//!
//! A filter like `p_type = 'ECONOMY ANODIZED STEEL'` keeps one value of the column's
//! distinct ones, but Parquet files written by most tools carry no distinct counts, and
//! DataFusion then gives the filter a fixed 20 %. TPC-H q8's parts are 1/150 of the
//! table, not a fifth, and the 12 M lines estimated to join them (400 K in fact)
//! repartitioned both sides of the next join.
//!
//! A string column is dictionary-encoded by nearly every writer, and a chunk's dictionary
//! page says how many distinct values that chunk holds. [`distinct_values`] reads the
//! dictionaries of up to [`SAMPLES`] chunks spread over the files and their row groups:
//! - when the values repeat across chunks (the chunks' min/max ranges overlap), the
//!   column holds about as many values as the largest dictionary;
//! - when the chunks hold disjoint ranges (a sorted column) or nearly one value per row,
//!   or a dictionary overflowed into plain pages, the values are counted as new in every
//!   chunk: the rows times the share of distinct values in the sampled chunks.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::parquet::basic::Encoding;
use datafusion::parquet::column::page::{Page, PageReader};
use datafusion::parquet::errors::Result as ParquetResult;
use datafusion::parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use datafusion::parquet::file::reader::{ChunkReader, Length};
use datafusion::parquet::file::serialized_reader::SerializedPageReader;
use futures::future::join_all;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

/// How many column chunks' dictionaries are read at most.
const SAMPLES: usize = 6;

/// Dictionaries larger than this are not read: the chunk is counted as holding one
/// value per row (writers cap a dictionary near 1 MiB and fall back to plain pages).
const LARGEST_DICTIONARY: u64 = 4 << 20;

/// In a chunk with at least this share of distinct values per row, values are taken as
/// not repeating across chunks.
const NEARLY_UNIQUE: f64 = 0.5;

/// The estimated number of distinct values of the string column `column` over all of
/// `files`, or `None` when no sampled chunk could tell.
pub async fn distinct_values(
    store: &dyn ObjectStore,
    files: &[ObjectMeta],
    column: &str,
    cache: Option<Arc<dyn FileMetadataCache>>,
) -> Option<f64> {
    let sampled_files = spread(files.len(), SAMPLES);
    let footers = join_all(sampled_files.iter().map(|&i| {
        let cache = cache.clone();
        async move {
            DFParquetMetadata::new(store, &files[i])
                .with_file_metadata_cache(cache)
                .fetch_metadata()
                .await
        }
    }))
    .await;
    let footers: Vec<(&ObjectMeta, Arc<ParquetMetaData>)> = sampled_files
        .iter()
        .zip(footers)
        .filter_map(|(&i, footer)| Some((&files[i], footer.ok()?)))
        .collect();
    if footers.is_empty() {
        return None;
    }
    let sampled_rows: i64 = footers
        .iter()
        .map(|(_, f)| f.file_metadata().num_rows())
        .sum();
    let rows = sampled_rows as f64 * files.len() as f64 / footers.len() as f64;
    // The chunks to read, spread over the sampled files' row groups.
    let per_file = SAMPLES.div_ceil(footers.len());
    let chunks: Vec<(&ObjectMeta, &ColumnChunkMetaData)> = footers
        .iter()
        .flat_map(|(file, footer)| {
            let groups = footer.row_groups();
            spread(groups.len(), per_file)
                .into_iter()
                .filter_map(move |g| {
                    let chunk = groups[g]
                        .columns()
                        .iter()
                        .find(|c| c.column_path().parts() == [column])?;
                    Some((*file, chunk))
                })
        })
        .collect();
    let samples = join_all(
        chunks
            .iter()
            .map(|&(file, chunk)| sample(store, file, chunk)),
    )
    .await;
    let samples: Vec<Sample> = samples.into_iter().flatten().collect();
    estimate(&samples, rows)
}

/// What one column chunk tells.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    rows: u64,
    /// Values in its dictionary; all its rows when the dictionary overflowed into plain
    /// pages or is too large to read.
    values: u64,
    /// Its rows' smallest and largest values, when its statistics hold them.
    range: Option<(Bytes, Bytes)>,
}

/// Reads the dictionary of one column chunk.
async fn sample(
    store: &dyn ObjectStore,
    file: &ObjectMeta,
    chunk: &ColumnChunkMetaData,
) -> Option<Sample> {
    let rows = u64::try_from(chunk.num_values()).ok()?;
    let range = chunk.statistics().and_then(|s| {
        Some((
            Bytes::copy_from_slice(s.min_bytes_opt()?),
            Bytes::copy_from_slice(s.max_bytes_opt()?),
        ))
    });
    let start = u64::try_from(chunk.dictionary_page_offset()?).ok()?;
    let end = u64::try_from(chunk.data_page_offset()).ok()?;
    let overflowed = chunk.page_encoding_stats_mask().is_some_and(|mask| {
        !(mask.is_only(Encoding::RLE_DICTIONARY) || mask.is_only(Encoding::PLAIN_DICTIONARY))
    });
    if overflowed || end <= start || end - start > LARGEST_DICTIONARY {
        return Some(Sample {
            rows,
            values: rows,
            range,
        });
    }
    let bytes = store.get_range(&file.location, start..end).await.ok()?;
    let window = Arc::new(Window { start, bytes });
    let mut pages = SerializedPageReader::new(window, chunk, rows as usize, None).ok()?;
    match pages.get_next_page().ok()?? {
        Page::DictionaryPage { num_values, .. } => Some(Sample {
            rows,
            values: u64::from(num_values),
            range,
        }),
        _ => None,
    }
}

/// The distinct values of a column of `rows` rows whose sampled chunks are `samples`.
fn estimate(samples: &[Sample], rows: f64) -> Option<f64> {
    let largest = samples.iter().map(|s| s.values).max()? as f64;
    let sampled_rows: u64 = samples.iter().map(|s| s.rows).sum();
    if sampled_rows == 0 {
        return None;
    }
    let share = samples.iter().map(|s| s.values).sum::<u64>() as f64 / sampled_rows as f64;
    let new_in_every_chunk = share >= NEARLY_UNIQUE || samples.len() > 1 && disjoint(samples);
    Some(if new_in_every_chunk {
        (rows * share).max(largest)
    } else {
        largest
    })
}

/// Whether every sampled chunk's range of values is apart from the others'.
fn disjoint(samples: &[Sample]) -> bool {
    let mut ranges = Vec::with_capacity(samples.len());
    for sample in samples {
        match &sample.range {
            Some(range) => ranges.push(range),
            None => return false,
        }
    }
    ranges.sort();
    ranges.windows(2).all(|pair| pair[0].1 < pair[1].0)
}

/// Up to `count` indexes spread evenly over `0..len`, first and last included.
fn spread(len: usize, count: usize) -> Vec<usize> {
    if len <= count {
        return (0..len).collect();
    }
    if count <= 1 {
        return vec![0];
    }
    let mut picked: Vec<usize> = (0..count).map(|i| i * (len - 1) / (count - 1)).collect();
    picked.dedup();
    picked
}

/// The bytes of a file from offset `start`, read by Parquet's page reader as if they
/// were the file.
struct Window {
    start: u64,
    bytes: Bytes,
}

impl Length for Window {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for Window {
    type T = <Bytes as ChunkReader>::T;

    fn get_read(&self, start: u64) -> ParquetResult<Self::T> {
        self.bytes.get_read(start.saturating_sub(self.start))
    }

    fn get_bytes(&self, start: u64, length: usize) -> ParquetResult<Bytes> {
        self.bytes
            .get_bytes(start.saturating_sub(self.start), length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use object_store::memory::InMemory;
    use object_store::path::Path;

    fn chunk(rows: u64, values: u64, range: Option<(&str, &str)>) -> Sample {
        Sample {
            rows,
            values,
            range: range.map(|(low, high)| {
                (
                    Bytes::copy_from_slice(low.as_bytes()),
                    Bytes::copy_from_slice(high.as_bytes()),
                )
            }),
        }
    }

    #[test]
    fn values_repeated_in_every_chunk_are_as_many_as_the_largest_dictionary() {
        // TPC-H part types: 150 in every row group of 100 K parts.
        let samples = [
            chunk(100_000, 150, Some(("ECONOMY", "STANDARD"))),
            chunk(100_000, 149, Some(("ECONOMY", "STANDARD"))),
        ];
        assert_eq!(estimate(&samples, 2_000_000.0), Some(150.0));
        // Without statistics, values are taken to repeat.
        let samples = [chunk(100_000, 150, None), chunk(100_000, 150, None)];
        assert_eq!(estimate(&samples, 2_000_000.0), Some(150.0));
    }

    #[test]
    fn values_sorted_or_unique_are_new_in_every_chunk() {
        // Sorted: a thousand days over twenty chunks, fifty in each.
        let samples = [
            chunk(50_000, 50, Some(("1992-01-01", "1992-02-19"))),
            chunk(50_000, 50, Some(("1994-10-01", "1994-11-19"))),
        ];
        assert_eq!(estimate(&samples, 1_000_000.0), Some(1000.0));
        // Nearly one value per row: customer names.
        let samples = [
            chunk(100_000, 100_000, Some(("Customer#1", "Customer#9"))),
            chunk(100_000, 99_000, Some(("Customer#1", "Customer#9"))),
        ];
        assert_eq!(estimate(&samples, 1_500_000.0), Some(1_492_500.0));
        assert_eq!(estimate(&[], 10.0), None);
    }

    /// A Parquet file of `rows` rows in row groups of 1000: `kind` cycles through 40
    /// texts, `name` is unique and sorted, after the file's name.
    async fn file(store: &InMemory, name: &str, rows: usize) -> ObjectMeta {
        let schema = Arc::new(Schema::new(vec![
            Field::new("kind", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let kinds: StringArray = (0..rows)
            .map(|i| Some(format!("kind {}", i % 40)))
            .collect();
        let names: StringArray = (0..rows).map(|i| Some(format!("{name} {i:08}"))).collect();
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(kinds), Arc::new(names)]).unwrap();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1000))
            .build();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let location = Path::from(name);
        store.put(&location, bytes.into()).await.unwrap();
        store.head(&location).await.unwrap()
    }

    #[tokio::test]
    async fn dictionaries_of_parquet_files_count_their_values() {
        let store = InMemory::new();
        let files = [
            file(&store, "t/a.parquet", 10_000).await,
            file(&store, "t/b.parquet", 10_000).await,
        ];
        let kinds = distinct_values(&store, &files, "kind", None).await;
        assert_eq!(kinds, Some(40.0));
        let names = distinct_values(&store, &files, "name", None).await;
        assert_eq!(names, Some(20_000.0));
        assert_eq!(distinct_values(&store, &files, "other", None).await, None);
        // A file that is not Parquet tells nothing.
        store
            .put(&Path::from("t/c.txt"), b"not parquet".to_vec().into())
            .await
            .unwrap();
        let text = store.head(&Path::from("t/c.txt")).await.unwrap();
        assert_eq!(distinct_values(&store, &[text], "kind", None).await, None);
    }

    #[test]
    fn indexes_are_spread_from_first_to_last() {
        assert_eq!(spread(3, 6), vec![0, 1, 2]);
        assert_eq!(spread(524, 3), vec![0, 261, 523]);
        assert_eq!(spread(10, 1), vec![0]);
        assert_eq!(spread(0, 6), Vec::<usize>::new());
    }
}
