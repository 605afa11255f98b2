//! The tree evaluator: one flat node array for a whole ensemble, shared by trained and imported
//! models.
//!
//! Every node is 16 bytes: a feature index (its top bit is the default direction for a missing
//! value), a threshold, and two child indices. A leaf points at itself on both sides and keeps its
//! value in the threshold slot, so walking a tree is a fixed number of branch-free steps (the
//! tree's depth) followed by one read. The batch path walks blocks of rows through one tree at a
//! time, which keeps the tree in cache and lets the CPU overlap the independent walks.
//!
//! Semantics match XGBoost's: go left when `x < threshold`, go the default way when `x` is NaN,
//! and sum in `f32` starting from the base score, adding trees in order. Both the single-row and
//! the batch path sum in that order, so they agree bit for bit.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// The top bit of [`Node::feature`]: set when a missing value goes left.
const DEFAULT_LEFT: u32 = 1 << 31;

/// Rows per block in the batch path.
const BLOCK: usize = 64;

/// Trees walked side by side in the single-row path.
const GROUP: usize = 4;

/// One node of the flat array (see the module docs for the encoding).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(16))]
struct Node {
    /// Feature index, with [`DEFAULT_LEFT`] as the missing-value direction.
    feature: u32,
    /// Split threshold for an inner node; the leaf value for a leaf.
    value: f32,
    /// Index of the left child (the node itself for a leaf).
    left: u32,
    /// Index of the right child (the node itself for a leaf).
    right: u32,
}

/// Where one tree starts in the node array, and how many steps reach any of its leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TreeRef {
    /// Index of the root node.
    root: u32,
    /// The depth of the deepest leaf (0 for a tree that is a single leaf).
    depth: u32,
}

/// One tree in the portable (serialized) form: parallel arrays, like XGBoost's JSON.
///
/// Node 0 is the root. `left[i] == -1` marks a leaf, whose value is `value[i]`; for an inner node
/// `value[i]` is the threshold (`x < value` goes left) and `feature[i]` the feature index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeArrays {
    /// Feature index per node (ignored for leaves).
    pub feature: Vec<u32>,
    /// Threshold per inner node, value per leaf.
    pub value: Vec<f32>,
    /// Left child per node, `-1` for a leaf.
    pub left: Vec<i32>,
    /// Right child per node, `-1` for a leaf.
    pub right: Vec<i32>,
    /// Missing-value direction per node (`true` = left); empty means "all left".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_left: Vec<bool>,
}

/// The portable form of a [`Forest`], as stored in model files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestArrays {
    /// The number of input features every row must have.
    pub num_features: usize,
    /// The starting value of every sum.
    pub base_score: f32,
    /// The trees, added in this order.
    pub trees: Vec<TreeArrays>,
}

/// A validated, ready-to-evaluate tree ensemble. Immutable, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Forest {
    /// All nodes of all trees.
    nodes: Vec<Node>,
    /// One entry per tree, in summation order.
    trees: Vec<TreeRef>,
    /// The largest depth in each whole group of [`GROUP`] consecutive trees.
    group_depth: Vec<u32>,
    /// The starting value of every sum.
    base_score: f32,
    /// The number of input features.
    num_features: usize,
    /// The portable form, kept for saving.
    arrays: ForestArrays,
}

