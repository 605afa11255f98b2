//! The model server's metric names (BentoML's `bentoml_service_*` series, prefixed `augur_`)
//! and the handles the server updates. Registered once per [`crate::Server`] on its
//! [`Registry`], which `GET /metrics` renders.

use std::sync::{Arc, OnceLock};

use augur_metrics::{Buckets, Counter, Family, Gauge, Histogram, Registry};

use crate::slot::Served;

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
    /// The request series of the prediction routes, looked up once (see [`HOT_ROUTES`]).
    hot: Arc<[OnceLock<RouteHandles>; HOT_ROUTES.len()]>,
}

/// The routes whose request series are kept at hand rather than looked up by label on every
/// request: the prediction endpoints, where that lookup (a key built and hashed, a lock taken)
/// was a measurable share of a request's time.
const HOT_ROUTES: [&str; 4] = [
    "/predict",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
    "/v1/models/{target}",
];

/// One route's request series: in progress, and answered `200`.
#[derive(Debug)]
pub(crate) struct RouteHandles {
    /// [`REQUEST_IN_PROGRESS`] of the route.
    pub(crate) in_progress: Gauge,
    /// [`REQUEST_TOTAL`] of the route with code `200`.
    pub(crate) ok: Counter,
    /// [`REQUEST_DURATION`] of the route with code `200`.
    pub(crate) ok_duration: Histogram,
}

/// One served model's batcher series.
#[derive(Debug)]
pub(crate) struct ModelHandles {
    /// [`ADAPTIVE_BATCH_SIZE`] of the model.
    pub(crate) batch_size: Histogram,
    /// [`INFERENCE_DURATION`] of the model.
    pub(crate) inference: Histogram,
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
            hot: Arc::new(Default::default()),
        }
    }

    /// The request series of `endpoint` (a route template) when it is a prediction route.
    pub(crate) fn hot_route(&self, endpoint: &str) -> Option<&RouteHandles> {
        let i = HOT_ROUTES.iter().position(|r| *r == endpoint)?;
        Some(self.hot[i].get_or_init(|| RouteHandles {
            in_progress: self.in_progress.with(&[endpoint]),
            ok: self.requests.with(&[endpoint, "200"]),
            ok_duration: self.duration.with(&[endpoint, "200"]),
        }))
    }

    /// `served`'s batcher series (looked up on first use, then kept with the model).
    pub(crate) fn model<'a>(&self, served: &'a Served) -> &'a ModelHandles {
        served.metrics.get_or_init(|| {
            let tag = [served.tag()];
            ModelHandles {
                batch_size: self.batch_size.with(&tag),
                inference: self.inference.with(&tag),
            }
        })
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}
