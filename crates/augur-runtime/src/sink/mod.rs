//! The JDBC sink connector: a consumer group reads change records and writes them into
//! PostgreSQL with Kafka Connect JDBC-sink semantics, one transaction per batch, committing
//! offsets only after the transaction committed. Configured with the property names of
//! `io.confluent.connect.jdbc.JdbcSinkConnector` or `io.debezium.connector.jdbc.JdbcSinkConnector`.

pub mod record;

use std::time::Duration;

use augur_core::shutdown::Shutdown;
use augur_core::{Backoff, Error, ErrorKind};
use augur_kafka::consumer::{Consumer, ConsumerSettings, Received};
use augur_kafka::producer::{Producer, ProducerSettings};
use augur_postgres::conn::PgConnect;
use augur_postgres::sink::config::{Flavor, InsertMode, PkMode, SinkConfig};
use augur_postgres::sink::{Batch, DeadLetterOf, PgSink, Rejected, RowWrite};
use augur_postgres::tls::{PgTls, RootCert, SslMode};

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
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            (k.to_string(), v.into_owned())
        })
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
        let mut r = SinkReader {
            props,
            errors: Vec::new(),
        };
        let flavor = r.flavor();
        let name = r.get("name").unwrap_or("jdbc-sink").to_string();
        let mut connect = r.connection();
        connect.application_name = format!("augur:{name}");
        let mut sink = SinkConfig::new(connect);
        sink.flavor = flavor;
        r.keys(&mut sink);
        r.behaviour(&mut sink);
        let topics = props.subscription().unwrap_or_else(|e| {
            r.errors.push(e);
            Vec::new()
        });
        let tolerate_errors = match r.get("errors.tolerance").unwrap_or("none") {
            "none" => false,
            "all" => true,
            other => {
                r.error(
                    "errors.tolerance",
                    &format!("{other} is not one of none, all"),
                );
                false
            }
        };
        let warnings = [
            "key.converter.schemas.enable",
            "value.converter.schemas.enable",
        ]
        .into_iter()
        .filter(|k| r.get(k) == Some("false"))
        .map(|k| {
            format!(
                "{k}=false: records without schemas cannot be mapped to columns and will be refused"
            )
        })
        .collect();
        if !r.errors.is_empty() {
            return Err(ConfigErrors(r.errors));
        }
        let dlq_topic = r
            .get("errors.deadletterqueue.topic.name")
            .map(str::to_string);
        let cfg = SinkConnectorConfig {
            name,
            topics,
            sink,
            tolerate_errors,
            dlq_topic,
        };
        Ok((cfg, warnings))
    }
}

/// Reads a JDBC sink config one concern at a time, collecting every error.
struct SinkReader<'a> {
    props: &'a Props,
    errors: Vec<ConfigError>,
}

