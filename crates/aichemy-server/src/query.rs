//! Queries in flight: each runs in its own task and hands its results over page by page
//! through a small channel, so a large result is never held whole — the task waits until
//! the client fetched the page before (as Trino's output buffer blocks its producer). A
//! page is cut at [`PAGE_ROWS`] rows or [`PAGE_BYTES`] of values, whichever comes first,
//! so what a query holds for a client that reads slowly or not at all is bounded however
//! wide its rows. The last page served is kept, so a client that fetches the same page
//! again (a retry) gets the same answer; a cancelled or abandoned query frees its rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aichemy_engine::{Lakehouse, Output, QueryLog, QueryRecord, Session, StopSignal, TrinoError};
use datafusion::arrow::datatypes::SchemaRef;
use futures::{FutureExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::encode::{encode_field_column, field_type};

/// Rows per page; a page is also cut at the end of each engine batch past half of this.
const PAGE_ROWS: usize = 4096;
/// Bytes of values per page, about (Trino's target result size is 1 MB by default): a page
/// of wide rows is cut before [`PAGE_ROWS`], so that what a query holds for its client — the
/// page served last, the one waiting in the channel and the one being filled — stays a
/// few MiB however wide its rows.
const PAGE_BYTES: usize = 1 << 20;
/// Rows of an engine batch encoded as JSON at once.
const ENCODE_ROWS: usize = 512;
/// How many finished queries `system.runtime.queries` keeps.
const KEEP_FINISHED: usize = 100;

/// Who sent a query and how their session was set.
#[derive(Debug, Clone, Default)]
pub struct ClientSession {
    pub user: String,
    pub source: Option<String>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub time_zone: Option<String>,
    pub client_tags: Vec<String>,
    pub client_info: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub prepared: BTreeMap<String, String>,
    /// The system role the client has set (`X-Trino-Role`).
    pub role: aichemy_access::RoleSelection,
    /// Where the request came from and what sent it, for the audit.
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// What a statement can change in the client's session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionChanges {
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub properties: BTreeMap<String, String>,
    pub prepared: BTreeMap<String, String>,
    pub role: aichemy_access::RoleSelection,
}

impl ClientSession {
    /// The response headers (without their `X-Trino-` prefix) that tell the client how
    /// its session changed.
    fn changed_headers(&self, after: &SessionChanges) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if after.catalog != self.catalog {
            if let Some(c) = &after.catalog {
                headers.push(("Set-Catalog".into(), c.clone()));
            }
        }
        if after.schema != self.schema {
            if let Some(s) = &after.schema {
                headers.push(("Set-Schema".into(), s.clone()));
            }
        }
        changed_pairs(
            &mut headers,
            &self.properties,
            &after.properties,
            "Set-Session",
            "Clear-Session",
        );
        if after.role != self.role {
            let value = url_encode(&after.role.header_value());
            headers.push(("Set-Role".into(), format!("system={value}")));
        }
        changed_pairs(
            &mut headers,
            &self.prepared,
            &after.prepared,
            "Added-Prepare",
            "Deallocated-Prepare",
        );
        headers
    }
}

/// Headers for what changed between two sets of `name=value` pairs: `set` with
/// `name=urlencoded-value` for new and changed ones, `clear` with the name of dropped ones.
fn changed_pairs(
    headers: &mut Vec<(String, String)>,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    set: &str,
    clear: &str,
) {
    for (name, value) in after {
        if before.get(name) != Some(value) {
            headers.push((set.into(), format!("{name}={}", url_encode(value))));
        }
    }
    for name in before.keys() {
        if !after.contains_key(name) {
            headers.push((clear.into(), name.clone()));
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of a header value, as Trino writes them.
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Decodes a form-urlencoded header value (`+` is a space); `None` when malformed.
pub fn url_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = value.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// What the executing task hands to the protocol.
#[derive(Debug)]
pub enum Event {
    Columns(Value),
    Rows(Vec<Value>),
    /// DDL or DML: Trino's update type and, for DML, the row count.
    Update {
        update_type: String,
        count: Option<u64>,
    },
    /// The session after the statement (USE, SET SESSION, PREPARE change it).
    Session(SessionChanges),
    Failed(TrinoError),
}

/// Query states as Trino names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Queued,
    Running,
    Finished,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "QUEUED",
            State::Running => "RUNNING",
            State::Finished => "FINISHED",
            State::Failed => "FAILED",
        }
    }
}

