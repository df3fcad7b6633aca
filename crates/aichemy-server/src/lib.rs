//! `aichemy serve`: the Trino client protocol over HTTP, so that the Trino CLI, the python
//! `trino` client, SQLAlchemy and JDBC tools use the lakehouse unchanged.
//!
//! ```text
//! POST /v1/statement ──▶ Queries::submit ──▶ task: Session::execute ──▶ pages (channel)
//! GET  nextUri        ◀── one page per fetch, the last one kept for retries
//! DELETE nextUri      ──▶ the task is aborted, the engine's work dropped (204)
//! ```
//! Failed queries are HTTP 200 with Trino's `error` object; a non-200 status means the
//! request itself was wrong. Clients that speak the legacy `X-Presto-*` headers are
//! answered in kind.
#![forbid(unsafe_code)]

mod encode;
mod query;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aichemy_engine::Lakehouse;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

pub use query::{ClientSession, Queries, State as QueryState};

/// The version `GET /v1/info` and `SELECT version()` report.
pub const VERSION: &str = concat!("aichemy-", env!("CARGO_PKG_VERSION"));

/// Longest statement text accepted, as Trino's default `http-server.max-request-size`-ish
/// limit for query text.
const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// How long one fetch waits for the engine before answering an empty page.
const FETCH_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct App {
    queries: Queries,
    scheme: &'static str,
}

/// The router of the Trino protocol over `lakehouse`.
pub fn router(queries: Queries, scheme: &'static str) -> Router {
    let app = App { queries, scheme };
    Router::new()
        .route("/v1/statement", post(submit))
        .route(
            "/v1/statement/executing/{id}/{slug}/{token}",
            get(fetch).delete(cancel_statement),
        )
        .route("/v1/query/{id}", get(query_info).delete(cancel_query))
        .route("/v1/info", get(info))
        .layer(DefaultBodyLimit::max(MAX_STATEMENT_BYTES))
        .with_state(app)
}

/// Serves the protocol on `addr` until `shutdown` completes; then running queries get
/// `grace` to finish before they are cancelled.
pub async fn serve(
    lakehouse: Arc<Lakehouse>,
    addr: SocketAddr,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let queries = Queries::new(lakehouse.clone());
    lakehouse.set_query_log(Arc::new(queries.clone()));
    let reaper = {
        let queries = queries.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                queries.reap(query::CLIENT_TIMEOUT);
            }
        })
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "Trino protocol listening (http)");
    let drained = queries.clone();
    let result = axum::serve(listener, router(queries, "http"))
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new queries");
            let deadline = tokio::time::Instant::now() + grace;
            while drained.running() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            drained.cancel_all("Server is shutting down");
        })
        .await;
    reaper.abort();
    result
}

/// Which header family the client speaks.
#[derive(Clone, Copy)]
struct Protocol(&'static str);

impl Protocol {
    fn detect(headers: &HeaderMap) -> Protocol {
        if headers.keys().any(|k| k.as_str().starts_with("x-presto-")) {
            Protocol("Presto")
        } else {
            Protocol("Trino")
        }
    }

    fn get<'a>(self, headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers
            .get(format!("x-{}-{name}", self.0.to_ascii_lowercase()))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn header(self, name: &str) -> HeaderName {
        HeaderName::try_from(format!("X-{}-{name}", self.0)).expect("valid header name")
    }
}

fn json_response(status: StatusCode, body: Value, extra: Vec<(HeaderName, String)>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A refusal of the request itself (not of its SQL), as plain text like Trino's.
fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        message.to_string(),
    )
        .into_response()
}

fn base_url(app: &App, headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("{}://{host}", app.scheme)
}

