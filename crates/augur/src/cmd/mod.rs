//! One module per group of subcommands; each turns parsed arguments into a run of a library.

pub(crate) mod capture;
pub(crate) mod connect;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod http_tls;
pub(crate) mod kafka_client;
pub(crate) mod lifecycle;
pub(crate) mod model;
pub(crate) mod run;
pub(crate) mod runtime;
pub(crate) mod serve;
pub(crate) mod stages;

/// `--listen`, with the old `--host` / `--port` spellings replacing its parts when given.
pub(crate) fn listen_addr(
    listen: std::net::SocketAddr,
    host: Option<std::net::IpAddr>,
    port: Option<u16>,
) -> std::net::SocketAddr {
    std::net::SocketAddr::new(host.unwrap_or(listen.ip()), port.unwrap_or(listen.port()))
}
