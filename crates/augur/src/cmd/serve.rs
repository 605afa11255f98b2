//! `augur serve`: the model server — BentoML-compatible `POST /predict`, Open Inference
//! Protocol v2 and KServe v1 — for a model from the store (or the shipped one), until SIGINT
//! or SIGTERM, then a graceful drain.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use augur_model::ModelStore;
use augur_serve::{ModelSource, ServeConfig, Server, config};

use super::runtime;

/// Arguments of `augur serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The model tag to serve (`name`, `name:latest`, `name:N` or `name@alias`). When the store has no model
    /// of that name, the model compiled into augur (the repository's `models/`) is served instead.
    #[arg(long, env = "AUGUR_MODEL", default_value = augur_model::SHIPPED_MODEL)]
    model: String,
    /// Serve this model file instead (a store's `model.json` or an export); promotion by tag
    /// is then off.
    #[arg(long, env = "AUGUR_MODEL_FILE", value_name = "FILE")]
    model_file: Option<PathBuf>,
    /// Model store folder [default: $AUGUR_HOME/models, else ~/.augur/models].
    #[arg(long, env = "AUGUR_MODEL_STORE", value_name = "DIR")]
    store: Option<PathBuf>,
    /// Where to listen, `host:port`: loopback by default; `0.0.0.0:3000` or `[::]:3000` to
    /// accept other hosts; port 0 picks a free one (the log says which).
    #[arg(long, env = "AUGUR_SERVE_LISTEN", default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, config::DEFAULT_PORT)))]
    listen: SocketAddr,
    /// Old spelling: the host part of --listen.
    #[arg(long, hide = true)]
    host: Option<IpAddr>,
    /// Old spelling: the port part of --listen.
    #[arg(long, short = 'p', hide = true)]
    port: Option<u16>,
    /// Most rows the adaptive batcher scores in one model call.
    #[arg(long, env = "AUGUR_SERVE_MAX_BATCH_SIZE", default_value_t = config::DEFAULT_MAX_BATCH_SIZE)]
    max_batch_size: usize,
    /// Latency budget: a request not answered this many milliseconds after it was queued
    /// gets 503 (as BentoML's max_latency_ms).
    #[arg(long, env = "AUGUR_SERVE_MAX_LATENCY_MS", default_value_t = config::DEFAULT_MAX_LATENCY.as_millis() as u64)]
    max_latency_ms: u64,
    /// Most requests waiting for inference; one more gets 503 at once.
    #[arg(long, env = "AUGUR_SERVE_MAX_QUEUE", default_value_t = config::DEFAULT_MAX_QUEUE)]
    max_queue: usize,
    /// Largest request body in bytes; a larger one gets 413.
    #[arg(long, env = "AUGUR_SERVE_MAX_BODY_BYTES", default_value_t = config::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Most open connections; one more closes the longest-idle connection first.
    #[arg(long, env = "AUGUR_SERVE_MAX_CONNECTIONS", default_value_t = config::Limits::default().max_connections)]
    max_connections: usize,
    /// Seconds a request head may take to arrive before the connection is closed.
    #[arg(long, env = "AUGUR_SERVE_HEADER_TIMEOUT", default_value_t = config::Limits::default().header_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Seconds a connection may stay open between requests (or before its first).
    #[arg(long, env = "AUGUR_SERVE_IDLE_TIMEOUT", default_value_t = config::Limits::default().idle_timeout.as_secs_f64())]
    idle_timeout: f64,
    /// Seconds a request body may take to arrive.
    #[arg(long, env = "AUGUR_SERVE_BODY_TIMEOUT", default_value_t = config::Limits::default().body_timeout.as_secs_f64())]
    body_timeout: f64,
    /// Seconds in-flight requests get to finish after SIGTERM; past it augur exits with 1.
    #[arg(long, env = "AUGUR_SERVE_SHUTDOWN_TIMEOUT", default_value_t = config::DEFAULT_SHUTDOWN_TIMEOUT.as_secs_f64())]
    shutdown_timeout: f64,
    /// Watch the store: follow the alias given with --model (`name@champion`), else serve each
    /// newer version as soon as it is saved — if it passes the promotion checks.
    #[arg(long, env = "AUGUR_SERVE_WATCH", value_parser = clap::builder::BoolishValueParser::new())]
    watch: bool,
    /// Promotions (/admin/promote, --watch) refuse a model whose cross-validated MAE is worse
    /// than the served one's by more than this share (0.02 = 2 %); /admin/promote's
    /// `"force": true` overrides. A model with other inputs is always refused.
    #[arg(long, env = "AUGUR_PROMOTE_MAX_MAE_INCREASE", default_value_t = augur_model::promotion::DEFAULT_MAX_MAE_INCREASE)]
    promote_max_mae_increase: f64,
    /// How often --watch looks at the store, in milliseconds.
    #[arg(long, env = "AUGUR_SERVE_WATCH_INTERVAL_MS", default_value_t = config::DEFAULT_WATCH_INTERVAL.as_millis() as u64)]
    watch_interval_ms: u64,
    /// Require `Authorization: Bearer TOKEN` on /admin endpoints (without it they answer
    /// loopback clients only).
    #[arg(long, env = "AUGUR_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on every endpoint but the health probes
    /// (inference, metadata, metrics, docs; /admin too unless --admin-token is set).
    #[arg(long, env = "AUGUR_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// As --api-token, read from the first line of a file (keeps it out of `ps`).
    #[arg(long, env = "AUGUR_API_TOKEN_FILE", value_name = "FILE")]
    api_token_file: Option<PathBuf>,
    #[command(flatten)]
    tls: super::http_tls::TlsArgs,
}

