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
use crate::slot::Served;

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
    document_for(state.slot.current().as_deref())
}

/// Builds the OpenAPI document for `served` (generic schemas when no model is loaded).
fn document_for(served: Option<&Served>) -> Value {
    let names = Names::of(served);
    let car = CarSchema::of(served);
    let mut paths = Map::new();
    insert_inference_paths(&mut paths, &names, &car, served);
    insert_metadata_paths(&mut paths, &names.name);
    insert_admin_paths(&mut paths, &names.name);
    json!({
        "openapi": "3.0.3",
        "info": info(&names.tag),
        "paths": paths,
        "components": { "schemas": { "Car": car.schema(), "Error": error_schema() } }
    })
}

/// The served model's name, tag and output name (placeholders before one is loaded).
struct Names {
    /// The model's name, e.g. `ford-price`.
    name: String,
    /// `name:version`.
    tag: String,
    /// The output's name, e.g. `price`.
    output: String,
}

impl Names {
    /// The names of `served`, or `MODEL`/`prediction` placeholders.
    fn of(served: Option<&Served>) -> Names {
        match served {
            Some(s) => Names {
                name: s.name().to_string(),
                tag: s.tag().to_string(),
                output: s.output().to_string(),
            },
            None => Names {
                name: "MODEL".to_string(),
                tag: "MODEL".to_string(),
                output: "prediction".to_string(),
            },
        }
    }
}

/// The parts of the `Car` schema built from the model's input fields.
struct CarSchema {
    /// Each field's type and description.
    properties: Map<String, Value>,
    /// Every field's name.
    required: Vec<String>,
    /// The example car.
    example: Map<String, Value>,
}

impl CarSchema {
    /// The schema parts for `served`'s input fields (empty before a model is loaded).
    fn of(served: Option<&Served>) -> CarSchema {
        let mut car = CarSchema {
            properties: Map::new(),
            required: Vec::new(),
            example: Map::new(),
        };
        if let Some(s) = served {
            for f in s.model().input_fields() {
                let (ty, desc) = match f.kind {
                    FieldType::Numeric => {
                        ("number", "A number (a numeric string is accepted too).")
                    }
                    FieldType::Categorical => (
                        "string",
                        "A category; surrounding spaces are trimmed, an unseen one counts as Other.",
                    ),
                };
                car.properties
                    .insert(f.name.clone(), json!({ "type": ty, "description": desc }));
                car.required.push(f.name.clone());
                car.example
                    .insert(f.name.clone(), example_value(&f.name, f.kind));
            }
        }
        car
    }

    /// The `Car` component schema.
    fn schema(&self) -> Value {
        json!({
            "type": "object",
            "description": "One car. Field names match ignoring ASCII case (Debezium's lower-cased \
                            names work); other keys are ignored.",
            "properties": self.properties,
            "required": self.required,
            "example": self.example,
        })
    }
}

/// The `Error` component schema.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "error": { "type": "string", "description": "What went wrong." },
            "code": { "type": "string", "description": "invalid_json, invalid_input, body_too_large, not_found, not_ready, overloaded, latency_budget_exceeded, forbidden, internal." },
            "field": { "type": "string", "description": "The input field concerned, if any." },
            "problem": { "type": "string", "description": "What is wrong with it." },
            "row": { "type": "integer", "description": "The 0-based row, for a request with several rows." }
        },
        "required": ["error", "code"]
    })
}

/// The document's `info` object.
fn info(tag: &str) -> Value {
    json!({
        "title": format!("augur model server — {tag}"),
        "version": env!("CARGO_PKG_VERSION"),
        "description": "BentoML-compatible POST /predict, Open Inference Protocol v2 and KServe v1 \
                        for augur's price model. Concurrent requests are micro-batched; every \
                        prediction response names the model version in the x-augur-model header."
    })
}

