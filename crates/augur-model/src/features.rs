//! The feature pipeline: how raw input fields become the numeric columns the trees split on.
//!
//! A [`FeatureSpec`] says what to learn (which columns are inputs, how each is encoded, which is
//! the target); fitting it on training rows gives a [`FeaturePipeline`], where every learned
//! quantity (category lists, frequencies, means, scalers) is written out explicitly. A pipeline
//! is a list of [`Column`]s, each one output feature:
//!
//! - [`Column::Numeric`]: `((log1p ? ln(1 + x) : x) - center) / scale` (standard scaling);
//! - [`Column::Indicator`]: 1 when a categorical field equals a category, else 0 (one-hot; a
//!   category folded into "Other" or never seen gets 0 in every indicator);
//! - [`Column::Lookup`]: a learned number per category (its frequency, or its smoothed mean
//!   target), with one value for "Other": rare categories and any category never seen.
//!
//! Values are computed in `f64` and stored as `f32`, the evaluator's type. Categorical values are
//! trimmed of surrounding whitespace (the Ford data writes `" Fiesta"`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, FieldProblem, ModelError};

/// The name of the bucket that rare and unseen categories fall into.
pub const OTHER: &str = "Other";

/// Whether an input field is a number or a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// A number (JSON number, or a string holding one).
    Numeric,
    /// A category (JSON string).
    Categorical,
}

/// One input field a model reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputField {
    /// The canonical name, e.g. `engineSize`. Lookups by name ignore ASCII case.
    pub name: String,
    /// Number or category.
    #[serde(rename = "type")]
    pub kind: FieldType,
}

/// One input value, as given to the predict calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A number.
    Number(f64),
    /// A string: a category, or a number written as text (Debezium sends decimals that way).
    Text(&'a str),
    /// Absent or null.
    Missing,
}

/// How the target is transformed for training; predictions are transformed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetTransform {
    /// Train on the target as is.
    None,
    /// Train on `ln(target)` and predict `exp(score)`: errors become relative, which suits
    /// prices (a 1,000 error matters more on a 5,000 car than on a 40,000 one).
    #[default]
    Log,
}

/// How a categorical field is encoded; a field may use several encodings at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case", deny_unknown_fields)]
pub enum Encoding {
    /// One 0/1 column per category seen at least `min_count` times.
    OneHot,
    /// One column: the category's share of the training rows.
    Frequency,
    /// One column: the category's mean (transformed) target, shrunk towards the overall mean
    /// by `smoothing` pseudo-rows.
    TargetMean {
        /// Pseudo-rows of the overall mean mixed into each category's mean.
        smoothing: f64,
    },
}

/// How one input field is turned into feature columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FieldKind {
    /// A numeric field: one column.
    Numeric {
        /// Apply `ln(1 + x)` first (for long-tailed values such as mileage).
        #[serde(default)]
        log1p: bool,
    },
    /// A categorical field: the columns of each encoding, in order.
    Categorical {
        /// The encodings to produce.
        encodings: Vec<Encoding>,
        /// Categories seen fewer times than this in the training rows are folded into
        /// [`OTHER`], as is any category first seen at prediction time.
        #[serde(default = "default_min_count")]
        min_count: usize,
    },
}

/// The default `min_count` of a categorical field.
fn default_min_count() -> usize {
    1
}

/// One input field and its encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// The column name in the training data and the canonical input name.
    pub name: String,
    /// Its encoding.
    #[serde(flatten)]
    pub kind: FieldKind,
}

/// A validity rule for training rows (see [`crate::data`] for the policy applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// The field must lie in `[min, max]` (either bound optional).
    Range {
        /// The numeric field.
        field: String,
        /// Smallest allowed value.
        #[serde(default)]
        min: Option<f64>,
        /// Largest allowed value.
        #[serde(default)]
        max: Option<f64>,
    },
    /// The field (a year) must not be later than the current calendar year plus `years_ahead`.
    NotInFuture {
        /// The numeric field holding a year.
        field: String,
        /// How many years ahead of today are still allowed (next year's models sell early).
        years_ahead: i32,
    },
    /// The field must be > 0, except when `unless_field` has one of `unless_values`
    /// (engine size 0 is impossible except for an electric car).
    Positive {
        /// The numeric field.
        field: String,
        /// A categorical field that can excuse the rule.
        #[serde(default)]
        unless_field: Option<String>,
        /// Its values that excuse the rule.
        #[serde(default)]
        unless_values: Vec<String>,
    },
}

