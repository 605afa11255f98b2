//! The Kafka Connect REST API: paths, status codes and bodies as Kafka Connect 3.x answers
//! them, errors as `{"error_code","message"}` (see `docs/connect.md`).
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | `{"version","commit","kafka_cluster_id"}` |
//! | `GET /health` | `{"status":"healthy","message"}` |
//! | `GET /connector-plugins[?connectorsOnly=false]` | `[{"class","type","version"}]` |
//! | `GET /connector-plugins/{class}/config` | key definitions |
//! | `PUT /connector-plugins/{class}/config/validate` | `ConfigInfos` |
//! | `GET /connectors[?expand=status&expand=info]` | names, or `{name:{status,info}}` |
//! | `POST /connectors` | 201 + `Location`, 409 if it exists, 400 for a bad config |
//! | `GET`, `DELETE /connectors/{name}` | `ConnectorInfo`; 204 |
//! | `GET`, `PUT /connectors/{name}/config` | the config; 201 created / 200 updated |
//! | `PATCH /connectors/{name}/config` | 200 `ConnectorInfo` (`null` removes a key; 404 if absent) |
//! | `GET /connectors/{name}/status`, `/tasks`, `/tasks/{id}/status` | states; task configs |
//! | `PUT …/pause`, `PUT …/resume` | 202 |
//! | `POST …/restart[?includeTasks=&onlyFailed=]` | 204, or 202 + status |
//! | `POST …/tasks/{id}/restart`, `PUT …/stop` | 204 |
//! | `GET …/offsets` | `{"offsets":[{"partition","offset"}]}` |
//! | `PATCH …/offsets`, `DELETE …/offsets` | 200 `{"message"}`; 400 unless the connector is stopped |
//! | `GET …/topics`, `PUT …/topics/reset` | 200 `{"<name>":{"topics":[…]}}`; 202 |
//! | `GET /admin/loggers`, `GET /admin/loggers/{logger}` | `{"<logger>":{"level","last_modified"}}`; one |
//! | `PUT /admin/loggers/{logger}[?scope=worker\|cluster]` | 200 changed loggers; 204 for `cluster` |
//!
//! A request whose `Content-Type` is not JSON is answered 415, as Jersey answers it.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Serialize;
use serde_json::Value;

use crate::entities::{ConnectorExpansion, ServerInfo, WorkerStatus};
use crate::error::{ApiError, ApiErrorKind};
use crate::loggers::{self, LevelError};
use crate::plugins::{self, Plugin};
use crate::store::TargetState;
use crate::tasks::TaskPlan;
use crate::worker::{OffsetEntry, Worker};

/// augur's version, reported as the worker's.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit the worker was built from.
const COMMIT: &str = env!("AUGUR_GIT_COMMIT");

/// The router; with `auth`, every request but `GET /health` needs HTTP Basic credentials
/// from it (401 otherwise), as Kafka Connect's `BasicAuthSecurityRestExtension` demands.
pub fn router(
    worker: Worker,
    max_body_bytes: usize,
    auth: Option<augur_http::BasicCredentials>,
) -> Router {
    let routes = routes(max_body_bytes).layer(axum::middleware::from_fn_with_state(
        worker.clone(),
        crate::forward::to_leader,
    ));
    let routes = match auth {
        Some(creds) => routes.layer(axum::middleware::from_fn_with_state(
            std::sync::Arc::new(creds),
            basic_auth,
        )),
        None => routes,
    };
    routes.with_state(worker)
}

/// `401` with a `Basic` challenge unless the request carries a known user's password
/// (`GET /health` is answered without, for orchestrators' probes).
async fn basic_auth(
    State(creds): State<std::sync::Arc<augur_http::BasicCredentials>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.uri().path() == "/health" || creds.check(req.headers()).is_some() {
        return next.run(req).await;
    }
    ApiError::new(
        ApiErrorKind::Unauthorized,
        "User cannot access the resource.",
    )
    .into_response()
}

