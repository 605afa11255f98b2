//! `augur connect`: a Kafka Connect-compatible worker. It answers Kafka Connect's REST API
//! (default `127.0.0.1:8083`), so existing Debezium and JDBC connector configs can be POSTed
//! unchanged, and runs the connectors as in-process tasks:
//!
//! | class | what runs |
//! |---|---|
//! | `io.debezium.connector.postgresql.PostgresConnector` | augur's capture, to Kafka |
//! | `io.confluent.connect.jdbc.JdbcSinkConnector` | augur's JDBC sink into PostgreSQL |
//! | `io.debezium.connector.jdbc.JdbcSinkConnector` | the same, with Debezium's option names |
//! | `io.augur.connect.EnrichConnector` | the enrichment stage (consume, predict, produce) |
//!
//! Connector configs, target states, task states and source offsets are durable in the
//! Kafka topics Kafka Connect's distributed mode uses (`connect-configs`, `connect-offsets`,
//! `connect-status`), so a restarted worker resumes every connector where it was.
//!
//! Layout:
//! - [`cluster`]: group membership through the broker's coordinator (`--distributed`).
//! - `forward`: sending leader-only requests to the leader.
//! - `tail`: following a state topic.
//! - [`server`]: [`ConnectServer`], start (bind, read state, resume) and run until shutdown.
//! - [`routes`]: the REST API.
//! - `entities`: the REST API's bodies, as serde types (Kafka Connect's `rest.entities`).
//! - [`worker`]: connectors, their supervisors, lifecycle operations and statuses.
//! - [`tasks`]: validating a config into task settings, and running one task.
//! - [`plugins`]: the connector classes, their config definitions, `ConfigInfos`.
//! - [`store`]: the state topics.
//! - [`offsets`]: the capture's offset store and sinks' group offsets, and changing them.
//! - [`loggers`]: dynamic log levels (`/admin/loggers`).
//! - `topics`: connectors' active topics (KIP-558).
//! - [`mask`]: hiding secrets in every response and trace.
//! - [`config`]: the worker's own settings.
//! - [`error`]: REST errors ([`ApiError`]); starting and running the worker fail with
//!   [`augur_core::Error`].

mod client_tls;
pub mod cluster;
pub mod config;
mod entities;
pub mod error;
mod forward;
pub mod loggers;
pub mod mask;
pub mod offsets;
pub mod plugins;
pub mod routes;
pub mod server;
pub mod store;
mod tail;
pub mod tasks;
mod topics;
pub mod worker;

pub use config::WorkerConfig;
pub use error::{ApiError, ApiErrorKind};
pub use server::ConnectServer;
pub use worker::Worker;

/// A connector config from `(key, value)` pairs, for tests.
#[cfg(test)]
pub(crate) fn test_props(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
