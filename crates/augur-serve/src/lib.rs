//! augur's model server: the price model over HTTP, compatible with the original BentoML
//! service (`POST /predict`) and with the Open Inference Protocol v2 and KServe v1, with
//! adaptive micro-batching, Prometheus metrics, health probes, OpenAPI docs and hot model
//! promotion. axum on tokio; batches run on an inference thread of their own, and a small
//! request that finds it idle is scored in place (the `batcher` module).
//!
//! # Running one
//!
//! ```no_run
//! use augur_serve::{ModelSource, ServeConfig, Server};
//!
//! # async fn demo() -> augur_core::Result<()> {
//! let store = augur_model::ModelStore::open_default().expect("a store");
//! let (source, _fell_back) = ModelSource::store_or_shipped(store, "ford-price:latest")?;
//! let server = Server::bind(ServeConfig::default(), source).await?; // 127.0.0.1:3000
//! let handle = server.handle(); // readiness, promotion, metrics registry
//! let (trigger, shutdown) = augur_core::shutdown::channel();
//! tokio::spawn(async move { tokio::signal::ctrl_c().await.ok(); trigger.trigger(); });
//! server.run(shutdown).await?; // loads the model, serves, drains on shutdown
//! # let _ = handle; Ok(()) }
//! ```
//!
//! # Modules
//! - [`config`]: settings and defaults.
//! - [`error`]: [`ApiError`] (one request → JSON response); starting and running fail with
//!   [`augur_core::Error`].
//! - [`slot`]: the served model, swapped on promotion; where models load from.
//! - `batcher` (private): the adaptive micro-batcher and inference thread.
//! - [`metrics`]: metric names and handles.
//! - [`promote`]: hot promotion and the store watcher.
//! - `routes` (private): the router and one module per protocol.
//! - [`server`]: bind, run, drain.
//!
//! See `docs/serve.md` for the HTTP contract, the batching algorithm and the figures.

mod batcher;
pub mod config;
pub mod error;
pub mod metrics;
pub mod promote;
mod routes;
pub mod server;
pub mod slot;
mod state;

pub use config::ServeConfig;
pub use error::{ApiError, ApiErrorKind};
pub use metrics::ServeMetrics;
pub use promote::Promotion;
pub use server::{SHUTDOWN_TIMEOUT_PREFIX, Server, ServerHandle, is_shutdown_timeout};
pub use slot::{MODEL_HEADER, ModelSource, Served};
