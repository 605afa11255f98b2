//! The capture connector's configuration, read from Debezium PostgreSQL connector property
//! names (and the 2022-era aliases: `database.server.name`, `snapshot.mode=never`,
//! `drop.tombstones`, `delete.handling.mode`). Validation does no I/O; every invalid value is
//! reported with its key, and unknown keys come back as warnings.

use std::path::PathBuf;
use std::time::Duration;

use augur_debezium::envelope::EnvelopeConfig;
use augur_debezium::json::ConverterConfig;
use augur_debezium::unwrap::{self, DeleteTombstoneHandling, UnwrapConfig};
use augur_postgres::conn::PgConnect;
use augur_postgres::source::config::{
    PublicationAutocreate, SignalConfig, SkippedOperations, SnapshotMode, SourceConfig,
    TableFilter, compile_list,
};
use augur_postgres::source::types::{
    BinaryHandling, DecimalHandling, IntervalHandling, TimePrecision, TypeOptions,
};
use augur_postgres::tls::PgTls;

use crate::props::Props;

/// The connector class augur's capture implements.
pub const POSTGRES_CONNECTOR: &str = "io.debezium.connector.postgresql.PostgresConnector";
/// The transform class augur implements.
pub const EXTRACT_NEW_RECORD_STATE: &str = "io.debezium.transforms.ExtractNewRecordState";

pub use crate::props::{ConfigError, ConfigErrors};

/// The validated capture configuration.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// `name`: the connector's name.
    pub name: String,
    /// The PostgreSQL source.
    pub source: SourceConfig,
    /// Event shape and naming.
    pub envelope: EnvelopeConfig,
    /// `offset.storage.file.filename`, when set.
    pub offsets_file: Option<PathBuf>,
}

/// Keys Debezium and Kafka Connect define that augur reads.
const KNOWN: &[&str] = &[
    "name",
    "connector.class",
    "tasks.max",
    "plugin.name",
    "database.hostname",
    "database.port",
    "database.user",
    "database.password",
    "database.dbname",
    "database.server.name",
    "topic.prefix",
    "table.include.list",
    "table.exclude.list",
    "table.whitelist",
    "table.blacklist",
    "schema.include.list",
    "schema.exclude.list",
    "schema.whitelist",
    "schema.blacklist",
    "slot.name",
    "publication.name",
    "publication.autocreate.mode",
    "snapshot.mode",
    "decimal.handling.mode",
    "time.precision.mode",
    "binary.handling.mode",
    "interval.handling.mode",
    "hstore.handling.mode",
    "include.unknown.datatypes",
    "unavailable.value.placeholder",
    "money.fraction.digits",
    "heartbeat.interval.ms",
    "topic.heartbeat.prefix",
    "tombstones.on.delete",
    "skipped.operations",
    "status.update.interval.ms",
    "max.batch.size",
    "max.queue.size",
    "slot.max.retries",
    "slot.retry.delay.ms",
    "errors.max.retries",
    "retriable.restart.connector.wait.ms",
    "slot.drop.on.stop",
    "key.converter",
    "value.converter",
    "key.converter.schemas.enable",
    "value.converter.schemas.enable",
    "key.converter.replace.null.with.default",
    "value.converter.replace.null.with.default",
    "converter.schemas.enable",
    "transforms",
    "offset.storage.file.filename",
    "extended.headers.enabled",
    "signal.data.collection",
    "signal.enabled.channels",
    "incremental.snapshot.chunk.size",
    "incremental.snapshot.watermarking.strategy",
];

/// Keys that are valid Debezium/Connect settings but change nothing in augur (accepted quietly).
const ACCEPTED_IGNORED: &[&str] = &[
    "offset.flush.interval.ms",
    "offset.storage",
    "poll.interval.ms",
    "snapshot.fetch.size",
    "snapshot.isolation.mode",
    "snapshot.locking.mode",
    "snapshot.max.threads",
    "provide.transaction.metadata",
    "errors.tolerance",
    "errors.log.enable",
    "errors.log.include.messages",
    "event.processing.failure.handling.mode",
    "schema.refresh.mode",
    "topic.creation.enable",
    "topic.creation.default.replication.factor",
    "topic.creation.default.partitions",
    "key.converter.schemas.cache.size",
    "value.converter.schemas.cache.size",
    "xmin.fetch.interval.ms",
];

