//! The Apache Iceberg REST Catalog API under `/iceberg`, over the same `iceberg` catalog
//! SQL sees: PyIceberg, Spark, Trino and DuckDB create, load and commit tables here, and
//! `SHOW TABLES FROM iceberg.s` lists them at once (and the other way round).
//!
//! Commits check every requirement against the current metadata, apply the updates, write
//! the next metadata file and move the table pointers in one metastore transaction with
//! compare-and-swap: a failed requirement or a lost race answers 409
//! `CommitFailedException`, which clients retry. Errors follow the spec's error model
//! (`{"error": {"message", "type", "code"}}`).
//!
//! Authentication uses the server's users: with passwords configured, requests need HTTPS
//! and either Basic credentials or a bearer token from the OAuth2 client-credentials
//! endpoint `POST /v1/oauth/tokens` (client id and secret are a user and password); without
//! them, as with Trino's plain HTTP, requests are taken as they come. Tokens are signed
//! with a key the servers of a lakehouse share through the metastore, so any node accepts
//! a token another issued, until it expires or its user is removed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aichemy_tables::iceberg::{namespace_key, CommitError, Committed, IcebergFormat, TableChange};
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use iceberg::spec::{Schema, SortOrder, TableMetadata, UnboundPartitionSpec};
use iceberg::{
    Catalog, ErrorKind, NamespaceIdent, TableCreation, TableIdent, TableRequirement, TableUpdate,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{basic_credentials, Security};

/// How long an issued bearer token is good for.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Largest request body: a commit with many updates, never data.
const MAX_BODY_BYTES: usize = 16 << 20;

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

    fn issue_until(&self, user: &str, expiry: u64) -> String {
        let payload = format!("{}.{expiry}", URL_SAFE_NO_PAD.encode(user));
        let signature = self.signature(&payload).finalize().into_bytes();
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The user of a genuine, unexpired token.
    fn user(&self, token: &str) -> Option<String> {
        let (payload, signature) = token.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        self.signature(payload).verify_slice(&signature).ok()?;
        let (user, expiry) = payload.split_once('.')?;
        if expiry.parse::<u64>().ok()? <= unix_now() {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Clone)]
struct RestApp {
    format: Arc<IcebergFormat>,
    scheme: &'static str,
    security: Security,
    tokens: Arc<Tokens>,
}

/// An error in the REST error model.
#[derive(Debug)]
struct RestError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl RestError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    fn no_namespace(namespace: &NamespaceIdent) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchNamespaceException",
            format!("Namespace does not exist: {}", namespace_key(namespace)),
        )
    }

    fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "NotAuthorizedException", message)
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "code": self.status.as_u16(),
        }});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<CommitError> for RestError {
    fn from(e: CommitError) -> Self {
        let message = e.to_string();
        match e {
            CommitError::NoSuchNamespace(_) => {
                Self::new(StatusCode::NOT_FOUND, "NoSuchNamespaceException", message)
            }
            CommitError::NoSuchTable(_) => {
                Self::new(StatusCode::NOT_FOUND, "NoSuchTableException", message)
            }
            CommitError::AlreadyExists(_) => {
                Self::new(StatusCode::CONFLICT, "AlreadyExistsException", message)
            }
            CommitError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, "CommitFailedException", message)
            }
            CommitError::Invalid(_) => Self::bad_request(message),
            CommitError::Failed(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServerErrorException",
                message,
            ),
        }
    }
}

/// Errors of the Iceberg catalog's own calls (namespaces, drop, rename).
fn catalog_error(e: iceberg::Error) -> RestError {
    let message = e.message().to_string();
    match e.kind() {
        ErrorKind::NamespaceNotFound => {
            RestError::new(StatusCode::NOT_FOUND, "NoSuchNamespaceException", message)
        }
        ErrorKind::TableNotFound => {
            RestError::new(StatusCode::NOT_FOUND, "NoSuchTableException", message)
        }
        ErrorKind::NamespaceAlreadyExists | ErrorKind::TableAlreadyExists => {
            RestError::new(StatusCode::CONFLICT, "AlreadyExistsException", message)
        }
        _ => RestError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerErrorException",
            message,
        ),
    }
}

type RestResult<T = Response> = Result<T, RestError>;

