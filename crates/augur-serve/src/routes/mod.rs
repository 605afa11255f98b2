//! The HTTP surface: the router, the request-metrics middleware, and the helpers every
//! protocol module shares (reading a bounded body, parsing JSON, turning results into
//! responses). One module per protocol or concern:
//!
//! - [`bentoml`]: `POST /predict`, the original BentoML contract.
//! - [`oip`]: Open Inference Protocol v2 (`/v2/...`).
//! - [`kserve`]: KServe v1 (`/v1/models/...`).
//! - [`health`]: `/livez`, `/healthz`, `/readyz`, `/metrics`.
//! - [`docs`]: `/docs.json` (OpenAPI) and the human page at `/`.
//! - [`explain`]: price ranges and explanations, shared by the protocols.
//! - [`admin`]: `/admin/model`, `/admin/promote`.

use std::sync::Arc;
use std::time::Instant;

use augur_metrics::Gauge;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::Value;

use crate::batcher::{Row, RowResults};
use crate::error::{ApiError, ApiErrorKind};
use crate::slot::{MODEL_HEADER, Served};
pub(crate) use crate::state::AppState;

pub(crate) mod admin;
pub(crate) mod bentoml;
pub(crate) mod docs;
pub(crate) mod explain;
pub(crate) mod flat;
pub(crate) mod health;
pub(crate) mod kserve;
pub(crate) mod oip;

/// The whole router, with the metrics middleware on every route, and the API token check
/// when one is configured.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let routes = routes();
    let routes = match state.config.api_token {
        Some(_) => routes.layer(middleware::from_fn_with_state(state.clone(), require_token)),
        None => routes,
    };
    routes
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Paths answered without the API token: the probes an orchestrator calls.
const OPEN_PATHS: [&str; 5] = [
    "/livez",
    "/healthz",
    "/readyz",
    "/v2/health/live",
    "/v2/health/ready",
];

/// `401` unless the request carries the API token (or asks for a probe; admin endpoints check
/// their own token).
async fn require_token(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let open = OPEN_PATHS.contains(&path) || path.starts_with("/admin/");
    let token = state.config.api_token.as_ref();
    if open || token.is_some_and(|t| augur_http::bearer_matches(req.headers(), t)) {
        return next.run(req).await;
    }
    ApiError::new(
        ApiErrorKind::Unauthorized,
        "this server requires Authorization: Bearer <API token>",
    )
    .into_response()
}

/// Every route.
fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(docs::index))
        .route("/docs.json", get(docs::openapi))
        .route("/predict", post(bentoml::predict))
        .route("/livez", get(health::live))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/v2", get(oip::server_metadata))
        .route("/v2/health/live", get(oip::live))
        .route("/v2/health/ready", get(oip::ready))
        .route("/v2/models/{name}", get(oip::model_metadata))
        .route("/v2/models/{name}/ready", get(oip::model_ready))
        .route("/v2/models/{name}/infer", post(oip::infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(oip::version_metadata),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(oip::version_ready),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(oip::version_infer),
        )
        .route("/v1/models", get(kserve::list))
        // `{target}` is `NAME` (status), `NAME:predict` or `NAME:explain`.
        .route(
            "/v1/models/{target}",
            get(kserve::status).post(kserve::predict),
        )
        .route("/admin/model", get(admin::current))
        .route("/admin/promote", post(admin::promote))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// `404` with a JSON body for unknown routes.
async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ApiErrorKind::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

/// `405` with a JSON body.
async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ApiErrorKind::MethodNotAllowed,
        format!("{} does not take {method}", uri.path()),
    )
}

/// Decrements the in-progress gauge when the request ends, even if it is cancelled.
struct InProgress(Gauge);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Counts every request by route template and status, times it, and tracks requests in
/// progress.
async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let endpoint = req.extensions().get::<MatchedPath>().cloned();
    let endpoint = endpoint.as_ref().map_or("unmatched", |m| m.as_str());
    let m = &state.metrics;
    let hot = m.hot_route(endpoint);
    let gauge = hot.map_or_else(
        || m.in_progress.with(&[endpoint]),
        |h| h.in_progress.clone(),
    );
    gauge.inc();
    let _in_progress = InProgress(gauge);
    let started = Instant::now();
    let resp = next.run(req).await;
    let took = started.elapsed().as_secs_f64();
    let code = resp.status();
    match hot {
        Some(h) if code == StatusCode::OK => {
            h.ok.inc();
            h.ok_duration.observe(took);
        }
        _ => {
            let labels = [endpoint, code.as_str()];
            m.requests.with(&labels).inc();
            m.duration.with(&labels).observe(took);
        }
    }
    resp
}

