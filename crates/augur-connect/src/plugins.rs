//! The connector classes the worker runs (a closed set, no plugin path) and their config
//! definitions: `GET /connector-plugins`, `GET /connector-plugins/{class}/config`, and the
//! `ConfigInfos` body of `PUT /connector-plugins/{class}/config/validate`.
//!
//! Validation is the same pure parse the worker runs before starting tasks
//! ([`crate::tasks::TaskPlan::build`]): no connection is made, every error names its key and is
//! worded as Debezium or Kafka Connect words it.

use std::collections::BTreeMap;

use augur_runtime::capture::config::{ConfigError, EXTRACT_NEW_RECORD_STATE, POSTGRES_CONNECTOR};
use augur_runtime::enrich::ENRICH_CONNECTOR;
use augur_runtime::sink::{CONFLUENT_JDBC_SINK, DEBEZIUM_JDBC_SINK};

use crate::entities::{
    ConfigInfo, ConfigInfos, ConfigKeyInfo, ConfigValueInfo, ConnectorType, PluginInfo, PluginType,
};
use crate::error::ApiError;
use crate::mask;

/// The version reported for every plugin: augur's.
pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Kafka Connect JSON converter, the one converter augur speaks.
pub const JSON_CONVERTER: &str = "org.apache.kafka.connect.json.JsonConverter";

/// A connector class the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plugin {
    /// `io.debezium.connector.postgresql.PostgresConnector`: augur's capture.
    Capture,
    /// `io.confluent.connect.jdbc.JdbcSinkConnector`.
    ConfluentJdbcSink,
    /// `io.debezium.connector.jdbc.JdbcSinkConnector`.
    DebeziumJdbcSink,
    /// `io.augur.connect.EnrichConnector`: the enrichment stage.
    Enrich,
}

impl Plugin {
    /// Every plugin, in `GET /connector-plugins` order (by class name, as Kafka Connect sorts).
    pub const ALL: [Plugin; 4] = [
        Plugin::Enrich,
        Plugin::ConfluentJdbcSink,
        Plugin::DebeziumJdbcSink,
        Plugin::Capture,
    ];

    /// The connector class.
    pub fn class(self) -> &'static str {
        match self {
            Plugin::Capture => POSTGRES_CONNECTOR,
            Plugin::ConfluentJdbcSink => CONFLUENT_JDBC_SINK,
            Plugin::DebeziumJdbcSink => DEBEZIUM_JDBC_SINK,
            Plugin::Enrich => ENRICH_CONNECTOR,
        }
    }

    /// `source` or `sink` (the enrichment stage reads topics, so it is a sink in Connect's
    /// terms, though it writes to Kafka).
    pub(crate) fn connector_type(self) -> ConnectorType {
        match self {
            Plugin::Capture => ConnectorType::Source,
            _ => ConnectorType::Sink,
        }
    }

    /// The task class shown in task configs (`GET /connectors/{name}/tasks`).
    pub fn task_class(self) -> &'static str {
        match self {
            Plugin::Capture => "io.debezium.connector.postgresql.PostgresConnectorTask",
            Plugin::ConfluentJdbcSink => "io.confluent.connect.jdbc.sink.JdbcSinkTask",
            Plugin::DebeziumJdbcSink => "io.debezium.connector.jdbc.JdbcSinkConnectorTask",
            Plugin::Enrich => "io.augur.connect.EnrichTask",
        }
    }

    /// Finds a plugin by class name or alias, as Kafka Connect resolves them: the full class
    /// name, the simple class name, or the simple name without its `Connector` suffix.
    /// Ambiguous aliases (`JdbcSinkConnector` names two classes) resolve to nothing.
    pub fn find(name: &str) -> Option<Plugin> {
        let name = name.trim();
        let mut matches = Plugin::ALL.iter().copied().filter(|p| {
            let class = p.class();
            let simple = class.rsplit('.').next().unwrap_or(class);
            let short = simple.strip_suffix("Connector").unwrap_or(simple);
            name == class || name == simple || name == short
        });
        let first = matches.next()?;
        match matches.next() {
            Some(_) => None,
            None => Some(first),
        }
    }

    /// As [`Plugin::find`], or Kafka Connect's 400 for an unknown class.
    pub fn lookup(name: &str) -> Result<Plugin, ApiError> {
        Plugin::find(name).ok_or_else(|| {
            let available: Vec<&str> = Plugin::ALL.iter().map(|p| p.class()).collect();
            ApiError::bad_request(format!(
                "Failed to find any class that implements Connector and which name matches {}, available connectors are: {}",
                name.trim(),
                available.join(", ")
            ))
        })
    }

    /// `{"class","type","version"}` for `GET /connector-plugins`.
    pub(crate) fn info(self) -> PluginInfo {
        PluginInfo {
            class: self.class(),
            plugin_type: self.connector_type().into(),
            version: PLUGIN_VERSION,
        }
    }

    /// The definitions of this plugin's keys, common ones first.
    fn defs(self) -> Vec<&'static KeyDef> {
        let specific: &[KeyDef] = match self {
            Plugin::Capture => CAPTURE,
            Plugin::ConfluentJdbcSink => CONFLUENT_SINK,
            Plugin::DebeziumJdbcSink => DEBEZIUM_SINK,
            Plugin::Enrich => ENRICH,
        };
        let topics: &[KeyDef] = match self {
            Plugin::Capture => &[],
            _ => SINK_COMMON,
        };
        COMMON
            .iter()
            .chain(topics)
            .chain(specific)
            .chain(ERRORS)
            .collect()
    }
}