/// What to learn: inputs and their encodings, the target, and the data checks.
///
/// This is the configurable column mapping of `augur train` (`--spec file.json`);
/// [`FeatureSpec::ford`] is the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// The target column.
    pub target: String,
    /// The target transform.
    #[serde(default)]
    pub target_transform: TargetTransform,
    /// The input fields, in order.
    pub fields: Vec<FieldSpec>,
    /// Validity rules for training rows, besides "every field present and parseable".
    #[serde(default)]
    pub checks: Vec<Check>,
}

impl FeatureSpec {
    /// The default mapping for the Ford used-car data (`model,year,price,transmission,mileage,
    /// fuelType,tax,mpg,engineSize`): the original pipeline's features (frequency-encoded model
    /// with rare/unseen models as "Other", log1p mileage and tax, standard scaling, one-hot
    /// transmission and fuel type with rare fuel types such as Electric and Hybrid folded into
    /// an ignored category), plus a smoothed target-mean encoding of the model, trained on
    /// log(price).
    pub fn ford() -> FeatureSpec {
        let num = |name: &str, log1p: bool| FieldSpec {
            name: name.into(),
            kind: FieldKind::Numeric { log1p },
        };
        let cat = |name: &str, encodings: Vec<Encoding>, min_count: usize| FieldSpec {
            name: name.into(),
            kind: FieldKind::Categorical {
                encodings,
                min_count,
            },
        };
        FeatureSpec {
            target: "price".into(),
            target_transform: TargetTransform::Log,
            fields: vec![
                cat(
                    "model",
                    vec![
                        Encoding::Frequency,
                        Encoding::TargetMean { smoothing: 20.0 },
                    ],
                    5,
                ),
                num("year", false),
                cat("transmission", vec![Encoding::OneHot], 50),
                num("mileage", true),
                cat("fuelType", vec![Encoding::OneHot], 50),
                num("tax", true),
                num("mpg", false),
                num("engineSize", false),
            ],
            checks: vec![
                Check::Positive {
                    field: "price".into(),
                    unless_field: None,
                    unless_values: vec![],
                },
                Check::Range {
                    field: "year".into(),
                    min: Some(1900.0),
                    max: None,
                },
                Check::NotInFuture {
                    field: "year".into(),
                    years_ahead: 1,
                },
                // A million miles is beyond any car listed for sale.
                Check::Range {
                    field: "mileage".into(),
                    min: Some(0.0),
                    max: Some(1_000_000.0),
                },
                Check::Range {
                    field: "tax".into(),
                    min: Some(0.0),
                    max: None,
                },
                Check::Positive {
                    field: "mpg".into(),
                    unless_field: None,
                    unless_values: vec![],
                },
                Check::Positive {
                    field: "engineSize".into(),
                    unless_field: Some("fuelType".into()),
                    unless_values: vec!["Electric".into()],
                },
                // Litres; no production car engine is larger.
                Check::Range {
                    field: "engineSize".into(),
                    min: None,
                    max: Some(10.0),
                },
            ],
        }
    }

