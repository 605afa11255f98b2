//! A loaded model: metadata, the fitted feature pipeline and the forest, with the predict calls.
//!
//! A [`Model`] is immutable, `Send + Sync`, and meant to be shared behind an `Arc`. Rows come in
//! as [`Value`]s in [`Model::input_fields`] order (or as JSON objects); a row whose fields are
//! missing or mistyped gets a [`FieldError`] naming the field while the other rows of the batch
//! are still predicted. An unseen category is not an error: it is scored as "Other".

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checks::InputChecks;
use crate::data::DataReport;
use crate::error::{FieldError, FieldProblem, ModelError, RowError};
use crate::features::{FeaturePipeline, FeatureSpec, InputField, PipelineSpec, Value};
use crate::forest::{Forest, ForestArrays};
use crate::gbdt::TrainParams;
use crate::interval::PriceInterval;
use crate::train::{CvReport, Metrics, Trained};

/// The `format` field of every model file.
pub const FORMAT: &str = "augur-model";
/// The current model file format version.
pub const FORMAT_VERSION: u32 = 1;

/// Where a model came from.
#[allow(clippy::large_enum_variant)] // built once per model; boxing buys nothing
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// Trained by augur.
    Trained {
        /// The training data file as given on the command line.
        data_file: String,
        /// SHA-256 of the training data file.
        data_sha256: String,
        /// What the data checks found.
        data_report: DataReport,
        /// The feature spec (column mapping, encodings, checks).
        spec: FeatureSpec,
        /// Trainer hyper-parameters.
        params: TrainParams,
        /// Cross-validation results (`None` when skipped).
        cv: Option<CvReport>,
        /// The price range learned from the out-of-fold rows (`None` without cross-validation).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval: Option<PriceInterval>,
        /// Metrics on the training rows themselves (optimistic).
        train_metrics: Metrics,
        /// Wall-clock seconds the training took.
        train_seconds: f64,
    },
    /// Imported from an XGBoost `save_model` JSON file.
    Xgboost {
        /// The file name it was imported from.
        file: String,
        /// SHA-256 of that file.
        file_sha256: String,
        /// The XGBoost objective (e.g. `reg:squarederror`).
        objective: String,
        /// The XGBoost version that wrote it.
        xgboost_version: String,
    },
}

/// Everything a model version records besides its trees and features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// The model name (the part of the tag before `:`).
    pub name: String,
    /// The version in its store; 0 for a model not saved in a store yet.
    pub version: u64,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// The augur version that created it.
    pub augur_version: String,
    /// Where it came from, with its training data hash, spec and metrics.
    pub source: ModelSource,
}

impl ModelMeta {
    /// The cross-validated metrics, if the model was trained with cross-validation.
    pub fn cv(&self) -> Option<&CvReport> {
        match &self.source {
            ModelSource::Trained { cv, .. } => cv.as_ref(),
            ModelSource::Xgboost { .. } => None,
        }
    }

    /// The calibrated price range, if the model was trained with cross-validation.
    pub fn interval(&self) -> Option<&PriceInterval> {
        match &self.source {
            ModelSource::Trained { interval, .. } => interval.as_ref(),
            ModelSource::Xgboost { .. } => None,
        }
    }
}

/// The on-disk form of a model: one JSON document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelFile {
    /// Always [`FORMAT`].
    pub(crate) format: String,
    /// [`FORMAT_VERSION`] when written.
    pub(crate) format_version: u32,
    /// Metadata.
    pub(crate) meta: ModelMeta,
    /// The fitted feature pipeline.
    pub(crate) features: PipelineSpec,
    /// The trees.
    pub(crate) forest: ForestArrays,
}

/// A loaded, validated model.
#[derive(Debug, Clone)]
pub struct Model {
    /// `name:version`.
    tag: String,
    /// Metadata.
    meta: ModelMeta,
    /// The fitted pipeline.
    pipeline: FeaturePipeline,
    /// The trees.
    forest: Forest,
    /// The recorded data checks on the inputs, applied to every row priced.
    checks: InputChecks,
}

/// The largest feature count scored with a stack buffer in [`Model::predict_row`].
const STACK_FEATURES: usize = 64;

