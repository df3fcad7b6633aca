//! Lance's indexes and searches.
//!
//! Vector indexes (IVF_FLAT, IVF_PQ, IVF_SQ, IVF_HNSW_SQ, IVF_HNSW_PQ, each under l2, cosine
//! or dot) and full-text (inverted) indexes are built, rebuilt and dropped as one Lance
//! commit each, and listed as `"t$indexes"`. A scan asked for a [`Search`] is Lance's own
//! plan: the `k` nearest rows (through the index built for the asked metric, or by reading
//! every vector when there is none or the query wants the exact answer) or the `k` best
//! matches of a text, in both cases among the rows the scan's filters keep (Lance's
//! pre-filter), so `k` rows come back whenever `k` rows match. Rows added since an index was
//! built are searched by reading them until [`refresh`] (optimize) folds them in.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float32Array, Float64Array, Int64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use futures::StreamExt;
use lance::index::vector::VectorIndexParams;
use lance::index::DatasetIndexExt;
use lance::Dataset;
use lance_index::optimize::OptimizeOptions;
use lance_index::scalar::{FullTextSearchQuery, InvertedIndexParams};
use lance_index::vector::hnsw::builder::HnswBuildParams;
use lance_index::vector::ivf::IvfBuildParams;
use lance_index::vector::pq::PQBuildParams;
use lance_index::vector::sq::builder::SQBuildParams;
use lance_index::IndexType;
use lance_linalg::distance::DistanceType;

use super::{lance_error, FORMAT};
use crate::metadata_tables::memory_table;
use crate::search::{
    default_index_name, invalid, IndexChange, IndexKind, Metric, Search, TextIndex, TextScores,
    VectorIndex, VectorIndexType,
};
use crate::{Result, TableError};

/// The IVF partitions an index search probes when the query does not say.
const DEFAULT_NPROBES: usize = 20;
/// Candidates per result an index search ranks again by their exact distance when the
/// query does not say (quantized distances alone keep about 0.6 of the true top 10 of
/// 1,000,000 vectors under IVF_PQ; ten per result keep 0.95: benchmarks/vector_search.py).
const DEFAULT_REFINE_FACTOR: u32 = 10;
/// The column Lance adds to a nearest-neighbour search's rows.
const DISTANCE: &str = "_distance";
/// The column Lance adds to a full-text search's rows.
const SCORE: &str = "_score";

fn distance_type(metric: Metric) -> DistanceType {
    match metric {
        Metric::L2 => DistanceType::L2,
        Metric::Cosine => DistanceType::Cosine,
        Metric::Dot => DistanceType::Dot,
    }
}

/// The length of the vectors in `column`: Lance indexes and searches only fixed-size lists
/// of floats (what an INSERT of vectors of one length stores).
fn vector_length(dataset: &Dataset, column: &str) -> Result<i32> {
    let schema = datafusion::arrow::datatypes::Schema::from(dataset.schema());
    let field = schema
        .field_with_name(column)
        .map_err(|_| TableError::ColumnNotFound {
            column: column.to_string(),
        })?;
    match field.data_type() {
        DataType::FixedSizeList(element, n) if element.data_type().is_floating() => Ok(*n),
        _ => Err(invalid(format!(
            "Column '{column}' holds no vectors of one length: a vector index needs an \
             ARRAY(REAL) or ARRAY(DOUBLE) column whose arrays all have the same length"
        ))),
    }
}