impl Forest {
    /// Validates the portable form and builds the flat evaluator from it.
    pub fn from_arrays(arrays: ForestArrays) -> Result<Forest, ModelError> {
        let total: usize = arrays.trees.iter().map(|t| t.feature.len()).sum();
        if total >= (u32::MAX >> 1) as usize {
            return Err(ModelError::InvalidModel("too many nodes".into()));
        }
        if arrays.num_features >= (DEFAULT_LEFT as usize) {
            return Err(ModelError::InvalidModel("too many features".into()));
        }
        let mut nodes = Vec::with_capacity(total);
        let mut trees = Vec::with_capacity(arrays.trees.len());
        for (t, tree) in arrays.trees.iter().enumerate() {
            let n = tree.feature.len();
            let bad = |what: &str| ModelError::InvalidModel(format!("tree {t}: {what}"));
            if n == 0 {
                return Err(bad("no nodes"));
            }
            if tree.value.len() != n || tree.left.len() != n || tree.right.len() != n {
                return Err(bad("node arrays differ in length"));
            }
            if !tree.default_left.is_empty() && tree.default_left.len() != n {
                return Err(bad("default_left has the wrong length"));
            }
            let base = nodes.len() as u32;
            // Depth of each node, computed from the root; also proves every node is reached once.
            let mut depth = vec![u32::MAX; n];
            depth[0] = 0;
            let mut max_depth = 0;
            let mut stack = vec![0usize];
            while let Some(i) = stack.pop() {
                let (l, r) = (tree.left[i], tree.right[i]);
                if (l < 0) != (r < 0) {
                    return Err(bad("a node has exactly one child"));
                }
                if l < 0 {
                    max_depth = max_depth.max(depth[i]);
                    continue;
                }
                if tree.feature[i] as usize >= arrays.num_features {
                    return Err(bad("feature index out of range"));
                }
                if tree.value[i].is_nan() {
                    return Err(bad("NaN threshold"));
                }
                for c in [l as usize, r as usize] {
                    if c >= n || depth[c] != u32::MAX {
                        return Err(bad("child index out of range or shared"));
                    }
                    depth[c] = depth[i] + 1;
                    stack.push(c);
                }
            }
            if depth.contains(&u32::MAX) {
                return Err(bad("unreachable nodes"));
            }
            for i in 0..n {
                let me = base + i as u32;
                let node = if tree.left[i] < 0 {
                    if !tree.value[i].is_finite() {
                        return Err(bad("leaf value is not finite"));
                    }
                    Node {
                        feature: 0,
                        value: tree.value[i],
                        left: me,
                        right: me,
                    }
                } else {
                    let dl = tree.default_left.get(i).copied().unwrap_or(true);
                    Node {
                        feature: tree.feature[i] | if dl { DEFAULT_LEFT } else { 0 },
                        value: tree.value[i],
                        left: base + tree.left[i] as u32,
                        right: base + tree.right[i] as u32,
                    }
                };
                nodes.push(node);
            }
            trees.push(TreeRef {
                root: base,
                depth: max_depth,
            });
        }
        if arrays.num_features == 0 && !nodes.is_empty() && trees.iter().any(|t| t.depth > 0) {
            return Err(ModelError::InvalidModel(
                "splits on a model without features".into(),
            ));
        }
        let group_depth = trees
            .chunks_exact(GROUP)
            .map(|g| g.iter().map(|t| t.depth).max().unwrap_or(0))
            .collect();
        Ok(Forest {
            nodes,
            trees,
            group_depth,
            base_score: arrays.base_score,
            num_features: arrays.num_features,
            arrays,
        })
    }

    /// The portable form (what a model file stores).
    pub fn arrays(&self) -> &ForestArrays {
        &self.arrays
    }

    /// The number of features each row must have.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The number of trees.
    pub fn num_trees(&self) -> usize {
        self.trees.len()
    }

    /// The total number of nodes over all trees.
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Scores one row of `num_features()` values.
    ///
    /// # Panics
    /// If `row.len() != self.num_features()`.
    pub fn predict_row(&self, row: &[f32]) -> f32 {
        assert_eq!(
            row.len(),
            self.num_features,
            "row has the wrong number of features"
        );
        let nodes = &self.nodes[..];
        let mut acc = self.base_score;
        // Walk GROUP trees side by side: their walks are independent, so the CPU overlaps the
        // memory loads; the sum still adds the trees in order.
        let mut groups = self.trees.chunks_exact(GROUP);
        for (group, &depth) in (&mut groups).zip(&self.group_depth) {
            let mut i: [u32; GROUP] = std::array::from_fn(|k| group[k].root);
            for _ in 0..depth {
                for v in i.iter_mut() {
                    // SAFETY: `row` has `num_features` values (asserted above) and each walk
                    // starts at a root and only follows checked child indices; a finished
                    // walk stays on its leaf.
                    *v = unsafe { step(nodes, row, *v) };
                }
            }
            for v in i {
                acc += nodes[v as usize].value;
            }
        }
        for tree in groups.remainder() {
            let mut i = tree.root;
            for _ in 0..tree.depth {
                // SAFETY: `row` has `num_features` values (asserted above) and `i` starts at a
                // root and only follows checked child indices.
                i = unsafe { step(nodes, row, i) };
            }
            acc += nodes[i as usize].value;
        }
        acc
    }