/// An invalid value, worded as Debezium words it (`The 'snapshot.mode' value is invalid: …`).
fn err(key: &str, value: &str, reason: &str) -> ConfigError {
    let _ = value;
    ConfigError {
        key: key.to_string(),
        message: format!("The '{key}' value is invalid: {reason}"),
    }
}

fn missing(key: &str) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: format!("The '{key}' value is invalid: A value is required"),
    }
}

struct Reader<'a> {
    props: &'a Props,
    errors: Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    fn str(&self, key: &str) -> Option<&'a str> {
        self.props.get(key).filter(|v| !v.is_empty())
    }

    fn parse<T>(
        &mut self,
        key: &str,
        default: T,
        f: impl Fn(&str) -> Option<T>,
        reason: &str,
    ) -> T {
        match self.str(key) {
            None => default,
            Some(v) => match f(v) {
                Some(t) => t,
                None => {
                    self.errors.push(err(key, v, reason));
                    default
                }
            },
        }
    }

    fn bool(&mut self, key: &str, default: bool) -> bool {
        self.parse(
            key,
            default,
            |v| match v.to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            "Either 'true' or 'false' is expected",
        )
    }

    fn u64(&mut self, key: &str, default: u64) -> u64 {
        self.parse(key, default, |v| v.parse().ok(), "An integer is expected")
    }

    fn regexes(&mut self, keys: &[&str]) -> Vec<regex_lite::Regex> {
        for key in keys {
            if let Some(v) = self.str(key) {
                return match compile_list(v) {
                    Ok(r) => r,
                    Err(bad) => {
                        self.errors.push(err(
                            key,
                            v,
                            &format!("not a valid regular expression ({bad})"),
                        ));
                        Vec::new()
                    }
                };
            }
        }
        Vec::new()
    }
}

/// The outcome of reading a config: the validated config and the warnings to log.
pub type Validated = (CaptureConfig, Vec<String>);

impl CaptureConfig {
    /// Reads and validates a Debezium PostgreSQL connector config.
    pub fn from_props(props: &Props) -> Result<Validated, ConfigErrors> {
        let mut r = Reader {
            props,
            errors: Vec::new(),
        };
        let mut warnings = Vec::new();
        check_connector(&mut r);
        let prefix = topic_prefix(&mut r);
        let dbname = r.str("database.dbname").unwrap_or("").to_string();
        let name = r.str("name").unwrap_or(&prefix).to_string();
        let mut source = SourceConfig::new(connection(&mut r, &name));
        slot_and_publication(&mut r, &mut source, &mut warnings);
        source.tables = table_filter(&mut r);
        source.types = type_options(&mut r, props);
        limits_and_retries(&mut r, &mut source);
        source.signals = signals(&mut r, &mut warnings);
        let mut envelope = envelope(&mut r, prefix, dbname);
        let transform_keys = transforms(&mut r, &mut envelope, &mut warnings);
        if r.str("database.sslfactory").is_some() {
            warnings.push(
                "database.sslfactory names a Java class and is ignored: augur verifies the server as database.sslmode says".into(),
            );
        }
        let offsets_file = r.str("offset.storage.file.filename").map(PathBuf::from);
        warn_unknown_keys(props, &transform_keys, &mut warnings);
        if !r.errors.is_empty() {
            return Err(ConfigErrors(r.errors));
        }
        Ok((
            CaptureConfig {
                name,
                source,
                envelope,
                offsets_file,
            },
            warnings,
        ))
    }
}

/// The connector class and the decoding plugin augur implements.
fn check_connector(r: &mut Reader<'_>) {
    if let Some(class) = r.str("connector.class")
        && class != POSTGRES_CONNECTOR
        && class != "PostgresConnector"
    {
        r.errors.push(err(
            "connector.class",
            class,
            &format!("augur's capture implements {POSTGRES_CONNECTOR}"),
        ));
    }
    if let Some(plugin) = r.str("plugin.name")
        && plugin != "pgoutput"
    {
        r.errors.push(err(
            "plugin.name",
            plugin,
            "Value must be one of pgoutput (augur decodes the built-in pgoutput plugin only)",
        ));
    }
}