/// Builds, rebuilds or drops an index of `dataset`, one Lance commit.
pub(super) async fn change_index(dataset: &mut Dataset, change: IndexChange) -> Result<()> {
    match change {
        IndexChange::Drop { name } => {
            let indexes = dataset
                .load_indices_by_name(&name)
                .await
                .map_err(lance_error)?;
            if indexes.is_empty() {
                return Err(invalid(format!("Index '{name}' does not exist")));
            }
            dataset.drop_index(&name).await.map_err(lance_error)
        }
        IndexChange::Create {
            name,
            column,
            kind,
            replace,
        } => {
            let name = name.unwrap_or_else(|| default_index_name(&column));
            let exists = !dataset
                .load_indices_by_name(&name)
                .await
                .map_err(lance_error)?
                .is_empty();
            if exists && !replace {
                return Err(invalid(format!(
                    "Index '{name}' already exists; replace => true rebuilds it"
                )));
            }
            let rows = dataset.count_rows(None).await.map_err(lance_error)?;
            match kind {
                IndexKind::Vector(spec) => {
                    let length = vector_length(dataset, &column)?;
                    if rows == 0 {
                        return Err(invalid(format!(
                            "Table has no rows to train the vector index '{name}' on"
                        )));
                    }
                    let params = vector_params(&spec, length, rows)?;
                    dataset
                        .create_index(&[&column], IndexType::Vector, Some(name), &params, true)
                        .await
                        .map_err(lance_error)?;
                }
                IndexKind::Text(spec) => {
                    let schema = datafusion::arrow::datatypes::Schema::from(dataset.schema());
                    let field = schema.field_with_name(&column).map_err(|_| {
                        TableError::ColumnNotFound {
                            column: column.clone(),
                        }
                    })?;
                    if !matches!(
                        field.data_type(),
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    ) {
                        return Err(invalid(format!(
                            "A text index needs a varchar column; '{column}' is not one"
                        )));
                    }
                    let params = text_params(&spec)?;
                    dataset
                        .create_index(&[&column], IndexType::Inverted, Some(name), &params, true)
                        .await
                        .map_err(lance_error)?;
                }
            }
            Ok(())
        }
    }
}

fn vector_params(spec: &VectorIndex, length: i32, rows: usize) -> Result<VectorIndexParams> {
    let metric = distance_type(spec.metric);
    let length = usize::try_from(length).unwrap_or(1);
    // About one partition per 4,096 rows, at least one and at most 4,096 (Lance's bound).
    let partitions = spec.partitions.unwrap_or((rows / 4096).clamp(1, 4096));
    if partitions == 0 || partitions > rows {
        return Err(invalid(format!(
            "partitions must be between 1 and the table's {rows} rows"
        )));
    }
    let mut ivf = IvfBuildParams::new(partitions);
    if let Some(iterations) = spec.max_iterations {
        ivf.max_iters = iterations;
    }
    if let Some(rate) = spec.sample_rate {
        ivf.sample_rate = rate;
    }
    let pq = || -> Result<PQBuildParams> {
        let sub_vectors = spec.sub_vectors.unwrap_or(match length {
            n if n % 16 == 0 => n / 16,
            n if n % 8 == 0 => n / 8,
            _ => 1,
        });
        if sub_vectors == 0 || length % sub_vectors != 0 {
            return Err(invalid(format!(
                "sub_vectors must divide the vectors' length {length}"
            )));
        }
        let mut pq = PQBuildParams {
            num_sub_vectors: sub_vectors,
            num_bits: usize::from(spec.bits.unwrap_or(8)),
            ..PQBuildParams::default()
        };
        if let Some(iterations) = spec.max_iterations {
            pq.max_iters = iterations;
        }
        Ok(pq)
    };
    let sq = || SQBuildParams {
        num_bits: u16::from(spec.bits.unwrap_or(8)),
        sample_rate: spec.sample_rate.unwrap_or(256),
    };
    let hnsw = || {
        let mut hnsw = HnswBuildParams::default();
        if let Some(m) = spec.m {
            hnsw.m = m;
        }
        if let Some(ef) = spec.ef_construction {
            hnsw.ef_construction = ef;
        }
        hnsw
    };
    Ok(match spec.index_type {
        VectorIndexType::IvfFlat => VectorIndexParams::with_ivf_flat_params(metric, ivf),
        VectorIndexType::IvfPq => VectorIndexParams::with_ivf_pq_params(metric, ivf, pq()?),
        VectorIndexType::IvfSq => VectorIndexParams::with_ivf_sq_params(metric, ivf, sq()),
        VectorIndexType::IvfHnswSq => {
            VectorIndexParams::with_ivf_hnsw_sq_params(metric, ivf, hnsw(), sq())
        }
        VectorIndexType::IvfHnswPq => {
            VectorIndexParams::with_ivf_hnsw_pq_params(metric, ivf, hnsw(), pq()?)
        }
    })
}

