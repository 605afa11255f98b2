//! The JDBC sink connector: a consumer group reads change records and writes them into
//! PostgreSQL with Kafka Connect JDBC-sink semantics, one transaction per batch, committing
//! offsets only after the transaction committed. Configured with the property names of
//! `io.confluent.connect.jdbc.JdbcSinkConnector` or `io.debezium.connector.jdbc.JdbcSinkConnector`.

pub mod record;

use std::time::Duration;

use augur_core::shutdown::Shutdown;
use augur_core::{Error, ErrorKind, Retry};
use augur_kafka::consumer::{Consumer, ConsumerSettings};
use augur_kafka::producer::{Producer, ProducerSettings};
use augur_postgres::conn::PgConnect;
use augur_postgres::sink::config::{Flavor, InsertMode, PkMode, SinkConfig};
use augur_postgres::sink::{Batch, DeadLetterOf, PgSink, Rejected, RowWrite};

use self::record::{RecordConverter, SinkRecord};
use crate::capture::config::{ConfigError, ConfigErrors};
use crate::props::Props;

/// The Confluent JDBC sink class.
pub const CONFLUENT_JDBC_SINK: &str = "io.confluent.connect.jdbc.JdbcSinkConnector";
/// The Debezium JDBC sink class.
pub const DEBEZIUM_JDBC_SINK: &str = "io.debezium.connector.jdbc.JdbcSinkConnector";

/// The sink connector's settings.
#[derive(Debug, Clone)]
pub struct SinkConnectorConfig {
    /// `name`.
    pub name: String,
    /// `topics` (or one `^regex` from `topics.regex`).
    pub topics: Vec<String>,
    /// The sink itself.
    pub sink: SinkConfig,
    /// `errors.tolerance=all`: records that cannot be written go to the dead-letter topic
    /// (or are logged and skipped without one) instead of stopping the connector.
    pub tolerate_errors: bool,
    /// `errors.deadletterqueue.topic.name`.
    pub dlq_topic: Option<String>,
}

fn err(key: &str, reason: &str) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: format!("Invalid value for configuration {key}: {reason}"),
    }
}

/// The parts of a `jdbc:postgresql://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JdbcUrl {
    /// Host name or address.
    pub host: String,
    /// Port (5432 when absent).
    pub port: u16,
    /// Database name.
    pub db: String,
    /// Query parameters (`user`, `password`, …) in order.
    pub params: Vec<(String, String)>,
}

/// Parses `jdbc:postgresql://host[:port]/db[?user=…&password=…]`.
pub fn parse_jdbc_url(url: &str) -> Option<JdbcUrl> {
    let rest = url.strip_prefix("jdbc:postgresql://")?;
    let (hostport, path) = rest.split_once('/')?;
    let (db, query) = path.split_once('?').unwrap_or((path, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 5432),
    };
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(JdbcUrl {
        host: host.to_string(),
        port,
        db: db.to_string(),
        params,
    })
}

