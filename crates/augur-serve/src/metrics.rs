//! The model server's metric names (BentoML's `bentoml_service_*` series, prefixed `augur_`)
//! and the handles the server updates. Registered once per [`crate::Server`] on its
//! [`Registry`], which `GET /metrics` renders.

use augur_metrics::{Buckets, Counter, Family, Gauge, Histogram, Registry};

/// Gauge, label `endpoint`: requests being handled right now.
pub const REQUEST_IN_PROGRESS: &str = "augur_service_request_in_progress";
/// Counter, labels `endpoint`, `http_response_code`: requests answered.
pub const REQUEST_TOTAL: &str = "augur_service_request_total";
/// Histogram, labels `endpoint`, `http_response_code`: seconds from request to response.
pub const REQUEST_DURATION: &str = "augur_service_request_duration_seconds";
/// Histogram, label `model`: rows per model call made by the adaptive batcher.
pub const ADAPTIVE_BATCH_SIZE: &str = "augur_service_adaptive_batch_size";
/// Histogram, label `model`: seconds one batched model call took (features and trees).
pub const INFERENCE_DURATION: &str = "augur_service_inference_duration_seconds";
/// Histogram: seconds a request waited in the queue before its batch started.
pub const QUEUE_WAIT: &str = "augur_service_queue_wait_seconds";
/// Gauge: requests queued for the inference thread, not yet taken into a batch.
pub const QUEUE_DEPTH: &str = "augur_service_queue_depth";
/// Counter, label `reason` (`queue_full`, `latency_budget`): requests answered `503` by the
/// batcher.
pub const REJECTED_TOTAL: &str = "augur_service_rejected_total";
/// Gauge, labels `model`, `version`: 1 for the model version being served.
pub const MODEL_INFO: &str = "augur_service_model_info";
/// Counter: model versions promoted since start (the first load not included).
pub const PROMOTIONS_TOTAL: &str = "augur_service_model_promotions_total";

/// The handles the server updates.
#[derive(Debug, Clone)]
pub struct ServeMetrics {
    /// The registry they live in.
    pub(crate) registry: Registry,
    /// [`REQUEST_IN_PROGRESS`].
    pub(crate) in_progress: Family<Gauge>,
    /// [`REQUEST_TOTAL`].
    pub(crate) requests: Family<Counter>,
    /// [`REQUEST_DURATION`].
    pub(crate) duration: Family<Histogram>,
    /// [`ADAPTIVE_BATCH_SIZE`].
    pub(crate) batch_size: Family<Histogram>,
    /// [`INFERENCE_DURATION`].
    pub(crate) inference: Family<Histogram>,
    /// [`QUEUE_WAIT`].
    pub(crate) queue_wait: Histogram,
    /// [`QUEUE_DEPTH`].
    pub(crate) queue_depth: Gauge,
    /// [`REJECTED_TOTAL`] `{reason="queue_full"}`.
    pub(crate) rejected_queue_full: Counter,
    /// [`REJECTED_TOTAL`] `{reason="latency_budget"}`.
    pub(crate) rejected_latency: Counter,
    /// [`MODEL_INFO`].
    pub(crate) model_info: Family<Gauge>,
    /// [`PROMOTIONS_TOTAL`].
    pub(crate) promotions: Counter,
}

impl ServeMetrics {
    /// Registers the server's metrics (and the `process_*` series) on `registry`;
    /// `max_batch_size` sets the batch-size buckets (powers of two up to it).
    pub fn register(registry: &Registry, max_batch_size: usize) -> ServeMetrics {
        augur_metrics::process::register(registry);
        let rejected = registry.counter_vec(
            REJECTED_TOTAL,
            "Requests answered 503 by the batcher, by reason.",
            &["reason"],
        );
        ServeMetrics {
            registry: registry.clone(),
            in_progress: registry.gauge_vec(
                REQUEST_IN_PROGRESS,
                "Requests being handled.",
                &["endpoint"],
            ),
            requests: registry.counter_vec(
                REQUEST_TOTAL,
                "Requests answered, by endpoint and status code.",
                &["endpoint", "http_response_code"],
            ),
            duration: registry.histogram_vec(
                REQUEST_DURATION,
                "Seconds from the request's arrival to its response.",
                &["endpoint", "http_response_code"],
                Buckets::latency(),
            ),
            batch_size: registry.histogram_vec(
                ADAPTIVE_BATCH_SIZE,
                "Rows per model call made by the adaptive batcher.",
                &["model"],
                Buckets::powers_of_two(max_batch_size as u64),
            ),
            inference: registry.histogram_vec(
                INFERENCE_DURATION,
                "Seconds per batched model call (features and trees).",
                &["model"],
                Buckets::exponential(0.000_005, 2.0, 16),
            ),
            queue_wait: registry.histogram(
                QUEUE_WAIT,
                "Seconds a request waited for its batch to start.",
                Buckets::exponential(0.000_005, 2.0, 16),
            ),
            queue_depth: registry.gauge(
                QUEUE_DEPTH,
                "Requests queued for the inference thread, not yet in a batch.",
            ),
            rejected_queue_full: rejected.with(&["queue_full"]),
            rejected_latency: rejected.with(&["latency_budget"]),
            model_info: registry.gauge_vec(
                MODEL_INFO,
                "1 for the model version being served.",
                &["model", "version"],
            ),
            promotions: registry.counter(
                PROMOTIONS_TOTAL,
                "Model versions promoted since the server started.",
            ),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
