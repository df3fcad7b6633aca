//! The functions of search: `embed(text [, model])`, which asks an OpenAI-compatible
//! `/v1/embeddings` endpoint for the vectors of texts (batched, and cached per model), and
//! the two the `vector_search` table function writes: `"$search_options"(distance, nprobes,
//! refine_factor, ef, exact)`, the distance itself carrying an index search's knobs to the
//! rule that asks the table for it, and `"$text_score"(text, words)`, how well a text
//! matches words: Lance's BM25 score where its text index found the row (the search records
//! them), otherwise the sum over the distinct words the text holds of 1 + ln(occurrences).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aichemy_tables::search::TextScores;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float32Builder, Float64Array, ListBuilder, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::error::{ErrorCode, TrinoError};
use crate::functions::{invalid_argument, scalar_result};

pub(crate) const SEARCH_OPTIONS: &str = "$search_options";
pub(crate) const TEXT_SCORE: &str = "$text_score";

/// Registers the search functions but `embed`, which [`Embedder::udf`] gives per lakehouse.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(SearchOptions {
        signature: Signature::any(5, Volatility::Immutable),
    }));
    ctx.register_udf(ScalarUDF::new_from_impl(TextScore {
        scores: None,
        signature: Signature::any(2, Volatility::Immutable),
    }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SearchOptions {
    signature: Signature,
}

impl ScalarUDFImpl for SearchOptions {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn name(&self) -> &str {
        SEARCH_OPTIONS
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(types.first().cloned().unwrap_or(DataType::Float64))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        args.args
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal(format!("{SEARCH_OPTIONS} needs a distance")))
    }
}

/// `"$text_score"`, bound to the scores of one search or not.
#[derive(Debug)]
struct TextScore {
    scores: Option<Arc<TextScores>>,
    signature: Signature,
}

impl PartialEq for TextScore {
    fn eq(&self, other: &Self) -> bool {
        match (&self.scores, &other.scores) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl Eq for TextScore {}

impl Hash for TextScore {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scores.as_ref().map(Arc::as_ptr).hash(state);
    }
}

/// `"$text_score"` reading the scores of one search.
pub(crate) fn text_score_with(scores: Arc<TextScores>) -> ScalarUDF {
    ScalarUDF::new_from_impl(TextScore {
        scores: Some(scores),
        signature: Signature::any(2, Volatility::Immutable),
    })
}

/// The scores a `"$text_score"` reads, if it is bound to a search's.
pub(crate) fn bound_scores(udf: &ScalarUDF) -> Option<Arc<TextScores>> {
    udf.inner()
        .as_any()
        .downcast_ref::<TextScore>()
        .and_then(|t| t.scores.clone())
}

/// The lower-cased words of a text.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// How well `text` matches `wanted` (distinct words) without an index.
fn overlap(text: &str, wanted: &[String]) -> f64 {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    let found: Vec<String> = words(text).collect();
    for word in &found {
        if wanted.contains(word) {
            *counts.entry(word.as_str()).or_default() += 1;
        }
    }
    counts.values().map(|n| 1.0 + f64::from(*n).ln()).sum()
}

impl ScalarUDFImpl for TextScore {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn name(&self) -> &str {
        TEXT_SCORE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let texts = cast(&arrays[0], &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        let query = cast(&arrays[1], &DataType::Utf8)?;
        let query = query.as_string::<i32>();
        let mut wanted_of: Option<(String, Vec<String>)> = None;
        let scores: Float64Array = (0..rows.max(texts.len()))
            .map(|i| {
                if texts.is_null(i) || query.is_null(i) {
                    return None;
                }
                let text = texts.value(i);
                if let Some(score) = self.scores.as_ref().and_then(|s| s.get(text)) {
                    return Some(score);
                }
                let words_of = query.value(i);
                if wanted_of.as_ref().is_none_or(|(q, _)| q != words_of) {
                    let mut wanted: Vec<String> = words(words_of).collect();
                    wanted.sort();
                    wanted.dedup();
                    wanted_of = Some((words_of.to_string(), wanted));
                }
                let wanted = &wanted_of.as_ref().expect("set above").1;
                Some(overlap(text, wanted))
            })
            .collect();
        scalar_result(&args.args, Arc::new(scores))
    }
}

/// The embedding models of a lakehouse and the vectors they gave.
#[derive(Debug, Default)]
pub struct Embedder {
    models: HashMap<String, Model>,
}

#[derive(Debug)]
struct Model {
    url: String,
    model: String,
    key: Option<String>,
    dimensions: Option<u32>,
    batch_size: usize,
    timeout: Duration,
    cache: Mutex<Cache>,
}

/// The newest vectors by text, at most `capacity`.
#[derive(Debug, Default)]
struct Cache {
    capacity: usize,
    vectors: HashMap<String, Arc<Vec<f32>>>,
    order: VecDeque<String>,
}

impl Cache {
    fn get(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        self.vectors.get(text).cloned()
    }

    fn put(&mut self, text: String, vector: Arc<Vec<f32>>) {
        if self.capacity == 0 || self.vectors.contains_key(&text) {
            return;
        }
        while self.vectors.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.vectors.remove(&oldest);
        }
        self.order.push_back(text.clone());
        self.vectors.insert(text, vector);
    }
}

fn embed_error(message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(TrinoError::new(
        ErrorCode::GENERIC_EXTERNAL,
        message,
    )))
}

impl Embedder {
    /// The configured models; an API key's `${ENV:…}` or `${FILE:…}` is read now.
    pub fn from_config(
        config: &std::collections::BTreeMap<String, aichemy_config::EmbeddingConfig>,
    ) -> crate::error::Result<Self> {
        let mut models = HashMap::new();
        for (name, model) in config {
            let key = match &model.api_key {
                Some(key) => Some(aichemy_config::resolve_secret(key).map_err(|message| {
                    TrinoError::new(
                        ErrorCode::GENERIC_USER_ERROR,
                        format!("embeddings.{name}.api_key: {message}"),
                    )
                })?),
                None => None,
            };
            let url = if model.url.trim_end_matches('/').ends_with("/v1") {
                format!("{}/embeddings", model.url.trim_end_matches('/'))
            } else {
                model.url.clone()
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(TrinoError::new(
                    ErrorCode::GENERIC_USER_ERROR,
                    format!("embeddings.{name}.url must be an http or https URL"),
                ));
            }
            models.insert(
                name.clone(),
                Model {
                    url,
                    model: model.model.clone().unwrap_or_else(|| name.clone()),
                    key,
                    dimensions: model.dimensions,
                    batch_size: model.batch_size.max(1),
                    timeout: Duration::from_secs(model.timeout_seconds.max(1)),
                    cache: Mutex::new(Cache {
                        capacity: model.cache_entries,
                        ..Cache::default()
                    }),
                },
            );
        }
        Ok(Self { models })
    }

    /// `embed` for this lakehouse's models.
    pub fn udf(self: &Arc<Self>) -> ScalarUDF {
        ScalarUDF::new_from_impl(Embed {
            embedder: self.clone(),
            signature: Signature::one_of(
                vec![
                    datafusion::logical_expr::TypeSignature::Any(1),
                    datafusion::logical_expr::TypeSignature::Any(2),
                ],
                // Stable: a constant text's vector is asked for once, while planning, and
                // the search rule then sees a constant vector.
                Volatility::Stable,
            ),
        })
    }

    fn model(&self, name: Option<&str>) -> Result<&Model> {
        let found = match name {
            Some(name) => self.models.get(name),
            None => self
                .models
                .get("default")
                .or_else(|| match self.models.len() {
                    1 => self.models.values().next(),
                    _ => None,
                }),
        };
        found.ok_or_else(|| {
            let mut known: Vec<&str> = self.models.keys().map(String::as_str).collect();
            known.sort();
            invalid_argument(match (name, known.is_empty()) {
                (_, true) => "No embedding model is configured: add one under \
                              [embeddings.<name>] in the configuration"
                    .to_string(),
                (Some(name), false) => {
                    format!(
                        "Embedding model '{name}' is not configured; there are: {}",
                        known.join(", ")
                    )
                }
                (None, false) => format!(
                    "embed needs a model name: there is no model named 'default' among {}",
                    known.join(", ")
                ),
            })
        })
    }
}

impl Model {
    /// The vectors of `texts`, in order: from the cache, the rest asked for in batches.
    fn vectors(&self, texts: &[&str]) -> Result<Vec<Arc<Vec<f32>>>> {
        let mut found: Vec<Option<Arc<Vec<f32>>>> = {
            let cache = self
                .cache
                .lock()
                .map_err(|_| embed_error("embedding cache poisoned"))?;
            texts.iter().map(|t| cache.get(t)).collect()
        };
        let mut missing: Vec<&str> = texts
            .iter()
            .zip(&found)
            .filter(|(_, v)| v.is_none())
            .map(|(t, _)| *t)
            .collect();
        missing.sort_unstable();
        missing.dedup();
        let mut fetched: HashMap<&str, Arc<Vec<f32>>> = HashMap::new();
        for batch in missing.chunks(self.batch_size) {
            let vectors = self.request(batch)?;
            let mut cache = self
                .cache
                .lock()
                .map_err(|_| embed_error("embedding cache poisoned"))?;
            for (text, vector) in batch.iter().zip(vectors) {
                let vector = Arc::new(vector);
                cache.put(text.to_string(), vector.clone());
                fetched.insert(text, vector);
            }
        }
        for (slot, text) in found.iter_mut().zip(texts) {
            if slot.is_none() {
                *slot = fetched.get(text).cloned();
            }
        }
        found
            .into_iter()
            .map(|v| v.ok_or_else(|| embed_error("The embedding endpoint left a text out")))
            .collect()
    }

    /// One request to the endpoint, on a thread of its own (a function runs inside the
    /// query's runtime, which must not wait on itself).
    fn request(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut body = serde_json::json!({
            "model": self.model,
            "input": texts,
            "encoding_format": "float",
        });
        if let Some(dimensions) = self.dimensions {
            body["dimensions"] = serde_json::json!(dimensions);
        }
        let url = self.url.clone();
        let key = self.key.clone();
        let timeout = self.timeout;
        let answer = std::thread::scope(|scope| {
            scope
                .spawn(move || -> std::result::Result<serde_json::Value, String> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime.block_on(async move {
                        let client = reqwest::Client::builder()
                            .timeout(timeout)
                            .build()
                            .map_err(|e| e.to_string())?;
                        let mut request = client.post(&url).json(&body);
                        if let Some(key) = &key {
                            request = request.bearer_auth(key);
                        }
                        let response = request.send().await.map_err(|e| {
                            // reqwest's error names the URL; never a key.
                            e.without_url().to_string()
                        })?;
                        let status = response.status();
                        let text = response.text().await.map_err(|e| e.to_string())?;
                        if !status.is_success() {
                            let detail: String = text.chars().take(200).collect();
                            return Err(format!("HTTP {status}: {detail}"));
                        }
                        serde_json::from_str(&text).map_err(|e| e.to_string())
                    })
                })
                .join()
                .unwrap_or_else(|_| Err("the request's thread failed".to_string()))
        })
        .map_err(|e| {
            embed_error(format!(
                "Embedding request to model '{}' failed: {e}",
                self.model
            ))
        })?;
        let data = answer
            .get("data")
            .and_then(|d| d.as_array())
            .ok_or_else(|| embed_error("The embedding endpoint's answer has no data"))?;
        let mut vectors: Vec<(usize, Vec<f32>)> = data
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let index = item
                    .get("index")
                    .and_then(|v| v.as_u64())
                    .map_or(i, |v| v as usize);
                let vector = item
                    .get("embedding")
                    .and_then(|v| v.as_array())
                    .ok_or_else(|| embed_error("An embedding in the answer is not a list"))?
                    .iter()
                    .map(|x| x.as_f64().map(|x| x as f32))
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(|| embed_error("An embedding holds something else than numbers"))?;
                Ok((index, vector))
            })
            .collect::<Result<_>>()?;
        if vectors.len() != texts.len() {
            return Err(embed_error(format!(
                "The embedding endpoint answered {} vectors for {} texts",
                vectors.len(),
                texts.len()
            )));
        }
        vectors.sort_by_key(|(i, _)| *i);
        Ok(vectors.into_iter().map(|(_, v)| v).collect())
    }
}

