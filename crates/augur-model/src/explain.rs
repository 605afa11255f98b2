//! Explanations: exact TreeSHAP contributions of every feature column (Lundberg et al. 2018,
//! Algorithm 2, as XGBoost's `pred_contribs` computes it), summed per input field, and their
//! effects in price units.
//!
//! Contributions live in score space (log price for a log-target model): the baseline (the
//! base score plus every tree's cover-weighted mean leaf) plus the contributions is the score,
//! exactly. Prices are `exp(score)`, which is not additive; the price effects are the exact
//! Shapley values of the fields in the game `v(S) = exp(baseline + Σ_{i∈S} φ_i)`, so they sum to
//! the prediction minus the baseline price and keep each field's sign.

use serde::Serialize;

use crate::error::{FieldError, ModelError};
use crate::features::{OutputTransform, Value};
use crate::forest::{ForestArrays, TreeArrays};
use crate::model::Model;

/// One element of a TreeSHAP path: a feature met on the way down and the shares of the weight
/// flowing through when it is out of (`zero`) or in (`one`) the coalition.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// The feature (`usize::MAX` for the root's placeholder).
    feature: usize,
    /// Share of the cover that follows this path when the feature is unknown.
    zero: f64,
    /// 1 when the row follows this path, 0 when it does not.
    one: f64,
    /// The permutation weight.
    weight: f64,
}

/// Adds a feature to the path `path[..d]`, making it `path[..d + 1]` (XGBoost's `ExtendPath`).
fn extend(path: &mut [PathElement], d: usize, zero: f64, one: f64, feature: usize) {
    path[d] = PathElement {
        feature,
        zero,
        one,
        weight: if d == 0 { 1.0 } else { 0.0 },
    };
    for i in (0..d).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / (d + 1) as f64;
        path[i].weight = zero * path[i].weight * (d - i) as f64 / (d + 1) as f64;
    }
}

/// Removes element `at` from the path `path[..=d]`, undoing its extension (XGBoost's
/// `UnwindPath`); the path is then `path[..d]`.
fn unwind(path: &mut [PathElement], d: usize, at: usize) {
    let (one, zero) = (path[at].one, path[at].zero);
    let mut next = path[d].weight;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = path[i].weight;
            path[i].weight = next * (d + 1) as f64 / ((i + 1) as f64 * one);
            next = tmp - path[i].weight * zero * (d - i) as f64 / (d + 1) as f64;
        } else {
            path[i].weight = path[i].weight * (d + 1) as f64 / (zero * (d - i) as f64);
        }
    }
    for i in at..d {
        path[i].feature = path[i + 1].feature;
        path[i].zero = path[i + 1].zero;
        path[i].one = path[i + 1].one;
    }
}

/// The total weight of the path `path[..=d]` with element `at` unwound, without changing it
/// (XGBoost's `UnwoundPathSum`).
fn unwound_sum(path: &[PathElement], d: usize, at: usize) -> f64 {
    let (one, zero) = (path[at].one, path[at].zero);
    let mut next = path[d].weight;
    let mut total = 0.0;
    for i in (0..d).rev() {
        if one != 0.0 {
            let tmp = next * (d + 1) as f64 / ((i + 1) as f64 * one);
            total += tmp;
            next = path[i].weight - tmp * zero * (d - i) as f64 / (d + 1) as f64;
        } else if zero != 0.0 {
            total += path[i].weight / zero / ((d - i) as f64 / (d + 1) as f64);
        }
    }
    total
}

/// One tree's walk: the row, the tree, where contributions go and the path buffer.
struct Walk<'a> {
    /// The tree.
    tree: &'a TreeArrays,
    /// The feature row.
    x: &'a [f32],
    /// Contributions per feature.
    phi: &'a mut [f64],
    /// Every level's path, one after the other (a level copies its parent's and extends it).
    buf: &'a mut [PathElement],
}

/// One step of the recursion: where the parent's path is and how the weight flows in.
#[derive(Clone, Copy)]
struct Step {
    /// Where the parent's path starts in the buffer.
    parent: usize,
    /// Its length.
    len: usize,
    /// The share of the cover coming in when the feature is unknown.
    zero: f64,
    /// Whether the row comes this way (1) or not (0).
    one: f64,
    /// The feature of the split that led here.
    feature: usize,
}

