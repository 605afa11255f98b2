//! `augur enrich` and `augur sink`: the Kafka path's stages, each a consumer group that scales
//! out by running more processes with the same group.

use std::path::PathBuf;
use std::process::ExitCode;

use augur_kafka::consumer::ConsumerSettings;
use augur_kafka::producer::ProducerSettings;
use augur_runtime::enrich::EnrichConfig;
use augur_runtime::predict::{OutputType, Predictor};
use augur_runtime::props::Props;
use augur_runtime::sink::SinkConnectorConfig;

use super::kafka_client::KafkaClientArgs;
use super::runtime;

/// Arguments of `augur enrich`.
#[derive(Debug, clap::Args)]
pub(crate) struct EnrichArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "AUGUR_KAFKA")]
    kafka: String,
    #[command(flatten)]
    kafka_client: KafkaClientArgs,
    /// Input topics (comma-separated).
    #[arg(
        long,
        env = "AUGUR_ENRICH_TOPICS",
        value_delimiter = ',',
        required = true
    )]
    topics: Vec<String>,
    /// Output topic [default: <last part of the first input topic>_predicted].
    #[arg(long, env = "AUGUR_ENRICH_OUTPUT_TOPIC")]
    output_topic: Option<String>,
    /// Dead-letter topic [default: <output topic>.dlq].
    #[arg(long, env = "AUGUR_ENRICH_DLQ_TOPIC")]
    dlq_topic: Option<String>,
    /// Consumer group (Kafka's `group.id`; `--group` is the old spelling).
    #[arg(
        long = "group-id",
        alias = "group",
        env = "AUGUR_ENRICH_GROUP_ID",
        default_value = "augur-enrich"
    )]
    group: String,
    /// Model tag.
    #[arg(long, env = "AUGUR_MODEL", default_value = augur_model::SHIPPED_MODEL)]
    model: String,
    /// Model store [default: the user's store, then the shipped models].
    #[arg(long, env = "AUGUR_MODEL_STORE", value_name = "DIR")]
    store: Option<PathBuf>,
    /// Name of the field the prediction goes into.
    #[arg(
        long,
        env = "AUGUR_ENRICH_OUTPUT_FIELD",
        default_value = "suggestedprice"
    )]
    output_field: String,
    /// Type of that field when the record does not have it yet: double, float, int32, int64.
    #[arg(long, env = "AUGUR_ENRICH_OUTPUT_TYPE", default_value = "double")]
    output_type: String,
    /// Records per batch.
    #[arg(long, env = "AUGUR_ENRICH_BATCH_SIZE", default_value_t = 1000)]
    batch_size: usize,
    /// Predict through this model server (`http://host:port`) instead of a local model.
    #[arg(long, env = "AUGUR_ENRICH_PREDICT_URL")]
    predict_url: Option<String>,
    /// The server's protocol: bentoml (`POST /predict`) or oip (Open Inference Protocol v2).
    #[arg(long, env = "AUGUR_ENRICH_PREDICT_PROTOCOL", default_value = "bentoml")]
    predict_protocol: String,
    /// The model name on the server (OIP).
    #[arg(long, env = "AUGUR_ENRICH_PREDICT_MODEL", default_value = "ford-price")]
    predict_model: String,
    /// Milliseconds before a prediction request times out (then it is retried).
    #[arg(long, env = "AUGUR_ENRICH_PREDICT_TIMEOUT_MS", default_value_t = 5000)]
    predict_timeout_ms: u64,
}

