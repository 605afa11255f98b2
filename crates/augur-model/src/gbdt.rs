//! The gradient-boosted tree trainer: a histogram GBDT in the style of XGBoost's `hist` method,
//! growing trees best-first under depth and leaf limits.
//!
//! Each feature is cut into at most 256 bins once (quantile cuts, or one bin per value when there
//! are few), rows are stored as bin numbers, and a split search scans per-node gradient
//! histograms. A node's histogram is built only for the smaller child; the larger one is the
//! parent's minus it. Everything is single-threaded and seeded, so the same data and parameters
//! always give the same trees; callers get parallelism by training several models at once (the
//! folds of a cross-validation).
//!
//! Splits are emitted in the evaluator's terms ([`crate::forest`]): `x < cut` goes left, where
//! `cut` is the bin boundary, so trained trees route rows exactly as the bins did in training.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::forest::{ForestArrays, TreeArrays};
use crate::rng::Rng;

/// Hyper-parameters of the trainer. Field meanings follow XGBoost's where they share a name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainParams {
    /// Number of boosting rounds (trees).
    pub trees: usize,
    /// Shrinkage applied to every leaf value (XGBoost's `eta`).
    pub learning_rate: f64,
    /// Maximum depth of a leaf (root = 0).
    pub max_depth: u32,
    /// Maximum number of leaves per tree; the best splits are made first.
    pub max_leaves: u32,
    /// Minimum sum of hessians (rows, for squared loss) on each side of a split.
    pub min_child_weight: f64,
    /// L2 regularisation of leaf values (XGBoost's `lambda`).
    pub lambda: f64,
    /// Minimum loss reduction to make a split (XGBoost's `gamma`).
    pub gamma: f64,
    /// Share of rows sampled (without replacement, per tree) to grow each tree.
    pub subsample: f64,
    /// Share of features each tree may split on.
    pub colsample: f64,
    /// Maximum number of bins per feature (2..=256).
    pub max_bins: usize,
    /// Seed of the row and feature sampling.
    pub seed: u64,
    /// Forests averaged into the model, each grown with its own seed (`seed`, `seed + 1`, …):
    /// their trees are concatenated with leaf values divided by this, so the model is still one
    /// additive forest.
    pub ensemble: usize,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            trees: 400,
            learning_rate: 0.08,
            max_depth: 6,
            max_leaves: 48,
            min_child_weight: 2.0,
            lambda: 1.0,
            gamma: 0.0,
            subsample: 0.8,
            colsample: 0.8,
            max_bins: 256,
            seed: 42,
            ensemble: 1,
        }
    }
}

impl TrainParams {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: &str| Err(ModelError::Params(m.to_string()));
        if self.trees == 0 {
            return bad("trees must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning_rate must be in (0, 1]");
        }
        if self.max_depth == 0 || self.max_depth > 30 {
            return bad("max_depth must be in 1..=30");
        }
        if self.max_leaves < 2 {
            return bad("max_leaves must be at least 2");
        }
        let non_negative = |x: f64| x.is_finite() && x >= 0.0;
        if !non_negative(self.min_child_weight)
            || !non_negative(self.lambda)
            || !non_negative(self.gamma)
        {
            return bad("min_child_weight, lambda and gamma must be >= 0");
        }
        if !(self.subsample > 0.0 && self.subsample <= 1.0) {
            return bad("subsample must be in (0, 1]");
        }
        if !(self.colsample > 0.0 && self.colsample <= 1.0) {
            return bad("colsample must be in (0, 1]");
        }
        if !(2..=256).contains(&self.max_bins) {
            return bad("max_bins must be in 2..=256");
        }
        if !(1..=16).contains(&self.ensemble) {
            return bad("ensemble must be in 1..=16");
        }
        Ok(())
    }
}

/// Feature values turned into bin numbers, row-major.
struct Binned {
    /// Number of features per row.
    n_feat: usize,
    /// `bins[row * n_feat + f]`.
    bins: Vec<u8>,
    /// Per feature: the cut values; bin `b` holds `cuts[b - 1] <= x < cuts[b]`.
    cuts: Vec<Vec<f32>>,
    /// Per feature: where its bins start in a histogram; one extra entry at the end.
    offsets: Vec<usize>,
}

