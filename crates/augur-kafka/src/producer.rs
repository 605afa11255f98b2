//! [`Producer`]: an idempotent Kafka producer (`enable.idempotence=true`, `acks=all`) that
//! partitions keys as the Java client does (murmur2), creates missing topics, and hands back a
//! future per record that resolves once the broker has the record.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use augur_core::record::Record;
use augur_core::{Error, ErrorKind};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};

use crate::security::LastError;

/// How to reach and write to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSettings {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `client.id`.
    pub client_id: String,
    /// Partitions for topics augur creates (`topic.creation.default.partitions`).
    pub topic_partitions: i32,
    /// Replication factor for topics augur creates.
    pub topic_replication: i32,
    /// Extra librdkafka settings (`producer.override.*` without the prefix).
    pub overrides: Vec<(String, String)>,
    /// Told of each topic this producer first writes to (through [`Producer::ensure_topic`]).
    pub on_topic: Option<crate::TopicHook>,
}

impl ProducerSettings {
    /// Defaults for `bootstrap`.
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ProducerSettings {
            bootstrap_servers: bootstrap.into(),
            client_id: "augur".into(),
            topic_partitions: 1,
            topic_replication: 1,
            overrides: Vec::new(),
            on_topic: None,
        }
    }

    fn client_config(&self) -> Result<ClientConfig, Error> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("partitioner", "murmur2_random")
            .set("message.max.bytes", "16777216")
            .set("queue.buffering.max.messages", "200000")
            // Bounded: a slow broker pushes back instead of growing memory.
            .set("queue.buffering.max.kbytes", "32768")
            .set("socket.keepalive.enable", "true")
            .set("log_level", "3");
        crate::security::apply(&mut c, &self.overrides, false)?;
        Ok(c)
    }
}

/// An idempotent producer.
pub struct Producer {
    inner: FutureProducer<LastError>,
    last_error: LastError,
    admin: AdminClient<DefaultClientContext>,
    settings: ProducerSettings,
    known_topics: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("bootstrap", &self.settings.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

fn kafka_error(what: &str, e: KafkaError) -> Error {
    Error::new(ErrorKind::Destination, what.to_string()).with_source(e)
}

impl Producer {
    /// The settings it was made with.
    pub fn settings(&self) -> &ProducerSettings {
        &self.settings
    }

    /// Creates the producer (no connection is made until first use; see
    /// [`healthcheck`](Self::healthcheck)).
    pub fn new(settings: ProducerSettings) -> Result<Self, Error> {
        let cfg = settings.client_config()?;
        let last_error = LastError::default();
        let inner: FutureProducer<LastError> =
            cfg.create_with_context(last_error.clone()).map_err(|e| {
                Error::new(ErrorKind::Config, "invalid Kafka producer settings").with_source(e)
            })?;
        let mut admin = ClientConfig::new();
        admin
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("log_level", "3");
        crate::security::apply(&mut admin, &settings.overrides, true)?;
        let admin: AdminClient<DefaultClientContext> = admin.create().map_err(|e| {
            Error::new(ErrorKind::Config, "invalid Kafka admin settings").with_source(e)
        })?;
        Ok(Producer {
            inner,
            last_error,
            admin,
            settings,
            known_topics: Mutex::new(HashSet::new()),
        })
    }

    /// Checks that a broker answers within `timeout`.
    pub async fn healthcheck(&self, timeout: Duration) -> Result<(), Error> {
        let producer = self.inner.clone();
        let bootstrap = self.settings.bootstrap_servers.clone();
        // The metadata call blocks; run it off the async runtime.
        let result = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|m| m.brokers().len())
        })
        .await;
        match result {
            Ok(Ok(brokers)) if brokers > 0 => Ok(()),
            Ok(Ok(_)) | Ok(Err(_)) | Err(_) => {
                let why = match self.last_error.last() {
                    Some(reason) => format!(": {reason}"),
                    None => String::new(),
                };
                Err(Error::new(
                    ErrorKind::Connection,
                    format!(
                        "cannot reach a Kafka broker at {bootstrap} within {} s{why}",
                        timeout.as_secs()
                    ),
                )
                .with_hint(
                    "start the broker, or fix the bootstrap servers and the TLS/SASL settings",
                ))
            }
        }
    }

    /// Creates `topic` if the broker does not have it yet.
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), Error> {
        self.ensure_topic_with(topic, &[]).await
    }

    /// Creates `topic` with the topic `configs` (e.g. `cleanup.policy=compact`) if the broker
    /// does not have it yet; an existing topic is left as it is.
    pub async fn ensure_topic_with(
        &self,
        topic: &str,
        configs: &[(&str, &str)],
    ) -> Result<(), Error> {
        if self
            .known_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(topic)
        {
            return Ok(());
        }
        let mut new = NewTopic::new(
            topic,
            self.settings.topic_partitions,
            TopicReplication::Fixed(self.settings.topic_replication),
        );
        for (k, v) in configs {
            new = new.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .create_topics(&[new], &opts)
            .await
            .map_err(|e| kafka_error(&format!("cannot create topic {topic}"), e))?;
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
        self.known_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(topic.to_string());
        if let Some(hook) = &self.settings.on_topic {
            hook.seen(topic);
        }
        Ok(())
    }

    /// Enqueues `rec`, waiting while librdkafka's queue is full; the returned future resolves
    /// when the broker acknowledged the record.
    pub async fn send(&self, rec: &Record) -> Result<DeliveryFuture, Error> {
        let mut headers = None;
        if !rec.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(rec.headers.len());
            for (k, v) in &rec.headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            headers = Some(h);
        }
        loop {
            let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&rec.topic);
            if let Some(k) = &rec.key {
                fr = fr.key(k.as_slice());
            }
            if let Some(v) = &rec.value {
                fr = fr.payload(v.as_slice());
            }
            if let Some(h) = &headers {
                fr = fr.headers(h.clone());
            }
            match self.inner.send_result(fr) {
                Ok(f) => return Ok(f),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => return Err(kafka_error("cannot enqueue a record for Kafka", e)),
            }
        }
    }

    /// Waits for one delivery.
    pub async fn delivered(f: DeliveryFuture) -> Result<(), Error> {
        match f.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(kafka_error("Kafka did not accept a record", e)),
            Err(_) => Err(Error::new(
                ErrorKind::Destination,
                "the Kafka producer stopped before a delivery report",
            )),
        }
    }

    /// Flushes everything queued, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        self.inner
            .flush(timeout)
            .map_err(|e| kafka_error("flushing the Kafka producer", e))
    }
}
