//! Prometheus metrics (issue 35): the process records through the `metrics` facade (the
//! engine, storage, table formats and ingestion too), `metrics-exporter-prometheus`
//! renders the exposition format, and `metrics-process` adds CPU, memory, threads and
//! file descriptors. `GET /metrics` serves them on the server's listeners behind the same
//! authentication as statements (as Trino puts its `/metrics`), to users who may read
//! system information; `server.metrics_port` serves them unauthenticated on a port of their
//! own, for scrapers on a trusted network. Metrics carry no secret and no data value:
//! their labels are users, sources, states, formats, routes and job names.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::{App, ClientAddress, Protocol};

/// Seconds: the bounds of the latency histograms' buckets.
const SECONDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static RECORDER: OnceLock<Option<Exporter>> = OnceLock::new();

struct Exporter {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

/// Installs the process's recorder, once: metrics recorded before it are lost, those
/// after it are rendered by [`render`]. `node` labels every series. A second call (a
/// second server in one test process) keeps the first.
pub fn install(node: &str) {
    RECORDER.get_or_init(|| {
        let built = PrometheusBuilder::new()
            .set_buckets(SECONDS)
            .and_then(|b| b.add_global_label("node", node).install_recorder());
        match built {
            Ok(handle) => {
                describe();
                initialize();
                let process = metrics_process::Collector::default();
                process.describe();
                // Histograms keep what upkeep has not drained yet: drain it now and then.
                let upkeep = handle.clone();
                aichemy_task::spawn("metrics upkeep", async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        upkeep.run_upkeep();
                    }
                });
                Some(Exporter { handle, process })
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics are off: no recorder could be installed");
                None
            }
        }
    });
}

/// The metrics in Prometheus's text format, the gauges read now.
pub fn render(lakehouse: &aichemy_engine::Lakehouse, queries: &crate::Queries) -> Option<String> {
    let exporter = RECORDER.get()?.as_ref()?;
    exporter.process.collect();
    let pool = lakehouse.memory_pool();
    gauge!("aichemy_memory_pool_reserved_bytes").set(pool.reserved as f64);
    if let Some(limit) = pool.limit {
        gauge!("aichemy_memory_pool_limit_bytes").set(limit as f64);
    }
    let (queued, running) = queries.counts();
    gauge!("aichemy_queries_running").set(running as f64);
    gauge!("aichemy_queries_queued").set(queued as f64);
    Some(exporter.handle.render())
}

/// Counters of known label values start at zero, as Prometheus's instrumentation guide
/// asks: a `rate()` or `increase()` then sees the first event, and an alert on a
/// counter that has never moved has a series to read.
fn initialize() {
    for format in ["iceberg", "delta", "lance"] {
        for name in [
            "aichemy_commits_total",
            "aichemy_commit_retries_total",
            "aichemy_commit_conflicts_total",
        ] {
            counter!(name, "format" => format).increment(0);
        }
    }
    for scheme in ["file", "s3"] {
        for operation in [
            "get",
            "head",
            "get_ranges",
            "put",
            "put_multipart",
            "list",
            "delete",
            "copy",
            "rename",
        ] {
            counter!("aichemy_object_store_errors_total", "scheme" => scheme, "operation" => operation)
                .increment(0);
        }
    }
    for method in ["password", "jwt"] {
        for decision in ["ALLOWED", "DENIED"] {
            counter!("aichemy_authentications_total", "method" => method, "decision" => decision)
                .increment(0);
        }
    }
}