/// A response whose body is the `Error` schema.
fn error_response(desc: &str) -> Value {
    json!({ "description": desc,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The `400` and `503` responses every inference endpoint has, then `extra` ones.
fn error_responses(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert(
        "400".into(),
        error_response(
            "Bad input: malformed JSON, a missing or mistyped field, a body over the size limit.",
        ),
    );
    r.insert(
        "503".into(),
        error_response("Model not loaded yet, queue full, or the latency budget exceeded."),
    );
    for (code, desc) in extra {
        r.insert((*code).into(), error_response(desc));
    }
    r
}

/// The `x-augur-model` response header.
fn model_header() -> Value {
    json!({
        "x-augur-model": { "description": "The model version that answered, e.g. ford-price:2.", "schema": { "type": "string" } }
    })
}

/// The responses of `POST /predict`.
fn predict_responses() -> Map<String, Value> {
    let mut r = error_responses(&[]);
    r.insert(
        "200".into(),
        json!({
            "description": "The predicted price (a bare number), or an array of prices for an array body.",
            "headers": model_header(),
            "content": { "application/json": { "schema": { "oneOf": [
                { "type": "number" }, { "type": "array", "items": { "type": "number" } }
            ] }, "example": 11187.29 } }
        }),
    );
    r
}

/// The responses of Open Inference Protocol v2 inference.
fn v2_responses(output: &str) -> Map<String, Value> {
    let mut r = error_responses(&[("404", "No such model or version.")]);
    r.insert(
        "200".into(),
        json!({ "description": format!("Open Inference Protocol v2 response; output `{output}`, FP64, shape [rows]."),
                "headers": model_header(),
                "content": { "application/json": { "schema": { "type": "object" } } } }),
    );
    r
}

/// The responses of KServe v1 inference.
fn v1_responses() -> Map<String, Value> {
    let mut r = error_responses(&[("404", "No such model.")]);
    r.insert(
        "200".into(),
        json!({ "description": "`{\"predictions\": [...]}`", "headers": model_header(),
                "content": { "application/json": { "schema": { "type": "object",
                  "properties": { "predictions": { "type": "array", "items": { "type": "number" } } } } } } }),
    );
    r
}

/// The example Open Inference Protocol v2 input tensors (none before a model is loaded).
fn v2_example_inputs(served: Option<&Served>) -> Vec<Value> {
    served
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
        .unwrap_or_default()
}

/// A `200`-only response map with `desc`.
fn simple(desc: &str) -> Value {
    json!({ "200": { "description": desc } })
}

/// A `GET` path item with `summary` and a `200` described by `desc`.
fn simple_get(summary: &str, desc: &str) -> Value {
    json!({ "get": { "summary": summary, "responses": simple(desc) } })
}

/// Adds the inference paths: BentoML, Open Inference Protocol v2 and KServe v1.
fn insert_inference_paths(
    paths: &mut Map<String, Value>,
    names: &Names,
    car: &CarSchema,
    served: Option<&Served>,
) {
    let name = &names.name;
    let example = &car.example;
    paths.insert(
        "/predict".into(),
        json!({ "post": {
            "summary": "Predict the price of one car, or of an array of cars (BentoML contract).",
            "parameters": [
                { "name": "range", "in": "query", "required": false, "schema": { "type": "boolean" },
                  "description": "answer objects with the price and its calibrated range" },
                { "name": "explain", "in": "query", "required": false, "schema": { "type": "boolean" },
                  "description": "also the baseline and each field's effect on the price (at most 1000 rows)" }
            ],
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "oneOf": [
                { "$ref": "#/components/schemas/Car" },
                { "type": "array", "items": { "$ref": "#/components/schemas/Car" } }
            ] }, "example": example } } },
            "responses": predict_responses()
        } }),
    );
    paths.insert(
        format!("/v2/models/{name}/infer"),
        json!({ "post": {
            "summary": "Open Inference Protocol v2 inference: one input tensor per field, one element per row.",
            "requestBody": { "required": true, "content": { "application/json": {
                "schema": { "type": "object" }, "example": { "inputs": v2_example_inputs(served) } } } },
            "responses": v2_responses(&names.output)
        } }),
    );
    paths.insert(
        format!("/v2/models/{name}/versions/{{version}}/infer"),
        json!({ "post": {
            "summary": "The same, for a given version (404 unless it is the one served).",
            "parameters": [{ "name": "version", "in": "path", "required": true, "schema": { "type": "string" } }],
            "responses": { "200": { "description": "As /v2/models/{name}/infer." } }
        } }),
    );
    paths.insert(
        format!("/v1/models/{name}:predict"),
        json!({ "post": {
            "summary": "KServe v1: `{\"instances\": [car, ...]}` (objects, or arrays in input order).",
            "requestBody": { "required": true, "content": { "application/json": {
                "schema": { "type": "object" }, "example": { "instances": [example] } } } },
            "responses": v1_responses()
        } }),
    );
    paths.insert(
        format!("/v1/models/{name}:explain"),
        json!({ "post": {
            "summary": "KServe v1 explain: the same body; `{\"predictions\": [...], \"explanations\": [...]}` with each row's range, baseline and field contributions.",
            "requestBody": { "required": true, "content": { "application/json": {
                "schema": { "type": "object" }, "example": { "instances": [example] } } } },
            "responses": { "200": { "description": "`{predictions, explanations}`" } }
        } }),
    );
}

