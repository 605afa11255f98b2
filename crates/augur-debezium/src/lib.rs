//! Debezium's wire format, byte for byte: Kafka Connect's `JsonConverter`, the change-event
//! envelope (`before`/`after`/`source`/`op`/`ts_*`), tombstones, the `ExtractNewRecordState`
//! transform and heartbeat records.
//!
//! Layout:
//! - [`json`]: Connect schema/value ↔ JSON, printing numbers and strings as Jackson does.
//! - [`envelope`]: [`envelope::Encoder`], change events → Kafka records.
//! - [`out`]: [`out::RecordOut`], where the encoder hands each record, borrowed.
//! - [`unwrap`]: the `ExtractNewRecordState` transform.
//! - [`record`]: the serialized record every destination accepts.

pub mod envelope;
pub mod json;
pub mod out;
pub mod unwrap;
