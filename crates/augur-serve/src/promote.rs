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
use augur_model::{Model, Refusal};

use crate::slot::ModelSource;
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
/// store and promotes it when it passes the promotion checks (the input signature always; the
/// cross-validated MAE unless `force`). Promotions are serialized. A refusal is an error whose
/// source is the [`Refusal`].
pub(crate) async fn promote_tag(
    state: &Arc<AppState>,
    tag: Option<String>,
    force: bool,
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
    let served = state.slot.current();
    let tag = match (tag, &served) {
        (Some(t), _) => t,
        (None, Some(s)) => format!("{}:latest", s.name()),
        (None, None) => {
            return Err(Error::new(
                ErrorKind::Model,
                "no model is loaded yet; name the tag to promote",
            ));
        }
    };
    let (name, version) = blocking(&tag, {
        let (st, t) = (store.clone(), tag.clone());
        move || st.resolve(&t)
    })
    .await?;
    if let Some(s) = served
        .as_ref()
        .filter(|s| s.name() == name && s.version() == version)
    {
        return Ok(Promotion {
            previous: Some(s.tag().to_string()),
            current: s.tag().to_string(),
            changed: false,
        });
    }
    let model = blocking(&tag, move || store.load(&format!("{name}:{version}"))).await?;
    if let Some(s) = &served {
        let policy = state.config.promotion.forced(force);
        augur_model::promotion::check(s.model(), &model, &policy).map_err(|r| {
            Error::new(ErrorKind::Model, format!("refused to promote {tag}")).with_source(r)
        })?;
    }
    Ok(install(state, Arc::new(model)))
}

/// Runs a store call on a blocking thread; its error names `tag`.
async fn blocking<T: Send + 'static>(
    tag: &str,
    f: impl FnOnce() -> Result<T, augur_model::ModelError> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("loading {tag}: {e}")))?
        .map_err(|e| {
            Error::new(ErrorKind::Model, format!("cannot load model {tag}")).with_source(e)
        })
}

/// What the store watcher follows: the alias the server was started with (`name@alias`,
/// wherever it points, back or forth), or else the newest version of the served name.
fn watched_tag(state: &AppState, served_name: &str) -> String {
    match &state.source {
        ModelSource::Store { tag, .. } if tag.contains('@') => tag.clone(),
        _ => format!("{served_name}:latest"),
    }
}

/// Polls the store every `interval` and promotes what the watched tag resolves to
/// ([`watched_tag`]) until `shutdown`, through the same checks as the admin endpoint. A refused
/// version is logged once and not retried; other errors are logged and retried at the next
/// tick.
pub(crate) async fn watch(state: Arc<AppState>, interval: Duration, mut shutdown: Shutdown) {
    let Some(store) = state.source.store().cloned() else {
        tracing::warn!(
            "store watching is on but the model did not come from a store; not watching"
        );
        return;
    };
    let mut refused: Option<(String, u64)> = None;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let Some(current) = state.slot.current() else {
            continue;
        };
        let tag = watched_tag(&state, current.name());
        let st = store.clone();
        let t = tag.clone();
        let target = match tokio::task::spawn_blocking(move || st.resolve(&t)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot resolve the watched model tag");
                continue;
            }
            Err(_) => continue,
        };
        let newer = target.1 > current.version() || tag.contains('@');
        if target.1 == current.version() || !newer || refused.as_ref() == Some(&target) {
            continue;
        }
        let candidate = format!("{}:{}", target.0, target.1);
        match promote_tag(&state, Some(candidate), false).await {
            Ok(_) => refused = None,
            Err(e) => {
                tracing::warn!(error = %e, reason = %error_chain(&e), "store watcher did not promote");
                if is_refusal(&e) {
                    refused = Some(target);
                }
            }
        }
    }
}

/// Whether a promotion error is a refusal by the promotion checks.
pub(crate) fn is_refusal(e: &Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<Refusal>())
}

/// The error's message followed by its sources' messages.
pub(crate) fn error_chain(e: &Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}
