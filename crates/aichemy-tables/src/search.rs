//! Nearest-neighbour and full-text search, the part every format shares: what a query asks
//! of a table (a [`Search`]), the indexes a user builds, replaces and drops
//! ([`IndexChange`]), and [`searching`], which gives a table that answers a search from its
//! indexes where its format has them (Lance's) and `None` elsewhere, where the engine
//! searches by scanning.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::catalog::TableProvider;
use datafusion::common::{Result as DFResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::TableError;

/// How two vectors' distance is measured, as vector indexes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Euclidean distance (an index orders by its square, the same order).
    L2,
    /// One minus the cosine of the angle.
    Cosine,
    /// The dot product, the larger the nearer.
    Dot,
}

impl Metric {
    /// The metric a user names (`l2`, `euclidean`, `cosine`, `dot`), any case.
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "l2" | "euclidean" => Some(Metric::L2),
            "cosine" => Some(Metric::Cosine),
            "dot" => Some(Metric::Dot),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
        }
    }
}

/// The knobs of an index search; `None` takes the index's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SearchOptions {
    /// IVF partitions probed.
    pub nprobes: Option<usize>,
    /// Candidates fetched per result (`k × refine_factor`) and ranked again by their exact
    /// distances.
    pub refine_factor: Option<u32>,
    /// HNSW's candidate list size while searching.
    pub ef: Option<usize>,
    /// Search every row, never an index.
    pub exact: bool,
}

/// A search a query asks of one table: the `k` rows nearest to a vector, or the `k` rows
/// that match a text best. Rows the scan's filters reject are never among them.
#[derive(Debug, Clone, PartialEq)]
pub enum Search {
    Nearest {
        column: String,
        vector: Vec<f64>,
        metric: Metric,
        k: usize,
        options: SearchOptions,
    },
    Text {
        column: String,
        text: String,
        k: usize,
    },
}

impl Search {
    pub fn column(&self) -> &str {
        match self {
            Search::Nearest { column, .. } | Search::Text { column, .. } => column,
        }
    }
}

/// Whether `provider` (or the table under the engine's wrappers, which answer `as_any`
/// with it) can answer `search` from its format's own search: a Lance table holding rows,
/// whose searched column holds vectors of one length (or text).
pub fn can_search(provider: &dyn TableProvider, search: &Search) -> bool {
    crate::lance::can_search(provider, search)
}

/// The scores of one full-text search's rows by their text: the table's search records
/// them, and the engine's text score reads them back for those rows (which carry only
/// their declared columns).
#[derive(Debug, Default)]
pub struct TextScores(Mutex<HashMap<String, f64>>);

impl TextScores {
    pub fn get(&self, text: &str) -> Option<f64> {
        self.0.lock().ok()?.get(text).copied()
    }

    /// Records the `scores` of the rows whose searched column holds `texts`.
    pub fn record(&self, texts: &ArrayRef, scores: &ArrayRef) {
        let (Ok(texts), Ok(scores)) = (
            datafusion::arrow::compute::cast(texts, &DataType::Utf8),
            datafusion::arrow::compute::cast(scores, &DataType::Float64),
        ) else {
            return;
        };
        let texts = texts.as_string::<i32>();
        let scores = scores.as_primitive::<Float64Type>();
        if let Ok(mut map) = self.0.lock() {
            for i in 0..texts.len() {
                if texts.is_valid(i) && scores.is_valid(i) {
                    map.insert(texts.value(i).to_string(), scores.value(i));
                }
            }
        }
    }
}

/// A search travelling in a table scan's filters to the table that answers it: a filter
/// that keeps every row, named for EXPLAIN by what it asks.
#[derive(Debug)]
struct SearchFilter {
    search: Search,
    scores: Option<Arc<TextScores>>,
    label: String,
    signature: Signature,
}

impl PartialEq for SearchFilter {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label
            && match (&self.scores, &other.scores) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (a, b) => a.is_none() && b.is_none(),
            }
    }
}

impl Eq for SearchFilter {}

impl Hash for SearchFilter {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.label.hash(state);
    }
}

impl ScalarUDFImpl for SearchFilter {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn name(&self) -> &str {
        &self.label
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DFResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, _: ScalarFunctionArgs) -> DFResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))
    }
}

