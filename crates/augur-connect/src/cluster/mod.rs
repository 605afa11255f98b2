//! Worker clusters through the broker's group coordinator, as Kafka Connect's distributed
//! herder forms them (issue 14; `docs/research/connect-cluster.md`): the group APIs' wire format
//! and Connect's metadata and assignments ([`wire`]), a connection to the coordinator
//! ([`link`], secured as the worker's clients are: [`secure`]), one member's join/sync/heartbeat/leave ([`member`]) and the leader's incremental
//! cooperative assignment ([`assignor`]), and the membership loop that tells a worker what to
//! stop and start ([`herder`]). The worker runs a herder with `--distributed`
//! (`worker/owned.rs`).

pub mod assignor;
pub mod herder;
pub mod link;
pub mod member;
pub mod secure;
pub mod wire;