/// One page as served, kept for re-fetches.
#[derive(Debug, Clone)]
pub struct Page {
    pub token: u64,
    /// The query ended with this page: it has no `nextUri`.
    pub last: bool,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

/// A query the server knows.
pub struct Query {
    pub id: String,
    pub slug: String,
    pub sql: String,
    pub session: ClientSession,
    pub created: SystemTime,
    pub started: Instant,
    inner: Mutex<QueryInner>,
    /// Stops the engine's work when the query ends early, even inside one long operator.
    stop: StopSignal,
    events: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

struct QueryInner {
    state: State,
    columns: Option<Value>,
    columns_sent: bool,
    last_page: Option<Arc<Page>>,
    rows: u64,
    error: Option<TrinoError>,
    update: Option<(String, Option<u64>)>,
    set_headers: Vec<(String, String)>,
    last_fetch: Instant,
    ended: Option<Instant>,
}

impl Query {
    pub fn state(&self) -> State {
        self.inner.lock().expect("not poisoned").state
    }

    pub fn rows(&self) -> u64 {
        self.inner.lock().expect("not poisoned").rows
    }

    pub fn error(&self) -> Option<TrinoError> {
        self.inner.lock().expect("not poisoned").error.clone()
    }

    pub fn elapsed(&self) -> Duration {
        let inner = self.inner.lock().expect("not poisoned");
        inner
            .ended
            .unwrap_or_else(Instant::now)
            .duration_since(self.started)
    }

    fn mark_running(&self) {
        let mut inner = self.inner.lock().expect("not poisoned");
        if inner.state == State::Queued {
            inner.state = State::Running;
        }
    }

    /// Whether the query ended less than `window` ago and its client, which was
    /// fetching, has not fetched since: it has yet to learn how the query ended.
    fn ending_unseen(&self, window: Duration) -> bool {
        let inner = self.inner.lock().expect("not poisoned");
        match inner.ended {
            Some(ended) => inner.last_fetch < ended && ended.elapsed() < window,
            None => false,
        }
    }

    fn idle(&self) -> Duration {
        self.inner
            .lock()
            .expect("not poisoned")
            .last_fetch
            .elapsed()
    }

    /// Stops the query: its task and the engine's work end; its state becomes FAILED with
    /// USER_CANCELED unless it had already ended.
    pub fn cancel(&self, message: &str) {
        self.fail(TrinoError::new(
            aichemy_engine::ErrorCode::USER_CANCELED,
            message,
        ));
    }

    /// Stops the query with `error` unless it had already ended; true when it had not.
    fn fail(&self, error: TrinoError) -> bool {
        // The state first: a fetch that sees the aborted task's channel close must find
        // the query failed, not finished with the rows it had so far.
        let stopped = {
            let mut inner = self.inner.lock().expect("not poisoned");
            let live = matches!(inner.state, State::Queued | State::Running);
            if live {
                inner.state = State::Failed;
                inner.error = Some(error);
                inner.ended = Some(Instant::now());
            }
            live
        };
        {
            let inner = self.inner.lock().expect("not poisoned");
            if let Some(error) = &inner.error {
                self.stop.stop(error.clone());
            }
        }
        if let Some(task) = self.task.lock().expect("not poisoned").take() {
            task.abort();
        }
        self.release_results();
        stopped
    }

    /// Frees the rows a failed query holds for its client (the page waiting in the
    /// channel, the rows of the page served last): the query list keeps an ended query
    /// for a while, and its rows are of no use once it failed. A fetch under way frees
    /// what it receives itself.
    fn release_results(&self) {
        if let Ok(mut events) = self.events.try_lock() {
            events.close();
            while events.try_recv().is_ok() {}
        }
        let mut inner = self.inner.lock().expect("not poisoned");
        let Some(last) = &inner.last_page else {
            return;
        };
        if let Some(fields) = last.body.as_object().filter(|f| f.contains_key("data")) {
            let body = fields
                .iter()
                .filter(|(name, _)| name.as_str() != "data")
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            inner.last_page = Some(Arc::new(Page {
                token: last.token,
                last: last.last,
                body: Value::Object(body),
                headers: last.headers.clone(),
            }));
        }
    }