    /// Checks names: unique fields, target not among them, checks name known fields.
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut seen = std::collections::HashSet::new();
        for f in &self.fields {
            if f.name.trim().is_empty() {
                return Err(ModelError::Spec("a field has an empty name".into()));
            }
            if !seen.insert(f.name.to_ascii_lowercase()) {
                return Err(ModelError::Spec(format!(
                    "field {} is listed twice",
                    f.name
                )));
            }
            if f.name.eq_ignore_ascii_case(&self.target) {
                return Err(ModelError::Spec(format!(
                    "the target {} is also a field",
                    f.name
                )));
            }
            if let FieldKind::Categorical { encodings, .. } = &f.kind {
                if encodings.is_empty() {
                    return Err(ModelError::Spec(format!(
                        "field {} has no encoding",
                        f.name
                    )));
                }
                for e in encodings {
                    if let Encoding::TargetMean { smoothing } = e
                        && (smoothing.is_nan() || *smoothing < 0.0)
                    {
                        return Err(ModelError::Spec("smoothing must be >= 0".into()));
                    }
                }
            }
        }
        if self.fields.is_empty() {
            return Err(ModelError::Spec("no input fields".into()));
        }
        let known = |n: &str| n == self.target || self.fields.iter().any(|f| f.name == n);
        for c in &self.checks {
            let (field, other) = match c {
                Check::Range { field, .. } | Check::NotInFuture { field, .. } => (field, None),
                Check::Positive {
                    field,
                    unless_field,
                    ..
                } => (field, unless_field.as_ref()),
            };
            for n in std::iter::once(field).chain(other) {
                if !known(n) {
                    return Err(ModelError::Spec(format!("a check names unknown field {n}")));
                }
            }
        }
        Ok(())
    }

    /// The field's type, by its exact name (the target counts as numeric).
    pub(crate) fn field_type(&self, name: &str) -> Option<FieldType> {
        if name == self.target {
            return Some(FieldType::Numeric);
        }
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| match f.kind {
                FieldKind::Numeric { .. } => FieldType::Numeric,
                FieldKind::Categorical { .. } => FieldType::Categorical,
            })
    }
}

/// Clean training rows, column by column (only rows that passed the data checks).
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// The field names, as in [`FeatureSpec::fields`].
    pub names: Vec<String>,
    /// One entry per [`FeatureSpec::fields`] entry.
    pub fields: Vec<ColumnData>,
    /// The target, untransformed.
    pub target: Vec<f64>,
}

/// The values of one field over all clean rows.
#[derive(Debug, Clone)]
pub enum ColumnData {
    /// Parsed numbers.
    Numeric(Vec<f64>),
    /// Trimmed category strings.
    Categorical(Vec<String>),
}

impl Columns {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.target.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.target.is_empty()
    }

    /// For each of a pipeline's inputs, the index of the field holding it.
    pub fn input_map(&self, pipeline: &FeaturePipeline) -> Result<Vec<usize>, ModelError> {
        pipeline
            .inputs()
            .iter()
            .map(|f| {
                self.names
                    .iter()
                    .position(|n| *n == f.name)
                    .ok_or_else(|| ModelError::Spec(format!("no data for input {}", f.name)))
            })
            .collect()
    }

    /// Row `r` as input values, for the fields `map` selects (see [`Columns::input_map`]).
    pub fn row<'a>(&'a self, r: usize, map: &[usize], out: &mut Vec<Value<'a>>) {
        out.clear();
        for &i in map {
            out.push(match &self.fields[i] {
                ColumnData::Numeric(v) => Value::Number(v[r]),
                ColumnData::Categorical(v) => Value::Text(&v[r]),
            });
        }
    }
}

/// One learned output column (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Column {
    /// A scaled number.
    Numeric {
        /// The input field.
        field: String,
        /// Apply `ln(1 + x)` before scaling.
        #[serde(default)]
        log1p: bool,
        /// Subtracted after the log (the training mean).
        center: f64,
        /// Divided by after centering (the training standard deviation; 1 if that is 0).
        scale: f64,
    },
    /// A one-hot indicator.
    Indicator {
        /// The categorical input field.
        field: String,
        /// The category that gives 1.
        category: String,
    },
    /// A learned number per category.
    Lookup {
        /// The categorical input field.
        field: String,
        /// What the numbers are (`frequency`, `target_mean`); informative only.
        encoding: String,
        /// The number per known category.
        table: BTreeMap<String, f64>,
        /// The number for [`OTHER`]: rare and unseen categories.
        other: f64,
    },
}

impl Column {
    /// The input field this column reads.
    pub fn field(&self) -> &str {
        match self {
            Column::Numeric { field, .. }
            | Column::Indicator { field, .. }
            | Column::Lookup { field, .. } => field,
        }
    }

