//! The Kafka Connect REST API's bodies, as serde types (Kafka Connect's rest.entities).
//!
//! Each type serializes to the JSON Kafka Connect 3.x answers with: the field order is the key
//! order of the body, an `Option` field marked `skip_serializing_if` is left out when empty
//! (a status's `trace`), and the other `Option`s are written as `null` (a key's
//! `default_value`). The records of the state topics are [`crate::store`]'s.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::offsets::GroupOffset;
use crate::worker::State;

/// `GET /`: Kafka Connect's `ServerInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerInfo {
    /// The worker's version (augur's).
    pub(crate) version: &'static str,
    /// The commit the worker was built from.
    pub(crate) commit: &'static str,
    /// The Kafka cluster the worker's state lives in.
    pub(crate) kafka_cluster_id: String,
}

/// `GET /health`: Kafka Connect's `WorkerStatus` (KIP-1017).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkerStatus {
    /// `healthy` (a worker that answers has completed startup).
    pub(crate) status: &'static str,
    /// What the status means.
    pub(crate) message: &'static str,
}

impl WorkerStatus {
    /// A worker that has completed startup.
    pub(crate) fn healthy() -> WorkerStatus {
        WorkerStatus {
            status: "healthy",
            message: "Worker has completed startup and is ready to handle requests.",
        }
    }
}

/// A connector's type: Kafka Connect's `ConnectorType`, written in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ConnectorType {
    /// Reads an external system into Kafka.
    Source,
    /// Reads Kafka topics.
    Sink,
}

/// A plugin's type: Kafka Connect's `PluginType`, written in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PluginType {
    /// A source connector.
    Source,
    /// A sink connector.
    Sink,
    /// A converter.
    Converter,
    /// A single message transformation.
    Transformation,
}

impl From<ConnectorType> for PluginType {
    fn from(t: ConnectorType) -> PluginType {
        match t {
            ConnectorType::Source => PluginType::Source,
            ConnectorType::Sink => PluginType::Sink,
        }
    }
}

/// One entry of `GET /connector-plugins`: Kafka Connect's `PluginInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PluginInfo {
    /// The plugin's class.
    pub(crate) class: &'static str,
    /// Its type.
    #[serde(rename = "type")]
    pub(crate) plugin_type: PluginType,
    /// Its version.
    pub(crate) version: &'static str,
}

/// A task's id: Kafka Connect's `ConnectorTaskId`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectorTaskId {
    /// The connector's name.
    pub(crate) connector: String,
    /// The task's number.
    pub(crate) task: usize,
}

/// `GET /connectors/{name}` and the answer to creating or updating one: Kafka Connect's
/// `ConnectorInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectorInfo {
    /// The connector's name.
    pub(crate) name: String,
    /// Its config, secrets hidden.
    pub(crate) config: BTreeMap<String, String>,
    /// Its tasks' ids.
    pub(crate) tasks: Vec<ConnectorTaskId>,
    /// Its type.
    #[serde(rename = "type")]
    pub(crate) connector_type: ConnectorType,
}

/// A connector's own state in `ConnectorStateInfo`: Kafka Connect's `ConnectorState`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectorState {
    /// The state.
    pub(crate) state: State,
    /// The worker running it (`host:port`).
    pub(crate) worker_id: String,
    /// Why it failed (secrets scrubbed); left out unless it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trace: Option<String>,
}

/// `GET /connectors/{name}/tasks/{id}/status` and a task in `ConnectorStateInfo`: Kafka
/// Connect's `TaskState`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskState {
    /// The task's number.
    pub(crate) id: usize,
    /// The state.
    pub(crate) state: State,
    /// The worker running it (`host:port`).
    pub(crate) worker_id: String,
    /// Why it failed (secrets scrubbed); left out unless it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trace: Option<String>,
}

/// `GET /connectors/{name}/status` and the answer to a restart with tasks: Kafka Connect's
/// `ConnectorStateInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectorStateInfo {
    /// The connector's name.
    pub(crate) name: String,
    /// The connector's own state.
    pub(crate) connector: ConnectorState,
    /// Its tasks' states.
    pub(crate) tasks: Vec<TaskState>,
    /// Its type.
    #[serde(rename = "type")]
    pub(crate) connector_type: ConnectorType,
}

/// One entry of `GET /connectors/{name}/tasks`: Kafka Connect's `TaskInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TaskInfo {
    /// The task's id.
    pub(crate) id: ConnectorTaskId,
    /// Its config (the connector's, secrets hidden, plus `task.class`).
    pub(crate) config: BTreeMap<String, String>,
}

/// One connector in `GET /connectors?expand=…`: what was asked for of `status` and `info`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ConnectorExpansion {
    /// Its status, with `expand=status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<ConnectorStateInfo>,
    /// Its info, with `expand=info`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) info: Option<ConnectorInfo>,
}

/// `GET /connectors/{name}/offsets`: Kafka Connect's `ConnectorOffsets`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ConnectorOffsets {
    /// One entry per partition with an offset.
    pub(crate) offsets: Vec<ConnectorOffset>,
}

/// One partition's offset: Kafka Connect's `ConnectorOffset`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConnectorOffset {
    /// The partition.
    pub(crate) partition: OffsetPartition,
    /// The offset in it.
    pub(crate) offset: OffsetPosition,
}

impl ConnectorOffset {
    /// A source connector's offset: its partition and offset maps as stored.
    pub(crate) fn source(partition: Value, offset: Value) -> ConnectorOffset {
        ConnectorOffset {
            partition: OffsetPartition::Source(partition),
            offset: OffsetPosition::Source(offset),
        }
    }