/// `topic.prefix` (or the pre-2.0 `database.server.name`), checked like Debezium does.
fn topic_prefix(r: &mut Reader<'_>) -> String {
    let prefix = match (r.str("topic.prefix"), r.str("database.server.name")) {
        (Some(p), _) | (None, Some(p)) => p.to_string(),
        (None, None) => {
            r.errors.push(missing("topic.prefix"));
            String::new()
        }
    };
    if !prefix.is_empty()
        && !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        r.errors.push(err("topic.prefix", &prefix, &format!("{prefix} has invalid format (only the underscore, hyphen, dot and alphanumeric characters are allowed)")));
    }
    prefix
}

/// The `database.*` connection settings; `name` labels the connection.
fn connection(r: &mut Reader<'_>, name: &str) -> PgConnect {
    for key in ["database.hostname", "database.user", "database.dbname"] {
        if r.str(key).is_none() {
            r.errors.push(missing(key));
        }
    }
    let port = r.parse(
        "database.port",
        5432u16,
        |v| v.parse().ok(),
        "A port number is expected",
    );
    let host = r.str("database.hostname").unwrap_or("").to_string();
    let user = r.str("database.user").unwrap_or("").to_string();
    let dbname = r.str("database.dbname").unwrap_or("").to_string();
    let password = r.props.get("database.password").unwrap_or("").to_string();
    let mut connect = PgConnect::new(&host, port, &user, &password, &dbname);
    connect.tls = tls(r);
    connect.application_name = format!("augur:{name}");
    connect
}

/// `database.sslmode`, `.sslrootcert`, `.sslcert`, `.sslkey`, `.sslpassword` with libpq's
/// meanings (Debezium passes them to pgjdbc, which follows libpq). `database.sslfactory`
/// names a Java class and is ignored: augur verifies as `sslmode` says.
fn tls(r: &mut Reader<'_>) -> PgTls {
    let get = |k: &str| r.props.get(&format!("database.{k}")).map(str::to_string);
    match PgTls::from_params(get) {
        Ok(t) => t,
        Err((k, why)) => {
            let key = format!("database.{k}");
            let value = if k == "sslpassword" {
                ""
            } else {
                r.str(&key).unwrap_or("")
            };
            r.errors.push(err(&key, value, &why));
            PgTls::default()
        }
    }
}

/// The slot, the publication and the snapshot mode.
fn slot_and_publication(r: &mut Reader<'_>, source: &mut SourceConfig, warnings: &mut Vec<String>) {
    if let Some(slot) = r.str("slot.name") {
        if slot.is_empty()
            || slot.len() > 63
            || !slot
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            r.errors.push(err("slot.name", slot, "Valid replication slot name must contain only digits, lowercase characters and underscores with length <= 63"));
        }
        source.slot_name = slot.to_string();
    }
    if let Some(p) = r.str("publication.name") {
        source.publication_name = p.to_string();
    }
    source.publication_autocreate = r.parse(
        "publication.autocreate.mode",
        PublicationAutocreate::AllTables,
        PublicationAutocreate::parse,
        "Value must be one of no_tables, filtered, disabled, all_tables",
    );
    source.snapshot_mode = r.parse(
        "snapshot.mode",
        SnapshotMode::Initial,
        SnapshotMode::parse,
        "Value must be one of always, initial_only, when_needed, initial, no_data (or never, its pre-2.6 name)",
    );
    if r.str("snapshot.mode") == Some("never") {
        warnings.push("snapshot.mode=never is the pre-2.6 name of no_data; using no_data".into());
    }
}