impl Binned {
    /// Cuts every feature and bins every row.
    fn new(x: &[f32], n_rows: usize, n_feat: usize, max_bins: usize) -> Binned {
        let mut cuts = Vec::with_capacity(n_feat);
        let mut column = Vec::with_capacity(n_rows);
        for f in 0..n_feat {
            column.clear();
            column.extend((0..n_rows).map(|r| x[r * n_feat + f]));
            cuts.push(feature_cuts(&mut column, max_bins));
        }
        let mut offsets = Vec::with_capacity(n_feat + 1);
        let mut total = 0;
        for c in &cuts {
            offsets.push(total);
            total += c.len() + 1;
        }
        offsets.push(total);
        let mut bins = vec![0u8; n_rows * n_feat];
        for r in 0..n_rows {
            for f in 0..n_feat {
                let v = x[r * n_feat + f];
                bins[r * n_feat + f] = cuts[f].partition_point(|&c| c <= v) as u8;
            }
        }
        Binned {
            n_feat,
            bins,
            cuts,
            offsets,
        }
    }

    /// Total histogram length (sum of bins over features).
    fn total_bins(&self) -> usize {
        self.offsets[self.n_feat]
    }
}

/// Computes at most `max_bins - 1` cut values for one feature (sorts `values` in place).
///
/// With few distinct values every value gets its own bin (cuts halfway between neighbours);
/// otherwise bins hold roughly equal numbers of rows and never split a run of equal values.
fn feature_cuts(values: &mut [f32], max_bins: usize) -> Vec<f32> {
    values.sort_unstable_by(f32::total_cmp);
    let mut uniq: Vec<(f32, usize)> = Vec::new();
    for &v in values.iter() {
        match uniq.last_mut() {
            Some((u, c)) if *u == v => *c += 1,
            _ => uniq.push((v, 1)),
        }
    }
    let midpoint = |a: f32, b: f32| {
        let m = ((a as f64 + b as f64) / 2.0) as f32;
        if m > a { m } else { b }
    };
    let mut cuts = Vec::new();
    if uniq.len() <= max_bins {
        for w in uniq.windows(2) {
            cuts.push(midpoint(w[0].0, w[1].0));
        }
        return cuts;
    }
    let mut remaining = values.len();
    let mut bins_left = max_bins;
    let mut acc = 0usize;
    for (i, &(v, c)) in uniq.iter().enumerate() {
        acc += c;
        remaining -= c;
        let target = (acc + remaining) as f64 / bins_left as f64;
        if i + 1 < uniq.len() && acc as f64 >= target && bins_left > 1 {
            cuts.push(midpoint(v, uniq[i + 1].0));
            bins_left -= 1;
            acc = 0;
        }
    }
    cuts
}

/// The best split found for one node.
#[derive(Debug, Clone, Copy)]
struct Split {
    /// Loss reduction (already halved, as in XGBoost).
    gain: f64,
    /// Feature to split on.
    feature: usize,
    /// Rows with a bin `<= bin` go left.
    bin: usize,
}

/// A leaf that may still be split.
struct Candidate {
    /// Index of its node in the tree being built.
    node: usize,
    /// Its rows: `rows[start..end]` of the row buffer.
    start: usize,
    /// End of its rows.
    end: usize,
    /// Depth of the node.
    depth: u32,
    /// Gradient and hessian sums per bin.
    hist: Vec<[f64; 2]>,
    /// Gradient sum.
    g: f64,
    /// Hessian sum.
    h: f64,
    /// The best split, if any is allowed and worth making.
    split: Option<Split>,
}

/// A node of the tree being built.
#[derive(Debug, Clone, Copy)]
struct BuildNode {
    /// Split feature (inner nodes).
    feature: usize,
    /// Split bin (inner nodes): bins `<= bin` go left.
    bin: usize,
    /// Index of the left child; the right child follows it. `usize::MAX` for a leaf.
    left: usize,
    /// Leaf value, learning rate applied.
    value: f64,
    /// The hessian sum of the rows that reached the node.
    cover: f64,
}

