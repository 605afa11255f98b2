//! `POST /predict`: the contract of the original BentoML service.
//!
//! - A JSON object with the model's fields → `200` and a bare JSON number (the price).
//! - A JSON array of such objects → `200` and an array of numbers, in order.
//! - BentoML ≥ 1.2 services take their arguments by parameter name (`{"input_data": {...}}`):
//!   an object with a single key that is not one of the model's fields, holding an object or
//!   an array, is unwrapped, so both the legacy raw body and the named-parameter body work.
//!
//! Field names match ignoring ASCII case (Debezium's `enginesize`), numbers may be strings,
//! other keys are ignored. Any bad row fails the request with `400` naming the row, the field
//! and the problem.
//!
//! `?range=true` answers objects instead of numbers — `{"price": …, "range": {"low", "high",
//! "level"}}` — and `?explain=true` adds the baseline and each field's contribution
//! ([`super::explain`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::Value;

use super::explain::{explain_rows, explained_json, priced_json, query_flag};
use super::{AppState, flat, infer, json_response, object_row, parse_json, predictions, read_body};
use crate::error::ApiError;
use crate::slot::Served;

/// `POST /predict`.
pub(crate) async fn predict(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let explain = query_flag(query.as_deref(), "explain")?;
    let range = query_flag(query.as_deref(), "range")?;
    let served = state.served()?;
    let incoming = state.batcher.incoming();
    let bytes = read_body(
        body,
        state.config.max_body_bytes,
        state.config.limits.body_timeout,
    )
    .await?;
    if !explain && let Some(answer) = predict_flat(&state, &served, &bytes, range) {
        return answer;
    }
    let value = unwrap_parameter(parse_json(&bytes)?, &served);
    let (rows, batch) = match value {
        Value::Array(items) => (
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| object_row(v, Some(i)))
                .collect::<Result<Vec<_>, _>>()?,
            true,
        ),
        other => (vec![object_row(other, None)?], false),
    };
    let answers: Vec<Value> = if explain {
        drop(incoming);
        let explained = explain_rows(&state, &served, rows, batch).await?;
        explained
            .iter()
            .map(|e| explained_json(&served, e))
            .collect()
    } else {
        let results = infer(&state, &served, rows, incoming).await?;
        let prices = predictions(results, batch)?;
        match range {
            true => prices.iter().map(|&p| priced_json(&served, p)).collect(),
            false => prices.into_iter().map(Value::from).collect(),
        }
    };
    let body = if batch {
        serde_json::to_vec(&answers)
    } else {
        serde_json::to_vec(&answers[0])
    }
    .expect("JSON values serialize");
    Ok(json_response(&served, body))
}

/// The fast path: a body of flat objects ([`flat`]), small enough to score here while the
/// inference thread is idle, is answered without building `serde_json` values; `None` sends
/// the request down the general path. The answer is the same either way.
fn predict_flat(
    state: &AppState,
    served: &Served,
    bytes: &[u8],
    range: bool,
) -> Option<Result<Response, ApiError>> {
    let body = flat::parse(bytes)?;
    let (rows, batch) = body.rows();
    if rows.is_empty() {
        // `[]`: no model call (and none counted), as on the general path.
        return Some(Ok(json_response(served, b"[]".to_vec())));
    }
    if !state.batcher.fast_path(rows.len()) {
        return None;
    }
    let scored = state.batcher.score_here(served, rows.len(), |model| {
        let mut values = Vec::with_capacity(model.input_fields().len());
        rows.iter()
            .map(|pairs| {
                model.values_from_pairs(pairs, &mut values)?;
                model.predict_row(&values)
            })
            .collect()
    });
    let answer = scored.and_then(|results| predictions(results, batch));
    Some(answer.map(|prices| {
        let body = match (range, batch) {
            (true, _) => {
                let answers: Vec<Value> = prices.iter().map(|&p| priced_json(served, p)).collect();
                if batch {
                    serde_json::to_vec(&answers)
                } else {
                    serde_json::to_vec(&answers[0])
                }
            }
            (false, true) => serde_json::to_vec(&prices),
            (false, false) => serde_json::to_vec(&prices[0]),
        }
        .expect("JSON values serialize");
        json_response(served, body)
    }))
}

/// Unwraps `{"<parameter>": <object or array>}` when the one key is not a model field.
fn unwrap_parameter(value: Value, served: &Served) -> Value {
    match value {
        Value::Object(m)
            if m.len() == 1
                && m.values().all(|v| v.is_object() || v.is_array())
                && m.keys().all(|k| served.model().field_index(k).is_none()) =>
        {
            m.into_iter()
                .next()
                .map(|(_, inner)| inner)
                .expect("one entry")
        }
        other => other,
    }
}
