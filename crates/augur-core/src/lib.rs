//! The types every augur stage shares: change events, records, Kafka Connect data, WAL
//! positions, end-to-end acknowledgements, source offsets and status, errors and shutdown.
//!
//! Layout:
//! - [`connect`]: the Kafka Connect data model (schemas and values) that Debezium events,
//!   the JSON converter and the JDBC sink all speak.
//! - [`event`]: [`event::ChangeEvent`], the one event type that flows from the source forward.
//! - [`java`]: Java's number formatting, which Debezium's JSON carries.
//! - [`lsn`]: PostgreSQL WAL positions.
//! - [`ack`]: the acknowledgement watermark, the only thing that travels backwards.
//! - [`record`]: [`record::Record`], a serialized Kafka-style record, what destinations write.
//! - [`offset`]: what a source has durably done, and where it keeps that ([`offset::OffsetStore`]).
//! - [`source`]: the [`source::Source`] contract: what a source sends and when it may advance.
//! - [`status`]: where a source is in its life.
//! - [`error`]: one error type with a kind that decides retries.
//! - [`secret`]: passwords that never print.
//! - [`shutdown`]: a cloneable shutdown signal handed to every task.

pub mod ack;
pub mod backoff;
pub mod connect;
pub mod error;
pub mod event;
pub mod java;
pub mod lsn;
pub mod offset;
pub mod record;
pub mod secret;
pub mod shutdown;
pub mod source;
pub mod status;

pub use backoff::Backoff;
pub use error::{Error, ErrorKind, Result, Retry};
pub use lsn::Lsn;