/// The schema and table include/exclude lists (and their pre-1.3 names).
fn table_filter(r: &mut Reader<'_>) -> TableFilter {
    let tables = TableFilter {
        schema_include: r.regexes(&["schema.include.list", "schema.whitelist"]),
        schema_exclude: r.regexes(&["schema.exclude.list", "schema.blacklist"]),
        table_include: r.regexes(&["table.include.list", "table.whitelist"]),
        table_exclude: r.regexes(&["table.exclude.list", "table.blacklist"]),
    };
    if r.str("table.include.list").is_some() && r.str("table.exclude.list").is_some() {
        r.errors.push(ConfigError {
            key: "table.exclude.list".into(),
            message: "\"table.include.list\" is already specified; table.exclude.list cannot be used with it".into(),
        });
    }
    tables
}

/// The source signalling channel and incremental snapshots (`signal.data.collection`).
fn signals(r: &mut Reader<'_>, warnings: &mut Vec<String>) -> Option<SignalConfig> {
    let channels = r.str("signal.enabled.channels").unwrap_or("source");
    let others: Vec<&str> = channels
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != "source")
        .collect();
    if !others.is_empty() {
        warnings.push(format!(
            "signal.enabled.channels: only the source channel (the signal table) is implemented; {} ignored",
            others.join(", ")
        ));
    }
    let insert_delete = r.parse(
        "incremental.snapshot.watermarking.strategy",
        false,
        |v| match v.trim().to_ascii_lowercase().as_str() {
            "insert_insert" => Some(false),
            "insert_delete" => Some(true),
            _ => None,
        },
        "Value must be one of insert_insert, insert_delete",
    );
    let chunk_size = r.u64("incremental.snapshot.chunk.size", 1024).max(1) as usize;
    let name = r.str("signal.data.collection")?.trim();
    let Some((schema, table)) = name
        .split_once('.')
        .filter(|(s, t)| !s.is_empty() && !t.is_empty())
    else {
        r.errors.push(err(
            "signal.data.collection",
            name,
            "expected <schema>.<table>",
        ));
        return None;
    };
    (channels.split(',').any(|c| c.trim() == "source")).then(|| SignalConfig {
        schema: schema.to_string(),
        table: table.to_string(),
        chunk_size,
        insert_delete,
    })
}

/// Skipped operations, heartbeats, batch and queue sizes, slot and restart retries.
fn limits_and_retries(r: &mut Reader<'_>, source: &mut SourceConfig) {
    source.skipped = r.parse(
        "skipped.operations",
        SkippedOperations::default(),
        |v| SkippedOperations::parse(v).ok(),
        "Invalid operation",
    );
    let hb = r.u64("heartbeat.interval.ms", 0);
    source.heartbeat_interval = (hb > 0).then(|| Duration::from_millis(hb));
    source.status_interval =
        Duration::from_millis(r.u64("status.update.interval.ms", 1000).max(10));
    source.max_batch_size = r.u64("max.batch.size", 2048).max(1) as usize;
    source.max_queue_size = r.u64("max.queue.size", 8192).max(1) as usize;
    if source.max_queue_size <= source.max_batch_size {
        let v = source.max_queue_size.to_string();
        r.errors.push(err(
            "max.queue.size",
            &v,
            "must be larger than max.batch.size",
        ));
    }
    source.slot_max_retries = r.u64("slot.max.retries", 6) as u32;
    source.slot_retry_delay = Duration::from_millis(r.u64("slot.retry.delay.ms", 10_000));
    source.slot_drop_on_stop = r.bool("slot.drop.on.stop", false);
    let retries: i64 = r.parse(
        "errors.max.retries",
        -1,
        |v| v.parse().ok().filter(|n: &i64| *n >= -1),
        "An integer of -1 (no limit) or more is expected",
    );
    source.max_retries = u32::try_from(retries).ok();
    source.retry_wait =
        Duration::from_millis(r.u64("retriable.restart.connector.wait.ms", 10_000).max(1));
}

