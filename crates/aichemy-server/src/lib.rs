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

pub mod auth;
mod encode;
pub mod iceberg_rest;
mod idle;
pub mod jwt;
mod metrics;
pub mod private_file;
#[cfg(test)]
mod protocol_fuzz;
mod query;
mod search;
pub mod tls;
mod ui;

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
use base64::Engine;
use serde_json::{json, Value};

pub use auth::{MetastoreUsers, PasswordFile, Users};
pub use query::{Admission, ClientSession, Queries, State as QueryState};
pub use ui::Console;

/// The version `GET /v1/info` and `SELECT version()` report.
pub const VERSION: &str = aichemy_engine::VERSION;

/// Longest statement text accepted, as Trino's default `http-server.max-request-size`-ish
/// limit for query text.
const MAX_STATEMENT_BYTES: usize = 1 << 20;

/// How long one fetch waits for the engine before answering an empty page.
const FETCH_WAIT: Duration = Duration::from_secs(1);

/// What the end of shutdown keeps of the grace period: half for open connections to
/// finish their responses, half to spare. At most 2 s, at most a quarter of the period.
fn shutdown_margin(grace: Duration) -> Duration {
    (grace / 4).min(Duration::from_secs(2))
}

/// How often a server tells the metastore it is up (`system.runtime.nodes`).
const NODE_HEARTBEAT: Duration = Duration::from_secs(5);

/// How long a client gets to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How clients prove who they are.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Where passwords are checked; when set, HTTPS requests must carry valid Basic
    /// credentials.
    pub passwords: Option<Users>,
    /// Whether plain HTTP still takes a user name without a password once passwords are
    /// configured (Trino's `http-server.authentication.allow-insecure-over-http`).
    pub allow_insecure_over_http: bool,
    /// Repeated failed password checks, which slow down further attempts.
    pub failed_logins: Arc<auth::FailedLogins>,
    /// Bearer JWTs of an identity provider, when configured.
    pub jwt: Option<Arc<jwt::JwtAuthenticator>>,
}

/// The address a request came from, as the listener saw it (`None` where a router runs
/// without a listener, as in tests). Never a header: those are the client's to forge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// Where and how the server listens.
pub struct ServeOptions {
    /// The plain HTTP listener.
    pub http: Option<SocketAddr>,
    /// The HTTPS listener and its TLS configuration.
    pub https: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    pub security: Security,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Shutdown takes at most this long: running queries get most of it to finish, then
    /// they are cancelled and their clients told.
    pub grace: Duration,
    /// A query whose client stopped fetching its results for this long is cancelled, as
    /// Trino's `query.client.timeout`.
    pub client_timeout: Duration,
    /// Where statements run: a runtime apart from the one serving these listeners.
    pub query_runtime: tokio::runtime::Handle,
    /// How many queries run at once and how many may wait.
    pub admission: Admission,
    /// This server's name, the `node` label of its metrics.
    pub node: String,
    /// A listener serving `/metrics` alone, without authentication, for scrapers.
    pub metrics: Option<SocketAddr>,
    /// Whether metrics are recorded at all (`server.metrics_enabled`).
    pub metrics_enabled: bool,
    /// How long a sign-in to the web console lasts.
    pub console_session: Duration,
}

#[derive(Clone)]
struct App {
    queries: Queries,
    scheme: &'static str,
    security: Security,
    console: Arc<ui::Console>,
}

/// The router of the Trino protocol and the web console for one listener.
pub fn router(
    queries: Queries,
    scheme: &'static str,
    security: Security,
    console: Arc<ui::Console>,
) -> Router {
    let app = App {
        queries,
        scheme,
        security,
        console,
    };
    Router::new()
        .merge(ui::router())
        .route("/v1/statement", post(submit))
        .route(
            "/v1/statement/executing/{id}/{slug}/{token}",
            get(fetch).delete(cancel_statement),
        )
        .route("/v1/query/{id}", get(query_info).delete(cancel_query))
        .route("/v1/info", get(info))
        .route("/v1/search", post(search::search))
        .route("/metrics", get(metrics::scrape))
        .layer(DefaultBodyLimit::max(MAX_STATEMENT_BYTES))
        .with_state(app)
}