/// What each metric means, shown as its `# HELP`.
fn describe() {
    describe_counter!(
        "aichemy_queries_started_total",
        "Queries submitted, by user and source"
    );
    describe_counter!(
        "aichemy_queries_total",
        "Queries ended, by state (FINISHED, FAILED), error type, user and source"
    );
    describe_histogram!(
        "aichemy_query_seconds",
        metrics::Unit::Seconds,
        "Wall time of queries, from submission to their end"
    );
    describe_histogram!(
        "aichemy_query_queued_seconds",
        metrics::Unit::Seconds,
        "Time queries waited for their turn"
    );
    describe_counter!(
        "aichemy_query_rows_read_total",
        "Rows the queries' scans produced"
    );
    describe_counter!(
        "aichemy_query_bytes_read_total",
        metrics::Unit::Bytes,
        "Bytes the queries' scans read"
    );
    describe_counter!(
        "aichemy_query_rows_returned_total",
        "Rows queries returned to their clients, by user"
    );
    describe_counter!(
        "aichemy_query_bytes_returned_total",
        metrics::Unit::Bytes,
        "Bytes of the rows queries returned to their clients, by user"
    );
    describe_counter!(
        "aichemy_query_spilled_bytes_total",
        metrics::Unit::Bytes,
        "Bytes the queries' operators spilled to disk"
    );
    describe_gauge!("aichemy_queries_running", "Queries running now");
    describe_gauge!(
        "aichemy_queries_queued",
        "Queries waiting for their turn now"
    );
    describe_gauge!(
        "aichemy_memory_pool_reserved_bytes",
        metrics::Unit::Bytes,
        "Memory the queries' operators hold in the shared pool"
    );
    describe_gauge!(
        "aichemy_memory_pool_limit_bytes",
        metrics::Unit::Bytes,
        "The shared memory pool's limit"
    );
    describe_counter!(
        "aichemy_http_requests_total",
        "HTTP requests, by route, method and status"
    );
    describe_histogram!(
        "aichemy_http_request_seconds",
        metrics::Unit::Seconds,
        "Time to answer HTTP requests, by route"
    );
    describe_gauge!(
        "aichemy_open_connections",
        "Client connections open now, HTTP and HTTPS"
    );
    describe_counter!(
        "aichemy_iceberg_rest_requests_total",
        "Iceberg REST catalog calls, by method and decision (ALLOWED, DENIED, FAILED)"
    );
    describe_counter!(
        "aichemy_commits_total",
        "Table commits that succeeded, by format"
    );
    describe_counter!(
        "aichemy_commit_retries_total",
        "Commits tried again after another writer won the race, by format"
    );
    describe_counter!(
        "aichemy_commit_conflicts_total",
        "Statements that failed on a conflict their retries did not resolve, by format"
    );
    describe_counter!(
        "aichemy_object_store_requests_total",
        "Object store requests, by scheme and operation"
    );
    describe_counter!(
        "aichemy_object_store_errors_total",
        "Object store requests that failed (not counting absent objects), by scheme and operation"
    );
    describe_histogram!(
        "aichemy_object_store_request_seconds",
        metrics::Unit::Seconds,
        "Object store request time to the first answer, by scheme and operation"
    );
    describe_gauge!(
        "aichemy_ingestion_lag",
        "Messages or bytes of WAL an ingestion job is behind its source, by ingestion"
    );
    describe_counter!(
        "aichemy_ingestion_rows_total",
        "Rows ingestion jobs committed, by ingestion"
    );
    describe_counter!(
        "aichemy_pipeline_runs_total",
        "Pipeline runs ended, by pipeline and state"
    );
    describe_counter!(
        "aichemy_authentications_total",
        "Sign-ins, by method and decision"
    );
}

/// Records one ended query: its state, times and what it read, returned and spilled.
pub(crate) struct QueryEnd<'a> {
    pub user: &'a str,
    pub source: &'a str,
    pub error_type: Option<&'a str>,
    pub queued: Duration,
    pub wall: Duration,
    pub returned: (u64, u64),
    pub io: &'a aichemy_engine::statement_io::IoSummary,
}

pub(crate) fn query_started(user: &str, source: &str) {
    counter!("aichemy_queries_started_total", "user" => user.to_string(), "source" => source.to_string())
        .increment(1);
}

pub(crate) fn query_ended(end: QueryEnd<'_>) {
    let state = if end.error_type.is_some() {
        "FAILED"
    } else {
        "FINISHED"
    };
    counter!(
        "aichemy_queries_total",
        "state" => state,
        "error_type" => end.error_type.unwrap_or("").to_string(),
        "user" => end.user.to_string(),
        "source" => end.source.to_string()
    )
    .increment(1);
    histogram!("aichemy_query_seconds").record(end.wall.as_secs_f64());
    histogram!("aichemy_query_queued_seconds").record(end.queued.as_secs_f64());
    counter!("aichemy_query_rows_read_total").increment(end.io.rows_read);
    counter!("aichemy_query_bytes_read_total").increment(end.io.bytes_read);
    counter!("aichemy_query_spilled_bytes_total").increment(end.io.spilled_bytes);
    let user = end.user.to_string();
    counter!("aichemy_query_rows_returned_total", "user" => user.clone()).increment(end.returned.0);
    counter!("aichemy_query_bytes_returned_total", "user" => user).increment(end.returned.1);
}

