//! The types every augur stage shares: change events, Kafka Connect data, WAL positions,
//! end-to-end acknowledgements, errors and shutdown.
//!
//! Layout:
//! - [`connect`]: the Kafka Connect data model (schemas and values) that Debezium events,
//!   the JSON converter and the JDBC sink all speak.
//! - [`event`]: [`event::ChangeEvent`], the one event type that flows from the source forward.
//! - [`lsn`]: PostgreSQL WAL positions.
//! - [`ack`]: the acknowledgement watermark, the only thing that travels backwards.
//! - [`error`]: one error type with a kind that decides retries.
//! - [`secret`]: passwords that never print.
//! - [`shutdown`]: a cloneable shutdown signal handed to every task.

pub mod ack;
pub mod connect;
pub mod error;
pub mod event;
pub mod lsn;
pub mod secret;
pub mod shutdown;

pub use error::{Error, ErrorKind, Result, Retry};
pub use lsn::Lsn;
