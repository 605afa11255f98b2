//! Wires augur's stages into running pipelines: typed configuration from Debezium and Kafka
//! Connect property names, the capture pipeline (PostgreSQL → Kafka or stdout), destinations,
//! and shutdown in pipeline order.
//!
//! Layout:
//! - [`props`]: load `.properties`, JSON and TOML files into one flat property map.
//! - [`predict`]: the prediction step shared by the embedded pipeline and enrichment.
//! - [`capture`]: the capture connector: its config, its destinations, and [`capture::run`].

pub mod capture;
pub mod predict;
pub mod props;