    /// The page after `token - 1`: the same page again when `token` was served last.
    /// Waits up to `wait` for the engine; answers an empty page to poll again otherwise.
    pub async fn page(&self, token: u64, wait: Duration) -> Option<Arc<Page>> {
        {
            let mut inner = self.inner.lock().expect("not poisoned");
            inner.last_fetch = Instant::now();
            if let Some(last) = &inner.last_page {
                if last.token == token {
                    return Some(last.clone());
                }
                if last.token + 1 != token {
                    return None;
                }
            } else if token != 0 {
                return None;
            }
        }
        let mut events = self.events.lock().await;
        // Another fetch of the same token may have been served while this one waited.
        {
            let inner = self.inner.lock().expect("not poisoned");
            if let Some(last) = &inner.last_page {
                if last.token == token {
                    return Some(last.clone());
                }
            }
        }
        let mut data: Option<Vec<Value>> = None;
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        let mut done = false;
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(event) => {
                        let mut inner = self.inner.lock().expect("not poisoned");
                        if inner.state == State::Queued {
                            inner.state = State::Running;
                        }
                        match event {
                            Event::Columns(columns) => inner.columns = Some(columns),
                            Event::Rows(rows) => {
                                inner.rows += rows.len() as u64;
                                data = Some(rows);
                                break;
                            }
                            Event::Update { update_type, count } => {
                                inner.update = Some((update_type, count));
                            }
                            Event::Session(after) => {
                                inner.set_headers = self.session.changed_headers(&after);
                            }
                            Event::Failed(error) => {
                                inner.state = State::Failed;
                                inner.error = Some(error);
                                inner.ended = Some(Instant::now());
                                done = true;
                                break;
                            }
                        }
                    }
                    None => {
                        let mut inner = self.inner.lock().expect("not poisoned");
                        if inner.state != State::Failed {
                            inner.state = State::Finished;
                        }
                        inner.ended.get_or_insert_with(Instant::now);
                        done = true;
                        break;
                    }
                },
                _ = &mut deadline => break,
            }
        }
        drop(events);
        let mut inner = self.inner.lock().expect("not poisoned");
        let failed = inner.state == State::Failed;
        let mut body = json!({
            "id": self.id,
            "stats": stats(inner.state, inner.rows, self.started),
        });
        if let Some(columns) = &inner.columns {
            if data.is_some() || done || inner.columns_sent {
                body["columns"] = columns.clone();
                inner.columns_sent = true;
            }
        }
        if let Some(rows) = data {
            body["data"] = Value::Array(rows);
        }
        if let Some((update_type, count)) = &inner.update {
            body["updateType"] = Value::from(update_type.clone());
            match count {
                Some(count) => {
                    body["updateCount"] = Value::from(*count);
                    if done && !failed && body.get("data").is_none() {
                        body["columns"] = json!([{"name": "rows", "type": "bigint",
                            "typeSignature": {"rawType": "bigint", "arguments": []}}]);
                        body["data"] = json!([[count]]);
                    }
                }
                None => {
                    if done && !failed {
                        body["columns"] = json!([{"name": "result", "type": "boolean",
                            "typeSignature": {"rawType": "boolean", "arguments": []}}]);
                        body["data"] = json!([[true]]);
                    }
                }
            }
        }
        if let Some(error) = &inner.error {
            body["error"] = error_json(error);
        }
        let headers = if done {
            std::mem::take(&mut inner.set_headers)
        } else {
            Vec::new()
        };
        let page = Page {
            token,
            last: done,
            body,
            headers,
        };
        let page = Arc::new(page);
        inner.last_page = Some(page.clone());
        Some(page)
    }
}

