//! What a connector's tasks run. [`TaskPlan::build`] turns a connector config into typed
//! settings with the runtime's own parsers (the pure validation `config/validate` and
//! `POST /connectors` use too); [`TaskPlan::run`] runs one task of it until its shutdown fires:
//!
//! - capture: [`augur_runtime::capture::run_with`] to Kafka, offsets in the worker's offsets
//!   topic ([`TopicOffsetStore`]); always one task, as Debezium's PostgreSQL connector;
//! - JDBC sinks: [`augur_runtime::sink::run`], `tasks.max` members of group `connect-<name>`;
//! - enrichment: [`augur_runtime::enrich::run`], likewise, with the model loaded per task.

use std::collections::BTreeMap;
use std::sync::Arc;

use augur_core::shutdown::Shutdown;
use augur_core::{Error, ErrorKind};
use augur_runtime::TopicHook;
use augur_runtime::capture::config::{CaptureConfig, ConfigError, ConfigErrors};
use augur_runtime::capture::destination::{Destination, DestinationConfig};
use augur_runtime::enrich::{EnrichConfig, ModelSettings};
use augur_runtime::props::Props;
use augur_runtime::sink::SinkConnectorConfig;
use augur_runtime::{ConsumerSettings, ProducerSettings};
use serde_json::Value;

use crate::config::WorkerConfig;
use crate::offsets::{TopicOffsetStore, source_partition};
use crate::plugins::{Plugin, Validation};
use crate::store::StateStore;

/// The most tasks one connector may run.
pub const MAX_TASKS: usize = 64;

/// The typed settings of one connector's tasks.
#[derive(Debug)]
enum TaskKind {
    /// The PostgreSQL capture.
    Capture {
        /// Its config.
        cfg: Box<CaptureConfig>,
        /// Its Kafka producer.
        producer: ProducerSettings,
        /// Its source partition in the offsets topic.
        partition: Value,
    },
    /// A JDBC sink.
    Sink {
        /// Its config.
        cfg: Box<SinkConnectorConfig>,
        /// Its consumer (group `connect-<name>`); each task sets its own client id.
        consumer: ConsumerSettings,
        /// The dead-letter producer, when a dead-letter topic is set.
        dlq: Option<ProducerSettings>,
    },
    /// The enrichment stage.
    Enrich {
        /// Its config.
        cfg: Box<EnrichConfig>,
        /// Which model, and how its output is shaped.
        model: Box<ModelSettings>,
        /// Its consumer (group `connect-<name>`).
        consumer: ConsumerSettings,
        /// Its producer.
        producer: ProducerSettings,
    },
}

/// A connector's validated task settings.
#[derive(Debug)]
pub struct TaskPlan {
    /// The connector's name.
    name: String,
    /// Whether tasks report the topics they use (`topic.tracking.enable`).
    track_topics: bool,
    /// How many tasks run.
    tasks: usize,
    /// What they run.
    kind: TaskKind,
}

/// The `*.override.*` settings of `config` with `prefix` removed.
fn overrides(config: &BTreeMap<String, String>, prefix: &str) -> Vec<(String, String)> {
    config
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|o| (o.to_string(), v.clone())))
        .collect()
}

/// Kafka client settings among a connector's `producer.override.*` and
/// `consumer.override.*` keys that cannot be used, by key.
fn override_errors(config: &BTreeMap<String, String>) -> Vec<ConfigError> {
    ["producer.override.", "consumer.override."]
        .iter()
        .filter_map(|prefix| {
            let e = augur_runtime::security::translate(&overrides(config, prefix)).err()?;
            let key = format!("{prefix}{}", e.key);
            let message = format!("Invalid value for configuration {key}: {}", e.message);
            Some(ConfigError { key, message })
        })
        .collect()
}

/// Producer settings for connector `name`'s task: the worker's client settings (as Kafka
/// Connect's `producer.*` worker keys), then the connector's `producer.override.*`.
fn producer(
    worker: &WorkerConfig,
    name: &str,
    config: &BTreeMap<String, String>,
) -> ProducerSettings {
    let mut s = ProducerSettings::new(&worker.bootstrap_servers);
    s.client_id = format!("connector-producer-{name}-0");
    s.overrides = worker.client.for_producer();
    s.overrides.extend(overrides(config, "producer.override."));
    if let Some(p) = config
        .get("topic.creation.default.partitions")
        .and_then(|v| v.trim().parse().ok())
        .filter(|p: &i32| *p > 0)
    {
        s.topic_partitions = p;
    }
    s
}