/// The routes of one listener, each request counted and timed by route and status.
fn counted(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(metrics::http))
}

/// Binds `addr` now, so a taken port is an error at startup rather than later.
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves the protocol until `shutdown` completes; then new queries are refused, running
/// ones get `options.grace` to finish, and the rest are cancelled.
pub async fn serve(
    lakehouse: Arc<Lakehouse>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if options.metrics_enabled {
        metrics::install(&options.node);
    }
    let queries = Queries::new(
        lakehouse.clone(),
        options.query_runtime.clone(),
        options.admission,
    )
    .with_node(&options.node);
    lakehouse.set_query_log(Arc::new(queries.clone()));
    let node_uri = match (&options.http, &options.https) {
        (Some(addr), _) => Some(format!("http://{addr}")),
        (None, Some((addr, _))) => Some(format!("https://{addr}")),
        (None, None) => None,
    };
    let handle = axum_server::Handle::new();
    let mut servers = tokio::task::JoinSet::new();
    let key = lakehouse
        .metastore()
        .shared_secret(iceberg_rest::TOKEN_KEY_NAME, iceberg_rest::Tokens::new_key)
        .await
        .map_err(std::io::Error::other)?;
    let tokens = Arc::new(iceberg_rest::Tokens::new(key.as_bytes()));
    let console = Arc::new(Console::new(key.as_bytes(), options.console_session));
    if let Some(addr) = options.http {
        let listener = bind(addr)?;
        tracing::info!(address = %listener.local_addr()?, "Trino protocol listening (http)");
        let server = axum_server::from_tcp(listener)
            .acceptor(idle::IdleAcceptor {
                idle: options.idle_timeout,
            })
            .handle(handle.clone());
        let app = counted(
            router(
                queries.clone(),
                "http",
                options.security.clone(),
                console.clone(),
            )
            .nest(
                "/iceberg",
                iceberg_rest::router(
                    lakehouse.clone(),
                    "http",
                    options.security.clone(),
                    tokens.clone(),
                ),
            ),
        );
        aichemy_task::spawn_in(
            &mut servers,
            "http server",
            server.serve(app.into_make_service_with_connect_info::<SocketAddr>()),
        );
    }
    if let Some((addr, config)) = options.https {
        let listener = bind(addr)?;
        tracing::info!(address = %listener.local_addr()?, "Trino protocol listening (https)");
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
            axum_server::tls_rustls::RustlsConfig::from_config(config),
        )
        .handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
        .acceptor(idle::IdleAcceptor {
            idle: options.idle_timeout,
        });
        let server = axum_server::from_tcp(listener)
            .acceptor(acceptor)
            .handle(handle.clone());
        let app = counted(
            router(
                queries.clone(),
                "https",
                options.security.clone(),
                console.clone(),
            )
            .nest(
                "/iceberg",
                iceberg_rest::router(
                    lakehouse.clone(),
                    "https",
                    options.security.clone(),
                    tokens.clone(),
                ),
            ),
        );
        aichemy_task::spawn_in(
            &mut servers,
            "https server",
            server.serve(app.into_make_service_with_connect_info::<SocketAddr>()),
        );
    }
    if let Some(addr) = options.metrics {
        let listener = bind(addr)?;
        tracing::info!(address = %listener.local_addr()?, "metrics listening (http, no authentication)");
        let server = axum_server::from_tcp(listener).handle(handle.clone());
        let (lakehouse, queries) = (lakehouse.clone(), queries.clone());
        let app = Router::new().route(
            "/metrics",
            get(move || async move { metrics::exposition(&lakehouse, &queries) }),
        );
        aichemy_task::spawn_in(
            &mut servers,
            "metrics server",
            server.serve(app.into_make_service()),
        );
    }
    let heartbeat = {
        let lakehouse = lakehouse.clone();
        let node = aichemy_metastore::NodeRecord {
            node_id: options.node.clone(),
            http_uri: node_uri,
            node_version: VERSION.to_string(),
            started_ms: aichemy_engine::audit::now_ms(),
            heartbeat_ms: 0,
        };
        aichemy_task::spawn("node heartbeat", async move {
            loop {
                let beat = aichemy_metastore::NodeRecord {
                    heartbeat_ms: aichemy_engine::audit::now_ms(),
                    ..node.clone()
                };
                if let Err(e) = lakehouse.metastore().node_heartbeat(&beat).await {
                    tracing::warn!(error = %e, "node heartbeat not recorded");
                }
                tokio::time::sleep(NODE_HEARTBEAT).await;
            }
        })
    };
    let charts = options
        .metrics_enabled
        .then(|| metrics::sample_history(lakehouse.clone(), queries.clone()));
    let reaper = {
        let queries = queries.clone();
        let client_timeout = options.client_timeout;
        let reap_every =
            (client_timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        aichemy_task::spawn("query reaper", async move {
            loop {
                tokio::time::sleep(reap_every).await;
                queries.reap(client_timeout);
            }
        })
    };
    let stopped_early = tokio::select! {
        result = servers.join_next() => Some(result),
        () = shutdown => None,
    };
    let result = match stopped_early {
        Some(Some(Ok(Err(e)))) => Err(e),
        Some(Some(Err(e))) => Err(std::io::Error::other(e)),
        Some(_) => Ok(()),
        None => {
            // Clients keep fetching the pages of running queries during the grace period;
            // only new queries are refused. The whole shutdown fits in the grace period:
            // the last part of it is for telling clients their queries were cancelled.
            tracing::info!("shutting down: no new queries");
            queries.shut_down();
            // The listeners' last second and a margin come off the grace period, which
            // the binary enforces by ending the process once it has passed.
            let margin = shutdown_margin(options.grace);
            let deadline = tokio::time::Instant::now() + options.grace.saturating_sub(margin);
            let notice = (options.grace / 4).min(Duration::from_secs(3));
            while queries.running() > 0 && tokio::time::Instant::now() + notice < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            queries.cancel_all("Server is shutting down");
            // Their clients learn of the cancellation on their next poll; the listeners
            // stay open until they have (closing them first loses the outcome).
            while queries.endings_unseen(notice) > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(())
        }
    };
    // Connections still open get a moment to finish their responses.
    handle.graceful_shutdown(Some(shutdown_margin(options.grace) / 2));
    while servers.join_next().await.is_some() {}
    reaper.abort();
    heartbeat.abort();
    if let Some(charts) = charts {
        charts.abort();
    }
    // A node that stopped is no longer listed.
    if let Err(e) = lakehouse.metastore().forget_node(&options.node).await {
        tracing::warn!(error = %e, "stopped node not removed from the metastore");
    }
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
            .get(format!("x-{}-{name}", self.0).to_ascii_lowercase())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// Every value of a repeatable header (`X-Trino-Session` may come once per property).
    fn get_all<'a>(self, headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
        headers
            .get_all(format!("x-{}-{name}", self.0).to_ascii_lowercase())
            .into_iter()
            .filter_map(|v| v.to_str().ok())
    }

    fn header(self, name: &str) -> HeaderName {
        HeaderName::try_from(format!("X-{}-{name}", self.0)).expect("valid header name")
    }
}

