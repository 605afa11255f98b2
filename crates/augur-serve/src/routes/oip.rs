//! Open Inference Protocol v2 (KServe v2, Triton, MLServer), REST.
//!
//! Each model input field is one tensor input named after the field, holding one element per
//! row (shape `[n]` or `[n, 1]`): numeric fields as `FP64` (any numeric datatype is accepted),
//! categorical fields as `BYTES` strings — MLServer's column ("pandas") layout. The output is
//! named after the model's target (`price`), `FP64`, shape `[n]`. Two more outputs come when
//! the request names them in `outputs`: `price_range` (`FP64`, `[n, 2]`: low and high, with
//! the nominal coverage in its `parameters.level`) and `contributions` (`FP64`, `[n, fields]`:
//! each input field's effect on the price, in the order `parameters.fields` lists, which sum
//! to the price minus `parameters.baseline`).
//!
//! ```json
//! {"id": "42", "inputs": [
//!   {"name": "model", "datatype": "BYTES", "shape": [1], "data": [" Fiesta"]},
//!   {"name": "year",  "datatype": "INT64", "shape": [1], "data": [2017]}, ...]}
//! → {"model_name": "ford-price", "model_version": "1", "id": "42",
//!    "outputs": [{"name": "price", "datatype": "FP64", "shape": [1], "data": [11187.29]}]}
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use augur_model::{FieldType, InputField};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{
    AppState, check_name, check_version, json_response, json_type, parse_json, predictions,
    read_body,
};
use crate::batcher::Row;
use crate::error::ApiError;
use crate::slot::Served;

/// The platform name reported in model metadata.
pub(crate) const PLATFORM: &str = "augur-gbdt";

/// The datatypes of the protocol.
const DATATYPES: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64", "BYTES",
];

/// `GET /v2`: server metadata.
pub(crate) async fn server_metadata() -> Response {
    super::json_body(
        StatusCode::OK,
        &json!({
            "name": "augur",
            "version": env!("CARGO_PKG_VERSION"),
            "extensions": [],
        }),
    )
}

/// `GET /v2/health/live`.
pub(crate) async fn live() -> Response {
    super::json_body(StatusCode::OK, &json!({ "live": true }))
}

/// `GET /v2/health/ready`: 200 once the model is loaded, 503 before (and while stopping).
pub(crate) async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let ready = super::health::is_ready(&state);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    super::json_body(status, &json!({ "ready": ready }))
}

/// The metadata document of the served model.
fn metadata(served: &Served) -> Value {
    let inputs: Vec<Value> = served
        .model()
        .input_fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "datatype": match f.kind { FieldType::Numeric => "FP64", FieldType::Categorical => "BYTES" },
                "shape": [-1],
            })
        })
        .collect();
    json!({
        "name": served.name(),
        "versions": [served.version().to_string()],
        "platform": PLATFORM,
        "inputs": inputs,
        "outputs": outputs_metadata(served),
    })
}

/// The outputs a model offers: the price, and its range and contributions when it has them.
fn outputs_metadata(served: &Served) -> Vec<Value> {
    let model = served.model();
    let mut outputs = vec![json!({ "name": served.output(), "datatype": "FP64", "shape": [-1] })];
    if model.meta().interval().is_some() {
        outputs.push(json!({ "name": RANGE, "datatype": "FP64", "shape": [-1, 2] }));
    }
    if model.explainable().is_ok() {
        let k = model.input_fields().len();
        outputs.push(json!({ "name": CONTRIBUTIONS, "datatype": "FP64", "shape": [-1, k] }));
    }
    outputs
}

/// The name of the price range output.
const RANGE: &str = "price_range";
/// The name of the contributions output.
const CONTRIBUTIONS: &str = "contributions";

/// An output a request can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The price.
    Price,
    /// The price range.
    Range,
    /// Each input field's effect on the price.
    Contributions,
}

/// `GET /v2/models/{name}`.
pub(crate) async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let served = state.served()?;
    check_name(&served, &name)?;
    Ok(json_response(
        &served,
        metadata(&served).to_string().into_bytes(),
    ))
}

