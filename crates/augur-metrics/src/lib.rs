//! The Prometheus metrics shared by every augur component: counters, gauges and histograms,
//! with or without labels, and what `GET /metrics` answers.
//!
//! **The registry and the exposition are prometheus-client's** (the Prometheus project's Rust
//! client): this crate only adapts it to augur's call sites — registration by name that can be
//! repeated, families addressed by label values, metrics computed at scrape time, the
//! `process_*` series — and adds a lock-free [`Histogram`]. The output is the Prometheus text
//! format 0.0.4 ([`CONTENT_TYPE`]), written by prometheus-client's `prometheus_text` encoder.
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
//! assert!(text.contains("augur_capture_events_total 3\n"));
//! assert!(text.contains("augur_service_request_total{endpoint=\"/predict\",http_response_code=\"200\"} 1"));
//! assert!(text.contains("# TYPE augur_service_request_duration_seconds histogram"));
//! assert!(text.contains("augur_example_answer 42.0\n"));
//! ```
//!
//! # Design
//!
//! - **Handles, not lookups, on hot paths.** [`Counter`] and [`Gauge`] are prometheus-client's
//!   (`Arc`s around atomics); [`Histogram`] is this crate's, also atomics only, because
//!   prometheus-client's takes a mutex per observation. [`Family::with`] is prometheus-client's
//!   `get_or_create` (a read lock and a hash) plus one small allocation for the key, so keep
//!   the child when the values are fixed and call `with` only for values known late.
//! - **Registration is idempotent.** Registering a name again with the same type, help, label
//!   names (and buckets) returns the metric already registered, so two components can share a
//!   registry without coordinating. A *different* shape under the same name, or an invalid
//!   metric or label name, is a programming error and panics with a message saying which.
//! - **Names are exposed as given.** prometheus-client appends `_total` to counters, so a
//!   counter registered as `x_total` is handed to it as `x` and still exposed as `x_total`.
//!   Help texts ending in `.` are passed without it, as prometheus-client appends one.
//! - **Output order**: metrics in registration order, then render-time functions. Children
//!   of a family come in no particular order, and a family with no child is left out.
//! - **No global state.** [`Registry`] is a cheap `Clone` (an `Arc`); pass it to the
//!   components that need it.
//! - [`process::register`] adds the standard `process_*` series (RSS, CPU seconds, open file
//!   descriptors, start time) read from `/proc` at scrape time on Linux.
//!
//! Counters count whole events (`u64`); use [`Registry::counter_fn`] for counters kept
//! elsewhere (CPU seconds). Gauges and histogram observations are `f64`.
//!
//! # Modules
//! - [`metric`]: the value types and the histogram bucket layouts.
//! - [`family`]: labelled metrics.
//! - [`registry`]: registration and rendering.
//! - [`process`]: `process_*` series from `/proc`.

pub mod family;
pub mod metric;
pub mod process;
pub mod registry;

pub use family::Family;
pub use metric::{Buckets, Counter, Gauge, Histogram};
pub use registry::{CONTENT_TYPE, Registry};
