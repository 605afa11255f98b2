//! [`ApiError`]: the one error a request handler returns, and the dialects of its JSON body.

use std::fmt;
use std::marker::PhantomData;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// What kind of [`ApiError`]; [`ApiErrorKind::status`] is the one place that maps a kind to an
/// HTTP status (as Kafka Connect's `ConnectExceptionMapper` does for its API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// The body is not JSON (400).
    InvalidJson,
    /// A bad request: the JSON does not have the expected shape, a field is missing or
    /// mistyped, a config is invalid (400).
    InvalidInput,
    /// The body is larger than the configured limit (400, with a body naming the limit).
    BodyTooLarge,
    /// No such model, version, connector, task or route (404).
    NotFound,
    /// The route exists but not for this method (405).
    MethodNotAllowed,
    /// The body's `Content-Type` is not one the route reads (415).
    UnsupportedMediaType,
    /// The resource already exists (409).
    Conflict,
    /// Not ready yet, or shutting down (503).
    NotReady,
    /// The queue is full (503).
    Overloaded,
    /// The request could not be answered within the latency budget (503).
    LatencyBudget,
    /// No credentials, or wrong ones, where authentication is on (401, with a
    /// `WWW-Authenticate` challenge in the server's scheme).
    Unauthorized,
    /// An admin endpoint was called without the right credentials (403).
    Forbidden,
    /// A bug, a failed inference thread, a state write that failed (500).
    Internal,
}

impl ApiErrorKind {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ApiErrorKind::InvalidJson | ApiErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ApiErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiErrorKind::NotFound => StatusCode::NOT_FOUND,
            ApiErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiErrorKind::Conflict => StatusCode::CONFLICT,
            ApiErrorKind::NotReady | ApiErrorKind::Overloaded | ApiErrorKind::LatencyBudget => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ApiErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `code` of augur's body.
    pub fn code(self) -> &'static str {
        match self {
            ApiErrorKind::InvalidJson => "invalid_json",
            ApiErrorKind::InvalidInput => "invalid_input",
            ApiErrorKind::BodyTooLarge => "body_too_large",
            ApiErrorKind::NotFound => "not_found",
            ApiErrorKind::MethodNotAllowed => "method_not_allowed",
            ApiErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ApiErrorKind::Conflict => "conflict",
            ApiErrorKind::NotReady => "not_ready",
            ApiErrorKind::Overloaded => "overloaded",
            ApiErrorKind::LatencyBudget => "latency_budget_exceeded",
            ApiErrorKind::Unauthorized => "unauthorized",
            ApiErrorKind::Forbidden => "forbidden",
            ApiErrorKind::Internal => "internal",
        }
    }
}

/// How an API writes its error bodies.
pub trait Dialect: fmt::Debug + Clone + Copy + PartialEq + Eq + Send + Sync + 'static {
    /// Whether a 503 answer carries `Retry-After: 1`.
    const RETRY_AFTER: bool;

    /// The `WWW-Authenticate` challenge of a 401.
    const CHALLENGE: &'static str;

    /// The JSON body of `e`.
    fn body(e: &ApiError<Self>) -> Value;
}

/// augur's model server: `{"error": message, "code": …, "field"?: …, "problem"?: …,
/// "row"?: …}`, and `Retry-After: 1` on a 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augur;

impl Dialect for Augur {
    const RETRY_AFTER: bool = true;
    const CHALLENGE: &'static str = "Bearer realm=\"augur\"";

    fn body(e: &ApiError<Augur>) -> Value {
        let mut body = json!({ "error": e.message, "code": e.kind.code() });
        if let Some(f) = &e.field {
            body["field"] = json!(f);
        }
        if let Some(p) = &e.problem {
            body["problem"] = json!(p);
        }
        if let Some(r) = e.row {
            body["row"] = json!(r);
        }
        body
    }
}

/// Kafka Connect's REST API: `{"error_code": <status>, "message": "<text>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaConnect;

