//! The tree evaluator: one flat node array for a whole ensemble, shared by trained and imported
//! models.
//!
//! Every node is 12 bytes: a feature index, a threshold and the index of its left child; the
//! right child always sits right after the left one (trees are laid out breadth-first on load,
//! whatever order the file had). A step down a tree is then `left + (x >= threshold)`, with no
//! branch. A leaf points at itself and has a NaN threshold, so any further step stays on it:
//! walking a tree is a fixed number of steps (its depth) followed by one read of the leaf
//! value. The single-row path walks eight trees side by side; the batch path walks blocks of 64
//! rows through one tree at a time, which keeps the tree in cache. Either way the walks are
//! independent, so the CPU overlaps their memory loads.
//!
//! Missing values (NaN) take each node's default direction, on a separate path used only for
//! rows (or blocks) that contain a NaN. Semantics match XGBoost's: go left when
//! `x < threshold`, go the default way when `x` is NaN, and sum in `f32` starting from the base
//! score, adding trees in order. Both paths sum in that order, so they agree bit for bit.

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Rows per block in the batch path.
const BLOCK: usize = 64;

/// Trees walked side by side in the single-row path.
const GROUP: usize = 8;

/// One node of the flat array (see the module docs for the encoding).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct Node {
    /// The feature an inner node tests (0 for a leaf).
    feature: u32,
    /// Inner node: go right when `x >= threshold`. Leaf: NaN, so every step stays.
    threshold: f32,
    /// Index of the left child; the right child is `left + 1`. A leaf's own index.
    left: u32,
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
    /// Per node: the training weight (sum of hessians; rows for squared loss) that reached it,
    /// XGBoost's `sum_hessian`. Needed for explanations only; empty in models made before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cover: Vec<f32>,
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
    /// Per node: whether a missing value goes left (always true for a leaf, so it stays).
    default_left: Vec<bool>,
    /// Per node: the leaf value (0 for inner nodes).
    leaf_value: Vec<f32>,
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

/// The flat arrays of a [`Forest`] while its trees are added.
struct FlatTrees {
    /// All nodes of the trees added so far.
    nodes: Vec<Node>,
    /// Per node: whether a missing value goes left.
    default_left: Vec<bool>,
    /// Per node: the leaf value (0 for inner nodes).
    leaf_value: Vec<f32>,
    /// One entry per tree added.
    trees: Vec<TreeRef>,
}

/// A tree's breadth-first relayout: children of an inner node get two consecutive new slots.
struct Layout {
    /// `order[k]` is the file's index of new node k.
    order: Vec<usize>,
    /// Per new node: the new index of its left child (its own index for a leaf).
    new_left: Vec<usize>,
    /// The depth of the deepest leaf.
    max_depth: u32,
}

/// Checks that a tree has nodes and that its arrays agree in length.
fn check_lengths(tree: &TreeArrays) -> Result<(), &'static str> {
    let n = tree.feature.len();
    if n == 0 {
        return Err("no nodes");
    }
    if tree.value.len() != n || tree.left.len() != n || tree.right.len() != n {
        return Err("node arrays differ in length");
    }
    if !tree.default_left.is_empty() && tree.default_left.len() != n {
        return Err("default_left has the wrong length");
    }
    if !tree.cover.is_empty() && tree.cover.len() != n {
        return Err("cover has the wrong length");
    }
    if tree.cover.iter().any(|c| !c.is_finite() || *c < 0.0) {
        return Err("a node cover is negative or not finite");
    }
    Ok(())
}

/// Lays a tree out breadth-first, validating every node; also proves every node is reached
/// exactly once from the root.
fn breadth_first(tree: &TreeArrays, num_features: usize) -> Result<Layout, &'static str> {
    let n = tree.feature.len();
    let mut seen = vec![false; n];
    seen[0] = true;
    let mut order = vec![0usize];
    let mut depth_of = vec![0u32];
    let mut new_left = Vec::with_capacity(n);
    let mut max_depth = 0;
    let mut k = 0;
    while k < order.len() {
        let i = order[k];
        let (l, r) = (tree.left[i], tree.right[i]);
        if (l < 0) != (r < 0) {
            return Err("a node has exactly one child");
        }
        if l < 0 {
            if !tree.value[i].is_finite() {
                return Err("leaf value is not finite");
            }
            max_depth = max_depth.max(depth_of[k]);
            new_left.push(k);
        } else {
            if tree.feature[i] as usize >= num_features {
                return Err("feature index out of range");
            }
            if tree.value[i].is_nan() {
                return Err("NaN threshold");
            }
            new_left.push(order.len());
            for c in [l as usize, r as usize] {
                if c >= n || seen[c] {
                    return Err("child index out of range or shared");
                }
                seen[c] = true;
                order.push(c);
                depth_of.push(depth_of[k] + 1);
            }
        }
        k += 1;
    }
    if order.len() != n {
        return Err("unreachable nodes");
    }
    Ok(Layout {
        order,
        new_left,
        max_depth,
    })
}