/// The non-connector plugins `GET /connector-plugins?connectorsOnly=false` adds.
pub(crate) fn other_plugins() -> Vec<PluginInfo> {
    vec![
        PluginInfo {
            class: JSON_CONVERTER,
            plugin_type: PluginType::Converter,
            version: PLUGIN_VERSION,
        },
        PluginInfo {
            class: EXTRACT_NEW_RECORD_STATE,
            plugin_type: PluginType::Transformation,
            version: PLUGIN_VERSION,
        },
    ]
}

/// One key's definition, as Kafka Connect's `ConfigKeyInfo`.
#[derive(Debug)]
struct KeyDef {
    /// The key.
    name: &'static str,
    /// `STRING`, `INT`, `BOOLEAN`, `PASSWORD`, `LIST`, `CLASS`.
    ty: &'static str,
    /// Whether the key has no default and must be set.
    required: bool,
    /// The default, as text.
    default: Option<&'static str>,
    /// `HIGH`, `MEDIUM` or `LOW`.
    importance: &'static str,
    /// The group the key is shown in.
    group: &'static str,
    /// What it does.
    doc: &'static str,
    /// The values it takes, when it is an enumeration.
    recommended: &'static [&'static str],
}

impl KeyDef {
    /// An optional key without default.
    const fn new(
        name: &'static str,
        ty: &'static str,
        importance: &'static str,
        group: &'static str,
        doc: &'static str,
    ) -> KeyDef {
        KeyDef {
            name,
            ty,
            required: false,
            default: None,
            importance,
            group,
            doc,
            recommended: &[],
        }
    }

    /// Marks the key required.
    const fn required(mut self) -> KeyDef {
        self.required = true;
        self
    }

    /// Sets the default.
    const fn default(mut self, d: &'static str) -> KeyDef {
        self.default = Some(d);
        self
    }

    /// Sets the accepted values.
    const fn one_of(mut self, values: &'static [&'static str]) -> KeyDef {
        self.recommended = values;
        self
    }

    /// The `definition` object.
    fn definition(&self, order: usize) -> ConfigKeyInfo {
        ConfigKeyInfo {
            name: self.name.to_string(),
            key_type: self.ty,
            required: self.required,
            default_value: self.default,
            importance: self.importance,
            documentation: self.doc,
            group: self.group,
            width: "NONE",
            display_name: self.name.to_string(),
            dependents: Vec::new(),
            order,
        }
    }
}

const HIGH: &str = "HIGH";
const MEDIUM: &str = "MEDIUM";
const LOW: &str = "LOW";