fn json_response(
    status: StatusCode,
    body: impl serde::Serialize,
    extra: Vec<(HeaderName, String)>,
) -> Response {
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

/// The client's session as its request headers describe it.
fn client_session(
    user: String,
    headers: &HeaderMap,
    protocol: Protocol,
) -> Result<ClientSession, String> {
    let time_zone = protocol.get(headers, "time-zone").map(str::to_string);
    if let Some(zone) = &time_zone {
        if zone
            .parse::<datafusion::arrow::array::timezone::Tz>()
            .is_err()
        {
            return Err(format!("Time zone not supported: {zone}"));
        }
    }
    Ok(ClientSession {
        user,
        source: protocol.get(headers, "source").map(str::to_string),
        catalog: protocol.get(headers, "catalog").map(str::to_string),
        schema: protocol.get(headers, "schema").map(str::to_string),
        time_zone,
        client_tags: protocol
            .get_all(headers, "client-tags")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        client_info: protocol.get(headers, "client-info").map(str::to_string),
        properties: pairs(protocol, headers, "Session")?,
        prepared: pairs(protocol, headers, "Prepared-Statement")?,
        role: system_role(&pairs(protocol, headers, "Role")?)?,
        address: None,
        user_agent: user_agent(headers),
    })
}

/// The client's `User-Agent`, for the audit.
fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// One audit record of an authentication: who tried, from where, and whether it passed.
/// The password is never part of it.
pub(crate) fn audit_authentication(
    lakehouse: &Lakehouse,
    user: Option<&str>,
    address: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    action: &str,
    refusal: Option<&str>,
) {
    if matches!(action, "password" | "jwt") {
        metrics::authenticated(action, refusal.is_none());
    }
    lakehouse.audit(aichemy_engine::audit::AuditEvent {
        record: aichemy_metastore::AuditRecord {
            kind: "AUTHENTICATION".into(),
            user: user.map(str::to_string),
            source_address: address.map(|a| a.to_string()),
            user_agent: user_agent(headers),
            action: action.to_string(),
            decision: match refusal {
                None => "ALLOWED".into(),
                Some(_) => "DENIED".into(),
            },
            reason: refusal.map(str::to_string),
            ..Default::default()
        },
        query: None,
    });
}

/// The system role the client has set (`X-Trino-Role: system=ROLE{r}`, `ALL`, `NONE`);
/// roles of other catalogs are refused, as they have none.
fn system_role(
    roles: &std::collections::BTreeMap<String, String>,
) -> Result<aichemy_access::RoleSelection, String> {
    let mut role = aichemy_access::RoleSelection::All;
    for (catalog, value) in roles {
        if catalog != "system" {
            return Err(format!(
                "Catalog '{catalog}' has no roles of its own: roles are the system's"
            ));
        }
        role = aichemy_access::RoleSelection::from_header_value(value)
            .ok_or_else(|| format!("Invalid role: {value}"))?;
    }
    Ok(role)
}

/// `name=urlencoded-value` pairs of a header, repeated or comma-joined.
fn pairs(
    protocol: Protocol,
    headers: &HeaderMap,
    name: &str,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let mut pairs = std::collections::BTreeMap::new();
    for item in protocol
        .get_all(headers, name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let invalid = || format!("Invalid X-{}-{} header", protocol.0, name);
        let (key, value) = item.split_once('=').ok_or_else(invalid)?;
        let value = query::url_decode(value).ok_or_else(invalid)?;
        if key.trim().is_empty() {
            return Err(invalid());
        }
        pairs.insert(key.trim().to_string(), value);
    }
    Ok(pairs)
}

/// The user a request acts as, as Trino's authentication filter decides it: on HTTPS with
/// passwords configured, Basic credentials checked against them; otherwise the user the client
/// names, with passwords refused (they would travel in clear or go unchecked).
async fn authenticate(
    app: &App,
    headers: &HeaderMap,
    protocol: Protocol,
    client: ClientAddress,
) -> Result<String, Response> {
    if !headers.contains_key(axum::http::header::AUTHORIZATION) {
        if let Some(signed_in) = ui::cookie_user(app, headers).await {
            return signed_in;
        }
    }
    let named = protocol.get(headers, "user").map(str::to_string);
    if let (Some(token), Some(jwt)) = (jwt::bearer(headers), &app.security.jwt) {
        if app.scheme != "https" && !app.security.allow_insecure_over_http {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "Authentication over HTTP is not enabled",
            ));
        }
        return match jwt.user(token).await {
            Ok(user) => {
                let user = user.signed_in(app.queries.lakehouse());
                acting_as(app, (headers, client), user, named)
            }
            Err(problem) => {
                tracing::info!(problem, "JWT authentication failed");
                let refusal = format!("Authentication failed: {problem}");
                let lakehouse = app.queries.lakehouse();
                audit_authentication(
                    lakehouse,
                    named.as_deref(),
                    client.0,
                    headers,
                    "jwt",
                    Some(&refusal),
                );
                Err(unauthorized(&refusal))
            }
        };
    }
    if app.security.jwt.is_some() && app.security.passwords.is_none() {
        return Err(unauthorized("Unauthorized: a bearer JWT is required"));
    }
    let credentials = match basic_credentials(headers) {
        Ok(credentials) => credentials,
        Err(message) => return Err(unauthorized(message)),
    };
    match &app.security.passwords {
        Some(passwords) if app.scheme == "https" => {
            let Some((user, Some(password))) = credentials else {
                return Err(unauthorized("Unauthorized"));
            };
            let failed_logins = &app.security.failed_logins;
            if !failed_logins
                .check(passwords, &user, &password, client.0)
                .await
            {
                tracing::info!(user = %user, "authentication failed");
                let refusal = "Authentication failed: Invalid credentials";
                let lakehouse = app.queries.lakehouse();
                audit_authentication(
                    lakehouse,
                    Some(&user),
                    client.0,
                    headers,
                    "password",
                    Some(refusal),
                );
                return Err(unauthorized(refusal));
            }
            acting_as(app, (headers, client), user, named)
        }
        Some(_) if !app.security.allow_insecure_over_http => Err(refuse(
            StatusCode::FORBIDDEN,
            "Authentication over HTTP is not enabled",
        )),
        _ => match credentials {
            Some((_, Some(_))) => Err(unauthorized(
                "Password not allowed for insecure authentication",
            )),
            Some((user, None)) => Ok(named.unwrap_or(user)),
            None => named.ok_or_else(|| {
                unauthorized(&format!(
                    "Basic authentication or X-{}-User must be sent",
                    protocol.0
                ))
            }),
        },
    }
}

