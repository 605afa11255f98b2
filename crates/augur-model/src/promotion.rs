//! The promotion gate: whether a candidate model may replace the one in service, and why not.
//!
//! Two checks, the same wherever a model is promoted (`augur models promote`, a server's
//! `/admin/promote` and its store watcher):
//! - **input signature**: the candidate must read exactly the served model's input fields (names
//!   ignoring ASCII case, and their kinds). Callers send rows shaped for the served model; a
//!   model that wants other fields would fail every one of them. `force` does not lift this.
//! - **quality**: the candidate's cross-validated MAE may be worse than the served model's by at
//!   most `max_mae_increase` (relative, default 2 %); a candidate without cross-validated
//!   metrics cannot show that when the served model has them. `force` lifts this check.

use crate::features::{FieldType, InputField};
use crate::model::Model;

/// The default largest relative increase of cross-validated MAE a promotion accepts.
pub const DEFAULT_MAX_MAE_INCREASE: f64 = 0.02;

/// How strict a promotion is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromotionPolicy {
    /// The largest relative increase of cross-validated MAE accepted (0.02 = 2 % worse).
    pub max_mae_increase: f64,
    /// Skip the quality check (the input signature is always checked).
    pub force: bool,
}

impl Default for PromotionPolicy {
    fn default() -> Self {
        PromotionPolicy {
            max_mae_increase: DEFAULT_MAX_MAE_INCREASE,
            force: false,
        }
    }
}

impl PromotionPolicy {
    /// The same policy with `force` set.
    pub fn forced(self, force: bool) -> Self {
        PromotionPolicy { force, ..self }
    }

    /// Checks the margin (a finite, non-negative number).
    pub fn validate(&self) -> Result<(), String> {
        if self.max_mae_increase.is_finite() && self.max_mae_increase >= 0.0 {
            Ok(())
        } else {
            Err(format!(
                "the largest MAE increase must be a number >= 0 (0.02 = 2 %), got {}",
                self.max_mae_increase
            ))
        }
    }
}

/// Why a promotion was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The candidate reads other input fields than the served model.
    /// (how they differ, the candidate's tag, the served model's tag)
    #[error(
        "{1} does not take the inputs {2} takes ({0}); requests shaped for {2} would fail on it"
    )]
    Signature(String, String, String),
    /// The candidate's cross-validated MAE is worse than allowed.
    #[error(
        "{candidate} has a cross-validated MAE of {cand_mae:.2}, {pct:.1} % worse than \
         {current}'s {cur_mae:.2} (the limit is {limit:.1} %); use force to promote it anyway"
    )]
    WorseMae {
        /// The candidate's tag.
        candidate: String,
        /// The served model's tag.
        current: String,
        /// The candidate's pooled CV MAE.
        cand_mae: f64,
        /// The served model's pooled CV MAE.
        cur_mae: f64,
        /// How much worse, in percent.
        pct: f64,
        /// The accepted increase, in percent.
        limit: f64,
    },
    /// The candidate has no cross-validated metrics while the served model has.
    #[error(
        "{candidate} has no cross-validated MAE to compare with {current}'s {cur_mae:.2} \
         (trained with --folds 0, or imported); use force to promote it anyway"
    )]
    NoMetrics {
        /// The candidate's tag.
        candidate: String,
        /// The served model's tag.
        current: String,
        /// The served model's pooled CV MAE.
        cur_mae: f64,
    },
}

/// Checks whether `candidate` may replace `current` under `policy`.
pub fn check(current: &Model, candidate: &Model, policy: &PromotionPolicy) -> Result<(), Refusal> {
    if let Some(diff) = signature_difference(current.input_fields(), candidate.input_fields()) {
        return Err(Refusal::Signature(
            diff,
            candidate.tag().to_string(),
            current.tag().to_string(),
        ));
    }
    if policy.force {
        return Ok(());
    }
    let Some(cur) = current.meta().cv() else {
        return Ok(());
    };
    let cur_mae = cur.pooled.mae;
    let Some(cand) = candidate.meta().cv() else {
        return Err(Refusal::NoMetrics {
            candidate: candidate.tag().to_string(),
            current: current.tag().to_string(),
            cur_mae,
        });
    };
    let cand_mae = cand.pooled.mae;
    if cand_mae > cur_mae * (1.0 + policy.max_mae_increase) {
        return Err(Refusal::WorseMae {
            candidate: candidate.tag().to_string(),
            current: current.tag().to_string(),
            cand_mae,
            cur_mae,
            pct: 100.0 * (cand_mae / cur_mae - 1.0),
            limit: 100.0 * policy.max_mae_increase,
        });
    }
    Ok(())
}

/// How two input signatures differ, in words; `None` when they are the same.
pub fn signature_difference(current: &[InputField], candidate: &[InputField]) -> Option<String> {
    let find = |fields: &[InputField], name: &str| -> Option<FieldType> {
        fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.kind)
    };
    let kind = |k: FieldType| match k {
        FieldType::Numeric => "numeric",
        FieldType::Categorical => "categorical",
    };
    let mut parts = Vec::new();
    let missing: Vec<&str> = current
        .iter()
        .filter(|f| find(candidate, &f.name).is_none())
        .map(|f| f.name.as_str())
        .collect();
    if !missing.is_empty() {
        parts.push(format!("it lacks {}", missing.join(", ")));
    }
    let extra: Vec<&str> = candidate
        .iter()
        .filter(|f| find(current, &f.name).is_none())
        .map(|f| f.name.as_str())
        .collect();
    if !extra.is_empty() {
        parts.push(format!("it wants {}", extra.join(", ")));
    }
    for f in current {
        if let Some(k) = find(candidate, &f.name).filter(|k| *k != f.kind) {
            parts.push(format!(
                "{} is {} there, {} here",
                f.name,
                kind(k),
                kind(f.kind)
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: FieldType) -> InputField {
        InputField {
            name: name.into(),
            kind,
        }
    }

    #[test]
    fn signatures_compare_names_ignoring_case_and_kinds() {
        let a = vec![
            field("model", FieldType::Categorical),
            field("engineSize", FieldType::Numeric),
        ];
        let same = vec![
            field("enginesize", FieldType::Numeric),
            field("Model", FieldType::Categorical),
        ];
        assert_eq!(signature_difference(&a, &same), None);
        let other = vec![
            field("houses", FieldType::Numeric),
            field("engineSize", FieldType::Categorical),
        ];
        let d = signature_difference(&a, &other).expect("different");
        assert!(d.contains("it lacks model"), "{d}");
        assert!(d.contains("it wants houses"), "{d}");
        assert!(
            d.contains("engineSize is categorical there, numeric here"),
            "{d}"
        );
    }

    #[test]
    fn the_margin_must_be_a_non_negative_number() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let p = PromotionPolicy {
                max_mae_increase: bad,
                force: false,
            };
            assert!(p.validate().is_err());
        }
        assert!(PromotionPolicy::default().validate().is_ok());
    }
}