impl SinkConnectorConfig {
    /// Reads a Confluent or Debezium JDBC sink config.
    pub fn from_props(props: &Props) -> Result<(SinkConnectorConfig, Vec<String>), ConfigErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let get = |k: &str| props.get(k).filter(|v| !v.is_empty());
        let class = get("connector.class").unwrap_or(CONFLUENT_JDBC_SINK);
        let flavor = match class {
            CONFLUENT_JDBC_SINK | "JdbcSinkConnector" => Flavor::Confluent,
            DEBEZIUM_JDBC_SINK => Flavor::Debezium,
            other => {
                errors.push(err(
                    "connector.class",
                    &format!("{other} is not a JDBC sink augur implements"),
                ));
                Flavor::Confluent
            }
        };
        let deb = flavor == Flavor::Debezium;
        let url = get("connection.url").unwrap_or("");
        let JdbcUrl {
            host,
            port,
            db,
            params,
        } = match parse_jdbc_url(url) {
            Some(v) => v,
            None => {
                errors.push(err(
                    "connection.url",
                    "expected jdbc:postgresql://host:port/database",
                ));
                JdbcUrl {
                    port: 5432,
                    ..JdbcUrl::default()
                }
            }
        };
        let param = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.clone())
        };
        let user = get("connection.user")
            .or(get("connection.username"))
            .map(str::to_string)
            .or(param("user"))
            .unwrap_or_else(|| "postgres".into());
        let password = props
            .get("connection.password")
            .map(str::to_string)
            .or(param("password"))
            .unwrap_or_default();
        // No TLS to PostgreSQL yet: a URL that demands it must not connect in clear text.
        let tls_demanded = param("ssl").is_some_and(|v| v == "true")
            || param("sslmode")
                .is_some_and(|v| matches!(v.as_str(), "require" | "verify-ca" | "verify-full"));
        if tls_demanded {
            errors.push(err(
                "connection.url",
                "augur does not speak TLS to PostgreSQL yet; drop ssl=true or use sslmode=disable, allow or prefer",
            ));
        }
        let mut connect = PgConnect::new(&host, port, &user, &password, &db);
        let name = get("name").unwrap_or("jdbc-sink").to_string();
        connect.application_name = format!("augur:{name}");
        let mut sink = SinkConfig::new(connect);
        sink.flavor = flavor;
        sink.insert_mode = match get("insert.mode")
            .unwrap_or("insert")
            .to_ascii_lowercase()
            .as_str()
        {
            "insert" => InsertMode::Insert,
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            other => {
                errors.push(err(
                    "insert.mode",
                    &format!("{other} is not one of insert, upsert, update"),
                ));
                InsertMode::Insert
            }
        };
        let pk_key = if get("primary.key.mode").is_some() {
            "primary.key.mode"
        } else {
            "pk.mode"
        };
        sink.pk_mode = match get(pk_key).unwrap_or("none").to_ascii_lowercase().as_str() {
            "none" => PkMode::None,
            "kafka" => PkMode::Kafka,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            other => {
                errors.push(err(
                    pk_key,
                    &format!("{other} is not one of none, kafka, record_key, record_value"),
                ));
                PkMode::None
            }
        };
        let fields = get("primary.key.fields").or(get("pk.fields")).unwrap_or("");
        sink.pk_fields = fields
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if sink.pk_mode == PkMode::RecordValue && sink.pk_fields.is_empty() {
            errors.push(err(
                "pk.fields",
                "pk.mode=record_value needs the primary key field names",
            ));
        }
        if sink.insert_mode != InsertMode::Insert && sink.pk_mode == PkMode::None {
            errors.push(err(
                "insert.mode",
                "upsert and update need a primary key (pk.mode)",
            ));
        }
        let bool_of = |k: &str, default: bool, errors: &mut Vec<ConfigError>| match get(k)
            .map(|v| v.to_ascii_lowercase())
        {
            None => default,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => {
                errors.push(err(k, &format!("{v} is not a boolean")));
                default
            }
        };
        sink.delete_enabled = bool_of("delete.enabled", false, &mut errors);
        sink.truncate_enabled = bool_of("truncate.enabled", false, &mut errors);
        if sink.delete_enabled && matches!(sink.pk_mode, PkMode::None | PkMode::Kafka) {
            errors.push(err(
                "delete.enabled",
                "deletes need pk.mode record_key or record_value",
            ));
        }
        if deb {
            let evolve = get("schema.evolution").unwrap_or("none");
            match evolve {
                "none" => {}
                "basic" => {
                    sink.auto_create = true;
                    sink.auto_evolve = true;
                }
                other => errors.push(err(
                    "schema.evolution",
                    &format!("{other} is not one of none, basic"),
                )),
            }
        }
        sink.auto_create = bool_of("auto.create", sink.auto_create, &mut errors);
        sink.auto_evolve = bool_of("auto.evolve", sink.auto_evolve, &mut errors);
        if let Some(f) = get("table.name.format").or(get("collection.name.format")) {
            sink.table_format = f.to_string();
        }
        if let Some(b) = get("batch.size") {
            match b.parse::<usize>() {
                Ok(n) if n > 0 => sink.batch_size = n,
                _ => errors.push(err("batch.size", "expected a positive integer")),
            }
        } else if deb {
            sink.batch_size = 500;
        }
        let topics = props.subscription().unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let tolerate_errors = match get("errors.tolerance").unwrap_or("none") {
            "none" => false,
            "all" => true,
            other => {
                errors.push(err(
                    "errors.tolerance",
                    &format!("{other} is not one of none, all"),
                ));
                false
            }
        };
        for k in [
            "key.converter.schemas.enable",
            "value.converter.schemas.enable",
        ] {
            if get(k) == Some("false") {
                warnings.push(format!("{k}=false: records without schemas cannot be mapped to columns and will be refused"));
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok((
            SinkConnectorConfig {
                name,
                topics,
                sink,
                tolerate_errors,
                dlq_topic: get("errors.deadletterqueue.topic.name").map(str::to_string),
            },
            warnings,
        ))
    }
}

