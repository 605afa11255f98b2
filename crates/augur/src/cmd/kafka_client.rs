//! `--kafka-config` and `--kafka-set`: Kafka client settings (TLS, SASL, tuning) for the
//! commands that talk to Kafka, read as Kafka's own CLI tools read `--command-config`.

use std::path::PathBuf;

use augur_core::{Error, ErrorKind};
use augur_kafka::security::ClientSettings;
use augur_runtime::props::Props;

/// Kafka client settings flags.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct KafkaClientArgs {
    /// Kafka client settings file (.properties): `security.protocol`, `sasl.*`, `ssl.*`, …
    /// for every client; `producer.*` / `consumer.*` for one kind. Java's names work.
    #[arg(long, env = "AUGUR_KAFKA_CONFIG", value_name = "FILE")]
    kafka_config: Option<PathBuf>,
    /// Set one Kafka client setting, `key=value` (repeatable; wins over --kafka-config).
    #[arg(long = "kafka-set", value_name = "KEY=VALUE")]
    kafka_set: Vec<String>,
}

impl KafkaClientArgs {
    /// The settings from the file, then `--kafka-set`, then `extra` (config providers
    /// resolved), checked without I/O beyond reading the file.
    pub(crate) fn settings(&self, extra: &[(String, String)]) -> Result<ClientSettings, Error> {
        let mut props = match &self.kafka_config {
            Some(p) => Props::load(p)?,
            None => Props::new(),
        };
        props.apply_overrides(&self.kafka_set)?;
        for (k, v) in extra {
            props.set(k.clone(), v.clone());
        }
        let resolved = augur_runtime::providers::resolve(&props.0)
            .map_err(|errors| Error::new(ErrorKind::Config, errors[0].message.clone()))?;
        ClientSettings::new(resolved.into_iter().collect()).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("invalid Kafka client setting {}: {}", e.key, e.message),
            )
        })
    }
}
