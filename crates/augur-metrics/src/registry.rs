//! The [`Registry`]: a prometheus-client registry behind a lock, plus an index of what is
//! registered so that registering a name again returns the same metric.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;

use crate::family::Family;
use crate::metric::{Buckets, Counter, Gauge, Histogram};

/// The `Content-Type` of [`Registry::render`]'s output: the Prometheus text format 0.0.4.
pub use prometheus_text::CONTENT_TYPE;

/// One registered metric name.
struct Entry {
    /// The metric name as given (and as exposed).
    name: String,
    /// The help text as given.
    help: String,
    /// The label names (empty for unlabelled metrics).
    labels: Vec<String>,
    /// What was registered (`counter`, `labelled histogram [0.1, 1.0]`, …).
    shape: String,
    /// The handle returned to callers: a [`Counter`], a `Family<Gauge>`, ….
    handle: Box<dyn Any + Send + Sync>,
}

/// The lock-protected state.
#[derive(Default)]
struct Inner {
    /// What prometheus-client encodes.
    registry: prometheus_client::registry::Registry,
    /// What is registered, for idempotent registration.
    entries: Vec<Entry>,
}

/// A set of metrics rendered together. Cheap to clone: clones share the metrics.
#[derive(Clone, Default)]
pub struct Registry {
    /// The registry and its index.
    inner: Arc<RwLock<Inner>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let names: Vec<&str> = inner.entries.iter().map(|e| e.name.as_str()).collect();
        f.debug_struct("Registry").field("metrics", &names).finish()
    }
}