/// A query's place in the queue: counted as queued from submission until it holds one of
/// the running permits (or its task is dropped, cancelled while waiting).
struct Turn {
    running: Arc<tokio::sync::Semaphore>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

impl Turn {
    fn take(
        running: Arc<tokio::sync::Semaphore>,
        queued: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Self {
        queued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self { running, queued }
    }

    /// Waits for a running permit; the query leaves the queue with it.
    async fn wait(self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.running.clone().acquire_owned().await.ok()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.queued
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Trino's `error` object.
pub fn error_json(error: &TrinoError) -> Value {
    let mut value = json!({
        "message": error.full_message(),
        "errorCode": error.code.code(),
        "errorName": error.code.name(),
        "errorType": error.code.error_type().as_str(),
        "failureInfo": {
            "type": "io.trino.spi.TrinoException",
            "message": error.full_message(),
            "suppressed": [],
            "stack": [],
        },
    });
    if let Some(at) = error.location {
        value["errorLocation"] = json!({"lineNumber": at.line, "columnNumber": at.column});
        value["failureInfo"]["errorLocation"] =
            json!({"lineNumber": at.line, "columnNumber": at.column});
    }
    value
}

/// Trino's `stats` object: every field clients read, zeros where AIchemy has no figure.
pub fn stats(state: State, rows: u64, started: Instant) -> Value {
    let elapsed = started.elapsed().as_millis() as u64;
    json!({
        "state": state.as_str(),
        "queued": state == State::Queued,
        "scheduled": state != State::Queued,
        "nodes": 1,
        "totalSplits": 0,
        "queuedSplits": 0,
        "runningSplits": 0,
        "completedSplits": 0,
        "cpuTimeMillis": elapsed,
        "wallTimeMillis": elapsed,
        "queuedTimeMillis": 0,
        "elapsedTimeMillis": elapsed,
        "processedRows": rows,
        "processedBytes": 0,
        "physicalInputBytes": 0,
        "peakMemoryBytes": 0,
        "spilledBytes": 0,
    })
}

/// How many queries run at once, and how many may wait for their turn (Trino's resource
/// group `hardConcurrencyLimit` and `maxQueued`).
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// Queries running at once; later ones wait in the queue, QUEUED.
    pub max_running: usize,
    /// Queries waiting at once; one more fails with QUERY_QUEUE_FULL.
    pub max_queued: usize,
}

/// The queries of one server.
#[derive(Clone)]
pub struct Queries {
    lakehouse: Arc<Lakehouse>,
    queries: Arc<Mutex<HashMap<String, Arc<Query>>>>,
    /// Set on shutdown: queries submitted after it fail with SERVER_SHUTTING_DOWN.
    shutting_down: Arc<std::sync::atomic::AtomicBool>,
    started: Instant,
    /// Where queries run: a runtime apart from the one that answers HTTP.
    runtime: tokio::runtime::Handle,
    /// One permit per query that may run now.
    running: Arc<tokio::sync::Semaphore>,
    /// Queries waiting for a permit.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    max_queued: usize,
    /// This server's name, in the history of its queries.
    node: Arc<str>,
}

impl Queries {
    /// The same queries, recorded as run by `node`.
    pub fn with_node(mut self, node: &str) -> Self {
        self.node = node.into();
        self
    }

    /// The lakehouse the queries run on.
    pub(crate) fn lakehouse(&self) -> &Arc<Lakehouse> {
        &self.lakehouse
    }

    /// The queries of a server whose statements run on `runtime`, admitted as `admission`
    /// says.
    pub fn new(
        lakehouse: Arc<Lakehouse>,
        runtime: tokio::runtime::Handle,
        admission: Admission,
    ) -> Self {
        Self {
            lakehouse,
            queries: Arc::default(),
            shutting_down: Arc::default(),
            started: Instant::now(),
            runtime,
            running: Arc::new(tokio::sync::Semaphore::new(admission.max_running.max(1))),
            queued: Arc::default(),
            max_queued: admission.max_queued,
            node: "".into(),
        }
    }

    /// How long the server has been up.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// From now on, new queries are refused.
    pub fn shut_down(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn get(&self, id: &str) -> Option<Arc<Query>> {
        self.queries.lock().expect("not poisoned").get(id).cloned()
    }

    /// Every known query, newest first.
    pub fn list(&self) -> Vec<Arc<Query>> {
        let mut all: Vec<Arc<Query>> = self
            .queries
            .lock()
            .expect("not poisoned")
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|q| std::cmp::Reverse(q.created));
        all
    }

    /// Starts a query; it runs while the client fetches its pages.
    pub fn submit(&self, sql: String, session: ClientSession) -> Arc<Query> {
        let (sender, receiver) = mpsc::channel(1);
        let id = new_query_id();
        let query = Arc::new(Query {
            id: id.clone(),
            slug: format!("y{}", uuid::Uuid::new_v4().simple()),
            // What query lists show: passwords in CREATE CATALOG masked.
            sql: aichemy_engine::catalogs::redact(&sql).into_owned(),
            session: session.clone(),
            created: SystemTime::now(),
            started: Instant::now(),
            inner: Mutex::new(QueryInner {
                state: State::Queued,
                columns: None,
                columns_sent: false,
                last_page: None,
                rows: 0,
                error: None,
                update: None,
                set_headers: Vec::new(),
                last_fetch: Instant::now(),
                ended: None,
            }),
            stop: StopSignal::new(),
            events: tokio::sync::Mutex::new(receiver),
            task: Mutex::new(None),
        });
        let stop = query.stop.clone();
        let lakehouse = self.lakehouse.clone();
        let started = Arc::downgrade(&query);
        let refusal = if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            Some(TrinoError::new(
                aichemy_engine::ErrorCode::SERVER_SHUTTING_DOWN,
                "Server is shutting down",
            ))
        } else if self.queued.load(std::sync::atomic::Ordering::SeqCst) >= self.max_queued {
            Some(TrinoError::new(
                aichemy_engine::ErrorCode::QUERY_QUEUE_FULL,
                "Too many queued queries for \"global\"",
            ))
        } else {
            None
        };
        let turn = Turn::take(self.running.clone(), self.queued.clone());
        // Listed before it starts, so that the statement finds itself in
        // `system.runtime.queries`.
        {
            let mut queries = self.queries.lock().expect("not poisoned");
            queries.insert(id.clone(), query.clone());
            forget_old(&mut queries);
        }
        // Every log line of the statement, on whichever thread, names its query, user and node.
        let span = tracing::info_span!(
            "query",
            query_id = %id,
            user = %session.user,
            node = %self.node
        );
        let query_id = id.clone();
        let submitted = Instant::now();
        let node = self.node.clone();
        crate::metrics::query_started(&session.user, session.source.as_deref().unwrap_or(""));
        let work = async move {
            if let Some(error) = refusal {
                crate::metrics::query_ended(crate::metrics::QueryEnd {
                    user: &session.user,
                    source: session.source.as_deref().unwrap_or(""),
                    error_type: Some(error.code.error_type().as_str()),
                    queued: Duration::ZERO,
                    wall: submitted.elapsed(),
                    returned: (0, 0),
                    io: &Default::default(),
                });
                let _ = sender.send(Event::Failed(error)).await;
                return;
            }
            let _permit = turn.wait().await;
            let queued = submitted.elapsed();
            if let Some(query) = started.upgrade() {
                query.mark_running();
            }
            // The engine makes a statement's panic its error; one in the server's own
            // work around it (pages, encoding) is this query's error too, never the
            // server's: the task ends, the others go on.
            let outcome = std::panic::AssertUnwindSafe(run(
                lakehouse,
                sql,
                query_id,
                session,
                Started {
                    stop,
                    submitted,
                    queued,
                    node,
                },
                sender.clone(),
            ))
            .catch_unwind()
            .await;
            if let Err(panic) = outcome {
                let _ = sender
                    .send(Event::Failed(TrinoError::panicked(panic.as_ref())))
                    .await;
            }
        };
        let task = aichemy_task::spawn_on(&self.runtime, "query", work.instrument(span));
        *query.task.lock().expect("not poisoned") = Some(task);
        query
    }

    /// Cancels queries whose client stopped fetching, and every query on shutdown.
    pub fn reap(&self, timeout: Duration) {
        for query in self.list() {
            if matches!(query.state(), State::Queued | State::Running) && query.idle() > timeout {
                query.fail(TrinoError::new(
                    aichemy_engine::ErrorCode::ABANDONED_QUERY,
                    format!(
                        "Query {} was abandoned by the client, as it may have exited or \
                         stopped checking for query results (not fetched for {:.2}s)",
                        query.id,
                        timeout.as_secs_f64()
                    ),
                ));
            }
        }
    }

    pub fn cancel_all(&self, message: &str) {
        for query in self.list() {
            query.cancel(message);
        }
    }

    /// Queries that ended (cancelled at shutdown, say) less than `window` ago whose
    /// clients have not fetched the outcome yet.
    pub fn endings_unseen(&self, window: Duration) -> usize {
        self.list()
            .iter()
            .filter(|q| q.ending_unseen(window))
            .count()
    }

    /// How many queries wait for their turn and how many run, now.
    pub fn counts(&self) -> (usize, usize) {
        let queries = self.list();
        let count = |state: State| queries.iter().filter(|q| q.state() == state).count();
        (count(State::Queued), count(State::Running))
    }

    /// Queries still running for a client that is still fetching (one that stopped
    /// fetching has nothing to wait for).
    pub fn running(&self) -> usize {
        self.list()
            .iter()
            .filter(|q| {
                matches!(q.state(), State::Queued | State::Running)
                    && q.idle() < Duration::from_secs(5)
            })
            .count()
    }
}

impl std::fmt::Debug for Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Queries({})", self.list().len())
    }
}