impl<'a> SinkReader<'a> {
    /// A key's value; empty counts as unset.
    fn get(&self, k: &str) -> Option<&'a str> {
        self.props.get(k).filter(|v| !v.is_empty())
    }

    fn error(&mut self, key: &str, reason: &str) {
        self.errors.push(err(key, reason));
    }

    fn bool_of(&mut self, k: &str, default: bool) -> bool {
        match self.get(k).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("true") => true,
            Some("false") => false,
            Some(v) => {
                let reason = format!("{v} is not a boolean");
                self.error(k, &reason);
                default
            }
        }
    }

    /// Confluent's or Debezium's JDBC sink, by `connector.class`.
    fn flavor(&mut self) -> Flavor {
        match self.get("connector.class").unwrap_or(CONFLUENT_JDBC_SINK) {
            CONFLUENT_JDBC_SINK | "JdbcSinkConnector" => Flavor::Confluent,
            DEBEZIUM_JDBC_SINK => Flavor::Debezium,
            other => {
                let reason = format!("{other} is not a JDBC sink augur implements");
                self.error("connector.class", &reason);
                Flavor::Confluent
            }
        }
    }

    /// `connection.url` (a `jdbc:postgresql://` URL, whose `user`/`password` parameters count
    /// below the `connection.*` keys), refusing settings that demand TLS.
    fn connection(&mut self) -> PgConnect {
        let url = self.get("connection.url").unwrap_or("");
        let parsed = parse_jdbc_url(url).unwrap_or_else(|| {
            self.error(
                "connection.url",
                "expected jdbc:postgresql://host:port/database",
            );
            JdbcUrl {
                port: 5432,
                ..JdbcUrl::default()
            }
        });
        let param = |k: &str| {
            parsed
                .params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.clone())
        };
        let user = self
            .get("connection.user")
            .or(self.get("connection.username"))
            .map(str::to_string)
            .or(param("user"))
            .unwrap_or_else(|| "postgres".into());
        let password = self
            .props
            .get("connection.password")
            .map(str::to_string)
            .or(param("password"))
            .unwrap_or_default();
        let tls = self.tls(&param);
        PgConnect::new(&parsed.host, parsed.port, &user, &password, &parsed.db).with_tls(tls)
    }

    /// TLS from the JDBC URL as pgjdbc reads it: `sslmode` (default `prefer`), `ssl=true`
    /// alone meaning `verify-full`, `sslrootcert`/`sslcert`/`sslkey`/`sslpassword`, and
    /// `sslfactory=…NonValidatingFactory` turning verification off (encryption stays).
    fn tls(&mut self, param: &dyn Fn(&str) -> Option<String>) -> PgTls {
        let ssl_on = param("ssl").is_some_and(|v| v.is_empty() || v == "true");
        let get = |k: &str| match k {
            "sslmode" if ssl_on => param(k).or(Some("verify-full".into())),
            _ => param(k),
        };
        let mut tls = match PgTls::from_params(get) {
            Ok(t) => t,
            Err((k, why)) => {
                self.error("connection.url", &format!("{k}: {why}"));
                return PgTls::default();
            }
        };
        let non_validating =
            param("sslfactory").is_some_and(|f| f.ends_with(".NonValidatingFactory"));
        if non_validating && tls.mode >= SslMode::Require {
            tls.mode = SslMode::Require;
            tls.root_cert = RootCert::Default;
        }
        tls
    }

    /// `insert.mode` and the primary key (`pk.mode`/`pk.fields`, or Debezium's
    /// `primary.key.*`), with the combinations that cannot work refused.
    fn keys(&mut self, sink: &mut SinkConfig) {
        sink.insert_mode = match self
            .get("insert.mode")
            .unwrap_or("insert")
            .to_ascii_lowercase()
            .as_str()
        {
            "insert" => InsertMode::Insert,
            "upsert" => InsertMode::Upsert,
            "update" => InsertMode::Update,
            other => {
                self.error(
                    "insert.mode",
                    &format!("{other} is not one of insert, upsert, update"),
                );
                InsertMode::Insert
            }
        };
        let pk_key = if self.get("primary.key.mode").is_some() {
            "primary.key.mode"
        } else {
            "pk.mode"
        };
        sink.pk_mode = match self
            .get(pk_key)
            .unwrap_or("none")
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => PkMode::None,
            "kafka" => PkMode::Kafka,
            "record_key" => PkMode::RecordKey,
            "record_value" => PkMode::RecordValue,
            other => {
                let reason = format!("{other} is not one of none, kafka, record_key, record_value");
                self.error(pk_key, &reason);
                PkMode::None
            }
        };
        let fields = self
            .get("primary.key.fields")
            .or(self.get("pk.fields"))
            .unwrap_or("");
        sink.pk_fields = fields
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if sink.pk_mode == PkMode::RecordValue && sink.pk_fields.is_empty() {
            self.error(
                "pk.fields",
                "pk.mode=record_value needs the primary key field names",
            );
        }
        if sink.insert_mode != InsertMode::Insert && sink.pk_mode == PkMode::None {
            self.error(
                "insert.mode",
                "upsert and update need a primary key (pk.mode)",
            );
        }
    }

    /// Deletes, truncates, table creation and evolution, the table name format, batch size.
    fn behaviour(&mut self, sink: &mut SinkConfig) {
        let deb = sink.flavor == Flavor::Debezium;
        sink.delete_enabled = self.bool_of("delete.enabled", false);
        sink.truncate_enabled = self.bool_of("truncate.enabled", false);
        if sink.delete_enabled && matches!(sink.pk_mode, PkMode::None | PkMode::Kafka) {
            self.error(
                "delete.enabled",
                "deletes need pk.mode record_key or record_value",
            );
        }
        if deb {
            match self.get("schema.evolution").unwrap_or("none") {
                "none" => {}
                "basic" => {
                    sink.auto_create = true;
                    sink.auto_evolve = true;
                }
                other => self.error(
                    "schema.evolution",
                    &format!("{other} is not one of none, basic"),
                ),
            }
        }
        sink.auto_create = self.bool_of("auto.create", sink.auto_create);
        sink.auto_evolve = self.bool_of("auto.evolve", sink.auto_evolve);
        if let Some(f) = self
            .get("table.name.format")
            .or(self.get("collection.name.format"))
        {
            sink.table_format = f.to_string();
        }
        match self.get("batch.size") {
            Some(b) => match b.parse::<usize>() {
                Ok(n) if n > 0 => sink.batch_size = n,
                _ => self.error("batch.size", "expected a positive integer"),
            },
            None if deb => sink.batch_size = 500,
            None => {}
        }
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
            b = consumer.recv_batch(cfg.sink.batch_size, Duration::ZERO) => b?,
        };
        let Converted {
            writes,
            origin,
            mut dead,
        } = convert_batch(&cfg, &mut converter, &batch)?;
        let rejected = write_with_retry(&cfg, &mut sink, &writes).await?;
        for r in rejected {
            let rec = &batch[origin[r.index]];
            tracing::warn!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, reason = %r.reason, "record refused by the table");
            dead.push((rec, r.reason, "TASK_PUT"));
        }
        if let (Some(p), Some(topic)) = (&dlq_producer, &cfg.dlq_topic) {
            send_dead_letters(&cfg, p, topic, dead).await?;
        }
        consumer.commit(&batch, false)?;
    }
    tracing::info!(connector = %cfg.name, "sink connector stopped");
    Ok(())
}

