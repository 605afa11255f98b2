//! [`Record`]: a serialized Kafka-style record (topic, key, value, headers), what destinations
//! write.

/// A serialized record. `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Destination topic.
    pub topic: String,
    /// Key bytes (JSON), `None` for keyless tables.
    pub key: Option<Vec<u8>>,
    /// Value bytes (JSON), `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Record headers.
    pub headers: Vec<(String, Vec<u8>)>,
}