impl QueryLog for Queries {
    fn queries(&self) -> Vec<QueryRecord> {
        self.list()
            .iter()
            .map(|q| QueryRecord {
                query_id: q.id.clone(),
                state: q.state().as_str().to_string(),
                user: q.session.user.clone(),
                source: q.session.source.clone(),
                query: q.sql.clone(),
                error_code: q.error().map(|e| e.code.name().to_string()),
                error_type: q.error().map(|e| e.code.error_type().as_str().to_string()),
                created: format_utc(q.created),
                elapsed_ms: q.elapsed().as_millis() as i64,
                rows: q.rows() as i64,
                node: Some(self.node.to_string()).filter(|n| !n.is_empty()),
                client_tags: q.session.client_tags.clone(),
                ..Default::default()
            })
            .collect()
    }

    fn owner(&self, query_id: &str) -> Option<(String, bool)> {
        let query = self.get(query_id)?;
        let live = matches!(query.state(), State::Queued | State::Running);
        Some((query.session.user.clone(), live))
    }

    fn kill(&self, query_id: &str, error: aichemy_engine::TrinoError) -> bool {
        self.get(query_id).is_some_and(|query| query.fail(error))
    }
}

/// A time as `2025-01-15 10:30:00.000 UTC`.
fn format_utc(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_date((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03} UTC",
        t / 3600,
        t / 60 % 60,
        t % 60,
        since.subsec_millis()
    )
}

fn forget_old(queries: &mut HashMap<String, Arc<Query>>) {
    let mut ended: Vec<(SystemTime, String)> = queries
        .values()
        .filter(|q| matches!(q.state(), State::Finished | State::Failed))
        .map(|q| (q.created, q.id.clone()))
        .collect();
    if ended.len() <= KEEP_FINISHED {
        return;
    }
    ended.sort();
    for (_, id) in ended.iter().take(ended.len() - KEEP_FINISHED) {
        queries.remove(id);
    }
}

/// Trino's query id form: `20250115_103000_00001_abcde` (UTC date and time, a counter,
/// five random letters).
fn new_query_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100_000;
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (year, month, day) = civil_date((secs / 86_400) as i64);
    let time = secs % 86_400;
    let letters: String = uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| (b'a' + b % 26) as char)
        .collect();
    format!(
        "{year:04}{month:02}{day:02}_{:02}{:02}{:02}_{n:05}_{letters}",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// The Gregorian date of a day number counted from 1970-01-01.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn columns_json(schema: &SchemaRef) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .map(|f| {
                let (type_name, signature) = field_type(f);
                json!({"name": f.name(), "type": type_name, "typeSignature": signature})
            })
            .collect(),
    )
}