impl Dialect for KafkaConnect {
    const RETRY_AFTER: bool = false;
    const CHALLENGE: &'static str = "Basic realm=\"augur connect\"";

    fn body(e: &ApiError<KafkaConnect>) -> Value {
        json!({ "error_code": e.kind.status().as_u16(), "message": e.message })
    }
}

/// An error answering one request: a kind (which decides the status), a message (never a
/// secret, a row value or an internal detail), optionally the input field, its problem and
/// the batch row concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError<D: Dialect = Augur> {
    kind: ApiErrorKind,
    message: String,
    field: Option<String>,
    problem: Option<String>,
    row: Option<usize>,
    dialect: PhantomData<D>,
}

impl<D: Dialect> ApiError<D> {
    /// An error of `kind` with a message.
    pub fn new(kind: ApiErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            field: None,
            problem: None,
            row: None,
            dialect: PhantomData,
        }
    }

    /// `400` with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ApiErrorKind::InvalidInput, message)
    }

    /// `500` with a message.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ApiErrorKind::Internal, message)
    }

    /// A bad-input error naming a field and its problem (`field year: missing`).
    pub fn field(field: impl Into<String>, problem: impl Into<String>) -> Self {
        let (field, problem) = (field.into(), problem.into());
        ApiError {
            message: format!("field {field}: {problem}"),
            field: Some(field),
            problem: Some(problem),
            ..ApiError::new(ApiErrorKind::InvalidInput, "")
        }
    }

    /// A bad-input error about the body's shape (no particular field).
    pub fn input(problem: impl Into<String>) -> Self {
        let problem = problem.into();
        ApiError {
            problem: Some(problem.clone()),
            ..ApiError::new(ApiErrorKind::InvalidInput, problem)
        }
    }

    /// Ties the error to a row of a batch request (prefixing the message with `row N: `).
    pub fn at_row(mut self, row: usize) -> Self {
        self.message = format!("row {row}: {}", self.message);
        self.row = Some(row);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ApiErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The field concerned, if any.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The JSON body, in the dialect's shape.
    pub fn body(&self) -> Value {
        D::body(self)
    }
}

impl ApiError<KafkaConnect> {
    /// `404 Connector <name> not found`.
    pub fn connector_not_found(name: &str) -> Self {
        ApiError::new(
            ApiErrorKind::NotFound,
            format!("Connector {name} not found"),
        )
    }

    /// `409 Connector <name> already exists`.
    pub fn connector_exists(name: &str) -> Self {
        ApiError::new(
            ApiErrorKind::Conflict,
            format!("Connector {name} already exists"),
        )
    }
}

impl<D: Dialect> IntoResponse for ApiError<D> {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if D::RETRY_AFTER && status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(D::CHALLENGE),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn augur_bodies_name_the_field_and_the_problem() {
        let e = ApiError::<Augur>::field("year", "missing").at_row(2);
        assert_eq!(e.kind().status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            json!({"error": "row 2: field year: missing", "code": "invalid_input",
                   "field": "year", "problem": "missing", "row": 2})
        );
    }

    #[test]
    fn kafka_connect_bodies_carry_the_status_and_the_message() {
        let e = ApiError::connector_not_found("pg");
        assert_eq!(e.kind().status(), StatusCode::NOT_FOUND);
        assert_eq!(
            e.body(),
            json!({"error_code": 404, "message": "Connector pg not found"})
        );
        assert_eq!(
            ApiError::connector_exists("pg").body()["error_code"],
            json!(409)
        );
    }

    #[test]
    fn only_augur_asks_to_retry_after_a_503() {
        let a = ApiError::<Augur>::new(ApiErrorKind::Overloaded, "queue full").into_response();
        assert_eq!(a.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.headers()[header::RETRY_AFTER], "1");
        let k = ApiError::<KafkaConnect>::new(ApiErrorKind::NotReady, "stopping").into_response();
        assert!(k.headers().get(header::RETRY_AFTER).is_none());
        assert_eq!(k.headers()[header::CONTENT_TYPE], "application/json");
    }
}
