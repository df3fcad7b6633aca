//! The web console (issue 35): `/ui/` serves a page of three files built into the binary
//! (nothing from a CDN, no outside request). The page signs in at `/ui/api/login` and
//! then runs every statement through the Trino protocol (`/v1/statement`) as any other
//! client does, so it sees what its user could see through SQL and is refused with the
//! same `Access Denied`.
//!
//! ```text
//! GET  /ui/                 the page (index.html, app.js, app.css)
//! GET  /ui/api/session      who is signed in, and the CSRF token        (401 when no one)
//! POST /ui/api/login        {"user", "password"} → the session cookie   (401, 403)
//! POST /ui/api/logout       the session ends
//! GET  /ui/api/metrics      the main metrics over the last hour         (403 without rights)
//! POST /v1/statement …      SQL, with the cookie and the CSRF header
//! ```
//!
//! Sign-in takes the protocol's users: a password checked on HTTPS where the server has
//! passwords (refused on plain HTTP, as Trino's form refuses it), a user name alone where
//! the server takes one. The session is a signed cookie (user, expiry and an HMAC under the
//! metastore's shared key, so every node accepts it), `HttpOnly`, `SameSite=Strict`,
//! `Secure` on HTTPS, and expires after `server.console_session_seconds`. A request signed
//! in by the cookie must also carry `X-AIchemy-CSRF`, a value derived from the cookie
//! that only the console's own page learns (from `/ui/api/session`): another site can
//! neither read it nor send a custom header without a CORS preflight this server never
//! grants, and requests a browser marks cross-site are refused outright. Every answer
//! under `/ui` carries a strict content security policy.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::iceberg_rest::Tokens;
use crate::{App, ClientAddress};

/// The session cookie's name.
const COOKIE: &str = "aichemy_console";

/// The header a cookie-signed request must carry.
pub(crate) const CSRF_HEADER: &str = "x-aichemy-csrf";

/// What the console's page may load and do: its own script, style and API, nothing
/// inline, no frame around it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The longest user name the sign-in form takes.
const MAX_USER_LENGTH: usize = 256;

/// The console's files: path, media type, text.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("ui/app.css"),
    ),
];

/// Sessions of the console: issued, checked and ended.
pub struct Console {
    tokens: Tokens,
    lifetime: Duration,
    /// Cookies signed out before their expiry, with that expiry (this node's).
    ended: Mutex<HashMap<String, u64>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// Sessions signed with a key derived from `key` (the metastore's shared secret), so
    /// that a console cookie is never a token of the Iceberg REST catalog or the reverse.
    pub fn new(key: &[u8], lifetime: Duration) -> Self {
        let mut derived = key.to_vec();
        derived.extend_from_slice(b"/console-session");
        Self {
            tokens: Tokens::new(&derived),
            lifetime,
            ended: Mutex::new(HashMap::new()),
        }
    }

    /// A cookie for `user` signed in over `scheme`: a cookie is sent to every port of its
    /// host, so one issued where plain HTTP takes a user name alone must not sign anyone in
    /// on HTTPS, where passwords are checked.
    fn issue(&self, scheme: &str, user: &str) -> (String, u64) {
        let expiry = unix_now() + self.lifetime.as_secs().max(1);
        let subject = format!("{scheme} {user}");
        (self.tokens.issue_until(&subject, expiry), expiry)
    }

    fn csrf(&self, cookie: &str) -> String {
        self.tokens.tag(&format!("csrf.{cookie}"))
    }

    /// The user of a genuine, unexpired cookie issued over `scheme` and not signed out,
    /// and its expiry.
    fn session(&self, scheme: &str, cookie: &str) -> Option<(String, u64)> {
        if self
            .ended
            .lock()
            .expect("not poisoned")
            .contains_key(cookie)
        {
            return None;
        }
        let (subject, expiry) = self.tokens.user_and_expiry(cookie)?;
        let user = subject.strip_prefix(scheme)?.strip_prefix(' ')?;
        Some((user.to_string(), expiry))
    }

    fn end(&self, cookie: &str, expiry: u64) {
        let now = unix_now();
        let mut ended = self.ended.lock().expect("not poisoned");
        ended.retain(|_, until| *until > now);
        ended.insert(cookie.to_string(), expiry);
    }
}

