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
//! them, as with Trino's plain HTTP, requests are taken as they come (as user
//! `anonymous`). The lakehouse's access policy decides what each user may list, load and
//! change (`access.rs`). Tokens are signed
//! with a key the servers of a lakehouse share through the metastore, so any node accepts
//! a token another issued, until it expires or its user is removed.

mod access;
mod auth;
mod error;
mod namespaces;
mod tables;

use std::collections::HashMap;
use std::sync::Arc;

use aichemy_tables::iceberg::IcebergFormat;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use auth::{authenticate, issue_token};
use error::{RestError, RestResult};
use namespaces::{
    create_namespace, drop_namespace, list_namespaces, load_namespace, namespace_exists,
    update_namespace_properties,
};
use tables::{
    commit_table, commit_transaction, create_table, drop_table, list_tables, load_table,
    rename_table, table_exists,
};

use crate::Security;

pub use auth::{Tokens, TOKEN_KEY_NAME};

/// Largest request body: a commit with many updates, never data.
const MAX_BODY_BYTES: usize = 16 << 20;

#[derive(Clone)]
struct RestApp {
    /// Whose policy decides what each request's user may do.
    lakehouse: Arc<aichemy_engine::Lakehouse>,
    format: Arc<IcebergFormat>,
    scheme: &'static str,
    security: Security,
    tokens: Arc<Tokens>,
}

/// The routes of the REST catalog, to nest under `/iceberg`.
pub fn router(
    lakehouse: Arc<aichemy_engine::Lakehouse>,
    scheme: &'static str,
    security: Security,
    tokens: Arc<Tokens>,
) -> Router {
    let app = RestApp {
        format: lakehouse.iceberg(),
        lakehouse,
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

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> RestResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| RestError::bad_request(format!("Malformed request: {e}")))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Query parameters, taken as text so that no value is refused outside the error model.
type Params = Query<HashMap<String, String>>;
