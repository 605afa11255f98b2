//! Labelled metrics: [`Family`] is prometheus-client's `Family`, addressed by label values
//! (`&["/predict", "200"]`) instead of a label-set type.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::family::MetricConstructor;

/// The label values of one child, with the family's label names for encoding.
///
/// The values are kept in one string, each as `<byte length>:<value>`, so that building a key
/// in [`Family::with`] costs one allocation whatever the number of labels, and two different
/// tuples of values never make the same string. Equality and hashing look at the values only:
/// the names are the same for every child of a family.
#[derive(Debug, Clone)]
pub(crate) struct LabelSet {
    /// The family's label names.
    names: &'static [&'static str],
    /// The values, length-prefixed.
    values: String,
}

impl LabelSet {
    /// The key for `values` (one per name).
    fn new(names: &'static [&'static str], values: &[&str]) -> LabelSet {
        let mut s = String::with_capacity(values.iter().map(|v| v.len() + 3).sum());
        for v in values {
            let _ = write!(s, "{}:{v}", v.len());
        }
        LabelSet { names, values: s }
    }

    /// The values, in order.
    fn values(&self) -> impl Iterator<Item = &str> {
        let mut rest = self.values.as_str();
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_once(':')?;
            let (value, tail) = tail.split_at(len.parse().ok()?);
            rest = tail;
            Some(value)
        })
    }
}

impl PartialEq for LabelSet {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl Eq for LabelSet {}

impl std::hash::Hash for LabelSet {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.values.hash(state);
    }
}

impl EncodeLabelSet for LabelSet {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        for (name, value) in self.names.iter().zip(self.values()) {
            (*name, value).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// Label names, stored once per distinct list for the life of the process (families are
/// declared in code, so there are few), so that keys carry a plain `&'static` to them.
fn intern(labels: &[&str]) -> &'static [&'static str] {
    static LISTS: Mutex<Vec<&'static [&'static str]>> = Mutex::new(Vec::new());
    let mut lists = LISTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = lists.iter().find(|l| **l == labels) {
        return l;
    }
    let list: &'static [&'static str] = Box::leak(
        labels
            .iter()
            .map(|l| &*Box::leak(Box::<str>::from(*l)))
            .collect(),
    );
    lists.push(list);
    list
}

/// Makes a family's children (a counter, a gauge, or a histogram with the family's buckets).
pub(crate) struct Make<M>(Arc<dyn Fn() -> M + Send + Sync>);

impl<M> Clone for Make<M> {
    fn clone(&self) -> Self {
        Make(self.0.clone())
    }
}

impl<M> MetricConstructor<M> for Make<M> {
    fn new_metric(&self) -> M {
        (self.0)()
    }
}

/// prometheus-client's family with augur's label-set type.
pub(crate) type Inner<M> = prometheus_client::metrics::family::Family<LabelSet, M, Make<M>>;

/// A labelled metric: `with(&["/predict", "200"])` returns the child for those label values,
/// creating it at zero the first time. Clones share the children.
///
/// Every distinct combination of values becomes a time series that lives until
/// [`Family::remove`]: use labels with a small, bounded set of values (endpoints, status
/// codes, connector names), never row data or ids.
pub struct Family<M> {
    /// The label names.
    names: &'static [&'static str],
    /// The children.
    inner: Inner<M>,
}

impl<M> Clone for Family<M> {
    fn clone(&self) -> Self {
        Family {
            names: self.names,
            inner: self.inner.clone(),
        }
    }
}

impl<M> fmt::Debug for Family<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Family")
            .field("labels", &self.names)
            .finish_non_exhaustive()
    }
}

impl<M: Clone> Family<M> {
    /// A family with these label names whose children are made by `make`.
    pub(crate) fn new(labels: &[&str], make: impl Fn() -> M + Send + Sync + 'static) -> Family<M> {
        Family {
            names: intern(labels),
            inner: Inner::new_with_constructor(Make(Arc::new(make))),
        }
    }

    /// prometheus-client's family, for registration.
    pub(crate) fn inner(&self) -> &Inner<M> {
        &self.inner
    }

    /// The child for these label values (one per label name, in order), created on first use.
    /// Costs one small allocation and the family's read lock; keep the child when the values
    /// are known early.
    ///
    /// # Panics
    /// If the number of values differs from the number of label names.
    pub fn with(&self, values: &[&str]) -> M {
        assert_eq!(
            values.len(),
            self.names.len(),
            "metric family with labels {:?} given values {values:?}",
            self.names
        );
        self.inner
            .get_or_create_owned(&LabelSet::new(self.names, values))
    }

    /// Removes the child for these label values (it disappears from the output); returns
    /// whether there was one. Handles to it keep working but are no longer exported.
    pub fn remove(&self, values: &[&str]) -> bool {
        self.inner.remove(&LabelSet::new(self.names, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Counter;

    #[test]
    fn with_returns_the_same_child() {
        let f = Family::new(&["a", "b"], Counter::default);
        f.with(&["x", "1"]).inc();
        f.with(&["x", "1"]).inc();
        f.with(&["y", "1"]).inc();
        assert_eq!(f.with(&["x", "1"]).get(), 2);
        assert!(f.remove(&["x", "1"]));
        assert!(!f.remove(&["x", "1"]));
        assert_eq!(f.with(&["x", "1"]).get(), 0);
        assert_eq!(f.with(&["y", "1"]).get(), 1);
    }

    #[test]
    fn keys_keep_values_apart() {
        let names = intern(&["a", "b"]);
        assert!(std::ptr::eq(names, intern(&["a", "b"])));
        let k = LabelSet::new(names, &["1:x", ""]);
        assert_eq!(k.values().collect::<Vec<_>>(), ["1:x", ""]);
        assert_ne!(k, LabelSet::new(names, &["1", "x"]));
        assert_ne!(
            LabelSet::new(names, &["é:", "b"]),
            LabelSet::new(names, &["é", ":b"])
        );
    }

    #[test]
    #[should_panic(expected = "given values")]
    fn wrong_arity_panics() {
        let f = Family::new(&["a"], Counter::default);
        f.with(&["x", "y"]);
    }
}