/// A request body of at most `limit` bytes, within `timeout`. A body over the limit is read to
/// its end (up to [`DRAIN_FACTOR`] times the limit) before the `413`, so the client, still
/// sending, reads the answer instead of a connection reset.
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ApiErrorKind::BodyTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let slow = || {
        ApiError::new(
            ApiErrorKind::InvalidJson,
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs()
            ),
        )
    };
    let drain_cap = limit.saturating_mul(DRAIN_FACTOR) as u64;
    if body.size_hint().lower() > drain_cap {
        return Err(too_large());
    }
    // A small body has usually arrived with the request head: try once before arming the
    // timer, which costs a registration with the runtime's timer wheel.
    let collecting = collect(body, limit, drain_cap);
    tokio::pin!(collecting);
    let first = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(collecting.as_mut(), cx))
    })
    .await;
    let collected = match first {
        std::task::Poll::Ready(c) => c,
        std::task::Poll::Pending => tokio::time::timeout(timeout, collecting)
            .await
            .map_err(|_| slow())?,
    };
    match collected? {
        Some(bytes) => Ok(bytes),
        None => Err(too_large()),
    }
}

/// How far past the limit an oversized body is still read (and dropped) before the `413`.
const DRAIN_FACTOR: usize = 8;

/// The body, or `None` when it is over `limit` (then read on, discarded, up to `drain_cap`).
async fn collect(body: Body, limit: usize, drain_cap: u64) -> Result<Option<Bytes>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    let mut seen = 0u64;
    let mut over = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(
                ApiErrorKind::InvalidJson,
                "the request body could not be read",
            )
        })?;
        seen += chunk.len() as u64;
        if over || seen > limit as u64 {
            over = true;
            if seen > drain_cap {
                return Ok(None);
            }
            continue;
        }
        match &first {
            None => first = Some(chunk),
            Some(f) => {
                if rest.is_empty() {
                    rest.extend_from_slice(f);
                }
                rest.extend_from_slice(&chunk);
            }
        }
    }
    if over {
        return Ok(None);
    }
    Ok(Some(if rest.is_empty() {
        first.unwrap_or_default()
    } else {
        Bytes::from(rest)
    }))
}

/// Parses a body as JSON; `400` naming the position and the problem otherwise.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ApiErrorKind::InvalidJson,
            "the request body is empty; send a JSON document",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(ApiErrorKind::InvalidJson, format!("invalid JSON: {e}")))
}

/// A JSON type's name for error messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A row from a JSON value that must be an object (`row` numbers it in a batch).
pub(crate) fn object_row(v: Value, row: Option<usize>) -> Result<Row, ApiError> {
    match v {
        Value::Object(m) => Ok(m),
        other => {
            let e = ApiError::input(format!(
                "expected a JSON object with the model's fields, got {}",
                json_type(&other)
            ));
            Err(match row {
                Some(r) => e.at_row(r),
                None => e,
            })
        }
    }
}

/// The predictions of a request, or `400` for the first row with a bad field (`batch` says
/// whether to number the row in the message).
pub(crate) fn predictions(results: RowResults, batch: bool) -> Result<Vec<f64>, ApiError> {
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.map(round_cents).map_err(|e| {
                let err = crate::error::from_field_error(&e);
                if batch { err.at_row(i) } else { err }
            })
        })
        .collect()
}

/// Prices are answered in cents, as `augur predict` prints them (the model computes in
/// `f32`, so further digits are noise).
pub(crate) fn round_cents(p: f64) -> f64 {
    (p * 100.0).round() / 100.0
}

/// Queues rows for inference with the model admitted for the request.
pub(crate) async fn infer(
    state: &AppState,
    served: &Arc<Served>,
    rows: Vec<Row>,
    incoming: crate::batcher::IncomingGuard,
) -> Result<RowResults, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    state.batcher.predict(served.clone(), rows, incoming).await
}

/// A `200` JSON response with the model header.
pub(crate) fn json_response(served: &Served, body: Vec<u8>) -> Response {
    let mut resp = Body::from(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(MODEL_HEADER, served.header().clone());
    resp
}

/// A JSON response without the model header (server-level documents).
pub(crate) fn json_body(status: StatusCode, value: &Value) -> Response {
    let mut resp = (status, value.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `404` unless `name` is the served model's name.
pub(crate) fn check_name(served: &Served, name: &str) -> Result<(), ApiError> {
    if name == served.name() {
        Ok(())
    } else {
        Err(crate::error::unknown_model(name, served.tag()))
    }
}

/// `404` unless `name` and `version` are the served model's.
pub(crate) fn check_version(served: &Served, name: &str, version: &str) -> Result<(), ApiError> {
    check_name(served, name)?;
    if version == served.version().to_string() {
        Ok(())
    } else {
        Err(crate::error::unknown_model(
            &format!("{name}:{version}"),
            served.tag(),
        ))
    }
}