/// Runs `augur enrich`.
pub(crate) fn enrich(args: EnrichArgs) -> anyhow::Result<ExitCode> {
    let Some(output_type) = OutputType::parse(&args.output_type) else {
        eprintln!("error: --output-type must be one of double, float, int32, int64");
        return Ok(ExitCode::FAILURE);
    };
    let mut cfg = EnrichConfig::new(args.topics.clone());
    let mut predictor = match &args.predict_url {
        Some(url) => {
            let Some(protocol) = augur_runtime::remote::Protocol::parse(&args.predict_protocol)
            else {
                eprintln!("error: --predict-protocol must be bentoml or oip");
                return Ok(ExitCode::FAILURE);
            };
            let mut r = augur_runtime::remote::RemoteSettings::new(url.clone(), protocol);
            r.model = args.predict_model.clone();
            r.timeout = std::time::Duration::from_millis(args.predict_timeout_ms.max(1));
            cfg.remote = Some(r);
            Predictor::remote(format!("remote:{url}"), args.output_field.clone())
        }
        None => match augur_runtime::models::load(&args.model, args.store.as_deref()) {
            Ok(m) => Predictor::new(m, args.output_field.clone()),
            Err(e) => return Ok(runtime::report(&e)),
        },
    };
    predictor.output_type = output_type;
    if let Some(t) = args.output_topic {
        cfg.dlq_topic = format!("{t}.dlq");
        cfg.output_topic = t;
    }
    if let Some(t) = args.dlq_topic {
        cfg.dlq_topic = t;
    }
    cfg.group_id = args.group.clone();
    cfg.batch_size = args.batch_size.max(1);
    let client = match args.kafka_client.settings(&[]) {
        Ok(c) => c,
        Err(e) => return Ok(runtime::report(&e)),
    };
    let mut consumer = ConsumerSettings::new(&args.kafka, &args.group, args.topics.clone());
    consumer.client_id = format!("augur-enrich-{}", std::process::id());
    consumer.overrides = client.for_consumer();
    let mut producer = ProducerSettings::new(&args.kafka);
    producer.client_id = consumer.client_id.clone();
    producer.overrides = client.for_producer();
    let rt = runtime::tokio()?;
    let result = rt.block_on(async move {
        let shutdown = runtime::signals();
        augur_runtime::enrich::run(cfg, predictor, consumer, producer, shutdown).await
    });
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => runtime::report(&e),
    })
}

/// Arguments of `augur sink`.
#[derive(Debug, clap::Args)]
pub(crate) struct SinkArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "AUGUR_KAFKA")]
    kafka: String,
    #[command(flatten)]
    kafka_client: KafkaClientArgs,
    /// Connector config: JDBC sink properties (.properties, .json — a Kafka Connect
    /// `{"name","config"}` body works — or .toml).
    #[arg(long, short = 'c', env = "AUGUR_SINK_CONFIG")]
    config: Option<PathBuf>,
    /// Set or override one property, `key=value` (repeatable).
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Runs `augur sink`.
pub(crate) fn sink(args: SinkArgs) -> anyhow::Result<ExitCode> {
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
    let (cfg, warnings) = match SinkConnectorConfig::from_props(&props) {
        Ok(v) => v,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {}", e.message);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    let client = match args.kafka_client.settings(&[]) {
        Ok(c) => c,
        Err(e) => return Ok(runtime::report(&e)),
    };
    let mut consumer = ConsumerSettings::new(
        &args.kafka,
        format!("connect-{}", cfg.name),
        cfg.topics.clone(),
    );
    consumer.client_id = format!("augur-sink-{}", std::process::id());
    consumer.overrides = client.for_consumer();
    consumer
        .overrides
        .extend(override_keys(&props, "consumer.override."));
    let dlq = cfg.dlq_topic.as_ref().map(|_| {
        let mut p = ProducerSettings::new(&args.kafka);
        p.overrides = client.for_producer();
        p.overrides
            .extend(override_keys(&props, "producer.override."));
        p
    });
    let rt = runtime::tokio()?;
    let result = rt.block_on(async move {
        let shutdown = runtime::signals();
        augur_runtime::sink::run(cfg, consumer, dlq, shutdown).await
    });
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => runtime::report(&e),
    })
}

/// A connector's `*.override.*` keys with `prefix` removed, as Kafka Connect applies them.
fn override_keys(props: &Props, prefix: &str) -> Vec<(String, String)> {
    props
        .0
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
        .collect()
}
