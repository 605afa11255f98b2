//! Kafka for augur, through librdkafka (rdkafka): an idempotent producer whose delivery
//! reports acknowledge batches upstream, and consumer groups that commit offsets only after the
//! downstream stage is durable.
//!
//! Layout:
//! - [`consumer`]: [`consumer::Consumer`], group membership, batches, manual commits.
//! - [`producer`]: [`producer::Producer`], idempotent, Java-compatible partitioning, topic
//!   creation, delivery futures.
//! - [`security`]: TLS and SASL settings, Java's names turned into librdkafka's.

pub mod consumer;
pub mod producer;
pub mod security;

use std::sync::Arc;

/// Called with a topic's name the first time a producer writes to it or a consumer reads
/// from it (Kafka Connect's topic tracking, KIP-558). Equal only to itself.
#[derive(Clone)]
pub struct TopicHook(pub Arc<dyn Fn(&str) + Send + Sync>);

impl TopicHook {
    /// Reports `topic`.
    pub fn seen(&self, topic: &str) {
        (self.0)(topic)
    }
}

impl std::fmt::Debug for TopicHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TopicHook")
    }
}

impl PartialEq for TopicHook {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TopicHook {}
