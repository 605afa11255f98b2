//! Worker clusters through the broker's group coordinator, as Kafka Connect's distributed
//! herder forms them (issue 14; `docs/research/connect-cluster.md`): the group APIs' wire format
//! and Connect's metadata and assignments ([`wire`]), a connection to the coordinator
//! ([`link`]), and one member's join/sync/heartbeat/leave ([`member`]). The assignor and the
//! herder that runs only assigned work come next; nothing here is wired into the worker yet.

pub mod link;
pub mod member;
pub mod wire;
