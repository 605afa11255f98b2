//! Health and metrics, as BentoML names them: `/livez` and `/healthz` (the process answers),
//! `/readyz` (the model is loaded and the server is not stopping), `/metrics` (Prometheus).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Whether the server should receive traffic: a model is loaded and shutdown has not begun.
pub(crate) fn is_ready(state: &AppState) -> bool {
    state.slot.current().is_some() && !state.shutting_down.load(Ordering::Acquire)
}

/// A `text/plain` response.
fn text(status: StatusCode, body: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `GET /livez`, `GET /healthz`: 200 while the process serves HTTP at all.
pub(crate) async fn live() -> Response {
    text(StatusCode::OK, "ok\n")
}

/// `GET /readyz`: 200 once the model is loaded; 503 before, and once shutdown has begun.
pub(crate) async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.shutting_down.load(Ordering::Acquire) {
        text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else if state.slot.current().is_none() {
        text(StatusCode::SERVICE_UNAVAILABLE, "model not loaded yet\n")
    } else {
        text(StatusCode::OK, "ready\n")
    }
}

/// `GET /metrics`: every metric of the server's registry, text format 0.0.4.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut resp = state.metrics.registry().render().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(augur_metrics::CONTENT_TYPE),
    );
    resp
}
