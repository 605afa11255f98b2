//! Errors answering one request: [`ApiError`] (`augur_http`'s one error type, augur's
//! `{"error","code",…}` dialect) becomes a JSON response with a status code and never leaks
//! internals. Starting and running the server fails with [`augur_core::Error`].

pub use augur_http::ApiErrorKind;

/// An error answering one request, with augur's body.
pub type ApiError = augur_http::ApiError<augur_http::Augur>;

/// From a model's per-row error: the field and its problem.
pub(crate) fn from_field_error(e: &augur_model::FieldError) -> ApiError {
    ApiError::field(e.field.clone(), e.problem.to_string())
}

/// `404` for a model name (or version) this server does not serve.
pub(crate) fn unknown_model(asked: &str, served: &str) -> ApiError {
    ApiError::new(
        ApiErrorKind::NotFound,
        format!("model {asked:?} not found; this server serves {served}"),
    )
}