    /// A readable name, e.g. `log1p(mileage)`, `transmission=Manual`, `model:frequency`.
    pub fn name(&self) -> String {
        match self {
            Column::Numeric {
                field, log1p: true, ..
            } => format!("log1p({field})"),
            Column::Numeric { field, .. } => field.clone(),
            Column::Indicator { field, category } => format!("{field}={category}"),
            Column::Lookup {
                field, encoding, ..
            } => format!("{field}:{encoding}"),
        }
    }
}

/// How model scores become predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputTransform {
    /// The score is the prediction.
    #[default]
    Identity,
    /// The prediction is `exp(score)` (models trained on a log target).
    Exp,
}

/// The serialized form of a [`FeaturePipeline`]: also the "feature spec" that goes with an
/// imported XGBoost model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The output columns, in the order the trees index them.
    pub columns: Vec<Column>,
    /// How scores become predictions.
    #[serde(default)]
    pub output: OutputTransform,
}

/// A column compiled for fast evaluation.
#[derive(Debug, Clone)]
enum Compiled {
    /// See [`Column::Numeric`].
    Numeric {
        input: usize,
        log1p: bool,
        center: f64,
        scale: f64,
    },
    /// See [`Column::Indicator`].
    Indicator { input: usize, category: String },
    /// See [`Column::Lookup`]; values already rounded to `f32`.
    Lookup {
        input: usize,
        table: HashMap<String, f32>,
        other: f32,
    },
}

/// A fitted pipeline: validated, compiled, ready to turn input values into feature rows.
#[derive(Debug, Clone)]
pub struct FeaturePipeline {
    /// The serialized form.
    spec: PipelineSpec,
    /// The distinct input fields in order of first use.
    inputs: Vec<InputField>,
    /// Lower-cased input names, for case-insensitive lookups.
    lower: Vec<String>,
    /// The compiled columns.
    compiled: Vec<Compiled>,
    /// Per input: the categories the model knows (categorical inputs only).
    spellings: Vec<Option<Spellings>>,
}

/// The categories a model knows for one input, and how other spellings map onto them.
#[derive(Debug, Clone, Default)]
struct Spellings {
    exact: std::collections::HashSet<String>,
    /// Folded spelling (lower case, single spaces) → the model's spelling, for folds that name
    /// one category only.
    folded: HashMap<String, String>,
}

/// A category spelling compared without case and with runs of white space as one space.
fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl Spellings {
    fn add(&mut self, category: &str) {
        self.exact.insert(category.to_string());
    }

    fn finish(&mut self) {
        let mut count: HashMap<String, usize> = HashMap::new();
        for c in &self.exact {
            *count.entry(fold(c)).or_default() += 1;
        }
        self.folded = self
            .exact
            .iter()
            .filter(|c| count[&fold(c)] == 1)
            .map(|c| (fold(c), c.clone()))
            .collect();
    }

    /// The model's spelling of `s`, if it knows the category.
    fn resolve<'a>(&'a self, s: &'a str) -> Option<&'a str> {
        if self.exact.contains(s) {
            return Some(s);
        }
        self.folded.get(&fold(s)).map(String::as_str)
    }
}

/// The index of a column's input field in `inputs`, adding the field when it is new; fails
/// when the field clashes with a known one in case or type.
fn input_of(inputs: &mut Vec<InputField>, col: &Column) -> Result<usize, ModelError> {
    let kind = match col {
        Column::Numeric { .. } => FieldType::Numeric,
        _ => FieldType::Categorical,
    };
    let name = col.field();
    match inputs
        .iter()
        .position(|f| f.name.eq_ignore_ascii_case(name))
    {
        Some(i) if inputs[i].name != name => Err(ModelError::Spec(format!(
            "fields {} and {name} differ only in case",
            inputs[i].name
        ))),
        Some(i) if inputs[i].kind != kind => Err(ModelError::Spec(format!(
            "field {name} is used both as a number and as a category"
        ))),
        Some(i) => Ok(i),
        None => {
            inputs.push(InputField {
                name: name.to_string(),
                kind,
            });
            Ok(inputs.len() - 1)
        }
    }
}

