//! `augur capture`: run a Debezium-compatible PostgreSQL capture connector from a properties,
//! JSON or TOML file and `--set` overrides, writing to Kafka or stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use augur_kafka::producer::ProducerSettings;
use augur_kafka::security::is_security_key;
use augur_runtime::capture::config::CaptureConfig;
use augur_runtime::capture::destination::DestinationConfig;
use augur_runtime::props::Props;

use super::kafka_client::KafkaClientArgs;
use super::runtime;

/// Arguments of `augur capture`.
#[derive(Debug, clap::Args)]
pub(crate) struct CaptureArgs {
    /// Connector config: Debezium PostgreSQL connector properties (.properties, .json — also
    /// a Kafka Connect `{"name","config"}` body — or .toml).
    #[arg(long, short = 'c', env = "AUGUR_CAPTURE_CONFIG")]
    config: Option<PathBuf>,
    /// Set or override one property, `key=value` (repeatable).
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Write to Kafka at these bootstrap servers (also `bootstrap.servers` in the config).
    #[arg(long, env = "AUGUR_KAFKA", value_name = "HOST:PORT[,…]")]
    kafka: Option<String>,
    /// Write JSON lines to stdout (the default when no Kafka is given; wins over `--kafka`).
    #[arg(long, env = "AUGUR_CAPTURE_STDOUT", value_parser = clap::builder::BoolishValueParser::new())]
    stdout: bool,
    /// Offsets file (also `offset.storage.file.filename`; default
    /// `$AUGUR_HOME/offsets/<name>.json`).
    #[arg(long, env = "AUGUR_OFFSETS")]
    offsets: Option<PathBuf>,
    #[command(flatten)]
    kafka_client: KafkaClientArgs,
}

/// The worker-level Kafka security keys among `props` (`security.protocol`, `sasl.*`, `ssl.*`,
/// and the same under `producer.`), as a Kafka Connect worker file carries them.
fn worker_security_keys(props: &Props) -> Vec<(String, String)> {
    props
        .0
        .iter()
        .filter(|(k, _)| {
            let own = k.strip_prefix("producer.").unwrap_or(k);
            !k.starts_with("producer.override.") && is_security_key(own)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Runs `augur capture`.
pub(crate) fn run(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    let mut props = match &args.config {
        Some(p) => match Props::load(p) {
            Ok(p) => p,
            Err(e) => return Ok(runtime::report(&e)),
        },
        None => Props::new(),
    };
    if let Err(e) = props.apply_overrides(&args.set) {
        return Ok(runtime::report(&e));
    }
    if let Some(o) = &args.offsets {
        props.set("offset.storage.file.filename", o.display().to_string());
    }
    let bootstrap = args
        .kafka
        .clone()
        .or_else(|| props.get("bootstrap.servers").map(str::to_string))
        .or_else(|| props.get("kafka.bootstrap.servers").map(str::to_string));
    // Worker-level keys are the CLI's business, not the connector's.
    let mut connector_props = props.clone();
    connector_props.0.remove("bootstrap.servers");
    connector_props.0.remove("kafka.bootstrap.servers");
    let worker_security = worker_security_keys(&props);
    for (k, _) in &worker_security {
        connector_props.0.remove(k);
    }
    let client = match args.kafka_client.settings(&worker_security) {
        Ok(c) => c,
        Err(e) => return Ok(runtime::report(&e)),
    };
    let (cfg, warnings) = match CaptureConfig::from_props(&connector_props) {
        Ok(v) => v,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {}", e.message);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let destination = match (bootstrap, args.stdout) {
        (Some(b), false) => {
            let mut s = ProducerSettings::new(b);
            s.client_id = format!("augur-{}", cfg.name);
            s.overrides = client.for_producer();
            for (k, v) in &props.0 {
                if let Some(o) = k.strip_prefix("producer.override.") {
                    s.overrides.push((o.to_string(), v.clone()));
                }
            }
            if let Some(p) = props
                .get("topic.creation.default.partitions")
                .and_then(|v| v.parse().ok())
            {
                s.topic_partitions = p;
            }
            DestinationConfig::Kafka(s)
        }
        _ => DestinationConfig::Stdout,
    };
    let rt = runtime::tokio()?;
    let result = rt.block_on(runtime::on_workers(async move {
        let shutdown = runtime::signals();
        augur_runtime::capture::run(cfg, destination, shutdown).await
    }));
    Ok(match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => runtime::report(&e),
    })
}