/// `GET /v2/models/{name}/versions/{version}`.
pub(crate) async fn version_metadata(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let served = state.served()?;
    check_version(&served, &name, &version)?;
    Ok(json_response(
        &served,
        metadata(&served).to_string().into_bytes(),
    ))
}

/// The model-ready document.
fn ready_doc(served: &Served) -> Vec<u8> {
    json!({ "name": served.name(), "ready": true })
        .to_string()
        .into_bytes()
}

/// `GET /v2/models/{name}/ready`: 200 when that model is loaded, 404 for another name.
pub(crate) async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let served = state.served()?;
    check_name(&served, &name)?;
    Ok(json_response(&served, ready_doc(&served)))
}

/// `GET /v2/models/{name}/versions/{version}/ready`.
pub(crate) async fn version_ready(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let served = state.served()?;
    check_version(&served, &name, &version)?;
    Ok(json_response(&served, ready_doc(&served)))
}

/// Inference for `name`, and `version` when given.
async fn infer_latest(
    state: Arc<AppState>,
    name: String,
    version: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let served = state.served()?;
    match &version {
        Some(v) => check_version(&served, &name, v)?,
        None => check_name(&served, &name)?,
    }
    let incoming = state.batcher.incoming();
    let bytes = read_body(
        body,
        state.config.max_body_bytes,
        state.config.limits.body_timeout,
    )
    .await?;
    let request = parse_json(&bytes)?;
    let (id, outputs, rows) = parse_request(request, &served)?;
    let (prices, explained) = if outputs.contains(&Output::Contributions) {
        drop(incoming);
        let explained = super::explain::explain_rows(&state, &served, rows, true).await?;
        (explained.iter().map(|e| e.prediction).collect(), explained)
    } else {
        let results = super::infer(&state, &served, rows, incoming).await?;
        (predictions(results, true)?, Vec::new())
    };
    let id = id.unwrap_or_else(|| {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed).to_string()
    });
    let tensors: Vec<Value> = outputs
        .iter()
        .map(|o| output_tensor(*o, &served, &prices, &explained))
        .collect();
    let body = json!({
        "model_name": served.name(),
        "model_version": served.version().to_string(),
        "id": id,
        "outputs": tensors,
    });
    Ok(json_response(&served, body.to_string().into_bytes()))
}

/// One output tensor of a response (`explained` is filled when contributions were asked for).
fn output_tensor(
    output: Output,
    served: &Served,
    prices: &[f64],
    explained: &[augur_model::Explanation],
) -> Value {
    let n = prices.len();
    match output {
        Output::Price => {
            let data: Vec<f64> = prices.iter().map(|&p| super::round_cents(p)).collect();
            json!({ "name": served.output(), "datatype": "FP64", "shape": [n], "data": data })
        }
        Output::Range => {
            let iv = served
                .model()
                .meta()
                .interval()
                .expect("checked with the request");
            let data: Vec<f64> = prices
                .iter()
                .flat_map(|&p| {
                    let (lo, hi) = iv.range(p);
                    [super::round_cents(lo), super::round_cents(hi)]
                })
                .collect();
            json!({ "name": RANGE, "datatype": "FP64", "shape": [n, 2], "data": data,
                    "parameters": { "level": iv.level } })
        }
        Output::Contributions => {
            let fields: Vec<&str> = served
                .model()
                .input_fields()
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            let data: Vec<f64> = explained
                .iter()
                .flat_map(|e| e.contributions.iter().map(|c| super::round_cents(c.effect)))
                .collect();
            let baseline = explained.first().map(|e| super::round_cents(e.baseline));
            json!({ "name": CONTRIBUTIONS, "datatype": "FP64", "shape": [n, fields.len()],
                    "data": data,
                    "parameters": { "fields": fields.join(","), "baseline": baseline } })
        }
    }
}

/// `POST /v2/models/{name}/infer`.
pub(crate) async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    infer_latest(state, name, None, body).await
}

/// `POST /v2/models/{name}/versions/{version}/infer`.
pub(crate) async fn version_infer(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    infer_latest(state, name, Some(version), body).await
}

