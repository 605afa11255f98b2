//! `augur run`'s configuration: an `augur.toml` file, overridden by `AUGUR_*` environment
//! variables (`AUGUR_SOURCE__URL` → `source.url`: `__` separates sections) and then by flags.
//! Validated into [`RunConfig`] without I/O.

use std::net::SocketAddr;

use augur_kafka::security::ClientSettings;
use augur_postgres::conn::PgConnect;
use augur_postgres::sink::config::{Flavor, InsertMode, PkMode, SinkConfig};

use crate::capture::config::{CaptureConfig, ConfigError, ConfigErrors};
use crate::enrich::ModelSettings;
use crate::predict::OutputType;
use crate::props::Props;

/// Where predictions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputMode {
    /// A predictions table per source table: every source column plus the output column,
    /// keyed like the source (the original `car_data` → `car_data_predicted`). The name may
    /// use `${table}` and `${schema}`.
    Table(String),
    /// Write the prediction back into the source table's own output column (which must
    /// exist). Only rows whose value changes are touched, so the write does not trigger itself.
    Column,
}

/// The validated `augur run` configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The capture source (Debezium properties under `source.`).
    pub capture: CaptureConfig,
    /// The model and the output column.
    pub model: ModelSettings,
    /// Table or column output.
    pub output: OutputMode,
    /// The sink (`output.url`, default: the source database).
    pub sink: SinkConfig,
    /// `pipeline.dead_letter_table` (default `augur_dead_letter`).
    pub dead_letter_table: String,
    /// `pipeline.queue`: batches buffered between stages.
    pub queue_batches: usize,
    /// `http.listen`: where `/metrics`, `/healthz` and `/readyz` are served (empty: off).
    pub listen: Option<SocketAddr>,
    /// `http.tls_cert` and `http.tls_key`: serve them over HTTPS (PEM files, read at start).
    pub http_tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// `kafka.bootstrap`: run the stages over Kafka instead of in-process queues.
    pub kafka: Option<String>,
    /// Every other `kafka.*` key: Kafka client settings (`kafka.security.protocol`,
    /// `kafka.sasl.jaas.config`, `kafka.ssl.ca.location`, `kafka.producer.linger.ms`, …).
    pub kafka_client: ClientSettings,
}

/// The documented default config, as written by `augur run --print-config`.
pub const DEFAULT_TOML: &str = r#"# augur run: capture → predict → write back, in one process.
[source]
url = "postgres://postgres:postgres@127.0.0.1:5432/cars"   # or DATABASE_URL / AUGUR_SOURCE__URL
tables = "public.car_data"      # table.include.list
slot = "augur"                  # slot.name
publication = "augur"           # publication.name
snapshot = "initial"            # snapshot.mode
# Any Debezium PostgreSQL connector property can be set here too, e.g.
# "decimal.handling.mode" = "double"

[model]
tag = "ford-price:latest"       # the user's store, else the model compiled into augur
# store = "/path/to/store"
# mapping = "engineSize=engine_size,fuelType=fuel"   # model input=column, when names differ

[output]
mode = "table"                  # "table": a predictions table; "column": write back into the source table
table = "${table}_predicted"    # for mode = "table"
column = "suggestedprice"       # the prediction's column
type = "double"                 # its type when the column does not exist yet
# url = "postgres://…"          # another database for the output (default: the source database)

[pipeline]
dead_letter_table = "augur_dead_letter"
queue = 4                       # batches buffered between stages (bounded)
batch_size = 1024               # events per batch
max_queue_events = 8192         # changes the capture buffers (max.queue.size)

[http]
listen = "127.0.0.1:9187"       # /metrics, /healthz, /readyz ("" turns it off)
# tls_cert = "/etc/augur/tls.crt"  # HTTPS for them: a PEM certificate chain …
# tls_key = "/etc/augur/tls.key"   # … and its PEM private key