/// The filter that carries `search` (and, for a text search, where its scores go) to the
/// scanned table.
pub fn search_filter(search: Search, scores: Option<Arc<TextScores>>) -> Expr {
    let label = match &search {
        Search::Nearest {
            column,
            metric,
            k,
            options,
            ..
        } => format!(
            "nearest(column={column}, metric={}, k={k}{})",
            metric.name(),
            if options.exact { ", exact" } else { "" }
        ),
        Search::Text { column, text, k } => format!("text_match(column={column}, k={k}, {text:?})"),
    };
    ScalarUDF::new_from_impl(SearchFilter {
        search,
        scores,
        label,
        // Volatile: never folded into `true` by a later pass over the scan's filters.
        signature: Signature::nullary(Volatility::Volatile),
    })
    .call(vec![])
}

/// A search a scan carries, with where a text search's scores go.
pub(crate) type CarriedSearch = (Search, Option<Arc<TextScores>>);

/// Whether `filter` is one that carries a search to a table.
pub fn is_search_filter(filter: &Expr) -> bool {
    matches!(filter, Expr::ScalarFunction(call)
        if call.func.inner().as_any().downcast_ref::<SearchFilter>().is_some())
}

/// The search among a scan's `filters`, and the other filters.
pub(crate) fn take_search(filters: &[Expr]) -> (Option<CarriedSearch>, Vec<Expr>) {
    let mut search = None;
    let mut rest = Vec::with_capacity(filters.len());
    for filter in filters {
        if let Expr::ScalarFunction(call) = filter {
            if let Some(carried) = call.func.inner().as_any().downcast_ref::<SearchFilter>() {
                search = Some((carried.search.clone(), carried.scores.clone()));
                continue;
            }
        }
        rest.push(filter.clone());
    }
    (search, rest)
}

/// The structure of a vector index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorIndexType {
    IvfFlat,
    IvfPq,
    IvfSq,
    IvfHnswSq,
    IvfHnswPq,
}

impl VectorIndexType {
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "IVF_FLAT" => Some(Self::IvfFlat),
            "IVF_PQ" => Some(Self::IvfPq),
            "IVF_SQ" => Some(Self::IvfSq),
            "IVF_HNSW_SQ" => Some(Self::IvfHnswSq),
            "IVF_HNSW_PQ" => Some(Self::IvfHnswPq),
            _ => None,
        }
    }
}

/// What a vector index is built as; `None` takes the format's default (for the partitions,
/// about one per 8,192 rows; for the sub-vectors, a sixteenth of the dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorIndex {
    pub index_type: VectorIndexType,
    pub metric: Metric,
    pub partitions: Option<usize>,
    pub sub_vectors: Option<usize>,
    pub bits: Option<u8>,
    /// HNSW's edges per node.
    pub m: Option<usize>,
    pub ef_construction: Option<usize>,
    pub max_iterations: Option<usize>,
    pub sample_rate: Option<usize>,
}

/// What a full-text index is built as.
#[derive(Debug, Clone, PartialEq)]
pub struct TextIndex {
    pub with_position: bool,
    pub lower_case: bool,
    pub stem: bool,
    pub remove_stop_words: bool,
    pub ascii_folding: bool,
    pub language: Option<String>,
}

impl Default for TextIndex {
    fn default() -> Self {
        Self {
            with_position: false,
            lower_case: true,
            stem: true,
            remove_stop_words: true,
            ascii_folding: true,
            language: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum IndexKind {
    Vector(VectorIndex),
    Text(TextIndex),
}

/// A change of a table's indexes.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexChange {
    /// Builds an index on `column`, named `name` (by default `<column>_idx`); `replace`
    /// rebuilds one of that name, which otherwise is an error.
    Create {
        name: Option<String>,
        column: String,
        kind: IndexKind,
        replace: bool,
    },
    Drop {
        name: String,
    },
}

impl IndexChange {
    /// The procedure that asks for it.
    pub fn procedure(&self) -> &'static str {
        match self {
            IndexChange::Create {
                kind: IndexKind::Vector(_),
                ..
            } => "create_vector_index",
            IndexChange::Create {
                kind: IndexKind::Text(_),
                ..
            } => "create_text_index",
            IndexChange::Drop { .. } => "drop_index",
        }
    }

    /// The format cannot index: Trino's words for a procedure a connector lacks.
    pub(crate) fn unsupported(&self, format: &str) -> TableError {
        TableError::NotSupported {
            message: format!(
                "Procedure {} is not supported for {format} tables",
                self.procedure()
            ),
        }
    }
}

/// The default name of an index on `column`.
pub fn default_index_name(column: &str) -> String {
    format!("{column}_idx")
}

/// An error in a user's index request.
pub(crate) fn invalid(message: impl Into<String>) -> TableError {
    TableError::InvalidArgument {
        message: message.into(),
    }
}