const COMMON: &[KeyDef] = &[
    KeyDef::new("name", "STRING", HIGH, "Common", "Globally unique name to use for this connector.").required(),
    KeyDef::new("connector.class", "STRING", HIGH, "Common", "Name or alias of the class for this connector.").required(),
    KeyDef::new("tasks.max", "INT", HIGH, "Common", "Maximum number of tasks to use for this connector (the PostgreSQL capture always runs one).").default("1"),
    KeyDef::new("key.converter", "CLASS", LOW, "Common", "Converter class for keys; augur speaks org.apache.kafka.connect.json.JsonConverter."),
    KeyDef::new("value.converter", "CLASS", LOW, "Common", "Converter class for values; augur speaks org.apache.kafka.connect.json.JsonConverter."),
    KeyDef::new("transforms", "LIST", LOW, "Transforms", "Aliases for the transformations applied to records (io.debezium.transforms.ExtractNewRecordState)."),
];

const SINK_COMMON: &[KeyDef] = &[
    KeyDef::new(
        "topics",
        "LIST",
        HIGH,
        "Common",
        "Topics to consume, comma-separated.",
    ),
    KeyDef::new(
        "topics.regex",
        "STRING",
        HIGH,
        "Common",
        "Regular expression naming the topics to consume (instead of topics).",
    ),
];

const ERRORS: &[KeyDef] = &[
    KeyDef::new("errors.tolerance", "STRING", MEDIUM, "Error Handling", "none: a record that cannot be processed stops the task; all: it is routed to the dead-letter topic.").default("none").one_of(&["none", "all"]),
    KeyDef::new("errors.deadletterqueue.topic.name", "STRING", MEDIUM, "Error Handling", "The dead-letter topic for records that cannot be processed."),
];

const CAPTURE: &[KeyDef] = &[
    KeyDef::new(
        "plugin.name",
        "STRING",
        MEDIUM,
        "Postgres",
        "The logical decoding plugin; augur decodes the built-in pgoutput.",
    )
    .default("pgoutput")
    .one_of(&["pgoutput"]),
    KeyDef::new(
        "database.hostname",
        "STRING",
        HIGH,
        "Postgres",
        "Resolvable hostname or IP address of the database server.",
    )
    .required(),
    KeyDef::new(
        "database.port",
        "INT",
        HIGH,
        "Postgres",
        "Port of the database server.",
    )
    .default("5432"),
    KeyDef::new(
        "database.user",
        "STRING",
        HIGH,
        "Postgres",
        "Name of the database user (with the REPLICATION privilege).",
    )
    .required(),
    KeyDef::new(
        "database.password",
        "PASSWORD",
        HIGH,
        "Postgres",
        "Password of the database user.",
    ),
    KeyDef::new(
        "database.dbname",
        "STRING",
        HIGH,
        "Postgres",
        "The name of the database to capture.",
    )
    .required(),
    KeyDef::new(
        "topic.prefix",
        "STRING",
        HIGH,
        "Postgres",
        "Prefix of every topic name (2022-era name: database.server.name).",
    )
    .required(),
    KeyDef::new(
        "database.server.name",
        "STRING",
        LOW,
        "Postgres",
        "Pre-2.0 name of topic.prefix, accepted as an alias.",
    ),
    KeyDef::new(
        "table.include.list",
        "LIST",
        MEDIUM,
        "Filters",
        "Regular expressions matching the schema-qualified tables to capture.",
    ),
    KeyDef::new(
        "table.exclude.list",
        "LIST",
        MEDIUM,
        "Filters",
        "Regular expressions matching the schema-qualified tables not to capture.",
    ),
    KeyDef::new(
        "schema.include.list",
        "LIST",
        MEDIUM,
        "Filters",
        "Regular expressions matching the schemas to capture.",
    ),
    KeyDef::new(
        "schema.exclude.list",
        "LIST",
        MEDIUM,
        "Filters",
        "Regular expressions matching the schemas not to capture.",
    ),
    KeyDef::new(
        "slot.name",
        "STRING",
        MEDIUM,
        "Postgres",
        "The replication slot.",
    )
    .default("debezium"),
    KeyDef::new(
        "publication.name",
        "STRING",
        MEDIUM,
        "Postgres",
        "The publication.",
    )
    .default("dbz_publication"),
    KeyDef::new(
        "publication.autocreate.mode",
        "STRING",
        MEDIUM,
        "Postgres",
        "How the publication is created.",
    )
    .default("all_tables")
    .one_of(&["no_tables", "filtered", "disabled", "all_tables"]),
    KeyDef::new(
        "snapshot.mode",
        "STRING",
        MEDIUM,
        "Snapshot",
        "When to take the initial snapshot (never is accepted as the pre-2.6 name of no_data).",
    )
    .default("initial")
    .one_of(&[
        "always",
        "initial_only",
        "when_needed",
        "initial",
        "no_data",
    ]),
    KeyDef::new(
        "decimal.handling.mode",
        "STRING",
        MEDIUM,
        "Types",
        "How numeric values are represented.",
    )
    .default("precise")
    .one_of(&["string", "double", "precise"]),
    KeyDef::new(
        "time.precision.mode",
        "STRING",
        MEDIUM,
        "Types",
        "How temporal values are represented.",
    )
    .default("adaptive")
    .one_of(&["adaptive", "adaptive_time_microseconds", "connect"]),
    KeyDef::new(
        "tombstones.on.delete",
        "BOOLEAN",
        MEDIUM,
        "Events",
        "Whether a delete is followed by a tombstone.",
    )
    .default("true"),
    KeyDef::new(
        "skipped.operations",
        "LIST",
        LOW,
        "Events",
        "Operations not emitted: c, u, d, t, or none.",
    )
    .default("t"),
    KeyDef::new(
        "heartbeat.interval.ms",
        "INT",
        MEDIUM,
        "Events",
        "How often heartbeat records are written while tables are quiet (0: never).",
    )
    .default("0"),
    KeyDef::new(
        "status.update.interval.ms",
        "INT",
        LOW,
        "Postgres",
        "How often the confirmed position is reported to the server.",
    )
    .default("1000"),
    KeyDef::new(
        "max.batch.size",
        "INT",
        LOW,
        "Events",
        "Events per batch at most.",
    )
    .default("2048"),
    KeyDef::new(
        "max.queue.size",
        "INT",
        LOW,
        "Events",
        "Events buffered between the source and Kafka at most.",
    )
    .default("8192"),
];