/// Consumer settings for group `group` on `topics`.
fn consumer(
    worker: &WorkerConfig,
    group: &str,
    topics: Vec<String>,
    config: &BTreeMap<String, String>,
) -> ConsumerSettings {
    let mut s = ConsumerSettings::new(&worker.bootstrap_servers, group, topics);
    s.overrides = worker.client.for_consumer();
    s.overrides.extend(overrides(config, "consumer.override."));
    s
}

/// Kafka Connect's checks of the keys every connector has (`name`, `tasks.max`).
fn common_errors(config: &BTreeMap<String, String>) -> (usize, Vec<ConfigError>) {
    let mut errors = Vec::new();
    if config.get("name").is_none_or(|n| n.trim().is_empty()) {
        errors.push(ConfigError {
            key: "name".into(),
            message: "Missing required configuration \"name\" which has no default value.".into(),
        });
    }
    let tasks = match config.get("tasks.max").map(|v| v.trim()) {
        None | Some("") => 1,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => (n as usize).min(MAX_TASKS),
            Ok(_) => {
                errors.push(ConfigError {
                    key: "tasks.max".into(),
                    message: format!(
                        "Invalid value {v} for configuration tasks.max: Value must be at least 1"
                    ),
                });
                1
            }
            Err(_) => {
                errors.push(ConfigError {
                    key: "tasks.max".into(),
                    message: format!(
                        "Invalid value {v} for configuration tasks.max: Not a number of type INT"
                    ),
                });
                1
            }
        },
    };
    (tasks, errors)
}

impl TaskPlan {
    /// Validates `config` for `plugin` and builds the task settings (no I/O). Errors name
    /// their keys, in Debezium's or Kafka Connect's words.
    pub fn build(
        plugin: Plugin,
        raw: &BTreeMap<String, String>,
        worker: &WorkerConfig,
    ) -> Result<(TaskPlan, Vec<String>), Validation> {
        // Config providers (`${file:…}`, `${directory:…}`, `${env:…}`) resolve here, as
        // Kafka Connect's worker transforms a config before validating and starting it; a
        // message never quotes a resolved value.
        let config = &augur_runtime::providers::resolve(raw).map_err(|errors| Validation {
            errors,
            warnings: Vec::new(),
        })?;
        Self::build_resolved(plugin, config, worker).map_err(|mut v| {
            for e in &mut v.errors {
                e.message = augur_runtime::providers::hide(&e.message, raw, config);
            }
            v
        })
    }

    fn build_resolved(
        plugin: Plugin,
        config: &BTreeMap<String, String>,
        worker: &WorkerConfig,
    ) -> Result<(TaskPlan, Vec<String>), Validation> {
        let (tasks, mut errors) = common_errors(config);
        errors.extend(override_errors(config));
        let name = config.get("name").cloned().unwrap_or_default();
        // The runtime's parsers want the full class name; an alias was resolved already.
        let mut props = Props(config.clone());
        props.set("connector.class", plugin.class());
        let parsed: Result<(TaskKind, usize, Vec<String>), ConfigErrors> = match plugin {
            Plugin::Capture => CaptureConfig::from_props(&props).map(|(cfg, mut warnings)| {
                if config.contains_key("offset.storage.file.filename") {
                    warnings.push(
                        "offset.storage.file.filename is ignored: the worker keeps offsets in its offsets topic"
                            .into(),
                    );
                }
                if tasks > 1 {
                    warnings.push(format!(
                        "tasks.max={tasks}: the PostgreSQL capture runs one task"
                    ));
                }
                let partition = source_partition(&cfg.envelope.topic_prefix);
                let kind = TaskKind::Capture {
                    producer: producer(worker, &name, config),
                    cfg: Box::new(cfg),
                    partition,
                };
                (kind, 1, warnings)
            }),
            Plugin::ConfluentJdbcSink | Plugin::DebeziumJdbcSink => {
                SinkConnectorConfig::from_props(&props).map(|(cfg, warnings)| {
                    let c = consumer(worker, &format!("connect-{name}"), cfg.topics.clone(), config);
                    let dlq = cfg
                        .dlq_topic
                        .as_ref()
                        .map(|_| producer(worker, &name, config));
                    let kind = TaskKind::Sink {
                        cfg: Box::new(cfg),
                        consumer: c,
                        dlq,
                    };
                    (kind, tasks, warnings)
                })
            }
            Plugin::Enrich => EnrichConfig::from_props(&props).map(|(mut cfg, model)| {
                cfg.group_id = format!("connect-{name}");
                let c = consumer(worker, &cfg.group_id, cfg.topics.clone(), config);
                let kind = TaskKind::Enrich {
                    cfg: Box::new(cfg),
                    model: Box::new(model),
                    consumer: c,
                    producer: producer(worker, &name, config),
                };
                (kind, tasks, Vec::new())
            }),
        };
        match parsed {
            Ok((kind, tasks, warnings)) if errors.is_empty() => {
                let track_topics = worker.topic_tracking;
                Ok((
                    TaskPlan {
                        name,
                        track_topics,
                        tasks,
                        kind,
                    },
                    warnings,
                ))
            }
            Ok((_, _, warnings)) => Err(Validation { errors, warnings }),
            Err(ConfigErrors(more)) => {
                errors.extend(more);
                Err(Validation {
                    errors,
                    warnings: Vec::new(),
                })
            }
        }
    }

