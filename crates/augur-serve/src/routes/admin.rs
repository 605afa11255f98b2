//! Admin endpoints: `GET /admin/model` (what is served) and `POST /admin/promote` (serve
//! another version without a restart).
//!
//! Access: with an admin token configured, requests need `Authorization: Bearer <token>`;
//! else with an API token, that one; with neither, only clients connecting from a loopback
//! address are served (the server listens on loopback by default, so a widened `--host` does
//! not expose promotion).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::{AppState, json_body, json_type, parse_json, read_body};
use crate::error::{ApiError, ApiErrorKind};
use crate::promote::promote_tag;

/// `403` unless the caller may use admin endpoints: the admin token when one is set, else
/// the API token when one is set, else a loopback client.
fn authorize(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    let cfg = &state.config;
    match cfg.admin_token.as_ref().or(cfg.api_token.as_ref()) {
        Some(token) if augur_http::bearer_matches(headers, token) => Ok(()),
        Some(_) => Err(ApiError::new(
            ApiErrorKind::Forbidden,
            "admin endpoints need Authorization: Bearer <admin token>",
        )),
        None if peer.ip().is_loopback() => Ok(()),
        None => Err(ApiError::new(
            ApiErrorKind::Forbidden,
            "admin endpoints answer loopback clients only unless an admin token is set",
        )),
    }
}

/// `GET /admin/model`: the served model's tag, since when, and where it came from.
pub(crate) async fn current(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, peer, &headers)?;
    let served = state.served()?;
    let since = served
        .since()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let body = json!({
        "model": served.tag(),
        "name": served.name(),
        "version": served.version(),
        "since_unix_seconds": since,
        "created_at": served.model().meta().created_at,
        "source": state.source.describe(),
        "watching": state.config.watch_interval.is_some(),
    });
    Ok(super::json_response(&served, body.to_string().into_bytes()))
}

/// `POST /admin/promote` with `{"tag": "ford-price:2"}` (or no body: the newest version of the
/// served name) → `{"previous", "current", "changed"}`.
pub(crate) async fn promote(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&state, peer, &headers)?;
    let bytes = read_body(
        body,
        state.config.max_body_bytes,
        state.config.limits.body_timeout,
    )
    .await?;
    let tag = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match parse_json(&bytes)? {
            Value::Object(mut m) => match m.remove("tag") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(t),
                Some(other) => {
                    return Err(ApiError::field(
                        "tag",
                        format!("expected a string, got {}", json_type(&other)),
                    ));
                }
            },
            other => {
                return Err(ApiError::input(format!(
                    "expected {{\"tag\": \"name:version\"}}, got {}",
                    json_type(&other)
                )));
            }
        }
    };
    match promote_tag(&state, tag).await {
        Ok(p) => Ok(json_body(
            StatusCode::OK,
            &json!({ "previous": p.previous, "current": p.current, "changed": p.changed }),
        )),
        Err(e) => {
            let model_error = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<augur_model::ModelError>());
            let kind = match (e.kind(), model_error) {
                (_, Some(augur_model::ModelError::NotFound(_))) => ApiErrorKind::NotFound,
                (_, Some(augur_model::ModelError::InvalidTag { .. })) => ApiErrorKind::InvalidInput,
                (augur_core::ErrorKind::Config, _) => ApiErrorKind::InvalidInput,
                (augur_core::ErrorKind::Model, None) => ApiErrorKind::NotFound,
                _ => ApiErrorKind::Internal,
            };
            tracing::warn!(error = %e, "promotion failed");
            let mut msg = e.to_string();
            if let Some(src) = std::error::Error::source(&e) {
                msg = format!("{msg}: {src}");
            }
            Err(ApiError::new(kind, msg))
        }
    }
}
