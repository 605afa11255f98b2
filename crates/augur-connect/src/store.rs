//! Durable worker state in three Kafka topics, laid out as Kafka Connect's distributed mode lays
//! them out, so the data path and its state live in one place and existing tools can read them:
//!
//! - `connect-configs`: `connector-<name>` → `{"properties":{…}}` and `target-state-<name>` →
//!   `{"state":"STARTED"|"PAUSED","state.v2":"STARTED"|"PAUSED"|"STOPPED"}`; tombstones on
//!   delete. Read whole at startup: the last record per key wins.
//! - `connect-offsets`: `["<connector>",{"server":"<topic.prefix>"}]` → Debezium's offset map.
//!   Read whole at startup and kept in memory; each save waits for the broker's acknowledgement.
//! - `connect-status`: `status-connector-<name>` / `status-task-<name>-<id>` →
//!   `{"state","trace","worker_id","generation"}`, written on every transition (tombstones on
//!   delete). A restarted worker derives its own units' states from the target states; in a
//!   cluster the other workers' records are read back.
//!   Connectors' active topics (`topic-<topic>-connector-<name>`, KIP-558) are read back.
//!
//! The topics are created (one partition, compacted) when missing. After the startup read the
//! worker follows the config topic (and, in a cluster, the status topic) with `tail.rs`;
//! workers sharing the topics coordinate through the group (`worker/owned.rs`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use augur_core::{Error, ErrorKind};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::{Value, json};

use crate::topics::{self, ActiveTopics};

use crate::config::WorkerConfig;
use crate::worker::State;

/// How long one state write may wait for the broker's acknowledgement.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long reading a state topic at startup may take.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the first contact with the broker may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a connector should be doing, as Kafka Connect's target states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Tasks run.
    Started,
    /// Tasks are stopped and show `PAUSED`; config and task list kept.
    Paused,
    /// Tasks are stopped and removed; the connector shows `STOPPED`.
    Stopped,
}

impl TargetState {
    /// `initial_state` of `POST /connectors`: `RUNNING`, `PAUSED` or `STOPPED`.
    pub fn from_initial_state(s: &str) -> Option<TargetState> {
        match s.trim().to_ascii_uppercase().as_str() {
            "RUNNING" => Some(TargetState::Started),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }

    /// The `target-state-<name>` record value.
    fn record(self) -> TargetStateRecord {
        let (state, state_v2) = match self {
            TargetState::Started => ("STARTED", "STARTED"),
            TargetState::Paused => ("PAUSED", "PAUSED"),
            // Pre-3.5 readers see PAUSED, which also keeps tasks from running.
            TargetState::Stopped => ("PAUSED", "STOPPED"),
        };
        TargetStateRecord { state, state_v2 }
    }

    /// Reads a `target-state-<name>` record value.
    fn parse(v: &Value) -> Option<TargetState> {
        let s = v
            .get("state.v2")
            .and_then(Value::as_str)
            .or_else(|| v.get("state").and_then(Value::as_str))?;
        match s {
            "STARTED" => Some(TargetState::Started),
            "PAUSED" => Some(TargetState::Paused),
            "STOPPED" => Some(TargetState::Stopped),
            _ => None,
        }
    }
}

/// A `target-state-<name>` record value (Kafka Connect's `KafkaConfigBackingStore`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct TargetStateRecord {
    /// `STARTED` or `PAUSED`, as pre-3.5 readers know them.
    state: &'static str,
    /// `STARTED`, `PAUSED` or `STOPPED`.
    #[serde(rename = "state.v2")]
    state_v2: &'static str,
}

/// A `connector-<name>` record value.
#[derive(Debug, Clone, Copy, Serialize)]
struct ConnectorConfigRecord<'a> {
    /// The config, as submitted.
    properties: &'a BTreeMap<String, String>,
}

/// A `status-connector-<name>` or `status-task-<name>-<id>` record value (Kafka Connect's
/// `KafkaStatusBackingStore`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct StatusRecord {
    /// The state.
    pub(crate) state: State,
    /// Why it failed (secrets scrubbed); `null` unless it failed.
    pub(crate) trace: Option<String>,
    /// The worker running it (`host:port`).
    pub(crate) worker_id: String,
    /// The generation of the connector's config.
    pub(crate) generation: u64,
}