/// The routes of the REST catalog, to nest under `/iceberg`.
pub fn router(
    format: Arc<IcebergFormat>,
    scheme: &'static str,
    security: Security,
    tokens: Arc<Tokens>,
) -> Router {
    let app = RestApp {
        format,
        scheme,
        security,
        tokens,
    };
    let authenticated = Router::new()
        .route("/v1/config", get(config))
        .route(
            "/v1/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route(
            "/v1/namespaces/{namespace}",
            get(load_namespace)
                .head(namespace_exists)
                .delete(drop_namespace),
        )
        .route(
            "/v1/namespaces/{namespace}/properties",
            post(update_namespace_properties),
        )
        .route(
            "/v1/namespaces/{namespace}/tables",
            get(list_tables).post(create_table),
        )
        .route(
            "/v1/namespaces/{namespace}/tables/{table}",
            get(load_table)
                .head(table_exists)
                .post(commit_table)
                .delete(drop_table),
        )
        .route("/v1/tables/rename", post(rename_table))
        .route("/v1/transactions/commit", post(commit_transaction))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            authenticate,
        ));
    Router::new()
        .route("/v1/oauth/tokens", post(issue_token))
        .merge(authenticated)
        .fallback(|| async {
            RestError::new(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                "No such Iceberg REST endpoint",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Lets a request through when its credentials are good (see the module comment).
async fn authenticate(State(app): State<RestApp>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    match user_of(&app, request.headers(), client).await {
        Ok(_) => next.run(request).await,
        Err(e) => {
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
    let Some(passwords) = &app.security.passwords else {
        return Ok("anonymous".to_string());
    };
    if app.scheme != "https" {
        return Err(RestError::unauthorized(
            "The Iceberg REST catalog of a server with passwords is served over HTTPS only",
        ));
    }
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(token) = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
    {
        return match app.tokens.user(token.trim()) {
            Some(user) if passwords.has(&user).await => Ok(user),
            _ => Err(RestError::unauthorized(
                "The bearer token is invalid or expired",
            )),
        };
    }
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

/// `POST /v1/oauth/tokens`: the client-credentials grant; client id and secret are a
/// user and their password.
async fn issue_token(
    State(app): State<RestApp>,
    client: crate::ClientAddress,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
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
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Authentication failed: Invalid credentials",
            );
        }
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

/// Every endpoint this server implements, as `GET /v1/config` lists them.
const ENDPOINTS: &[&str] = &[
    "GET /v1/{prefix}/namespaces",
    "POST /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "DELETE /v1/{prefix}/namespaces/{namespace}",
    "POST /v1/{prefix}/namespaces/{namespace}/properties",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "POST /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/tables/rename",
    "POST /v1/{prefix}/transactions/commit",
];

async fn config() -> Response {
    axum::Json(json!({
        "defaults": {},
        "overrides": {},
        "endpoints": ENDPOINTS,
    }))
    .into_response()
}

/// A namespace path parameter: levels separated by the unit separator (0x1F).
fn namespace_of(text: &str) -> RestResult<NamespaceIdent> {
    let levels: Vec<String> = text.split('\u{1f}').map(str::to_string).collect();
    if levels.iter().any(String::is_empty) {
        return Err(RestError::bad_request(format!(
            "Invalid namespace: '{}'",
            text.replace('\u{1f}', ".")
        )));
    }
    NamespaceIdent::from_vec(levels).map_err(|e| RestError::bad_request(e.message()))
}

/// Fails with 404 `NoSuchNamespaceException` unless the namespace exists.
async fn require_namespace(catalog: &dyn Catalog, namespace: &NamespaceIdent) -> RestResult<()> {
    if catalog
        .namespace_exists(namespace)
        .await
        .map_err(catalog_error)?
    {
        Ok(())
    } else {
        Err(RestError::no_namespace(namespace))
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> RestResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| RestError::bad_request(format!("Malformed request: {e}")))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Query parameters, taken as text so that no value is refused outside the error model.
type Params = Query<HashMap<String, String>>;

async fn list_namespaces(State(app): State<RestApp>, Query(params): Params) -> RestResult {
    let parent = params.get("parent").map(|p| namespace_of(p)).transpose()?;
    let catalog = app.format.catalog();
    if let Some(parent) = &parent {
        require_namespace(catalog.as_ref(), parent).await?;
    }
    let mut namespaces: Vec<Vec<String>> = catalog
        .list_namespaces(parent.as_ref())
        .await
        .map_err(catalog_error)?
        .into_iter()
        .map(|ns| ns.inner())
        .collect();
    namespaces.sort();
    Ok(axum::Json(json!({ "namespaces": namespaces })).into_response())
}

#[derive(Deserialize)]
struct CreateNamespace {
    namespace: Vec<String>,
    #[serde(default)]
    properties: HashMap<String, String>,
}

async fn create_namespace(State(app): State<RestApp>, body: Bytes) -> RestResult {
    let request: CreateNamespace = parse(&body)?;
    if request.namespace.is_empty() || request.namespace.iter().any(String::is_empty) {
        return Err(RestError::bad_request("Invalid namespace: empty level"));
    }
    let namespace = NamespaceIdent::from_vec(request.namespace)
        .map_err(|e| RestError::bad_request(e.message()))?;
    let catalog = app.format.catalog();
    if catalog
        .namespace_exists(&namespace)
        .await
        .map_err(catalog_error)?
    {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            "AlreadyExistsException",
            format!("Namespace already exists: {}", namespace_key(&namespace)),
        ));
    }
    let mut properties = request.properties;
    // Inside the warehouse or an allowed place, over no table, schema or reserved folder.
    let location = app
        .format
        .namespace_location(&namespace, properties.get("location").map(String::as_str))
        .await
        .map_err(RestError::bad_request)?;
    properties.insert("location".to_string(), location);
    let created = catalog
        .create_namespace(&namespace, properties)
        .await
        .map_err(catalog_error)?;
    Ok(axum::Json(json!({
        "namespace": created.name().clone().inner(),
        "properties": created.properties(),
    }))
    .into_response())
}

async fn load_namespace(State(app): State<RestApp>, Path(namespace): Path<String>) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), &namespace).await?;
    let loaded = catalog
        .get_namespace(&namespace)
        .await
        .map_err(catalog_error)?;
    Ok(axum::Json(json!({
        "namespace": namespace.inner(),
        "properties": loaded.properties(),
    }))
    .into_response())
}

async fn namespace_exists(State(app): State<RestApp>, Path(namespace): Path<String>) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let exists = app
        .format
        .catalog()
        .namespace_exists(&namespace)
        .await
        .map_err(catalog_error)?;
    Ok(if exists {
        no_content()
    } else {
        StatusCode::NOT_FOUND.into_response()
    })
}