/// Counts a sign-in, by method (`password`, `jwt`) and decision.
pub(crate) fn authenticated(method: &str, allowed: bool) {
    let decision = if allowed { "ALLOWED" } else { "DENIED" };
    counter!("aichemy_authentications_total", "method" => method.to_string(), "decision" => decision)
        .increment(1);
}

/// Counts each request by the route it matched (its pattern: `/v1/statement/executing/
/// {id}/{slug}/{token}`, never the ids themselves) and its status, and times it.
pub(crate) async fn http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    histogram!("aichemy_http_request_seconds", "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!("aichemy_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

/// `GET /metrics` on the server's listeners: the signed-in user must be allowed to read
/// system information (an administrator without a policy: anyone signed in).
pub(crate) async fn scrape(
    State(app): State<App>,
    client: ClientAddress,
    headers: HeaderMap,
) -> Response {
    let protocol = Protocol::detect(&headers);
    let user = match crate::authenticate(&app, &headers, protocol, client).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let lakehouse = app.queries.lakehouse();
    if !lakehouse.reads_system_information(&user) {
        return crate::refuse(
            StatusCode::FORBIDDEN,
            "Access Denied: Cannot read system information",
        );
    }
    exposition(lakehouse, &app.queries)
}

/// The metrics as a response, or 404 when the process records none.
pub(crate) fn exposition(
    lakehouse: &aichemy_engine::Lakehouse,
    queries: &crate::Queries,
) -> Response {
    match render(lakehouse, queries) {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => crate::refuse(StatusCode::NOT_FOUND, "Metrics are not enabled"),
    }
}

/// How often the console's charts get a point, and how many points make their hour.
const SAMPLE_EVERY: Duration = Duration::from_secs(15);
const SAMPLES_KEPT: usize = 240;

/// The series the console charts: name, title, unit, and how each point is read from
/// the exposition (`Level` of a gauge, `Rate` of a counter per second, `Ratio` of two
/// counters' increases: a histogram's mean).
const CHARTED: &[(&str, &str, &str, Reading)] = &[
    (
        "queries_running",
        "Running queries",
        "count",
        Reading::Level("aichemy_queries_running"),
    ),
    (
        "queries_queued",
        "Queued queries",
        "count",
        Reading::Level("aichemy_queries_queued"),
    ),
    (
        "queries_ended",
        "Queries ended per second",
        "per_second",
        Reading::Rate("aichemy_queries_total", None),
    ),
    (
        "queries_failed",
        "Queries failed per second",
        "per_second",
        Reading::Rate("aichemy_queries_total", Some("state=\"FAILED\"")),
    ),
    (
        "query_seconds",
        "Mean query time",
        "seconds",
        Reading::Ratio("aichemy_query_seconds_sum", "aichemy_query_seconds_count"),
    ),
    (
        "rows_read",
        "Rows read per second",
        "per_second",
        Reading::Rate("aichemy_query_rows_read_total", None),
    ),
    (
        "bytes_read",
        "Bytes read per second",
        "bytes",
        Reading::Rate("aichemy_query_bytes_read_total", None),
    ),
    (
        "memory_pool",
        "Query memory in use",
        "bytes",
        Reading::Level("aichemy_memory_pool_reserved_bytes"),
    ),
    (
        "process_memory",
        "Process resident memory",
        "bytes",
        Reading::Level("process_resident_memory_bytes"),
    ),
    (
        "process_cpu",
        "Process CPU (cores busy)",
        "count",
        Reading::Rate("process_cpu_seconds_total", None),
    ),
    (
        "http_requests",
        "HTTP requests per second",
        "per_second",
        Reading::Rate("aichemy_http_requests_total", None),
    ),
    (
        "ingestion_rows",
        "Rows ingested per second",
        "per_second",
        Reading::Rate("aichemy_ingestion_rows_total", None),
    ),
];

#[derive(Clone, Copy)]
enum Reading {
    Level(&'static str),
    Rate(&'static str, Option<&'static str>),
    Ratio(&'static str, &'static str),
}

/// Points of the charted series: when, and each series' cumulative reading then.
#[derive(Default)]
struct History {
    /// (Unix milliseconds, one sum per name in `CHARTED` order, two per `Ratio`).
    samples: std::collections::VecDeque<(i64, Vec<f64>)>,
}

static HISTORY: std::sync::Mutex<History> = std::sync::Mutex::new(History {
    samples: std::collections::VecDeque::new(),
});

/// The sum over every series of the family `name` (with `label`, when given) in the
/// exposition `text`.
fn sum_of(text: &str, name: &str, label: Option<&str>) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| label.is_none_or(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .filter(|value| value.is_finite())
        .sum()
}

fn readings(text: &str) -> Vec<f64> {
    CHARTED
        .iter()
        .flat_map(|(_, _, _, reading)| match *reading {
            Reading::Level(name) => vec![sum_of(text, name, None)],
            Reading::Rate(name, label) => vec![sum_of(text, name, label)],
            Reading::Ratio(sum, count) => vec![sum_of(text, sum, None), sum_of(text, count, None)],
        })
        .collect()
}

/// Takes a point of the charted series every 15 seconds, keeping an hour of them, until
/// the returned task is aborted; nothing when metrics are off.
pub(crate) fn sample_history(
    lakehouse: std::sync::Arc<aichemy_engine::Lakehouse>,
    queries: crate::Queries,
) -> tokio::task::JoinHandle<()> {
    aichemy_task::spawn("metrics history", async move {
        loop {
            if let Some(text) = render(&lakehouse, &queries) {
                let point = (aichemy_engine::audit::now_ms(), readings(&text));
                let mut history = HISTORY.lock().expect("not poisoned");
                history.samples.push_back(point);
                while history.samples.len() > SAMPLES_KEPT + 1 {
                    history.samples.pop_front();
                }
            }
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    })
}

/// The charted series over the last hour and now, as `/ui/api/metrics` answers them:
/// levels as read, rates per second between consecutive points.
pub(crate) fn history_json(
    lakehouse: &aichemy_engine::Lakehouse,
    queries: &crate::Queries,
) -> serde_json::Value {
    let now =
        render(lakehouse, queries).map(|text| (aichemy_engine::audit::now_ms(), readings(&text)));
    let history = HISTORY.lock().expect("not poisoned");
    let samples: Vec<&(i64, Vec<f64>)> = history.samples.iter().chain(now.as_ref()).collect();
    let mut series = Vec::new();
    let mut column = 0;
    for (name, title, unit, reading) in CHARTED {
        let width = if matches!(reading, Reading::Ratio(..)) {
            2
        } else {
            1
        };
        let points: Vec<serde_json::Value> = match reading {
            Reading::Level(_) => samples
                .iter()
                .map(|(at, values)| serde_json::json!([at, values[column]]))
                .collect(),
            Reading::Rate(..) | Reading::Ratio(..) => samples
                .windows(2)
                .map(|pair| {
                    let ((then, before), (now, after)) = (pair[0], pair[1]);
                    let grown = |i: usize| (after[i] - before[i]).max(0.0);
                    let value = match reading {
                        Reading::Ratio(..) => {
                            let count = grown(column + 1);
                            if count > 0.0 {
                                grown(column) / count
                            } else {
                                0.0
                            }
                        }
                        _ => grown(column) / ((now - then).max(1) as f64 / 1000.0),
                    };
                    serde_json::json!([now, value])
                })
                .collect(),
        };
        column += width;
        series.push(serde_json::json!({
            "name": name, "title": title, "unit": unit, "points": points,
        }));
    }
    serde_json::json!({
        "interval_seconds": SAMPLE_EVERY.as_secs(),
        "series": series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_read_a_family_and_only_it() {
        let text = "# HELP aichemy_queries_total x\n\
            aichemy_queries_total{state=\"FINISHED\",user=\"a b\"} 3\n\
            aichemy_queries_total{state=\"FAILED\",user=\"c\"} 2\n\
            aichemy_queries_total_other 100\n\
            process_cpu_seconds_total 1.5\n";
        assert_eq!(sum_of(text, "aichemy_queries_total", None), 5.0);
        assert_eq!(
            sum_of(text, "aichemy_queries_total", Some("state=\"FAILED\"")),
            2.0
        );
        assert_eq!(sum_of(text, "process_cpu_seconds_total", None), 1.5);
        assert_eq!(sum_of(text, "missing", None), 0.0);
    }
}
