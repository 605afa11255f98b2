//! The [`Registry`]: where metrics are registered, and their rendering in the Prometheus text
//! exposition format 0.0.4.
//!
//! Format reference: each family is written as `# HELP name text`, `# TYPE name type`, then
//! one line per sample, `name{label="value",…} value`. Histograms write cumulative
//! `name_bucket{…,le="bound"}` lines ending with `le="+Inf"`, then `name_sum` and
//! `name_count`. In label values `\`, `"` and newlines are escaped; in help text `\` and
//! newlines are.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use crate::family::Family;
use crate::metric::{Buckets, Counter, Gauge, Histogram, write_value};

/// The `Content-Type` of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A value read when the registry is rendered.
type ValueFn = Arc<dyn Fn() -> f64 + Send + Sync>;

/// What a registered name holds.
#[derive(Clone)]
enum Collector {
    /// An unlabelled counter.
    Counter(Counter),
    /// An unlabelled gauge.
    Gauge(Gauge),
    /// An unlabelled histogram.
    Histogram(Histogram),
    /// Labelled counters.
    CounterVec(Family<Counter>),
    /// Labelled gauges.
    GaugeVec(Family<Gauge>),
    /// Labelled histograms (all children share the bucket layout).
    HistogramVec(Family<Histogram>, Buckets),
    /// A counter read at render time.
    CounterFn(ValueFn),
    /// A gauge read at render time.
    GaugeFn(ValueFn),
}

impl Collector {
    /// The Prometheus type name.
    fn type_name(&self) -> &'static str {
        match self {
            Collector::Counter(_) | Collector::CounterVec(_) | Collector::CounterFn(_) => "counter",
            Collector::Gauge(_) | Collector::GaugeVec(_) | Collector::GaugeFn(_) => "gauge",
            Collector::Histogram(_) | Collector::HistogramVec(..) => "histogram",
        }
    }

    /// A short description of the shape, for conflict messages.
    fn shape(&self) -> &'static str {
        match self {
            Collector::Counter(_) => "counter",
            Collector::Gauge(_) => "gauge",
            Collector::Histogram(_) => "histogram",
            Collector::CounterVec(_) => "labelled counter",
            Collector::GaugeVec(_) => "labelled gauge",
            Collector::HistogramVec(..) => "labelled histogram",
            Collector::CounterFn(_) => "counter function",
            Collector::GaugeFn(_) => "gauge function",
        }
    }
}

/// One registered metric name.
#[derive(Clone)]
struct Entry {
    /// The metric name.
    name: String,
    /// The help text.
    help: String,
    /// The label names (empty for unlabelled metrics).
    labels: Vec<String>,
    /// The values.
    collector: Collector,
}

/// A set of metrics rendered together. Cheap to clone: clones share the metrics.
#[derive(Clone, Default)]
pub struct Registry {
    /// The entries, in registration order.
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.lock().iter().map(|e| e.name.clone()).collect();
        f.debug_struct("Registry").field("metrics", &names).finish()
    }
}

