//! The server's settings ([`ServeConfig`]), their defaults and their pure validation.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use augur_core::secret::Secret;
use augur_core::{Error, ErrorKind};

/// The default port, as BentoML serves on.
pub const DEFAULT_PORT: u16 = 3000;
/// The default largest number of rows predicted in one batch.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 64;
/// The default latency budget: a request not answered this long after it was queued gets `503`.
pub const DEFAULT_MAX_LATENCY: Duration = Duration::from_millis(1000);
/// The default number of requests that may wait for the inference thread.
pub const DEFAULT_MAX_QUEUE: usize = 1024;
/// The default largest request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// The default time in-flight requests get to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// The default interval of store polling when watching is on.
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Connection limits (timeouts, most connections), shared with augur's other servers.
pub use augur_http::Limits;

/// How the server listens, batches and limits. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen (default `127.0.0.1:3000`; port 0 picks a free port).
    pub addr: SocketAddr,
    /// The largest number of rows the adaptive batcher puts in one model call. A single
    /// request with more rows is predicted alone, in one call.
    pub max_batch_size: usize,
    /// The latency budget, counted from the moment a request is queued for inference: a
    /// request that cannot be answered within it gets `503`, as BentoML's `max_latency_ms`.
    pub max_latency: Duration,
    /// The most requests waiting for the inference thread; one more gets `503` at once.
    pub max_queue: usize,
    /// The largest request body in bytes; a larger one gets `413` (once read, so the client
    /// sees the answer).
    pub max_body_bytes: usize,
    /// Connection limits: header read and idle timeouts, most open connections.
    pub limits: augur_http::Limits,
    /// How long in-flight requests get to finish after shutdown is signalled; past it the
    /// server stops anyway and [`crate::Server::run`] returns an error.
    pub shutdown_timeout: Duration,
    /// Poll the model store this often and promote what the served tag now names: the alias
    /// it was given as (`name@champion`), else the newest version of the served name (`None`:
    /// only the admin endpoint promotes). Only for models loaded from a store.
    pub watch_interval: Option<Duration>,
    /// The checks every promotion passes (input signature; cross-validated MAE margin).
    pub promotion: augur_model::PromotionPolicy,
    /// When set, admin endpoints require `Authorization: Bearer <token>`; when not, they
    /// answer only clients connecting from a loopback address.
    pub admin_token: Option<Secret>,
    /// When set, every endpoint but the health probes (`/livez`, `/healthz`, `/readyz`,
    /// `/v2/health/*`) requires `Authorization: Bearer <token>` (401 otherwise); admin
    /// endpoints then need it too unless `admin_token` is set.
    pub api_token: Option<Secret>,
    /// HTTPS when set.
    pub tls: Option<augur_http::ServerTls>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            max_latency: DEFAULT_MAX_LATENCY,
            max_queue: DEFAULT_MAX_QUEUE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: augur_http::Limits::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            watch_interval: None,
            promotion: augur_model::PromotionPolicy::default(),
            admin_token: None,
            api_token: None,
            tls: None,
        }
    }
}

impl ServeConfig {
    /// Checks the values (no I/O).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: &str| Err(Error::new(ErrorKind::Config, msg.to_string()));
        if self.max_batch_size == 0 {
            return bad("max_batch_size must be at least 1");
        }
        if self.max_batch_size > 65_536 {
            return bad("max_batch_size must be at most 65536");
        }
        if self.max_latency.is_zero() {
            return bad("max_latency_ms must be at least 1");
        }
        if self.max_queue == 0 {
            return bad("max_queue must be at least 1");
        }
        if self.max_body_bytes < 64 {
            return bad("max_body_bytes must be at least 64");
        }
        if self.limits.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        let l = &self.limits;
        if l.header_timeout.is_zero() || l.idle_timeout.is_zero() || l.body_timeout.is_zero() {
            return bad("the header, idle and body timeouts must be above zero");
        }
        if self
            .watch_interval
            .is_some_and(|d| d < Duration::from_millis(10))
        {
            return bad("the store watch interval must be at least 10 ms");
        }
        if let Err(m) = self.promotion.validate() {
            return bad(&m);
        }
        if self.admin_token.as_ref().is_some_and(Secret::is_empty) {
            return bad("the admin token must not be empty");
        }
        if self.api_token.as_ref().is_some_and(Secret::is_empty) {
            return bad("the API token must not be empty");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        ServeConfig::default().validate().unwrap();
        let cfg = ServeConfig {
            max_batch_size: 0,
            ..ServeConfig::default()
        };
        let err = cfg.validate().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("max_batch_size"));
        let cfg = ServeConfig {
            max_latency: Duration::ZERO,
            ..ServeConfig::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("max_latency")
        );
    }
}