/// Every route.
fn routes(max_body_bytes: usize) -> Router<Worker> {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/connector-plugins", get(list_plugins))
        .route("/connector-plugins/{plugin}/config", get(plugin_config))
        .route("/connector-plugins/{plugin}/config/validate", put(validate))
        .route("/connectors", get(list_connectors).post(create))
        .route("/connectors/{name}", get(info).delete(delete))
        .route(
            "/connectors/{name}/config",
            get(config).put(put_config).patch(patch_config),
        )
        .route("/connectors/{name}/status", get(status))
        .route("/connectors/{name}/tasks", get(tasks))
        .route("/connectors/{name}/tasks/{task}/status", get(task_status))
        .route(
            "/connectors/{name}/tasks/{task}/restart",
            post(restart_task),
        )
        .route("/connectors/{name}/pause", put(pause))
        .route("/connectors/{name}/resume", put(resume))
        .route("/connectors/{name}/restart", post(restart))
        .route("/connectors/{name}/stop", put(stop))
        .route(
            "/connectors/{name}/offsets",
            get(offsets).patch(alter_offsets).delete(reset_offsets),
        )
        .route("/connectors/{name}/topics", get(active_topics))
        .route("/connectors/{name}/topics/reset", put(reset_topics))
        .route("/admin/loggers", get(list_loggers))
        .route("/admin/loggers/", get(list_loggers))
        .route("/admin/loggers/{logger}", get(get_logger).put(set_logger))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(json_only))
}

/// A JSON response.
fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `200` with a JSON body.
fn ok(body: &impl Serialize) -> Response {
    json_response(StatusCode::OK, body)
}

/// `201` with a JSON body and `Location: http://<host>/connectors/<name>`.
fn created(headers: &HeaderMap, name: &str, body: &impl Serialize) -> Response {
    let mut resp = json_response(StatusCode::CREATED, body);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let location = format!("http://{host}/connectors/{}", encode_path(name));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Percent-encodes a path segment.
fn encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request body as JSON, or 400.
fn parse_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let bytes =
        body.map_err(|e| ApiError::bad_request(format!("Cannot read the request body: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}")))
}

/// A JSON object of scalars as a flat string map (numbers and booleans as text, nulls left
/// out), or 400.
fn config_map(v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Connector config must be a JSON object"))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Connector config value of \"{k}\" must be a string, number or boolean"
                )));
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// Puts `name` into `config`, or 400 if it names another connector.
fn with_name(
    mut config: BTreeMap<String, String>,
    name: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    if let Some(n) = config.get("name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
        )));
    }
    config.insert("name".into(), name.to_string());
    Ok(config)
}

/// Query parameters (repeated keys kept, `+` and `%XX` decoded).
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = |c: u8| (c as char).to_digit(16);
                    match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                        (Some(h), Some(l)) => {
                            out.push((h * 16 + l) as u8);
                            i += 2;
                        }
                        _ => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A boolean query parameter (`true`/`false`, default false), or 400.
fn query_bool(pairs: &[(String, String)], key: &str) -> Result<bool, ApiError> {
    match pairs.iter().rev().find(|(k, _)| k == key) {
        None => Ok(false),
        Some((_, v)) => match v.to_ascii_lowercase().as_str() {
            "true" | "" => Ok(true),
            "false" => Ok(false),
            other => Err(ApiError::bad_request(format!(
                "Invalid value for query parameter {key}: {other}"
            ))),
        },
    }
}

/// A task id from the path, or 404 (as Kafka Connect's int path parameter).
fn task_id(s: &str) -> Result<usize, ApiError> {
    s.parse()
        .map_err(|_| ApiError::new(ApiErrorKind::NotFound, "HTTP 404 Not Found"))
}

/// `GET /`.
async fn root(State(w): State<Worker>) -> Response {
    ok(&ServerInfo {
        version: VERSION,
        commit: COMMIT,
        kafka_cluster_id: w.cluster_id().to_string(),
    })
}

/// `GET /health` (KIP-1017).
async fn health() -> Response {
    ok(&WorkerStatus::healthy())
}

