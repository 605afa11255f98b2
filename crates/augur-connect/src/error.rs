//! Errors: [`ConnectError`] for starting and running the worker (a port in use, a broker that
//! does not answer, a state topic that cannot be read or written), and [`ApiError`] for one
//! REST request, which becomes Kafka Connect's `{"error_code","message"}` response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What kind of [`ConnectError`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// A worker setting is invalid.
    Config,
    /// The REST listener could not be bound.
    Bind,
    /// The Kafka cluster could not be reached.
    Connection,
    /// A state topic (configs, offsets, status) could not be created, read or written.
    State,
    /// The HTTP server failed while serving.
    Io,
    /// A bug: a task panicked or an invariant broke.
    Internal,
}

impl ConnectErrorKind {
    /// The matching kind of augur's shared error type (which decides retries).
    pub fn core_kind(self) -> augur_core::ErrorKind {
        match self {
            ConnectErrorKind::Config => augur_core::ErrorKind::Config,
            ConnectErrorKind::Bind | ConnectErrorKind::Io => augur_core::ErrorKind::Io,
            ConnectErrorKind::Connection => augur_core::ErrorKind::Connection,
            ConnectErrorKind::State => augur_core::ErrorKind::Destination,
            ConnectErrorKind::Internal => augur_core::ErrorKind::Internal,
        }
    }
}

/// An error starting or running the worker.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    /// What kind of failure.
    kind: ConnectErrorKind,
    /// One line, lowercase, no config values.
    message: String,
    /// What the user can do about it.
    hint: Option<String>,
    /// The underlying cause.
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ConnectError {
    /// An error of `kind` described by `message`.
    pub fn new(kind: ConnectErrorKind, message: impl Into<String>) -> ConnectError {
        ConnectError {
            kind,
            message: message.into(),
            hint: None,
            source: None,
        }
    }

    /// Chains the cause.
    pub fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> ConnectError {
        self.source = Some(Box::new(source));
        self
    }

    /// Adds what the user can do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> ConnectError {
        self.hint = Some(hint.into());
        self
    }

    /// The kind.
    pub fn kind(&self) -> ConnectErrorKind {
        self.kind
    }

    /// The suggested fix, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl From<ConnectError> for augur_core::Error {
    fn from(e: ConnectError) -> augur_core::Error {
        let mut out = augur_core::Error::new(e.kind.core_kind(), e.message);
        if let Some(h) = e.hint {
            out = out.with_hint(h);
        }
        if let Some(s) = e.source {
            out = out.with_boxed_source(s);
        }
        out
    }
}

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

    #[test]
    fn connect_errors_convert_with_hint_and_cause() {
        let e = ConnectError::new(ConnectErrorKind::Bind, "cannot listen on 127.0.0.1:8083")
            .with_source(std::io::Error::other("address in use"))
            .with_hint("pick another --port");
        let core: augur_core::Error = e.into();
        assert_eq!(core.kind(), augur_core::ErrorKind::Io);
        assert_eq!(
            core.full_message(),
            "cannot listen on 127.0.0.1:8083: address in use"
        );
        assert_eq!(core.hint(), Some("pick another --port"));
    }
}