/// The event shape: converters, tombstones, headers, heartbeat topics.
fn envelope(r: &mut Reader<'_>, prefix: String, dbname: String) -> EnvelopeConfig {
    let mut envelope = EnvelopeConfig::new(prefix, dbname);
    let both = r.bool("converter.schemas.enable", true);
    let key_schemas = r.bool("key.converter.schemas.enable", both);
    let value_schemas = r.bool("value.converter.schemas.enable", both);
    envelope.key_converter = ConverterConfig {
        schemas_enable: key_schemas,
        replace_null_with_default: r.bool("key.converter.replace.null.with.default", true),
    };
    envelope.value_converter = ConverterConfig {
        schemas_enable: value_schemas,
        replace_null_with_default: r.bool("value.converter.replace.null.with.default", true),
    };
    for key in ["key.converter", "value.converter"] {
        if let Some(c) = r.str(key)
            && c != "org.apache.kafka.connect.json.JsonConverter"
        {
            r.errors.push(err(
                key,
                c,
                "augur writes org.apache.kafka.connect.json.JsonConverter output only",
            ));
        }
    }
    envelope.tombstones_on_delete = r.bool("tombstones.on.delete", true);
    envelope.extended_headers = r.bool("extended.headers.enabled", true);
    if let Some(p) = r.str("topic.heartbeat.prefix") {
        envelope.heartbeat_topic_prefix = p.to_string();
    }

    envelope
}

/// `transforms`: ExtractNewRecordState is supported, others are refused. Returns the
/// transform's keys (known to the connector, so not "unknown").
fn transforms(
    r: &mut Reader<'_>,
    envelope: &mut EnvelopeConfig,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let props = r.props;
    let mut transform_keys: Vec<String> = Vec::new();
    if let Some(list) = r.str("transforms").map(str::to_string) {
        let names: Vec<String> = list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if names.len() > 1 {
            r.errors.push(err(
                "transforms",
                &list,
                "augur supports one transform, io.debezium.transforms.ExtractNewRecordState",
            ));
        }
        for name in names.iter().take(1) {
            let p = |k: &str| format!("transforms.{name}.{k}");
            let type_key = p("type");
            transform_keys.extend(
                props
                    .0
                    .keys()
                    .filter(|k| k.starts_with(&format!("transforms.{name}.")))
                    .cloned(),
            );
            match r.str(&type_key) {
                Some(EXTRACT_NEW_RECORD_STATE) => {}
                Some(other) => {
                    let other = other.to_string();
                    r.errors.push(err(
                        &type_key,
                        &other,
                        "augur supports io.debezium.transforms.ExtractNewRecordState only",
                    ));
                    continue;
                }
                None => {
                    r.errors.push(missing(&type_key));
                    continue;
                }
            }
            envelope.unwrap = Some(unwrap_config(r, name, warnings));
        }
    }

    transform_keys
}

/// The ExtractNewRecordState options of transform `name`.
fn unwrap_config(r: &mut Reader<'_>, name: &str, warnings: &mut Vec<String>) -> UnwrapConfig {
    let props = r.props;
    let p = |k: &str| format!("transforms.{name}.{k}");
    let mut u = UnwrapConfig::default();
    if let Some(mode) = r
        .str(&p("delete.tombstone.handling.mode"))
        .map(str::to_string)
    {
        match DeleteTombstoneHandling::parse(&mode) {
            Some(m) => u.delete_handling = m,
            None => r.errors.push(err(&p("delete.tombstone.handling.mode"), &mode,
                "The value must be one of tombstone, drop, rewrite, rewrite-with-tombstone, delete-to-tombstone")),
        }
    } else if r.str(&p("delete.handling.mode")).is_some() || r.str(&p("drop.tombstones")).is_some()
    {
        let dh = r
            .str(&p("delete.handling.mode"))
            .unwrap_or("drop")
            .to_string();
        let dt = r.bool(&p("drop.tombstones"), true);
        match DeleteTombstoneHandling::from_legacy(&dh, dt) {
            Some(m) => u.delete_handling = m,
            None => r.errors.push(err(
                &p("delete.handling.mode"),
                &dh,
                "The value must be one of drop, none, rewrite",
            )),
        }
    }
    if let Some(f) = added(r, name, "add.fields") {
        u.add_fields = f;
    }
    if let Some(f) = added(r, name, "add.headers") {
        u.add_headers = f;
    }
    for k in props
        .0
        .keys()
        .filter(|k| k.starts_with(&format!("transforms.{name}.")))
    {
        let opt = &k[format!("transforms.{name}.").len()..];
        if !matches!(
            opt,
            "type"
                | "delete.tombstone.handling.mode"
                | "delete.handling.mode"
                | "drop.tombstones"
                | "add.fields"
                | "add.fields.prefix"
                | "add.headers"
                | "add.headers.prefix"
        ) {
            warnings.push(format!(
                "transform option {k} is not supported by augur and is ignored"
            ));
        }
    }
    u
}