/// Runs the sink connector until shutdown or a fatal error.
pub async fn run(
    cfg: SinkConnectorConfig,
    consumer: ConsumerSettings,
    dlq: Option<ProducerSettings>,
    mut shutdown: Shutdown,
) -> Result<(), Error> {
    let mut sink = PgSink::connect(cfg.sink.clone()).await?;
    let dlq_producer = match (&cfg.dlq_topic, dlq) {
        (Some(_), Some(p)) => Some(Producer::new(p)?),
        _ => None,
    };
    let consumer = Consumer::new(consumer)?;
    let mut converter = RecordConverter::new();
    tracing::info!(connector = %cfg.name, topics = %cfg.topics.join(","), "sink connector running");
    loop {
        let batch = tokio::select! {
            _ = shutdown.wait() => break,
            b = consumer.recv_batch(cfg.sink.batch_size, Duration::from_millis(10)) => b?,
        };
        let mut writes: Vec<RowWrite> = Vec::with_capacity(batch.len());
        let mut origin: Vec<usize> = Vec::with_capacity(batch.len());
        let mut dead = Vec::new();
        for (i, rec) in batch.iter().enumerate() {
            let r = SinkRecord {
                topic: &rec.topic,
                partition: rec.partition,
                offset: rec.offset,
                key: rec.key.as_deref(),
                value: rec.value.as_deref(),
            };
            match converter.convert(&cfg.sink, &r) {
                Ok(Some(w)) => {
                    writes.push(w);
                    origin.push(i);
                }
                Ok(None) => {}
                Err(e) => {
                    if !cfg.tolerate_errors {
                        return Err(Error::new(
                            ErrorKind::Data,
                            format!("record {}-{}@{} cannot be written: {e}", rec.topic, rec.partition, rec.offset),
                        )
                        .with_hint("fix the producer, or set errors.tolerance=all (with errors.deadletterqueue.topic.name) to route such records aside"));
                    }
                    tracing::warn!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, reason = %e, "record refused by the sink");
                    dead.push((rec, e.0, "VALUE_CONVERTER"));
                }
            }
        }
        // Transient failures are retried with backoff; a row the table refuses is isolated
        // (errors.tolerance=all, as Kafka Connect's errant-record reporter does) or stops the
        // connector without committing, so nothing is lost.
        let report_only = |_: &Rejected| None;
        let mut attempt = 0u32;
        let rejected = loop {
            let b = Batch {
                writes: &writes,
                isolate: cfg
                    .tolerate_errors
                    .then_some(&report_only as DeadLetterOf<'_>),
                ..Batch::default()
            };
            match sink.write_batch(b).await {
                Ok(r) => break r,
                Err(e) if e.kind().retry() == Retry::WithBackoff && attempt < 10 => {
                    attempt += 1;
                    tracing::warn!(error = %e.full_message(), attempt, "sink write failed, retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    if let Ok(s) = PgSink::connect(cfg.sink.clone()).await {
                        sink = s;
                    }
                }
                Err(e) => return Err(e),
            }
        };
        for r in rejected {
            let rec = &batch[origin[r.index]];
            tracing::warn!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, reason = %r.reason, "record refused by the table");
            dead.push((rec, r.reason, "TASK_PUT"));
        }
        if let (Some(p), Some(topic)) = (&dlq_producer, &cfg.dlq_topic) {
            for (rec, reason, stage) in dead {
                p.ensure_topic(topic).await?;
                let d = p
                    .send(&crate::enrich::dead_letter(
                        rec, topic, stage, &cfg.name, &reason,
                    ))
                    .await?;
                Producer::delivered(d).await?;
            }
        }
        consumer.commit(&batch, false)?;
    }
    tracing::info!(connector = %cfg.name, "sink connector stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(url: &str) -> Props {
        let mut p = Props::new();
        p.set(
            "connector.class",
            "io.confluent.connect.jdbc.JdbcSinkConnector",
        );
        p.set("connection.url", url);
        p.set("topics", "car_data_predicted");
        p
    }

    #[test]
    fn a_url_that_demands_tls_is_refused_with_the_key() {
        for url in [
            "jdbc:postgresql://db:5432/cars?sslmode=require",
            "jdbc:postgresql://db:5432/cars?ssl=true",
        ] {
            let e = SinkConnectorConfig::from_props(&props(url)).unwrap_err();
            assert!(
                e.0.iter()
                    .any(|e| e.key == "connection.url" && e.message.contains("TLS")),
                "{url}"
            );
        }
        let ok = SinkConnectorConfig::from_props(&props(
            "jdbc:postgresql://db:5432/cars?sslmode=prefer",
        ));
        assert!(ok.is_ok());
    }
}