const CONFLUENT_SINK: &[KeyDef] = &[
    KeyDef::new("connection.url", "STRING", HIGH, "Connection", "JDBC connection URL (jdbc:postgresql://host:port/database).").required(),
    KeyDef::new("connection.user", "STRING", HIGH, "Connection", "JDBC connection user.").default("postgres"),
    KeyDef::new("connection.password", "PASSWORD", HIGH, "Connection", "JDBC connection password."),
    KeyDef::new("insert.mode", "STRING", HIGH, "Writes", "The insertion mode to use.").default("insert").one_of(&["insert", "upsert", "update"]),
    KeyDef::new("batch.size", "INT", MEDIUM, "Writes", "Records per write transaction at most.").default("3000"),
    KeyDef::new("delete.enabled", "BOOLEAN", MEDIUM, "Writes", "Whether tombstones and delete events delete rows (needs pk.mode record_key or record_value).").default("false"),
    KeyDef::new("table.name.format", "STRING", MEDIUM, "Data Mapping", "The destination table name; ${topic} is the topic.").default("${topic}"),
    KeyDef::new("pk.mode", "STRING", HIGH, "Data Mapping", "Where the primary key comes from.").default("none").one_of(&["none", "kafka", "record_key", "record_value"]),
    KeyDef::new("pk.fields", "LIST", MEDIUM, "Data Mapping", "The primary key fields."),
    KeyDef::new("auto.create", "BOOLEAN", MEDIUM, "DDL Support", "Create the table from the first record's schema when it is missing.").default("false"),
    KeyDef::new("auto.evolve", "BOOLEAN", MEDIUM, "DDL Support", "Add missing columns (nullable) when a record has new fields.").default("false"),
];

