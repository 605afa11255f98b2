//! Worker clusters through the broker's group coordinator, as Kafka Connect's distributed
//! herder forms them (issue 14; `docs/research/connect-cluster.md`): the group APIs' wire format
//! and Connect's metadata and assignments ([`wire`]), a connection to the coordinator
//! ([`link`]), one member's join/sync/heartbeat/leave ([`member`]) and the leader's incremental
//! cooperative assignment ([`assignor`]), and the membership loop that tells a worker what to
//! stop and start ([`herder`]). Running connectors' tasks by assignment, tailing the config
//! topic and forwarding requests to the leader come next; nothing here is wired into the worker
//! yet.

pub mod assignor;
pub mod herder;
pub mod link;
pub mod member;
pub mod wire;