/// Compiles one column reading input `input`; fails on a bad numeric scaler.
fn compile_column(col: &Column, input: usize) -> Result<Compiled, ModelError> {
    Ok(match col {
        Column::Numeric {
            log1p,
            center,
            scale,
            ..
        } => {
            if !center.is_finite() || !scale.is_finite() || *scale == 0.0 {
                return Err(ModelError::Spec(format!("bad scaler for {}", col.field())));
            }
            Compiled::Numeric {
                input,
                log1p: *log1p,
                center: *center,
                scale: *scale,
            }
        }
        Column::Indicator { category, .. } => Compiled::Indicator {
            input,
            category: category.trim().to_string(),
        },
        Column::Lookup { table, other, .. } => {
            let table = table.iter().map(|(k, v)| (k.trim().to_string(), *v as f32));
            Compiled::Lookup {
                input,
                table: table.collect(),
                other: *other as f32,
            }
        }
    })
}

/// Per input, the categories the compiled columns know (`None` for numeric inputs).
fn known_spellings(inputs: &[InputField], compiled: &[Compiled]) -> Vec<Option<Spellings>> {
    let mut spellings: Vec<Option<Spellings>> = inputs
        .iter()
        .map(|f| (f.kind == FieldType::Categorical).then(Spellings::default))
        .collect();
    for c in compiled {
        match c {
            Compiled::Indicator { input, category } => {
                if let Some(s) = &mut spellings[*input] {
                    s.add(category);
                }
            }
            Compiled::Lookup { input, table, .. } => {
                if let Some(s) = &mut spellings[*input] {
                    table.keys().for_each(|k| s.add(k));
                }
            }
            Compiled::Numeric { .. } => {}
        }
    }
    spellings.iter_mut().flatten().for_each(Spellings::finish);
    spellings
}

/// The training rows a pipeline is fitted on, with their transformed target and its mean.
struct FitRows<'a> {
    /// The row indices.
    rows: &'a [usize],
    /// The number of rows.
    n: f64,
    /// The transformed target per fitted row.
    target: Vec<f64>,
    /// The mean transformed target.
    prior: f64,
}

/// Per-category row counts and target sums of one field, with the rest folded into [`OTHER`].
struct CategoryStats<'a> {
    /// Row count and target sum per kept category, in sorted order.
    kept: BTreeMap<&'a str, (usize, f64)>,
    /// Rows folded into [`OTHER`].
    other_n: usize,
    /// Target sum of the rows folded into [`OTHER`].
    other_sum: f64,
}

impl<'a> FitRows<'a> {
    /// Transforms the target of `rows` as `spec` says and takes its mean.
    fn new(spec: &FeatureSpec, data: &Columns, rows: &'a [usize]) -> Self {
        let n = rows.len() as f64;
        let target: Vec<f64> = rows
            .iter()
            .map(|&r| match spec.target_transform {
                TargetTransform::None => data.target[r],
                TargetTransform::Log => data.target[r].ln(),
            })
            .collect();
        let prior = target.iter().sum::<f64>() / n;
        FitRows {
            rows,
            n,
            target,
            prior,
        }
    }

    /// A standard-scaled numeric column (scale 1 when the spread is 0 or not finite).
    fn numeric(&self, name: &str, log1p: bool, v: &[f64]) -> Column {
        let (rows, n) = (self.rows, self.n);
        let f = |x: f64| if log1p { x.ln_1p() } else { x };
        let mean = rows.iter().map(|&r| f(v[r])).sum::<f64>() / n;
        let var = rows.iter().map(|&r| (f(v[r]) - mean).powi(2)).sum::<f64>() / n;
        let std = var.sqrt();
        let scale = if std > 0.0 && std.is_finite() {
            std
        } else {
            1.0
        };
        Column::Numeric {
            field: name.to_string(),
            log1p,
            center: mean,
            scale,
        }
    }

