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
        Box::pin(async move {
            // Read to the end first: the task may have run on another worker until now.
            self.store.refresh_offsets().await?;
            Ok(self
                .store
                .offset(&self.connector, &self.partition)
                .and_then(|v| v.as_object().map(SourceOffset::from_map)))
        })
    }

    fn save<'a>(&'a self, offset: &'a SourceOffset) -> OffsetFuture<'a, ()> {
        let map: serde_json::Map<String, Value> = offset.to_map().into_iter().collect();
        Box::pin(
            self.store
                .put_offset(&self.connector, &self.partition, Some(Value::Object(map))),
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

/// One partition of a sink's `PATCH /connectors/{name}/offsets`: the offset to commit, or
/// `None` to reset the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SinkOffsetChange {
    /// Topic.
    pub(crate) topic: String,
    /// Partition.
    pub(crate) partition: i32,
    /// The next offset to read, or `None` for "as if nothing was committed".
    pub(crate) offset: Option<i64>,
}

/// Kafka Connect's parsing of a sink's offsets (`SinkUtils.parseSinkConnectorOffsets`): each
/// partition `{"kafka_topic","kafka_partition"}`, each offset `null` or `{"kafka_offset"}`;
/// numbers may be given as strings. The error is the 400 message.
pub(crate) fn parse_sink_offsets(
    entries: &[(Option<Value>, Option<Value>)],
) -> Result<Vec<SinkOffsetChange>, String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out: Vec<SinkOffsetChange> = Vec::with_capacity(entries.len());
    for (partition, offset) in entries {
        let Some(p) = partition.as_ref().and_then(Value::as_object) else {
            return Err(
                "The partition for a sink connector offset cannot be null or missing".into(),
            );
        };
        let (Some(topic), Some(part)) = (p.get("kafka_topic"), p.get("kafka_partition")) else {
            return Err("The partition for a sink connector offset must contain the keys 'kafka_topic' and 'kafka_partition'".into());
        };
        let topic = match topic {
            Value::Null => {
                return Err("Kafka topic names must be valid strings and may not be null".into());
            }
            t => text(t),
        };
        if part.is_null() {
            return Err("Kafka partitions must be valid numbers and may not be null".into());
        }
        let partition: i32 = text(part).parse().map_err(|_| {
            format!("Failed to parse the following Kafka partition value in the provided offsets: '{}'. Partition values for sink connectors need to be integers.", text(part))
        })?;
        let offset = match offset.as_ref().filter(|o| !o.is_null()) {
            None => None,
            Some(o) => {
                let Some(v) = o.as_object().and_then(|m| m.get("kafka_offset")) else {
                    return Err("The offset for a sink connector should either be null or contain the key 'kafka_offset'".into());
                };
                let n: i64 = text(v).parse().map_err(|_| {
                    format!("Failed to parse the following Kafka offset value in the provided offsets: '{}'. Offset values for sink connectors need to be integers.", text(v))
                })?;
                Some(n)
            }
        };
        if partition < 0 || offset.is_some_and(|o| o < 0) {
            return Err(format!(
                "Partitions and offsets must not be negative (topic {topic}, partition {partition})"
            ));
        }
        out.retain(|c| (c.topic.as_str(), c.partition) != (topic.as_str(), partition));
        out.push(SinkOffsetChange {
            topic,
            partition,
            offset,
        });
    }
    Ok(out)
}

/// Checks a source (capture) offset the REST API is asked to store: Debezium's fields, when
/// present, with the types the capture reads. The error is the 400 message.
pub(crate) fn check_source_offset(offset: &Value) -> Result<(), String> {
    let Some(m) = offset.as_object() else {
        return Err(format!(
            "A source offset must be a JSON object or null, not {offset}"
        ));
    };
    for key in ["lsn", "txId", "ts_usec", "lsn_commit", "lsn_proc"] {
        let Some(v) = m.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let ok = v.as_u64().is_some() || v.as_str().is_some_and(|s| s.parse::<u64>().is_ok());
        if !ok {
            return Err(format!(
                "The source offset's '{key}' must be a non-negative integer, not {v}"
            ));
        }
    }
    for key in ["snapshot_completed", "snapshot", "last_snapshot_record"] {
        if let Some(v) = m.get(key).filter(|v| !v.is_null() && !v.is_boolean()) {
            if key == "snapshot" && v.is_string() {
                continue;
            }
            return Err(format!(
                "The source offset's '{key}' must be a boolean, not {v}"
            ));
        }
    }
    Ok(())
}

/// Commits `changes` for consumer group `group` in one request, without joining it; a reset
/// partition gets the offset a consumer without a committed one would start from (its
/// earliest, or with `latest` its end: this broker has no OffsetDelete). Refused by the broker
/// while the group has members.
pub(crate) async fn alter_group_offsets(
    worker: &WorkerConfig,
    group: &str,
    changes: Vec<SinkOffsetChange>,
    reset_to_latest: bool,
) -> Result<(), Error> {
    let (worker, group) = (worker.clone(), group.to_string());
    tokio::task::spawn_blocking(move || {
        alter_group_offsets_blocking(&worker, &group, &changes, reset_to_latest)
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Internal, "offset change task failed").with_source(e))?
}

fn alter_group_offsets_blocking(
    worker: &WorkerConfig,
    group: &str,
    changes: &[SinkOffsetChange],
    reset_to_latest: bool,
) -> Result<(), Error> {
    use rdkafka::consumer::CommitMode;
    let kafka = |what: String, e: rdkafka::error::KafkaError| {
        Error::new(ErrorKind::Connection, what).with_source(e)
    };
    let consumer: BaseConsumer = worker
        .kafka_client()?
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| kafka("invalid Kafka settings".into(), e))?;
    let mut tpl = TopicPartitionList::new();
    for c in changes {
        let offset = match c.offset {
            Some(o) => o,
            None => {
                let (low, high) = consumer
                    .fetch_watermarks(&c.topic, c.partition, GROUP_TIMEOUT)
                    .map_err(|e| {
                        kafka(
                            format!("cannot read {}-{}'s offsets", c.topic, c.partition),
                            e,
                        )
                    })?;
                if reset_to_latest { high } else { low }
            }
        };
        tpl.add_partition_offset(&c.topic, c.partition, Offset::Offset(offset))
            .map_err(|e| kafka("invalid offset".into(), e))?;
    }
    consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
        kafka(
            format!("the broker refused the offsets of group {group} (does it still have active members?)"),
            e,
        )
    })
}

/// Deletes consumer group `group` and with it every committed offset (Kafka Connect's reset of
/// a sink connector); a group that does not exist is already reset.
pub(crate) async fn delete_group(worker: &WorkerConfig, group: &str) -> Result<(), Error> {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::error::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = worker
        .kafka_client()?
        .create()
        .map_err(|e| Error::new(ErrorKind::Connection, "invalid Kafka settings").with_source(e))?;
    let opts = AdminOptions::new().request_timeout(Some(GROUP_TIMEOUT));
    let results = admin.delete_groups(&[group], &opts).await.map_err(|e| {
        Error::new(
            ErrorKind::Connection,
            format!("cannot delete group {group}"),
        )
        .with_source(e)
    })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::GroupIdNotFound)) => {}
            Err((_, RDKafkaErrorCode::NonEmptyGroup)) => {
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("group {group} still has active members"),
                ));
            }
            Err((_, code)) => {
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("the broker did not delete group {group}: {code}"),
                ));
            }
        }
    }
    Ok(())
}
