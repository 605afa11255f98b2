//! PostgreSQL for augur: the logical replication source that turns pgoutput into
//! Debezium-shaped change events, and the sink with JDBC-sink semantics.
//!
//! Layout:
//! - [`conn`]: connection settings shared by the SQL and replication connections.
//! - [`sink`]: Kafka Connect JDBC-sink semantics into PostgreSQL.
//! - [`source`]: slot and publication management, snapshots, pgoutput decoding, type mapping.
//! - [`tls`]: TLS to PostgreSQL with libpq's `sslmode` semantics.

pub mod conn;
pub mod sink;
pub mod source;
pub mod tls;
