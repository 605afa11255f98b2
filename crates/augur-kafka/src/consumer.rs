//! [`Consumer`]: a consumer-group member that hands out batches and commits offsets only when
//! told to — after the stage downstream has made the batch durable (at-least-once).

use std::collections::BTreeMap;
use std::time::Duration;

use augur_core::{Error, ErrorKind};
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

/// How to join a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `group.id`.
    pub group_id: String,
    /// Topics to subscribe to (a name starting with `^` is a regular expression).
    pub topics: Vec<String>,
    /// `client.id`.
    pub client_id: String,
    /// `session.timeout.ms` (short by default: a killed member's partitions move quickly).
    pub session_timeout_ms: u32,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u32,
    /// Extra librdkafka settings (`consumer.override.*` without the prefix).
    pub overrides: Vec<(String, String)>,
    /// Told of each topic this consumer first reads a record from.
    pub on_topic: Option<crate::TopicHook>,
}

impl ConsumerSettings {
    /// Defaults for `group` on `topics` at `bootstrap`.
    pub fn new(
        bootstrap: impl Into<String>,
        group: impl Into<String>,
        topics: Vec<String>,
    ) -> Self {
        ConsumerSettings {
            bootstrap_servers: bootstrap.into(),
            group_id: group.into(),
            topics,
            client_id: "augur".into(),
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 1000,
            overrides: Vec::new(),
            on_topic: None,
        }
    }
}

/// One record read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None`: tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl From<OwnedMessage> for Received {
    fn from(m: OwnedMessage) -> Self {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Received {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
        }
    }
}

/// A consumer-group member with manual commits.
pub struct Consumer {
    inner: StreamConsumer,
    settings: ConsumerSettings,
    /// Topics already reported to `settings.on_topic`.
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group", &self.settings.group_id)
            .field("topics", &self.settings.topics)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// Creates the consumer and subscribes (the group join happens in the background).
    pub fn new(settings: ConsumerSettings) -> Result<Consumer, Error> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &settings.bootstrap_servers)
            .set("group.id", &settings.group_id)
            .set("client.id", &settings.client_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                settings.session_timeout_ms.to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                settings.heartbeat_interval_ms.to_string(),
            )
            .set(
                "max.poll.interval.ms",
                (settings.session_timeout_ms.max(60_000)).to_string(),
            )
            .set("fetch.wait.max.ms", "10")
            // Bounded prefetch per partition (librdkafka's default is 64 MB).
            .set("queued.max.messages.kbytes", "8192")
            .set("allow.auto.create.topics", "true")
            // Notice topics created after subscribing (default: every 5 minutes).
            .set("topic.metadata.refresh.interval.ms", "2000")
            .set("log_level", "3");
        crate::security::apply(&mut c, &settings.overrides, false)?;
        let inner: StreamConsumer = c.create().map_err(|e| {
            Error::new(ErrorKind::Config, "invalid Kafka consumer settings").with_source(e)
        })?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        inner.subscribe(&topics).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot subscribe to {}", settings.topics.join(", ")),
            )
            .with_source(e)
        })?;
        Ok(Consumer {
            inner,
            settings,
            seen: Default::default(),
        })
    }

    /// Waits for the first record, then takes whatever else is already fetched and, with a
    /// `linger`, what arrives within it, up to `max` records. Consumption errors (a topic that
    /// does not exist yet, a broker that is briefly unreachable) are logged and waited out, as
    /// Kafka Connect does; librdkafka keeps reconnecting underneath.
    pub async fn recv_batch(&self, max: usize, linger: Duration) -> Result<Vec<Received>, Error> {
        let mut out = Vec::with_capacity(max.min(4096));
        let mut last_warning: Option<std::time::Instant> = None;
        while out.is_empty() {
            match self.inner.recv().await {
                Ok(m) => out.push(m.detach().into()),
                Err(e) => {
                    if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, topics = %self.settings.topics.join(","), "waiting for Kafka");
                        last_warning = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        // Whatever is already fetched joins the batch at once; only then, and only with a
        // linger, wait for more. So a quiet stream is answered without delay and a busy one
        // still forms big batches (the records pile up while the last batch is written).
        let deadline = tokio::time::Instant::now() + linger;
        while out.len() < max {
            match tokio::time::timeout(Duration::ZERO, self.inner.recv()).await {
                Ok(Ok(m)) => {
                    out.push(m.detach().into());
                    continue;
                }
                Ok(Err(_)) => break,
                Err(_) if linger.is_zero() => break,
                Err(_) => {}
            }
            match tokio::time::timeout_at(deadline, self.inner.recv()).await {
                Ok(Ok(m)) => out.push(m.detach().into()),
                Ok(Err(_)) | Err(_) => break,
            }
        }
        if let Some(hook) = &self.settings.on_topic {
            self.report_topics(hook, &out);
        }
        Ok(out)
    }

    /// Reports the batch's topics not reported before (one set lookup per run of records
    /// from one topic).
    fn report_topics(&self, hook: &crate::TopicHook, batch: &[Received]) {
        let mut last: Option<&str> = None;
        for r in batch {
            if last == Some(r.topic.as_str()) {
                continue;
            }
            last = Some(&r.topic);
            let new = self
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(r.topic.clone());
            if new {
                hook.seen(&r.topic);
            }
        }
    }

    /// Commits, for every partition in `batch`, the offset after its last record.
    pub fn commit(&self, batch: &[Received], sync: bool) -> Result<(), Error> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for r in batch {
            let e = next
                .entry((r.topic.as_str(), r.partition))
                .or_insert(r.offset + 1);
            *e = (*e).max(r.offset + 1);
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), o) in next {
            tpl.add_partition_offset(t, p, Offset::Offset(o))
                .map_err(|e| Error::new(ErrorKind::Internal, "bad offset").with_source(e))?;
        }
        let mode = if sync {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        self.inner.commit(&tpl, mode).map_err(|e| {
            Error::new(
                ErrorKind::Connection,
                "committing Kafka offsets failed (records will be replayed)",
            )
            .with_source(e)
        })
    }

    /// The partitions currently assigned to this member.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.inner
            .assignment()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The settings.
    pub fn settings(&self) -> &ConsumerSettings {
        &self.settings
    }
}