async fn submit(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let protocol = Protocol::detect(&headers);
    if headers.keys().any(|k| k.as_str().starts_with("x-presto-"))
        && headers.keys().any(|k| k.as_str().starts_with("x-trino-"))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Both X-Trino and X-Presto headers are present",
        );
    }
    if app.scheme == "http" && headers.contains_key(axum::http::header::AUTHORIZATION) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Password not allowed for insecure authentication",
        );
    }
    let Some(user) = protocol.get(&headers, "user") else {
        return refuse(StatusCode::BAD_REQUEST, "User must be set");
    };
    let Ok(sql) = String::from_utf8(body.to_vec()) else {
        return refuse(StatusCode::BAD_REQUEST, "Query text is not UTF-8");
    };
    if sql.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "SQL statement is empty");
    }
    let session = ClientSession {
        user: user.to_string(),
        source: protocol.get(&headers, "source").map(str::to_string),
        catalog: protocol.get(&headers, "catalog").map(str::to_string),
        schema: protocol.get(&headers, "schema").map(str::to_string),
    };
    let query = app.queries.submit(sql, session);
    let base = base_url(&app, &headers);
    let body = json!({
        "id": query.id,
        "infoUri": format!("{base}/ui/query.html?{}", query.id),
        "nextUri": format!("{base}/v1/statement/executing/{}/{}/0", query.id, query.slug),
        "stats": query::stats(query::State::Queued, 0, query.started),
    });
    json_response(StatusCode::OK, body, Vec::new())
}

async fn fetch(
    State(app): State<App>,
    Path((id, slug, token)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    let protocol = Protocol::detect(&headers);
    let Some(query) = app.queries.get(&id).filter(|q| q.slug == slug) else {
        return refuse(StatusCode::NOT_FOUND, "Query not found");
    };
    let Some(page) = query.page(token, FETCH_WAIT).await else {
        return refuse(StatusCode::GONE, "Page is gone");
    };
    let base = base_url(&app, &headers);
    let mut body = page.body.clone();
    body["infoUri"] = Value::from(format!("{base}/ui/query.html?{}", query.id));
    if !page.last {
        body["nextUri"] = Value::from(format!(
            "{base}/v1/statement/executing/{}/{}/{}",
            query.id,
            query.slug,
            token + 1
        ));
    }
    let extra = page
        .headers
        .iter()
        .map(|(name, value)| (protocol.header(name), value.clone()))
        .collect();
    json_response(StatusCode::OK, body, extra)
}

async fn cancel_statement(
    State(app): State<App>,
    Path((id, slug, _token)): Path<(String, String, u64)>,
) -> Response {
    match app.queries.get(&id).filter(|q| q.slug == slug) {
        Some(query) => {
            query.cancel("Query was canceled");
            StatusCode::NO_CONTENT.into_response()
        }
        None => refuse(StatusCode::NOT_FOUND, "Query not found"),
    }
}

async fn query_info(State(app): State<App>, Path(id): Path<String>) -> Response {
    let Some(query) = app.queries.get(&id) else {
        return refuse(StatusCode::NOT_FOUND, "Query not found");
    };
    let mut body = json!({
        "queryId": query.id,
        "state": query.state().as_str(),
        "query": query.sql,
        "session": {"user": query.session.user, "source": query.session.source},
        "queryStats": {"elapsedTime": format!("{}ms", query.elapsed().as_millis())},
    });
    if let Some(error) = query.error() {
        body["failureInfo"] = query::error_json(&error)["failureInfo"].clone();
        body["errorCode"] = json!({"code": error.code.code(), "name": error.code.name(),
            "type": error.code.error_type().as_str()});
    }
    json_response(StatusCode::OK, body, Vec::new())
}

async fn cancel_query(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.queries.get(&id) {
        Some(query) => {
            query.cancel("Query was canceled");
            StatusCode::NO_CONTENT.into_response()
        }
        None => refuse(StatusCode::NOT_FOUND, "Query not found"),
    }
}

async fn info() -> Response {
    json_response(
        StatusCode::OK,
        json!({
            "nodeVersion": {"version": VERSION},
            "environment": "aichemy",
            "coordinator": true,
            "starting": false,
            "uptime": "0.00s",
        }),
        Vec::new(),
    )
}
