//! The server's lifecycle: bind, load the model in the background (readiness flips when it is
//! in), serve until shutdown, then drain.
//!
//! Shutdown order: the signal fires → `/readyz` answers 503 → the listener stops accepting →
//! idle keep-alive connections close, in-flight requests finish (their batches too) → the
//! inference thread stops → [`Server::run`] returns. If in-flight requests are not done within
//! `shutdown_timeout`, `run` returns an [`ErrorKind::Internal`] error instead, which
//! [`is_shutdown_timeout`] recognizes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use augur_core::shutdown::{self, Shutdown};
use augur_core::{Error, ErrorKind};
use augur_metrics::Registry;
use augur_model::Model;
use tokio::task::{JoinError, JoinHandle};

use crate::batcher::{BatchSettings, Batcher};
use crate::config::ServeConfig;
use crate::metrics::ServeMetrics;
use crate::promote::{self, Promotion};
use crate::routes::router;
use crate::slot::{ModelSlot, ModelSource, Served};
use crate::state::AppState;

/// How the message of the error [`Server::run`] returns when in-flight requests did not finish
/// within the shutdown timeout begins (the timeout follows, e.g. `… within 0.5 s`).
pub const SHUTDOWN_TIMEOUT_PREFIX: &str = "in-flight requests did not finish within";

/// Whether `e` is the error [`Server::run`] returns when in-flight requests did not finish
/// within the shutdown timeout: an [`ErrorKind::Internal`] error whose message begins with
/// [`SHUTDOWN_TIMEOUT_PREFIX`].
pub fn is_shutdown_timeout(e: &Error) -> bool {
    e.kind() == ErrorKind::Internal && e.message().starts_with(SHUTDOWN_TIMEOUT_PREFIX)
}

/// A bound, not yet running model server.
#[derive(Debug)]
pub struct Server {
    /// The listening socket.
    listener: tokio::net::TcpListener,
    /// The address it is bound to.
    local_addr: SocketAddr,
    /// The shared state.
    state: Arc<AppState>,
}

/// A cheap handle to a server's state: readiness, the served model, promotion, metrics.
#[derive(Debug, Clone)]
pub struct ServerHandle {
    /// The shared state.
    state: Arc<AppState>,
}

impl Server {
    /// Validates `config`, binds its address and starts the inference thread, with a new
    /// metrics registry. The model is loaded by [`Server::run`].
    pub async fn bind(config: ServeConfig, source: ModelSource) -> Result<Server, Error> {
        Server::bind_with_registry(config, source, Registry::new()).await
    }

    /// As [`Server::bind`], registering the server's metrics on `registry` (to share one
    /// `/metrics` with other components).
    pub async fn bind_with_registry(
        config: ServeConfig,
        source: ModelSource,
        registry: Registry,
    ) -> Result<Server, Error> {
        config.validate()?;
        let (listener, local_addr) = augur_http::bind(config.addr).await?;
        let metrics = ServeMetrics::register(&registry, config.max_batch_size);
        let batcher = Batcher::start(
            BatchSettings {
                max_batch_size: config.max_batch_size,
                max_latency: config.max_latency,
                max_queue: config.max_queue,
            },
            metrics.clone(),
        )
        .map_err(|e| {
            Error::new(ErrorKind::Internal, "cannot start the inference thread").with_source(e)
        })?;
        let state = Arc::new(AppState {
            config,
            slot: ModelSlot::default(),
            source,
            batcher,
            metrics,
            promote_lock: tokio::sync::Mutex::new(()),
            explain_permits: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
            shutting_down: Default::default(),
        });
        Ok(Server {
            listener,
            local_addr,
            state,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle for readiness, the served model, promotion and metrics.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            state: self.state.clone(),
        }
    }

    /// Serves until `shutdown` fires, then drains (see the module docs). Loads the model in the
    /// background first: until it is in, `/readyz` and predictions answer 503. Returns an
    /// error if the model cannot be loaded or draining exceeds the shutdown timeout.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), Error> {
        let Server {
            listener,
            local_addr,
            state,
        } = self;
        let (stop_trigger, stop) = shutdown::channel();
        let mut serving = spawn_http(listener, &state, &shutdown, &stop);
        tracing::info!(address = %local_addr, "listening");

        // Load the model off the runtime; readiness flips once it is in the slot.
        let load_error = load_model(&state).await;
        if load_error.is_none() {
            if let Some(interval) = state.config.watch_interval {
                tokio::spawn(promote::watch(state.clone(), interval, stop.clone()));
            }
        } else {
            stop_trigger.trigger();
        }

        // Serve until shutdown (or the server fails by itself).
        let early = wait_for_stop(&shutdown, &stop, &mut serving).await;
        state.shutting_down.store(true, Ordering::Release);
        stop_trigger.trigger(); // Stops the watcher.
        let served = match early {
            Some(r) => r,
            None => finish_in_flight(&state, &mut serving).await?,
        };
        stop_batcher(&state).await;
        if let Some(e) = load_error {
            return Err(e);
        }
        http_outcome(served)
    }
}