[kafka]
bootstrap = ""                  # set to run the stages over a Kafka cluster instead
# Any other key here is a Kafka client setting, Java's or librdkafka's name, e.g.
# security.protocol = "SASL_SSL", sasl.mechanism = "SCRAM-SHA-512",
# sasl.jaas.config = "${file:/etc/augur/kafka.properties:jaas}", ssl.ca.location = "/etc/ssl/ca.pem"
"#;

/// "unknown configuration key" with the closest known key, when one is close.
fn unknown_key(key: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), *k))
        .min()
        .filter(|(d, k)| *d <= 3.max(k.len() / 4));
    match closest {
        Some((_, k)) => format!("unknown configuration key \"{key}\"; did you mean \"{k}\"?"),
        None => format!(
            "unknown configuration key \"{key}\" (augur's keys: {})",
            known.join(", ")
        ),
    }
}

fn err(key: &str, message: String) -> ConfigError {
    ConfigError {
        key: key.into(),
        message,
    }
}

/// Applies `AUGUR_*` environment variables to `props` (`AUGUR_OUTPUT__MODE=column` →
/// `output.mode`). `AUGUR_LOG` and `AUGUR_HOME`-style single-word variables are not config.
pub fn apply_env(props: &mut Props, vars: impl Iterator<Item = (String, String)>) {
    for (k, v) in vars {
        let Some(rest) = k.strip_prefix("AUGUR_") else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        props.set(rest.to_ascii_lowercase().replace("__", "."), v);
    }
}

impl RunConfig {
    /// Reads a flattened config (defaults filled in for missing keys), its `${file:…}`,
    /// `${directory:…}` and `${env:…}` references resolved; an error quotes the reference,
    /// never the value it resolved to.
    pub fn from_props(raw: &Props) -> Result<(RunConfig, Vec<String>), ConfigErrors> {
        let resolved = Props(crate::providers::resolve(&raw.0).map_err(ConfigErrors)?);
        Self::from_resolved(&resolved).map_err(|ConfigErrors(errors)| {
            ConfigErrors(
                errors
                    .into_iter()
                    .map(|mut e| {
                        e.message = crate::providers::hide(&e.message, &raw.0, &resolved.0);
                        e
                    })
                    .collect(),
            )
        })
    }

    fn from_resolved(props: &Props) -> Result<(RunConfig, Vec<String>), ConfigErrors> {
        let mut r = Sections {
            props,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let connect = r.source_connect();
        let capture = r.capture(&connect);
        let model = r.model();
        let output = r.output_mode();
        let sink = r.sink(&connect, &output);
        let queue_batches = r.queue();
        let listen = r.listen();
        let http_tls = r.http_tls();
        let kafka_client = r.kafka_client();
        r.unknown_keys();
        if !r.errors.is_empty() {
            return Err(ConfigErrors(r.errors));
        }
        let mut capture = capture.expect("no errors means the source parsed");
        // Predictions in their own table: a redone snapshot first empties that table, so
        // rows deleted since an interrupted snapshot do not linger there (over Kafka the
        // truncate travels through the topics in order with the rows).
        capture.source.snapshot_truncates = matches!(output, OutputMode::Table(_));
        // The signal table's rows are the source's business, not listings to price.
        capture.source.emit_signal_rows = false;
        let cfg = RunConfig {
            capture,
            model,
            output,
            sink,
            dead_letter_table: r.value("pipeline.dead_letter_table").to_string(),
            queue_batches,
            listen,
            http_tls,
            kafka: r.get("kafka.bootstrap").map(str::to_string),
            kafka_client,
        };
        Ok((cfg, r.warnings))
    }
}

/// Every default of `augur run`, by key — the one place they are decided. [`DEFAULT_TOML`]
/// prints them (a test keeps the two equal); a key without a default is unset by default.
pub const DEFAULTS: [(&str, &str); 15] = [
    (
        "source.url",
        "postgres://postgres:postgres@127.0.0.1:5432/cars",
    ),
    ("source.tables", "public.car_data"),
    ("source.slot", "augur"),
    ("source.publication", "augur"),
    ("source.snapshot", "initial"),
    ("model.tag", augur_model::SHIPPED_MODEL),
    ("output.mode", "table"),
    ("output.table", "${table}_predicted"),
    ("output.column", "suggestedprice"),
    ("output.type", "double"),
    ("pipeline.dead_letter_table", "augur_dead_letter"),
    ("pipeline.queue", "4"),
    ("pipeline.batch_size", "1024"),
    ("pipeline.max_queue_events", "8192"),
    ("http.listen", "127.0.0.1:9187"),
];

/// The default of `key` ([`DEFAULTS`]); `""` for a key without one.
fn default_of(key: &str) -> &'static str {
    DEFAULTS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| v)
}

