//! Errors answering one REST request: [`ApiError`] becomes Kafka Connect's
//! `{"error_code","message"}` response. Starting and running the worker fails with
//! [`augur_core::Error`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What kind of [`ApiError`]; [`ApiErrorKind::status`] is the one place that maps a kind to
/// an HTTP status, as Kafka Connect's `ConnectExceptionMapper` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// A bad request: invalid config, unknown connector class, malformed body (400).
    BadRequest,
    /// No such connector, task or route (404).
    NotFound,
    /// The route exists but not for this method (405).
    MethodNotAllowed,
    /// The connector already exists (409).
    Conflict,
    /// The worker is shutting down (503).
    Unavailable,
    /// Anything else: a state topic write failed, a task panicked (500).
    Internal,
}

impl ApiErrorKind {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ApiErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ApiErrorKind::NotFound => StatusCode::NOT_FOUND,
            ApiErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiErrorKind::Conflict => StatusCode::CONFLICT,
            ApiErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answering one request: `{"error_code": <status>, "message": "<text>"}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The kind (decides the status).
    kind: ApiErrorKind,
    /// The message, in Kafka Connect's words where it has them. Never holds a secret.
    message: String,
}

impl ApiError {
    /// An error of `kind` with a message.
    pub fn new(kind: ApiErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    /// `400` with a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ApiErrorKind::BadRequest, message)
    }

    /// `404 Connector <name> not found`.
    pub fn connector_not_found(name: &str) -> ApiError {
        ApiError::new(
            ApiErrorKind::NotFound,
            format!("Connector {name} not found"),
        )
    }

    /// `409 Connector <name> already exists`.
    pub fn connector_exists(name: &str) -> ApiError {
        ApiError::new(
            ApiErrorKind::Conflict,
            format!("Connector {name} already exists"),
        )
    }

    /// `500` with a message.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ApiErrorKind::Internal, message)
    }

    /// The kind.
    pub fn kind(&self) -> ApiErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error_code": self.kind.status().as_u16(),
            "message": self.message,
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_use_kafka_connects_shape() {
        let e = ApiError::connector_not_found("pg");
        assert_eq!(e.kind().status(), StatusCode::NOT_FOUND);
        assert_eq!(
            e.body(),
            serde_json::json!({"error_code": 404, "message": "Connector pg not found"})
        );
        assert_eq!(
            ApiError::connector_exists("pg").body()["error_code"],
            serde_json::json!(409)
        );
    }
}