async fn drop_namespace(State(app): State<RestApp>, Path(namespace): Path<String>) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), &namespace).await?;
    let tables = catalog
        .list_tables(&namespace)
        .await
        .map_err(catalog_error)?;
    let children = catalog
        .list_namespaces(Some(&namespace))
        .await
        .map_err(catalog_error)?;
    if !tables.is_empty() || !children.is_empty() {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            "NamespaceNotEmptyException",
            format!("Namespace is not empty: {}", namespace_key(&namespace)),
        ));
    }
    catalog
        .drop_namespace(&namespace)
        .await
        .map_err(catalog_error)?;
    Ok(no_content())
}

#[derive(Deserialize)]
struct UpdateProperties {
    #[serde(default)]
    removals: Vec<String>,
    #[serde(default)]
    updates: HashMap<String, String>,
}

async fn update_namespace_properties(
    State(app): State<RestApp>,
    Path(namespace): Path<String>,
    body: Bytes,
) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let request: UpdateProperties = parse(&body)?;
    if let Some(key) = request
        .removals
        .iter()
        .find(|k| request.updates.contains_key(*k))
    {
        return Err(RestError::bad_request(format!(
            "Property '{key}' is both updated and removed"
        )));
    }
    if request.removals.iter().any(|k| k == "location") || request.updates.contains_key("location")
    {
        return Err(RestError::bad_request(
            "The location of a namespace cannot be changed",
        ));
    }
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), &namespace).await?;
    let mut properties = catalog
        .get_namespace(&namespace)
        .await
        .map_err(catalog_error)?
        .properties()
        .clone();
    let mut removed = Vec::new();
    let mut missing = Vec::new();
    for key in &request.removals {
        if properties.remove(key).is_some() {
            removed.push(key.clone());
        } else {
            missing.push(key.clone());
        }
    }
    let updated: Vec<&String> = request.updates.keys().collect();
    properties.extend(request.updates.clone());
    catalog
        .update_namespace(&namespace, properties)
        .await
        .map_err(catalog_error)?;
    Ok(
        axum::Json(json!({"updated": updated, "removed": removed, "missing": missing}))
            .into_response(),
    )
}