fn text_params(spec: &TextIndex) -> Result<InvertedIndexParams> {
    let mut params = InvertedIndexParams::default()
        .with_position(spec.with_position)
        .lower_case(spec.lower_case)
        .stem(spec.stem)
        .remove_stop_words(spec.remove_stop_words)
        .ascii_folding(spec.ascii_folding);
    if let Some(language) = &spec.language {
        params = params
            .language(language)
            .map_err(|e| invalid(format!("Unknown language '{language}': {e}")))?;
    }
    Ok(params)
}

/// Folds the rows added since each index was built into it (Lance's index optimization).
pub(super) async fn refresh(dataset: &mut Dataset) -> Result<()> {
    if dataset
        .load_indices()
        .await
        .map_err(lance_error)?
        .is_empty()
    {
        return Ok(());
    }
    dataset
        .optimize_indices(&OptimizeOptions::default())
        .await
        .map_err(lance_error)
}

/// The vector indexes of `dataset` as they were built: name, column and definition, read
/// back from their details and statistics, so that a commit replacing every fragment one
/// covers (which Lance answers by dropping it) can build it again.
pub(super) async fn vector_definitions(
    dataset: &Dataset,
) -> Result<Vec<(String, String, VectorIndex)>> {
    let mut definitions = Vec::new();
    for row in index_rows(dataset).await? {
        let Some(metric) = row.metric.as_deref().and_then(Metric::parse) else {
            continue;
        };
        let Some(index_type) = VectorIndexType::parse(&row.index_type) else {
            continue;
        };
        let details: serde_json::Value =
            serde_json::from_str(&row.details).unwrap_or(serde_json::Value::Null);
        let number = |value: &serde_json::Value, key: &str| {
            value.get(key).and_then(|v| v.as_u64()).map(|n| n as usize)
        };
        let statistics: serde_json::Value = dataset
            .index_statistics(&row.name)
            .await
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(serde_json::Value::Null);
        let compression = details.get("compression").cloned().unwrap_or_default();
        let hnsw = details.get("hnsw").cloned().unwrap_or_default();
        definitions.push((
            row.name,
            row.column,
            VectorIndex {
                index_type,
                metric,
                partitions: find_number(&statistics, "num_partitions"),
                sub_vectors: number(&compression, "num_sub_vectors"),
                bits: number(&compression, "num_bits").and_then(|b| u8::try_from(b).ok()),
                m: number(&hnsw, "max_connections"),
                ef_construction: number(&hnsw, "construction_ef"),
                max_iterations: None,
                sample_rate: None,
            },
        ));
    }
    Ok(definitions)
}

/// The first number under `key` anywhere in `value`.
fn find_number(value: &serde_json::Value, key: &str) -> Option<usize> {
    match value {
        serde_json::Value::Object(map) => map
            .get(key)
            .and_then(|v| v.as_u64())
            .map(|n| n as usize)
            .or_else(|| map.values().find_map(|v| find_number(v, key))),
        serde_json::Value::Array(items) => items.iter().find_map(|v| find_number(v, key)),
        _ => None,
    }
}

/// Builds again the vector indexes of `before` a commit made `dataset` lose.
pub(super) async fn rebuild_lost(
    dataset: &mut Dataset,
    before: Vec<(String, String, VectorIndex)>,
) -> Result<()> {
    if before.is_empty() || dataset.count_rows(None).await.map_err(lance_error)? == 0 {
        return Ok(());
    }
    let present: Vec<String> = index_rows(dataset)
        .await?
        .into_iter()
        .map(|row| row.name)
        .collect();
    for (name, column, mut spec) in before {
        if present.contains(&name) {
            continue;
        }
        let rows = dataset.count_rows(None).await.map_err(lance_error)?;
        spec.partitions = spec.partitions.map(|p| p.min(rows));
        let change = IndexChange::Create {
            name: Some(name),
            column,
            kind: IndexKind::Vector(spec),
            replace: true,
        };
        change_index(dataset, change).await?;
    }
    Ok(())
}