/// The HTTP server task's outcome: the server's own result, or why the task failed.
type HttpOutcome = Result<std::io::Result<()>, JoinError>;

/// Spawns the HTTP server. It stops accepting on one signal: the caller's `shutdown`, or
/// `stop` (our own, after a failed load).
fn spawn_http(
    listener: tokio::net::TcpListener,
    state: &Arc<AppState>,
    shutdown: &Shutdown,
    stop: &Shutdown,
) -> JoinHandle<std::io::Result<()>> {
    let mut stop_for_serve = stop.clone();
    let mut outer = shutdown.clone();
    let serve = augur_http::serve_with(
        listener,
        router(state.clone()),
        state.config.limits,
        state.config.tls.clone(),
        async move {
            tokio::select! {
                _ = outer.wait() => {}
                _ = stop_for_serve.wait() => {}
            }
        },
    );
    tokio::spawn(serve)
}

/// Loads the model off the runtime and installs it (readiness flips); the error if it fails.
async fn load_model(state: &Arc<AppState>) -> Option<Error> {
    let started = Instant::now();
    let source = state.source.clone();
    let loaded = tokio::task::spawn_blocking(move || source.load()).await;
    match loaded {
        Ok(Ok(model)) => {
            let p = promote::install(state, model);
            tracing::info!(
                model = %p.current,
                ms = started.elapsed().as_millis() as u64,
                "model loaded; ready"
            );
            None
        }
        Ok(Err(e)) => Some(e),
        Err(e) => Some(Error::new(
            ErrorKind::Internal,
            format!("the model loading task failed: {e}"),
        )),
    }
}

/// Waits for `shutdown` or `stop`; or for the HTTP server to end by itself, whose outcome it
/// returns.
async fn wait_for_stop(
    shutdown: &Shutdown,
    stop: &Shutdown,
    serving: &mut JoinHandle<std::io::Result<()>>,
) -> Option<HttpOutcome> {
    let mut outer = shutdown.clone();
    tokio::select! {
        _ = outer.wait() => None,
        _ = async { let mut s = stop.clone(); s.wait().await } => None,
        r = serving => Some(r),
    }
}

/// Waits up to the shutdown timeout for in-flight requests; past it, aborts the server, stops
/// the inference thread and fails.
async fn finish_in_flight(
    state: &Arc<AppState>,
    serving: &mut JoinHandle<std::io::Result<()>>,
) -> Result<HttpOutcome, Error> {
    tracing::info!("shutting down: finishing in-flight requests");
    match tokio::time::timeout(state.config.shutdown_timeout, &mut *serving).await {
        Ok(r) => Ok(r),
        Err(_) => {
            serving.abort();
            stop_batcher(state).await;
            Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "{SHUTDOWN_TIMEOUT_PREFIX} {} s",
                    state.config.shutdown_timeout.as_secs_f64()
                ),
            ))
        }
    }
}

/// Stops the inference thread (blocking, so off the runtime).
async fn stop_batcher(state: &Arc<AppState>) {
    let s = state.clone();
    let _ = tokio::task::spawn_blocking(move || s.batcher.stop()).await;
}

/// `run`'s result from the HTTP server task's outcome.
fn http_outcome(served: HttpOutcome) -> Result<(), Error> {
    match served {
        Ok(Ok(())) => {
            tracing::info!("stopped");
            Ok(())
        }
        Ok(Err(e)) => Err(Error::new(ErrorKind::Io, "the HTTP server failed").with_source(e)),
        Err(e) => Err(Error::new(
            ErrorKind::Internal,
            format!("the HTTP server task failed: {e}"),
        )),
    }
}

impl ServerHandle {
    /// Whether the server takes traffic: the model is loaded and shutdown has not begun.
    pub fn is_ready(&self) -> bool {
        crate::routes::health::is_ready(&self.state)
    }

    /// The model being served, if loaded.
    pub fn current_model(&self) -> Option<Arc<Served>> {
        self.state.slot.current()
    }

    /// Loads `tag` (default: the newest version of the served name) from the server's store
    /// and serves it if it passes the promotion checks ([`augur_model::promotion`]; `force`
    /// skips the MAE check); in-flight requests finish on the previous version.
    pub async fn promote(&self, tag: Option<&str>, force: bool) -> Result<Promotion, Error> {
        promote::promote_tag(&self.state, tag.map(str::to_string), force).await
    }

    /// Serves an already loaded model from now on.
    pub fn promote_model(&self, model: Arc<Model>) -> Promotion {
        promote::install(&self.state, model)
    }

    /// The registry `/metrics` renders.
    pub fn registry(&self) -> &Registry {
        self.state.metrics.registry()
    }
}
