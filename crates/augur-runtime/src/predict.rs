//! The prediction step shared by the embedded pipeline and the Kafka enrichment stage: find the
//! model's inputs among a row's columns (by name, ignoring case, or through an explicit
//! mapping), turn Connect values into model inputs, score rows in one synchronous batch, and
//! shape the result as the output column needs it.

use std::collections::HashMap;
use std::sync::Arc;

use augur_core::connect::{Field, Schema, SchemaType, Value};
use augur_model::Model;

/// The output column's type (`double` by default; an existing column keeps its own type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputType {
    /// `double`.
    #[default]
    Double,
    /// `float`.
    Float,
    /// `int32` (rounded).
    Int32,
    /// `int64` (rounded).
    Int64,
}

impl OutputType {
    /// Parses `double`, `float`, `int32`/`integer`/`int`, `int64`/`bigint`.
    pub fn parse(s: &str) -> Option<OutputType> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "double" | "float64" | "double precision" => OutputType::Double,
            "float" | "float32" | "real" => OutputType::Float,
            "int32" | "int" | "integer" => OutputType::Int32,
            "int64" | "bigint" | "long" => OutputType::Int64,
            _ => return None,
        })
    }

    fn schema_type(self) -> SchemaType {
        match self {
            OutputType::Double => SchemaType::Float64,
            OutputType::Float => SchemaType::Float32,
            OutputType::Int32 => SchemaType::Int32,
            OutputType::Int64 => SchemaType::Int64,
        }
    }
}

/// A model plus how its output is named and typed.
#[derive(Debug, Clone)]
pub struct Predictor {
    /// The local model (`None` when predictions come from a remote server).
    pub model: Option<Arc<Model>>,
    /// How predictions are labelled without a local model (`remote:<url>`).
    pub remote: Option<String>,
    /// The output column (default `suggestedprice`).
    pub output: String,
    /// Its type when the row does not have the column already.
    pub output_type: OutputType,
    /// Model input name (lower-cased) → column name, for columns named differently.
    pub mapping: HashMap<String, String>,
    /// Values that mean "not available" (Debezium's TOAST placeholder): never fed to the model.
    pub placeholders: Vec<String>,
}

/// Where each model input is in a row of one shape, and how the output column is added.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMap {
    /// Per model input, the row field index (`None`: the column is missing) and, for a
    /// `Decimal` column, its scale (the bytes are decoded into a number for the model).
    pub inputs: Vec<Option<(usize, Option<i32>)>>,
    /// The output column's index if the row has it, else `None` (it is appended).
    pub output_index: Option<usize>,
    /// The output column's schema.
    pub output_schema: Schema,
}

/// Why one row got no prediction (names the field; never contains the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredictError {
    /// The reason code recorded with the dead letter and counted in
    /// `augur_pipeline_rows_rejected_total{reason}`.
    pub code: RejectCode,
    /// The explanation.
    pub message: String,
}

/// Why a row got no price, as a stable code (documented in docs/run.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    /// An input is missing, mistyped, or fails one of the model's data checks.
    InvalidInput,
    /// An input is Debezium's "unchanged TOASTed value" placeholder and no stored value was
    /// found.
    UnavailableValue,
    /// The model could not be used (no local model, a remote server refused).
    ModelError,
    /// The output table refused the row (a constraint, a value its column cannot hold).
    SinkRefused,
}

impl RejectCode {
    /// The code's label.
    pub fn label(self) -> &'static str {
        match self {
            RejectCode::InvalidInput => "invalid_input",
            RejectCode::UnavailableValue => "unavailable_value",
            RejectCode::ModelError => "model_error",
            RejectCode::SinkRefused => "sink_refused",
        }
    }
}

