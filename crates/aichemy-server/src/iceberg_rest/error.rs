//! The Iceberg REST error model: `RestError`, answered as `{"error": {"message", "type",
//! "code"}}`, and the statuses and types the table format's and catalog's errors map to.

use aichemy_tables::iceberg::{namespace_key, CommitError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use iceberg::{ErrorKind, NamespaceIdent};
use serde_json::json;

/// An error in the REST error model.
#[derive(Debug)]
pub(super) struct RestError {
    pub(super) status: StatusCode,
    kind: &'static str,
    pub(super) message: String,
}

impl RestError {
    pub(super) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequestException", message)
    }

    pub(super) fn no_namespace(namespace: &NamespaceIdent) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchNamespaceException",
            format!("Namespace does not exist: {}", namespace_key(namespace)),
        )
    }

    pub(super) fn unauthorized(message: &str) -> Self {
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
pub(super) fn catalog_error(e: iceberg::Error) -> RestError {
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

pub(super) type RestResult<T = Response> = Result<T, RestError>;

#[cfg(test)]
mod tests {
    use super::*;

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
}