/// The user a request authenticated as `user` acts as: `user`, or the user it names
/// (`X-Trino-User`) when the access policy's impersonation rules let `user` act as that
/// user (Trino's `impersonation` section; without a policy, or with SQL grants, no user
/// acts as another).
// The answer `authenticate` gives, which is a whole response when refused.
#[allow(clippy::result_large_err)]
fn acting_as(
    app: &App,
    (headers, client): (&HeaderMap, ClientAddress),
    user: String,
    named: Option<String>,
) -> Result<String, Response> {
    let Some(named) = named.filter(|named| *named != user) else {
        return Ok(user);
    };
    let lakehouse = app.queries.lakehouse();
    let allowed = match lakehouse.access_as(&user, &aichemy_access::RoleSelection::All) {
        Ok(Some(access)) => access
            .rules
            .check_can_impersonate_user(&access.identity, &named)
            .map_err(|denied| denied.to_string()),
        Ok(None) => Err(format!(
            "Access Denied: User {user} cannot impersonate user {named}"
        )),
        Err(e) => Err(e.message),
    };
    let action = format!("impersonate {named}");
    let refusal = allowed.as_ref().err().map(String::as_str);
    audit_authentication(lakehouse, Some(&user), client.0, headers, &action, refusal);
    match allowed {
        Ok(()) => Ok(named),
        Err(message) => Err(refuse(StatusCode::FORBIDDEN, &message)),
    }
}