const DEBEZIUM_SINK: &[KeyDef] = &[
    KeyDef::new(
        "connection.url",
        "STRING",
        HIGH,
        "Connection",
        "JDBC connection URL (jdbc:postgresql://host:port/database).",
    )
    .required(),
    KeyDef::new(
        "connection.username",
        "STRING",
        HIGH,
        "Connection",
        "JDBC connection user.",
    )
    .default("postgres"),
    KeyDef::new(
        "connection.password",
        "PASSWORD",
        HIGH,
        "Connection",
        "JDBC connection password.",
    ),
    KeyDef::new(
        "insert.mode",
        "STRING",
        HIGH,
        "Writes",
        "The insertion mode to use.",
    )
    .default("insert")
    .one_of(&["insert", "upsert", "update"]),
    KeyDef::new(
        "batch.size",
        "INT",
        MEDIUM,
        "Writes",
        "Records per write transaction at most.",
    )
    .default("500"),
    KeyDef::new(
        "delete.enabled",
        "BOOLEAN",
        MEDIUM,
        "Writes",
        "Whether tombstones and delete events delete rows.",
    )
    .default("false"),
    KeyDef::new(
        "truncate.enabled",
        "BOOLEAN",
        MEDIUM,
        "Writes",
        "Whether truncate events empty the destination table.",
    )
    .default("false"),
    KeyDef::new(
        "collection.name.format",
        "STRING",
        MEDIUM,
        "Data Mapping",
        "The destination table name; ${topic} is the topic.",
    )
    .default("${topic}"),
    KeyDef::new(
        "primary.key.mode",
        "STRING",
        HIGH,
        "Data Mapping",
        "Where the primary key comes from.",
    )
    .default("none")
    .one_of(&["none", "kafka", "record_key", "record_value"]),
    KeyDef::new(
        "primary.key.fields",
        "LIST",
        MEDIUM,
        "Data Mapping",
        "The primary key fields.",
    ),
    KeyDef::new(
        "schema.evolution",
        "STRING",
        MEDIUM,
        "DDL Support",
        "basic: create missing tables and add missing columns.",
    )
    .default("none")
    .one_of(&["none", "basic"]),
];

const ENRICH: &[KeyDef] = &[
    KeyDef::new(
        "output.topic",
        "STRING",
        HIGH,
        "Enrichment",
        "Where enriched records go (default: <last part of the first topic>_predicted).",
    ),
    KeyDef::new(
        "batch.size",
        "INT",
        MEDIUM,
        "Enrichment",
        "Records per prediction batch at most.",
    )
    .default("1000"),
    KeyDef::new(
        "model",
        "STRING",
        HIGH,
        "Model",
        "The model tag: name, name:latest or name:N.",
    )
    .default(augur_runtime::models::SHIPPED_MODEL),
    KeyDef::new(
        "model.store",
        "STRING",
        MEDIUM,
        "Model",
        "The model store folder (default: the user's store, then the shipped models).",
    ),
    KeyDef::new(
        "output.field",
        "STRING",
        MEDIUM,
        "Model",
        "The field the prediction is written to.",
    )
    .default("suggestedprice"),
    KeyDef::new(
        "output.type",
        "STRING",
        MEDIUM,
        "Model",
        "Its type when the record does not have the field already.",
    )
    .default("double")
    .one_of(&["double", "float", "int32", "int64"]),
    KeyDef::new(
        "feature.mapping",
        "LIST",
        LOW,
        "Model",
        "modelInput=column pairs for columns named differently from the model's inputs.",
    ),
];

/// The outcome of validating a config: per-key errors (in the order found) and warnings.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    /// Every error, naming its key.
    pub errors: Vec<ConfigError>,
    /// Things worth logging that do not stop the connector (unknown keys, …).
    pub warnings: Vec<String>,
}

/// `ConfigInfos` for `config` of `plugin`: one entry per defined key (and per key with an
/// error), with its value (secrets hidden), accepted values and errors, and the error count.
pub(crate) fn config_infos(
    plugin: Plugin,
    config: &BTreeMap<String, String>,
    v: &Validation,
) -> ConfigInfos {
    let defs = plugin.defs();
    let mut groups: Vec<&'static str> = Vec::new();
    let mut configs = Vec::new();
    let value_info = |key: &str, value: Option<String>, recommended| ConfigValueInfo {
        name: key.to_string(),
        value,
        recommended_values: recommended,
        errors: v
            .errors
            .iter()
            .filter(|e| e.key == key)
            .map(|e| mask::scrub(&e.message, config))
            .collect(),
        visible: true,
    };
    for (order, d) in defs.iter().enumerate() {
        if !groups.contains(&d.group) {
            groups.push(d.group);
        }
        let value = config
            .get(d.name)
            .map(|s| {
                if d.ty == "PASSWORD" {
                    mask::HIDDEN.to_string()
                } else {
                    mask::mask_value(d.name, s)
                }
            })
            .or_else(|| d.default.map(str::to_string));
        configs.push(ConfigInfo {
            definition: d.definition(order + 1),
            value: value_info(d.name, value, d.recommended),
        });
    }
    // Errors on keys without a definition (transform options, aliases) get an entry too.
    let mut extra: Vec<&str> = Vec::new();
    for e in &v.errors {
        if !defs.iter().any(|d| d.name == e.key) && !extra.contains(&e.key.as_str()) {
            extra.push(&e.key);
        }
    }
    for key in extra {
        let def = KeyDef::new("", "STRING", LOW, "Other", "");
        let mut definition = def.definition(configs.len() + 1);
        definition.name = key.to_string();
        definition.display_name = key.to_string();
        if !groups.contains(&"Other") {
            groups.push("Other");
        }
        let value = config.get(key).map(|s| mask::mask_value(key, s));
        configs.push(ConfigInfo {
            definition,
            value: value_info(key, value, &[]),
        });
    }
    ConfigInfos {
        name: plugin.class(),
        error_count: v.errors.len(),
        groups,
        configs,
    }
}