impl FlatTrees {
    /// Empty arrays with room for `nodes` nodes and `trees` trees.
    fn with_capacity(nodes: usize, trees: usize) -> Self {
        FlatTrees {
            nodes: Vec::with_capacity(nodes),
            default_left: Vec::with_capacity(nodes),
            leaf_value: Vec::with_capacity(nodes),
            trees: Vec::with_capacity(trees),
        }
    }

    /// Appends a validated tree in its breadth-first layout.
    fn push_tree(&mut self, tree: &TreeArrays, layout: &Layout) {
        let base = self.nodes.len() as u32;
        for (k, &i) in layout.order.iter().enumerate() {
            let leaf = tree.left[i] < 0;
            self.nodes.push(Node {
                feature: if leaf { 0 } else { tree.feature[i] },
                threshold: if leaf { f32::NAN } else { tree.value[i] },
                left: base + layout.new_left[k] as u32,
            });
            self.default_left
                .push(leaf || tree.default_left.get(i).copied().unwrap_or(true));
            self.leaf_value.push(if leaf { tree.value[i] } else { 0.0 });
        }
        self.trees.push(TreeRef {
            root: base,
            depth: layout.max_depth,
        });
    }
}

impl Forest {
    /// Validates the portable form and builds the flat evaluator from it.
    pub fn from_arrays(arrays: ForestArrays) -> Result<Forest, ModelError> {
        let total: usize = arrays.trees.iter().map(|t| t.feature.len()).sum();
        if total >= u32::MAX as usize {
            return Err(ModelError::InvalidModel("too many nodes".into()));
        }
        if arrays.num_features > u32::MAX as usize {
            return Err(ModelError::InvalidModel("too many features".into()));
        }
        let mut flat = FlatTrees::with_capacity(total, arrays.trees.len());
        for (t, tree) in arrays.trees.iter().enumerate() {
            let bad = |what: &str| ModelError::InvalidModel(format!("tree {t}: {what}"));
            check_lengths(tree).map_err(bad)?;
            let layout = breadth_first(tree, arrays.num_features).map_err(bad)?;
            flat.push_tree(tree, &layout);
        }
        if arrays.num_features == 0 && flat.trees.iter().any(|t| t.depth > 0) {
            return Err(ModelError::InvalidModel(
                "splits on a model without features".into(),
            ));
        }
        let group_depth = flat
            .trees
            .chunks_exact(GROUP)
            .map(|g| g.iter().map(|t| t.depth).max().unwrap_or(0))
            .collect();
        Ok(Forest {
            nodes: flat.nodes,
            default_left: flat.default_left,
            leaf_value: flat.leaf_value,
            trees: flat.trees,
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
        if row.iter().any(|x| x.is_nan()) {
            self.row_walk::<true>(row)
        } else {
            self.row_walk::<false>(row)
        }
    }

    /// [`Forest::predict_row`] after the shape check, with or without missing-value handling.
    #[inline(always)]
    fn row_walk<const NAN: bool>(&self, row: &[f32]) -> f32 {
        let mut acc = self.base_score;
        // Walk GROUP trees side by side; the sum still adds the trees in order.
        let mut groups = self.trees.chunks_exact(GROUP);
        for (group, &depth) in (&mut groups).zip(&self.group_depth) {
            let mut i: [u32; GROUP] = std::array::from_fn(|k| group[k].root);
            for _ in 0..depth {
                for v in i.iter_mut() {
                    // SAFETY: `row` has `num_features` values (checked by the caller) and each
                    // walk starts at a root and only follows checked child indices; a finished
                    // walk stays on its leaf.
                    *v = unsafe { self.step::<NAN>(row, *v) };
                }
            }
            for v in i {
                acc += self.leaf_value[v as usize];
            }
        }
        for tree in groups.remainder() {
            let mut i = tree.root;
            for _ in 0..tree.depth {
                // SAFETY: as above.
                i = unsafe { self.step::<NAN>(row, i) };
            }
            acc += self.leaf_value[i as usize];
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
        for (block_rows, block_out) in rows.chunks(BLOCK * nf.max(1)).zip(out.chunks_mut(BLOCK)) {
            if block_rows.iter().any(|x| x.is_nan()) {
                self.block_walk::<true>(block_rows, block_out);
            } else {
                self.block_walk::<false>(block_rows, block_out);
            }
        }
    }

    /// Scores one block of at most [`BLOCK`] rows, tree by tree.
    #[inline(always)]
    fn block_walk<const NAN: bool>(&self, block_rows: &[f32], block_out: &mut [f32]) {
        let nf = self.num_features;
        let m = block_out.len();
        debug_assert_eq!(block_rows.len(), m * nf);
        let mut idx = [0u32; BLOCK];
        block_out.fill(self.base_score);
        for tree in &self.trees {
            idx[..m].fill(tree.root);
            for _ in 0..tree.depth {
                for (r, i) in idx[..m].iter_mut().enumerate() {
                    // SAFETY: `block_rows` holds `m` whole rows of `nf` values (the shape is
                    // asserted by the caller), and `i` follows checked child indices from a root.
                    *i = unsafe {
                        self.step::<NAN>(block_rows.get_unchecked(r * nf..(r + 1) * nf), *i)
                    };
                }
            }
            for (o, &i) in block_out.iter_mut().zip(&idx[..m]) {
                *o += self.leaf_value[i as usize];
            }
        }
    }

    /// One step down a tree: the child of node `i` that `row` goes to (`i` itself for a leaf).
    /// With `NAN = false` the row must contain no NaN.
    ///
    /// # Safety
    /// `i` must index the node array, and `row` must hold `num_features` values. Both hold
    /// for walks that start at a root: [`Forest::from_arrays`] checks every child index and
    /// feature index, and the callers check the row length.
    #[inline(always)]
    unsafe fn step<const NAN: bool>(&self, row: &[f32], i: u32) -> u32 {
        // SAFETY: guaranteed by the caller, see above.
        let node = unsafe { *self.nodes.get_unchecked(i as usize) };
        // SAFETY: as above; the feature index was checked against `num_features`.
        let x = unsafe { *row.get_unchecked(node.feature as usize) };
        if NAN && x.is_nan() {
            // SAFETY: `default_left` has one entry per node.
            let left = unsafe { *self.default_left.get_unchecked(i as usize) };
            return node.left + (!left) as u32;
        }
        node.left + (x >= node.threshold) as u32
    }
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
                    cover: Vec::new(),
                },
                TreeArrays {
                    feature: vec![0],
                    value: vec![10.0],
                    left: vec![-1],
                    right: vec![-1],
                    default_left: vec![],
                    cover: Vec::new(),
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
                cover: Vec::new(),
            }],
        };
        assert!(Forest::from_arrays(bad).is_err());
    }

    /// The naive reading of the portable form, for comparison.
    fn reference(a: &ForestArrays, row: &[f32]) -> f32 {
        let mut acc = a.base_score;
        for t in &a.trees {
            let mut i = 0usize;
            while t.left[i] >= 0 {
                let x = row[t.feature[i] as usize];
                let left = if x.is_nan() {
                    t.default_left.get(i).copied().unwrap_or(true)
                } else {
                    x < t.value[i]
                };
                i = if left {
                    t.left[i] as usize
                } else {
                    t.right[i] as usize
                };
            }
            acc += t.value[i];
        }
        acc
    }

    #[test]
    fn any_node_order_and_missing_values_match_the_naive_walk() {
        // Children stored far apart and out of order, leaves at different depths.
        let tree = TreeArrays {
            feature: vec![0, 0, 1, 0, 0, 1, 0],
            value: vec![0.5, 7.0, 0.25, -3.0, 4.0, 0.75, 5.0],
            left: vec![2, -1, 5, -1, -1, 3, -1],
            right: vec![1, -1, 4, -1, -1, 6, -1],
            default_left: vec![false, true, true, true, true, false, true],
            cover: Vec::new(),
        };
        let a = ForestArrays {
            num_features: 2,
            base_score: 0.25,
            trees: vec![tree.clone(); 7],
        };
        let f = Forest::from_arrays(a.clone()).unwrap();
        let mut rng = crate::rng::Rng::new(7);
        let mut rows = Vec::new();
        for _ in 0..500 {
            for _ in 0..2 {
                let r = rng.next_f64();
                rows.push(if r < 0.1 {
                    f32::NAN
                } else {
                    rng.next_f64() as f32
                });
            }
        }
        let mut out = vec![0.0; 500];
        f.predict_batch(&rows, &mut out);
        for (i, o) in out.iter().enumerate() {
            let row = &rows[i * 2..i * 2 + 2];
            assert_eq!(*o, reference(&a, row), "row {row:?}");
            assert_eq!(f.predict_row(row), *o);
        }
    }
}