/// Flattens nested arrays (row-major) into `out`.
fn flatten(v: Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// A parsed inference request: its id, the outputs it asks for, and its rows (one JSON object
/// per row, keyed by field name).
type Request = (Option<String>, Vec<Output>, Vec<Row>);

/// Parses an inference request.
fn parse_request(request: Value, served: &Served) -> Result<Request, ApiError> {
    let Value::Object(mut request) = request else {
        return Err(ApiError::input(format!(
            "expected an inference request object, got {}",
            json_type(&request)
        )));
    };
    let id = take_id(&mut request)?;
    let outputs = take_outputs(&mut request, served)?;
    let inputs = take_inputs(&mut request)?;
    let mut rows: Option<Vec<Row>> = None;
    for (i, input) in inputs.into_iter().enumerate() {
        Tensor::parse(i, input, served)?.add_to(&mut rows)?;
    }
    Ok((id, outputs, rows.unwrap_or_default()))
}

/// Removes the request's optional `id`, which must be a string (or null).
fn take_id(request: &mut Map<String, Value>) -> Result<Option<String>, ApiError> {
    match request.remove("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::field(
            "id",
            format!("expected a string, got {}", json_type(&other)),
        )),
    }
}

/// Removes the request's optional `outputs` and returns them in order (the price alone when
/// none are named); each must be one the model offers ([`outputs_metadata`]).
fn take_outputs(
    request: &mut Map<String, Value>,
    served: &Served,
) -> Result<Vec<Output>, ApiError> {
    let Some(outputs) = request.remove("outputs") else {
        return Ok(vec![Output::Price]);
    };
    let Value::Array(outputs) = outputs else {
        return Err(ApiError::field("outputs", "expected an array"));
    };
    let offered = outputs_metadata(served);
    let mut wanted = Vec::with_capacity(outputs.len());
    for o in outputs {
        let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
        let output = match name {
            n if n == served.output() => Output::Price,
            RANGE => Output::Range,
            CONTRIBUTIONS => Output::Contributions,
            _ => Output::Price,
        };
        if !offered.iter().any(|m| m["name"] == name) {
            let names: Vec<&str> = offered.iter().filter_map(|m| m["name"].as_str()).collect();
            return Err(ApiError::field(
                "outputs",
                format!(
                    "{} offers the outputs {names:?}; {name:?} was requested",
                    served.tag()
                ),
            ));
        }
        if !wanted.contains(&output) {
            wanted.push(output);
        }
    }
    if wanted.is_empty() {
        wanted.push(Output::Price);
    }
    Ok(wanted)
}

/// Removes the request's `inputs`, which must be a non-empty array.
fn take_inputs(request: &mut Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    match request.remove("inputs") {
        Some(Value::Array(inputs)) if !inputs.is_empty() => Ok(inputs),
        Some(Value::Array(_)) => Err(ApiError::field(
            "inputs",
            "empty; send one input per model field",
        )),
        Some(other) => Err(ApiError::field(
            "inputs",
            format!("expected an array, got {}", json_type(&other)),
        )),
        None => Err(ApiError::field("inputs", "missing")),
    }
}

/// One input tensor, checked against the model: the field it feeds and one element per row.
struct Tensor<'m> {
    /// The tensor's name as sent (errors name it).
    name: String,
    /// The model input field it feeds.
    field: &'m InputField,
    /// Its elements, one per row, each of its datatype.
    data: Vec<Value>,
}