    /// Counts rows and sums the target per category, folding categories seen fewer than
    /// `min_count` times (and [`OTHER`] itself) into the other bucket.
    fn category_stats<'v>(&self, v: &'v [String], min_count: usize) -> CategoryStats<'v> {
        // Per category: row count and target sum, in a stable (sorted) order.
        let mut stats: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        for (i, &r) in self.rows.iter().enumerate() {
            let e = stats.entry(v[r].as_str()).or_default();
            e.0 += 1;
            e.1 += self.target[i];
        }
        let (mut other_n, mut other_sum) = (0usize, 0.0);
        stats.retain(|k, (c, s)| {
            let keep = *c >= min_count && *k != OTHER;
            if !keep {
                other_n += *c;
                other_sum += *s;
            }
            keep
        });
        CategoryStats {
            kept: stats,
            other_n,
            other_sum,
        }
    }

    /// Appends the columns of one encoding of a categorical field.
    fn encode(&self, name: &str, enc: &Encoding, stats: &CategoryStats, columns: &mut Vec<Column>) {
        let n = self.n;
        match enc {
            Encoding::OneHot => {
                for cat in stats.kept.keys() {
                    columns.push(Column::Indicator {
                        field: name.to_string(),
                        category: cat.to_string(),
                    });
                }
            }
            Encoding::Frequency => columns.push(Column::Lookup {
                field: name.to_string(),
                encoding: "frequency".into(),
                table: stats
                    .kept
                    .iter()
                    .map(|(k, (c, _))| (k.to_string(), *c as f64 / n))
                    .collect(),
                other: stats.other_n as f64 / n,
            }),
            Encoding::TargetMean { smoothing } => {
                let prior = self.prior;
                let m = |c: usize, s: f64| (s + smoothing * prior) / (c as f64 + smoothing);
                let other = if stats.other_n + (*smoothing > 0.0) as usize > 0 {
                    m(stats.other_n, stats.other_sum)
                } else {
                    prior
                };
                columns.push(Column::Lookup {
                    field: name.to_string(),
                    encoding: "target_mean".into(),
                    table: stats
                        .kept
                        .iter()
                        .map(|(k, (c, s))| (k.to_string(), m(*c, *s)))
                        .collect(),
                    other,
                });
            }
        }
    }
}

impl FeaturePipeline {
    /// Validates and compiles a pipeline spec.
    pub fn new(spec: PipelineSpec) -> Result<FeaturePipeline, ModelError> {
        let mut inputs: Vec<InputField> = Vec::new();
        let mut compiled = Vec::with_capacity(spec.columns.len());
        for col in &spec.columns {
            let input = input_of(&mut inputs, col)?;
            compiled.push(compile_column(col, input)?);
        }
        let lower = inputs.iter().map(|f| f.name.to_ascii_lowercase()).collect();
        let spellings = known_spellings(&inputs, &compiled);
        Ok(FeaturePipeline {
            spec,
            inputs,
            lower,
            compiled,
            spellings,
        })
    }

    /// Learns a pipeline from the rows `rows` of `data`, as `spec` says.
    pub fn fit(
        spec: &FeatureSpec,
        data: &Columns,
        rows: &[usize],
    ) -> Result<FeaturePipeline, ModelError> {
        if rows.is_empty() {
            return Err(ModelError::NotEnoughData(
                "no rows to fit the features on".into(),
            ));
        }
        let fit = FitRows::new(spec, data, rows);
        let mut columns = Vec::new();
        for (field, col) in spec.fields.iter().zip(&data.fields) {
            match (&field.kind, col) {
                (FieldKind::Numeric { log1p }, ColumnData::Numeric(v)) => {
                    columns.push(fit.numeric(&field.name, *log1p, v));
                }
                (
                    FieldKind::Categorical {
                        encodings,
                        min_count,
                    },
                    ColumnData::Categorical(v),
                ) => {
                    let stats = fit.category_stats(v, *min_count);
                    for enc in encodings {
                        fit.encode(&field.name, enc, &stats, &mut columns);
                    }
                }
                _ => {
                    return Err(ModelError::Spec(format!(
                        "field {} has the wrong type",
                        field.name
                    )));
                }
            }
        }
        let output = match spec.target_transform {
            TargetTransform::None => OutputTransform::Identity,
            TargetTransform::Log => OutputTransform::Exp,
        };
        FeaturePipeline::new(PipelineSpec { columns, output })
    }

    /// The serialized form.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The input fields, in the order the predict calls take values.
    pub fn inputs(&self) -> &[InputField] {
        &self.inputs
    }