/// `GET /connector-plugins[?connectorsOnly=false]`.
async fn list_plugins(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let connectors_only = match pairs.iter().rev().find(|(k, _)| k == "connectorsOnly") {
        Some((_, v)) => !v.eq_ignore_ascii_case("false"),
        None => true,
    };
    let mut list: Vec<_> = Plugin::ALL.iter().map(|p| p.info()).collect();
    if !connectors_only {
        list.extend(plugins::other_plugins());
    }
    Ok(ok(&list))
}

/// `GET /connector-plugins/{class}/config`.
async fn plugin_config(Path(plugin): Path<String>) -> Result<Response, ApiError> {
    let p = Plugin::lookup(&plugin)?;
    Ok(ok(&plugins::config_defs(p)))
}

/// `PUT /connector-plugins/{class}/config/validate`: 200 with `ConfigInfos`, whatever the
/// config's errors.
async fn validate(
    Path(plugin): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let p = Plugin::lookup(&plugin)?;
    let mut config = config_map(&parse_body(body)?)?;
    match config.get("connector.class") {
        Some(c) if Plugin::find(c) != Some(p) => {
            return Err(ApiError::bad_request(format!(
                "Included connector type {c} does not match request type {plugin}"
            )));
        }
        Some(_) => {}
        None => {
            config.insert("connector.class".into(), p.class().into());
        }
    }
    let v = TaskPlan::validate(p, &config);
    Ok(ok(&plugins::config_infos(p, &config, &v)))
}

/// `GET /connectors[?expand=status&expand=info]`.
async fn list_connectors(
    State(w): State<Worker>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let expand: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "expand")
        .map(|(_, v)| v.as_str())
        .collect();
    let names = w.names();
    if expand.is_empty() {
        return Ok(ok(&names));
    }
    let mut out: BTreeMap<String, ConnectorExpansion> = BTreeMap::new();
    for name in names {
        let mut entry = ConnectorExpansion::default();
        // A connector deleted meanwhile is left out.
        if expand.contains(&"status") {
            let Ok(status) = w.status(&name) else {
                continue;
            };
            entry.status = Some(status);
        }
        if expand.contains(&"info") {
            let Ok(info) = w.info(&name) else {
                continue;
            };
            entry.info = Some(info);
        }
        out.insert(name, entry);
    }
    Ok(ok(&out))
}

/// `POST /connectors`: `{"name","config"[,"initial_state"]}` → 201.
async fn create(
    State(w): State<Worker>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_body(body)?;
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if name.is_empty() {
        return Err(ApiError::bad_request("Connector name must not be empty"));
    }
    if name.contains('/') {
        return Err(ApiError::bad_request("Connector name must not contain '/'"));
    }
    let config = match body.get("config") {
        Some(c) => config_map(c)?,
        None => {
            return Err(ApiError::bad_request(
                "Connector config must be a JSON object",
            ));
        }
    };
    let config = with_name(config, name)?;
    let initial = match body.get("initial_state").filter(|v| !v.is_null()) {
        None => TargetState::Started,
        Some(v) => v
            .as_str()
            .and_then(TargetState::from_initial_state)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid initial state {v}; must be one of RUNNING, PAUSED, STOPPED"
                ))
            })?,
    };
    let info = w.create(name, config, initial).await?;
    Ok(created(&headers, name, &info))
}

/// `GET /connectors/{name}`.
async fn info(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(&w.info(&name)?))
}