/// The rows of the next page and the bytes their values hold.
#[derive(Default)]
struct PageBuilder {
    rows: Vec<Value>,
    bytes: usize,
}

impl PageBuilder {
    /// Adds a row; `true` when the page is full.
    fn push(&mut self, row: Vec<Value>) -> bool {
        let row = Value::Array(row);
        self.bytes += value_bytes(&row);
        self.rows.push(row);
        self.rows.len() >= PAGE_ROWS || self.bytes >= PAGE_BYTES
    }

    fn half_full(&self) -> bool {
        self.rows.len() >= PAGE_ROWS / 2 || self.bytes >= PAGE_BYTES / 2
    }

    fn take(&mut self) -> Event {
        self.bytes = 0;
        Event::Rows(std::mem::take(&mut self.rows))
    }
}

/// About the bytes `value` holds in memory: the value itself and what it points to.
fn value_bytes(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(value_bytes).sum(),
            Value::Object(map) => map.iter().map(|(k, v)| k.len() + value_bytes(v)).sum(),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
}

/// A query that got its turn: its stop signal (which also counts its CPU time), when it
/// was submitted, how long it waited, and the server it runs on.
struct Started {
    stop: StopSignal,
    submitted: Instant,
    queued: Duration,
    node: Arc<str>,
}

/// How far a statement got: the rows and bytes it sent, how long it planned before its
/// rows could stream, and the rows it wrote.
#[derive(Default)]
struct Progress {
    sent: (u64, u64),
    planning: Duration,
    written: Option<u64>,
}

/// Executes one statement and streams its events; stops when the receiver is gone.
async fn run(
    lakehouse: Arc<Lakehouse>,
    sql: String,
    query_id: String,
    client: ClientSession,
    started: Started,
    events: mpsc::Sender<Event>,
) {
    let Started {
        stop,
        submitted,
        queued,
        node,
    } = started;
    let created_ms = aichemy_engine::audit::now_ms() - submitted.elapsed().as_millis() as i64;
    let mut progress = Progress::default();
    let io = Arc::new(aichemy_engine::statement_io::StatementIo::default());
    let outcome = run_statement(
        lakehouse.clone(),
        &sql,
        query_id.clone(),
        &client,
        (stop.clone(), io.clone()),
        &events,
        &mut progress,
    )
    .await;
    let error = outcome.err();
    let io = io.take();
    let sent = progress.sent;
    let wall = submitted.elapsed();
    crate::metrics::query_ended(crate::metrics::QueryEnd {
        user: &client.user,
        source: client.source.as_deref().unwrap_or(""),
        error_type: error.as_ref().map(|e| e.code.error_type().as_str()),
        queued,
        wall,
        returned: sent,
        io: &io,
    });
    let ms = |d: Duration| d.as_millis() as i64;
    let run = aichemy_metastore::QueryRun {
        node: Some(node.to_string()).filter(|n| !n.is_empty()),
        source: client.source.clone(),
        client_tags: client.client_tags.clone(),
        state: Some(
            if error.is_some() {
                "FAILED"
            } else {
                "FINISHED"
            }
            .into(),
        ),
        error_code: error.as_ref().map(|e| e.code.name().to_string()),
        error_type: error
            .as_ref()
            .map(|e| e.code.error_type().as_str().to_string()),
        created_ms: Some(created_ms),
        queued_ms: Some(ms(queued)),
        planning_ms: Some(ms(progress.planning)),
        execution_ms: Some(ms(wall.saturating_sub(queued + progress.planning))),
        cpu_ms: Some(ms(stop.cpu_time())),
        peak_memory_bytes: Some(io.peak_memory_bytes as i64),
        spilled_bytes: Some(io.spilled_bytes as i64),
        rows_written: progress.written.map(|rows| rows as i64),
    };
    let done = Done {
        sent,
        io,
        run,
        error: error.as_ref(),
    };
    audit_query(&lakehouse, &sql, query_id, &client, done);
    if let Some(error) = error {
        let _ = events.send(Event::Failed(error)).await;
    }
}

/// How a query ended: the rows and bytes it returned, what it read and wrote, its error.
struct Done<'a> {
    sent: (u64, u64),
    io: aichemy_engine::statement_io::IoSummary,
    run: aichemy_metastore::QueryRun,
    error: Option<&'a TrinoError>,
}

