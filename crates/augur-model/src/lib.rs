//! Price models: the feature pipeline, gradient-boosted tree training and evaluation, XGBoost
//! model import, and the versioned model store. Synchronous; no async runtime.
//!
//! # Using a model (what the rest of augur calls)
//!
//! ```no_run
//! use std::sync::Arc;
//! use augur_model::{ModelStore, Value};
//!
//! # fn main() -> Result<(), augur_model::ModelError> {
//! // `--store DIR` overrides; otherwise $AUGUR_MODEL_STORE, $AUGUR_HOME/models, ~/.augur/models.
//! let store = ModelStore::open(ModelStore::default_location().expect("a home folder"))?;
//! let model = Arc::new(store.load("ford-price:latest")?); // Send + Sync; share the Arc
//! println!("{}", model.tag()); // e.g. "ford-price:3"
//!
//! // JSON objects, keys matched ignoring ASCII case (Debezium's `enginesize` works):
//! let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
//!     r#"{"model":" Fiesta","year":2017,"transmission":"Automatic","mileage":15944,
//!         "fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#).unwrap();
//! let price: f64 = model.predict_json(&row).expect("valid row");
//!
//! // Batches of typed values, one value per input field in `input_fields()` order:
//! let fields = model.input_fields(); // name (canonical, e.g. "engineSize") + Numeric/Categorical
//! let i = model.field_index("enginesize"); // Some(7): case-insensitive lookup
//! let mut values = Vec::new();
//! for f in fields {
//!     values.push(match f.name.as_str() {
//!         "model" => Value::Text("Focus"),
//!         "transmission" => Value::Text("Manual"),
//!         "fuelType" => Value::Text("Diesel"),
//!         _ => Value::Number(1.0),
//!     });
//! }
//! let mut out = vec![0.0; 1];
//! let errors = model.predict_batch(&values, &mut out)?; // per-row FieldErrors; others predicted
//! # let _ = (price, i, errors);
//! # Ok(()) }
//! ```
//!
//! Without a store (the demo on a machine without the data set): [`load_shipped`] loads the
//! default model shipped in the repository's `models/` folder, and [`Model::load_file`] any
//! model file.
//!
//! # Training
//!
//! [`data::Table::read_csv`] → [`data::prepare`] (column mapping from a [`FeatureSpec`], data
//! checks, [`data::DataReport`]) → [`train::train`] (k-fold cross-validation and the final fit,
//! on worker threads) → [`Model::from_trained`] → [`ModelStore::save`]. The trainer is this
//! crate's own histogram GBDT ([`gbdt`]); trained and imported models share one evaluator
//! ([`forest`]).
//!
//! # Modules
//! - [`data`]: CSV reading, data checks and the bad-row policy.
//! - [`explain`]: TreeSHAP contributions and price effects.
//! - [`features`]: feature specs, fitted pipelines, input fields and values.
//! - [`gbdt`]: the tree trainer.
//! - [`interval`]: calibrated price ranges from the out-of-fold rows.
//! - [`forest`]: the flat-array tree evaluator.
//! - [`train`]: cross-validation, metrics and parallel training.
//! - [`xgboost`]: XGBoost JSON import.
//! - [`model`]: the loaded model and its predict calls.
//! - [`promotion`]: the checks a model passes before it replaces the served one.
//! - [`store`]: the versioned model store.

mod checks;
pub mod data;
pub mod error;
pub mod explain;
pub mod features;
pub mod forest;
pub mod gbdt;
pub mod interval;
pub mod model;
pub mod promotion;
mod rng;
mod sha256;
pub mod store;
mod time;
pub mod train;
pub mod xgboost;

pub use error::{FieldError, FieldProblem, ModelError, RowError};
pub use explain::{Contribution, ExplainError, Explanation};
pub use features::{FeatureSpec, FieldType, InputField, PipelineSpec, Value};
pub use gbdt::TrainParams;
pub use interval::PriceInterval;
pub use model::{JsonScalar, Model, ModelMeta, ModelSource};
pub use promotion::{PromotionPolicy, Refusal};
pub use store::{ModelStore, ModelSummary, SHIPPED_MODEL, load_shipped, shipped_models_dir};
pub use train::{CvReport, Metrics, TrainConfig};

/// SHA-256 of some bytes as 64 lowercase hex digits (the hash recorded for training data).
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha256::hex(bytes)
}

#[cfg(test)]
mod send_sync {
    /// Models are shared across threads behind an `Arc`.
    #[test]
    fn model_is_send_and_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<crate::Model>();
        assert::<crate::ModelStore>();
    }
}
