//! An object store whose requests are counted and timed (issue 35):
//! `aichemy_object_store_requests_total`, `…_errors_total` and `…_request_seconds`, by
//! scheme and operation. An absent object, an object already there and a failed
//! precondition are answers, not errors: commits and probes expect them.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// `inner`, measured.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn ObjectStore>,
    scheme: &'static str,
}

impl Metered {
    pub fn new(inner: Arc<dyn ObjectStore>, scheme: &'static str) -> Self {
        Self { inner, scheme }
    }

    /// Counts a request to `operation` that took from `started`, and its error.
    fn record<T>(&self, operation: &'static str, started: Instant, result: &Result<T>) {
        let labels = [("scheme", self.scheme), ("operation", operation)];
        metrics::counter!("aichemy_object_store_requests_total", &labels[..]).increment(1);
        metrics::histogram!("aichemy_object_store_request_seconds", &labels[..])
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            if is_failure(e) {
                metrics::counter!("aichemy_object_store_errors_total", &labels[..]).increment(1);
            }
        }
    }

    /// Counts the items of a listing's or a deletion's stream as they come.
    fn counted<T: Send + 'static>(
        &self,
        operation: &'static str,
        stream: BoxStream<'static, Result<T>>,
    ) -> BoxStream<'static, Result<T>> {
        let labels = [("scheme", self.scheme), ("operation", operation)];
        metrics::counter!("aichemy_object_store_requests_total", &labels[..]).increment(1);
        stream
            .inspect(move |item| {
                if let Err(e) = item {
                    if is_failure(e) {
                        metrics::counter!("aichemy_object_store_errors_total", &labels[..])
                            .increment(1);
                    }
                }
            })
            .boxed()
    }
}

fn is_failure(error: &object_store::Error) -> bool {
    !matches!(
        error,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::NotModified { .. }
    )
}

impl fmt::Display for Metered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl ObjectStore for Metered {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let started = Instant::now();
        let result = self.inner.put_opts(location, payload, opts).await;
        self.record("put", started, &result);
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let started = Instant::now();
        let result = self.inner.put_multipart_opts(location, opts).await;
        self.record("put_multipart", started, &result);
        result
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let started = Instant::now();
        let operation = if options.head { "head" } else { "get" };
        let result = self.inner.get_opts(location, options).await;
        self.record(operation, started, &result);
        result
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let started = Instant::now();
        let result = self.inner.get_ranges(location, ranges).await;
        self.record("get_ranges", started, &result);
        result
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.counted("delete", self.inner.delete_stream(locations))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counted("list", self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counted("list", self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let started = Instant::now();
        let result = self.inner.list_with_delimiter(prefix).await;
        self.record("list", started, &result);
        result
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.copy_opts(from, to, options).await;
        self.record("copy", started, &result);
        result
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.rename_opts(from, to, options).await;
        self.record("rename", started, &result);
        result
    }
}