/// How far a consumer group has come on a topic, read without joining the group (offset
/// fetches and watermarks only), so another stage can wait for it.
pub struct GroupProgress {
    inner: rdkafka::consumer::BaseConsumer,
    group: String,
}

impl std::fmt::Debug for GroupProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupProgress")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl GroupProgress {
    /// Watches `settings.group_id` on the cluster `settings` names (its topics are unused).
    pub fn new(settings: &ConsumerSettings) -> Result<GroupProgress, Error> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &settings.bootstrap_servers)
            .set("group.id", &settings.group_id)
            .set("client.id", format!("{}-progress", settings.client_id))
            .set("enable.auto.commit", "false")
            .set("log_level", "3");
        crate::security::apply(&mut c, &settings.overrides, true)?;
        let inner = c.create().map_err(|e| {
            Error::new(ErrorKind::Config, "invalid Kafka consumer settings").with_source(e)
        })?;
        Ok(GroupProgress {
            inner,
            group: settings.group_id.clone(),
        })
    }

    /// Records of `topic` the group has not committed yet (summed over partitions; a
    /// partition it never committed counts from its low watermark). Blocking: call it off
    /// the async runtime.
    pub fn lag(&self, topic: &str, timeout: Duration) -> Result<i64, Error> {
        let lost = |what: &str, e: rdkafka::error::KafkaError| {
            Error::new(
                ErrorKind::Connection,
                format!("cannot read {what} of {topic}"),
            )
            .with_source(e)
        };
        let meta = self
            .inner
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| lost("the partitions", e))?;
        let partitions: Vec<i32> = meta
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Ok(0);
        }
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topic, *p);
        }
        let committed = self
            .inner
            .committed_offsets(tpl, timeout)
            .map_err(|e| lost("the committed offsets", e))?;
        let mut lag = 0;
        for p in partitions {
            let (low, high) = self
                .inner
                .fetch_watermarks(topic, p, timeout)
                .map_err(|e| lost("the watermarks", e))?;
            let done = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => low,
            };
            lag += (high - done).max(0);
        }
        Ok(lag)
    }
}

/// The value of header `name` on the last record of each partition of `topic` that has one
/// (a topic that does not exist has none). Reads without a group, with the security settings
/// among `overrides`. Blocking: call it off the async runtime.
pub fn last_headers(
    bootstrap: &str,
    overrides: &[(String, String)],
    topic: &str,
    name: &str,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, Error> {
    let records = last_records(bootstrap, overrides, topic, timeout)?;
    Ok(records
        .into_iter()
        .flat_map(|r| r.headers)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect())
}

/// The last record of each non-empty partition of `topic` (a topic that does not exist has
/// none). Reads without a group, with the security settings among `overrides`. Blocking: call
/// it off the async runtime.
pub fn last_records(
    bootstrap: &str,
    overrides: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Received>, Error> {
    use rdkafka::consumer::BaseConsumer;
    let lost = |what: &str, e: rdkafka::error::KafkaError| {
        Error::new(
            ErrorKind::Connection,
            format!("cannot read {what} of {topic}"),
        )
        .with_source(e)
    };
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("group.id", "augur-last-record")
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .set("log_level", "3");
    crate::security::apply(&mut c, overrides, true)?;
    let consumer: BaseConsumer = c.create().map_err(|e| {
        Error::new(ErrorKind::Config, "invalid Kafka consumer settings").with_source(e)
    })?;
    let meta = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| lost("the partitions", e))?;
    let partitions: Vec<i32> = meta
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut out = Vec::new();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(|e| lost("the watermarks", e))?;
        if high <= low {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(high - 1))
            .map_err(|e| lost("the last record", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| lost("the last record", e))?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("cannot read the last record of {topic}-{p} in time"),
                ));
            }
            match consumer.poll(left.min(Duration::from_millis(200))) {
                Some(Ok(m)) if m.partition() == p && m.offset() >= high - 1 => {
                    out.push(Received::from(m.detach()));
                    break;
                }
                Some(Err(e)) => return Err(lost("the last record", e)),
                _ => {}
            }
        }
    }
    Ok(out)
}
