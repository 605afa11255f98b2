//! Integration tests: each starts its own PostgreSQL cluster (and broker, where needed) and
//! drives the real `augur` binary.

#![allow(missing_docs, unreachable_pub)]

mod support;

mod architecture;
mod capture_bad_input;
mod capture_golden;
mod capture_kafka;
mod capture_modes;
mod capture_types;
mod connect_cluster;
mod debezium_zoo;
mod demo_browser;
mod differential;
mod doctor_parity;
mod glue;
mod http_security;
mod incremental;
mod kafka_bad_input;
mod kafka_path;
mod kafka_remote;
mod kafka_security;
mod model_aliases;
mod packaging;
mod pg_tls;
mod run_crash;
mod run_exact;
mod run_exact_kafka;
mod run_pipeline;
mod secrets_never_leak;
mod serve_cli;
mod slot_race;