impl StatusRecord {
    /// Parses a status record's value (`None` for a tombstone or anything unreadable).
    pub(crate) fn parse(bytes: &[u8]) -> Option<StatusRecord> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        Some(StatusRecord {
            state: State::parse(v.get("state")?.as_str()?)?,
            trace: v.get("trace").and_then(Value::as_str).map(str::to_string),
            worker_id: v.get("worker_id")?.as_str()?.to_string(),
            generation: v.get("generation").and_then(Value::as_u64).unwrap_or(0),
        })
    }
}

/// A state record's value as JSON bytes.
fn encode(record: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(record)
        .map_err(|e| Error::new(ErrorKind::Internal, "cannot encode a state record").with_source(e))
}

/// A connector as the config topic holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConnector {
    /// The config, as submitted (secrets included: the topic is the worker's own).
    pub config: BTreeMap<String, String>,
    /// Its target state.
    pub target: TargetState,
}

/// What the state topics held when the worker started.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// Connectors by name.
    pub connectors: BTreeMap<String, StoredConnector>,
    /// The Kafka cluster id.
    pub cluster_id: String,
    /// Where the config topic ended (to follow it from there).
    pub(crate) config_from: Positions,
    /// Where the status topic ended.
    pub(crate) status_from: Positions,
    /// The last status record of each connector and task.
    pub(crate) statuses: BTreeMap<String, StatusRecord>,
}

/// Source offsets by connector, then by partition (as compact JSON text).
type OffsetMap = BTreeMap<String, BTreeMap<String, (Value, Value)>>;

/// The worker's handle on its state topics.
pub struct StateStore {
    /// Writes every state record (idempotent, `acks=all`).
    producer: FutureProducer,
    /// The worker's settings (to read the topics again).
    cfg: WorkerConfig,
    /// `config.storage.topic`.
    config_topic: String,
    /// `offset.storage.topic`.
    offset_topic: String,
    /// `status.storage.topic`.
    status_topic: String,
    /// Source offsets as last written.
    offsets: Mutex<OffsetMap>,
    /// Connectors' active topics (KIP-558).
    topics: ActiveTopics,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("config_topic", &self.config_topic)
            .field("offset_topic", &self.offset_topic)
            .field("status_topic", &self.status_topic)
            .finish_non_exhaustive()
    }
}

fn state_error(
    what: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::new(ErrorKind::Destination, what).with_source(e)
}

