//! API documentation: the OpenAPI 3.0 document at `/docs.json` (built from the served model's
//! input fields) and a human page at `/` — plain HTML and a little JavaScript, no build step —
//! that documents the endpoints and lets a person send a request and see the answer.

use std::sync::Arc;

use augur_model::FieldType;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{AppState, json_body};

/// The human page.
const INDEX_HTML: &str = include_str!("index.html");

/// `GET /`: the human page.
pub(crate) async fn index() -> Response {
    let mut resp = INDEX_HTML.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// The example car from the original service's documentation, keyed by field name.
fn example_value(field: &str, kind: FieldType) -> Value {
    match field.to_ascii_lowercase().as_str() {
        "model" => json!(" Fiesta"),
        "year" => json!(2017),
        "transmission" => json!("Automatic"),
        "mileage" => json!(15944),
        "fueltype" => json!("Petrol"),
        "tax" => json!(150),
        "mpg" => json!(57.7),
        "enginesize" => json!(1.0),
        _ => match kind {
            FieldType::Numeric => json!(1.0),
            FieldType::Categorical => json!("Other"),
        },
    }
}

/// `GET /docs.json`: the OpenAPI document for the served model (generic schemas before it is
/// loaded).
pub(crate) async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    json_body(StatusCode::OK, &document(&state))
}

