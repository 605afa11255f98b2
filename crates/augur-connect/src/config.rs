//! The worker's own settings (not a connector's): where the REST API listens, which Kafka
//! cluster holds the data and the state topics, and how long a clean stop may take.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use augur_core::{Error, ErrorKind};
use augur_runtime::security::ClientSettings;

/// Kafka Connect's REST port.
pub const DEFAULT_PORT: u16 = 8083;
/// Kafka Connect's default `config.storage.topic`.
pub const DEFAULT_CONFIG_TOPIC: &str = "connect-configs";
/// Kafka Connect's default `offset.storage.topic`.
pub const DEFAULT_OFFSET_TOPIC: &str = "connect-offsets";
/// Kafka Connect's default `status.storage.topic`.
pub const DEFAULT_STATUS_TOPIC: &str = "connect-status";
/// Kafka Connect's default `group.id` for a worker cluster.
pub const DEFAULT_GROUP_ID: &str = "connect-cluster";
/// How long stopping tasks (pause, stop, delete, worker shutdown) may take before they are
/// abandoned.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request body accepted.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// The worker's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Where the REST API listens (loopback by default).
    pub addr: SocketAddr,
    /// `bootstrap.servers`: the Kafka cluster connectors read and write, and that holds the
    /// state topics.
    pub bootstrap_servers: String,
    /// `group.id` of the worker cluster (names the worker's clients).
    pub group_id: String,
    /// `config.storage.topic`: connector configs and target states.
    pub config_topic: String,
    /// `offset.storage.topic`: source connector offsets.
    pub offset_topic: String,
    /// `status.storage.topic`: connector and task states.
    pub status_topic: String,
    /// Replication factor of the state topics when the worker creates them.
    pub replication_factor: i32,
    /// How long stopping tasks may take.
    pub shutdown_timeout: Duration,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Kafka client settings (`--kafka-config`): unprefixed keys for every client — the
    /// worker's own and its connectors' — and `producer.*` / `consumer.*` for connectors'
    /// producers or consumers; a connector's `*.override.*` keys come last.
    pub client: ClientSettings,
    /// HTTP Basic users of the REST API (`--rest-auth-file`); none: no authentication.
    pub rest_auth: Option<augur_http::BasicCredentials>,
    /// HTTPS for the REST API (`--tls-cert`, `--tls-key`).
    pub tls: Option<augur_http::ServerTls>,
    /// `topic.tracking.enable`: record each connector's active topics (KIP-558).
    pub topic_tracking: bool,
    /// `topic.tracking.allow.reset`: allow `PUT /connectors/{name}/topics/reset`.
    pub topic_tracking_reset: bool,
    /// Working as one of a cluster of workers (`--distributed`).
    pub cluster: ClusterConfig,
}

/// How workers with the same `group.id` form a cluster through the broker's group coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Join the group and run only what the leader assigns; off: this worker runs everything.
    pub enabled: bool,
    /// `session.timeout.ms`: how long a silent worker keeps its work.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `rebalance.timeout.ms`: how long the group waits for members to rejoin.
    pub rebalance_timeout: Duration,
    /// `scheduled.rebalance.max.delay.ms`: how long a departed worker's work waits for it to
    /// come back. Kafka Connect's default is 5 minutes; augur's is 0 (a dead worker's tasks
    /// move after the session timeout).
    pub max_delay: Duration,
    /// CA certificates (PEM file or directory) trusted when forwarding a request to an HTTPS
    /// leader (Kafka Connect's `listeners.https.ssl.truststore.location`); `None`: the
    /// system's CA bundle.
    pub rest_ca: Option<std::path::PathBuf>,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            enabled: false,
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(3),
            rebalance_timeout: Duration::from_secs(60),
            max_delay: Duration::ZERO,
            rest_ca: None,
        }
    }
}

impl WorkerConfig {
    /// Defaults for a worker using the cluster at `bootstrap`.
    pub fn new(bootstrap: impl Into<String>) -> WorkerConfig {
        WorkerConfig {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT),
            bootstrap_servers: bootstrap.into(),
            group_id: DEFAULT_GROUP_ID.to_string(),
            config_topic: DEFAULT_CONFIG_TOPIC.to_string(),
            offset_topic: DEFAULT_OFFSET_TOPIC.to_string(),
            status_topic: DEFAULT_STATUS_TOPIC.to_string(),
            replication_factor: 1,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            client: ClientSettings::default(),
            rest_auth: None,
            tls: None,
            topic_tracking: true,
            topic_tracking_reset: true,
            cluster: ClusterConfig::default(),
        }
    }

    /// A librdkafka config for one of the worker's own clients: the bootstrap servers, quiet
    /// logging and the unprefixed client settings.
    pub fn kafka_client(&self) -> Result<rdkafka::ClientConfig, Error> {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("log_level", "3");
        augur_runtime::security::apply(&mut c, &self.client.common(), false)?;
        Ok(c)
    }

    /// Checks the settings (no I/O).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::new(ErrorKind::Config, m.to_string()));
        if self.bootstrap_servers.trim().is_empty() {
            return bad("the Kafka bootstrap servers are empty (--kafka)");
        }
        let topics = [&self.config_topic, &self.offset_topic, &self.status_topic];
        if topics.iter().any(|t| t.trim().is_empty()) {
            return bad("a state topic name is empty");
        }
        if self.config_topic == self.offset_topic
            || self.config_topic == self.status_topic
            || self.offset_topic == self.status_topic
        {
            return bad("the config, offset and status topics must be three different topics");
        }
        if self.replication_factor < 1 {
            return bad("the state topics' replication factor must be at least 1");
        }
        if self.max_body_bytes == 0 {
            return bad("the largest request body must be at least one byte");
        }
        self.validate_cluster()
    }

    /// Checks the cluster settings.
    fn validate_cluster(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::new(ErrorKind::Config, m.to_string()));
        let c = &self.cluster;
        if !c.enabled {
            return Ok(());
        }
        if c.heartbeat_interval.is_zero() || c.heartbeat_interval >= c.session_timeout {
            return bad("heartbeat.interval.ms must be above 0 and below session.timeout.ms");
        }
        if c.rebalance_timeout < c.session_timeout {
            return bad("rebalance.timeout.ms must be at least session.timeout.ms");
        }
        self.link_security().map(|_| ())
    }

    /// The group connection's TLS and SASL, from the worker's client settings (no I/O).
    pub fn link_security(&self) -> Result<crate::cluster::secure::LinkSecurity, Error> {
        let translated =
            augur_runtime::security::translate(&self.client.common()).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("invalid Kafka setting {}: {}", e.key, e.message),
                )
            })?;
        crate::cluster::secure::LinkSecurity::from_settings(&translated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafka_connects_and_validate() {
        let c = WorkerConfig::new("127.0.0.1:9092");
        assert_eq!(c.addr.port(), 8083);
        assert!(c.addr.ip().is_loopback());
        assert!(c.validate().is_ok());
        let mut same = c.clone();
        same.status_topic = same.config_topic.clone();
        assert!(same.validate().is_err());
        assert!(WorkerConfig::new(" ").validate().is_err());
    }
}