/// `GET /connector-plugins/{class}/config`: the key definitions.
pub(crate) fn config_defs(plugin: Plugin) -> Vec<ConfigKeyInfo> {
    plugin
        .defs()
        .iter()
        .enumerate()
        .map(|(i, d)| d.definition(i + 1))
        .collect()
}

/// Kafka Connect's 400 message for an invalid config (`AbstractHerder.maybeAddConfigErrors`);
/// `{connectorType}` is literal text, as Kafka Connect prints it.
pub fn invalid_config_message(errors: &[ConfigError], config: &BTreeMap<String, String>) -> String {
    let mut msg = format!(
        "Connector configuration is invalid and contains the following {} error(s):\n",
        errors.len()
    );
    for e in errors {
        msg.push_str(&mask::scrub(&e.message, config));
        msg.push('\n');
    }
    msg.push_str(
        "You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
    );
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_resolve_by_class_and_alias() {
        assert_eq!(Plugin::find(POSTGRES_CONNECTOR), Some(Plugin::Capture));
        assert_eq!(Plugin::find("PostgresConnector"), Some(Plugin::Capture));
        assert_eq!(Plugin::find("Postgres"), Some(Plugin::Capture));
        assert_eq!(Plugin::find("EnrichConnector"), Some(Plugin::Enrich));
        assert_eq!(
            Plugin::find(DEBEZIUM_JDBC_SINK),
            Some(Plugin::DebeziumJdbcSink)
        );
        // Two classes share the simple name: Kafka Connect registers no alias for it.
        assert_eq!(Plugin::find("JdbcSinkConnector"), None);
        let e = Plugin::lookup("com.example.Nope").unwrap_err();
        assert_eq!(e.kind().status().as_u16(), 400);
        assert!(e.message().contains("com.example.Nope"));
    }

    #[test]
    fn config_infos_count_errors_and_hide_passwords() {
        let config: BTreeMap<String, String> = [
            ("database.password", "pw-123"),
            ("snapshot.mode", "sometimes"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let v = Validation {
            errors: vec![
                ConfigError {
                    key: "snapshot.mode".into(),
                    message: "The 'snapshot.mode' value is invalid: Value must be one of x".into(),
                },
                ConfigError {
                    key: "transforms.unwrap.type".into(),
                    message: "missing".into(),
                },
            ],
            warnings: Vec::new(),
        };
        let infos = serde_json::to_value(config_infos(Plugin::Capture, &config, &v)).unwrap();
        assert_eq!(infos["error_count"], 2);
        assert_eq!(infos["name"], POSTGRES_CONNECTOR);
        let text = infos.to_string();
        assert!(!text.contains("pw-123"));
        let entry = |k: &str| {
            infos["configs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["value"]["name"] == k)
                .cloned()
                .unwrap()
        };
        assert_eq!(entry("database.password")["value"]["value"], mask::HIDDEN);
        assert_eq!(
            entry("snapshot.mode")["value"]["errors"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            entry("transforms.unwrap.type")["definition"]["group"],
            "Other"
        );
        assert_eq!(entry("slot.name")["value"]["value"], "debezium");
        let msg = invalid_config_message(&v.errors, &config);
        assert!(msg.starts_with(
            "Connector configuration is invalid and contains the following 2 error(s):\nThe 'snapshot.mode'"
        ));
        assert!(msg.ends_with("`/connector-plugins/{connectorType}/config/validate`"));
    }
}