/// Builds the OpenAPI document.
fn document(state: &AppState) -> Value {
    let served = state.slot.current();
    let (name, tag, output) = match &served {
        Some(s) => (
            s.name().to_string(),
            s.tag().to_string(),
            s.output().to_string(),
        ),
        None => (
            "MODEL".to_string(),
            "MODEL".to_string(),
            "prediction".to_string(),
        ),
    };
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut example = Map::new();
    if let Some(s) = &served {
        for f in s.model().input_fields() {
            let (ty, desc) = match f.kind {
                FieldType::Numeric => ("number", "A number (a numeric string is accepted too)."),
                FieldType::Categorical => (
                    "string",
                    "A category; surrounding spaces are trimmed, an unseen one counts as Other.",
                ),
            };
            properties.insert(f.name.clone(), json!({ "type": ty, "description": desc }));
            required.push(f.name.clone());
            example.insert(f.name.clone(), example_value(&f.name, f.kind));
        }
    }
    let row = json!({
        "type": "object",
        "description": "One car. Field names match ignoring ASCII case (Debezium's lower-cased \
                        names work); other keys are ignored.",
        "properties": properties,
        "required": required,
        "example": example,
    });
    let error = json!({
        "type": "object",
        "properties": {
            "error": { "type": "string", "description": "What went wrong." },
            "code": { "type": "string", "description": "invalid_json, invalid_input, body_too_large, not_found, not_ready, overloaded, latency_budget_exceeded, forbidden, internal." },
            "field": { "type": "string", "description": "The input field concerned, if any." },
            "problem": { "type": "string", "description": "What is wrong with it." },
            "row": { "type": "integer", "description": "The 0-based row, for a request with several rows." }
        },
        "required": ["error", "code"]
    });
    let errors = |extra: &[(&str, &str)]| {
        let mut r = Map::new();
        r.insert(
            "400".into(),
            json!({ "description": "Bad input: malformed JSON, a missing or mistyped field, a body over the size limit.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
        );
        r.insert(
            "503".into(),
            json!({ "description": "Model not loaded yet, queue full, or the latency budget exceeded.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
        );
        for (code, desc) in extra {
            r.insert(
                (*code).into(),
                json!({ "description": desc,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }),
            );
        }
        r
    };
    let model_header = json!({
        "x-augur-model": { "description": "The model version that answered, e.g. ford-price:2.", "schema": { "type": "string" } }
    });
    let mut predict_responses = errors(&[]);
    predict_responses.insert(
        "200".into(),
        json!({
            "description": "The predicted price (a bare number), or an array of prices for an array body.",
            "headers": model_header,
            "content": { "application/json": { "schema": { "oneOf": [
                { "type": "number" }, { "type": "array", "items": { "type": "number" } }
            ] }, "example": 11187.29 } }
        }),
    );
    let mut v2_responses = errors(&[("404", "No such model or version.")]);
    v2_responses.insert(
        "200".into(),
        json!({ "description": format!("Open Inference Protocol v2 response; output `{output}`, FP64, shape [rows]."),
                "headers": model_header,
                "content": { "application/json": { "schema": { "type": "object" } } } }),
    );
    let mut v1_responses = errors(&[("404", "No such model.")]);
    v1_responses.insert(
        "200".into(),
        json!({ "description": "`{\"predictions\": [...]}`", "headers": model_header,
                "content": { "application/json": { "schema": { "type": "object",
                  "properties": { "predictions": { "type": "array", "items": { "type": "number" } } } } } } }),
    );
    let v2_inputs: Vec<Value> = served
        .as_ref()
        .map(|s| {
            s.model()
                .input_fields()
                .iter()
                .map(|f| {
                    let (dt, v) = match f.kind {
                        FieldType::Numeric => ("FP64", example_value(&f.name, f.kind)),
                        FieldType::Categorical => ("BYTES", example_value(&f.name, f.kind)),
                    };
                    json!({ "name": f.name, "datatype": dt, "shape": [1], "data": [v] })
                })
                .collect()
        })
        .unwrap_or_default();
    let simple = |desc: &str| json!({ "200": { "description": desc } });
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": format!("augur model server — {tag}"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "BentoML-compatible POST /predict, Open Inference Protocol v2 and KServe v1 \
                            for augur's price model. Concurrent requests are micro-batched; every \
                            prediction response names the model version in the x-augur-model header."
        },
        "paths": {
            "/predict": { "post": {
                "summary": "Predict the price of one car, or of an array of cars (BentoML contract).",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "oneOf": [
                    { "$ref": "#/components/schemas/Car" },
                    { "type": "array", "items": { "$ref": "#/components/schemas/Car" } }
                ] }, "example": example } } },
                "responses": predict_responses
            } },
            format!("/v2/models/{name}/infer"): { "post": {
                "summary": "Open Inference Protocol v2 inference: one input tensor per field, one element per row.",
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "type": "object" }, "example": { "inputs": v2_inputs } } } },
                "responses": v2_responses
            } },
            format!("/v2/models/{name}/versions/{{version}}/infer"): { "post": {
                "summary": "The same, for a given version (404 unless it is the one served).",
                "parameters": [{ "name": "version", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "As /v2/models/{name}/infer." } }
            } },
            format!("/v1/models/{name}:predict"): { "post": {
                "summary": "KServe v1: `{\"instances\": [car, ...]}` (objects, or arrays in input order).",
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "type": "object" }, "example": { "instances": [example] } } } },
                "responses": v1_responses
            } },
            "/v2": { "get": { "summary": "Server metadata.", "responses": simple("`{name, version, extensions}`") } },
            "/v2/health/live": { "get": { "summary": "Liveness.", "responses": simple("`{\"live\": true}`") } },
            "/v2/health/ready": { "get": { "summary": "Readiness (503 until the model is loaded).", "responses": simple("`{\"ready\": true}`") } },
            format!("/v2/models/{name}"): { "get": { "summary": "Model metadata: inputs, outputs, versions.", "responses": simple("metadata") } },
            format!("/v2/models/{name}/ready"): { "get": { "summary": "Model readiness.", "responses": simple("`{name, ready}`") } },
            "/v1/models": { "get": { "summary": "KServe v1 model list.", "responses": simple("`{\"models\": [...]}`") } },
            format!("/v1/models/{name}"): { "get": { "summary": "KServe v1 model status.", "responses": simple("`{name, ready}`") } },
            "/livez": { "get": { "summary": "Liveness (also /healthz).", "responses": simple("ok") } },
            "/healthz": { "get": { "summary": "Liveness.", "responses": simple("ok") } },
            "/readyz": { "get": { "summary": "Readiness: 503 until the model is loaded and while shutting down.", "responses": simple("ready") } },
            "/metrics": { "get": { "summary": "Prometheus metrics (text format 0.0.4).", "responses": simple("metrics") } },
            "/admin/model": { "get": { "summary": "The served model version (admin: loopback or bearer token).", "responses": simple("`{model, name, version, ...}`") } },
            "/admin/promote": { "post": {
                "summary": "Serve another version without a restart; in-flight requests finish on the old one.",
                "requestBody": { "required": false, "content": { "application/json": {
                    "schema": { "type": "object", "properties": { "tag": { "type": "string" } } },
                    "example": { "tag": format!("{name}:latest") } } } },
                "responses": simple("`{previous, current, changed}`")
            } }
        },
        "components": { "schemas": { "Car": row, "Error": error } }
    })
}
