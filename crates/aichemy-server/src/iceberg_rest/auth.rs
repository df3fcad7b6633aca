//! Authentication of the Iceberg REST catalog, as the `iceberg_rest` module comment
//! describes it: the bearer tokens, the middleware that checks a request's credentials and
//! the OAuth2 client-credentials token endpoint.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::error::{RestError, RestResult};
use super::RestApp;
use crate::basic_credentials;

/// How long an issued bearer token is good for.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The metastore's name for the key that signs bearer tokens.
pub const TOKEN_KEY_NAME: &str = "iceberg_rest_token_key";

/// Issues and checks bearer tokens: `user.expiry.signature`, the user in base64url, the
/// expiry in Unix seconds and an HMAC-SHA256 of both under the shared key. Nothing is
/// stored, so every server holding the key accepts every server's tokens.
pub struct Tokens {
    key: Vec<u8>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens")
    }
}

impl Tokens {
    /// Tokens signed with `key` (see [`Tokens::new_key`]).
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    /// A new random key, as hexadecimal text for the metastore: 244 bits from the
    /// operating system's generator (two v4 UUIDs).
    pub fn new_key() -> String {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    }

    fn signature(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(payload.as_bytes());
        mac
    }

    fn issue(&self, user: &str) -> String {
        self.issue_until(user, unix_now() + TOKEN_LIFETIME.as_secs())
    }

    pub(crate) fn issue_until(&self, user: &str, expiry: u64) -> String {
        let payload = format!("{}.{expiry}", URL_SAFE_NO_PAD.encode(user));
        let signature = self.signature(&payload).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The user of a genuine, unexpired token.
    fn user(&self, token: &str) -> Option<String> {
        self.user_and_expiry(token).map(|(user, _)| user)
    }

    /// The user and expiry (Unix seconds) of a genuine, unexpired token.
    pub(crate) fn user_and_expiry(&self, token: &str) -> Option<(String, u64)> {
        let (payload, signature) = token.rsplit_once('.')?;
        if !self.check_tag(payload, signature) {
            return None;
        }
        let (user, expiry) = payload.split_once('.')?;
        let expiry = expiry.parse::<u64>().ok()?;
        if expiry <= unix_now() {
            return None;
        }
        let user = String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()?;
        Some((user, expiry))
    }

    /// The signature of `text` under the key, in base64url.
    pub(crate) fn tag(&self, text: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.signature(text).finalize().into_bytes())
    }