/// The user and password of a Basic `Authorization` header (`Ok(None)` without one).
#[allow(clippy::type_complexity)]
fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, Option<String>)>, &'static str> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| "Malformed credentials")?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Err("Malformed credentials");
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err("Unsupported authentication scheme");
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or("Malformed credentials")?;
    let (user, password) = match decoded.split_once(':') {
        Some((user, password)) => (user, Some(password.to_string()).filter(|p| !p.is_empty())),
        None => (decoded.as_str(), None),
    };
    if user.is_empty() {
        return Err("Malformed credentials: user is empty");
    }
    Ok(Some((user.to_string(), password)))
}

/// 401 with Trino's challenge; the message is what clients show.
fn unauthorized(message: &str) -> Response {
    let mut response = refuse(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Trino\""),
    );
    response
}

async fn submit(
    State(app): State<App>,
    client: ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let protocol = Protocol::detect(&headers);
    if headers.keys().any(|k| k.as_str().starts_with("x-presto-"))
        && headers.keys().any(|k| k.as_str().starts_with("x-trino-"))
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Both X-Trino and X-Presto headers are present",
        );
    }
    let address = client.0;
    let user = match authenticate(&app, &headers, protocol, client).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    // A statement's sign-in is audited once, with the statement (the pages it is fetched
    // in carry the same credentials again); refused ones each time, above.
    if app.security.passwords.is_some() || app.security.jwt.is_some() {
        let method = match jwt::bearer(&headers) {
            Some(_) => "jwt",
            None => "password",
        };
        let lakehouse = app.queries.lakehouse();
        audit_authentication(lakehouse, Some(&user), address, &headers, method, None);
    }
    let Ok(sql) = String::from_utf8(body.to_vec()) else {
        return refuse(StatusCode::BAD_REQUEST, "Query text is not UTF-8");
    };
    if sql.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, "SQL statement is empty");
    }
    let session = match client_session(user, &headers, protocol) {
        Ok(mut session) => {
            session.address = address.map(|a| a.to_string());
            session
        }
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
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
    let mut uris = serde_json::Map::new();
    uris.insert(
        "infoUri".into(),
        Value::from(format!("{base}/ui/query.html?{}", query.id)),
    );
    if !page.last {
        uris.insert(
            "nextUri".into(),
            Value::from(format!(
                "{base}/v1/statement/executing/{}/{}/{}",
                query.id,
                query.slug,
                token + 1
            )),
        );
    }
    let extra = page
        .headers
        .iter()
        .map(|(name, value)| (protocol.header(name), value.clone()))
        .collect();
    // The page as kept, with its URIs beside it: its rows are written out, not copied.
    let body = PageBody {
        page: &page.body,
        uris: &uris,
    };
    json_response(StatusCode::OK, body, extra)
}