impl StateStore {
    /// Connects to the cluster, creates the state topics when missing, and reads the configs
    /// and offsets they hold.
    pub async fn open(cfg: &WorkerConfig) -> Result<(Arc<StateStore>, Restored), Error> {
        let producer: FutureProducer = cfg
            .kafka_client()?
            .set("client.id", format!("{}-state", cfg.group_id))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .create()
            .map_err(|e| Error::new(ErrorKind::Config, "invalid Kafka settings").with_source(e))?;
        let p = producer.clone();
        let bootstrap = cfg.bootstrap_servers.clone();
        let cluster_id = tokio::task::spawn_blocking(move || {
            let md = p.client().fetch_metadata(None, CONNECT_TIMEOUT);
            match md {
                Ok(m) if !m.brokers().is_empty() => Ok(p
                    .client()
                    .fetch_cluster_id(CONNECT_TIMEOUT)
                    .unwrap_or_default()),
                _ => Err(Error::new(
                    ErrorKind::Connection,
                    format!(
                        "cannot reach a Kafka broker at {bootstrap} within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                )
                .with_hint("start the broker or fix --kafka")),
            }
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "startup task failed").with_source(e))??;

        create_topics(cfg).await?;
        let (configs, offsets, statuses) = {
            let c = cfg.clone();
            tokio::task::spawn_blocking(move || -> Result<_, Error> {
                let configs = read_all(&c, &c.config_topic)?;
                let offsets = read_all(&c, &c.offset_topic)?;
                let statuses = read_all(&c, &c.status_topic)?;
                Ok((configs, offsets, statuses))
            })
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Internal, "state reading task failed").with_source(e)
            })??
        };
        let ((configs, config_from), (offsets, _), (statuses, status_from)) =
            (configs, offsets, statuses);
        let restored = Restored {
            connectors: restore_configs(&configs),
            cluster_id,
            config_from,
            status_from,
            statuses: restore_statuses(&statuses),
        };
        let store = StateStore {
            producer,
            cfg: cfg.clone(),
            config_topic: cfg.config_topic.clone(),
            offset_topic: cfg.offset_topic.clone(),
            status_topic: cfg.status_topic.clone(),
            offsets: Mutex::new(restore_offsets(&offsets)),
            topics: ActiveTopics::restore(&statuses),
        };
        tracing::info!(
            connectors = restored.connectors.len(),
            config_records = configs.len(),
            offset_records = offsets.len(),
            "worker state read"
        );
        Ok((Arc::new(store), restored))
    }

    /// Enqueues one record, returning its delivery future.
    fn enqueue(
        &self,
        topic: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<DeliveryFuture, Error> {
        let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key);
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        self.producer
            .send_result(rec)
            .map_err(|(e, _)| state_error(format!("cannot write to {topic}"), e))
    }

    /// Writes one record and waits for the broker's acknowledgement.
    /// Returns the record's offset.
    async fn write(&self, topic: &str, key: &str, value: Option<&[u8]>) -> Result<i64, Error> {
        let f = self.enqueue(topic, key, value)?;
        match tokio::time::timeout(WRITE_TIMEOUT, f).await {
            Ok(r) => delivered(topic, r),
            Err(_) => Err(Error::new(
                ErrorKind::Destination,
                format!(
                    "{topic} did not acknowledge a write within {} s",
                    WRITE_TIMEOUT.as_secs()
                ),
            )),
        }
    }

    /// Stores a connector's config; returns the record's offset.
    pub async fn put_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<i64, Error> {
        let value = encode(&ConnectorConfigRecord { properties: config })?;
        self.write(
            &self.config_topic,
            &format!("connector-{name}"),
            Some(&value),
        )
        .await
    }

    /// Stores a connector's target state; returns the record's offset.
    pub async fn put_target_state(&self, name: &str, target: TargetState) -> Result<i64, Error> {
        let value = encode(&target.record())?;
        self.write(
            &self.config_topic,
            &format!("target-state-{name}"),
            Some(&value),
        )
        .await
    }

    /// Removes a connector's config and target state (its offsets stay, as in Kafka Connect:
    /// a connector created again under the same name resumes from them).
    /// Returns the last record's offset.
    pub async fn delete_connector(&self, name: &str) -> Result<i64, Error> {
        self.write(&self.config_topic, &format!("connector-{name}"), None)
            .await?;
        self.write(&self.config_topic, &format!("target-state-{name}"), None)
            .await
    }

    /// Stores a restart request, as Kafka Connect's leader does
    /// (`restart-connector-<name>` → `{"only-failed","include-tasks"}`), so the workers running
    /// the connector and its tasks restart them; returns the record's offset.
    pub(crate) async fn put_restart(&self, name: &str, restart: Restart) -> Result<i64, Error> {
        let (key, value) = match restart {
            Restart::Connector {
                only_failed,
                include_tasks,
            } => (
                format!("restart-connector-{name}"),
                json!({"only-failed": only_failed, "include-tasks": include_tasks}),
            ),
            // Kafka Connect forwards a task restart to the task's worker; augur's workers all
            // follow the config topic, so the request goes there (Kafka Connect would skip it).
            Restart::Task(task) => (format!("restart-task-{name}-{task}"), json!({"task": task})),
        };
        let bytes = value.to_string().into_bytes();
        self.write(&self.config_topic, &key, Some(&bytes)).await
    }

    /// Writes a status record without waiting (a failed write is logged: the status topic
    /// informs other tools, other workers show it).
    pub(crate) fn put_status(&self, key: String, value: Option<&StatusRecord>) {
        match value.map(encode).transpose() {
            Ok(bytes) => self.write_status(key, bytes),
            Err(e) => tracing::warn!(error = %e, key = %key, "status record not written"),
        }
    }

    /// Writes a status-topic record without waiting (a failed write is logged).
    fn write_status(&self, key: String, bytes: Option<Vec<u8>>) {
        match self.enqueue(&self.status_topic, &key, bytes.as_deref()) {
            Ok(f) => {
                let topic = self.status_topic.clone();
                let wait = async move {
                    if let Err(e) = delivered(&topic, f.await) {
                        tracing::warn!(error = %e, key = %key, "status record not written");
                    }
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(h) => {
                        h.spawn(wait);
                    }
                    Err(_) => drop(wait),
                }
            }
            Err(e) => tracing::warn!(error = %e, key = %key, "status record not written"),
        }
    }

    /// Records that `connector`'s task `task` uses `topic` (written once per topic).
    pub(crate) fn record_topic(&self, connector: &str, task: usize, topic: &str) {
        if !self.topics.insert(connector, topic) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let v = topics::value(topic, connector, task, now);
        self.write_status(topics::key(topic, connector), Some(v));
    }

    /// `connector`'s active topics, sorted.
    pub(crate) fn active_topics(&self, connector: &str) -> Vec<String> {
        self.topics.get(connector)
    }

    /// Forgets `connector`'s active topics (tombstones in the status topic).
    pub(crate) fn reset_topics(&self, connector: &str) {
        for t in self.topics.take(connector) {
            self.write_status(topics::key(&t, connector), None);
        }
    }

    /// The stored offset of `connector` for `partition`.
    pub fn offset(&self, connector: &str, partition: &Value) -> Option<Value> {
        let map = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        map.get(connector)
            .and_then(|m| m.get(&partition.to_string()))
            .map(|(_, o)| o.clone())
    }

    /// Every stored offset of `connector`, as `(partition, offset)`.
    pub fn offsets(&self, connector: &str) -> Vec<(Value, Value)> {
        let map = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        map.get(connector)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Reads the offsets topic to its end again (as Kafka Connect's offset store does before a
    /// task reads its offsets), so a task that moved from another worker sees its last save.
    pub(crate) async fn refresh_offsets(&self) -> Result<(), Error> {
        let (cfg, topic) = (self.cfg.clone(), self.offset_topic.clone());
        let (records, _) = tokio::task::spawn_blocking(move || read_all(&cfg, &topic))
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Internal, "offset reading task failed").with_source(e)
            })??;
        *self.offsets.lock().unwrap_or_else(|e| e.into_inner()) = restore_offsets(&records);
        Ok(())
    }

    /// Writes an offset (`None`: a tombstone that removes it) and waits until the broker has
    /// it (at most the write timeout).
    pub async fn put_offset(
        &self,
        connector: &str,
        partition: &Value,
        offset: Option<Value>,
    ) -> Result<(), Error> {
        // An unchanged offset is durable already (idle slots confirm the same position again
        // and again); writing it once keeps the topic small.
        if self.offset(connector, partition) == offset {
            return Ok(());
        }
        let key = json!([connector, partition]).to_string();
        let bytes = offset.as_ref().map(|o| o.to_string().into_bytes());
        let f = self.enqueue(&self.offset_topic, &key, bytes.as_deref())?;
        match tokio::time::timeout(WRITE_TIMEOUT, f).await {
            Ok(r) => {
                delivered(&self.offset_topic, r)?;
            }
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Destination,
                    format!(
                        "{} did not acknowledge an offset within {} s",
                        self.offset_topic,
                        WRITE_TIMEOUT.as_secs()
                    ),
                ));
            }
        }
        let mut map = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(connector.to_string()).or_default();
        match offset {
            Some(o) => {
                entry.insert(partition.to_string(), (partition.clone(), o));
            }
            None => {
                entry.remove(&partition.to_string());
            }
        }
        Ok(())
    }

    /// Waits (off the runtime) until every queued state record is written, up to `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        let p = self.producer.clone();
        let r = tokio::task::spawn_blocking(move || p.flush(timeout)).await;
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "state records not flushed before exit");
        }
    }
}

