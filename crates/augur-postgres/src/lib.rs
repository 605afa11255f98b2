//! PostgreSQL for augur: the logical replication source that turns pgoutput into
//! Debezium-shaped change events, and private clusters for the demo, tests and benchmarks.
//!
//! Layout:
//! - [`cluster`]: start and stop a private PostgreSQL cluster (initdb into a temp dir).
//! - [`conn`]: connection settings shared by the SQL and replication connections.
//! - [`sink`]: Kafka Connect JDBC-sink semantics into PostgreSQL.
//! - [`source`]: slot and publication management, snapshots, pgoutput decoding, type mapping.

pub mod cluster;
pub mod conn;
pub mod sink;
pub mod source;