/// A page's JSON with the fields that depend on the request.
#[derive(serde::Serialize)]
struct PageBody<'a> {
    #[serde(flatten)]
    page: &'a Value,
    #[serde(flatten)]
    uris: &'a serde_json::Map<String, Value>,
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

/// A query of this server the signed-in user may see (her own), or kill (`kill`: hers, or
/// one whose owner's queries she may kill, as `system.runtime.kill_query` decides).
async fn owned_query(
    app: &App,
    headers: &HeaderMap,
    client: ClientAddress,
    id: &str,
    kill: bool,
) -> Result<Arc<query::Query>, Response> {
    let user = authenticate(app, headers, Protocol::detect(headers), client).await?;
    let lakehouse = app.queries.lakehouse();
    match app.queries.get(id) {
        Some(query) if query.session.user == user => Ok(query),
        Some(query) if kill && lakehouse.may_kill_query_of(&user, &query.session.user) => Ok(query),
        Some(_) if kill => Err(refuse(
            StatusCode::FORBIDDEN,
            "Access Denied: Cannot kill query",
        )),
        Some(_) => Err(refuse(
            StatusCode::FORBIDDEN,
            "Access Denied: Cannot view query",
        )),
        None => Err(refuse(StatusCode::NOT_FOUND, "Query not found")),
    }
}

async fn query_info(
    State(app): State<App>,
    Path(id): Path<String>,
    client: ClientAddress,
    headers: HeaderMap,
) -> Response {
    let query = match owned_query(&app, &headers, client, &id, false).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    let mut body = json!({
        "queryId": query.id,
        "state": query.state().as_str(),
        "query": query.sql,
        "session": {
            "user": query.session.user,
            "source": query.session.source,
            "clientTags": query.session.client_tags,
            "clientInfo": query.session.client_info,
            "timeZone": query.session.time_zone,
            "catalog": query.session.catalog,
            "schema": query.session.schema,
            "systemProperties": query.session.properties,
        },
        "queryStats": {"elapsedTime": format!("{}ms", query.elapsed().as_millis())},
    });
    if let Some(error) = query.error() {
        body["failureInfo"] = query::error_json(&error)["failureInfo"].clone();
        body["errorCode"] = json!({"code": error.code.code(), "name": error.code.name(),
            "type": error.code.error_type().as_str()});
    }
    json_response(StatusCode::OK, body, Vec::new())
}

async fn cancel_query(
    State(app): State<App>,
    Path(id): Path<String>,
    client: ClientAddress,
    headers: HeaderMap,
) -> Response {
    match owned_query(&app, &headers, client, &id, true).await {
        Ok(query) => {
            query.cancel("Query was canceled");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

async fn info(State(app): State<App>) -> Response {
    json_response(
        StatusCode::OK,
        json!({
            "nodeVersion": {"version": VERSION},
            "environment": "aichemy",
            "coordinator": true,
            "starting": false,
            "uptime": format!("{:.2}s", app.queries.uptime().as_secs_f64()),
        }),
        Vec::new(),
    )
}