/// A delivery future's outcome as a state error.
fn delivered<E>(
    topic: &str,
    r: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
) -> Result<i64, Error> {
    match r {
        Ok(Ok(d)) => Ok(d.offset),
        Ok(Err((e, _))) => Err(state_error(format!("{topic} refused a write"), e)),
        Err(_) => Err(Error::new(
            ErrorKind::Destination,
            format!("the producer for {topic} stopped before a delivery report"),
        )),
    }
}

/// Creates the three state topics (one partition, compacted) unless they exist.
async fn create_topics(cfg: &WorkerConfig) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = cfg
        .kafka_client()?
        .create()
        .map_err(|e| Error::new(ErrorKind::Config, "invalid Kafka settings").with_source(e))?;
    let opts = AdminOptions::new().operation_timeout(Some(CONNECT_TIMEOUT));
    for topic in [&cfg.config_topic, &cfg.offset_topic, &cfg.status_topic] {
        let compacted = NewTopic::new(topic, 1, TopicReplication::Fixed(cfg.replication_factor))
            .set("cleanup.policy", "compact");
        let mut results = admin
            .create_topics(&[compacted], &opts)
            .await
            .map_err(|e| state_error(format!("cannot create topic {topic}"), e))?;
        // A broker that does not know topic configs gets a plain topic.
        if matches!(results.first(), Some(Err((_, code))) if *code != RDKafkaErrorCode::TopicAlreadyExists)
        {
            let plain = NewTopic::new(topic, 1, TopicReplication::Fixed(cfg.replication_factor));
            results = admin
                .create_topics(&[plain], &opts)
                .await
                .map_err(|e| state_error(format!("cannot create topic {topic}"), e))?;
        }
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(Error::new(
                        ErrorKind::Destination,
                        format!("cannot create topic {t}: {code}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// One record of a state topic: key and value bytes (`None`: tombstone).
pub(crate) type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Where to go on reading a topic: the next offset of each partition.
pub(crate) type Positions = Vec<(i32, Offset)>;

/// Reads `topic` from the beginning of every partition to its end (blocking); also returns
/// where each partition ended (to follow it from there).
fn read_all(cfg: &WorkerConfig, topic: &str) -> Result<(Vec<RawRecord>, Positions), Error> {
    let consumer: BaseConsumer = cfg
        .kafka_client()?
        .set("group.id", format!("{}-state-reader", cfg.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| Error::new(ErrorKind::Config, "invalid Kafka settings").with_source(e))?;
    let deadline = Instant::now() + READ_TIMEOUT;
    let partitions: Vec<i32> = loop {
        let md = consumer.fetch_metadata(Some(topic), CONNECT_TIMEOUT);
        if let Ok(md) = md
            && let Some(t) = md.topics().first()
            && t.error().is_none()
            && !t.partitions().is_empty()
        {
            break t.partitions().iter().map(|p| p.id()).collect();
        }
        if Instant::now() > deadline {
            return Err(Error::new(
                ErrorKind::Destination,
                format!("topic {topic} has no partitions"),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| state_error(format!("cannot read {topic}"), e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| state_error(format!("cannot read {topic}"), e))?;
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut out = Vec::new();
    while at_end.len() < partitions.len() {
        if Instant::now() > deadline {
            return Err(Error::new(
                ErrorKind::Destination,
                format!(
                    "reading {topic} did not finish within {} s",
                    READ_TIMEOUT.as_secs()
                ),
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                out.push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec)));
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, topic, "waiting for a state topic");
            }
            None => {}
        }
    }
    let positions = partitions
        .iter()
        .map(|p| {
            (
                *p,
                next.get(p)
                    .map_or(Offset::Beginning, |o| Offset::Offset(*o)),
            )
        })
        .collect();
    Ok((out, positions))
}

/// A restart request from the config topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    /// The connector (and with `include_tasks` its tasks; with `only_failed`, the failed).
    Connector {
        /// Only what failed.
        only_failed: bool,
        /// The tasks too.
        include_tasks: bool,
    },
    /// One task.
    Task(usize),
}

/// One config-topic record, understood.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConfigChange {
    /// A connector's config (`None`: deleted).
    Config(String, Option<BTreeMap<String, String>>),
    /// A connector's target state (`None`: removed with the connector).
    Target(String, Option<TargetState>),
    /// A restart request.
    Restart(String, Restart),
}

impl ConfigChange {
    /// Parses a record; `None` for keys augur does not use (Kafka Connect's `task-…` and
    /// `commit-…` records: task configs are derived from the connector config here).
    pub(crate) fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Option<ConfigChange> {
        let key = std::str::from_utf8(key?).ok()?;
        let value: Option<Value> = value.and_then(|v| serde_json::from_slice(v).ok());
        if let Some(name) = key.strip_prefix("connector-") {
            let config = value
                .as_ref()
                .and_then(|v| v.get("properties"))
                .and_then(Value::as_object)
                .map(|props| {
                    props
                        .iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect()
                });
            return Some(ConfigChange::Config(name.to_string(), config));
        }
        if let Some(name) = key.strip_prefix("target-state-") {
            let target = value.as_ref().and_then(TargetState::parse);
            return Some(ConfigChange::Target(name.to_string(), target));
        }
        let flag = |k: &str| {
            value
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        if let Some(name) = key.strip_prefix("restart-connector-") {
            let restart = Restart::Connector {
                only_failed: flag("only-failed"),
                include_tasks: flag("include-tasks"),
            };
            return Some(ConfigChange::Restart(name.to_string(), restart));
        }
        let rest = key.strip_prefix("restart-task-")?;
        let (name, task) = rest.rsplit_once('-')?;
        let task = task.parse().ok()?;
        Some(ConfigChange::Restart(name.to_string(), Restart::Task(task)))
    }
}

/// Replays config records: the last record per key wins, tombstones delete; restart requests
/// are history and are skipped.
fn restore_configs(records: &[RawRecord]) -> BTreeMap<String, StoredConnector> {
    let mut configs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut targets: BTreeMap<String, TargetState> = BTreeMap::new();
    for (key, value) in records {
        match ConfigChange::parse(key.as_deref(), value.as_deref()) {
            Some(ConfigChange::Config(name, Some(config))) => {
                configs.insert(name, config);
            }
            Some(ConfigChange::Config(name, None)) => {
                configs.remove(&name);
            }
            Some(ConfigChange::Target(name, Some(t))) => {
                targets.insert(name, t);
            }
            Some(ConfigChange::Target(name, None)) => {
                targets.remove(&name);
            }
            Some(ConfigChange::Restart(..)) | None => {}
        }
    }
    configs
        .into_iter()
        .map(|(name, config)| {
            let target = targets.get(&name).copied().unwrap_or(TargetState::Started);
            (name, StoredConnector { config, target })
        })
        .collect()
}

/// Replays status records: the last `status-…` record per key wins, tombstones delete.
fn restore_statuses(records: &[RawRecord]) -> BTreeMap<String, StatusRecord> {
    let mut out = BTreeMap::new();
    for (key, value) in records {
        let Some(key) = key.as_deref().and_then(|k| std::str::from_utf8(k).ok()) else {
            continue;
        };
        if !key.starts_with("status-") {
            continue;
        }
        match value.as_deref().and_then(StatusRecord::parse) {
            Some(r) => {
                out.insert(key.to_string(), r);
            }
            None => {
                out.remove(key);
            }
        }
    }
    out
}

/// Replays offset records: the last record per `[connector, partition]` wins.
fn restore_offsets(records: &[RawRecord]) -> OffsetMap {
    let mut out = OffsetMap::new();
    for (key, value) in records {
        let Some(key) = key
            .as_deref()
            .and_then(|k| serde_json::from_slice::<Value>(k).ok())
        else {
            continue;
        };
        let (Some(connector), Some(partition)) = (key.get(0).and_then(Value::as_str), key.get(1))
        else {
            continue;
        };
        let entry = out.entry(connector.to_string()).or_default();
        match value
            .as_deref()
            .and_then(|v| serde_json::from_slice::<Value>(v).ok())
        {
            Some(offset) if offset.is_object() => {
                entry.insert(partition.to_string(), (partition.clone(), offset));
            }
            _ => {
                entry.remove(&partition.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(t: TargetState) -> Value {
        serde_json::to_value(t.record()).unwrap()
    }

    fn rec(k: &str, v: Option<Value>) -> RawRecord {
        (
            Some(k.as_bytes().to_vec()),
            v.map(|v| v.to_string().into_bytes()),
        )
    }

    #[test]
    fn configs_replay_last_write_wins_and_tombstones() {
        let records = vec![
            rec("connector-a", Some(json!({"properties": {"x": "1"}}))),
            rec("connector-b", Some(json!({"properties": {"y": "1"}}))),
            rec("target-state-a", Some(record(TargetState::Paused))),
            rec("connector-a", Some(json!({"properties": {"x": "2"}}))),
            rec("connector-b", None),
            rec("target-state-c", Some(record(TargetState::Stopped))),
            rec("connector-c", Some(json!({"properties": {}}))),
        ];
        let c = restore_configs(&records);
        assert_eq!(c.len(), 2);
        assert_eq!(c["a"].config["x"], "2");
        assert_eq!(c["a"].target, TargetState::Paused);
        assert_eq!(c["c"].target, TargetState::Stopped);
    }

    #[test]
    fn restart_requests_parse_as_kafka_connect_writes_them_and_are_not_replayed() {
        let parse = |k: &str, v: Option<Value>| {
            let bytes = v.map(|v| v.to_string().into_bytes());
            ConfigChange::parse(Some(k.as_bytes()), bytes.as_deref())
        };
        assert_eq!(
            parse(
                "restart-connector-my-conn",
                Some(json!({"only-failed": true, "include-tasks": false}))
            ),
            Some(ConfigChange::Restart(
                "my-conn".into(),
                Restart::Connector {
                    only_failed: true,
                    include_tasks: false
                }
            ))
        );
        // Missing flags are false; a connector name may hold dashes.
        assert_eq!(
            parse("restart-task-a-b-c-12", Some(json!({"task": 12}))),
            Some(ConfigChange::Restart("a-b-c".into(), Restart::Task(12)))
        );
        assert_eq!(parse("restart-task-nonumber", None), None);
        assert_eq!(parse("task-x-0", Some(json!({"properties": {}}))), None);
        assert_eq!(parse("commit-x", Some(json!({"tasks": 1}))), None);
        assert_eq!(
            parse("connector-x", Some(json!("not an object"))),
            Some(ConfigChange::Config("x".into(), None))
        );
        assert_eq!(ConfigChange::parse(Some(&[0xff, 0xfe]), None), None);
        // A restart in the topic's history does nothing at startup.
        let records = vec![
            rec("connector-a", Some(json!({"properties": {"x": "1"}}))),
            rec("restart-connector-a", Some(json!({"include-tasks": true}))),
        ];
        assert_eq!(restore_configs(&records).len(), 1);
    }

    #[test]
    fn status_records_parse_and_replay() {
        let ok = json!({"state": "RUNNING", "trace": null, "worker_id": "w:1", "generation": 3});
        let r = StatusRecord::parse(ok.to_string().as_bytes()).unwrap();
        assert_eq!(
            (r.state, r.worker_id.as_str(), r.generation),
            (State::Running, "w:1", 3)
        );
        for bad in [
            json!({"state": "DANCING", "worker_id": "w"}),
            json!({"state": "RUNNING"}),
            json!([1]),
        ] {
            assert!(
                StatusRecord::parse(bad.to_string().as_bytes()).is_none(),
                "{bad}"
            );
        }
        assert!(StatusRecord::parse(b"\xff").is_none());
        let records = vec![
            rec("status-task-a-0", Some(ok.clone())),
            rec("status-connector-a", Some(ok.clone())),
            rec("status-connector-a", None),
            rec("topic-t-connector-a", Some(json!({"topic": {}}))),
        ];
        let m = restore_statuses(&records);
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["status-task-a-0"]);
    }

    #[test]
    fn offsets_replay_by_connector_and_partition() {
        let k = |c: &str| json!([c, {"server": "s"}]).to_string();
        let records = vec![
            rec(&k("a"), Some(json!({"lsn": 1}))),
            rec(&k("a"), Some(json!({"lsn": 2}))),
            rec(&k("b"), Some(json!({"lsn": 5}))),
            rec(&k("b"), None),
        ];
        let o = restore_offsets(&records);
        assert_eq!(o["a"].values().next().unwrap().1, json!({"lsn": 2}));
        assert!(o["b"].is_empty());
    }

    #[test]
    fn records_are_kafka_connects() {
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        assert_eq!(
            text(encode(&TargetState::Stopped.record()).unwrap()),
            r#"{"state":"PAUSED","state.v2":"STOPPED"}"#
        );
        let config = crate::test_props(&[("b", "2"), ("a", "1")]);
        assert_eq!(
            text(
                encode(&ConnectorConfigRecord {
                    properties: &config
                })
                .unwrap()
            ),
            r#"{"properties":{"a":"1","b":"2"}}"#
        );
        let status = StatusRecord {
            state: State::Running,
            trace: None,
            worker_id: "h:8083".into(),
            generation: 3,
        };
        assert_eq!(
            text(encode(&status).unwrap()),
            r#"{"state":"RUNNING","trace":null,"worker_id":"h:8083","generation":3}"#
        );
    }

    #[test]
    fn target_states_read_both_versions() {
        assert_eq!(
            TargetState::parse(&json!({"state": "PAUSED"})),
            Some(TargetState::Paused)
        );
        assert_eq!(
            TargetState::parse(&record(TargetState::Stopped)),
            Some(TargetState::Stopped)
        );
        assert_eq!(
            TargetState::from_initial_state("running"),
            Some(TargetState::Started)
        );
        assert_eq!(TargetState::from_initial_state("x"), None);
    }
}