/// Whether `name` is a valid metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`.
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// The name prometheus-client is given: it appends `_total` to counters itself.
fn base_name(name: &str, kind: MetricType) -> &str {
    match kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// A metric whose value is read when the registry is rendered.
struct FnMetric {
    /// The name given to prometheus-client (without `_total`).
    name: String,
    /// The help text.
    help: String,
    /// Counter or gauge.
    kind: MetricType,
    /// The value.
    value: Box<dyn Fn() -> f64 + Send + Sync>,
}

impl fmt::Debug for FnMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnMetric")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Collector for FnMetric {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let value = (self.value)();
        let mut metric = encoder.encode_descriptor(&self.name, &self.help, None, self.kind)?;
        if self.kind == MetricType::Counter {
            metric.encode_counter::<NoLabelSet, _, f64>(&value, None)
        } else {
            metric.encode_gauge(&value)
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a metric of `shape` under `name` (adding it to prometheus-client's registry
    /// with `add`), or returns the handle already there when it has the same shape, labels and
    /// help. Panics on invalid names and on conflicting shapes.
    fn register<T: Clone + Send + Sync + 'static>(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        shape: String,
        add: impl FnOnce(&mut prometheus_client::registry::Registry) -> T,
    ) -> T {
        assert!(valid_metric_name(name), "invalid metric name {name:?}");
        for l in labels {
            assert!(
                valid_label_name(l),
                "invalid label name {l:?} for metric {name}"
            );
            assert!(
                !(*l == "le" && shape.contains("histogram")),
                "`le` is reserved in histogram {name}"
            );
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = inner.entries.iter().find(|e| e.name == name) {
            assert!(
                e.shape == shape && e.labels == labels && e.help == help,
                "metric {name} is already registered as a {} with labels {:?}; cannot \
                 register it again as a {shape} with labels {labels:?} (or with other help text)",
                e.shape,
                e.labels,
            );
            return (e.handle.downcast_ref::<T>())
                .expect("the same shape has the same handle type")
                .clone();
        }
        let handle = add(&mut inner.registry);
        inner.entries.push(Entry {
            name: name.to_string(),
            help: help.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            shape,
            handle: Box::new(handle.clone()),
        });
        handle
    }

    /// Registers `metric` on prometheus-client's registry, which appends a `.` to help texts.
    fn add<M: prometheus_client::registry::Metric>(
        r: &mut prometheus_client::registry::Registry,
        name: &str,
        help: &str,
        kind: MetricType,
        metric: M,
    ) {
        let help = help.strip_suffix('.').unwrap_or(help);
        r.register(base_name(name, kind), help, metric);
    }

    /// Registers (or returns the already registered) counter `name`. It is exposed as
    /// `name`, with `_total` appended if `name` does not end with it.
    ///
    /// # Panics
    /// If `name` is invalid or already registered with another type, labels or help.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        self.register(name, help, &[], "counter".into(), |r| {
            let c = Counter::default();
            Self::add(r, name, help, MetricType::Counter, c.clone());
            c
        })
    }

    /// Registers (or returns the already registered) gauge `name`.
    ///
    /// # Panics
    /// As [`Registry::counter`].
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.register(name, help, &[], "gauge".into(), |r| {
            let g = Gauge::default();
            Self::add(r, name, help, MetricType::Gauge, g.clone());
            g
        })
    }

    /// Registers (or returns the already registered) histogram `name`.
    ///
    /// # Panics
    /// As [`Registry::counter`], and if it is registered with other buckets.
    pub fn histogram(&self, name: &str, help: &str, buckets: Buckets) -> Histogram {
        let shape = format!("histogram {buckets:?}");
        self.register(name, help, &[], shape, |r| {
            let h = Histogram::new(&buckets);
            Self::add(r, name, help, MetricType::Histogram, h.clone());
            h
        })
    }

    /// Registers (or returns the already registered) labelled counter `name`, exposed as
    /// [`Registry::counter`] says.
    ///
    /// # Panics
    /// As [`Registry::counter`], and on invalid label names.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> Family<Counter> {
        self.register(name, help, labels, "labelled counter".into(), |r| {
            let f = Family::new(labels, Counter::default);
            Self::add(r, name, help, MetricType::Counter, f.inner().clone());
            f
        })
    }

    /// Registers (or returns the already registered) labelled gauge `name`.
    ///
    /// # Panics
    /// As [`Registry::counter_vec`].
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> Family<Gauge> {
        self.register(name, help, labels, "labelled gauge".into(), |r| {
            let f = Family::new(labels, Gauge::default);
            Self::add(r, name, help, MetricType::Gauge, f.inner().clone());
            f
        })
    }

    /// Registers (or returns the already registered) labelled histogram `name`; every child
    /// has these buckets.
    ///
    /// # Panics
    /// As [`Registry::counter_vec`], and if it is registered with other buckets; `le` is not
    /// allowed as a label name.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: Buckets,
    ) -> Family<Histogram> {
        let shape = format!("labelled histogram {buckets:?}");
        self.register(name, help, labels, shape, |r| {
            let f = Family::new(labels, move || Histogram::new(&buckets));
            Self::add(r, name, help, MetricType::Histogram, f.inner().clone());
            f
        })
    }

    /// Registers a metric read at render time, as a prometheus-client collector.
    fn value_fn(
        &self,
        name: &str,
        help: &str,
        kind: MetricType,
        value: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        let shape = format!("{} function", kind.as_str());
        self.register(name, help, &[], shape, |r| {
            r.register_collector(Box::new(FnMetric {
                name: base_name(name, kind).to_string(),
                help: help.to_string(),
                kind,
                value: Box::new(value),
            }));
        })
    }

    /// Registers a counter whose value `f` returns at render time (a total kept elsewhere,
    /// such as CPU seconds). Registering the name again keeps the first function. `f` runs
    /// under the registry's read lock: it must not register metrics.
    ///
    /// # Panics
    /// As [`Registry::counter`].
    pub fn counter_fn(&self, name: &str, help: &str, f: impl Fn() -> f64 + Send + Sync + 'static) {
        self.value_fn(name, help, MetricType::Counter, f);
    }

    /// Registers a gauge whose value `f` returns at render time (a queue depth, a lag read
    /// from elsewhere). Registering the name again keeps the first function. `f` runs under
    /// the registry's read lock: it must not register metrics.
    ///
    /// # Panics
    /// As [`Registry::counter`].
    pub fn gauge_fn(&self, name: &str, help: &str, f: impl Fn() -> f64 + Send + Sync + 'static) {
        self.value_fn(name, help, MetricType::Gauge, f);
    }

    /// Every metric, encoded by prometheus-client in the Prometheus text format 0.0.4 (serve
    /// it with [`CONTENT_TYPE`]). Metrics come in registration order, render-time functions
    /// last; a labelled metric with no child yet is left out.
    pub fn render(&self) -> String {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::with_capacity(4096);
        prometheus_text::encode(&mut out, &inner.registry)
            .expect("augur's metrics encode without error into a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_type_in_text_format() {
        let r = Registry::new();
        r.counter("a_total", "A counter.").inc_by(5);
        r.gauge("b", "A gauge\nwith \\ two lines.").set(-1.5);
        let h = r.histogram(
            "c_seconds",
            "A histogram.",
            Buckets::exponential(0.1, 10.0, 2),
        );
        for v in [0.05, 0.1, 0.5, 5.0] {
            h.observe(v);
        }
        let v = r.counter_vec("d_total", "Labelled.", &["code", "path"]);
        v.with(&["404", "/\"q\"\n"]).inc_by(2);
        r.gauge_fn("e", "Computed.", || 7.0);
        r.counter_fn("g_seconds_total", "Computed too.", || 0.25);
        let hv = r.histogram_vec(
            "f",
            "Labelled histogram.",
            &["m"],
            Buckets::powers_of_two(1),
        );
        hv.with(&["x"]).observe(2.0);
        r.gauge_vec("empty", "No child yet.", &["k"]);
        let expected = "\
# HELP a_total A counter.
# TYPE a_total counter
a_total 5
# HELP b A gauge\\nwith \\\\ two lines.
# TYPE b gauge
b -1.5
# HELP c_seconds A histogram.
# TYPE c_seconds histogram
c_seconds_bucket{le=\"0.1\"} 2
c_seconds_bucket{le=\"1\"} 3
c_seconds_bucket{le=\"+Inf\"} 4
c_seconds_sum 5.65
c_seconds_count 4
# HELP d_total Labelled.
# TYPE d_total counter
d_total{code=\"404\",path=\"/\\\"q\\\"\\n\"} 2
# HELP f Labelled histogram.
# TYPE f histogram
f_bucket{m=\"x\",le=\"1\"} 0
f_bucket{m=\"x\",le=\"+Inf\"} 1
f_sum{m=\"x\"} 2.0
f_count{m=\"x\"} 1
# HELP e Computed.
# TYPE e gauge
e 7.0
# HELP g_seconds_total Computed too.
# TYPE g_seconds_total counter
g_seconds_total 0.25
";
        assert_eq!(r.render(), expected);
    }

    #[test]
    fn children_render_with_their_labels() {
        let r = Registry::new();
        let v = r.counter_vec("x_total", "X.", &["code", "path"]);
        v.with(&["200", "/x"]).inc();
        v.with(&["500", "/y"]).inc_by(3);
        v.with(&["404", "/z"]);
        assert!(v.remove(&["404", "/z"]));
        let text = r.render();
        let mut samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        samples.sort();
        assert_eq!(
            samples,
            [
                "x_total{code=\"200\",path=\"/x\"} 1",
                "x_total{code=\"500\",path=\"/y\"} 3"
            ]
        );
    }

    #[test]
    fn registering_again_returns_the_same_metric() {
        let r = Registry::new();
        let a = r.counter_vec("x_total", "X.", &["k"]);
        let b = r.counter_vec("x_total", "X.", &["k"]);
        a.with(&["v"]).inc();
        assert_eq!(b.with(&["v"]).get(), 1);
        let c1 = r.counter("y_total", "Y.");
        r.counter("y_total", "Y.").inc();
        assert_eq!(c1.get(), 1);
        r.histogram("h", "H.", Buckets::latency());
        r.histogram("h", "H.", Buckets::latency()).observe(1.0);
        r.gauge_fn("g", "G.", || 1.0);
        r.gauge_fn("g", "G.", || 2.0);
        assert_eq!(r.render().matches("# TYPE").count(), 4);
        assert!(r.render().contains("\ng 1.0\n"));
    }

    #[test]
    #[should_panic(expected = "already registered as a counter")]
    fn conflicting_shapes_panic() {
        let r = Registry::new();
        r.counter("x", "X.");
        r.gauge("x", "X.");
    }

    #[test]
    #[should_panic(expected = "already registered as a labelled histogram")]
    fn other_buckets_panic() {
        let r = Registry::new();
        r.histogram_vec("x", "X.", &["k"], Buckets::latency());
        r.histogram_vec("x", "X.", &["k"], Buckets::powers_of_two(8));
    }

    #[test]
    #[should_panic(expected = "invalid metric name")]
    fn invalid_names_panic() {
        Registry::new().counter("1x", "bad");
    }

    #[test]
    #[should_panic(expected = "invalid label name")]
    fn reserved_label_names_panic() {
        Registry::new().counter_vec("x", "X.", &["__name"]);
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_metric_name("augur_service:rate_5m"));
        assert!(!valid_metric_name(""));
        assert!(!valid_metric_name("a-b"));
        assert!(valid_label_name("http_response_code"));
        assert!(!valid_label_name("le-x"));
    }
}
