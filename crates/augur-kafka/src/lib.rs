//! Kafka for augur, through librdkafka (rdkafka): an idempotent producer whose delivery
//! reports acknowledge batches upstream, and consumer groups that commit offsets only after the
//! downstream stage is durable.
//!
//! Layout:
//! - [`producer`]: [`producer::Producer`], idempotent, Java-compatible partitioning, topic
//!   creation, delivery futures.

pub mod producer;
