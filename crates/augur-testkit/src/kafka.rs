//! Reading topics in tests: every record of a topic from the beginning, without a consumer
//! group, until a count is reached or a deadline passes.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
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
    /// The record's timestamp (ms since the epoch), when it has one.
    pub timestamp: Option<i64>,
}

impl ReadRecord {
    /// The key as text.
    pub fn key_str(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }

    /// The value as text.
    pub fn value_str(&self) -> Option<String> {
        self.value
            .as_ref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Reads `topic` from the start of every partition until `want` records arrived or `timeout`
/// passed; returns what arrived (by partition, then offset).
pub fn read_topic(bootstrap: &str, topic: &str, want: usize, timeout: Duration) -> Vec<ReadRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "augur-test-reader")
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .expect("consumer");
    let deadline = Instant::now() + timeout;
    // Wait for the topic's partitions to be known.
    let partitions = loop {
        if let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(2))
            && let Some(t) = md.topics().first()
            && t.error().is_none()
            && !t.partitions().is_empty()
        {
            break t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>();
        }
        if Instant::now() > deadline {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    while out.len() < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
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
            out.push(ReadRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers,
                timestamp: m.timestamp().to_millis(),
            });
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// Produces one record to `topic` (creating it with one partition if needed) and waits for the
/// broker's acknowledgement.
pub fn produce(bootstrap: &str, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .expect("producer");
    let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    if let Some(v) = value {
        rec = rec.payload(v);
    }
    producer.send(rec).map_err(|(e, _)| e).expect("enqueue");
    producer.flush(Duration::from_secs(10)).expect("delivered");
}

/// Produces `values` (without keys) to `topic` in order, then waits until the broker
/// acknowledged all of them.
pub fn produce_many(bootstrap: &str, topic: &str, values: impl IntoIterator<Item = Vec<u8>>) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("log_level", "3")
        .create()
        .expect("producer");
    for v in values {
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(&v[..]);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    producer.poll(Duration::from_millis(50));
                    rec = r;
                }
                Err((e, _)) => panic!("enqueue: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("delivered");
}

/// Prints a consumer group's state and members (diagnostics).
pub fn describe_group(bootstrap: &str, group: &str) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    match c.fetch_group_list(Some(group), Duration::from_secs(5)) {
        Ok(list) => {
            for g in list.groups() {
                eprintln!(
                    "group {} state {} protocol {}",
                    g.name(),
                    g.state(),
                    g.protocol()
                );
                for m in g.members() {
                    eprintln!(
                        "  member {} client {} host {} assignment {:?}",
                        m.id(),
                        m.client_id(),
                        m.client_host(),
                        m.assignment()
                    );
                }
            }
        }
        Err(e) => eprintln!("group {group}: {e}"),
    }
}

/// Creates `topic` with `partitions` partitions (an existing topic is left alone).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .expect("admin");
    let rt = tokio_rt();
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let _ = rt.block_on(admin.create_topics(&[new], &AdminOptions::new()));
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