/// The routes of `/ui`.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route(
            "/ui",
            get(|| async { axum::response::Redirect::permanent("/ui/") }),
        )
        .route("/ui/", get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route(
            "/ui/{file}",
            get(|axum::extract::Path(file): axum::extract::Path<String>, headers: HeaderMap| async move {
                asset(&file, &headers)
            }),
        )
        .route("/ui/api/session", get(session))
        .route("/ui/api/login", post(login))
        .route("/ui/api/logout", post(logout))
        .route("/ui/api/metrics", get(metrics))
        .layer(axum::middleware::from_fn(secured))
}

/// Headers every answer under `/ui` carries.
async fn secured(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/ui/api/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One of the console's files, gzipped for a browser that takes it; `304` when the
/// browser's copy is current.
fn asset(file: &str, headers: &HeaderMap) -> Response {
    static PACKED: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    let Some(index) = ASSETS.iter().position(|(name, _, _)| *name == file) else {
        return crate::refuse(StatusCode::NOT_FOUND, "Not found");
    };
    let packed = PACKED.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, _, text)| {
                let tag = format!(
                    "\"{}\"",
                    hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes())[..12])
                );
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                gz.write_all(text.as_bytes()).expect("writes to memory");
                (tag, gz.finish().expect("writes to memory"))
            })
            .collect()
    });
    let (_, media, text) = ASSETS[index];
    let (tag, gzipped) = &packed[index];
    let cached = [
        (header::ETAG, tag.clone()),
        (header::CACHE_CONTROL, "no-cache".to_string()),
        (header::VARY, "Accept-Encoding".to_string()),
    ];
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
    {
        return (StatusCode::NOT_MODIFIED, cached).into_response();
    }
    let takes_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = if takes_gzip {
        let mut response = (cached, gzipped.clone()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        (cached, text).into_response()
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

/// A JSON answer under `/ui/api`.
fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn problem(status: StatusCode, message: &str) -> Response {
    answer(status, json!({ "message": message }))
}

/// The session cookie a request carries, if any.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Whether the browser says the request comes from another site: its `Sec-Fetch-Site`,
/// or an `Origin` other than this server.
fn cross_site(app: &App, headers: &HeaderMap) -> bool {
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("same-origin");
    if !matches!(site, "same-origin" | "none") {
        return true;
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin != crate::base_url(app, headers),
        None => false,
    }
}

/// The user a cookie-signed request acts as: `None` without the cookie (other
/// credentials decide), a refusal for a cross-site request, a missing or wrong CSRF
/// token, or an expired session.
pub(crate) async fn cookie_user(
    app: &App,
    headers: &HeaderMap,
) -> Option<Result<String, Response>> {
    let cookie = cookie(headers)?;
    Some(checked_user(app, headers, cookie).await)
}

// The refusal is a whole response, as `authenticate`'s.
#[allow(clippy::result_large_err)]
async fn checked_user(app: &App, headers: &HeaderMap, cookie: &str) -> Result<String, Response> {
    if cross_site(app, headers) {
        return Err(crate::refuse(
            StatusCode::FORBIDDEN,
            "Cross-site request refused",
        ));
    }
    let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !csrf.is_some_and(|token| {
        app.console
            .tokens
            .check_tag(&format!("csrf.{cookie}"), token)
    }) {
        return Err(crate::refuse(
            StatusCode::FORBIDDEN,
            "Missing or invalid X-AIchemy-CSRF header",
        ));
    }
    match signed_in(app, cookie).await {
        Some((user, _)) => Ok(user),
        None => Err(crate::unauthorized("Session expired: sign in again")),
    }
}

/// The user and expiry of a good session whose user still exists.
async fn signed_in(app: &App, cookie: &str) -> Option<(String, u64)> {
    let (user, expiry) = app.console.session(app.scheme, cookie)?;
    if let Some(passwords) = &app.security.passwords {
        if app.scheme == "https" && !passwords.has(&user).await {
            return None;
        }
    }
    Some((user, expiry))
}

fn session_body(app: &App, user: &str, cookie: &str, expiry: u64) -> serde_json::Value {
    json!({
        "user": user,
        "csrf": app.console.csrf(cookie),
        "expires": expiry * 1000,
        "version": crate::VERSION,
    })
}

/// Whether sign-in asks for a password here.
fn asks_password(app: &App) -> bool {
    app.security.passwords.is_some()
        && (app.scheme == "https" || !app.security.allow_insecure_over_http)
}

async fn session(State(app): State<App>, headers: HeaderMap) -> Response {
    let signed = match cookie(&headers) {
        Some(cookie) => signed_in(&app, cookie)
            .await
            .map(|(user, expiry)| session_body(&app, &user, cookie, expiry)),
        None => None,
    };
    match signed {
        Some(body) => answer(StatusCode::OK, body),
        None => answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Not signed in", "password": asks_password(&app)}),
        ),
    }
}

#[derive(serde::Deserialize)]
struct Login {
    user: String,
    password: Option<String>,
}

async fn login(
    State(app): State<App>,
    client: ClientAddress,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if cross_site(&app, &headers) {
        return problem(StatusCode::FORBIDDEN, "Cross-site request refused");
    }
    let Ok(Login { user, password }) = serde_json::from_slice::<Login>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "The body must be JSON: {\"user\": …, \"password\": …}",
        );
    };
    let password = password.filter(|p| !p.is_empty());
    if user.is_empty() || user.len() > MAX_USER_LENGTH || user.chars().any(|c| c.is_control()) {
        return problem(StatusCode::BAD_REQUEST, "Invalid user name");
    }
    let lakehouse = app.queries.lakehouse();
    match &app.security.passwords {
        Some(passwords) if app.scheme == "https" => {
            let Some(password) = password else {
                return problem(StatusCode::UNAUTHORIZED, "A password is required");
            };
            let failed_logins = &app.security.failed_logins;
            let good = failed_logins
                .check(passwords, &user, &password, client.0)
                .await;
            let refusal = (!good).then_some("Authentication failed: Invalid credentials");
            let who = Some(user.as_str());
            crate::audit_authentication(lakehouse, who, client.0, &headers, "password", refusal);
            if let Some(refusal) = refusal {
                tracing::info!(user = %user, "console sign-in failed");
                return problem(StatusCode::UNAUTHORIZED, refusal);
            }
        }
        Some(_) if !app.security.allow_insecure_over_http => {
            return problem(
                StatusCode::FORBIDDEN,
                "Authentication over HTTP is not enabled: sign in over HTTPS",
            )
        }
        None if app.security.jwt.is_some() => {
            return problem(
                StatusCode::FORBIDDEN,
                "This server signs users in with JWTs only; the console signs in with passwords",
            )
        }
        _ => {
            if password.is_some() {
                return problem(
                    StatusCode::UNAUTHORIZED,
                    "Password not allowed for insecure authentication",
                );
            }
        }
    }
    let (cookie, expiry) = app.console.issue(app.scheme, &user);
    let secure = if app.scheme == "https" {
        "; Secure"
    } else {
        ""
    };
    let set_cookie = format!(
        "{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        app.console.lifetime.as_secs().max(1)
    );
    let mut response = answer(StatusCode::OK, session_body(&app, &user, &cookie, expiry));
    if let Ok(value) = HeaderValue::from_str(&set_cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(cookie) = cookie(&headers) {
        if let Err(refusal) = checked_user(&app, &headers, cookie).await {
            if refusal.status() != StatusCode::UNAUTHORIZED {
                return refusal;
            }
        }
        if let Some((_, expiry)) = app.console.session(app.scheme, cookie) {
            app.console.end(cookie, expiry);
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let secure = if app.scheme == "https" {
        "; Secure"
    } else {
        ""
    };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The main metrics over the last hour, for whoever may read `/metrics`.
async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(cookie) = cookie(&headers) else {
        return problem(StatusCode::UNAUTHORIZED, "Not signed in");
    };
    let user = match checked_user(&app, &headers, cookie).await {
        Ok(user) => user,
        Err(refusal) => return refusal,
    };
    let lakehouse = app.queries.lakehouse();
    if !lakehouse.reads_system_information(&user) {
        return problem(
            StatusCode::FORBIDDEN,
            "Access Denied: Cannot read system information",
        );
    }
    answer(
        StatusCode::OK,
        crate::metrics::history_json(lakehouse, &app.queries),
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
