//! Labelled metrics: a [`Family`] holds one child metric per distinct set of label values.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};

/// Children sharing one hash of their label values (almost always exactly one).
type Bucket<M> = Vec<(Box<[String]>, M)>;

/// The shared state of a [`Family`].
struct FamilyCore<M> {
    /// The label names, in the order values are given.
    labels: Box<[String]>,
    /// Makes a new child (a counter, a gauge, or a histogram with the family's buckets).
    make: Box<dyn Fn() -> M + Send + Sync>,
    /// The children by hash of their label values.
    children: RwLock<HashMap<u64, Bucket<M>>>,
}

/// A labelled metric: `with(&["/predict", "200"])` returns the child for those label values,
/// creating it at zero the first time. Clones share the children.
///
/// Every distinct combination of values becomes a time series that lives until
/// [`Family::remove`]: use labels with a small, bounded set of values (endpoints, status
/// codes, connector names), never row data or ids.
pub struct Family<M> {
    /// Label names, the constructor and the children.
    core: Arc<FamilyCore<M>>,
}

impl<M> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family {
            core: self.core.clone(),
        }
    }
}

impl<M> fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("labels", &self.core.labels)
            .finish_non_exhaustive()
    }
}

/// Hashes label values (stable within the process; used only as a map key).
fn hash_values(values: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    values.len().hash(&mut h);
    for v in values {
        v.hash(&mut h);
    }
    h.finish()
}

/// Whether stored values equal the given ones.
fn same(stored: &[String], values: &[&str]) -> bool {
    stored.len() == values.len() && stored.iter().zip(values).all(|(a, b)| a == b)
}

impl<M: Clone> Family<M> {
    /// A family with these label names whose children are made by `make`. Usually created
    /// through [`crate::Registry::counter_vec`] and friends, which also check the names.
    pub fn new(labels: &[&str], make: impl Fn() -> M + Send + Sync + 'static) -> Family<M> {
        Family {
            core: Arc::new(FamilyCore {
                labels: labels.iter().map(|l| l.to_string()).collect(),
                make: Box::new(make),
                children: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The label names.
    pub fn label_names(&self) -> &[String] {
        &self.core.labels
    }

    /// The child for these label values (one per label name, in order), created on first use.
    ///
    /// # Panics
    /// If the number of values differs from the number of label names.
    pub fn with(&self, values: &[&str]) -> M {
        assert_eq!(
            values.len(),
            self.core.labels.len(),
            "metric family with labels {:?} given values {values:?}",
            self.core.labels
        );
        let h = hash_values(values);
        {
            let children = self.core.children.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, m)) = children
                .get(&h)
                .and_then(|b| b.iter().find(|(k, _)| same(k, values)))
            {
                return m.clone();
            }
        }
        let mut children = self
            .core
            .children
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let bucket = children.entry(h).or_default();
        if let Some((_, m)) = bucket.iter().find(|(k, _)| same(k, values)) {
            return m.clone();
        }
        let m = (self.core.make)();
        bucket.push((values.iter().map(|v| v.to_string()).collect(), m.clone()));
        m
    }

    /// Removes the child for these label values (it disappears from the output); returns
    /// whether there was one. Handles to it keep working but are no longer exported.
    pub fn remove(&self, values: &[&str]) -> bool {
        let h = hash_values(values);
        let mut children = self
            .core
            .children
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let Some(bucket) = children.get_mut(&h) else {
            return false;
        };
        let before = bucket.len();
        bucket.retain(|(k, _)| !same(k, values));
        let removed = bucket.len() != before;
        if bucket.is_empty() {
            children.remove(&h);
        }
        removed
    }

    /// Every child with its label values, sorted by the values.
    pub fn children(&self) -> Vec<(Box<[String]>, M)> {
        let children = self.core.children.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(Box<[String]>, M)> = children
            .values()
            .flat_map(|b| b.iter().map(|(k, m)| (k.clone(), m.clone())))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Counter;

    #[test]
    fn with_returns_the_same_child() {
        let f = Family::new(&["a", "b"], Counter::new);
        f.with(&["x", "1"]).inc();
        f.with(&["x", "1"]).inc();
        f.with(&["y", "1"]).inc();
        let children = f.children();
        assert_eq!(children.len(), 2);
        assert_eq!(&*children[0].0, &["x".to_string(), "1".to_string()]);
        assert_eq!(children[0].1.get(), 2);
        assert!(f.remove(&["x", "1"]));
        assert!(!f.remove(&["x", "1"]));
        assert_eq!(f.children().len(), 1);
    }

    #[test]
    #[should_panic(expected = "given values")]
    fn wrong_arity_panics() {
        let f = Family::new(&["a"], Counter::new);
        f.with(&["x", "y"]);
    }
}