/// A process-wide registry for code that cannot be handed one. Prefer passing a [`Registry`].
pub fn global() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(Registry::new)
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

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The entries, tolerating a poisoned lock (the data is still consistent).
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `collector` under `name`, or returns the collector already there when it has
    /// the same shape. Panics on invalid names and on conflicting shapes.
    fn register(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        collector: Collector,
        same: impl Fn(&Collector) -> bool,
    ) -> Collector {
        assert!(valid_metric_name(name), "invalid metric name {name:?}");
        for l in labels {
            assert!(
                valid_label_name(l),
                "invalid label name {l:?} for metric {name}"
            );
            assert!(
                !(*l == "le" && collector.type_name() == "histogram"),
                "`le` is reserved in histogram {name}"
            );
        }
        let mut entries = self.lock();
        if let Some(e) = entries.iter().find(|e| e.name == name) {
            let same_labels =
                e.labels.len() == labels.len() && e.labels.iter().zip(labels).all(|(a, b)| a == b);
            assert!(
                same(&e.collector) && same_labels && e.help == help,
                "metric {name} is already registered as a {} with labels {:?}; cannot \
                 register it again as a {} with labels {labels:?} (or with other help text)",
                e.collector.shape(),
                e.labels,
                collector.shape()
            );
            return e.collector.clone();
        }
        entries.push(Entry {
            name: name.to_string(),
            help: help.to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            collector: collector.clone(),
        });
        collector
    }

    /// Registers (or returns the already registered) counter `name`.
    ///
    /// # Panics
    /// If `name` is invalid or already registered with another type, labels or help.
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        match self.register(name, help, &[], Collector::Counter(Counter::new()), |c| {
            matches!(c, Collector::Counter(_))
        }) {
            Collector::Counter(c) => c,
            _ => unreachable!("checked by `same`"),
        }
    }

    /// Registers (or returns the already registered) gauge `name`.
    ///
    /// # Panics
    /// As [`Registry::counter`].
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        match self.register(name, help, &[], Collector::Gauge(Gauge::new()), |c| {
            matches!(c, Collector::Gauge(_))
        }) {
            Collector::Gauge(g) => g,
            _ => unreachable!("checked by `same`"),
        }
    }

    /// Registers (or returns the already registered) histogram `name`.
    ///
    /// # Panics
    /// As [`Registry::counter`], and if it is registered with other buckets.
    pub fn histogram(&self, name: &str, help: &str, buckets: Buckets) -> Histogram {
        let h = Histogram::new(&buckets);
        match self.register(
            name,
            help,
            &[],
            Collector::Histogram(h),
            |c| matches!(c, Collector::Histogram(h) if h.bounds() == buckets.bounds()),
        ) {
            Collector::Histogram(h) => h,
            _ => unreachable!("checked by `same`"),
        }
    }

    /// Registers (or returns the already registered) labelled counter `name`.
    ///
    /// # Panics
    /// As [`Registry::counter`], and on invalid label names.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> Family<Counter> {
        let f = Family::new(labels, Counter::new);
        match self.register(name, help, labels, Collector::CounterVec(f), |c| {
            matches!(c, Collector::CounterVec(_))
        }) {
            Collector::CounterVec(f) => f,
            _ => unreachable!("checked by `same`"),
        }
    }

    /// Registers (or returns the already registered) labelled gauge `name`.
    ///
    /// # Panics
    /// As [`Registry::counter_vec`].
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> Family<Gauge> {
        let f = Family::new(labels, Gauge::new);
        match self.register(name, help, labels, Collector::GaugeVec(f), |c| {
            matches!(c, Collector::GaugeVec(_))
        }) {
            Collector::GaugeVec(f) => f,
            _ => unreachable!("checked by `same`"),
        }
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
        let b = buckets.clone();
        let f = Family::new(labels, move || Histogram::new(&b));
        match self.register(
            name,
            help,
            labels,
            Collector::HistogramVec(f, buckets.clone()),
            |c| matches!(c, Collector::HistogramVec(_, b) if *b == buckets),
        ) {
            Collector::HistogramVec(f, _) => f,
            _ => unreachable!("checked by `same`"),
        }
    }

    /// Registers a counter whose value `f` returns at render time (a total kept elsewhere,
    /// such as CPU seconds). Registering the name again keeps the first function.
    ///
    /// # Panics
    /// As [`Registry::counter`].
    pub fn counter_fn(&self, name: &str, help: &str, f: impl Fn() -> f64 + Send + Sync + 'static) {
        self.register(name, help, &[], Collector::CounterFn(Arc::new(f)), |c| {
            matches!(c, Collector::CounterFn(_))
        });
    }

    /// Registers a gauge whose value `f` returns at render time (a queue depth, a lag read
    /// from elsewhere). Registering the name again keeps the first function.
    ///
    /// # Panics
    /// As [`Registry::counter`].
    pub fn gauge_fn(&self, name: &str, help: &str, f: impl Fn() -> f64 + Send + Sync + 'static) {
        self.register(name, help, &[], Collector::GaugeFn(Arc::new(f)), |c| {
            matches!(c, Collector::GaugeFn(_))
        });
    }

    /// Whether a metric called `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.lock().iter().any(|e| e.name == name)
    }

    /// Every metric in the text exposition format 0.0.4 (serve it with [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.render_into(&mut out);
        out
    }

    /// Appends every metric in the text exposition format to `out`.
    pub fn render_into(&self, out: &mut String) {
        // Clone the entries so render-time functions run without the registry lock (they may
        // register metrics themselves).
        let entries: Vec<Entry> = self.lock().clone();
        for e in &entries {
            out.push_str("# HELP ");
            out.push_str(&e.name);
            out.push(' ');
            escape_help(out, &e.help);
            out.push_str("\n# TYPE ");
            out.push_str(&e.name);
            out.push(' ');
            out.push_str(e.collector.type_name());
            out.push('\n');
            match &e.collector {
                Collector::Counter(c) => sample(out, &e.name, "", &[], &[], None, c.get() as f64),
                Collector::Gauge(g) => sample(out, &e.name, "", &[], &[], None, g.get()),
                Collector::CounterFn(f) | Collector::GaugeFn(f) => {
                    sample(out, &e.name, "", &[], &[], None, f())
                }
                Collector::Histogram(h) => histogram(out, &e.name, &[], &[], h),
                Collector::CounterVec(f) => {
                    for (values, c) in f.children() {
                        sample(out, &e.name, "", &e.labels, &values, None, c.get() as f64);
                    }
                }
                Collector::GaugeVec(f) => {
                    for (values, g) in f.children() {
                        sample(out, &e.name, "", &e.labels, &values, None, g.get());
                    }
                }
                Collector::HistogramVec(f, _) => {
                    for (values, h) in f.children() {
                        histogram(out, &e.name, &e.labels, &values, &h);
                    }
                }
            }
        }
    }
}