/// One audit record for a query: who ran what, read and wrote which tables and columns,
/// how many rows and bytes it read and returned, and whether it was allowed, refused or
/// failed.
fn audit_query(
    lakehouse: &Arc<Lakehouse>,
    sql: &str,
    query_id: String,
    client: &ClientSession,
    done: Done<'_>,
) {
    let Done {
        sent: (rows, bytes),
        io,
        run,
        error,
    } = done;
    let (read, written) = aichemy_engine::audit::statement_relations(
        lakehouse,
        client.catalog.as_deref(),
        client.schema.as_deref(),
        sql,
    );
    let roles = lakehouse
        .access_as(&client.user, &client.role)
        .ok()
        .flatten()
        .map(|access| access.identity.roles.into_iter().collect())
        .unwrap_or_default();
    let decision = match error {
        None => "ALLOWED",
        Some(e)
            if matches!(
                e.code,
                aichemy_engine::ErrorCode::PERMISSION_DENIED
                    | aichemy_engine::ErrorCode::EXCEEDED_SCAN_LIMIT
            ) =>
        {
            "DENIED"
        }
        Some(_) => "FAILED",
    };
    lakehouse.audit(aichemy_engine::audit::AuditEvent {
        record: aichemy_metastore::AuditRecord {
            kind: "QUERY".into(),
            user: Some(client.user.clone()),
            roles,
            source_address: client.address.clone(),
            user_agent: client.user_agent.clone(),
            action: aichemy_engine::catalogs::redact(sql).into_owned(),
            query_id: Some(query_id),
            read,
            written,
            columns_read: io.columns_read,
            columns_written: io.columns_written,
            rows: Some(rows as i64),
            bytes: Some(bytes as i64),
            rows_read: Some(io.rows_read as i64),
            bytes_read: Some(io.bytes_read as i64),
            table_reads: io
                .table_reads
                .iter()
                .map(|read| aichemy_metastore::TableRead {
                    table: read.table.clone(),
                    rows: read.rows as i64,
                    bytes: read.bytes as i64,
                })
                .collect(),
            decision: decision.into(),
            reason: error.map(|e| e.message.clone()),
            run,
            ..Default::default()
        },
        query: Some(aichemy_engine::audit::QueryDetails {
            error_code: error.map(|e| e.code.code()),
            catalog: client.catalog.clone(),
            schema: client.schema.clone(),
        }),
    });
}