    /// Validates only (what `config/validate` reports).
    pub fn validate(plugin: Plugin, config: &BTreeMap<String, String>) -> Validation {
        match TaskPlan::build(plugin, config, &WorkerConfig::new("validate:9092")) {
            Ok((_, warnings)) => Validation {
                errors: Vec::new(),
                warnings,
            },
            Err(v) => v,
        }
    }

    /// How many tasks the connector runs.
    pub fn task_count(&self) -> usize {
        self.tasks
    }

    /// The consumer group and topics of a sink-side connector (`None` for capture).
    pub fn group(&self) -> Option<(&str, &[String])> {
        match &self.kind {
            TaskKind::Capture { .. } => None,
            TaskKind::Sink { consumer, .. } | TaskKind::Enrich { consumer, .. } => {
                Some((&consumer.group_id, &consumer.topics))
            }
        }
    }

    /// Whether the connector's consumers start at a partition's end when the group has no
    /// committed offset for it (`consumer.override.auto.offset.reset=latest`); at its start
    /// otherwise, as Kafka Connect's sinks do.
    pub fn starts_at_end(&self) -> bool {
        match &self.kind {
            TaskKind::Capture { .. } => false,
            TaskKind::Sink { consumer, .. } | TaskKind::Enrich { consumer, .. } => consumer
                .overrides
                .iter()
                .rev()
                .find(|(k, _)| k == "auto.offset.reset")
                .is_some_and(|(_, v)| matches!(v.as_str(), "latest" | "largest" | "end")),
        }
    }

    /// The hook through which task `task` records the topics it uses, when tracking is on.
    fn topic_hook(&self, store: &Arc<StateStore>, task: usize) -> Option<TopicHook> {
        if !self.track_topics {
            return None;
        }
        let (store, name) = (store.clone(), self.name.clone());
        Some(TopicHook(Arc::new(move |topic: &str| {
            store.record_topic(&name, task, topic)
        })))
    }

