//! `augur run` with `kafka.bootstrap` set: the same pipeline with its stages joined by Kafka
//! topics instead of in-process queues — capture (flattened with ExtractNewRecordState) →
//! `augur.<schema>.<table>` → enrichment → `<output table>` topics → JDBC sink (upsert on the
//! record key) — each stage a consumer group, so more processes scale it out; the capture
//! runs in one of them (the slot admits one stream) while the others stand by, its offsets in
//! a Kafka topic so that any of them can take over. Delivery is at-least-once with idempotent
//! upserts, as on any Kafka path.

use std::sync::Arc;

use augur_core::offset::OffsetStore;
use augur_core::shutdown::Shutdown;
use augur_core::{Error, ErrorKind};
use augur_debezium::unwrap::UnwrapConfig;
use augur_kafka::consumer::ConsumerSettings;
use augur_kafka::producer::{Producer, ProducerSettings};
use augur_kafka::security::ClientSettings;
use augur_postgres::sink::config::PkMode;

use super::config::{OutputMode, RunConfig};
use crate::capture::destination::Destination;
use crate::enrich::EnrichConfig;
use crate::pipeline::kafka_offsets::TopicOffsets;
use crate::sink::SinkConnectorConfig;
use crate::stages::Stages;

/// Escapes a topic name for a librdkafka regex subscription.
fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// The enrichment stage's settings and the pattern of the topics it reads: capture topics
/// are `<prefix>.<schema>.<table>`; the dead-letter topic (`<prefix>.dead_letter`) must not
/// feed the stage that writes it.
fn enrich_stage(format: &str, prefix: &str) -> (EnrichConfig, String) {
    let captured = format!("^{}\\.[^.]+\\.[^.]+$", regex_escape(prefix));
    let mut enrich = EnrichConfig::new(vec![captured.clone()]);
    enrich.output_topic = format.replace("${schema}", "public");
    enrich.dlq_topic = format!("{prefix}.dead_letter");
    enrich.group_id = "augur-run-enrich".into();
    enrich.name = "augur-run-enrich".into();
    enrich.keep_unpriced = true;
    (enrich, captured)
}

/// The JDBC-sink stage: every predicted topic into the table of its name, keyed by the
/// record key, truncates followed.
fn sink_stage(cfg: &RunConfig, output_topic: &str) -> SinkConnectorConfig {
    let table_pattern = output_topic
        .split("${table}")
        .map(regex_escape)
        .collect::<Vec<_>>()
        .join("[^.]+");
    let mut sink_cfg = cfg.sink.clone();
    sink_cfg.pk_mode = PkMode::RecordKey;
    sink_cfg.pk_fields = Vec::new();
    sink_cfg.table_format = "${topic}".into();
    sink_cfg.truncate_enabled = true;
    SinkConnectorConfig {
        name: "augur-run-sink".into(),
        topics: vec![format!("^{table_pattern}$")],
        sink: sink_cfg,
        tolerate_errors: false,
        dlq_topic: None,
    }
}

/// Where the enrichment stage reads stored rows: the sink's table, once the sink group caught up.
fn stored_rows(
    sink: &augur_postgres::sink::config::SinkConfig,
    bootstrap: &str,
    client: &ClientSettings,
) -> crate::stored::StoredSettings {
    crate::stored::StoredSettings {
        sink: sink.clone(),
        group: consumer_settings(bootstrap, "augur-run-sink", Vec::new(), client),
        placeholder: sink
            .unavailable_placeholder
            .clone()
            .unwrap_or_else(|| "__debezium_unavailable_value".into()),
    }
}

/// The stages' producer: LZ4-compressed batches (records with schemas repeat themselves, and
/// the broker then moves a fraction of the bytes: 1.6× the rows/s here), unless the Kafka
/// client settings say otherwise.
fn producer_settings(bootstrap: &str, client: &ClientSettings) -> ProducerSettings {
    let mut p = ProducerSettings::new(bootstrap);
    p.overrides = vec![("compression.type".into(), "lz4".into())];
    p.overrides.extend(client.for_producer());
    p
}

fn consumer_settings(
    bootstrap: &str,
    group: &str,
    topics: Vec<String>,
    client: &ClientSettings,
) -> ConsumerSettings {
    let mut c = ConsumerSettings::new(bootstrap, group, topics);
    c.overrides = client.for_consumer();
    c
}

/// Runs the three stages over the Kafka cluster at `bootstrap` until shutdown.
pub async fn run(
    cfg: RunConfig,
    bootstrap: String,
    offsets: Arc<dyn OffsetStore>,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let OutputMode::Table(format) = &cfg.output else {
        return Err(Error::new(
            ErrorKind::Config,
            "output.mode = \"column\" is not available over Kafka",
        )
        .with_hint("use output.mode = \"table\", or run without kafka.bootstrap"));
    };
    let prefix = cfg.capture.envelope.topic_prefix.clone();
    let predictor = cfg.model.predictor()?;

    let client = &cfg.kafka_client;
    let producer = Arc::new(Producer::new(producer_settings(&bootstrap, client))?);
    producer
        .healthcheck(std::time::Duration::from_secs(10))
        .await?;
    let mut capture = cfg.capture.clone();
    // Several processes may run this pipeline: one streams from the slot, the others stand by
    // and take over when it is released, resuming from the offsets it left in Kafka.
    capture.source.slot_standby = true;
    let offsets: Arc<dyn OffsetStore> = Arc::new(TopicOffsets::new(
        producer.clone(),
        client.for_consumer(),
        &format!("augur-run-{}", capture.source.slot_name),
        &prefix,
        offsets,
    ));
    capture.envelope.unwrap = Some(UnwrapConfig {
        keep_truncates: true,
        ..UnwrapConfig::default()
    });

    let (mut enrich, captured) = enrich_stage(format, &prefix);
    let sink = sink_stage(&cfg, &enrich.output_topic);
    // A change that leaves a TOASTed value out is priced with the value the sink stored.
    enrich.stored = Some(stored_rows(&sink.sink, &bootstrap, client));

    // The stages are Kafka consumers that would wait forever for a capture that failed:
    // they stop on the outer shutdown or when the capture fails.
    let (stop_stages, stages_shutdown) = augur_core::shutdown::channel();
    let stop = stop_stages.clone();
    let mut outer = shutdown.clone();
    let forward = tokio::spawn(async move {
        outer.wait().await;
        stop.trigger();
    });
    let mut stages = Stages::new();
    stages.spawn(
        "enrich",
        crate::enrich::run(
            enrich,
            predictor,
            consumer_settings(&bootstrap, "augur-run-enrich", vec![captured], client),
            producer_settings(&bootstrap, client),
            stages_shutdown.clone(),
        ),
    );
    let sink_topics = sink.topics.clone();
    stages.spawn(
        "sink",
        crate::sink::run(
            sink,
            consumer_settings(&bootstrap, "augur-run-sink", sink_topics, client),
            None,
            stages_shutdown,
        ),
    );
    tracing::info!(bootstrap = %bootstrap, "pipeline stages running over Kafka");
    let capture = crate::capture::run_with(
        capture,
        Destination::KafkaOnce(producer),
        offsets,
        shutdown.clone(),
    );
    let capture = async move {
        let result = capture.await;
        if result.is_err() {
            stop_stages.trigger();
        }
        result
    };
    let result = Box::pin(stages.run_source(capture)).await.map(|_| ());
    forward.abort();
    result
}