impl PredictError {
    /// An error with `code`.
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        PredictError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PredictError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A Connect value as a model input. Strings stay text (the model parses numbers written as
/// text); decimals become numbers; nulls and placeholders are missing.
enum Input {
    Number(f64),
    Text(usize),
    Missing,
    Unavailable,
}

impl Predictor {
    /// A predictor writing `output` with the default settings.
    pub fn new(model: Arc<Model>, output: impl Into<String>) -> Self {
        Predictor {
            model: Some(model),
            remote: None,
            output: output.into(),
            output_type: OutputType::Double,
            mapping: HashMap::new(),
            placeholders: vec!["__debezium_unavailable_value".into()],
        }
    }

    /// A predictor without a local model: it shapes the output column; the scores come from a
    /// remote server (labelled `describe`).
    pub fn remote(describe: impl Into<String>, output: impl Into<String>) -> Self {
        Predictor {
            model: None,
            remote: Some(describe.into()),
            output: output.into(),
            output_type: OutputType::Double,
            mapping: HashMap::new(),
            placeholders: vec!["__debezium_unavailable_value".into()],
        }
    }

    /// The model tag (`name:version`, or `remote:<url>`).
    pub fn model_tag(&self) -> &str {
        match (&self.model, &self.remote) {
            (Some(m), _) => m.tag(),
            (None, Some(r)) => r,
            (None, None) => "none",
        }
    }

    /// The model's input fields (none without a local model).
    pub fn input_fields(&self) -> &[augur_model::InputField] {
        self.model.as_deref().map_or(&[], Model::input_fields)
    }

    /// Maps the model's inputs onto `fields`.
    pub fn feature_map(&self, fields: &[Field]) -> FeatureMap {
        let find = |name: &str| {
            fields
                .iter()
                .position(|f| f.name.eq_ignore_ascii_case(name))
        };
        let inputs = self
            .input_fields()
            .iter()
            .map(|inp| {
                let idx = match self.mapping.get(&inp.name.to_ascii_lowercase()) {
                    Some(col) => find(col),
                    None => find(&inp.name),
                }?;
                let s = &fields[idx].schema;
                let scale = (s.name.as_deref() == Some("org.apache.kafka.connect.data.Decimal"))
                    .then(|| {
                        s.parameter("scale")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0)
                    });
                Some((idx, scale))
            })
            .collect();
        let output_index = find(&self.output);
        let output_schema = match output_index {
            Some(i) => fields[i].schema.clone(),
            None => Schema::new(self.output_type.schema_type()).optional(true),
        };
        FeatureMap {
            inputs,
            output_index,
            output_schema,
        }
    }

    /// The fields of an output row: `fields`, plus the output column when it is new.
    pub fn output_fields(&self, fields: &[Field], map: &FeatureMap) -> Vec<Field> {
        let mut out = fields.to_vec();
        if map.output_index.is_none() {
            out.push(Field::new(self.output.clone(), map.output_schema.clone()));
        }
        out
    }

    /// Scores `rows` (each with the feature map of its shape) in one synchronous call. Run it
    /// off the async runtime.
    pub fn predict(&self, rows: &[(&FeatureMap, &[Value])]) -> Vec<Result<f64, PredictError>> {
        let Some(model) = self.model.as_deref() else {
            return rows
                .iter()
                .map(|_| Err(PredictError::new(RejectCode::ModelError, "no local model")))
                .collect();
        };
        let inputs = model.input_fields();
        let ni = inputs.len();
        // Decimal strings must outlive the borrowed model values.
        let mut texts: Vec<String> = Vec::new();
        let mut staged: Vec<Input> = Vec::with_capacity(rows.len() * ni);
        let mut results: Vec<Result<f64, PredictError>> = Vec::with_capacity(rows.len());
        let mut scored_rows = Vec::with_capacity(rows.len());
        for (r, (map, row)) in rows.iter().enumerate() {
            let mut problem = None;
            let start = staged.len();
            for (k, idx) in map.inputs.iter().enumerate() {
                let input = match idx {
                    None => Input::Missing,
                    Some((i, scale)) => self.to_input(&row[*i], *scale, &mut texts),
                };
                if matches!(input, Input::Unavailable) && problem.is_none() {
                    problem = Some(PredictError::new(
                        RejectCode::UnavailableValue,
                        format!(
                            "field {}: value not available (unchanged TOASTed column)",
                            inputs[k].name
                        ),
                    ));
                }
                staged.push(input);
            }
            match problem {
                Some(p) => {
                    staged.truncate(start);
                    results.push(Err(p));
                }
                None => {
                    scored_rows.push(r);
                    results.push(Ok(f64::NAN));
                }
            }
        }
        let values: Vec<augur_model::Value<'_>> = staged
            .iter()
            .map(|i| match i {
                Input::Number(n) => augur_model::Value::Number(*n),
                Input::Text(t) => augur_model::Value::Text(&texts[*t]),
                Input::Missing | Input::Unavailable => augur_model::Value::Missing,
            })
            .collect();
        let mut out = vec![f64::NAN; scored_rows.len()];
        match model.predict_batch(&values, &mut out) {
            Ok(errors) => {
                let mut errors = errors.into_iter().peekable();
                for (k, &r) in scored_rows.iter().enumerate() {
                    if errors.peek().is_some_and(|e| e.row == k) {
                        let e = errors.next().expect("peeked");
                        results[r] = Err(PredictError::new(
                            RejectCode::InvalidInput,
                            e.error.to_string(),
                        ));
                    } else {
                        results[r] = Ok(out[k]);
                    }
                }
            }
            Err(e) => {
                for &r in &scored_rows {
                    results[r] = Err(PredictError::new(
                        RejectCode::ModelError,
                        format!("model error: {e}"),
                    ));
                }
            }
        }
        results
    }

    fn to_input(&self, v: &Value, decimal_scale: Option<i32>, texts: &mut Vec<String>) -> Input {
        match v {
            Value::Null => Input::Missing,
            Value::String(s) => {
                if self.placeholders.iter().any(|p| p == s) {
                    Input::Unavailable
                } else {
                    texts.push(s.clone());
                    Input::Text(texts.len() - 1)
                }
            }
            Value::Bytes(b) => match decimal_scale {
                Some(scale) => {
                    match augur_postgres::sink::render::decimal_text(b, scale).parse::<f64>() {
                        Ok(n) => Input::Number(n),
                        Err(_) => Input::Missing,
                    }
                }
                None => Input::Missing,
            },
            Value::Struct(m) => match m.as_slice() {
                // VariableScaleDecimal {scale, value}.
                [Value::Int32(scale), Value::Bytes(b)] => {
                    match augur_postgres::sink::render::decimal_text(b, *scale).parse::<f64>() {
                        Ok(n) => Input::Number(n),
                        Err(_) => Input::Missing,
                    }
                }
                _ => Input::Missing,
            },
            other => match other.as_f64() {
                Some(n) => Input::Number(n),
                None => Input::Missing,
            },
        }
    }

    /// The output value for `prediction` under the output column's schema (rounded for
    /// integer columns).
    pub fn output_value(&self, map: &FeatureMap, prediction: f64) -> Value {
        match map.output_schema.ty {
            SchemaType::Int8 => Value::Int8(prediction.round() as i8),
            SchemaType::Int16 => Value::Int16(prediction.round() as i16),
            SchemaType::Int32 => Value::Int32(prediction.round() as i32),
            SchemaType::Int64 => Value::Int64(prediction.round() as i64),
            SchemaType::Float32 => Value::Float32(prediction as f32),
            SchemaType::String => Value::String(format!("{prediction:.2}")),
            _ => Value::Float64(prediction),
        }
    }
}

/// A row as the JSON object a remote model server receives: column names as keys, numbers as
/// numbers (decimals decoded), text as strings, nulls as null. `Err` when a value is Debezium's
/// "not available" placeholder (names the column).
pub fn row_json(
    p: &Predictor,
    fields: &[Field],
    row: &[Value],
) -> Result<serde_json::Map<String, serde_json::Value>, PredictError> {
    let mut out = serde_json::Map::with_capacity(fields.len());
    for (f, v) in fields.iter().zip(row) {
        let j = match v {
            Value::Null => serde_json::Value::Null,
            Value::Boolean(b) => serde_json::Value::Bool(*b),
            Value::String(s) => {
                if p.placeholders.iter().any(|ph| ph == s) {
                    return Err(PredictError::new(
                        RejectCode::UnavailableValue,
                        format!(
                            "field {}: value not available (unchanged TOASTed column)",
                            f.name
                        ),
                    ));
                }
                serde_json::Value::String(s.clone())
            }
            Value::Bytes(b)
                if f.schema.name.as_deref() == Some("org.apache.kafka.connect.data.Decimal") =>
            {
                let scale: i32 = f
                    .schema
                    .parameter("scale")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                augur_postgres::sink::render::decimal_text(b, scale)
                    .parse::<f64>()
                    .map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::Null)
            }
            Value::Struct(m) => match m.as_slice() {
                [Value::Int32(scale), Value::Bytes(b)] => {
                    augur_postgres::sink::render::decimal_text(b, *scale)
                        .parse::<f64>()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::Null)
                }
                _ => continue,
            },
            other => match other.as_f64() {
                Some(n) if n.fract() == 0.0 && n.abs() < 9e15 => serde_json::Value::from(n as i64),
                Some(n) => serde_json::Value::from(n),
                None => continue,
            },
        };
        out.insert(f.name.clone(), j);
    }
    Ok(out)
}