    /// Runs task `task` until `shutdown` fires or it fails.
    pub async fn run(
        &self,
        task: usize,
        store: Arc<StateStore>,
        mut shutdown: Shutdown,
    ) -> Result<(), Error> {
        let client_id = |role: &str| format!("connector-{role}-{}-{task}", self.name);
        let hook = self.topic_hook(&store, task);
        match &self.kind {
            TaskKind::Capture {
                cfg,
                producer,
                partition,
            } => {
                let mut p = producer.clone();
                p.on_topic = hook;
                let dest = DestinationConfig::Kafka(p);
                let dest = tokio::select! {
                    d = Destination::connect(&dest) => d?,
                    _ = shutdown.wait() => return Ok(()),
                };
                let offsets = Arc::new(TopicOffsetStore::new(
                    store,
                    self.name.clone(),
                    partition.clone(),
                ));
                let exit = augur_runtime::capture::run_with(
                    CaptureConfig::clone(cfg),
                    dest,
                    offsets,
                    shutdown,
                )
                .await?;
                tracing::info!(connector = %self.name, task, exit = ?exit, "capture task finished");
                Ok(())
            }
            TaskKind::Sink { cfg, consumer, dlq } => {
                let mut c = consumer.clone();
                c.client_id = client_id("consumer");
                c.on_topic = hook;
                augur_runtime::sink::run(SinkConnectorConfig::clone(cfg), c, dlq.clone(), shutdown)
                    .await
            }
            TaskKind::Enrich {
                cfg,
                model,
                consumer,
                producer,
            } => {
                let m = model.clone();
                let predictor = tokio::select! {
                    p = tokio::task::spawn_blocking(move || m.predictor()) => p.map_err(|e| {
                        Error::new(ErrorKind::Internal, "model loading task failed").with_source(e)
                    })??,
                    _ = shutdown.wait() => return Ok(()),
                };
                let mut c = consumer.clone();
                c.client_id = client_id("consumer");
                c.on_topic = hook.clone();
                let mut p = producer.clone();
                p.client_id = client_id("producer");
                p.on_topic = hook;
                augur_runtime::enrich::run(EnrichConfig::clone(cfg), predictor, c, p, shutdown)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_props as config;
    use augur_runtime::security::ClientSettings;

    #[test]
    fn capture_errors_name_their_keys() {
        let c = config(&[
            ("name", "pg"),
            ("connector.class", "Postgres"),
            ("database.user", "u"),
            ("database.dbname", "d"),
            ("topic.prefix", "p"),
            ("snapshot.mode", "sometimes"),
            ("tasks.max", "zero"),
        ]);
        let v = TaskPlan::validate(Plugin::Capture, &c);
        let keys: Vec<&str> = v.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["tasks.max", "database.hostname", "snapshot.mode"]);
        assert_eq!(
            v.errors[1].message,
            "The 'database.hostname' value is invalid: A value is required"
        );
    }

    #[test]
    fn unusable_kafka_security_overrides_are_errors_by_key() {
        let c = config(&[
            ("name", "jdbc"),
            (
                "connector.class",
                "io.confluent.connect.jdbc.JdbcSinkConnector",
            ),
            ("topics", "t"),
            ("connection.url", "jdbc:postgresql://h:5432/db"),
            ("consumer.override.security.protocol", "SASL_SSL"),
            ("consumer.override.sasl.mechanism", "PLAIN"),
            ("producer.override.ssl.truststore.location", "/x.jks"),
        ]);
        let v = TaskPlan::validate(Plugin::ConfluentJdbcSink, &c);
        let keys: Vec<&str> = v.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "producer.override.ssl.truststore.location",
                "consumer.override.sasl.jaas.config"
            ]
        );
        let mut worker = WorkerConfig::new("b:9092");
        worker.client =
            ClientSettings::new(vec![("producer.linger.ms".into(), "9".into())]).unwrap();
        let (plan, _) = TaskPlan::build(
            Plugin::ConfluentJdbcSink,
            &config(&[
                ("name", "jdbc"),
                (
                    "connector.class",
                    "io.confluent.connect.jdbc.JdbcSinkConnector",
                ),
                ("topics", "t"),
                ("connection.url", "jdbc:postgresql://h:5432/db"),
                ("errors.deadletterqueue.topic.name", "dlq"),
                ("errors.tolerance", "all"),
                ("producer.override.linger.ms", "3"),
            ]),
            &worker,
        )
        .unwrap();
        let TaskKind::Sink { dlq: Some(p), .. } = &plan.kind else {
            panic!("a sink with a dead-letter producer")
        };
        let linger: Vec<&str> = p
            .overrides
            .iter()
            .filter(|(k, _)| k == "linger.ms")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            linger,
            ["9", "3"],
            "the worker's setting, then the connector's override"
        );
    }

    #[test]
    fn sinks_run_tasks_max_members_of_connect_group() {
        let c = config(&[
            ("name", "jdbc"),
            (
                "connector.class",
                "io.confluent.connect.jdbc.JdbcSinkConnector",
            ),
            ("topics", "t"),
            ("connection.url", "jdbc:postgresql://h:5432/db"),
            ("tasks.max", "3"),
            ("consumer.override.fetch.min.bytes", "1"),
        ]);
        let (plan, _) =
            TaskPlan::build(Plugin::ConfluentJdbcSink, &c, &WorkerConfig::new("b:9092")).unwrap();
        assert_eq!(plan.task_count(), 3);
        let (group, topics) = plan.group().unwrap();
        assert_eq!(group, "connect-jdbc");
        assert_eq!(topics, ["t".to_string()]);
        let missing = TaskPlan::validate(Plugin::Enrich, &config(&[("name", "e")]));
        assert_eq!(missing.errors[0].key, "topics");
    }
}