impl Model {
    /// Assembles a model, checking that the pipeline and the forest agree on the features.
    pub fn new(
        meta: ModelMeta,
        pipeline: FeaturePipeline,
        forest: Forest,
    ) -> Result<Model, ModelError> {
        if pipeline.num_columns() != forest.num_features() {
            return Err(ModelError::InvalidModel(format!(
                "the feature spec makes {} columns but the trees read {}",
                pipeline.num_columns(),
                forest.num_features()
            )));
        }
        check_name(&meta.name)?;
        if let Some(iv) = meta.interval() {
            iv.validate().map_err(ModelError::InvalidModel)?;
        }
        let tag = format!("{}:{}", meta.name, meta.version);
        let checks = match &meta.source {
            ModelSource::Trained { spec, .. } => InputChecks::bind(&spec.checks, pipeline.inputs()),
            ModelSource::Xgboost { .. } => InputChecks::default(),
        };
        Ok(Model {
            tag,
            meta,
            pipeline,
            forest,
            checks,
        })
    }

    /// A model from a training result (version 0 until saved in a store).
    pub fn from_trained(
        name: &str,
        trained: Trained,
        spec: FeatureSpec,
        params: TrainParams,
        data_file: &str,
        data_sha256: &str,
        data_report: DataReport,
    ) -> Result<Model, ModelError> {
        let meta = ModelMeta {
            name: name.to_string(),
            version: 0,
            created_at: crate::time::now_rfc3339(),
            augur_version: env!("CARGO_PKG_VERSION").to_string(),
            source: ModelSource::Trained {
                data_file: data_file.to_string(),
                data_sha256: data_sha256.to_string(),
                data_report,
                spec,
                params,
                cv: trained.cv,
                interval: trained.interval,
                train_metrics: trained.train_metrics,
                train_seconds: trained.seconds,
            },
        };
        Model::new(meta, trained.pipeline, trained.forest)
    }

    /// A model from an XGBoost `save_model` JSON file and the feature spec that makes its
    /// input columns (see [`crate::xgboost`]).
    pub fn from_xgboost(
        name: &str,
        xgboost_json: &[u8],
        file_name: &str,
        features: PipelineSpec,
    ) -> Result<Model, ModelError> {
        let imported = crate::xgboost::parse(xgboost_json)?;
        let pipeline = FeaturePipeline::new(features)?;
        if imported.forest.num_features != pipeline.num_columns() {
            return Err(ModelError::InvalidModel(format!(
                "the xgboost model reads {} features but the feature spec makes {} columns ({})",
                imported.forest.num_features,
                pipeline.num_columns(),
                pipeline.column_names().join(", ")
            )));
        }
        let forest = Forest::from_arrays(imported.forest)?;
        let meta = ModelMeta {
            name: name.to_string(),
            version: 0,
            created_at: crate::time::now_rfc3339(),
            augur_version: env!("CARGO_PKG_VERSION").to_string(),
            source: ModelSource::Xgboost {
                file: file_name.to_string(),
                file_sha256: crate::sha256::hex(xgboost_json),
                objective: imported.objective,
                xgboost_version: imported.version,
            },
        };
        Model::new(meta, pipeline, forest)
    }

