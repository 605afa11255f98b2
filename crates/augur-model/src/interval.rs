//! Calibrated price ranges: split-conformal residual quantiles from the cross-validation's
//! out-of-fold predictions, by segment of predicted price, learned at train time and stored
//! with the model.
//!
//! Residuals are taken in the model's score space (log price for a log-target model, so a range
//! is a multiplicative band around the prediction). The out-of-fold predictions are cut into
//! [`SEGMENTS`] equally full segments by predicted score — cheap and dear cars do not miss by
//! the same share — and each segment keeps the residual quantiles at `(1 − level) / 2` and
//! `(1 + level) / 2`, with the finite-sample correction of split conformal prediction (rank
//! `⌈(n + 1)·q⌉`). A range is then `prediction × exp(lo)` to `prediction × exp(hi)`.
//!
//! Honest evaluation: the coverage reported is cross-fitted — for each fold, the quantiles are
//! learned from the other folds' out-of-fold residuals only and tested on this fold's rows, so no
//! row is ever covered by quantiles it helped set.

use serde::{Deserialize, Serialize};

use crate::features::OutputTransform;

/// Segments of predicted price with their own residual quantiles.
pub const SEGMENTS: usize = 5;

/// The default nominal coverage of a price range.
pub const DEFAULT_LEVEL: f64 = 0.8;

/// A model's price range, as stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceInterval {
    /// The nominal coverage, e.g. 0.8.
    pub level: f64,
    /// Upper score bounds of every segment but the last (ascending).
    pub edges: Vec<f64>,
    /// Per segment: the lower residual quantile in score space (≤ 0 in practice).
    pub lo: Vec<f64>,
    /// Per segment: the upper residual quantile in score space.
    pub hi: Vec<f64>,
    /// Whether scores are log prices (ranges multiply) or prices (ranges add).
    pub log_scale: bool,
    /// How the ranges did on out-of-fold rows (cross-fitted).
    pub evaluation: IntervalEvaluation,
}

/// The honest evaluation of a price range on out-of-fold rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntervalEvaluation {
    /// The share of rows whose actual price fell inside their range.
    pub coverage: f64,
    /// The mean width of the ranges, in price units.
    pub mean_width: f64,
    /// The mean width relative to the prediction (0.25 = 25 %).
    pub mean_relative_width: f64,
    /// Rows evaluated.
    pub rows: usize,
}

impl PriceInterval {
    /// Learns the range from out-of-fold predictions: `actual[i]`, `predicted[i]` and
    /// `fold[i]` (the fold row `i` was held out in). `None` when there are too few rows.
    pub fn learn(
        level: f64,
        output: OutputTransform,
        actual: &[f64],
        predicted: &[f64],
        fold: &[usize],
    ) -> Option<PriceInterval> {
        let log_scale = matches!(output, OutputTransform::Exp);
        let to_score = |p: f64| if log_scale { p.max(1e-9).ln() } else { p };
        let scores: Vec<f64> = predicted.iter().map(|&p| to_score(p)).collect();
        let resid: Vec<f64> = actual
            .iter()
            .zip(&scores)
            .map(|(&a, &s)| to_score(a) - s)
            .collect();
        let all: Vec<usize> = (0..actual.len()).collect();
        let mut interval = Self::fit(level, log_scale, &scores, &resid, &all)?;
        interval.evaluation = cross_fit(level, log_scale, &scores, &resid, actual, fold)?;
        Some(interval)
    }

    /// Quantiles from the rows `rows` (scores and residuals indexed by row).
    fn fit(
        level: f64,
        log_scale: bool,
        scores: &[f64],
        resid: &[f64],
        rows: &[usize],
    ) -> Option<PriceInterval> {
        if rows.len() < SEGMENTS * 10 {
            return None;
        }
        let mut order = rows.to_vec();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let mut edges = Vec::with_capacity(SEGMENTS - 1);
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for k in 0..SEGMENTS {
            let part = &order[k * order.len() / SEGMENTS..(k + 1) * order.len() / SEGMENTS];
            if k + 1 < SEGMENTS {
                edges.push(scores[*part.last()?]);
            }
            let mut r: Vec<f64> = part.iter().map(|&i| resid[i]).collect();
            r.sort_by(f64::total_cmp);
            lo.push(conformal_quantile(&r, (1.0 - level) / 2.0, false));
            hi.push(conformal_quantile(&r, (1.0 + level) / 2.0, true));
        }
        Some(PriceInterval {
            level,
            edges,
            lo,
            hi,
            log_scale,
            evaluation: IntervalEvaluation {
                coverage: 0.0,
                mean_width: 0.0,
                mean_relative_width: 0.0,
                rows: 0,
            },
        })
    }

    /// The range around a prediction.
    pub fn range(&self, prediction: f64) -> (f64, f64) {
        let score = if self.log_scale {
            prediction.max(1e-9).ln()
        } else {
            prediction
        };
        let k = self.edges.partition_point(|&e| e < score);
        let (lo, hi) = (self.lo[k], self.hi[k]);
        if self.log_scale {
            (prediction * lo.exp(), prediction * hi.exp())
        } else {
            (prediction + lo, prediction + hi)
        }
    }

