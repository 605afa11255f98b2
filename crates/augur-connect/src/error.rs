//! Errors answering one REST request: [`ApiError`] in Kafka Connect's `{"error_code","message"}`
//! dialect (`augur_http`'s one error type). Starting and running the worker fails with
//! [`augur_core::Error`].

pub use augur_http::ApiErrorKind;

/// An error answering one REST request, with Kafka Connect's body.
pub type ApiError = augur_http::ApiError<augur_http::KafkaConnect>;