/// A fresh leaf node (value set when the tree is finished).
const LEAF: BuildNode = BuildNode {
    feature: 0,
    bin: 0,
    left: usize::MAX,
    value: 0.0,
    cover: 0.0,
};

/// The position of the leaf with the largest gain; ties go to the earliest node (determinism).
#[inline]
fn best_leaf(leaves: &[Candidate]) -> Option<usize> {
    leaves
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.split.map(|s| (i, s.gain, c.node)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)))
        .map(|(i, _, _)| i)
}

/// Trains `params.ensemble` forests with consecutive seeds and averages them into one (see
/// [`TrainParams::ensemble`]); otherwise as [`train_one`].
pub fn train(
    x: &[f32],
    y: &[f64],
    n_feat: usize,
    params: &TrainParams,
    on_tree: &(dyn Fn() + Sync),
) -> Result<ForestArrays, ModelError> {
    params.validate()?;
    let k = params.ensemble;
    let mut merged: Option<ForestArrays> = None;
    for i in 0..k {
        let member = TrainParams {
            seed: params.seed.wrapping_add(i as u64),
            ..params.clone()
        };
        let mut f = train_one(x, y, n_feat, &member, on_tree)?;
        if k > 1 {
            for t in &mut f.trees {
                for (v, l) in t.value.iter_mut().zip(&t.left) {
                    if *l < 0 {
                        *v /= k as f32;
                    }
                }
            }
        }
        match &mut merged {
            None => merged = Some(f),
            Some(m) => m.trees.extend(f.trees),
        }
    }
    Ok(merged.expect("at least one member"))
}

/// Trains a regression forest with squared loss on `x` (`n_rows` rows of `n_feat` features,
/// row-major, all finite) and targets `y`. `on_tree` is called after each tree (for progress).
fn train_one(
    x: &[f32],
    y: &[f64],
    n_feat: usize,
    params: &TrainParams,
    on_tree: &(dyn Fn() + Sync),
) -> Result<ForestArrays, ModelError> {
    params.validate()?;
    let n_rows = y.len();
    if x.len() != n_rows * n_feat {
        return Err(ModelError::Params(
            "feature matrix and targets differ in rows".into(),
        ));
    }
    if n_feat == 0 {
        return Err(ModelError::Params("no features to train on".into()));
    }
    if n_rows < 2 {
        return Err(ModelError::NotEnoughData(format!(
            "{n_rows} rows to train on"
        )));
    }
    if x.iter().any(|v| !v.is_finite()) || y.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::Params("training data must be finite".into()));
    }
    let data = Binned::new(x, n_rows, n_feat, params.max_bins);
    let base_score = (y.iter().sum::<f64>() / n_rows as f64) as f32;
    let mut pred = vec![base_score as f64; n_rows];
    let mut grad = vec![0.0f64; n_rows];
    let hess = vec![1.0f64; n_rows];
    let mut rng = Rng::new(params.seed);
    let mut grower = Grower::new(&data, params);
    let mut trees = Vec::with_capacity(params.trees);
    for _ in 0..params.trees {
        for r in 0..n_rows {
            grad[r] = pred[r] - y[r];
        }
        let nodes = grower.grow(&grad, &hess, &mut rng);
        for (r, p) in pred.iter_mut().enumerate() {
            let row = &data.bins[r * n_feat..(r + 1) * n_feat];
            let mut i = 0;
            while nodes[i].left != usize::MAX {
                let n = nodes[i];
                i = if (row[n.feature] as usize) <= n.bin {
                    n.left
                } else {
                    n.left + 1
                };
            }
            *p += nodes[i].value;
        }
        trees.push(to_arrays(&nodes, &data));
        on_tree();
    }
    Ok(ForestArrays {
        num_features: n_feat,
        base_score,
        trees,
    })
}

/// Converts a built tree into the evaluator's portable form.
fn to_arrays(nodes: &[BuildNode], data: &Binned) -> TreeArrays {
    let mut t = TreeArrays {
        feature: Vec::with_capacity(nodes.len()),
        value: Vec::with_capacity(nodes.len()),
        left: Vec::with_capacity(nodes.len()),
        right: Vec::with_capacity(nodes.len()),
        default_left: Vec::new(),
        cover: nodes.iter().map(|n| n.cover as f32).collect(),
    };
    for n in nodes {
        if n.left == usize::MAX {
            t.feature.push(0);
            t.value.push(n.value as f32);
            t.left.push(-1);
            t.right.push(-1);
        } else {
            t.feature.push(n.feature as u32);
            t.value.push(data.cuts[n.feature][n.bin]);
            t.left.push(n.left as i32);
            t.right.push(n.left as i32 + 1);
        }
    }
    t
}