#[derive(Debug)]
struct Embed {
    embedder: Arc<Embedder>,
    signature: Signature,
}

impl PartialEq for Embed {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.embedder, &other.embedder)
    }
}

impl Eq for Embed {}

impl Hash for Embed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.embedder).hash(state);
    }
}

impl ScalarUDFImpl for Embed {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn name(&self) -> &str {
        "embed"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Float32,
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = match args.args.get(1) {
            None => None,
            Some(ColumnarValue::Scalar(value)) => match value.cast_to(&DataType::Utf8)? {
                ScalarValue::Utf8(Some(name)) => Some(name),
                _ => return Err(invalid_argument("embed's model must not be null")),
            },
            Some(ColumnarValue::Array(_)) => {
                return Err(invalid_argument("embed's model must be a constant"))
            }
        };
        let model = self.embedder.model(model.as_deref())?;
        let arrays = ColumnarValue::values_to_arrays(&args.args[..1])?;
        let texts: ArrayRef = cast(&arrays[0], &DataType::Utf8)?;
        let texts: &StringArray = texts.as_string::<i32>();
        let present: Vec<&str> = texts.iter().flatten().collect();
        let mut vectors = model.vectors(&present)?.into_iter();
        let mut out = ListBuilder::new(Float32Builder::new());
        for text in texts.iter() {
            match text {
                None => out.append_null(),
                Some(_) => {
                    let vector = vectors.next().expect("one vector per text");
                    out.values().append_slice(&vector);
                    out.append(true);
                }
            }
        }
        scalar_result(&args.args, Arc::new(out.finish()))
    }
}