/// The child of inner node `i` row `x` goes to (XGBoost's rule: `x < threshold` left, missing
/// the default way).
fn hot_child(t: &TreeArrays, x: &[f32], i: usize) -> usize {
    let v = x[t.feature[i] as usize];
    let left = if v.is_nan() {
        t.default_left.get(i).copied().unwrap_or(true)
    } else {
        v < t.value[i]
    };
    (if left { t.left[i] } else { t.right[i] }) as usize
}

impl Walk<'_> {
    /// TreeSHAP's recursion at node `i`.
    fn recurse(&mut self, i: usize, s: Step) {
        let off = s.parent + s.len;
        self.buf.copy_within(s.parent..off, off);
        let path = &mut self.buf[off..];
        extend(path, s.len, s.zero, s.one, s.feature);
        let mut d = s.len; // the path is path[..=d]
        let t = self.tree;
        if t.left[i] < 0 {
            let leaf = t.value[i] as f64;
            for k in 1..=d {
                let w = unwound_sum(path, d, k);
                let e = path[k];
                self.phi[e.feature] += w * (e.one - e.zero) * leaf;
            }
            return;
        }
        let hot = hot_child(t, self.x, i);
        let cold = if hot == t.left[i] as usize {
            t.right[i] as usize
        } else {
            t.left[i] as usize
        };
        let w = t.cover[i] as f64;
        let share = |c: usize| if w > 0.0 { t.cover[c] as f64 / w } else { 0.5 };
        let feature = t.feature[i] as usize;
        let (mut in_zero, mut in_one) = (1.0, 1.0);
        if let Some(k) = path[..=d].iter().position(|e| e.feature == feature) {
            in_zero = path[k].zero;
            in_one = path[k].one;
            unwind(path, d, k);
            d -= 1;
        }
        let step = |c: usize, one: f64| Step {
            parent: off,
            len: d + 1,
            zero: share(c) * in_zero,
            one,
            feature,
        };
        let (h, c) = (step(hot, in_one), step(cold, 0.0));
        self.recurse(hot, h);
        self.recurse(cold, c);
    }
}

/// The depth of the deepest leaf below node `i`.
fn depth(t: &TreeArrays, i: usize) -> usize {
    if t.left[i] < 0 {
        return 0;
    }
    1 + depth(t, t.left[i] as usize).max(depth(t, t.right[i] as usize))
}

/// The cover-weighted mean leaf value of a tree: its expected output.
fn tree_mean(t: &TreeArrays, i: usize) -> f64 {
    if t.left[i] < 0 {
        return t.value[i] as f64;
    }
    let (l, r) = (t.left[i] as usize, t.right[i] as usize);
    let (cl, cr) = (t.cover[l] as f64, t.cover[r] as f64);
    if cl + cr <= 0.0 {
        return 0.5 * (tree_mean(t, l) + tree_mean(t, r));
    }
    (cl * tree_mean(t, l) + cr * tree_mean(t, r)) / (cl + cr)
}

/// The SHAP contributions of every feature column to the score of row `x`, and the baseline
/// (the expected score); `baseline + Σ contributions` is the score.
pub(crate) fn contributions(
    forest: &ForestArrays,
    x: &[f32],
) -> Result<(Vec<f64>, f64), ModelError> {
    check_covers(forest)?;
    let mut phi = vec![0.0; forest.num_features];
    let mut baseline = forest.base_score as f64;
    let deepest = forest.trees.iter().map(|t| depth(t, 0)).max().unwrap_or(0);
    // Level k's path has k + 1 elements (the root's placeholder included).
    let mut buf = vec![PathElement::default(); (deepest + 2) * (deepest + 3) / 2];
    let root = Step {
        parent: 0,
        len: 0,
        zero: 1.0,
        one: 1.0,
        feature: usize::MAX,
    };
    for tree in &forest.trees {
        baseline += tree_mean(tree, 0);
        let mut walk = Walk {
            tree,
            x,
            phi: &mut phi,
            buf: &mut buf,
        };
        walk.recurse(0, root);
    }
    Ok((phi, baseline))
}