/// Reusable buffers for growing trees over one binned data set.
struct Grower<'a> {
    /// The binned training rows.
    data: &'a Binned,
    /// The parameters.
    params: &'a TrainParams,
    /// Row indices; each candidate owns a contiguous range.
    rows: Vec<u32>,
    /// Scratch space for partitioning.
    scratch: Vec<u32>,
    /// Spare histograms, reused across nodes and trees.
    pool: Vec<Vec<[f64; 2]>>,
    /// Features the current tree may split on.
    allowed: Vec<bool>,
}

impl<'a> Grower<'a> {
    /// Creates the buffers.
    fn new(data: &'a Binned, params: &'a TrainParams) -> Self {
        Grower {
            data,
            params,
            rows: Vec::with_capacity(data.bins.len() / data.n_feat.max(1)),
            scratch: Vec::new(),
            pool: Vec::new(),
            allowed: vec![true; data.n_feat],
        }
    }

    /// A zeroed histogram, from the pool when possible.
    fn take_hist(&mut self) -> Vec<[f64; 2]> {
        match self.pool.pop() {
            Some(mut h) => {
                h.fill([0.0; 2]);
                h
            }
            None => vec![[0.0; 2]; self.data.total_bins()],
        }
    }

    /// Adds the gradients of `rows[start..end]` into `hist`.
    fn build_hist(&self, hist: &mut [[f64; 2]], start: usize, end: usize, g: &[f64], h: &[f64]) {
        let nf = self.data.n_feat;
        let offsets = &self.data.offsets[..nf];
        for &r in &self.rows[start..end] {
            let r = r as usize;
            let (gr, hr) = (g[r], h[r]);
            let bins = &self.data.bins[r * nf..(r + 1) * nf];
            for (b, off) in bins.iter().zip(offsets) {
                let e = &mut hist[off + *b as usize];
                e[0] += gr;
                e[1] += hr;
            }
        }
    }

    /// The best allowed split of a node with histogram `hist` and sums `g`, `h`.
    fn best_split(&self, hist: &[[f64; 2]], g: f64, h: f64) -> Option<Split> {
        let p = self.params;
        let score = |g: f64, h: f64| g * g / (h + p.lambda);
        let parent = score(g, h);
        let mut best: Option<Split> = None;
        for f in 0..self.data.n_feat {
            if !self.allowed[f] {
                continue;
            }
            let bins = &hist[self.data.offsets[f]..self.data.offsets[f + 1]];
            let (mut gl, mut hl) = (0.0, 0.0);
            for (b, e) in bins[..bins.len() - 1].iter().enumerate() {
                gl += e[0];
                hl += e[1];
                let (gr, hr) = (g - gl, h - hl);
                if hl < p.min_child_weight || hr < p.min_child_weight || hl <= 0.0 || hr <= 0.0 {
                    continue;
                }
                let gain = 0.5 * (score(gl, hl) + score(gr, hr) - parent);
                if gain > p.gamma.max(1e-12) && best.is_none_or(|s| gain > s.gain) {
                    best = Some(Split {
                        gain,
                        feature: f,
                        bin: b,
                    });
                }
            }
        }
        best
    }

    /// Grows one tree on a fresh row sample and returns its nodes (node 0 is the root).
    fn grow(&mut self, g: &[f64], h: &[f64], rng: &mut Rng) -> Vec<BuildNode> {
        let p = self.params;
        self.sample_rows(g.len(), rng);
        if p.colsample < 1.0 {
            self.sample_features(rng);
        }

        let mut nodes = vec![LEAF];
        let mut leaves = vec![self.root_candidate(g, h)];
        let mut n_leaves = 1u32;
        while n_leaves < p.max_leaves {
            let Some(pos) = best_leaf(&leaves) else {
                break;
            };
            let parent = leaves.swap_remove(pos);
            let (lc, rc) = self.split_leaf(&mut nodes, parent, g, h);
            leaves.push(lc);
            leaves.push(rc);
            n_leaves += 1;
        }
        for c in leaves {
            nodes[c.node].value = -c.g / (c.h + p.lambda) * p.learning_rate;
            nodes[c.node].cover = c.h;
            self.pool.push(c.hist);
        }
        nodes
    }