/// Picks the model source: the file, the tag in the store, or the shipped model.
fn source(args: &ServeArgs) -> Result<ModelSource, augur_core::Error> {
    if let Some(file) = &args.model_file {
        return Ok(ModelSource::File(file.clone()));
    }
    let opened = match &args.store {
        Some(dir) => ModelStore::open(dir),
        None => ModelStore::open_default(),
    };
    let store = match opened {
        Ok(s) => s,
        // No usable store (no HOME, unwritable folder): the shipped store may still do.
        Err(e) => {
            tracing::warn!(error = %e, "cannot open the model store; trying the shipped models");
            ModelStore::open(augur_model::shipped_models_dir()).map_err(|e| {
                augur_core::Error::new(augur_core::ErrorKind::Model, "no model store")
                    .with_source(e)
            })?
        }
    };
    let root = store.root().to_path_buf();
    let (source, fell_back) = ModelSource::store_or_shipped(store, &args.model)?;
    if fell_back {
        tracing::info!(
            store = %root.display(),
            "{} is not in the store; serving the shipped model from {}",
            args.model,
            augur_model::shipped_models_dir().display()
        );
    }
    Ok(source)
}

/// Runs `augur serve`.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let api_token =
        match super::http_tls::secret_from(args.api_token.as_deref(), args.api_token_file.as_ref())
        {
            Ok(t) => t.map(augur_core::secret::Secret::new),
            Err(e) => return Ok(runtime::report(&e)),
        };
    let tls = match args.tls.load() {
        Ok(t) => t,
        Err(e) => return Ok(runtime::report(&e)),
    };
    let cfg = ServeConfig {
        addr: super::listen_addr(args.listen, args.host, args.port),
        max_batch_size: args.max_batch_size,
        max_latency: Duration::from_millis(args.max_latency_ms),
        max_queue: args.max_queue,
        max_body_bytes: args.max_body_bytes,
        limits: config::Limits {
            max_connections: args.max_connections,
            header_timeout: Duration::from_secs_f64(args.header_timeout.max(0.0)),
            idle_timeout: Duration::from_secs_f64(args.idle_timeout.max(0.0)),
            body_timeout: Duration::from_secs_f64(args.body_timeout.max(0.0)),
        },
        shutdown_timeout: Duration::from_secs_f64(args.shutdown_timeout.max(0.0)),
        watch_interval: args
            .watch
            .then(|| Duration::from_millis(args.watch_interval_ms)),
        promotion: augur_model::PromotionPolicy {
            max_mae_increase: args.promote_max_mae_increase,
            force: false,
        },
        admin_token: args
            .admin_token
            .clone()
            .map(augur_core::secret::Secret::new),
        api_token,
        tls,
    };
    let source = match source(&args) {
        Ok(s) => s,
        Err(e) => return Ok(runtime::report(&e)),
    };
    tracing::info!(model = %source.describe(), "starting the model server");
    let rt = runtime::tokio()?;
    rt.block_on(async move {
        let shutdown = runtime::signals();
        let server = match Server::bind(cfg, source).await {
            Ok(s) => s,
            Err(e) => return Ok(runtime::report(&e)),
        };
        match server.run(shutdown).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => Ok(runtime::report(&e)),
        }
    })
}