/// Runs the statement, sending its columns, rows, update count and session changes to
/// the client; answers its error, if any (and counts the rows and bytes it sent in
/// `sent`). Rows past the user's read limits are never sent.
async fn run_statement(
    lakehouse: Arc<Lakehouse>,
    sql: &str,
    query_id: String,
    client: &ClientSession,
    (stop, io): (StopSignal, Arc<aichemy_engine::statement_io::StatementIo>),
    events: &mpsc::Sender<Event>,
    progress: &mut Progress,
) -> Result<(), TrinoError> {
    let mut budget = lakehouse.read_budget(&client.user).await?;
    let mut session = Session::new(lakehouse, client.user.clone());
    session.stop = stop;
    session.io = io;
    session.query_id = Some(query_id);
    session.catalog = client.catalog.clone();
    session.schema = client.schema.clone();
    session.time_zone = client.time_zone.clone();
    session.properties = client.properties.clone();
    session.prepared = client.prepared.clone();
    session.role = client.role.clone();
    let planning = Instant::now();
    let output = session.execute(sql).await?;
    match output {
        Output::Update { update_type, count } => {
            // DML counts the rows it wrote; other statements count none.
            progress.written = count;
            let _ = events.send(Event::Update { update_type, count }).await;
        }
        Output::Rows { schema, mut stream } => {
            progress.planning = planning.elapsed();
            let sent = &mut progress.sent;
            if events
                .send(Event::Columns(columns_json(&schema)))
                .await
                .is_err()
            {
                return Ok(());
            }
            let mut page = PageBuilder::default();
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let (rows, bytes) = (
                    batch.num_rows() as u64,
                    batch.get_array_memory_size() as u64,
                );
                budget.take(rows, bytes)?;
                sent.0 += rows;
                sent.1 += bytes;
                // A slice at a time, so that what is encoded but not yet sent stays small
                // whatever the engine's batch size and however wide its rows.
                let mut offset = 0;
                while offset < batch.num_rows() {
                    let len = ENCODE_ROWS.min(batch.num_rows() - offset);
                    let slice = batch.slice(offset, len);
                    offset += len;
                    let columns = match slice
                        .columns()
                        .iter()
                        .zip(schema.fields().iter())
                        .map(|(column, field)| encode_field_column(field, column))
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(columns) => columns,
                        Err(e) => return Err(TrinoError::internal(e)),
                    };
                    let mut columns: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
                    for _ in 0..len {
                        let row = columns
                            .iter_mut()
                            .map(|c| c.next().unwrap_or(Value::Null))
                            .collect();
                        if page.push(row) && events.send(page.take()).await.is_err() {
                            return Ok(());
                        }
                    }
                }
                if page.half_full() && events.send(page.take()).await.is_err() {
                    return Ok(());
                }
            }
            if !page.rows.is_empty() && events.send(page.take()).await.is_err() {
                return Ok(());
            }
        }
    }
    let _ = events
        .send(Event::Session(SessionChanges {
            catalog: session.catalog,
            schema: session.schema,
            properties: session.properties,
            prepared: session.prepared,
            role: session.role,
        }))
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip() {
        let sql = "SELECT a, 'x y' FROM t WHERE b = ? -- 100%";
        assert_eq!(url_decode(&url_encode(sql)).as_deref(), Some(sql));
        assert_eq!(url_decode("a%2Cb+c").as_deref(), Some("a,b c"));
        assert_eq!(url_decode("%zz"), None);
        assert_eq!(url_decode("%4"), None);
    }

    #[test]
    fn query_ids_have_trinos_shape() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(20_103), (2025, 1, 15));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        let id = new_query_id();
        let parts: Vec<&str> = id.split('_').collect();
        assert_eq!(parts.len(), 4, "{id}");
        assert_eq!(parts[0].len(), 8);
        assert_eq!(parts[3].len(), 5);
    }

    /// Runs `test` with the queries of a server on a fresh warehouse.
    fn with_queries(test: impl FnOnce(Queries) -> futures::future::BoxFuture<'static, ()>) {
        let runtime = aichemy_engine::execution::query_runtime(2, "query-test").unwrap();
        let handle = runtime.handle().clone();
        let dir = tempfile::tempdir().unwrap();
        let config = aichemy_config::Config {
            warehouse: dir.path().join("warehouse").display().to_string(),
            ..aichemy_config::Config::default()
        };
        runtime.block_on(async move {
            let lakehouse = Lakehouse::open(&config).await.unwrap();
            let admission = Admission {
                max_running: 4,
                max_queued: 8,
            };
            aichemy_task::spawn("test", test(Queries::new(lakehouse, handle, admission)))
                .await
                .unwrap();
        });
    }

    fn session() -> ClientSession {
        ClientSession {
            user: "alice".into(),
            ..ClientSession::default()
        }
    }

    /// The first page of `query` that has rows.
    async fn first_rows(query: &Query) -> Arc<Page> {
        for token in 0..100 {
            let page = query.page(token, Duration::from_secs(5)).await.unwrap();
            if page.body.get("data").is_some() || page.last {
                return page;
            }
        }
        panic!("no rows in 100 pages");
    }

    #[test]
    fn a_statement_finds_itself_among_the_queries() {
        with_queries(|queries| {
            Box::pin(async move {
                let lakehouse = queries.lakehouse.clone();
                lakehouse.set_query_log(Arc::new(queries.clone()));
                // The task may start before `submit` returns: it must be listed by then.
                for i in 0..20 {
                    let query = queries.submit(
                        format!(
                            "SELECT count(*) FROM system.runtime.queries \
                             WHERE query LIKE '%finds itself <{i}>%'"
                        ),
                        session(),
                    );
                    let page = first_rows(&query).await;
                    assert_eq!(page.body["data"], json!([[1]]), "{}", page.body);
                }
            })
        });
    }

    #[test]
    fn pages_are_cut_by_rows_or_by_bytes() {
        with_queries(|queries| {
            Box::pin(async move {
                let narrow = queries.submit(
                    "SELECT x FROM UNNEST(sequence(1, 10000)) t(x)".into(),
                    session(),
                );
                let page = first_rows(&narrow).await;
                assert_eq!(page.body["data"].as_array().unwrap().len(), PAGE_ROWS);
                narrow.cancel("done");
                // Rows of 20 KB: about 50 of them fill a page.
                let wide = queries.submit(
                    "SELECT x, lpad('', 20000, '-') FROM UNNEST(sequence(1, 10000)) t(x)".into(),
                    session(),
                );
                let page = first_rows(&wide).await;
                let rows = page.body["data"].as_array().unwrap().len();
                assert!((40..=60).contains(&rows), "{rows} rows");
                let bytes = serde_json::to_vec(&page.body).unwrap().len();
                assert!(bytes < 2 * PAGE_BYTES, "{bytes} bytes");
                wide.cancel("done");
            })
        });
    }

    #[test]
    fn a_cancelled_query_keeps_none_of_its_rows() {
        with_queries(|queries| {
            Box::pin(async move {
                let query = queries.submit(
                    "SELECT x FROM UNNEST(sequence(1, 10000)) t(x)".into(),
                    session(),
                );
                let page = first_rows(&query).await;
                assert!(page.body.get("data").is_some());
                // The task has the next page ready in the channel.
                for _ in 0..100 {
                    if !query.events.lock().await.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                assert!(!query.events.lock().await.is_empty());
                query.cancel("Query was canceled");
                assert!(query.events.lock().await.is_empty());
                // The page served last, fetched again, has the same place but no rows.
                let again = query.page(page.token, Duration::ZERO).await.unwrap();
                assert!(again.body.get("data").is_none(), "{}", again.body);
                let last = query
                    .page(page.token + 1, Duration::from_secs(5))
                    .await
                    .unwrap();
                assert!(last.last);
                assert_eq!(last.body["error"]["errorName"], "USER_CANCELED");
            })
        });
    }
}