/// Transform `name`'s `option` (`add.fields` or `add.headers`), named with its `.prefix`.
fn added(r: &mut Reader<'_>, name: &str, option: &str) -> Option<Vec<unwrap::AddedField>> {
    let key = format!("transforms.{name}.{option}");
    let list = r.str(&key)?;
    let prefix = r.props.get(&format!("{key}.prefix")).unwrap_or("__");
    match unwrap::parse_added(list, prefix) {
        Ok(f) => Some(f),
        Err(bad) => {
            r.errors
                .push(err(&key, list, &format!("unknown field {bad}")));
            None
        }
    }
}

/// Keys neither augur nor the transform knows are warned about, as Debezium does.
fn warn_unknown_keys(props: &Props, transform_keys: &[String], warnings: &mut Vec<String>) {
    for key in props.0.keys() {
        let k = key.as_str();
        if KNOWN.contains(&k)
            || transform_keys.iter().any(|t| t == k)
            || super::columns::is_column_key(k)
        {
            continue;
        }
        if ACCEPTED_IGNORED.contains(&k)
            || k.starts_with("producer.override.")
            || k.starts_with("consumer.override.")
            || k.starts_with("topic.creation.")
            || k.starts_with("errors.")
            || k.starts_with("database.ssl")
        {
            continue;
        }
        warnings.push(format!("unknown configuration key \"{k}\" is ignored"));
    }
}

