//! [`AppState`]: what the HTTP handlers, the promotion path and the server share.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::batcher::Batcher;
use crate::config::ServeConfig;
use crate::error::{ApiError, ApiErrorKind};
use crate::metrics::ServeMetrics;
use crate::slot::{ModelSlot, ModelSource, Served};

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    /// The settings.
    pub(crate) config: ServeConfig,
    /// The model being served.
    pub(crate) slot: ModelSlot,
    /// Where promotions load from.
    pub(crate) source: ModelSource,
    /// The inference queue and thread.
    pub(crate) batcher: Batcher,
    /// The metric handles.
    pub(crate) metrics: ServeMetrics,
    /// Serializes promotions (admin endpoint and store watcher).
    pub(crate) promote_lock: tokio::sync::Mutex<()>,
    /// Explanations running at once (one per core; they run on blocking threads).
    pub(crate) explain_permits: tokio::sync::Semaphore,
    /// Set once shutdown starts: `/readyz` answers 503.
    pub(crate) shutting_down: AtomicBool,
}

impl AppState {
    /// The current model, or `503` while none is loaded.
    pub(crate) fn served(&self) -> Result<Arc<Served>, ApiError> {
        self.slot
            .current()
            .ok_or_else(|| ApiError::new(ApiErrorKind::NotReady, "the model is not loaded yet"))
    }
}
