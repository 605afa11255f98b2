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
use crate::promote::{error_chain, is_refusal, promote_tag};

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

/// `POST /admin/promote` with `{"tag": "ford-price:2", "force": false}` (or no body: the newest
/// version of the served name) → `{"previous", "current", "changed"}`; a refusal by the
/// promotion checks is `409` with the reason.
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
    let (tag, force) = promote_request(&bytes)?;
    match promote_tag(&state, tag, force).await {
        Ok(p) => Ok(json_body(
            StatusCode::OK,
            &json!({ "previous": p.previous, "current": p.current, "changed": p.changed }),
        )),
        Err(e) => {
            let model_error = std::error::Error::source(&e)
                .and_then(|s| s.downcast_ref::<augur_model::ModelError>());
            let kind = match (e.kind(), model_error) {
                _ if is_refusal(&e) => ApiErrorKind::Conflict,
                (_, Some(augur_model::ModelError::NotFound(_))) => ApiErrorKind::NotFound,
                (_, Some(augur_model::ModelError::InvalidTag { .. })) => ApiErrorKind::InvalidInput,
                (augur_core::ErrorKind::Config, _) => ApiErrorKind::InvalidInput,
                (augur_core::ErrorKind::Model, None) => ApiErrorKind::NotFound,
                _ => ApiErrorKind::Internal,
            };
            let msg = error_chain(&e);
            tracing::warn!(reason = %msg, "promotion failed");
            Err(ApiError::new(kind, msg))
        }
    }
}

/// The tag and `force` flag of a promote request (an empty body: no tag, not forced).
fn promote_request(bytes: &[u8]) -> Result<(Option<String>, bool), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, false));
    }
    let mut m = match parse_json(bytes)? {
        Value::Object(m) => m,
        other => {
            return Err(ApiError::input(format!(
                "expected {{\"tag\": \"name:version\"}}, got {}",
                json_type(&other)
            )));
        }
    };
    let tag = match m.remove("tag") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(t),
        Some(other) => {
            return Err(ApiError::field(
                "tag",
                format!("expected a string, got {}", json_type(&other)),
            ));
        }
    };
    let force = match m.remove("force") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            return Err(ApiError::field(
                "force",
                format!("expected true or false, got {}", json_type(&other)),
            ));
        }
    };
    Ok((tag, force))
}