/// A record bound for the dead-letter topic: the record, why, and the failing stage.
type DeadRecord<'a> = (&'a Received, String, &'static str);

/// A consumed batch converted into sink writes.
struct Converted<'a> {
    /// The writes, in batch order.
    writes: Vec<RowWrite>,
    /// For each write, the index of its record in the batch.
    origin: Vec<usize>,
    /// Records the converter refused (with errors.tolerance=all).
    dead: Vec<DeadRecord<'a>>,
}

/// Converts a batch into writes; a refused record stops the connector unless tolerated.
fn convert_batch<'a>(
    cfg: &SinkConnectorConfig,
    converter: &mut RecordConverter,
    batch: &'a [Received],
) -> Result<Converted<'a>, Error> {
    let mut out = Converted {
        writes: Vec::with_capacity(batch.len()),
        origin: Vec::with_capacity(batch.len()),
        dead: Vec::new(),
    };
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
                out.writes.push(w);
                out.origin.push(i);
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
                out.dead.push((rec, e.to_string(), "VALUE_CONVERTER"));
            }
        }
    }
    Ok(out)
}

/// Writes one batch, returning the rows the table refused.
///
/// Transient failures are retried with backoff; a row the table refuses is isolated
/// (errors.tolerance=all, as Kafka Connect's errant-record reporter does) or stops the
/// connector without committing, so nothing is lost.
async fn write_with_retry(
    cfg: &SinkConnectorConfig,
    sink: &mut PgSink,
    writes: &[RowWrite],
) -> Result<Vec<Rejected>, Error> {
    let report_only = |_: &Rejected| None;
    let mut backoff =
        Backoff::new(Duration::from_millis(200), Duration::from_secs(2)).with_limit(10);
    loop {
        let b = Batch {
            writes,
            isolate: cfg
                .tolerate_errors
                .then_some(&report_only as DeadLetterOf<'_>),
            ..Batch::default()
        };
        let e = match sink.write_batch(b).await {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let Some(wait) = backoff.next(e.kind()) else {
            return Err(e);
        };
        tracing::warn!(error = %e.full_message(), attempt = backoff.attempt(), "sink write failed, retrying");
        tokio::time::sleep(wait).await;
        if let Ok(s) = PgSink::connect(cfg.sink.clone()).await {
            *sink = s;
        }
    }
}

/// Sends each refused record to the dead-letter `topic`, waiting for every delivery.
async fn send_dead_letters(
    cfg: &SinkConnectorConfig,
    producer: &Producer,
    topic: &str,
    dead: Vec<DeadRecord<'_>>,
) -> Result<(), Error> {
    for (rec, reason, stage) in dead {
        producer.ensure_topic(topic).await?;
        let d = producer
            .send(&crate::enrich::dead_letter(
                rec, topic, stage, &cfg.name, &reason,
            ))
            .await?;
        Producer::delivered(d).await?;
    }
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
    fn tls_settings_are_read_as_pgjdbc_reads_them() {
        let mode = |url: &str| {
            let (c, _) = SinkConnectorConfig::from_props(&props(url)).unwrap();
            c.sink.connect.tls.mode
        };
        assert_eq!(mode("jdbc:postgresql://db:5432/cars"), SslMode::Prefer);
        assert_eq!(
            mode("jdbc:postgresql://db:5432/cars?ssl=true"),
            SslMode::VerifyFull
        );
        assert_eq!(
            mode("jdbc:postgresql://db:5432/cars?ssl=true&sslmode=require"),
            SslMode::Require
        );
        assert_eq!(
            mode(
                "jdbc:postgresql://db/cars?ssl=true&sslfactory=org.postgresql.ssl.NonValidatingFactory"
            ),
            SslMode::Require
        );
        let (c, _) = SinkConnectorConfig::from_props(&props(
            "jdbc:postgresql://db/cars?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem",
        ))
        .unwrap();
        assert_eq!(
            c.sink.connect.tls.root_cert,
            RootCert::File("/etc/ca.pem".into())
        );
        let e = SinkConnectorConfig::from_props(&props("jdbc:postgresql://db/cars?sslmode=on"))
            .unwrap_err();
        assert!(
            e.0.iter()
                .any(|e| e.key == "connection.url" && e.message.contains("sslmode"))
        );
    }
}
