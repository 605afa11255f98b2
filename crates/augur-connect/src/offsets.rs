//! Connector offsets, as `GET /connectors/{name}/offsets` reports them and as tasks resume
//! from them:
//!
//! - Source (capture) offsets live in the worker's offsets topic under Debezium's partition
//!   `{"server":"<topic.prefix>"}`; [`TopicOffsetStore`] is the capture's
//!   [`OffsetStore`], each save durable (acknowledged by the broker) before it returns.
//! - Sink-side connectors (JDBC sinks, enrichment) are consumer groups `connect-<name>`: their
//!   offsets are the group's committed offsets, read with [`group_offsets`].

use std::sync::Arc;
use std::time::Duration;

use crate::config::WorkerConfig;
use augur_core::offset::{OffsetFuture, OffsetStore, SourceOffset};
use augur_core::{Error, ErrorKind};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::store::StateStore;

/// How long reading a group's committed offsets may take.
const GROUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Debezium's source partition for a PostgreSQL connector with `topic.prefix`.
pub fn source_partition(topic_prefix: &str) -> Value {
    json!({ "server": topic_prefix })
}

/// One capture connector's offsets in the worker's offsets topic.
#[derive(Debug)]
pub struct TopicOffsetStore {
    /// The worker's state topics.
    store: Arc<StateStore>,
    /// The connector's name (first element of the record key).
    connector: String,
    /// Its source partition (second element of the record key).
    partition: Value,
}

impl TopicOffsetStore {
    /// The store for `connector` with source `partition`.
    pub fn new(store: Arc<StateStore>, connector: impl Into<String>, partition: Value) -> Self {
        TopicOffsetStore {
            store,
            connector: connector.into(),
            partition,
        }
    }
}

impl OffsetStore for TopicOffsetStore {
    fn load(&self) -> OffsetFuture<'_, Option<SourceOffset>> {
        let o = self
            .store
            .offset(&self.connector, &self.partition)
            .and_then(|v| v.as_object().map(SourceOffset::from_map));
        Box::pin(std::future::ready(Ok(o)))
    }

    fn save<'a>(&'a self, offset: &'a SourceOffset) -> OffsetFuture<'a, ()> {
        let map: serde_json::Map<String, Value> = offset.to_map().into_iter().collect();
        Box::pin(
            self.store
                .put_offset(&self.connector, &self.partition, Value::Object(map)),
        )
    }
}

/// A group's committed offset for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset the group will read.
    pub offset: i64,
}

/// The committed offsets of consumer group `group` on `topics` (names, or regular expressions
/// starting with `^`), without joining the group.
pub async fn group_offsets(
    worker: &WorkerConfig,
    group: &str,
    topics: &[String],
) -> Result<Vec<GroupOffset>, Error> {
    let (worker, group, topics) = (worker.clone(), group.to_string(), topics.to_vec());
    tokio::task::spawn_blocking(move || group_offsets_blocking(&worker, &group, &topics))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "offset lookup task failed").with_source(e))?
}

fn group_offsets_blocking(
    worker: &WorkerConfig,
    group: &str,
    topics: &[String],
) -> Result<Vec<GroupOffset>, Error> {
    let kafka = |what: &str, e: rdkafka::error::KafkaError| {
        Error::new(ErrorKind::Connection, what.to_string()).with_source(e)
    };
    let consumer: BaseConsumer = worker
        .kafka_client()?
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| kafka("invalid Kafka settings", e))?;
    let md = consumer
        .fetch_metadata(None, GROUP_TIMEOUT)
        .map_err(|e| kafka("cannot read the cluster's topics", e))?;
    let patterns: Vec<regex_lite::Regex> = topics
        .iter()
        .filter(|t| t.starts_with('^'))
        .filter_map(|t| regex_lite::Regex::new(&format!("{t}$")).ok())
        .collect();
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        let wanted =
            topics.iter().any(|w| w == t.name()) || patterns.iter().any(|r| r.is_match(t.name()));
        if !wanted || t.error().is_some() {
            continue;
        }
        for p in t.partitions() {
            tpl.add_partition(t.name(), p.id());
        }
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = consumer
        .committed_offsets(tpl, GROUP_TIMEOUT)
        .map_err(|e| kafka("cannot read the group's committed offsets", e))?;
    let mut out: Vec<GroupOffset> = committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(GroupOffset {
                topic: e.topic().to_string(),
                partition: e.partition(),
                offset: o,
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(out)
}
