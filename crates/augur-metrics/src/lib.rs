//! A small, dependency-free Prometheus registry shared by every augur component: counters,
//! gauges and histograms, with or without labels, rendered in the Prometheus text exposition
//! format 0.0.4 (what `GET /metrics` answers).
//!
//! # Using it
//!
//! ```
//! use augur_metrics::{Buckets, Registry};
//!
//! let registry = Registry::new();
//!
//! // A plain counter and a gauge. Handles are cheap clones of one shared value.
//! let events = registry.counter("augur_capture_events_total", "Change events captured.");
//! let lag = registry.gauge("augur_capture_slot_lag_bytes", "WAL bytes not yet confirmed.");
//! events.inc_by(3);
//! lag.set(4096.0);
//!
//! // Labelled metrics are families; `with` returns (and caches) the child for some values.
//! let requests = registry.counter_vec(
//!     "augur_service_request_total",
//!     "Requests answered, by endpoint and status code.",
//!     &["endpoint", "http_response_code"],
//! );
//! requests.with(&["/predict", "200"]).inc();
//!
//! let latency = registry.histogram_vec(
//!     "augur_service_request_duration_seconds",
//!     "Time to answer a request.",
//!     &["endpoint"],
//!     Buckets::exponential(0.0001, 2.0, 12),
//! );
//! latency.with(&["/predict"]).observe(0.00042);
//!
//! // Values computed when scraped (queue depth, slot lag read from the database, ...).
//! registry.gauge_fn("augur_example_answer", "Computed at scrape time.", || 42.0);
//!
//! let text = registry.render();
//! assert!(text.contains("augur_service_request_total{endpoint=\"/predict\",http_response_code=\"200\"} 1"));
//! assert!(text.contains("# TYPE augur_service_request_duration_seconds histogram"));
//! ```
//!
//! # Design
//!
//! - **Handles, not lookups, on hot paths.** [`Counter`], [`Gauge`] and [`Histogram`] are
//!   `Arc`s around atomics: updating one is a few relaxed atomic operations and never takes a
//!   lock. [`Family::with`] takes a read lock and hashes the label values, so keep the child
//!   when the values are fixed (one per endpoint, per connector) and call `with` only for
//!   values known late (a status code).
//! - **Registration is idempotent.** Registering a name again with the same type, help, label
//!   names (and buckets) returns the metric already registered, so two components can share a
//!   registry without coordinating. A *different* shape under the same name, or an invalid
//!   metric or label name, is a programming error and panics with a message saying which.
//! - **Output is deterministic**: families in registration order, children sorted by label
//!   values, so scrapes diff cleanly and tests can compare text.
//! - **No global state required.** [`Registry`] is a cheap `Clone` (an `Arc`); pass it to the
//!   components that need it. [`global`] exists for code that cannot be handed one.
//! - [`process::register`] adds the standard `process_*` series (RSS, CPU seconds, open file
//!   descriptors, start time) read from `/proc` at scrape time on Linux.
//!
//! Counters count whole events (`u64`); use [`Registry::counter_fn`] for counters kept
//! elsewhere (CPU seconds). Gauges and histogram observations are `f64`.
//!
//! # Modules
//! - [`metric`]: the three value types and the histogram bucket layouts.
//! - [`family`]: labelled metrics.
//! - [`registry`]: registration and the text exposition format.
//! - [`process`]: `process_*` series from `/proc`.

pub mod family;
pub mod metric;
pub mod process;
pub mod registry;

pub use family::Family;
pub use metric::{Buckets, Counter, Gauge, Histogram, HistogramTimer};
pub use registry::{CONTENT_TYPE, Registry, global};