    /// A sink connector's committed offset in one topic partition.
    pub(crate) fn sink(o: GroupOffset) -> ConnectorOffset {
        ConnectorOffset {
            partition: OffsetPartition::Sink {
                kafka_topic: o.topic,
                kafka_partition: o.partition,
            },
            offset: OffsetPosition::Sink {
                kafka_offset: o.offset,
            },
        }
    }
}

/// The partition of a `ConnectorOffset`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum OffsetPartition {
    /// A source partition, as the connector defines it (Debezium's `{"server": …}`).
    Source(Value),
    /// A sink's topic partition.
    Sink {
        /// The topic.
        kafka_topic: String,
        /// The partition.
        kafka_partition: i32,
    },
}

/// The offset of a `ConnectorOffset`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum OffsetPosition {
    /// A source offset, as the connector defines it (Debezium's LSNs and snapshot flags).
    Source(Value),
    /// A sink's committed offset.
    Sink {
        /// The next offset the sink will read.
        kafka_offset: i64,
    },
}

/// `PUT /connector-plugins/{class}/config/validate`: Kafka Connect's `ConfigInfos`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigInfos {
    /// The connector class.
    pub(crate) name: &'static str,
    /// How many errors the config has.
    pub(crate) error_count: usize,
    /// The groups of the keys, in order of first use.
    pub(crate) groups: Vec<&'static str>,
    /// One entry per key.
    pub(crate) configs: Vec<ConfigInfo>,
}

/// One key in `ConfigInfos`: Kafka Connect's `ConfigInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigInfo {
    /// The key's definition.
    pub(crate) definition: ConfigKeyInfo,
    /// Its value in the validated config.
    pub(crate) value: ConfigValueInfo,
}

/// A key's definition (`GET /connector-plugins/{class}/config`): Kafka Connect's
/// `ConfigKeyInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigKeyInfo {
    /// The key.
    pub(crate) name: String,
    /// `STRING`, `INT`, `BOOLEAN`, `PASSWORD`, `LIST` or `CLASS`.
    #[serde(rename = "type")]
    pub(crate) key_type: &'static str,
    /// Whether the key has no default and must be set.
    pub(crate) required: bool,
    /// The default, as text (`null` without one).
    pub(crate) default_value: Option<&'static str>,
    /// `HIGH`, `MEDIUM` or `LOW`.
    pub(crate) importance: &'static str,
    /// What the key does.
    pub(crate) documentation: &'static str,
    /// The group the key is shown in.
    pub(crate) group: &'static str,
    /// The width of its input field (always `NONE`).
    pub(crate) width: &'static str,
    /// The name shown for it.
    pub(crate) display_name: String,
    /// The keys that depend on it (none).
    pub(crate) dependents: Vec<String>,
    /// Its position, from 1.
    pub(crate) order: usize,
}

/// A key's value in `ConfigInfos`: Kafka Connect's `ConfigValueInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ConfigValueInfo {
    /// The key.
    pub(crate) name: String,
    /// Its value (secrets hidden), else its default, else `null`.
    pub(crate) value: Option<String>,
    /// The values it takes, when it is an enumeration.
    pub(crate) recommended_values: &'static [&'static str],
    /// What is wrong with it.
    pub(crate) errors: Vec<String>,
    /// Whether it is shown (always).
    pub(crate) visible: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The compact JSON text of `body`.
    fn text(body: &impl Serialize) -> String {
        serde_json::to_string(body).unwrap()
    }

    #[test]
    fn bodies_keep_kafka_connects_key_order_and_omissions() {
        let running = TaskState {
            id: 0,
            state: State::Running,
            worker_id: "h:8083".into(),
            trace: None,
        };
        let failed = ConnectorState {
            state: State::Failed,
            worker_id: "h:8083".into(),
            trace: Some("boom".into()),
        };
        let status = ConnectorStateInfo {
            name: "c".into(),
            connector: failed,
            tasks: vec![running],
            connector_type: ConnectorType::Source,
        };
        assert_eq!(
            text(&status),
            r#"{"name":"c","connector":{"state":"FAILED","worker_id":"h:8083","trace":"boom"},"tasks":[{"id":0,"state":"RUNNING","worker_id":"h:8083"}],"type":"source"}"#
        );
        let expanded = ConnectorExpansion {
            status: None,
            info: Some(ConnectorInfo {
                name: "c".into(),
                config: [("a".to_string(), "1".to_string())].into(),
                tasks: vec![ConnectorTaskId {
                    connector: "c".into(),
                    task: 0,
                }],
                connector_type: ConnectorType::Sink,
            }),
        };
        assert_eq!(
            text(&expanded),
            r#"{"info":{"name":"c","config":{"a":"1"},"tasks":[{"connector":"c","task":0}],"type":"sink"}}"#
        );
        assert_eq!(text(&ConnectorExpansion::default()), "{}");
    }

    #[test]
    fn offsets_are_source_maps_or_topic_partitions() {
        let offsets = ConnectorOffsets {
            offsets: vec![
                ConnectorOffset::source(json!({"server": "s"}), json!({"lsn": 1})),
                ConnectorOffset::sink(GroupOffset {
                    topic: "t".into(),
                    partition: 2,
                    offset: 3,
                }),
            ],
        };
        assert_eq!(
            text(&offsets),
            r#"{"offsets":[{"partition":{"server":"s"},"offset":{"lsn":1}},{"partition":{"kafka_topic":"t","kafka_partition":2},"offset":{"kafka_offset":3}}]}"#
        );
        assert_eq!(text(&ConnectorOffsets::default()), r#"{"offsets":[]}"#);
    }
}