    /// Checks the stored arrays agree (a model file could have been edited).
    pub(crate) fn validate(&self) -> Result<(), String> {
        let n = self.lo.len();
        if n == 0 || self.hi.len() != n || self.edges.len() + 1 != n {
            return Err("price interval arrays differ in length".into());
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !finite(&self.lo) || !finite(&self.hi) || !finite(&self.edges) {
            return Err("price interval values must be finite".into());
        }
        if self.lo.iter().zip(&self.hi).any(|(l, h)| l > h) {
            return Err("a price interval's lower bound is above its upper one".into());
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err("a price interval's level must be in (0, 1)".into());
        }
        Ok(())
    }
}

/// The `q` quantile of sorted `r` with split conformal prediction's finite-sample correction:
/// the `⌈(n + 1)·q⌉`-th smallest for an upper bound, the `⌊(n + 1)·q⌋`-th for a lower one
/// (clamped to the sample).
fn conformal_quantile(r: &[f64], q: f64, upper: bool) -> f64 {
    let n = r.len();
    let pos = (n + 1) as f64 * q;
    let rank = if upper { pos.ceil() } else { pos.floor() } as usize;
    r[rank.clamp(1, n) - 1]
}

/// Cross-fitted evaluation: each fold's rows are covered by quantiles learned from the other
/// folds' rows.
fn cross_fit(
    level: f64,
    log_scale: bool,
    scores: &[f64],
    resid: &[f64],
    actual: &[f64],
    fold: &[usize],
) -> Option<IntervalEvaluation> {
    let folds = fold.iter().copied().max()? + 1;
    let (mut covered, mut width, mut rel, mut rows) = (0usize, 0.0, 0.0, 0usize);
    for k in 0..folds {
        let others: Vec<usize> = (0..fold.len()).filter(|&i| fold[i] != k).collect();
        let interval = PriceInterval::fit(level, log_scale, scores, resid, &others)?;
        for i in (0..fold.len()).filter(|&i| fold[i] == k) {
            let p = if log_scale {
                scores[i].exp()
            } else {
                scores[i]
            };
            let (lo, hi) = interval.range(p);
            covered += usize::from(actual[i] >= lo && actual[i] <= hi);
            width += hi - lo;
            rel += (hi - lo) / p.abs().max(1e-9);
            rows += 1;
        }
    }
    let n = rows.max(1) as f64;
    Some(IntervalEvaluation {
        coverage: covered as f64 / n,
        mean_width: width / n,
        mean_relative_width: rel / n,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Log-normal noise whose spread grows with the price: segments must adapt.
    fn synthetic(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>, Vec<usize>) {
        let mut rng = Rng::new(seed);
        let (mut actual, mut pred, mut fold) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let p = 2000.0 + 30000.0 * rng.next_f64();
            let sigma = 0.02 + 0.2 * (p / 32000.0);
            // A sum of uniforms: roughly normal.
            let z: f64 = (0..12).map(|_| rng.next_f64()).sum::<f64>() - 6.0;
            actual.push(p * (sigma * z).exp());
            pred.push(p);
            fold.push(i % 5);
        }
        (actual, pred, fold)
    }

    #[test]
    fn coverage_is_near_the_level_and_ranges_widen_with_the_noise() {
        let (actual, pred, fold) = synthetic(20_000, 7);
        for level in [0.5, 0.8, 0.95] {
            let iv = PriceInterval::learn(level, OutputTransform::Exp, &actual, &pred, &fold)
                .expect("enough rows");
            iv.validate().unwrap();
            let c = iv.evaluation.coverage;
            assert!((c - level).abs() < 0.015, "level {level}: coverage {c}");
        }
        let iv = PriceInterval::learn(0.8, OutputTransform::Exp, &actual, &pred, &fold).unwrap();
        let (lo1, hi1) = iv.range(3000.0);
        let (lo2, hi2) = iv.range(30000.0);
        assert!(lo1 < 3000.0 && hi1 > 3000.0 && lo2 < 30000.0 && hi2 > 30000.0);
        assert!((hi2 - lo2) / 30000.0 > 3.0 * (hi1 - lo1) / 3000.0);
        // Fresh rows from the same distribution: covered at the level too.
        let (a2, p2, _) = synthetic(20_000, 8);
        let inside = a2
            .iter()
            .zip(&p2)
            .filter(|(a, p)| {
                let (lo, hi) = iv.range(**p);
                **a >= lo && **a <= hi
            })
            .count();
        let c = inside as f64 / a2.len() as f64;
        assert!((c - 0.8).abs() < 0.015, "fresh coverage {c}");
    }

    #[test]
    fn too_few_rows_give_no_range_and_bad_arrays_are_refused() {
        let (actual, pred, fold) = synthetic(30, 1);
        assert!(PriceInterval::learn(0.8, OutputTransform::Exp, &actual, &pred, &fold).is_none());
        let (actual, pred, fold) = synthetic(2000, 1);
        let mut iv =
            PriceInterval::learn(0.8, OutputTransform::Identity, &actual, &pred, &fold).unwrap();
        assert!(!iv.log_scale);
        iv.lo.pop();
        assert!(iv.validate().is_err());
    }
}