/// The exact Shapley values of `n = phi.len()` players in the game
/// `v(S) = exp(baseline + Σ_{i∈S} phi_i)`: price effects that sum to
/// `exp(baseline + Σ phi) − exp(baseline)`. Exponential in `n`; meant for input fields (≤ 16).
pub(crate) fn exp_effects(phi: &[f64], baseline: f64) -> Vec<f64> {
    let n = phi.len();
    assert!(n <= 16, "exp_effects is for a handful of fields");
    // weight[s] = s! (n − s − 1)! / n!
    let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
    let weight: Vec<f64> = (0..n)
        .map(|s| fact(s) * fact(n - s - 1) / fact(n))
        .collect();
    let mut effects = vec![0.0; n];
    for mask in 0u32..(1 << n) {
        let size = mask.count_ones() as usize;
        let sum: f64 = (0..n).filter(|i| mask >> i & 1 == 1).map(|i| phi[i]).sum();
        let v = (baseline + sum).exp();
        for (i, e) in effects.iter_mut().enumerate() {
            if mask >> i & 1 == 0 {
                *e += weight[size] * ((baseline + sum + phi[i]).exp() - v);
            }
        }
    }
    effects
}

/// Why a row could not be explained.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// A field is missing or wrong (as for a prediction).
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The model cannot be explained (no node covers recorded).
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// One input field's part in a prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    /// The input field (canonical name).
    pub field: String,
    /// Its SHAP contribution in score space (log price for a log-target model).
    pub score: f64,
    /// Its effect in price units; the effects sum to the prediction minus the baseline.
    pub effect: f64,
}

/// Why a model priced a row as it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The prediction, as the predict calls return it.
    pub prediction: f64,
    /// The row's score computed exactly (in `f64`): `baseline_score + Σ contributions`.
    /// The prediction sums the trees in `f32`, as XGBoost does, so `ln(prediction)` may differ
    /// from it in the sixth digit.
    pub score: f64,
    /// The expected score over the training data (the trees' cover-weighted means).
    pub baseline_score: f64,
    /// The baseline as a price.
    pub baseline: f64,
    /// Per input field, in [`Model::input_fields`] order.
    pub contributions: Vec<Contribution>,
}

impl Model {
    /// Whether [`Model::explain_row`] can work: the trees record node covers.
    pub fn explainable(&self) -> Result<(), ModelError> {
        check_covers(self.forest().arrays())
    }

