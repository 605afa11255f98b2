//! The server's lifecycle: bind, load the model in the background (readiness flips when it is
//! in), serve until shutdown, then drain.
//!
//! Shutdown order: the signal fires → `/readyz` answers 503 → the listener stops accepting →
//! idle keep-alive connections close, in-flight requests finish (their batches too) → the
//! inference thread stops → [`Server::run`] returns. If in-flight requests are not done within
//! `shutdown_timeout`, `run` returns a [`ServeErrorKind::ShutdownTimeout`] error instead.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use augur_core::shutdown::{self, Shutdown};
use augur_metrics::Registry;
use augur_model::Model;
use axum::serve::ListenerExt;

use crate::batcher::{BatchSettings, Batcher};
use crate::config::ServeConfig;
use crate::error::{ServeError, ServeErrorKind};
use crate::metrics::ServeMetrics;
use crate::promote::{self, Promotion};
use crate::routes::router;
use crate::slot::{ModelSlot, ModelSource, Served};
use crate::state::AppState;

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
    pub async fn bind(config: ServeConfig, source: ModelSource) -> Result<Server, ServeError> {
        Server::bind_with_registry(config, source, Registry::new()).await
    }

    /// As [`Server::bind`], registering the server's metrics on `registry` (to share one
    /// `/metrics` with other components).
    pub async fn bind_with_registry(
        config: ServeConfig,
        source: ModelSource,
        registry: Registry,
    ) -> Result<Server, ServeError> {
        config.validate()?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| {
                ServeError::new(
                    ServeErrorKind::Bind,
                    format!("cannot listen on {}", config.addr),
                )
                .with_source(e)
                .with_hint("pick another --port, or stop the process using it")
            })?;
        let local_addr = listener.local_addr().map_err(|e| {
            ServeError::new(ServeErrorKind::Bind, "cannot read the bound address").with_source(e)
        })?;
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
            ServeError::new(
                ServeErrorKind::Internal,
                "cannot start the inference thread",
            )
            .with_source(e)
        })?;
        let state = Arc::new(AppState {
            config,
            slot: ModelSlot::default(),
            source,
            batcher,
            metrics,
            promote_lock: tokio::sync::Mutex::new(()),
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
    pub async fn run(self, shutdown: Shutdown) -> Result<(), ServeError> {
        let Server {
            listener,
            local_addr,
            state,
        } = self;
        let (stop_trigger, stop) = shutdown::channel();
        // One signal for the HTTP server: the caller's shutdown, or our own after a failed load.
        let mut stop_for_serve = stop.clone();
        let mut outer = shutdown.clone();
        let serve = axum::serve(
            listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            }),
            router(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = outer.wait() => {}
                _ = stop_for_serve.wait() => {}
            }
        })
        .into_future();
        let mut serving = tokio::spawn(serve);
        tracing::info!(address = %local_addr, "listening");

        // Load the model off the runtime; readiness flips once it is in the slot.
        let started = Instant::now();
        let source = state.source.clone();
        let loaded = tokio::task::spawn_blocking(move || source.load()).await;
        let load_error = match loaded {
            Ok(Ok(model)) => {
                let p = promote::install(&state, model);
                tracing::info!(
                    model = %p.current,
                    ms = started.elapsed().as_millis() as u64,
                    "model loaded; ready"
                );
                None
            }
            Ok(Err(e)) => Some(e),
            Err(e) => Some(ServeError::new(
                ServeErrorKind::Internal,
                format!("the model loading task failed: {e}"),
            )),
        };
        if load_error.is_none() {
            if let Some(interval) = state.config.watch_interval {
                tokio::spawn(promote::watch(state.clone(), interval, stop.clone()));
            }
        } else {
            stop_trigger.trigger();
        }

        // Serve until shutdown (or the server fails by itself).
        let mut outer = shutdown.clone();
        let early = tokio::select! {
            _ = outer.wait() => None,
            _ = async { let mut s = stop.clone(); s.wait().await } => None,
            r = &mut serving => Some(r),
        };
        state.shutting_down.store(true, Ordering::Release);
        stop_trigger.trigger(); // Stops the watcher.
        let served = match early {
            Some(r) => r,
            None => {
                tracing::info!("shutting down: finishing in-flight requests");
                match tokio::time::timeout(state.config.shutdown_timeout, &mut serving).await {
                    Ok(r) => r,
                    Err(_) => {
                        serving.abort();
                        let s = state.clone();
                        let _ = tokio::task::spawn_blocking(move || s.batcher.stop()).await;
                        return Err(ServeError::new(
                            ServeErrorKind::ShutdownTimeout,
                            format!(
                                "in-flight requests did not finish within {} s",
                                state.config.shutdown_timeout.as_secs_f64()
                            ),
                        ));
                    }
                }
            }
        };
        let s = state.clone();
        let _ = tokio::task::spawn_blocking(move || s.batcher.stop()).await;
        if let Some(e) = load_error {
            return Err(e);
        }
        match served {
            Ok(Ok(())) => {
                tracing::info!("stopped");
                Ok(())
            }
            Ok(Err(e)) => {
                Err(ServeError::new(ServeErrorKind::Io, "the HTTP server failed").with_source(e))
            }
            Err(e) => Err(ServeError::new(
                ServeErrorKind::Internal,
                format!("the HTTP server task failed: {e}"),
            )),
        }
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
    /// and serves it; in-flight requests finish on the previous version.
    pub async fn promote(&self, tag: Option<&str>) -> Result<Promotion, ServeError> {
        promote::promote_tag(&self.state, tag.map(str::to_string)).await
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