    /// Whether `tag` is the signature of `text` (compared in constant time).
    pub(crate) fn check_tag(&self, text: &str, tag: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(tag)
            .is_ok_and(|tag| self.signature(text).verify_slice(&tag).is_ok())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lets a request through when its credentials are good (see the module comment).
pub(super) async fn authenticate(
    State(app): State<RestApp>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let method = request.method().as_str().to_string();
    let action = format!("{method} /iceberg{}", request.uri().path());
    let agent = request
        .headers()
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let audit = |user: Option<String>, status: StatusCode, reason: Option<String>| {
        let decision = match status.as_u16() {
            200..=399 => "ALLOWED",
            401 | 403 => "DENIED",
            _ => "FAILED",
        };
        let method = method.clone();
        metrics::counter!("aichemy_iceberg_rest_requests_total", "method" => method, "decision" => decision)
            .increment(1);
        app.lakehouse.audit(aichemy_engine::audit::AuditEvent {
            record: aichemy_metastore::AuditRecord {
                kind: "CATALOG_API".into(),
                user,
                source_address: client.map(|a| a.to_string()),
                user_agent: agent.clone(),
                action: action.clone(),
                decision: decision.into(),
                reason,
                ..Default::default()
            },
            query: None,
        });
    };
    match user_of(&app, request.headers(), client).await {
        Ok(user) => {
            request
                .extensions_mut()
                .insert(super::access::RestUser(user.clone()));
            let response = next.run(request).await;
            let status = response.status();
            let reason = (!status.is_success()).then(|| status.to_string());
            audit(Some(user), status, reason);
            response
        }
        Err(e) => {
            audit(None, StatusCode::UNAUTHORIZED, Some(e.message.clone()));
            let mut response = e.into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

async fn user_of(
    app: &RestApp,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
) -> RestResult<String> {
    if app.security.passwords.is_none() && app.security.jwt.is_none() {
        return Ok("anonymous".to_string());
    }
    if app.scheme != "https" {
        return Err(RestError::unauthorized(
            "The Iceberg REST catalog of a server with passwords is served over HTTPS only",
        ));
    }
    if let Some(token) = crate::jwt::bearer(headers) {
        // This catalog's own tokens first, then an identity provider's JWT.
        if let (Some(user), Some(passwords)) = (app.tokens.user(token), &app.security.passwords) {
            if passwords.has(&user).await {
                return Ok(user);
            }
        }
        if let Some(jwt) = &app.security.jwt {
            return match jwt.user(token).await {
                Ok(user) => Ok(user.signed_in(&app.lakehouse)),
                Err(problem) => Err(RestError::unauthorized(&format!(
                    "Authentication failed: {problem}"
                ))),
            };
        }
        return Err(RestError::unauthorized(
            "The bearer token is invalid or expired",
        ));
    }
    let Some(passwords) = &app.security.passwords else {
        return Err(RestError::unauthorized("A bearer JWT is required"));
    };
    match basic_credentials(headers) {
        Ok(Some((user, Some(password)))) => {
            let failed_logins = &app.security.failed_logins;
            if failed_logins
                .check(passwords, &user, &password, client)
                .await
            {
                Ok(user)
            } else {
                tracing::info!(user = %user, "Iceberg REST authentication failed");
                Err(RestError::unauthorized(
                    "Authentication failed: Invalid credentials",
                ))
            }
        }
        Ok(_) => Err(RestError::unauthorized(
            "Credentials are required: a bearer token or Basic credentials",
        )),
        Err(message) => Err(RestError::unauthorized(message)),
    }
}

/// An OAuth2 error response (RFC 6749 section 5.2), as the token endpoint answers.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// The client's id and secret from HTTP Basic authentication, each form-urlencoded before
/// encoding as RFC 6749 section 2.3.1 asks (`None` without the header).
fn basic_client(headers: &HeaderMap) -> Result<Option<(String, String)>, &'static str> {
    let decode = |text: &str| -> String {
        url::form_urlencoded::parse(format!("v={text}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(basic_credentials(headers)?
        .map(|(id, secret)| (decode(&id), decode(&secret.unwrap_or_default()))))
}

/// `POST /v1/oauth/tokens`: the client-credentials grant; client id and secret are a
/// user and their password, in the form's `client_id`/`client_secret` or in HTTP Basic
/// authentication (which RFC 6749 section 2.3.1 asks every server to take).
pub(super) async fn issue_token(
    State(app): State<RestApp>,
    client: crate::ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut form: HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    match basic_client(&headers) {
        Ok(Some((id, secret))) => {
            if form.get("client_id").is_some_and(|form_id| *form_id != id) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the client is named twice, differently",
                );
            }
            form.insert("client_id".into(), id);
            form.insert("client_secret".into(), secret);
        }
        Ok(None) => {}
        Err(message) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", message),
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let Some(client_id) = form.get("client_id").filter(|id| !id.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is required",
        );
    };
    if let Some(passwords) = &app.security.passwords {
        if app.scheme != "https" {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client secrets are accepted over HTTPS only",
            );
        }
        let secret = form.get("client_secret").cloned().unwrap_or_default();
        let failed_logins = &app.security.failed_logins;
        if !failed_logins
            .check(passwords, client_id, &secret, client.0)
            .await
        {
            tracing::info!(user = %client_id, "Iceberg REST token refused");
            crate::audit_authentication(
                &app.lakehouse,
                Some(client_id),
                client.0,
                &headers,
                "POST /iceberg/v1/oauth/tokens",
                Some("Authentication failed: Invalid credentials"),
            );
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Authentication failed: Invalid credentials",
            );
        }
    }
    if app.security.passwords.is_some() {
        crate::audit_authentication(
            &app.lakehouse,
            Some(client_id),
            client.0,
            &headers,
            "POST /iceberg/v1/oauth/tokens",
            None,
        );
    }
    let token = app.tokens.issue(client_id);
    axum::Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME.as_secs(),
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_user_until_they_expire() {
        let key = Tokens::new_key();
        let tokens = Tokens::new(key.as_bytes());
        let token = tokens.issue("alice");
        assert_eq!(tokens.user(&token).as_deref(), Some("alice"));
        // Another server with the same key accepts it; one with another key does not.
        assert_eq!(
            Tokens::new(key.as_bytes()).user(&token).as_deref(),
            Some("alice")
        );
        assert_eq!(Tokens::new(b"other").user(&token), None);
        assert_eq!(tokens.user("forged"), None);
        assert_eq!(
            tokens.user(&tokens.issue_until("alice", unix_now() - 1)),
            None
        );
        // Changing the user or the expiry breaks the signature.
        let (_, rest) = token.split_once('.').unwrap();
        let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode("root"));
        assert_eq!(tokens.user(&forged), None);
        let (payload, signature) = token.rsplit_once('.').unwrap();
        let (user, _) = payload.split_once('.').unwrap();
        let later = format!("{user}.{}.{signature}", unix_now() + 1_000_000);
        assert_eq!(tokens.user(&later), None);
    }
}