    /// Fills the row buffer with this tree's row sample (every row when not subsampling).
    fn sample_rows(&mut self, n_rows: usize, rng: &mut Rng) {
        let p = self.params;
        self.rows.clear();
        if p.subsample < 1.0 {
            self.rows
                .extend((0..n_rows as u32).filter(|_| rng.next_f64() < p.subsample));
            if self.rows.len() < 2 {
                self.rows.extend(0..n_rows as u32);
            }
        } else {
            self.rows.extend(0..n_rows as u32);
        }
    }

    /// Picks the features this tree may split on (a partial shuffle, `colsample` of them).
    fn sample_features(&mut self, rng: &mut Rng) {
        let nf = self.data.n_feat;
        let keep = ((self.params.colsample * nf as f64).ceil() as usize).clamp(1, nf);
        let mut order: Vec<usize> = (0..nf).collect();
        for i in 0..keep {
            let j = i + (rng.next_u64() % (nf - i) as u64) as usize;
            order.swap(i, j);
        }
        self.allowed.fill(false);
        for &f in &order[..keep] {
            self.allowed[f] = true;
        }
    }

    /// The root's candidate: all sampled rows, their histogram and gradient sums.
    fn root_candidate(&mut self, g: &[f64], h: &[f64]) -> Candidate {
        let mut root_hist = self.take_hist();
        let n = self.rows.len();
        self.build_hist(&mut root_hist, 0, n, g, h);
        let (gs, hs) = self.rows.iter().fold((0.0, 0.0), |(a, b), &r| {
            (a + g[r as usize], b + h[r as usize])
        });
        self.candidate(0, 0, n, 0, root_hist, gs, hs)
    }

    /// Splits a chosen leaf: partitions its rows, makes its node an inner node with two new
    /// leaves, and returns the candidates of the left and right child.
    #[inline]
    fn split_leaf(
        &mut self,
        nodes: &mut Vec<BuildNode>,
        parent: Candidate,
        g: &[f64],
        h: &[f64],
    ) -> (Candidate, Candidate) {
        let split = parent.split.expect("chosen leaf has a split");
        let mid = self.partition(parent.start, parent.end, split);
        let left = nodes.len();
        nodes[parent.node] = BuildNode {
            feature: split.feature,
            bin: split.bin,
            left,
            value: 0.0,
            cover: parent.h,
        };
        nodes.push(LEAF);
        nodes.push(LEAF);
        let (l_range, r_range) = ((parent.start, mid), (mid, parent.end));
        let left_smaller = mid - parent.start <= parent.end - mid;
        let small_range = if left_smaller { l_range } else { r_range };
        // Build the smaller child's histogram; the larger one's is the parent's minus it.
        let mut small = self.take_hist();
        self.build_hist(&mut small, small_range.0, small_range.1, g, h);
        let mut large = parent.hist;
        for (a, b) in large.iter_mut().zip(&small) {
            a[0] -= b[0];
            a[1] -= b[1];
        }
        let (sg, sh) = sums(&small, &self.data.offsets);
        let (lg, lh) = (parent.g - sg, parent.h - sh);
        let ((lhist, lgs, lhs), (rhist, rgs, rhs)) = if left_smaller {
            ((small, sg, sh), (large, lg, lh))
        } else {
            ((large, lg, lh), (small, sg, sh))
        };
        let d = parent.depth + 1;
        let lc = self.candidate(left, l_range.0, l_range.1, d, lhist, lgs, lhs);
        let rc = self.candidate(left + 1, r_range.0, r_range.1, d, rhist, rgs, rhs);
        (lc, rc)
    }