/// augur's own keys; anything else outside `[source]` is a typo.
const KNOWN_KEYS: [&str; 21] = [
    "source.url",
    "source.tables",
    "source.slot",
    "source.publication",
    "source.snapshot",
    "model.tag",
    "model.store",
    "model.mapping",
    "output.mode",
    "output.table",
    "output.column",
    "output.type",
    "output.url",
    "pipeline.dead_letter_table",
    "pipeline.queue",
    "pipeline.batch_size",
    "pipeline.max_queue_events",
    "http.listen",
    "http.tls_cert",
    "http.tls_key",
    "kafka.bootstrap",
];

/// Debezium properties augur's short keys stand for, to name the key the user wrote.
const SHORT_KEYS: [(&str, &str); 6] = [
    ("table.include.list", "source.tables"),
    ("slot.name", "source.slot"),
    ("publication.name", "source.publication"),
    ("snapshot.mode", "source.snapshot"),
    ("max.batch.size", "pipeline.batch_size"),
    ("max.queue.size", "pipeline.max_queue_events"),
];

/// Reads the config one section at a time, collecting every error.
struct Sections<'a> {
    props: &'a Props,
    errors: Vec<ConfigError>,
    warnings: Vec<String>,
}

impl<'a> Sections<'a> {
    /// A key's value; empty counts as unset.
    fn get(&self, k: &str) -> Option<&'a str> {
        self.props.get(k).filter(|v| !v.is_empty())
    }

    /// A key's value, else its default.
    fn value(&self, k: &str) -> &'a str {
        self.get(k).unwrap_or(default_of(k))
    }

    fn error(&mut self, key: &str, message: String) {
        self.errors.push(err(key, message));
    }

    /// A `postgres://` URL under `key`; the error shows it with the password redacted.
    fn url(&mut self, key: &str, url: &str) -> Option<PgConnect> {
        match PgConnect::from_url(url) {
            Ok(c) => Some(c),
            Err(e) => {
                let shown = PgConnect::redact_url(url);
                let why = e.full_message();
                self.error(
                    key,
                    format!("Invalid value {shown} for configuration {key}: {why}"),
                );
                None
            }
        }
    }

    fn source_connect(&mut self) -> PgConnect {
        let url = self.value("source.url");
        self.url("source.url", url)
            .unwrap_or_else(|| PgConnect::new("127.0.0.1", 5432, "postgres", "", "postgres"))
    }

    /// `[source]`: augur's short names, plus any Debezium property under `source.`.
    fn capture(&mut self, connect: &PgConnect) -> Option<CaptureConfig> {
        let source = self.debezium_properties(connect);
        match CaptureConfig::from_props(&source) {
            Ok((mut c, w)) => {
                self.warnings
                    .extend(w.into_iter().map(|w| format!("source: {w}")));
                // TLS comes from `source.url` unless `source.database.ssl*` keys say otherwise.
                if !self
                    .props
                    .0
                    .keys()
                    .any(|k| k.starts_with("source.database.ssl"))
                {
                    c.source.connect.tls = connect.tls.clone();
                }
                Some(c)
            }
            Err(e) => {
                for mut e in e.0 {
                    // Name the key the user wrote: augur's short name where it stands for
                    // the Debezium property, else `source.<property>`.
                    let direct = self.props.get(&format!("source.{}", e.key)).is_some();
                    match SHORT_KEYS.iter().find(|(deb, _)| *deb == e.key) {
                        Some((deb, mine)) if !direct => {
                            e.message =
                                e.message.replace(&format!("'{deb}'"), &format!("'{mine}'"));
                            e.key = (*mine).to_string();
                        }
                        _ => e.key = format!("source.{}", e.key),
                    }
                    self.errors.push(e);
                }
                None
            }
        }
    }

    /// The Debezium connector properties `[source]` stands for.
    fn debezium_properties(&self, connect: &PgConnect) -> Props {
        let mut source = Props::new();
        source.set(
            "connector.class",
            crate::capture::config::POSTGRES_CONNECTOR,
        );
        source.set("name", "augur-run");
        source.set("topic.prefix", "augur");
        source.set("database.hostname", connect.host.clone());
        source.set("database.port", connect.port.to_string());
        source.set("database.user", connect.user.clone());
        source.set("database.password", connect.password.expose().to_string());
        source.set("database.dbname", connect.dbname.clone());
        source.set("table.include.list", self.value("source.tables"));
        source.set("slot.name", self.value("source.slot"));
        source.set("publication.name", self.value("source.publication"));
        source.set("publication.autocreate.mode", "filtered");
        source.set("snapshot.mode", self.value("source.snapshot"));
        // The predicted table follows every change of the source, truncates included.
        source.set("skipped.operations", "none");
        source.set("max.batch.size", self.value("pipeline.batch_size"));
        source.set("max.queue.size", self.value("pipeline.max_queue_events"));
        for (k, v) in &self.props.0 {
            if let Some(rest) = k.strip_prefix("source.")
                && !matches!(rest, "url" | "tables" | "slot" | "publication" | "snapshot")
            {
                source.set(rest, v.clone());
            }
        }
        source
    }

    /// `[model]` and the output column's name and type.
    fn model(&mut self) -> ModelSettings {
        let t = self.value("output.type");
        let output_type = OutputType::parse(t).unwrap_or_else(|| {
            self.error("output.type", format!("Invalid value {t} for configuration output.type: must be one of double, float, int32, int64"));
            OutputType::Double
        });
        let mut mapping = std::collections::HashMap::new();
        if let Some(m) = self.get("model.mapping") {
            for pair in m.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match pair.split_once('=') {
                    Some((a, b)) => {
                        mapping.insert(a.trim().to_ascii_lowercase(), b.trim().to_string());
                    }
                    None => self.error("model.mapping", format!("Invalid value {m} for configuration model.mapping: expected input=column pairs")),
                }
            }
        }
        ModelSettings {
            tag: self.value("model.tag").to_string(),
            store: self.get("model.store").map(std::path::PathBuf::from),
            output_field: self.value("output.column").to_string(),
            output_type,
            mapping,
            remote: None,
        }
    }

    fn output_mode(&mut self) -> OutputMode {
        let output = match self.value("output.mode") {
            "table" => OutputMode::Table(self.value("output.table").to_string()),
            "column" => OutputMode::Column,
            other => {
                self.error("output.mode", format!("Invalid value {other} for configuration output.mode: must be table or column"));
                OutputMode::Table(default_of("output.table").into())
            }
        };
        if output == OutputMode::Column && self.get("kafka.bootstrap").is_some() {
            self.error(
                "output.mode",
                "output.mode = \"column\" is not available over Kafka (kafka.bootstrap is set): use output.mode = \"table\", or run without kafka.bootstrap".into(),
            );
        }
        output
    }

    /// The JDBC-sink settings that make the output mode: upserts into a predictions table,
    /// or updates of the source row's column only.
    fn sink(&mut self, connect: &PgConnect, output: &OutputMode) -> SinkConfig {
        let sink_connect = match self.get("output.url") {
            None => None,
            Some(u) => self.url("output.url", u),
        };
        let mut sink = SinkConfig::new(sink_connect.unwrap_or_else(|| connect.clone()));
        sink.connect.application_name = "augur:run-sink".into();
        sink.flavor = Flavor::Confluent;
        sink.pk_mode = PkMode::RecordValue;
        sink.auto_create = true;
        sink.auto_evolve = true;
        sink.delete_enabled = true;
        sink.registry_table = Some("augur_output_tables".into());
        match output {
            OutputMode::Table(_) => sink.insert_mode = InsertMode::Upsert,
            OutputMode::Column => {
                sink.insert_mode = InsertMode::Update;
                sink.skip_unchanged = true;
                sink.auto_create = false;
                sink.auto_evolve = false;
            }
        }
        sink
    }

    fn queue(&mut self) -> usize {
        match self.value("pipeline.queue").parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                let msg =
                    "Invalid value for configuration pipeline.queue: expected a positive integer";
                self.error("pipeline.queue", msg.into());
                1
            }
        }
    }

    /// `http.listen`: the default address, `""` for off, or `host:port`.
    fn listen(&mut self) -> Option<SocketAddr> {
        match self.props.get("http.listen") {
            None => Some(default_of("http.listen").parse().expect("valid default")),
            Some("") => None,
            Some(a) => {
                match a.parse::<SocketAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        self.error("http.listen", format!("Invalid value {a} for configuration http.listen: expected host:port"));
                        None
                    }
                }
            }
        }
    }

    /// `http.tls_cert` and `http.tls_key`, which go together.
    fn http_tls(&mut self) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
        match (self.get("http.tls_cert"), self.get("http.tls_key")) {
            (Some(c), Some(k)) => Some((c.into(), k.into())),
            (None, None) => None,
            (c, _) => {
                let missing = if c.is_some() {
                    "http.tls_key"
                } else {
                    "http.tls_cert"
                };
                let msg = "http.tls_cert and http.tls_key go together".to_string();
                self.error(missing, msg);
                None
            }
        }
    }

    /// `kafka.*` other than `kafka.bootstrap`: Kafka client settings, checked here.
    fn kafka_client(&mut self) -> ClientSettings {
        let pairs: Vec<(String, String)> = self
            .props
            .0
            .iter()
            .filter(|(k, _)| *k != "kafka.bootstrap")
            .filter_map(|(k, v)| Some((k.strip_prefix("kafka.")?.to_string(), v.clone())))
            .collect();
        ClientSettings::new(pairs).unwrap_or_else(|e| {
            let key = format!("kafka.{}", e.key);
            self.error(
                &key.clone(),
                format!("Invalid value for configuration {key}: {}", e.message),
            );
            ClientSettings::default()
        })
    }

    /// augur's own keys are checked (a typo is an error with a suggestion); Debezium
    /// properties under `source.` are checked by the capture, which warns as Debezium does;
    /// `kafka.*` are Kafka client settings.
    fn unknown_keys(&mut self) {
        for k in self.props.0.keys() {
            if !KNOWN_KEYS.contains(&k.as_str())
                && !k.starts_with("source.")
                && !k.starts_with("kafka.")
            {
                self.errors.push(err(k, unknown_key(k, &KNOWN_KEYS)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_run_md_lists_every_key_with_its_default() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/run.md"))
                .unwrap();
        for k in KNOWN_KEYS {
            let default = match default_of(k) {
                "" => String::new(),
                d => format!("`{d}`"),
            };
            let row = format!("| `{k}` | {default}");
            assert!(doc.contains(&row), "docs/run.md has no row {row:?}");
        }
    }

    #[test]
    fn the_printed_default_is_the_default() {
        let printed = Props::from_toml_str(DEFAULT_TOML).unwrap();
        for (k, v) in &printed.0 {
            assert_eq!(v, default_of(k), "{k} in DEFAULT_TOML");
        }
        for (k, v) in DEFAULTS {
            assert!(KNOWN_KEYS.contains(&k), "{k}");
            assert_eq!(
                printed.get(k),
                Some(v),
                "{k} is not printed with its default"
            );
        }
        let (mut from_file, _) = RunConfig::from_props(&printed).unwrap();
        let (from_nothing, _) = RunConfig::from_props(&Props::new()).unwrap();
        // Each run has its own id.
        from_file.capture.envelope.run_id = from_nothing.capture.envelope.run_id.clone();
        assert_eq!(format!("{from_file:?}"), format!("{from_nothing:?}"));
    }

    #[test]
    fn the_default_file_reads_back_and_env_overrides() {
        let mut p = Props::from_toml_str(DEFAULT_TOML).unwrap();
        apply_env(
            &mut p,
            [
                ("AUGUR_OUTPUT__MODE".to_string(), "column".to_string()),
                ("AUGUR_LOG".into(), "debug".into()),
            ]
            .into_iter(),
        );
        let (c, w) = RunConfig::from_props(&p).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.output, OutputMode::Column);
        assert_eq!(c.capture.source.slot_name, "augur");
        assert_eq!(c.sink.insert_mode, InsertMode::Update);
        assert_eq!(c.listen, Some("127.0.0.1:9187".parse().unwrap()));
        p.set("output.mode", "sideways");
        p.set("source.snapshot.mode", "bogus");
        let e = RunConfig::from_props(&p).unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
        assert!(
            keys.contains(&"output.mode") && keys.contains(&"source.snapshot.mode"),
            "{keys:?}"
        );
    }

    #[test]
    fn a_mistyped_key_is_an_error_that_names_it_and_suggests_the_right_one() {
        let toml = format!("{DEFAULT_TOML}\n[outptu]\nmode = \"table\"\n");
        let mut p = Props::from_toml_str(&toml).unwrap();
        p.set("pipeline.batchsize", "10");
        p.set("zzz.qqq", "1");
        let e = RunConfig::from_props(&p).unwrap_err();
        let msg = |k: &str| {
            e.0.iter()
                .find(|e| e.key == k)
                .map(|e| e.message.clone())
                .unwrap_or_else(|| panic!("no error for {k}: {e:?}"))
        };
        assert!(msg("outptu.mode").contains("did you mean \"output.mode\""));
        assert!(msg("pipeline.batchsize").contains("did you mean \"pipeline.batch_size\""));
        assert!(msg("zzz.qqq").contains("augur's keys"));
    }

    #[test]
    fn a_bad_url_is_named_with_its_reason_and_never_its_password() {
        for (url, reason) in [
            (
                "postgres://u:s3cret@db:5432/cars?sslmode=requires",
                "sslmode",
            ),
            ("http://u:s3cret@db/cars", "invalid PostgreSQL URL"),
            (
                "postgres://u:s3cret@db:notaport/cars",
                "invalid PostgreSQL URL",
            ),
        ] {
            let mut p = Props::from_toml_str(DEFAULT_TOML).unwrap();
            p.set("source.url", url);
            p.set("output.url", url);
            let e = RunConfig::from_props(&p).unwrap_err();
            for key in ["source.url", "output.url"] {
                let m = &e.0.iter().find(|e| e.key == key).expect(key).message;
                assert!(m.contains(reason) && !m.contains("s3cret"), "{m}");
            }
        }
    }

    #[test]
    fn errors_name_augurs_key_not_the_debezium_property_behind_it() {
        let mut p = Props::from_toml_str(DEFAULT_TOML).unwrap();
        p.set("pipeline.batch_size", "abc");
        p.set("source.snapshot", "bogus");
        let e = RunConfig::from_props(&p).unwrap_err();
        for key in ["pipeline.batch_size", "source.snapshot"] {
            let m =
                &e.0.iter()
                    .find(|e| e.key == key)
                    .unwrap_or_else(|| panic!("{e:?}"))
                    .message;
            assert!(m.contains(&format!("'{key}'")), "{m}");
        }
    }

    #[test]
    fn column_output_over_kafka_is_refused_before_anything_connects() {
        let mut p = Props::from_toml_str(DEFAULT_TOML).unwrap();
        p.set("output.mode", "column");
        p.set("kafka.bootstrap", "127.0.0.1:9092");
        let e = RunConfig::from_props(&p).unwrap_err();
        assert!(
            e.0.iter()
                .any(|e| e.key == "output.mode" && e.message.contains("Kafka")),
            "{e:?}"
        );
    }
}
