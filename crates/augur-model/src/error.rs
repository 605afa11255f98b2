//! Error types: [`ModelError`] for whole operations, [`FieldError`] for one row's inputs.

use std::path::PathBuf;

/// The error of a whole operation: reading data, training, loading, importing or storing a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file or folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`"reading"`, `"writing"`, ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (model file, feature spec, XGBoost model) did not parse.
    #[error("parsing {what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The underlying parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A CSV file is malformed beyond single bad rows (no header, unterminated quote, ...).
    #[error("csv {path}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The column mapping names a column the data does not have, or is otherwise unusable.
    #[error("column mapping: {0}")]
    Spec(String),
    /// Not enough usable rows remain to train or cross-validate.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
    /// Training parameters are out of range.
    #[error("invalid training parameter: {0}")]
    Params(String),
    /// A model document is structurally invalid (bad node index, feature count mismatch, ...).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// An XGBoost model uses something this importer does not support.
    #[error("unsupported xgboost model: {0}")]
    UnsupportedXgboost(String),
    /// A tag is not of the form `name` or `name:version`, or the name has forbidden characters.
    #[error("invalid model tag {tag:?}: {reason}")]
    InvalidTag {
        /// The tag as given.
        tag: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// No model matches the tag in the store.
    #[error("model {0} not found in the store")]
    NotFound(String),
    /// The batch given to a predict call has the wrong shape.
    #[error("batch shape: {0}")]
    BatchShape(String),
}

impl ModelError {
    /// Wraps an I/O error with the action and path it happened on.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ModelError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Wraps a JSON error with the name of the document.
    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        ModelError::Json {
            what: what.into(),
            source,
        }
    }
}

/// What is wrong with one input field of one row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldProblem {
    /// The field is absent or null.
    #[error("missing")]
    Missing,
    /// The field has a value of the wrong type.
    #[error("expected {expected}, got {got}")]
    WrongType {
        /// The type the model wants (`"a number"`, `"a string"`).
        expected: &'static str,
        /// The type that arrived (`"a string"`, `"a boolean"`, ...).
        got: &'static str,
    },
    /// A number that is NaN or infinite.
    #[error("not a finite number")]
    NotFinite,
    /// A number outside what the field's transform accepts.
    #[error("out of range: {0}")]
    OutOfDomain(&'static str),
    /// The value fails one of the data checks the model was trained with (`after 2027`).
    #[error("fails the model's data check: {0}")]
    Check(String),
}

/// A per-row input error: which field, and what is wrong with it. Other rows are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {problem}")]
pub struct FieldError {
    /// The canonical name of the input field (as in [`crate::Model::input_fields`]).
    pub field: String,
    /// What is wrong with it.
    pub problem: FieldProblem,
}

/// A [`FieldError`] tied to its row position in a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: {error}")]
pub struct RowError {
    /// The 0-based index of the row in the batch.
    pub row: usize,
    /// The problem with that row.
    pub error: FieldError,
}