/// One index as `"t$indexes"` lists it.
struct IndexRow {
    name: String,
    column: String,
    index_type: String,
    metric: Option<String>,
    indexed_rows: u64,
    unindexed_rows: u64,
    details: String,
    segments: Vec<uuid::Uuid>,
}

async fn index_rows(dataset: &Dataset) -> Result<Vec<IndexRow>> {
    let descriptions = dataset.describe_indices(None).await.map_err(lance_error)?;
    let schema = dataset.schema();
    let mut rows = Vec::new();
    for description in descriptions {
        let column = description
            .field_ids()
            .iter()
            .filter_map(|id| schema.field_by_id(*id as i32))
            .map(|f| f.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        let details = description.details().unwrap_or_else(|_| "{}".into());
        let metric = serde_json::from_str::<serde_json::Value>(&details)
            .ok()
            .and_then(|v| {
                v.get("metric_type")
                    .and_then(|m| m.as_str())
                    .map(str::to_lowercase)
            });
        // Fragments no segment of the index covers are searched by reading them.
        let mut covered = std::collections::HashSet::new();
        for segment in description.segments() {
            if let Some(bitmap) = &segment.fragment_bitmap {
                covered.extend(bitmap.iter());
            }
        }
        let unindexed_rows = dataset
            .fragments()
            .iter()
            .filter(|f| !covered.contains(&(f.id as u32)))
            .filter_map(|f| f.num_rows())
            .sum::<usize>() as u64;
        rows.push(IndexRow {
            name: description.name().to_string(),
            column,
            index_type: description.index_type().to_string(),
            metric,
            indexed_rows: description.rows_indexed(),
            unindexed_rows,
            details,
            segments: description.segments().iter().map(|s| s.uuid).collect(),
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// `"t$indexes"`: each index with its column, type, metric, the rows it covers and the rows
/// added since it was built (searched by reading them until optimize folds them in).
pub(super) async fn indexes_table(
    dataset: Option<&Dataset>,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    let rows = match dataset {
        Some(dataset) => index_rows(dataset).await?,
        None => Vec::new(),
    };
    let mut name = StringBuilder::new();
    let mut column = StringBuilder::new();
    let mut index_type = StringBuilder::new();
    let mut metric = StringBuilder::new();
    let mut indexed = Int64Builder::new();
    let mut unindexed = Int64Builder::new();
    let mut current = BooleanBuilder::new();
    let mut details = StringBuilder::new();
    for row in &rows {
        name.append_value(&row.name);
        column.append_value(&row.column);
        index_type.append_value(&row.index_type);
        metric.append_option(row.metric.as_deref());
        indexed.append_value(row.indexed_rows as i64);
        unindexed.append_value(row.unindexed_rows as i64);
        current.append_value(row.unindexed_rows == 0);
        details.append_value(&row.details);
    }
    memory_table(
        FORMAT,
        vec![
            Field::new("index_name", DataType::Utf8, false),
            Field::new("column_name", DataType::Utf8, false),
            Field::new("index_type", DataType::Utf8, false),
            Field::new("metric", DataType::Utf8, true),
            Field::new("indexed_rows", DataType::Int64, false),
            Field::new("unindexed_rows", DataType::Int64, false),
            Field::new("up_to_date", DataType::Boolean, false),
            Field::new("details", DataType::Utf8, false),
        ],
        vec![
            Arc::new(name.finish()),
            Arc::new(column.finish()),
            Arc::new(index_type.finish()),
            Arc::new(metric.finish()),
            Arc::new(indexed.finish()),
            Arc::new(unindexed.finish()),
            Arc::new(current.finish()),
            Arc::new(details.finish()),
        ],
    )
}

/// How a nearest-neighbour search under one metric goes through an index.
enum IndexUse {
    /// Lance's default choice: the column's first index, which is the one for the metric.
    First { name: String, index_type: String },
    /// Another index on the column, named by its segments (Lance then searches only the
    /// rows it covers).
    Segments {
        name: String,
        index_type: String,
        segments: Vec<uuid::Uuid>,
    },
    /// No index fits: every vector is read.
    Exact(&'static str),
}

/// The index a nearest-neighbour search under `metric` on `column` goes through.
async fn vector_index_for(dataset: &Dataset, column: &str, metric: Metric) -> Result<IndexUse> {
    let wanted = metric.name();
    for row in index_rows(dataset).await? {
        if row.column != column || row.metric.as_deref() != Some(wanted) {
            continue;
        }
        if first_on_column(dataset, column, &row.name).await? {
            return Ok(IndexUse::First {
                name: row.name,
                index_type: row.index_type,
            });
        }
        if row.unindexed_rows > 0 {
            return Ok(IndexUse::Exact(
                "the index for this metric is not the column's first and misses new rows",
            ));
        }
        return Ok(IndexUse::Segments {
            name: row.name,
            index_type: row.index_type,
            segments: row.segments,
        });
    }
    Ok(IndexUse::Exact("no index for this metric"))
}

/// Whether `name` is the first index on `column` (the one Lance's search takes).
async fn first_on_column(dataset: &Dataset, column: &str, name: &str) -> Result<bool> {
    let Some(field) = dataset.schema().field(column) else {
        return Ok(false);
    };
    let indexes = dataset.load_indices().await.map_err(lance_error)?;
    Ok(indexes
        .iter()
        .find(|index| index.fields.contains(&field.id))
        .is_some_and(|index| index.name == name))
}

/// The text index on `column`, if there is one.
async fn text_index_for(dataset: &Dataset, column: &str) -> Result<Option<String>> {
    Ok(index_rows(dataset)
        .await?
        .into_iter()
        .find(|row| row.column == column && row.index_type == "Inverted")
        .map(|row| row.name))
}

/// Lance's plan for `search` over `dataset`: the `columns` asked (plus Lance's
/// `_distance` or `_score`), the rows `filters` keep, `k` at most. An error where Lance
/// cannot search so (no vectors of one length, no text index): the caller then scans.
pub(super) async fn plan(
    dataset: &Arc<Dataset>,
    search: &Search,
    scores: Option<&Arc<TextScores>>,
    columns: &[String],
    filters: &[Expr],
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut scan = dataset.scan();
    // The searched column is read as well: the text of a full-text match keys its score.
    let mut read: Vec<&str> = columns.iter().map(String::as_str).collect();
    if !read.contains(&search.column()) {
        read.push(search.column());
    }
    read.push(match search {
        Search::Nearest { .. } => DISTANCE,
        Search::Text { .. } => SCORE,
    });
    scan.disable_scoring_autoprojection();
    scan.project(&read).map_err(lance_error)?;
    if let Some(filter) = filters.iter().cloned().reduce(Expr::and) {
        scan.filter_expr(filter);
        scan.prefilter(true);
    }
    let how = match search {
        Search::Nearest {
            column,
            vector,
            metric,
            k,
            options,
        } => {
            let length = vector_length(dataset, column)?;
            if usize::try_from(length) != Ok(vector.len()) {
                return Err(invalid(format!(
                    "The query vector has {} elements, the vectors of '{column}' {length}",
                    vector.len()
                )));
            }
            let schema = datafusion::arrow::datatypes::Schema::from(dataset.schema());
            let query: ArrayRef = match schema.field_with_name(column).map(|f| f.data_type()) {
                Ok(DataType::FixedSizeList(element, _))
                    if element.data_type() == &DataType::Float64 =>
                {
                    Arc::new(Float64Array::from(vector.clone()))
                }
                _ => Arc::new(Float32Array::from(
                    vector.iter().map(|v| *v as f32).collect::<Vec<_>>(),
                )),
            };
            scan.nearest(column, query.as_ref(), *k)
                .map_err(lance_error)?;
            scan.distance_metric(distance_type(*metric));
            let index = match options.exact {
                true => IndexUse::Exact("exact asked"),
                false => vector_index_for(dataset, column, *metric).await?,
            };
            let chosen = match index {
                IndexUse::Exact(why) => Err(why),
                IndexUse::First { name, index_type } => Ok((name, index_type, None)),
                IndexUse::Segments {
                    name,
                    index_type,
                    segments,
                } => Ok((name, index_type, Some(segments))),
            };
            let how = match chosen {
                Err(why) => {
                    scan.use_index(false);
                    format!("exact ({why})")
                }
                Ok((name, index_type, segments)) => {
                    if let Some(segments) = segments {
                        scan.with_index_segments(segments).map_err(lance_error)?;
                    }
                    scan.use_index(true);
                    // Twenty partitions probed unless asked otherwise (lancedb's default).
                    let nprobes = options.nprobes.unwrap_or(DEFAULT_NPROBES);
                    scan.nprobes(nprobes);
                    let mut how = format!("index {name} ({index_type}), nprobes={nprobes}");
                    // The candidates ranked again by their exact distance: ten per row
                    // asked unless the query says otherwise, as a SQL top-k reads as exact.
                    let factor = options.refine_factor.unwrap_or(DEFAULT_REFINE_FACTOR);
                    scan.refine(factor);
                    how.push_str(&format!(", refine_factor={factor}"));
                    if let Some(ef) = options.ef {
                        scan.ef(ef);
                        how.push_str(&format!(", ef={ef}"));
                    }
                    how
                }
            };
            format!("nearest {k} to {column} by {}: {how}", metric.name())
        }
        Search::Text { column, text, k } => {
            let Some(index) = text_index_for(dataset, column).await? else {
                return Err(invalid(format!("No text index on '{column}'")));
            };
            let query = FullTextSearchQuery::new(text.clone())
                .with_column(column.clone())
                .map_err(lance_error)?
                .limit(Some(*k as i64));
            scan.full_text_search(query).map_err(lance_error)?;
            format!("best {k} matches in {column}: index {index}")
        }
    };
    let plan = scan.create_plan().await.map_err(lance_error)?;
    Ok(Arc::new(SearchExec::new(
        plan,
        how,
        search.column().to_string(),
        scores.cloned(),
    )))
}

/// Lance's search plan, named for EXPLAIN by how it searches, recording full-text scores.
#[derive(Debug)]
struct SearchExec {
    input: Arc<dyn ExecutionPlan>,
    how: String,
    column: String,
    scores: Option<Arc<TextScores>>,
    properties: Arc<PlanProperties>,
}

impl SearchExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        how: String,
        column: String,
        scores: Option<Arc<TextScores>>,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(
                input.properties().output_partitioning().partition_count(),
            ),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            how,
            column,
            scores,
            properties,
        }
    }
}

impl DisplayAs for SearchExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LanceSearch: {}", self.how)
    }
}

impl ExecutionPlan for SearchExec {
    fn name(&self) -> &str {
        "LanceSearch"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let input = children
            .pop()
            .ok_or_else(|| DataFusionError::Internal("LanceSearch takes one input".to_string()))?;
        Ok(Arc::new(SearchExec::new(
            input,
            self.how.clone(),
            self.column.clone(),
            self.scores.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        let Some(scores) = self.scores.clone() else {
            return Ok(stream);
        };
        let schema: SchemaRef = stream.schema();
        let column = self.column.clone();
        let recorded = stream.map(move |batch| {
            let batch: RecordBatch = batch?;
            if let (Ok(texts), Ok(score)) = (
                batch.schema().index_of(&column),
                batch.schema().index_of(SCORE),
            ) {
                scores.record(batch.column(texts), batch.column(score));
            }
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, recorded)))
    }
}