async fn list_tables(State(app): State<RestApp>, Path(namespace): Path<String>) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), &namespace).await?;
    let mut tables = catalog
        .list_tables(&namespace)
        .await
        .map_err(catalog_error)?;
    tables.sort_by(|a, b| a.name().cmp(b.name()));
    let identifiers: Vec<Value> = tables
        .iter()
        .map(|t| json!({"namespace": t.namespace().clone().inner(), "name": t.name()}))
        .collect();
    Ok(axum::Json(json!({ "identifiers": identifiers })).into_response())
}

/// What a client needs to reach the files of a table on S3: the endpoint, region and
/// addressing style, and the keys when it asked for vended credentials.
fn file_access(app: &RestApp, headers: &HeaderMap, metadata: &TableMetadata) -> Value {
    let mut config = serde_json::Map::new();
    if !metadata.location().starts_with("s3") {
        return Value::Object(config);
    }
    let vended = headers
        .get("x-iceberg-access-delegation")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|m| m.trim() == "vended-credentials"));
    let options = app.format.storage_options();
    let mut put = |key: &str, option: &str| {
        if let Some(value) = options.get(option) {
            config.insert(key.to_string(), json!(value));
        }
    };
    put("s3.endpoint", "aws_endpoint");
    put("s3.region", "aws_region");
    put("client.region", "aws_region");
    if vended {
        put("s3.access-key-id", "aws_access_key_id");
        put("s3.secret-access-key", "aws_secret_access_key");
    }
    if options
        .get("aws_virtual_hosted_style_request")
        .map(String::as_str)
        == Some("false")
    {
        config.insert("s3.path-style-access".into(), json!("true"));
    }
    Value::Object(config)
}

/// A LoadTableResult; without a metadata location for a staged table.
fn load_result(
    app: &RestApp,
    headers: &HeaderMap,
    location: Option<&str>,
    metadata: &TableMetadata,
) -> RestResult {
    let config = file_access(app, headers, metadata);
    let metadata = serde_json::to_value(metadata)
        .map_err(|e| RestError::bad_request(format!("cannot encode the metadata: {e}")))?;
    let mut result = json!({"metadata": metadata, "config": config});
    if let Some(location) = location {
        result["metadata-location"] = json!(location);
    }
    Ok(axum::Json(result).into_response())
}

