//! `augur run`'s configuration: an `augur.toml` file, overridden by `AUGUR_*` environment
//! variables (`AUGUR_SOURCE__URL` → `source.url`: `__` separates sections) and then by flags.
//! Validated into [`RunConfig`] without I/O.

use std::net::SocketAddr;

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
    /// `kafka.bootstrap`: run the stages over Kafka instead of in-process queues.
    pub kafka: Option<String>,
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

[http]
listen = "127.0.0.1:9187"       # /metrics, /healthz, /readyz ("" turns it off)

[kafka]
bootstrap = ""                  # set to run the stages over a Kafka cluster instead
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
    /// Reads a flattened config (defaults filled in for missing keys).
    pub fn from_props(props: &Props) -> Result<(RunConfig, Vec<String>), ConfigErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let get = |k: &str| props.get(k).filter(|v| !v.is_empty());

        // The capture source: short names, plus any Debezium property under `source.`.
        let url = get("source.url").unwrap_or("postgres://postgres:postgres@127.0.0.1:5432/cars");
        let connect = match PgConnect::from_url(url) {
            Ok(c) => c,
            Err(e) => {
                errors.push(err(
                    "source.url",
                    format!(
                        "Invalid value {} for configuration source.url: {}",
                        PgConnect::redact_url(url),
                        e.full_message()
                    ),
                ));
                PgConnect::new("127.0.0.1", 5432, "postgres", "", "postgres")
            }
        };
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
        source.set(
            "table.include.list",
            get("source.tables").unwrap_or("public.car_data"),
        );
        source.set("slot.name", get("source.slot").unwrap_or("augur"));
        source.set(
            "publication.name",
            get("source.publication").unwrap_or("augur"),
        );
        source.set("publication.autocreate.mode", "filtered");
        source.set("snapshot.mode", get("source.snapshot").unwrap_or("initial"));
        // The predicted table follows every change of the source, truncates included.
        source.set("skipped.operations", "none");
        source.set(
            "max.batch.size",
            get("pipeline.batch_size").unwrap_or("1024"),
        );
        source.set(
            "max.queue.size",
            get("pipeline.max_queue_events").unwrap_or("8192"),
        );
        for (k, v) in &props.0 {
            if let Some(rest) = k.strip_prefix("source.")
                && !matches!(rest, "url" | "tables" | "slot" | "publication" | "snapshot")
            {
                source.set(rest, v.clone());
            }
        }
        let capture = match CaptureConfig::from_props(&source) {
            Ok((c, w)) => {
                warnings.extend(w.into_iter().map(|w| format!("source: {w}")));
                Some(c)
            }
            Err(e) => {
                // Name the key the user wrote: augur's short name where it stands for the
                // Debezium property, else `source.<property>`.
                let short = [
                    ("table.include.list", "source.tables"),
                    ("slot.name", "source.slot"),
                    ("publication.name", "source.publication"),
                    ("snapshot.mode", "source.snapshot"),
                    ("max.batch.size", "pipeline.batch_size"),
                    ("max.queue.size", "pipeline.max_queue_events"),
                ];
                errors.extend(e.0.into_iter().map(|mut e| {
                    let direct = props.get(&format!("source.{}", e.key)).is_some();
                    match short.iter().find(|(deb, _)| *deb == e.key) {
                        Some((deb, mine)) if !direct => {
                            e.message =
                                e.message.replace(&format!("'{deb}'"), &format!("'{mine}'"));
                            e.key = (*mine).to_string();
                        }
                        _ => e.key = format!("source.{}", e.key),
                    }
                    e
                }));
                None
            }
        };

        let output_type = match get("output.type") {
            None => OutputType::Double,
            Some(t) => OutputType::parse(t).unwrap_or_else(|| {
                errors.push(err("output.type", format!("Invalid value {t} for configuration output.type: must be one of double, float, int32, int64")));
                OutputType::Double
            }),
        };
        let mut mapping = std::collections::HashMap::new();
        if let Some(m) = get("model.mapping") {
            for pair in m.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match pair.split_once('=') {
                    Some((a, b)) => {
                        mapping.insert(a.trim().to_ascii_lowercase(), b.trim().to_string());
                    }
                    None => errors.push(err("model.mapping", format!("Invalid value {m} for configuration model.mapping: expected input=column pairs"))),
                }
            }
        }
        let model = ModelSettings {
            tag: get("model.tag").unwrap_or("ford-price:latest").to_string(),
            store: get("model.store").map(std::path::PathBuf::from),
            output_field: get("output.column").unwrap_or("suggestedprice").to_string(),
            output_type,
            mapping,
            remote: None,
        };
        let output = match get("output.mode").unwrap_or("table") {
            "table" => OutputMode::Table(
                get("output.table")
                    .unwrap_or("${table}_predicted")
                    .to_string(),
            ),
            "column" => OutputMode::Column,
            other => {
                errors.push(err("output.mode", format!("Invalid value {other} for configuration output.mode: must be table or column")));
                OutputMode::Table("${table}_predicted".into())
            }
        };
        if output == OutputMode::Column && get("kafka.bootstrap").is_some() {
            errors.push(err(
                "output.mode",
                "output.mode = \"column\" is not available over Kafka (kafka.bootstrap is set): use output.mode = \"table\", or run without kafka.bootstrap".into(),
            ));
        }
        let sink_connect = match get("output.url") {
            None => Some(connect.clone()),
            Some(u) => match PgConnect::from_url(u) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(err(
                        "output.url",
                        format!(
                            "Invalid value {} for configuration output.url: {}",
                            PgConnect::redact_url(u),
                            e.full_message()
                        ),
                    ));
                    None
                }
            },
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
        let queue_batches = match get("pipeline.queue").unwrap_or("4").parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                errors.push(err(
                    "pipeline.queue",
                    "Invalid value for configuration pipeline.queue: expected a positive integer"
                        .into(),
                ));
                4
            }
        };
        let listen = match props.get("http.listen") {
            None => Some("127.0.0.1:9187".parse().expect("valid default")),
            Some("") => None,
            Some(a) => {
                match a.parse::<SocketAddr>() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        errors.push(err("http.listen", format!("Invalid value {a} for configuration http.listen: expected host:port")));
                        None
                    }
                }
            }
        };
        let known = [
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
            "kafka.bootstrap",
        ];
        // augur's own keys are checked (a typo is an error with a suggestion); Debezium
        // properties under `source.` are checked by the capture, which warns as Debezium does.
        for k in props.0.keys() {
            if !known.contains(&k.as_str()) && !k.starts_with("source.") {
                errors.push(err(k, unknown_key(k, &known)));
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let mut capture = capture.expect("no errors means the source parsed");
        // Predictions in their own table: a redone snapshot first empties that table, so
        // rows deleted since an interrupted snapshot do not linger there (over Kafka the
        // truncate travels through the topics in order with the rows).
        capture.source.snapshot_truncates = matches!(output, OutputMode::Table(_));
        Ok((
            RunConfig {
                capture,
                model,
                output,
                sink,
                dead_letter_table: get("pipeline.dead_letter_table")
                    .unwrap_or("augur_dead_letter")
                    .to_string(),
                queue_batches,
                listen,
                kafka: get("kafka.bootstrap").map(str::to_string),
            },
            warnings,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("postgres://u:s3cret@db:5432/cars?sslmode=require", "TLS"),
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