    /// The index of an input field by name, ignoring ASCII case (`enginesize` finds
    /// `engineSize`).
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs
            .iter()
            .position(|f| f.name == name)
            .or_else(|| self.lower.iter().position(|l| l.eq_ignore_ascii_case(name)))
    }

    /// The number of output columns.
    pub fn num_columns(&self) -> usize {
        self.compiled.len()
    }

    /// The output columns' readable names.
    pub fn column_names(&self) -> Vec<String> {
        self.spec.columns.iter().map(Column::name).collect()
    }

    /// How scores become predictions.
    pub fn output(&self) -> OutputTransform {
        self.spec.output
    }

    /// Turns one row of input values (in [`FeaturePipeline::inputs`] order) into
    /// [`FeaturePipeline::num_columns`] features.
    pub fn transform(&self, values: &[Value<'_>], out: &mut [f32]) -> Result<(), FieldError> {
        debug_assert_eq!(values.len(), self.inputs.len());
        debug_assert_eq!(out.len(), self.compiled.len());
        let err = |input: usize, problem| FieldError {
            field: self.inputs[input].name.clone(),
            problem,
        };
        for (c, o) in self.compiled.iter().zip(out.iter_mut()) {
            *o = match c {
                Compiled::Numeric {
                    input,
                    log1p,
                    center,
                    scale,
                } => {
                    let x = number(values[*input]).map_err(|p| err(*input, p))?;
                    let x = if *log1p {
                        if x <= -1.0 {
                            return Err(err(
                                *input,
                                FieldProblem::OutOfDomain("log1p needs a value above -1"),
                            ));
                        }
                        x.ln_1p()
                    } else {
                        x
                    };
                    ((x - center) / scale) as f32
                }
                Compiled::Indicator { input, category } => {
                    let s = text(values[*input]).map_err(|p| err(*input, p))?;
                    (self.category(*input, s) == category) as u8 as f32
                }
                Compiled::Lookup {
                    input,
                    table,
                    other,
                } => {
                    let s = text(values[*input]).map_err(|p| err(*input, p))?;
                    *table.get(self.category(*input, s)).unwrap_or(other)
                }
            };
        }
        Ok(())
    }

    /// The model's spelling of category `s` of `input` (`fiesta` → `Fiesta`), or `s` itself
    /// when the model does not know it.
    fn category<'a>(&'a self, input: usize, s: &'a str) -> &'a str {
        match &self.spellings[input] {
            Some(sp) => sp.resolve(s).unwrap_or(s),
            None => s,
        }
    }

    /// How many of a row's categorical values the model has never seen (they are scored as
    /// the "other" category).
    pub fn unseen_categories(&self, values: &[Value<'_>]) -> usize {
        self.spellings
            .iter()
            .zip(values)
            .filter(|(sp, v)| match (sp, v) {
                (Some(sp), Value::Text(t)) => sp.resolve(t.trim()).is_none(),
                _ => false,
            })
            .count()
    }

    /// Turns a model score into a prediction.
    pub fn finish(&self, score: f32) -> f64 {
        match self.spec.output {
            OutputTransform::Identity => score as f64,
            OutputTransform::Exp => (score as f64).exp(),
        }
    }
}

/// A numeric input value: a number, or a string holding a finite number.
fn number(v: Value<'_>) -> Result<f64, FieldProblem> {
    let x = match v {
        Value::Number(x) => x,
        Value::Text(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| FieldProblem::WrongType {
                expected: "a number",
                got: "a string",
            })?,
        Value::Missing => return Err(FieldProblem::Missing),
    };
    if x.is_finite() {
        Ok(x)
    } else {
        Err(FieldProblem::NotFinite)
    }
}

/// A categorical input value, trimmed; empty text is missing.
fn text(v: Value<'_>) -> Result<&str, FieldProblem> {
    match v {
        Value::Text(s) if s.trim().is_empty() => Err(FieldProblem::Missing),
        Value::Text(s) => Ok(s.trim()),
        Value::Number(_) => Err(FieldProblem::WrongType {
            expected: "a string",
            got: "a number",
        }),
        Value::Missing => Err(FieldProblem::Missing),
    }
}