impl<'m> Tensor<'m> {
    /// Reads and checks `inputs[i]`: name, datatype, shape, data.
    fn parse(i: usize, input: Value, served: &'m Served) -> Result<Tensor<'m>, ApiError> {
        let Value::Object(mut input) = input else {
            return Err(ApiError::field(
                format!("inputs[{i}]"),
                "expected a tensor object",
            ));
        };
        let name = match input.remove("name") {
            Some(Value::String(s)) => s,
            _ => {
                return Err(ApiError::field(
                    format!("inputs[{i}].name"),
                    "missing or not a string",
                ));
            }
        };
        let field = input_field(served, &name)?;
        let datatype = take_datatype(&mut input, &name)?;
        let (shape, n) = take_shape(&mut input, &name)?;
        let data = take_data(&mut input, &name, &shape, n)?;
        check_elements(&name, &datatype, &data)?;
        Ok(Tensor { name, field, data })
    }

    /// Puts the elements into `rows` (created on the first tensor); every tensor must have
    /// as many elements as the first.
    fn add_to(self, rows: &mut Option<Vec<Row>>) -> Result<(), ApiError> {
        let n = self.data.len();
        let rows = rows.get_or_insert_with(|| vec![Map::new(); n]);
        if rows.len() != n {
            return Err(ApiError::field(
                self.name,
                format!("{n} rows, but an earlier input has {}", rows.len()),
            ));
        }
        for (row, v) in rows.iter_mut().zip(self.data) {
            row.insert(self.field.name.clone(), v);
        }
        Ok(())
    }
}

/// The model input field named `name` (ignoring ASCII case), or `400` listing the inputs.
fn input_field<'m>(served: &'m Served, name: &str) -> Result<&'m InputField, ApiError> {
    let model = served.model();
    model
        .field_index(name)
        .map(|f| &model.input_fields()[f])
        .ok_or_else(|| {
            let names: Vec<&str> = model
                .input_fields()
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            ApiError::field(
                name,
                format!(
                    "not an input of {}; its inputs are {}",
                    served.name(),
                    names.join(", ")
                ),
            )
        })
}

/// Removes the tensor's `datatype`, which must be one of the protocol's.
fn take_datatype(input: &mut Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match input.remove("datatype") {
        Some(Value::String(s)) if DATATYPES.contains(&s.as_str()) => Ok(s),
        Some(Value::String(s)) => Err(ApiError::field(name, format!("unknown datatype {s:?}"))),
        _ => Err(ApiError::field(name, "datatype missing or not a string")),
    }
}

/// Removes the tensor's `shape`, which must be `[rows]` or `[rows, 1]`; returns it and the
/// row count.
fn take_shape(input: &mut Map<String, Value>, name: &str) -> Result<(Vec<u64>, usize), ApiError> {
    let shape: Vec<u64> = match input.remove("shape") {
        Some(Value::Array(dims)) => dims
            .iter()
            .map(Value::as_u64)
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| {
                ApiError::field(name, "shape must be an array of non-negative integers")
            })?,
        _ => return Err(ApiError::field(name, "shape missing or not an array")),
    };
    let n = match shape.as_slice() {
        [n] | [n, 1] => *n as usize,
        _ => {
            return Err(ApiError::field(
                name,
                format!("shape {shape:?}: expected [rows] or [rows, 1] (one element per row)"),
            ));
        }
    };
    Ok((shape, n))
}

/// Removes the tensor's `data` (flattened), which must hold the `n` elements `shape` says.
fn take_data(
    input: &mut Map<String, Value>,
    name: &str,
    shape: &[u64],
    n: usize,
) -> Result<Vec<Value>, ApiError> {
    let mut data = Vec::with_capacity(n);
    match input.remove("data") {
        Some(v @ Value::Array(_)) => flatten(v, &mut data),
        _ => return Err(ApiError::field(name, "data missing or not an array")),
    }
    if data.len() != n {
        return Err(ApiError::field(
            name,
            format!(
                "shape {shape:?} needs {n} elements, data has {}",
                data.len()
            ),
        ));
    }
    Ok(data)
}

/// `400` for the first element that does not fit `datatype`.
fn check_elements(name: &str, datatype: &str, data: &[Value]) -> Result<(), ApiError> {
    for (r, v) in data.iter().enumerate() {
        let fits = match datatype {
            "BYTES" => v.is_string(),
            "BOOL" => v.is_boolean(),
            _ => v.is_number(),
        };
        if !fits {
            return Err(ApiError::field(
                name,
                format!("datatype {datatype} but element {r} is {}", json_type(v)),
            ));
        }
    }
    Ok(())
}