    /// Scores `rows.len() / num_features()` rows stored one after another, writing one score per
    /// row into `out`. The result is bit-identical to calling [`Forest::predict_row`] per row.
    ///
    /// # Panics
    /// If `rows.len() != out.len() * self.num_features()`.
    pub fn predict_batch(&self, rows: &[f32], out: &mut [f32]) {
        let nf = self.num_features;
        assert_eq!(rows.len(), out.len() * nf, "batch has the wrong shape");
        let nodes = &self.nodes[..];
        let mut idx = [0u32; BLOCK];
        for (block_rows, block_out) in rows.chunks(BLOCK * nf.max(1)).zip(out.chunks_mut(BLOCK)) {
            let m = block_out.len();
            block_out.fill(self.base_score);
            for tree in &self.trees {
                idx[..m].fill(tree.root);
                for _ in 0..tree.depth {
                    for (r, i) in idx[..m].iter_mut().enumerate() {
                        // SAFETY: `block_rows` holds `m` whole rows of `nf` values (the shape
                        // is asserted above), and `i` follows checked child indices from a root.
                        *i = unsafe {
                            step(nodes, block_rows.get_unchecked(r * nf..(r + 1) * nf), *i)
                        };
                    }
                }
                for (o, &i) in block_out.iter_mut().zip(&idx[..m]) {
                    *o += nodes[i as usize].value;
                }
            }
        }
    }
}

/// One branch-free step down a tree: the child of node `i` that `row` goes to.
///
/// # Safety
/// `i` must index `nodes`, and `row` must hold every feature a node of `nodes` reads. Both hold
/// for a [`Forest`]: [`Forest::from_arrays`] checks every child index and feature index, and
/// the callers check `row.len() == num_features` and start from a tree's root.
#[inline(always)]
unsafe fn step(nodes: &[Node], row: &[f32], i: u32) -> u32 {
    // SAFETY: guaranteed by the caller, see above.
    let node = unsafe { *nodes.get_unchecked(i as usize) };
    // SAFETY: as above; the feature index was checked against `num_features`.
    let x = unsafe { *row.get_unchecked((node.feature & !DEFAULT_LEFT) as usize) };
    let go_left = (x < node.value) | (x.is_nan() & (node.feature & DEFAULT_LEFT != 0));
    if go_left { node.left } else { node.right }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stump on feature 1 at 0.5 (missing goes right), leaves 1 and 2, plus a lone leaf 10.
    fn small() -> Forest {
        Forest::from_arrays(ForestArrays {
            num_features: 2,
            base_score: 0.5,
            trees: vec![
                TreeArrays {
                    feature: vec![1, 0, 0],
                    value: vec![0.5, 1.0, 2.0],
                    left: vec![1, -1, -1],
                    right: vec![2, -1, -1],
                    default_left: vec![false, false, false],
                },
                TreeArrays {
                    feature: vec![0],
                    value: vec![10.0],
                    left: vec![-1],
                    right: vec![-1],
                    default_left: vec![],
                },
            ],
        })
        .unwrap()
    }

    #[test]
    fn routes_left_below_threshold_and_missing_by_default() {
        let f = small();
        assert_eq!(f.predict_row(&[0.0, 0.4]), 11.5);
        assert_eq!(f.predict_row(&[0.0, 0.5]), 12.5);
        assert_eq!(f.predict_row(&[0.0, f32::NAN]), 12.5);
    }

    #[test]
    fn batch_matches_single_rows() {
        let f = small();
        let rows: Vec<f32> = (0..300).flat_map(|i| [0.0, i as f32 / 300.0]).collect();
        let mut out = vec![0.0; 300];
        f.predict_batch(&rows, &mut out);
        for (i, o) in out.iter().enumerate() {
            assert_eq!(*o, f.predict_row(&rows[i * 2..i * 2 + 2]));
        }
    }

    #[test]
    fn rejects_bad_children() {
        let bad = ForestArrays {
            num_features: 1,
            base_score: 0.0,
            trees: vec![TreeArrays {
                feature: vec![0, 0],
                value: vec![0.5, 1.0],
                left: vec![1, -1],
                right: vec![5, -1],
                default_left: vec![],
            }],
        };
        assert!(Forest::from_arrays(bad).is_err());
    }
}