/// `DELETE /connectors/{name}` → 204.
async fn delete(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    w.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /connectors/{name}/config`.
async fn config(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(&w.config(&name)?))
}

/// `PUT /connectors/{name}/config` → 201 created, 200 updated.
async fn put_config(
    State(w): State<Worker>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let config = with_name(config_map(&parse_body(body)?)?, &name)?;
    let (was_created, info) = w.put_config(&name, config).await?;
    Ok(if was_created {
        created(&headers, &name, &info)
    } else {
        ok(&info)
    })
}

/// `PATCH /connectors/{name}/config` → 200 with the patched connector's info.
async fn patch_config(
    State(w): State<Worker>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let patch = patch_map(&parse_body(body)?)?;
    Ok(ok(&w.patch_config(&name, patch).await?))
}

/// `GET /connectors/{name}/status`.
async fn status(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(&w.status(&name)?))
}

/// `GET /connectors/{name}/tasks`.
async fn tasks(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(&w.tasks(&name)?))
}

/// `GET /connectors/{name}/tasks/{id}/status`.
async fn task_status(
    State(w): State<Worker>,
    Path((name, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = task_id(&task)?;
    Ok(ok(&w.task_status(&name, id)?))
}

/// `POST /connectors/{name}/tasks/{id}/restart` → 204.
async fn restart_task(
    State(w): State<Worker>,
    Path((name, task)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = task_id(&task)?;
    w.restart_task(&name, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /connectors/{name}/pause` → 202.
async fn pause(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    w.set_target(&name, TargetState::Paused, false).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /connectors/{name}/resume` → 202.
async fn resume(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    w.set_target(&name, TargetState::Started, false).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `PUT /connectors/{name}/stop` → 204 once the tasks are down.
async fn stop(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    w.set_target(&name, TargetState::Stopped, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /connectors/{name}/restart[?includeTasks=&onlyFailed=]` → 204, or 202 + status.
async fn restart(
    State(w): State<Worker>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(q.as_deref());
    let include_tasks = query_bool(&pairs, "includeTasks")?;
    let only_failed = query_bool(&pairs, "onlyFailed")?;
    Ok(match w.restart(&name, include_tasks, only_failed).await? {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(status) => json_response(StatusCode::ACCEPTED, &status),
    })
}

/// `GET /connectors/{name}/offsets`.
async fn offsets(State(w): State<Worker>, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(ok(&w.offsets(&name).await?))
}

/// `PATCH /connectors/{name}/offsets`: `{"offsets":[{"partition","offset"}]}` → 200
/// `{"message"}`.
async fn alter_offsets(
    State(w): State<Worker>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let entries = offset_entries(&parse_body(body)?)?;
    let message = w.alter_offsets(&name, entries).await?;
    Ok(ok(&serde_json::json!({ "message": message })))
}

/// `DELETE /connectors/{name}/offsets` → 200 `{"message"}`.
async fn reset_offsets(
    State(w): State<Worker>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let message = w.reset_offsets(&name).await?;
    Ok(ok(&serde_json::json!({ "message": message })))
}

/// `415` for a body that says it is not JSON (Jersey's `@Consumes(application/json)`); a
/// request without `Content-Type` is read as JSON.
async fn json_only(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_string());
    if let Some(ct) = ct
        && !is_json(&ct)
    {
        return ApiError::new(
            ApiErrorKind::UnsupportedMediaType,
            "HTTP 415 Unsupported Media Type",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether a `Content-Type` is JSON (`application/json`, any parameters, any case) or a
/// wildcard that admits it.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/json" | "application/*" | "*/*"
    )
}

/// A config patch: scalars as text, `null` as "remove the key"; 400 for anything else.
fn patch_map(v: &Value) -> Result<BTreeMap<String, Option<String>>, ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("Connector config must be a JSON object"))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        let s = match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Connector config value of \"{k}\" must be a string, number, boolean or null"
                )));
            }
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// The `{"partition","offset"}` entries of an offsets request; 400 when there are none.
fn offset_entries(v: &Value) -> Result<Vec<OffsetEntry>, ApiError> {
    let none = || {
        ApiError::bad_request(
            "Partitions / offsets need to be provided for an alter offsets request",
        )
    };
    let list = match v.get("offsets") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) | Some(Value::Null) | None => return Err(none()),
        Some(_) => return Err(ApiError::bad_request("\"offsets\" must be a JSON array")),
    };
    let field = |e: &Value, k: &str| e.get(k).filter(|v| !v.is_null()).cloned();
    list.iter()
        .map(|e| {
            if !e.is_object() {
                return Err(ApiError::bad_request(
                    "Each entry of \"offsets\" must be a JSON object {\"partition\",\"offset\"}",
                ));
            }
            Ok((field(e, "partition"), field(e, "offset")))
        })
        .collect()
}

