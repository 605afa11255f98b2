//! Hot promotion: loading another model version and making it the served one without a
//! restart, from the admin endpoint or the store watcher.
//!
//! Loading happens on a blocking thread; the swap itself is one pointer replacement in the
//! [`crate::slot::ModelSlot`]. Requests admitted before the swap hold the old model and finish
//! on it; every response names its version in the `x-augur-model` header.

use std::sync::Arc;
use std::time::Duration;

use augur_core::shutdown::Shutdown;
use augur_core::{Error, ErrorKind};
use augur_model::Model;

use crate::state::AppState;

/// The result of a promotion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promotion {
    /// The tag served before (`None` if nothing was loaded yet).
    pub previous: Option<String>,
    /// The tag served now.
    pub current: String,
    /// Whether the served model changed (promoting the version already served by tag does
    /// nothing).
    pub changed: bool,
}

/// Makes `model` the served model, updating the metrics and the log.
pub(crate) fn install(state: &AppState, model: Arc<Model>) -> Promotion {
    let current = model.tag().to_string();
    let (name, version) = (model.meta().name.clone(), model.meta().version.to_string());
    let previous = state.slot.replace(model.clone());
    let m = &state.metrics;
    if let Some(p) = &previous {
        m.model_info.remove(&[p.name(), &p.version().to_string()]);
    }
    m.model_info.with(&[&name, &version]).set(1.0);
    let changed = previous
        .as_ref()
        .is_none_or(|p| !Arc::ptr_eq(p.model(), &model));
    if let (Some(p), true) = (&previous, changed) {
        m.promotions.inc();
        tracing::info!(previous = p.tag(), current = %current, "model promoted");
    }
    Promotion {
        previous: previous.map(|p| p.tag().to_string()),
        current,
        changed,
    }
}

/// Loads `tag` (default: the newest version of the served model's name) from the server's
/// store and promotes it. Promotions are serialized.
pub(crate) async fn promote_tag(
    state: &Arc<AppState>,
    tag: Option<String>,
) -> Result<Promotion, Error> {
    let _serial = state.promote_lock.lock().await;
    let store = state.source.store().cloned().ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            format!(
                "the served model came from {}, not a model store; promotion by tag needs one",
                state.source.describe()
            ),
        )
        .with_hint("start the server with --model TAG (and --store DIR)")
    })?;
    let tag = match tag {
        Some(t) => t,
        None => match state.slot.current() {
            Some(s) => format!("{}:latest", s.name()),
            None => {
                return Err(Error::new(
                    ErrorKind::Model,
                    "no model is loaded yet; name the tag to promote",
                ));
            }
        },
    };
    if let Some(s) = state.slot.current() {
        // Skip the load when the tag resolves to the version already served.
        let t = tag.clone();
        let st = store.clone();
        let resolved = tokio::task::spawn_blocking(move || st.resolve(&t))
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, format!("resolving {tag}: {e}")))?
            .map_err(|e| {
                Error::new(ErrorKind::Model, format!("cannot resolve model {tag}")).with_source(e)
            })?;
        if resolved.0 == s.name() && resolved.1 == s.version() {
            return Ok(Promotion {
                previous: Some(s.tag().to_string()),
                current: s.tag().to_string(),
                changed: false,
            });
        }
    }
    let t = tag.clone();
    let model = tokio::task::spawn_blocking(move || store.load(&t))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("loading {tag}: {e}")))?
        .map_err(|e| {
            Error::new(ErrorKind::Model, format!("cannot load model {tag}")).with_source(e)
        })?;
    Ok(install(state, Arc::new(model)))
}

/// Polls the store every `interval` and promotes a newer version of the served model's name
/// until `shutdown`. Errors are logged and retried at the next tick.
pub(crate) async fn watch(state: Arc<AppState>, interval: Duration, mut shutdown: Shutdown) {
    let Some(store) = state.source.store().cloned() else {
        tracing::warn!(
            "store watching is on but the model did not come from a store; not watching"
        );
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(current) = state.slot.current() else {
            continue;
        };
        let name = current.name().to_string();
        let st = store.clone();
        let latest = tokio::task::spawn_blocking(move || st.versions(&name)).await;
        let newest = match latest {
            Ok(Ok(v)) => v.last().copied(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot list the model store");
                continue;
            }
            Err(_) => continue,
        };
        if newest.is_some_and(|v| v > current.version()) {
            let tag = format!("{}:{}", current.name(), newest.unwrap_or_default());
            if let Err(e) = promote_tag(&state, Some(tag)).await {
                tracing::warn!(error = %e, "store watcher could not promote the newest version");
            }
        }
    }
}