    /// The SHAP contributions of every feature column (in [`FeaturePipeline::column_names`]
    /// order, score space) and the baseline score: what XGBoost's `pred_contribs` returns, the
    /// baseline last.
    ///
    /// [`FeaturePipeline::column_names`]: crate::features::FeaturePipeline::column_names
    pub fn column_contributions(
        &self,
        values: &[Value<'_>],
    ) -> Result<(Vec<f64>, f64), ExplainError> {
        self.explainable()?;
        let mut x = vec![0.0f32; self.pipeline().num_columns()];
        self.features(values, &mut x)?;
        Ok(contributions(self.forest().arrays(), &x)?)
    }

    /// Explains one row given in [`Model::input_fields`] order: contributions per input field
    /// and their price effects.
    pub fn explain_row(&self, values: &[Value<'_>]) -> Result<Explanation, ExplainError> {
        let (columns, baseline_score) = self.column_contributions(values)?;
        let pipeline = self.pipeline();
        let mut per_field = vec![0.0; self.input_fields().len()];
        for (c, phi) in pipeline.spec().columns.iter().zip(&columns) {
            if let Some(i) = pipeline.input_index(c.field()) {
                per_field[i] += phi;
            }
        }
        let score = baseline_score + per_field.iter().sum::<f64>();
        let prediction = self.predict_row(values)?;
        let log = matches!(pipeline.output(), OutputTransform::Exp);
        let baseline = if log {
            baseline_score.exp()
        } else {
            baseline_score
        };
        let effects = if log {
            let mut e = exp_effects(&per_field, baseline_score);
            // Align with the f32 prediction (a relative change of ~1e-6).
            let exact = score.exp() - baseline;
            if exact.abs() > 1e-9 {
                let k = (prediction - baseline) / exact;
                e.iter_mut().for_each(|v| *v *= k);
            }
            e
        } else {
            per_field.clone()
        };
        let contributions = self
            .input_fields()
            .iter()
            .zip(per_field.iter().zip(effects))
            .map(|(f, (&score, effect))| Contribution {
                field: f.name.clone(),
                score,
                effect,
            })
            .collect();
        Ok(Explanation {
            prediction,
            score,
            baseline_score,
            baseline,
            contributions,
        })
    }

    /// [`Model::explain_row`] for a JSON object (keys matched ignoring ASCII case).
    pub fn explain_json(
        &self,
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Explanation, ExplainError> {
        let mut values = Vec::with_capacity(self.input_fields().len());
        self.values_from_json(object, &mut values)?;
        self.explain_row(&values)
    }
}

/// An error unless every tree records its node covers.
fn check_covers(forest: &ForestArrays) -> Result<(), ModelError> {
    if forest
        .trees
        .iter()
        .any(|t| t.cover.len() != t.feature.len())
    {
        return Err(ModelError::InvalidModel(
            "the model does not record node covers, which explanations need; train it again \
             (or re-import it) with this version of augur"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::Forest;

    /// Brute-force Shapley values of one tree with "missing = follow covers" (the
    /// interventional-free, path-dependent definition TreeSHAP computes).
    fn brute(t: &TreeArrays, x: &[f32], n: usize) -> Vec<f64> {
        fn value(t: &TreeArrays, x: &[f32], known: u32, i: usize) -> f64 {
            if t.left[i] < 0 {
                return t.value[i] as f64;
            }
            let (l, r) = (t.left[i] as usize, t.right[i] as usize);
            let f = t.feature[i] as usize;
            if known >> f & 1 == 1 {
                let go = if x[f] < t.value[i] { l } else { r };
                return value(t, x, known, go);
            }
            let (cl, cr) = (t.cover[l] as f64, t.cover[r] as f64);
            (cl * value(t, x, known, l) + cr * value(t, x, known, r)) / (cl + cr)
        }
        let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
        let mut phi = vec![0.0; n];
        for (i, p) in phi.iter_mut().enumerate() {
            for mask in 0u32..(1 << n) {
                if mask >> i & 1 == 1 {
                    continue;
                }
                let s = mask.count_ones() as usize;
                let w = fact(s) * fact(n - s - 1) / fact(n);
                *p += w * (value(t, x, mask | 1 << i, 0) - value(t, x, mask, 0));
            }
        }
        phi
    }

    /// A depth-3 tree that splits feature 0 twice on one path (the unwind case); feature 2 is
    /// never split on.
    fn tree() -> TreeArrays {
        TreeArrays {
            feature: vec![0, 1, 0, 0, 2, 0, 0, 0, 0],
            value: vec![0.5, 0.3, 0.8, 0.2, 0.6, 1.0, 2.0, 3.0, 4.0],
            left: vec![1, 3, 5, 7, -1, -1, -1, -1, -1],
            right: vec![2, 4, 6, 8, -1, -1, -1, -1, -1],
            default_left: vec![],
            cover: vec![100.0, 60.0, 40.0, 35.0, 25.0, 10.0, 30.0, 15.0, 20.0],
        }
    }

    #[test]
    fn tree_shap_matches_brute_force_shapley_values() {
        let t2 = tree();
        let forest = ForestArrays {
            num_features: 3,
            base_score: 0.25,
            trees: vec![t2.clone()],
        };
        Forest::from_arrays(forest.clone()).expect("a valid tree");
        for x in [
            [0.1f32, 0.1, 0.0],
            [0.9, 0.9, 1.0],
            [0.3, 0.5, 0.0],
            [0.6, 0.1, 1.0],
        ] {
            let (phi, base) = contributions(&forest, &x).unwrap();
            let want = brute(&t2, &x, 3);
            for (a, b) in phi.iter().zip(&want) {
                assert!((a - b).abs() < 1e-9, "{phi:?} vs {want:?}");
            }
            let score = Forest::from_arrays(forest.clone()).unwrap().predict_row(&x);
            let total = base + phi.iter().sum::<f64>();
            assert!((total - score as f64).abs() < 1e-6, "{total} vs {score}");
        }
    }

    #[test]
    fn exp_effects_sum_to_the_price_difference_and_keep_signs() {
        let phi = [0.3, -0.2, 0.05, -0.4, 0.0];
        let base = 9.5;
        let e = exp_effects(&phi, base);
        let total = (base + phi.iter().sum::<f64>()).exp() - base.exp();
        assert!((e.iter().sum::<f64>() - total).abs() < 1e-6 * total.abs().max(1.0));
        for (p, v) in phi.iter().zip(&e) {
            assert!(
                p.signum() == v.signum() || *p == 0.0 && v.abs() < 1e-9,
                "{p} {v}"
            );
        }
    }

    #[test]
    fn models_without_covers_are_refused_with_the_fix() {
        let mut t = tree();
        t.cover.clear();
        let forest = ForestArrays {
            num_features: 3,
            base_score: 0.0,
            trees: vec![t],
        };
        let e = contributions(&forest, &[0.0, 0.0, 0.0]).unwrap_err();
        assert!(e.to_string().contains("train it again"), "{e}");
    }
}
