//! Wires augur's stages into running pipelines: typed configuration from Debezium and Kafka
//! Connect property names, the capture pipeline (PostgreSQL → Kafka or stdout), destinations,
//! and shutdown in pipeline order.
//!
//! Layout:
//! - [`sink`]: the JDBC sink connector (consume, write to PostgreSQL, commit).
//! - [`remote`]: predictions from a remote model server (BentoML JSON, OIP v2).
//! - [`props`]: load `.properties`, JSON and TOML files into one flat property map.
//! - [`providers`]: `${file:…}`, `${directory:…}`, `${env:…}` references in config values.
//! - [`enrich`]: the Kafka enrichment stage (consume, predict, produce).
//! - [`stored`]: unavailable TOASTed values on the Kafka path, read from the sink's rows.
//! - [`pipeline`]: `augur run`, the embedded capture → predict → write-back pipeline.
//! - [`models`]: which model a stage loads (store, then the shipped one).
//! - [`predict`]: the prediction step shared by the embedded pipeline and enrichment.
//! - [`capture`]: the capture connector: its config, its destinations, and [`capture::run`].
//! - [`stages`]: a pipeline's stage tasks, joined with one error precedence.
//! - `unchanged`: unchanged TOASTed values in a batch, resolved the same way on both paths.

pub mod capture;
pub mod enrich;
mod http_client;
pub mod models;
pub mod pipeline;
pub mod predict;
pub mod props;
pub mod providers;
pub mod remote;
pub mod sink;
pub mod stages;
pub mod stored;
mod unchanged;

// The Kafka client settings this crate's stages take (`sink::run`, `enrich::run`, capture to
// Kafka), re-exported so callers need no direct dependency on `augur-kafka`.
pub use augur_kafka::TopicHook;
pub use augur_kafka::consumer::ConsumerSettings;
pub use augur_kafka::producer::ProducerSettings;
pub use augur_kafka::security;
