//! Import of XGBoost models saved with `booster.save_model("m.json")` (JSON format, XGBoost 1.x
//! to 3.x) into the shared evaluator.
//!
//! Read: `learner.learner_model_param.base_score` (`"[1.2E4]"` or `"1.2E4"`), `num_feature`,
//! and per tree the parallel arrays `left_children` (-1 marks a leaf), `right_children`,
//! `split_indices`, `split_conditions` (the leaf value for a leaf, learning rate applied) and
//! `default_left`. XGBoost's routing is `x < condition` goes left and a missing value goes the
//! default way, exactly what [`crate::forest`] does, and trees are summed in `f32` from the base
//! score in order, so predictions match xgboost's own.
//!
//! Rejected with [`ModelError::UnsupportedXgboost`]: boosters other than `gbtree` (`dart`,
//! `gblinear`), objectives without an identity link (classification, `reg:gamma`, `count:*`,
//! ...), several targets or classes, and categorical splits (`enable_categorical` models:
//! one-hot the categories in the feature spec instead).

use serde_json::Value as Json;

use crate::error::ModelError;
use crate::forest::{ForestArrays, TreeArrays};

/// Objectives whose prediction is the raw sum of the trees.
const IDENTITY_OBJECTIVES: &[&str] = &[
    "reg:squarederror",
    "reg:linear",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "reg:quantileerror",
];

/// An XGBoost model converted into the evaluator's form.
#[derive(Debug, Clone)]
pub struct XgboostModel {
    /// The trees.
    pub forest: ForestArrays,
    /// The objective name.
    pub objective: String,
    /// The XGBoost version that saved the file (`"3.2.0"`, or `"unknown"`).
    pub version: String,
    /// The feature names stored in the file (often empty).
    pub feature_names: Vec<String>,
}

/// Parses an XGBoost JSON model.
pub fn parse(bytes: &[u8]) -> Result<XgboostModel, ModelError> {
    let doc: Json =
        serde_json::from_slice(bytes).map_err(|e| ModelError::json("xgboost model", e))?;
    let learner = doc
        .get("learner")
        .ok_or_else(|| unsupported("no `learner` (is this a save_model JSON file?)".into()))?;
    let version = saved_version(&doc);
    let (num_feature, base_score) = model_params(learner)?;
    let objective = identity_objective(learner)?;
    let trees = gbtree_trees(learner)?;
    let feature_names = learner
        .get("feature_names")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(trees.len());
    for (t, tree) in trees.iter().enumerate() {
        out.push(parse_tree(tree).map_err(|m| unsupported(format!("tree {t}: {m}")))?);
    }
    Ok(XgboostModel {
        forest: ForestArrays {
            num_features: num_feature,
            base_score,
            trees: out,
        },
        objective,
        version,
        feature_names,
    })
}

/// An [`ModelError::UnsupportedXgboost`] with this message.
fn unsupported(m: String) -> ModelError {
    ModelError::UnsupportedXgboost(m)
}

/// The XGBoost version that saved the file, e.g. `"3.2.0"` (`"unknown"` when absent).
fn saved_version(doc: &Json) -> String {
    doc.get("version")
        .and_then(Json::as_array)
        .map(|v| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_else(|| "unknown".into())
}

/// `num_feature` and `base_score` from `learner_model_param`; rejects several classes or
/// targets.
fn model_params(learner: &Json) -> Result<(usize, f32), ModelError> {
    let param = learner
        .get("learner_model_param")
        .ok_or_else(|| unsupported("no learner_model_param".into()))?;
    let num_feature: usize = str_field(param, "num_feature")?
        .parse()
        .map_err(|_| unsupported("num_feature is not a number".into()))?;
    for key in ["num_class", "num_target"] {
        if let Ok(s) = str_field(param, key)
            && s.parse::<u64>().map(|n| n > 1).unwrap_or(true)
        {
            return Err(unsupported(format!(
                "{key} = {s}: only single-target regression is supported"
            )));
        }
    }
    let base_score: f32 = str_field(param, "base_score")?
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| unsupported("base_score is not a number".into()))?;
    Ok((num_feature, base_score))
}

