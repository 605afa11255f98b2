//! HTTP plumbing augur's servers share: [`ApiError`], the one error type a request handler
//! returns (a kind that decides the status, a message that never holds a secret or internals,
//! and a JSON body in the server's dialect), [`bind`] for the listening socket, and [`serve`],
//! the server loop with timeouts and a connection limit ([`Limits`]), optionally over TLS
//! ([`ServerTls`]); and the credential checks the servers use (bearer tokens, HTTP Basic).
//!
//! Two dialects exist because two wire contracts do: the model server answers in augur's
//! BentoML-style `{"error", "code", "field"?, "problem"?, "row"?}` ([`Augur`]), the Connect REST
//! API in Kafka Connect's `{"error_code", "message"}` ([`KafkaConnect`]).

mod auth;
mod error;
mod serve;

use std::net::SocketAddr;

use augur_core::{Error, ErrorKind};
use tokio::net::TcpListener;

pub use auth::{BasicCredentials, ServerTls, bearer_matches};
pub use error::{ApiError, ApiErrorKind, Augur, Dialect, KafkaConnect};
pub use serve::{Limits, serve, serve_with};

/// Binds `addr` and returns the listener with the address it got (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        Error::new(ErrorKind::Io, format!("cannot listen on {addr}"))
            .with_source(e)
            .with_hint("pick another --port, or stop the process using it")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::new(ErrorKind::Io, "cannot read the bound address").with_source(e))?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_is_an_io_error_with_a_hint() {
        let (_held, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let e = bind(addr).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        assert!(e.hint().is_some());
    }
}