/// `GET /connectors/{name}/topics` → `{"<name>":{"topics":[…]}}`.
async fn active_topics(
    State(w): State<Worker>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let topics = w.active_topics(&name)?;
    let mut body = serde_json::Map::new();
    body.insert(name, serde_json::json!({ "topics": topics }));
    Ok(ok(&body))
}

/// `PUT /connectors/{name}/topics/reset` → 202.
async fn reset_topics(
    State(w): State<Worker>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    w.reset_topics(&name)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /admin/loggers`: every logger with a level, and `root`.
async fn list_loggers() -> Response {
    ok(&loggers::global().all())
}

/// `GET /admin/loggers/{logger}` → `{"level","last_modified"}`, or 404.
async fn get_logger(Path(name): Path<String>) -> Result<Response, ApiError> {
    loggers::global()
        .get(&name)
        .map(|l| ok(&l))
        .ok_or_else(|| ApiError::new(ApiErrorKind::NotFound, format!("Logger {name} not found.")))
}

/// `PUT /admin/loggers/{logger}[?scope=]` with `{"level"}`: 200 with the changed loggers, or
/// 204 for `scope=cluster` (this worker is the whole cluster); an unknown scope means
/// `worker`, as in Kafka Connect.
async fn set_logger(
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = parse_body(body)?;
    let level = match body.get("level") {
        None | Some(Value::Null) => {
            return Err(ApiError::bad_request(
                "Desired 'level' parameter was not specified in request.",
            ));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let pairs = query_pairs(q.as_deref());
    let scope = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.to_ascii_lowercase());
    let changed = loggers::global().set(&name, &level).map_err(|e| match e {
        LevelError::InvalidLevel(l) => {
            ApiError::new(ApiErrorKind::NotFound, format!("invalid log level '{l}'."))
        }
        LevelError::InvalidName(n) => ApiError::bad_request(format!(
            "Invalid logger name {n:?}: use a module path such as augur_connect or augur_postgres::source"
        )),
        LevelError::Apply(e) => ApiError::internal(format!("Failed to apply the log level: {e}")),
    })?;
    tracing::info!(logger = %name, level = %level.to_ascii_uppercase(), "log level changed");
    if scope.as_deref() == Some("cluster") {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(ok(&changed))
}

/// `404` as Kafka Connect's Jersey answers unknown paths.
async fn not_found() -> ApiError {
    ApiError::new(ApiErrorKind::NotFound, "HTTP 404 Not Found")
}

/// `405` as Kafka Connect's Jersey answers a wrong method.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ApiErrorKind::MethodNotAllowed,
        "HTTP 405 Method Not Allowed",
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn queries_keep_repeated_keys_and_decode() {
        let p = query_pairs(Some("expand=status&expand=info&x=a%2Fb+c&flag"));
        assert_eq!(p[0], ("expand".into(), "status".into()));
        assert_eq!(p[1], ("expand".into(), "info".into()));
        assert_eq!(p[2], ("x".into(), "a/b c".into()));
        assert!(query_bool(&p, "flag").unwrap());
        assert!(!query_bool(&p, "missing").unwrap());
        assert!(query_bool(&[("b".into(), "maybe".into())], "b").is_err());
    }

    #[test]
    fn configs_are_flat_string_maps() {
        let c = config_map(&json!({"a": "x", "b": 5, "c": true, "d": null})).unwrap();
        assert_eq!(c["b"], "5");
        assert_eq!(c["c"], "true");
        assert!(!c.contains_key("d"));
        assert!(config_map(&json!({"a": {"b": 1}})).is_err());
        assert!(with_name(c.clone(), "other").is_ok());
        let mut named = c;
        named.insert("name".into(), "one".into());
        assert_eq!(
            with_name(named, "two").unwrap_err().message(),
            "Connector name configuration (one) doesn't match connector name in the URL (two)"
        );
        assert_eq!(encode_path("a b/c"), "a%20b%2Fc");
    }
}
