//! `augur connect`: a Kafka Connect-compatible worker — the Connect REST API on :8083
//! (loopback by default) running capture, enrichment and JDBC sink connectors as in-process
//! tasks, with configs, statuses and offsets durable in Kafka — until SIGINT or SIGTERM, then
//! every connector drains and stops (and resumes on the next start).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use augur_connect::ConnectServer;
use augur_connect::config::{self as cfg, WorkerConfig};

use super::runtime;

/// Arguments of `augur connect`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConnectArgs {
    /// Kafka bootstrap servers: the cluster connectors read and write, which also holds the
    /// worker's state topics.
    #[arg(long, env = "AUGUR_KAFKA", value_name = "HOST:PORT[,…]")]
    kafka: String,
    /// Where the REST API listens, `host:port`: loopback by default; `0.0.0.0:8083` or
    /// `[::]:8083` to accept other hosts; port 0 picks a free one (the log says which).
    #[arg(long, env = "AUGUR_CONNECT_LISTEN", default_value_t = SocketAddr::from((Ipv4Addr::LOCALHOST, cfg::DEFAULT_PORT)))]
    listen: SocketAddr,
    /// Old spelling: the host part of --listen.
    #[arg(long, hide = true)]
    host: Option<IpAddr>,
    /// Old spelling: the port part of --listen.
    #[arg(long, short = 'p', hide = true)]
    port: Option<u16>,
    /// Worker group id (Kafka Connect's `group.id`); names the worker's Kafka clients.
    #[arg(long, env = "AUGUR_CONNECT_GROUP_ID", default_value = cfg::DEFAULT_GROUP_ID)]
    group_id: String,
    /// Topic holding connector configs and target states (`config.storage.topic`).
    #[arg(long, env = "AUGUR_CONNECT_CONFIG_TOPIC", default_value = cfg::DEFAULT_CONFIG_TOPIC)]
    config_topic: String,
    /// Topic holding source offsets (`offset.storage.topic`).
    #[arg(long, env = "AUGUR_CONNECT_OFFSET_TOPIC", default_value = cfg::DEFAULT_OFFSET_TOPIC)]
    offset_topic: String,
    /// Topic holding connector and task states (`status.storage.topic`).
    #[arg(long, env = "AUGUR_CONNECT_STATUS_TOPIC", default_value = cfg::DEFAULT_STATUS_TOPIC)]
    status_topic: String,
    /// Replication factor of the state topics when the worker creates them.
    #[arg(long, env = "AUGUR_CONNECT_REPLICATION_FACTOR", default_value_t = 1)]
    replication_factor: i32,
    /// Seconds tasks get to drain and stop (pause, stop, delete, SIGTERM).
    #[arg(long, env = "AUGUR_CONNECT_SHUTDOWN_TIMEOUT", default_value_t = cfg::DEFAULT_SHUTDOWN_TIMEOUT.as_secs_f64())]
    shutdown_timeout: f64,
    #[command(flatten)]
    kafka_client: super::kafka_client::KafkaClientArgs,
    /// Require HTTP Basic authentication on the REST API (all but GET /health), users from
    /// this file of `user: password` lines (as Kafka Connect's BasicAuthSecurityRestExtension
    /// reads through PropertyFileLoginModule).
    #[arg(long, env = "AUGUR_CONNECT_REST_AUTH_FILE", value_name = "FILE")]
    rest_auth_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    tls: super::http_tls::TlsArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// How workers with the same --group-id share the connectors (Kafka Connect's distributed
/// mode).
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// Join the worker group through the broker's group coordinator and run only the
    /// connectors and tasks its leader assigns here; without it this worker runs them all.
    #[arg(long, env = "AUGUR_CONNECT_DISTRIBUTED")]
    distributed: bool,
    /// `session.timeout.ms`: how long a silent worker keeps its tasks before they move.
    #[arg(
        long,
        env = "AUGUR_CONNECT_SESSION_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    session_timeout_ms: u64,
    /// `heartbeat.interval.ms`.
    #[arg(
        long,
        env = "AUGUR_CONNECT_HEARTBEAT_INTERVAL_MS",
        default_value_t = 3_000
    )]
    heartbeat_interval_ms: u64,
    /// `rebalance.timeout.ms`.
    #[arg(
        long,
        env = "AUGUR_CONNECT_REBALANCE_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    rebalance_timeout_ms: u64,
    /// `scheduled.rebalance.max.delay.ms`: how long a departed worker's tasks wait for it to
    /// return before moving (0: move at once).
    #[arg(long, env = "AUGUR_CONNECT_REBALANCE_DELAY_MS", default_value_t = 0)]
    scheduled_rebalance_max_delay_ms: u64,
    /// CA certificates (a PEM file or a directory of them) trusted when forwarding a request
    /// to an HTTPS leader (Kafka Connect's `listeners.https.ssl.truststore.location`);
    /// default: the system's CA bundle.
    #[arg(long, env = "AUGUR_CONNECT_REST_CA_FILE")]
    rest_ca_file: Option<std::path::PathBuf>,
}

impl ClusterArgs {
    /// The cluster settings.
    fn config(&self) -> cfg::ClusterConfig {
        cfg::ClusterConfig {
            enabled: self.distributed,
            session_timeout: Duration::from_millis(self.session_timeout_ms),
            heartbeat_interval: Duration::from_millis(self.heartbeat_interval_ms),
            rebalance_timeout: Duration::from_millis(self.rebalance_timeout_ms),
            max_delay: Duration::from_millis(self.scheduled_rebalance_max_delay_ms),
            rest_ca: self.rest_ca_file.clone(),
        }
    }
}

/// Runs `augur connect`.
pub(crate) fn run(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let mut config = WorkerConfig::new(args.kafka);
    config.client = match args.kafka_client.settings(&[]) {
        Ok(c) => c,
        Err(e) => return Ok(runtime::report(&e)),
    };
    if let Some(file) = &args.rest_auth_file {
        match augur_http::BasicCredentials::load(file) {
            Ok(c) => config.rest_auth = Some(c),
            Err(e) => return Ok(runtime::report(&e)),
        }
    }
    config.tls = match args.tls.load() {
        Ok(t) => t,
        Err(e) => return Ok(runtime::report(&e)),
    };
    config.addr = super::listen_addr(args.listen, args.host, args.port);
    config.group_id = args.group_id;
    config.config_topic = args.config_topic;
    config.offset_topic = args.offset_topic;
    config.status_topic = args.status_topic;
    config.replication_factor = args.replication_factor;
    config.cluster = args.cluster.config();
    config.shutdown_timeout = Duration::from_secs_f64(args.shutdown_timeout.max(0.0));
    let rt = runtime::tokio()?;
    rt.block_on(async move {
        let shutdown = runtime::signals();
        let server = match ConnectServer::start(config).await {
            Ok(s) => s,
            Err(e) => return Ok(runtime::report(&e)),
        };
        match server.run(shutdown).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => Ok(runtime::report(&e)),
        }
    })
}