fn committed_result(app: &RestApp, headers: &HeaderMap, committed: &Committed) -> RestResult {
    load_result(
        app,
        headers,
        Some(&committed.metadata_location),
        &committed.metadata,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CreateTable {
    name: String,
    schema: Schema,
    location: Option<String>,
    partition_spec: Option<UnboundPartitionSpec>,
    write_order: Option<SortOrder>,
    #[serde(default)]
    stage_create: bool,
    #[serde(default)]
    properties: HashMap<String, String>,
}

async fn create_table(
    State(app): State<RestApp>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let namespace = namespace_of(&namespace)?;
    let request: CreateTable = parse(&body)?;
    if request.name.is_empty() {
        return Err(RestError::bad_request("Invalid table name: empty"));
    }
    let ident = TableIdent::new(namespace.clone(), request.name.clone());
    let creation = TableCreation::builder()
        .name(request.name)
        .schema(request.schema)
        .location_opt(request.location)
        .partition_spec_opt(request.partition_spec)
        .sort_order_opt(request.write_order)
        .properties(request.properties)
        .build();
    if request.stage_create {
        if app.format.current(&ident).await.is_ok() {
            return Err(CommitError::AlreadyExists(format!(
                "Table already exists: {}.{}",
                namespace_key(&namespace),
                ident.name()
            ))
            .into());
        }
        let metadata = app.format.new_metadata(&namespace, creation).await?;
        return load_result(&app, &headers, None, &metadata);
    }
    let committed = app.format.create(&namespace, creation).await?;
    committed_result(&app, &headers, &committed)
}

fn table_ident(namespace: &str, table: String) -> RestResult<TableIdent> {
    Ok(TableIdent::new(namespace_of(namespace)?, table))
}

async fn load_table(
    State(app): State<RestApp>,
    Path((namespace, table)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult {
    let ident = table_ident(&namespace, table)?;
    let committed = app.format.current(&ident).await?;
    committed_result(&app, &headers, &committed)
}

async fn table_exists(
    State(app): State<RestApp>,
    Path((namespace, table)): Path<(String, String)>,
) -> RestResult {
    let ident = table_ident(&namespace, table)?;
    match app.format.current(&ident).await {
        Ok(_) => Ok(no_content()),
        Err(CommitError::NoSuchTable(_) | CommitError::NoSuchNamespace(_)) => {
            Ok(StatusCode::NOT_FOUND.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct Identifier {
    namespace: Vec<String>,
    name: String,
}

impl Identifier {
    fn ident(self) -> RestResult<TableIdent> {
        let namespace = NamespaceIdent::from_vec(self.namespace)
            .map_err(|e| RestError::bad_request(e.message()))?;
        Ok(TableIdent::new(namespace, self.name))
    }
}

#[derive(Deserialize)]
struct CommitTable {
    identifier: Option<Identifier>,
    requirements: Vec<TableRequirement>,
    updates: Vec<TableUpdate>,
}

async fn commit_table(
    State(app): State<RestApp>,
    Path((namespace, table)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let ident = table_ident(&namespace, table)?;
    let request: CommitTable = parse(&body)?;
    if let Some(named) = request.identifier {
        if named.ident()? != ident {
            return Err(RestError::bad_request(
                "The identifier in the body names another table than the path",
            ));
        }
    }
    let mut committed = app
        .format
        .commit_changes(vec![TableChange {
            ident,
            requirements: request.requirements,
            updates: request.updates,
        }])
        .await?;
    committed_result(&app, &headers, &committed.remove(0))
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CommitTransaction {
    table_changes: Vec<CommitTable>,
}

async fn commit_transaction(State(app): State<RestApp>, body: Bytes) -> RestResult {
    let request: CommitTransaction = parse(&body)?;
    let mut changes = Vec::with_capacity(request.table_changes.len());
    for change in request.table_changes {
        let Some(identifier) = change.identifier else {
            return Err(RestError::bad_request(
                "Every table change of a transaction needs its identifier",
            ));
        };
        changes.push(TableChange {
            ident: identifier.ident()?,
            requirements: change.requirements,
            updates: change.updates,
        });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = changes.iter().find(|c| !seen.insert(c.ident.clone())) {
        return Err(RestError::bad_request(format!(
            "Table {} appears twice in one transaction",
            twice.ident
        )));
    }
    app.format.commit_changes(changes).await?;
    Ok(no_content())
}

async fn drop_table(
    State(app): State<RestApp>,
    Path((namespace, table)): Path<(String, String)>,
    Query(params): Params,
) -> RestResult {
    let purge = match params.get("purgeRequested").map(|v| v.to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            return Err(RestError::bad_request(format!(
                "purgeRequested must be true or false, not '{v}'"
            )))
        }
    };
    let ident = table_ident(&namespace, table)?;
    let current = app.format.current(&ident).await?;
    app.format
        .catalog()
        .drop_table(&ident)
        .await
        .map_err(catalog_error)?;
    if purge {
        // Only the files the table owns: never another table's, a schema's or the
        // warehouse's own, never outside the allowed places or through a symbolic link.
        if let Err(e) = app.format.purge(current.metadata.location()).await {
            tracing::warn!(table = %ident, "purging the files of a dropped table: {e}");
        }
    }
    Ok(no_content())
}

#[derive(Deserialize)]
struct RenameTable {
    source: Identifier,
    destination: Identifier,
}

async fn rename_table(State(app): State<RestApp>, body: Bytes) -> RestResult {
    let request: RenameTable = parse(&body)?;
    let source = request.source.ident()?;
    let destination = request.destination.ident()?;
    app.format.current(&source).await?;
    let catalog = app.format.catalog();
    require_namespace(catalog.as_ref(), destination.namespace()).await?;
    if app.format.current(&destination).await.is_ok() {
        return Err(RestError::new(
            StatusCode::CONFLICT,
            "AlreadyExistsException",
            format!("Table already exists: {destination}"),
        ));
    }
    catalog
        .rename_table(&source, &destination)
        .await
        .map_err(catalog_error)?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_split_on_the_unit_separator() {
        assert_eq!(
            namespace_of("a\u{1f}b").unwrap().inner(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert_eq!(namespace_of("a\u{1f}").unwrap_err().status, 400);
    }

    #[test]
    fn errors_follow_the_rest_error_model() {
        let e: RestError = CommitError::Conflict("Requirement failed".into()).into();
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::CONFLICT, "CommitFailedException")
        );
        let e: RestError = CommitError::NoSuchTable("s.t".into()).into();
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::NOT_FOUND, "NoSuchTableException")
        );
        assert_eq!(e.message, "Table does not exist: s.t");
    }

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