/// Adds the metadata, health and metrics paths.
fn insert_metadata_paths(paths: &mut Map<String, Value>, name: &str) {
    let gets: [(String, &str, &str); 11] = [
        (
            "/v2".into(),
            "Server metadata.",
            "`{name, version, extensions}`",
        ),
        ("/v2/health/live".into(), "Liveness.", "`{\"live\": true}`"),
        (
            "/v2/health/ready".into(),
            "Readiness (503 until the model is loaded).",
            "`{\"ready\": true}`",
        ),
        (
            format!("/v2/models/{name}"),
            "Model metadata: inputs, outputs, versions.",
            "metadata",
        ),
        (
            format!("/v2/models/{name}/ready"),
            "Model readiness.",
            "`{name, ready}`",
        ),
        (
            "/v1/models".into(),
            "KServe v1 model list.",
            "`{\"models\": [...]}`",
        ),
        (
            format!("/v1/models/{name}"),
            "KServe v1 model status.",
            "`{name, ready}`",
        ),
        ("/livez".into(), "Liveness (also /healthz).", "ok"),
        ("/healthz".into(), "Liveness.", "ok"),
        (
            "/readyz".into(),
            "Readiness: 503 until the model is loaded and while shutting down.",
            "ready",
        ),
        (
            "/metrics".into(),
            "Prometheus metrics (text format 0.0.4).",
            "metrics",
        ),
    ];
    for (path, summary, desc) in gets {
        paths.insert(path, simple_get(summary, desc));
    }
}

/// Adds the admin paths.
fn insert_admin_paths(paths: &mut Map<String, Value>, name: &str) {
    paths.insert(
        "/admin/model".into(),
        simple_get(
            "The served model version (admin: loopback or bearer token).",
            "`{model, name, version, ...}`",
        ),
    );
    paths.insert(
        "/admin/promote".into(),
        json!({ "post": {
            "summary": "Serve another version without a restart; in-flight requests finish on the old one.",
            "requestBody": { "required": false, "content": { "application/json": {
                "schema": { "type": "object", "properties": {
                    "tag": { "type": "string" },
                    "force": { "type": "boolean", "description": "promote even if its cross-validated MAE is worse (other inputs are always refused)" } } },
                "example": { "tag": format!("{name}:latest") } } } },
            "responses": {
                "200": { "description": "`{previous, current, changed}`" },
                "409": { "description": "refused by the promotion checks; `error` says why" } }
        } }),
    );
}
