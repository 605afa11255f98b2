//! Errors answering one request: [`ApiError`] becomes a JSON response with a status code and
//! never leaks internals. Starting and running the server fails with [`augur_core::Error`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// What kind of [`ApiError`]; [`ApiErrorKind::status`] is the one place that maps a kind to
/// an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// The body is not JSON.
    InvalidJson,
    /// The JSON does not have the expected shape, or a field is missing or mistyped.
    InvalidInput,
    /// The body is larger than the configured limit.
    BodyTooLarge,
    /// No such model, version or route.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The model is not loaded yet, or the server is shutting down.
    NotReady,
    /// The inference queue is full.
    Overloaded,
    /// The request could not be answered within the latency budget.
    LatencyBudget,
    /// An admin endpoint was called without the right credentials.
    Forbidden,
    /// A bug or a failed inference thread.
    Internal,
}

impl ApiErrorKind {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            // The issue asks for 400 on an oversized body (with a body naming the limit),
            // like every other bad input, rather than 413.
            ApiErrorKind::InvalidJson | ApiErrorKind::InvalidInput | ApiErrorKind::BodyTooLarge => {
                StatusCode::BAD_REQUEST
            }
            ApiErrorKind::NotFound => StatusCode::NOT_FOUND,
            ApiErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiErrorKind::NotReady | ApiErrorKind::Overloaded | ApiErrorKind::LatencyBudget => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ApiErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable `code` of the JSON body.
    pub fn code(self) -> &'static str {
        match self {
            ApiErrorKind::InvalidJson => "invalid_json",
            ApiErrorKind::InvalidInput => "invalid_input",
            ApiErrorKind::BodyTooLarge => "body_too_large",
            ApiErrorKind::NotFound => "not_found",
            ApiErrorKind::MethodNotAllowed => "method_not_allowed",
            ApiErrorKind::NotReady => "not_ready",
            ApiErrorKind::Overloaded => "overloaded",
            ApiErrorKind::LatencyBudget => "latency_budget_exceeded",
            ApiErrorKind::Forbidden => "forbidden",
            ApiErrorKind::Internal => "internal",
        }
    }
}

/// An error answering one request. Becomes
/// `{"error": message, "code": …, "field"?: …, "problem"?: …, "row"?: …}` with the kind's
/// status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The kind (decides the status).
    kind: ApiErrorKind,
    /// The whole message, e.g. `field year: expected a number, got a string`.
    message: String,
    /// The input field concerned, if any (canonical name, e.g. `engineSize`).
    field: Option<String>,
    /// What is wrong with it, e.g. `expected a number, got a string`.
    problem: Option<String>,
    /// The 0-based row of a batch request, if the request had several rows.
    row: Option<usize>,
}

impl ApiError {
    /// An error of `kind` with a message.
    pub fn new(kind: ApiErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            field: None,
            problem: None,
            row: None,
        }
    }

    /// A bad-input error naming a field and its problem.
    pub fn field(field: impl Into<String>, problem: impl Into<String>) -> ApiError {
        let (field, problem) = (field.into(), problem.into());
        ApiError {
            kind: ApiErrorKind::InvalidInput,
            message: format!("field {field}: {problem}"),
            field: Some(field),
            problem: Some(problem),
            row: None,
        }
    }

    /// A bad-input error about the body's shape (no particular field).
    pub fn input(problem: impl Into<String>) -> ApiError {
        let problem = problem.into();
        ApiError {
            kind: ApiErrorKind::InvalidInput,
            message: problem.clone(),
            field: None,
            problem: Some(problem),
            row: None,
        }
    }

    /// From a model's per-row error.
    pub(crate) fn from_field_error(e: &augur_model::FieldError) -> ApiError {
        ApiError::field(e.field.clone(), e.problem.to_string())
    }

    /// Ties the error to a row of a batch request (prefixing the message with `row N: `).
    pub fn at_row(mut self, row: usize) -> ApiError {
        self.message = format!("row {row}: {}", self.message);
        self.row = Some(row);
        self
    }

    /// `404` for a model name (or version) this server does not serve.
    pub(crate) fn unknown_model(asked: &str, served: &str) -> ApiError {
        ApiError::new(
            ApiErrorKind::NotFound,
            format!("model {asked:?} not found; this server serves {served}"),
        )
    }

    /// The kind.
    pub fn kind(&self) -> ApiErrorKind {
        self.kind
    }

    /// The field concerned, if any.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({ "error": self.message, "code": self.kind.code() });
        if let Some(f) = &self.field {
            body["field"] = json!(f);
        }
        if let Some(p) = &self.problem {
            body["problem"] = json!(p);
        }
        if let Some(r) = self.row {
            body["row"] = json!(r);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_name_the_field_and_the_problem() {
        let e = ApiError::field("year", "missing").at_row(2);
        assert_eq!(e.kind().status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            json!({"error": "row 2: field year: missing", "code": "invalid_input",
                   "field": "year", "problem": "missing", "row": 2})
        );
    }
}
