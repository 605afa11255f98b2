//! Price ranges and explanations over HTTP, shared by every protocol: `/predict?range=true`
//! and `?explain=true`, KServe v1's `:explain`, and OIP v2's extra outputs.
//!
//! An explained row is a JSON object: the price (named after the model's output), its range,
//! the baseline price, and one contribution per input field — its effect in price units and in
//! the model's score space — largest effect first:
//!
//! ```json
//! {"price": 11187.29, "range": {"low": 9881.2, "high": 12630.4, "level": 0.8},
//!  "baseline": 12140.77, "contributions": [
//!    {"field": "year", "effect": -1020.45, "score": -0.0873}, ...]}
//! ```
//!
//! Explaining costs about a millisecond a row (exact TreeSHAP over every tree), so it runs on a
//! blocking thread, at most one request per core at a time, and at most
//! [`MAX_EXPLAIN_ROWS`] rows a request. Predictions never wait for it.

use std::sync::Arc;

use augur_model::{ExplainError, Explanation};
use serde_json::{Map, Value, json};

use super::{AppState, round_cents};
use crate::batcher::Row;
use crate::error::{ApiError, ApiErrorKind, from_field_error};
use crate::slot::Served;

/// The most rows one request may ask to explain.
pub(crate) const MAX_EXPLAIN_ROWS: usize = 1000;

/// Explains `rows` with the request's model, off the async runtime; `400` naming the first bad
/// row (numbered when `batch`).
pub(crate) async fn explain_rows(
    state: &AppState,
    served: &Arc<Served>,
    rows: Vec<Row>,
    batch: bool,
) -> Result<Vec<Explanation>, ApiError> {
    if rows.len() > MAX_EXPLAIN_ROWS {
        return Err(ApiError::input(format!(
            "at most {MAX_EXPLAIN_ROWS} rows can be explained in one request, got {}",
            rows.len()
        )));
    }
    served.model().explainable().map_err(|e| {
        ApiError::new(
            ApiErrorKind::InvalidInput,
            format!("{} cannot explain its predictions: {e}", served.tag()),
        )
    })?;
    let _permit = state
        .explain_permits
        .acquire()
        .await
        .map_err(|_| ApiError::new(ApiErrorKind::NotReady, "the server is shutting down"))?;
    let model = served.model().clone();
    let explained = tokio::task::spawn_blocking(move || {
        rows.iter()
            .map(|r| model.explain_json(r))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|_| ApiError::new(ApiErrorKind::Internal, "the explanation task failed"))?;
    explained
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.map_err(|e| {
                let err = match &e {
                    ExplainError::Field(f) => from_field_error(f),
                    ExplainError::Model(m) => ApiError::input(m.to_string()),
                };
                if batch { err.at_row(i) } else { err }
            })
        })
        .collect()
}

/// `{"low", "high", "level"}` around a price, when the model has a range.
pub(crate) fn range_json(served: &Served, price: f64) -> Option<Value> {
    let iv = served.model().meta().interval()?;
    let (lo, hi) = iv.range(price);
    Some(json!({ "low": round_cents(lo), "high": round_cents(hi), "level": iv.level }))
}

/// A priced row as an object: the price under the output's name, and its range.
pub(crate) fn priced_json(served: &Served, price: f64) -> Value {
    let mut m = Map::new();
    m.insert(served.output().to_string(), json!(round_cents(price)));
    if let Some(r) = range_json(served, price) {
        m.insert("range".into(), r);
    }
    Value::Object(m)
}

/// An explained row as an object (see the module docs).
pub(crate) fn explained_json(served: &Served, e: &Explanation) -> Value {
    let mut obj = priced_json(served, e.prediction);
    let mut parts: Vec<_> = e.contributions.iter().collect();
    parts.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
    let parts: Vec<Value> = parts
        .into_iter()
        .map(|c| json!({ "field": c.field, "effect": round_cents(c.effect), "score": c.score }))
        .collect();
    let m = obj.as_object_mut().expect("an object");
    m.insert("baseline".into(), json!(round_cents(e.baseline)));
    m.insert("contributions".into(), Value::Array(parts));
    obj
}

/// Whether a query string sets `key` to true (`key`, `key=true`, `key=1`).
pub(crate) fn query_flag(query: Option<&str>, key: &str) -> Result<bool, ApiError> {
    let Some(q) = query else { return Ok(false) };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
        if k == key {
            return match v {
                "true" | "1" | "" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(ApiError::field(
                    key,
                    format!("expected true or false, got {other:?}"),
                )),
            };
        }
    }
    Ok(false)
}
