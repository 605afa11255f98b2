//! The capture's offsets for `augur run` over Kafka, kept in a compacted Kafka topic as Kafka
//! Connect keeps a source connector's in `connect-offsets`: whichever `augur run` process owns
//! the slot next resumes from the last owner's saves, wherever it ran.

use std::sync::Arc;
use std::time::Duration;

use augur_core::offset::{OffsetFuture, OffsetStore, SourceOffset};
use augur_core::record::Record;
use augur_core::{Error, ErrorKind};
use augur_kafka::producer::Producer;

/// How long reading the topic's last record may take.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The offsets topic of the pipeline whose capture topics start with `prefix`. (Capture topics
/// have three parts, `<prefix>.<schema>.<table>`, so this name never feeds the enrichment stage.)
pub(crate) fn offsets_topic(prefix: &str) -> String {
    format!("{prefix}.offsets")
}

/// Offsets in the last record of a one-partition compacted topic; the offsets file is read
/// when the topic holds none yet (a pipeline that ran with the file before) and is written
/// after each save (what `augur doctor` reads).
pub(crate) struct TopicOffsets {
    producer: Arc<Producer>,
    bootstrap: String,
    /// The consumer-side client settings (security) for reading the topic back.
    overrides: Vec<(String, String)>,
    topic: String,
    /// Kafka Connect's key: `["<name>",{"server":"<prefix>"}]`.
    key: Vec<u8>,
    file: Arc<dyn OffsetStore>,
}

impl std::fmt::Debug for TopicOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicOffsets")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl TopicOffsets {
    /// The store of the capture named `name` with topic prefix `prefix`.
    pub(crate) fn new(
        producer: Arc<Producer>,
        consumer_overrides: Vec<(String, String)>,
        name: &str,
        prefix: &str,
        file: Arc<dyn OffsetStore>,
    ) -> TopicOffsets {
        let key = serde_json::json!([name, { "server": prefix }]).to_string();
        TopicOffsets {
            bootstrap: producer.settings().bootstrap_servers.clone(),
            producer,
            overrides: consumer_overrides,
            topic: offsets_topic(prefix),
            key: key.into_bytes(),
            file,
        }
    }

    async fn read_topic(&self) -> Result<Option<SourceOffset>, Error> {
        let (bootstrap, overrides, topic) = (
            self.bootstrap.clone(),
            self.overrides.clone(),
            self.topic.clone(),
        );
        let last = tokio::task::spawn_blocking(move || {
            augur_kafka::consumer::last_records(&bootstrap, &overrides, &topic, READ_TIMEOUT)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "offset read task failed").with_source(e))??;
        let Some(value) = last.into_iter().filter_map(|r| r.value).next_back() else {
            return Ok(None);
        };
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&value)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("the last record of {} is not an offsets object", self.topic),
                )
                .with_source(e)
            })?;
        Ok(Some(SourceOffset::from_map(&map)))
    }
}

impl OffsetStore for TopicOffsets {
    fn load(&self) -> OffsetFuture<'_, Option<SourceOffset>> {
        Box::pin(async move {
            match self.read_topic().await? {
                Some(o) => Ok(Some(o)),
                None => self.file.load().await,
            }
        })
    }

    fn save<'a>(&'a self, offset: &'a SourceOffset) -> OffsetFuture<'a, ()> {
        Box::pin(async move {
            self.producer
                .ensure_topic_with(&self.topic, &[("cleanup.policy", "compact")])
                .await?;
            let map: serde_json::Map<String, serde_json::Value> =
                offset.to_map().into_iter().collect();
            let record = Record {
                topic: self.topic.clone(),
                key: Some(self.key.clone()),
                value: Some(serde_json::Value::Object(map).to_string().into_bytes()),
                headers: Vec::new(),
            };
            Producer::delivered(self.producer.send(&record).await?).await?;
            self.file.save(offset).await
        })
    }
}