/// The value-conversion options (`decimal.handling.mode`, `time.precision.mode`, …).
fn type_options(r: &mut Reader<'_>, props: &Props) -> TypeOptions {
    let decimal = r.parse(
        "decimal.handling.mode",
        DecimalHandling::Precise,
        |v| match v {
            "precise" => Some(DecimalHandling::Precise),
            "double" => Some(DecimalHandling::Double),
            "string" => Some(DecimalHandling::String),
            _ => None,
        },
        "Value must be one of string, double, precise",
    );
    let time = r.parse(
        "time.precision.mode",
        TimePrecision::Adaptive,
        |v| match v {
            "adaptive" => Some(TimePrecision::Adaptive),
            "adaptive_time_microseconds" => Some(TimePrecision::AdaptiveTimeMicroseconds),
            "connect" => Some(TimePrecision::Connect),
            _ => None,
        },
        "Value must be one of adaptive, adaptive_time_microseconds, connect",
    );
    let binary = r.parse(
        "binary.handling.mode",
        BinaryHandling::Bytes,
        |v| match v {
            "bytes" => Some(BinaryHandling::Bytes),
            "base64" => Some(BinaryHandling::Base64),
            "base64-url-safe" => Some(BinaryHandling::Base64UrlSafe),
            "hex" => Some(BinaryHandling::Hex),
            _ => None,
        },
        "Value must be one of bytes, base64, base64-url-safe, hex",
    );
    let interval = r.parse(
        "interval.handling.mode",
        IntervalHandling::Numeric,
        |v| match v {
            "numeric" => Some(IntervalHandling::Numeric),
            "string" => Some(IntervalHandling::String),
            _ => None,
        },
        "Value must be one of numeric, string",
    );
    let hstore_map = r.parse(
        "hstore.handling.mode",
        false,
        |v| match v {
            "json" => Some(false),
            "map" => Some(true),
            _ => None,
        },
        "Value must be one of json, map",
    );
    let defaults = TypeOptions::default();
    TypeOptions {
        hstore_map,
        decimal,
        time,
        binary,
        interval,
        include_unknown: r.bool("include.unknown.datatypes", false),
        unavailable_placeholder: props
            .get("unavailable.value.placeholder")
            .map_or(defaults.unavailable_placeholder.clone(), str::to_string),
        money_fraction_digits: r.u64("money.fraction.digits", 2) as u32,
        columns: super::columns::column_rules(props, &mut r.errors),
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Props {
        let mut p = Props::new();
        for (k, v) in [
            ("connector.class", POSTGRES_CONNECTOR),
            ("database.hostname", "127.0.0.1"),
            ("database.port", "5432"),
            ("database.user", "postgres"),
            ("database.password", "secret-pw"),
            ("database.dbname", "cars"),
            ("database.server.name", "car_database"),
            ("plugin.name", "pgoutput"),
        ] {
            p.set(k, v);
        }
        p
    }

    #[test]
    fn reads_the_2022_era_config() {
        let mut p = base();
        p.set("transforms", "unwrap");
        p.set("transforms.unwrap.type", EXTRACT_NEW_RECORD_STATE);
        p.set("transforms.unwrap.drop.tombstones", "false");
        p.set("snapshot.mode", "never");
        let (c, warnings) = CaptureConfig::from_props(&p).unwrap();
        assert_eq!(c.envelope.topic_prefix, "car_database");
        assert_eq!(c.source.snapshot_mode, SnapshotMode::NoData);
        assert_eq!(
            c.envelope.unwrap.as_ref().unwrap().delete_handling,
            DeleteTombstoneHandling::Tombstone
        );
        assert!(warnings.iter().any(|w| w.contains("never")));
        assert!(
            !format!("{c:?}").contains("secret-pw"),
            "password must not print"
        );
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut p = base();
        p.set("snapshot.mode", "sometimes");
        p.set("database.port", "port");
        p.set("tombstones.on.delete", "maybe");
        p.set("bogus.key", "x");
        let e = CaptureConfig::from_props(&p).unwrap_err();
        let keys: Vec<_> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["database.port", "snapshot.mode", "tombstones.on.delete"]
        );
        assert!(
            e.0[1]
                .message
                .starts_with("The 'snapshot.mode' value is invalid: Value must be one of")
        );
    }

    #[test]
    fn tls_settings_follow_libpq_and_bad_ones_are_named() {
        use augur_postgres::tls::{RootCert, SslMode};
        let mut p = base();
        p.set("database.sslmode", "verify-full");
        p.set("database.sslrootcert", "/etc/ca.pem");
        p.set("database.sslcert", "/etc/c.pem");
        p.set("database.sslkey", "/etc/k.pem");
        p.set(
            "database.sslfactory",
            "org.postgresql.ssl.NonValidatingFactory",
        );
        let (c, w) = CaptureConfig::from_props(&p).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("database.sslfactory"), "{w:?}");
        let tls = &c.source.connect.tls;
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, RootCert::File("/etc/ca.pem".into()));
        assert_eq!(
            CaptureConfig::from_props(&base())
                .unwrap()
                .0
                .source
                .connect
                .tls
                .mode,
            SslMode::Prefer
        );
        for (k, v, says) in [
            ("database.sslmode", "verify_full", "not one of"),
            ("database.sslkey", "/k.pem", "together"),
        ] {
            let mut p = base();
            p.set(k, v);
            let e = CaptureConfig::from_props(&p).unwrap_err();
            assert_eq!(e.0.len(), 1);
            // The key missing its partner is named: sslkey alone names sslcert.
            let named = if k == "database.sslkey" {
                "database.sslcert"
            } else {
                k
            };
            assert_eq!(e.0[0].key, named);
            assert!(e.0[0].message.contains(says), "{}", e.0[0].message);
        }
    }

    #[test]
    fn missing_required_keys_are_errors_and_unknown_keys_warnings() {
        let mut p = Props::new();
        p.set("connector.class", POSTGRES_CONNECTOR);
        let e = CaptureConfig::from_props(&p).unwrap_err();
        assert!(e.0.iter().any(|e| e.key == "topic.prefix"));
        let mut p = base();
        p.set("some.unknown", "1");
        let (_, w) = CaptureConfig::from_props(&p).unwrap();
        assert_eq!(
            w,
            vec!["unknown configuration key \"some.unknown\" is ignored".to_string()]
        );
    }
}
