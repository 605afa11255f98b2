//! KServe v1 (the TensorFlow Serving-style protocol): `POST /v1/models/{name}:predict` with
//! `{"instances": [...]}` → `{"predictions": [...]}`; `POST /v1/models/{name}:explain` with the
//! same body → `{"predictions": [...], "explanations": [...]}` (KServe's explain verb, one
//! explained row per instance as in [`super::explain`]); plus `GET /v1/models/{name}` and
//! `GET /v1/models`.
//!
//! An instance is either an object with the model's fields (as for `/predict`) or an array of
//! values in the order of the model's inputs (`GET /v2/models/{name}` lists them).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::explain::{explain_rows, explained_json};
use super::{
    AppState, check_name, infer, json_response, json_type, parse_json, predictions, read_body,
    round_cents,
};
use crate::batcher::Row;
use crate::error::{ApiError, ApiErrorKind};
use crate::slot::Served;

/// `GET /v1/models`: the served model's name (an empty list before it is loaded).
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Response {
    let models: Vec<String> = state
        .slot
        .current()
        .map(|s| s.name().to_string())
        .into_iter()
        .collect();
    super::json_body(StatusCode::OK, &json!({ "models": models }))
}

/// `GET /v1/models/{name}`: `{"name": …, "ready": true}`.
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let served = state.served()?;
    check_name(&served, &name)?;
    let body = json!({ "name": served.name(), "ready": true });
    Ok(json_response(&served, body.to_string().into_bytes()))
}

/// `POST /v1/models/{name}:predict` and `POST /v1/models/{name}:explain`.
pub(crate) async fn predict(
    State(state): State<Arc<AppState>>,
    Path(target): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let (name, explain) = match (
        target.strip_suffix(":predict"),
        target.strip_suffix(":explain"),
    ) {
        (Some(n), _) => (n, false),
        (_, Some(n)) => (n, true),
        _ => {
            return Err(ApiError::new(
                ApiErrorKind::NotFound,
                format!(
                    "no route for POST /v1/models/{target}; use /v1/models/NAME:predict or \
                     NAME:explain"
                ),
            ));
        }
    };
    let served = state.served()?;
    check_name(&served, name)?;
    let incoming = state.batcher.incoming();
    let bytes = read_body(
        body,
        state.config.max_body_bytes,
        state.config.limits.body_timeout,
    )
    .await?;
    let rows = instances(parse_json(&bytes)?, &served)?;
    if explain {
        drop(incoming);
        let explained = explain_rows(&state, &served, rows, true).await?;
        let body = json!({
            "predictions": explained.iter().map(|e| round_cents(e.prediction)).collect::<Vec<_>>(),
            "explanations": explained.iter().map(|e| explained_json(&served, e)).collect::<Vec<_>>(),
        });
        return Ok(json_response(&served, body.to_string().into_bytes()));
    }
    let results = infer(&state, &served, rows, incoming).await?;
    let prices = predictions(results, true)?;
    let body = json!({ "predictions": prices });
    Ok(json_response(&served, body.to_string().into_bytes()))
}

/// The rows of `{"instances": [...]}`.
fn instances(request: Value, served: &Served) -> Result<Vec<Row>, ApiError> {
    let instances = match request {
        Value::Object(mut m) => match m.remove("instances") {
            Some(Value::Array(items)) => items,
            Some(other) => {
                return Err(ApiError::field(
                    "instances",
                    format!("expected an array, got {}", json_type(&other)),
                ));
            }
            None => return Err(ApiError::field("instances", "missing")),
        },
        other => {
            return Err(ApiError::input(format!(
                "expected {{\"instances\": [...]}}, got {}",
                json_type(&other)
            )));
        }
    };
    let fields = served.model().input_fields();
    instances
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(m) => Ok(m),
            Value::Array(values) if values.len() == fields.len() => Ok(fields
                .iter()
                .map(|f| f.name.clone())
                .zip(values)
                .collect::<Map<String, Value>>()),
            Value::Array(values) => Err(ApiError::input(format!(
                "an instance array needs {} values (one per model input), got {}",
                fields.len(),
                values.len()
            ))
            .at_row(i)),
            other => Err(ApiError::input(format!(
                "expected an object or an array, got {}",
                json_type(&other)
            ))
            .at_row(i)),
        })
        .collect()
}