/// Writes help text, escaping `\` and newlines.
fn escape_help(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes a label value, escaping `\`, `"` and newlines.
fn escape_label(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes one sample line: `name[suffix]{labels[,le="…"]} value`.
fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[String],
    values: &[String],
    le: Option<f64>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        for (l, v) in labels.iter().zip(values) {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(l);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        if let Some(le) = le {
            if !first {
                out.push(',');
            }
            out.push_str("le=\"");
            write_value(out, le);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    write_value(out, value);
    out.push('\n');
}

/// Writes one histogram's bucket, sum and count lines.
fn histogram(out: &mut String, name: &str, labels: &[String], values: &[String], h: &Histogram) {
    // Read the buckets first and derive the count from them, so `+Inf` always equals
    // `_count` even while other threads observe.
    let buckets = h.cumulative();
    for (bound, n) in &buckets {
        sample(
            out,
            name,
            "_bucket",
            labels,
            values,
            Some(*bound),
            *n as f64,
        );
    }
    let count = buckets.last().map(|b| b.1).unwrap_or(0);
    sample(out, name, "_sum", labels, values, None, h.sum());
    sample(out, name, "_count", labels, values, None, count as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_type_in_text_format() {
        let r = Registry::new();
        r.counter("a_total", "A counter.").inc_by(5);
        r.gauge("b", "A gauge\nwith \\ two lines.").set(-1.5);
        let h = r.histogram("c_seconds", "A histogram.", Buckets::new(vec![0.1, 1.0]));
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let v = r.counter_vec("d_total", "Labelled.", &["code", "path"]);
        v.with(&["200", "/x"]).inc();
        v.with(&["404", "/\"q\"\n"]).inc_by(2);
        r.gauge_fn("e", "Computed.", || 7.0);
        let hv = r.histogram_vec("f", "Labelled histogram.", &["m"], Buckets::new(vec![1.0]));
        hv.with(&["x"]).observe(2.0);
        let expected = "\
# HELP a_total A counter.
# TYPE a_total counter
a_total 5
# HELP b A gauge\\nwith \\\\ two lines.
# TYPE b gauge
b -1.5
# HELP c_seconds A histogram.
# TYPE c_seconds histogram
c_seconds_bucket{le=\"0.1\"} 1
c_seconds_bucket{le=\"1\"} 2
c_seconds_bucket{le=\"+Inf\"} 3
c_seconds_sum 5.55
c_seconds_count 3
# HELP d_total Labelled.
# TYPE d_total counter
d_total{code=\"200\",path=\"/x\"} 1
d_total{code=\"404\",path=\"/\\\"q\\\"\\n\"} 2
# HELP e Computed.
# TYPE e gauge
e 7
# HELP f Labelled histogram.
# TYPE f histogram
f_bucket{m=\"x\",le=\"1\"} 0
f_bucket{m=\"x\",le=\"+Inf\"} 1
f_sum{m=\"x\"} 2
f_count{m=\"x\"} 1
";
        assert_eq!(r.render(), expected);
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
    }

    #[test]
    #[should_panic(expected = "already registered as a counter")]
    fn conflicting_shapes_panic() {
        let r = Registry::new();
        r.counter("x", "X.");
        r.gauge("x", "X.");
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