    /// Parses a model file's bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Model, ModelError> {
        let file: ModelFile =
            serde_json::from_slice(bytes).map_err(|e| ModelError::json("model file", e))?;
        if file.format != FORMAT {
            return Err(ModelError::InvalidModel(format!(
                "not an augur model (format {:?})",
                file.format
            )));
        }
        if file.format_version > FORMAT_VERSION {
            return Err(ModelError::InvalidModel(format!(
                "format version {} is newer than this augur understands ({FORMAT_VERSION})",
                file.format_version
            )));
        }
        let pipeline = FeaturePipeline::new(file.features)?;
        let forest = Forest::from_arrays(file.forest)?;
        Model::new(file.meta, pipeline, forest)
    }

    /// Reads a model file (a store's `model.json`, an export, or the shipped default model).
    pub fn load_file(path: &Path) -> Result<Model, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io("reading", path, e))?;
        Model::from_json(&bytes)
    }

    /// The model file's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let file = ModelFile {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            meta: self.meta.clone(),
            features: self.pipeline.spec().clone(),
            forest: self.forest.arrays().clone(),
        };
        serde_json::to_vec(&file).expect("model serializes")
    }

    /// The same model under another name and version (used by the store).
    pub(crate) fn with_tag(mut self, name: &str, version: u64) -> Model {
        self.meta.name = name.to_string();
        self.meta.version = version;
        self.tag = format!("{name}:{version}");
        self
    }

    /// `name:version`, e.g. `ford-price:3`.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// How many of a row's categorical values (in input order) the model has never seen.
    pub fn unseen_categories(&self, values: &[Value<'_>]) -> usize {
        self.pipeline.unseen_categories(values)
    }

    /// The metadata.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The calibrated price range around a prediction of this model (`None` for a model without
    /// one: imported, or trained without cross-validation).
    pub fn range(&self, prediction: f64) -> Option<(f64, f64)> {
        self.meta.interval().map(|iv| iv.range(prediction))
    }

    /// The fitted feature pipeline.
    pub fn pipeline(&self) -> &FeaturePipeline {
        &self.pipeline
    }

    /// The trees.
    pub fn forest(&self) -> &Forest {
        &self.forest
    }

    /// The input fields, in the order [`Model::predict_row`] and [`Model::predict_batch`] take
    /// values.
    pub fn input_fields(&self) -> &[InputField] {
        self.pipeline.inputs()
    }

    /// The position of an input field by name, ignoring ASCII case (Debezium's `enginesize`
    /// finds `engineSize`).
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.pipeline.input_index(name)
    }

    /// Predicts one row given in [`Model::input_fields`] order.
    ///
    /// # Panics
    /// If `values.len()` differs from the number of input fields.
    pub fn predict_row(&self, values: &[Value<'_>]) -> Result<f64, FieldError> {
        assert_eq!(
            values.len(),
            self.input_fields().len(),
            "one value per input field"
        );
        let nc = self.pipeline.num_columns();
        let mut stack = [0.0f32; STACK_FEATURES];
        let mut heap = Vec::new();
        let x = if nc <= STACK_FEATURES {
            &mut stack[..nc]
        } else {
            heap.resize(nc, 0.0);
            &mut heap[..]
        };
        self.features(values, x)?;
        Ok(self.pipeline.finish(self.forest.predict_row(x)))
    }

    /// Checks one row's inputs (the recorded data checks) and turns them into features.
    pub(crate) fn features(&self, values: &[Value<'_>], x: &mut [f32]) -> Result<(), FieldError> {
        self.checks
            .check(self.input_fields(), values, crate::time::current_year())?;
        self.pipeline.transform(values, x)
    }

    /// Predicts many rows in one call. `rows` holds the rows one after another, each with one
    /// value per input field; `out` gets one prediction per row. Rows with a bad field get
    /// `NaN` in `out` and a [`RowError`] in the returned list (in row order); the other rows
    /// are predicted normally.
    pub fn predict_batch(
        &self,
        rows: &[Value<'_>],
        out: &mut [f64],
    ) -> Result<Vec<RowError>, ModelError> {
        let ni = self.input_fields().len();
        if rows.len() != out.len() * ni {
            return Err(ModelError::BatchShape(format!(
                "{} values for {} rows of {ni} fields",
                rows.len(),
                out.len()
            )));
        }
        let nc = self.pipeline.num_columns();
        let mut x = vec![0.0f32; out.len() * nc];
        let mut ok = Vec::with_capacity(out.len());
        let mut errors = Vec::new();
        let mut w = 0;
        let year = crate::time::current_year();
        for (r, values) in rows.chunks(ni.max(1)).take(out.len()).enumerate() {
            let checked = self.checks.check(self.input_fields(), values, year);
            match checked.and_then(|()| {
                self.pipeline
                    .transform(values, &mut x[w * nc..(w + 1) * nc])
            }) {
                Ok(()) => {
                    ok.push(r);
                    w += 1;
                }
                Err(error) => errors.push(RowError { row: r, error }),
            }
        }
        let mut scores = vec![0.0f32; w];
        self.forest.predict_batch(&x[..w * nc], &mut scores);
        out.fill(f64::NAN);
        for (&r, s) in ok.iter().zip(scores) {
            out[r] = self.pipeline.finish(s);
        }
        Ok(errors)
    }

    /// Reads this model's input values out of a JSON object, matching keys exactly first and
    /// then ignoring ASCII case. Other keys are ignored.
    pub fn values_from_json<'a>(
        &self,
        object: &'a serde_json::Map<String, serde_json::Value>,
        out: &mut Vec<Value<'a>>,
    ) -> Result<(), FieldError> {
        out.clear();
        for field in self.input_fields() {
            let v = object.get(&field.name).or_else(|| {
                object
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&field.name))
                    .map(|(_, v)| v)
            });
            out.push(field_value(field, v.map(JsonScalar::of))?);
        }
        Ok(())
    }

    /// As [`Model::values_from_json`], for an object already split into its keys and scalar
    /// values, in the order they came. The keys must be distinct (a JSON object parsed into a
    /// map keeps only the last of equal keys; this reader cannot know which one that is).
    pub fn values_from_pairs<'a>(
        &self,
        pairs: &[(&'a str, JsonScalar<'a>)],
        out: &mut Vec<Value<'a>>,
    ) -> Result<(), FieldError> {
        out.clear();
        for field in self.input_fields() {
            let v = pairs
                .iter()
                .find(|(k, _)| *k == field.name)
                .or_else(|| {
                    pairs
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&field.name))
                })
                .map(|&(_, v)| v);
            out.push(field_value(field, v)?);
        }
        Ok(())
    }

    /// Predicts one JSON object such as `{"model":" Fiesta","year":2017,"transmission":
    /// "Automatic","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}`.
    /// Keys match the input fields ignoring ASCII case; numbers may also be given as strings.
    pub fn predict_json(
        &self,
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<f64, FieldError> {
        let mut values = Vec::with_capacity(self.input_fields().len());
        self.values_from_json(object, &mut values)?;
        self.predict_row(&values)
    }

    /// Predicts many JSON objects in one call; one result per object, in order.
    pub fn predict_json_batch(
        &self,
        objects: &[&serde_json::Map<String, serde_json::Value>],
    ) -> Vec<Result<f64, FieldError>> {
        let ni = self.input_fields().len();
        let mut values = Vec::with_capacity(objects.len() * ni);
        let mut row = Vec::with_capacity(ni);
        let mut slots = Vec::with_capacity(objects.len());
        let mut results: Vec<Result<f64, FieldError>> = Vec::with_capacity(objects.len());
        for o in objects {
            match self.values_from_json(o, &mut row) {
                Ok(()) => {
                    slots.push(results.len());
                    values.extend_from_slice(&row);
                    results.push(Ok(f64::NAN));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let mut out = vec![0.0; slots.len()];
        let errors = self
            .predict_batch(&values, &mut out)
            .expect("shape is consistent");
        let mut errors = errors.into_iter().peekable();
        for (i, (&slot, p)) in slots.iter().zip(out).enumerate() {
            results[slot] = match errors.next_if(|e| e.row == i) {
                Some(e) => Err(e.error),
                None => Ok(p),
            };
        }
        results
    }
}

/// Checks a model name: 1–64 characters of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub(crate) fn check_name(name: &str) -> Result<(), ModelError> {
    let invalid = |reason| {
        Err(ModelError::InvalidTag {
            tag: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 64 {
        return invalid("names have 1 to 64 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return invalid("names use only letters, digits, '.', '_' and '-'");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid("names start with a letter or digit");
    }
    Ok(())
}

/// One JSON value as the input readers see it: scalars as they are, containers by kind only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JsonScalar<'a> {
    /// `null`.
    Null,
    /// A number.
    Number(f64),
    /// A string.
    Text(&'a str),
    /// `true` or `false`.
    Bool,
    /// An array.
    Array,
    /// An object.
    Object,
}

impl<'a> JsonScalar<'a> {
    /// The scalar view of a parsed JSON value.
    pub fn of(v: &'a serde_json::Value) -> JsonScalar<'a> {
        match v {
            serde_json::Value::Null => JsonScalar::Null,
            serde_json::Value::Number(n) => JsonScalar::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => JsonScalar::Text(s),
            serde_json::Value::Bool(_) => JsonScalar::Bool,
            serde_json::Value::Array(_) => JsonScalar::Array,
            serde_json::Value::Object(_) => JsonScalar::Object,
        }
    }
}

/// The input value of `field` from its JSON value (`None`: the key is absent).
fn field_value<'a>(field: &InputField, v: Option<JsonScalar<'a>>) -> Result<Value<'a>, FieldError> {
    let wrong = |got| FieldError {
        field: field.name.clone(),
        problem: FieldProblem::WrongType {
            expected: match field.kind {
                crate::features::FieldType::Numeric => "a number",
                crate::features::FieldType::Categorical => "a string",
            },
            got,
        },
    };
    match v {
        None | Some(JsonScalar::Null) => Ok(Value::Missing),
        Some(JsonScalar::Number(n)) => Ok(Value::Number(n)),
        Some(JsonScalar::Text(s)) => Ok(Value::Text(s)),
        Some(JsonScalar::Bool) => Err(wrong("a boolean")),
        Some(JsonScalar::Array) => Err(wrong("an array")),
        Some(JsonScalar::Object) => Err(wrong("an object")),
    }
}