    /// Wraps a node's rows and histogram, finding its best split if it may still be split.
    #[allow(clippy::too_many_arguments)]
    fn candidate(
        &self,
        node: usize,
        start: usize,
        end: usize,
        depth: u32,
        hist: Vec<[f64; 2]>,
        g: f64,
        h: f64,
    ) -> Candidate {
        let p = self.params;
        let split = if depth < p.max_depth && h >= 2.0 * p.min_child_weight && end - start >= 2 {
            self.best_split(&hist, g, h)
        } else {
            None
        };
        Candidate {
            node,
            start,
            end,
            depth,
            hist,
            g,
            h,
            split,
        }
    }

    /// Stable-partitions `rows[start..end]` by the split; returns where the right side starts.
    fn partition(&mut self, start: usize, end: usize, split: Split) -> usize {
        let nf = self.data.n_feat;
        self.scratch.clear();
        let mut w = start;
        for i in start..end {
            let r = self.rows[i];
            if (self.data.bins[r as usize * nf + split.feature] as usize) <= split.bin {
                self.rows[w] = r;
                w += 1;
            } else {
                self.scratch.push(r);
            }
        }
        self.rows[w..end].copy_from_slice(&self.scratch);
        w
    }
}

/// Gradient and hessian sums of a histogram (taken over its first feature's bins, which hold
/// every row once).
fn sums(hist: &[[f64; 2]], offsets: &[usize]) -> (f64, f64) {
    hist[offsets[0]..offsets[1]]
        .iter()
        .fold((0.0, 0.0), |(a, b), e| (a + e[0], b + e[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forest::Forest;

    #[test]
    fn cuts_give_each_value_a_bin_when_few() {
        let mut v = vec![3.0, 1.0, 2.0, 2.0, 1.0];
        assert_eq!(feature_cuts(&mut v, 256), vec![1.5, 2.5]);
    }

    #[test]
    fn cuts_respect_max_bins() {
        let mut v: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
        let cuts = feature_cuts(&mut v, 16);
        assert!(cuts.len() <= 15 && cuts.len() >= 14, "{}", cuts.len());
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn learns_a_step_function_and_is_deterministic() {
        let n = 400;
        let x: Vec<f32> = (0..n).flat_map(|i| [i as f32, (i % 7) as f32]).collect();
        let y: Vec<f64> = (0..n).map(|i| if i < 200 { 10.0 } else { 20.0 }).collect();
        let params = TrainParams {
            trees: 50,
            learning_rate: 0.3,
            ..TrainParams::default()
        };
        let a = train(&x, &y, 2, &params, &|| {}).unwrap();
        let b = train(&x, &y, 2, &params, &|| {}).unwrap();
        assert_eq!(a, b);
        let forest = Forest::from_arrays(a).unwrap();
        assert!((forest.predict_row(&[10.0, 3.0]) - 10.0).abs() < 0.5);
        assert!((forest.predict_row(&[350.0, 3.0]) - 20.0).abs() < 0.5);
    }

    #[test]
    fn an_ensemble_is_the_average_of_its_members() {
        let n = 300;
        let x: Vec<f32> = (0..n).flat_map(|i| [i as f32, (i % 11) as f32]).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| (i as f64 / 30.0).sin() + (i % 11) as f64)
            .collect();
        let base = TrainParams {
            trees: 20,
            ..TrainParams::default()
        };
        let member = |seed| {
            let p = TrainParams {
                seed,
                ..base.clone()
            };
            Forest::from_arrays(train(&x, &y, 2, &p, &|| {}).unwrap()).unwrap()
        };
        let (a, b) = (member(42), member(43));
        let both = TrainParams {
            ensemble: 2,
            ..base.clone()
        };
        let e = Forest::from_arrays(train(&x, &y, 2, &both, &|| {}).unwrap()).unwrap();
        assert_eq!(e.num_trees(), 40);
        for row in [[5.0f32, 1.0], [150.0, 7.0], [299.0, 3.0]] {
            let (pa, pb, pe) = (
                a.predict_row(&row),
                b.predict_row(&row),
                e.predict_row(&row),
            );
            assert!((pe - (pa + pb) / 2.0).abs() < 1e-4, "{pa} {pb} {pe}");
        }
        let bad = TrainParams {
            ensemble: 0,
            ..base
        };
        assert!(bad.validate().is_err());
    }
}
