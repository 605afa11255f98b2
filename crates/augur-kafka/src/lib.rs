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