/// The objective's name, if it is one whose prediction is the raw sum of the trees.
fn identity_objective(learner: &Json) -> Result<String, ModelError> {
    let objective = learner
        .get("objective")
        .and_then(|o| o.get("name"))
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    if !IDENTITY_OBJECTIVES.contains(&objective.as_str()) {
        return Err(unsupported(format!(
            "objective {objective:?}: only regression objectives with an identity link are supported ({})",
            IDENTITY_OBJECTIVES.join(", ")
        )));
    }
    Ok(objective)
}

/// The trees of a `gbtree` booster with a single output.
fn gbtree_trees(learner: &Json) -> Result<&Vec<Json>, ModelError> {
    let booster = learner
        .get("gradient_booster")
        .ok_or_else(|| unsupported("no gradient_booster".into()))?;
    let booster_name = booster.get("name").and_then(Json::as_str).unwrap_or("");
    if booster_name != "gbtree" {
        return Err(unsupported(format!(
            "booster {booster_name:?}: only gbtree is supported"
        )));
    }
    let model = booster
        .get("model")
        .ok_or_else(|| unsupported("no gradient_booster.model".into()))?;
    let trees = model
        .get("trees")
        .and_then(Json::as_array)
        .ok_or_else(|| unsupported("no trees".into()))?;
    if let Some(info) = model.get("tree_info").and_then(Json::as_array)
        && info.iter().any(|g| g.as_i64() != Some(0))
    {
        return Err(unsupported("trees for several outputs".into()));
    }
    Ok(trees)
}

/// A string-valued field of an object (XGBoost writes its parameters as strings).
fn str_field<'a>(obj: &'a Json, key: &str) -> Result<&'a str, ModelError> {
    obj.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| ModelError::UnsupportedXgboost(format!("no string field {key}")))
}

/// Converts one XGBoost tree.
fn parse_tree(tree: &Json) -> Result<TreeArrays, String> {
    let ints = |key: &str| -> Result<Vec<i64>, String> {
        tree.get(key)
            .and_then(Json::as_array)
            .ok_or_else(|| format!("no {key}"))?
            .iter()
            .map(|v| {
                v.as_i64()
                    .or_else(|| v.as_bool().map(i64::from))
                    .ok_or_else(|| format!("{key} holds a non-integer"))
            })
            .collect()
    };
    let left = ints("left_children")?;
    let right = ints("right_children")?;
    let split = ints("split_indices")?;
    let default_left = ints("default_left")?;
    let cond: Vec<f32> = tree
        .get("split_conditions")
        .and_then(Json::as_array)
        .ok_or("no split_conditions")?
        .iter()
        .map(|v| {
            v.as_f64()
                .map(|x| x as f32)
                .ok_or("split_conditions holds a non-number")
        })
        .collect::<Result<_, _>>()?;
    let n = left.len();
    if [right.len(), split.len(), default_left.len(), cond.len()]
        .iter()
        .any(|&l| l != n)
    {
        return Err("node arrays differ in length".into());
    }
    if let Ok(types) = ints("split_type")
        && types.iter().zip(&left).any(|(&t, &l)| t != 0 && l >= 0)
    {
        return Err(
            "categorical splits are not supported; one-hot encode the categories instead".into(),
        );
    }
    let to_i32 = |v: i64| i32::try_from(v).map_err(|_| "child index out of range".to_string());
    // `sum_hessian` (the node covers) is only needed for explanations; absent is allowed.
    let cover: Vec<f32> = match tree.get("sum_hessian").and_then(Json::as_array) {
        Some(a) if a.len() == n => a
            .iter()
            .map(|v| {
                v.as_f64()
                    .map(|x| x as f32)
                    .ok_or("sum_hessian holds a non-number")
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    Ok(TreeArrays {
        feature: split
            .iter()
            .zip(&left)
            .map(|(&s, &l)| {
                if l < 0 {
                    Ok(0)
                } else {
                    u32::try_from(s).map_err(|_| "bad split index".to_string())
                }
            })
            .collect::<Result<_, _>>()?,
        value: cond,
        left: left.iter().map(|&v| to_i32(v)).collect::<Result<_, _>>()?,
        right: right.iter().map(|&v| to_i32(v)).collect::<Result<_, _>>()?,
        default_left: default_left.iter().map(|&d| d != 0).collect(),
        cover,
    })
}
