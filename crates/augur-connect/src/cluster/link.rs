//! One connection to a broker for the group APIs: framed requests with correlation ids, one
//! request in flight at a time, over TCP or TLS, authenticated with SASL when the worker's
//! settings say so ([`super::secure`]).

use std::time::Duration;

use augur_core::{Error, ErrorKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::secure::{LoadedSecurity, Mechanism, Sasl, Scram, client_nonce};
use super::wire::{self, Reader};

/// A byte stream to a broker: TCP or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Stream for T {}

/// The largest response accepted (a JoinGroup response carries every member's metadata).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// A connection to one broker.
pub struct Link {
    /// The socket.
    stream: Box<dyn Stream>,
    /// `host:port`, for errors.
    addr: String,
    /// The client id sent with every request.
    client_id: String,
    /// The next correlation id.
    next: i32,
    /// A request was sent whose response was not read (its call timed out or was cancelled):
    /// the stream is out of step and the link must be replaced.
    poisoned: bool,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("addr", &self.addr).finish()
    }
}

impl Link {
    /// Connects to `addr` (`host:port`) within `timeout`, with TLS and SASL as `security`
    /// says.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
        security: &LoadedSecurity,
    ) -> Result<Link, Error> {
        let tcp = Link::tcp(addr, timeout).await?;
        let stream: Box<dyn Stream> = match &security.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = crate::client_tls::server_name(addr)?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| {
                        Error::new(
                            ErrorKind::Connection,
                            format!(
                                "no TLS handshake with the broker at {addr} within {} s",
                                timeout.as_secs()
                            ),
                        )
                    })?
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Connection,
                            format!("the TLS handshake with the broker at {addr} failed"),
                        )
                        .with_source(e)
                    })?;
                Box::new(tls)
            }
        };
        let mut link = Link {
            stream,
            addr: addr.to_string(),
            client_id: client_id.to_string(),
            next: 1,
            poisoned: false,
        };
        if let Some(sasl) = &security.sasl {
            link.authenticate(sasl, timeout).await?;
        }
        Ok(link)
    }

    /// A TCP connection to `addr` within `timeout`.
    async fn tcp(addr: &str, timeout: Duration) -> Result<TcpStream, Error> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Connection,
                    format!(
                        "cannot reach the broker at {addr} within {} s",
                        timeout.as_secs()
                    ),
                )
            })?
            .map_err(|e| {
                Error::new(
                    ErrorKind::Connection,
                    format!("cannot reach the broker at {addr}"),
                )
                .with_source(e)
            })?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Kafka's SASL exchange: the mechanism, then one (PLAIN) or two (SCRAM) rounds.
    async fn authenticate(&mut self, sasl: &Sasl, timeout: Duration) -> Result<(), Error> {
        let mut w = wire::Writer::default();
        w.str(sasl.mechanism.name());
        let body = self.call(wire::api::SASL_HANDSHAKE, &w.0, timeout).await?;
        let (code, offered) = wire::sasl_handshake(&mut Reader::new(&body))
            .map_err(|e| self.refused(&format!("a malformed SaslHandshake answer ({e})")))?;
        if code != 0 {
            return Err(self.refused(&format!(
                "it does not accept {} (it offers {})",
                sasl.mechanism.name(),
                offered.join(", ")
            )));
        }
        match sasl.mechanism {
            Mechanism::Plain => {
                let mut token = vec![0u8];
                token.extend_from_slice(sasl.user.as_bytes());
                token.push(0);
                token.extend_from_slice(sasl.password.expose().as_bytes());
                self.sasl_round(&token, timeout).await?;
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let (mut scram, first) = Scram::start(sasl, client_nonce());
                let server_first = self.sasl_round(&first, timeout).await?;
                let last = scram.respond(&server_first)?;
                let server_final = self.sasl_round(&last, timeout).await?;
                scram.verify(&server_final)?;
            }
        }
        Ok(())
    }

    /// One `SaslAuthenticate` round: sends `token`, returns the server's bytes.
    async fn sasl_round(&mut self, token: &[u8], timeout: Duration) -> Result<Vec<u8>, Error> {
        let mut w = wire::Writer::default();
        w.bytes(token);
        let body = self
            .call(wire::api::SASL_AUTHENTICATE, &w.0, timeout)
            .await?;
        let (code, message, bytes) = wire::sasl_authenticate(&mut Reader::new(&body))
            .map_err(|e| self.refused(&format!("a malformed SaslAuthenticate answer ({e})")))?;
        if code != 0 {
            return Err(self.refused(&format!(
                "error {code}: {}",
                message.unwrap_or_else(|| "authentication failed".into())
            )));
        }
        Ok(bytes)
    }

    fn refused(&self, why: &str) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!(
                "the broker at {} refused SASL authentication: {why}",
                self.addr
            ),
        )
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether an earlier call was interrupted, leaving the stream out of step (replace the
    /// link).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Sends one request and returns its response body (after the correlation id), waiting at
    /// most `timeout`.
    pub async fn call(
        &mut self,
        api_key: i16,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        if self.poisoned {
            return Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "the connection to {} is out of step after an interrupted request",
                    self.addr
                ),
            ));
        }
        let frame = wire::request(api_key, id, &self.client_id, body);
        // Cleared only when the response has been read: a call dropped midway leaves it set.
        self.poisoned = true;
        let result = tokio::time::timeout(timeout, self.exchange(&frame)).await;
        self.poisoned = !matches!(result, Ok(Ok(_)));
        match result {
            Err(_) => Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "the broker at {} did not answer request {api_key} within {} s",
                    self.addr,
                    timeout.as_secs()
                ),
            )),
            Ok(Err(e)) => Err(Error::new(
                ErrorKind::Connection,
                format!("lost the connection to the broker at {}", self.addr),
            )
            .with_source(e)),
            Ok(Ok(resp)) => {
                let got = i32::from_be_bytes([resp[0], resp[1], resp[2], resp[3]]);
                if got != id {
                    return Err(Error::new(
                        ErrorKind::Connection,
                        format!(
                            "the broker at {} answered request {got}, not {id}",
                            self.addr
                        ),
                    ));
                }
                Ok(resp[4..].to_vec())
            }
        }
    }

    /// Writes `frame` and reads one response frame (at least a correlation id).
    async fn exchange(&mut self, frame: &[u8]) -> std::io::Result<Vec<u8>> {
        self.stream.write_all(frame).await?;
        let size = self.stream.read_i32().await?;
        if size < 4 || size as usize > MAX_RESPONSE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a response frame of {size} bytes"),
            ));
        }
        let mut buf = vec![0u8; size as usize];
        self.stream.read_exact(&mut buf).await?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unanswered_request_poisons_the_link() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // A peer that accepts and never answers.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let _peer = tokio::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(s);
            });
            let mut link = Link::connect(&addr, "t", Duration::from_secs(5), &Default::default())
                .await
                .unwrap();
            assert!(!link.is_poisoned());
            let e = link
                .call(wire::api::HEARTBEAT, &[], Duration::from_millis(100))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("did not answer"), "{e}");
            assert!(link.is_poisoned());
            let e = link
                .call(wire::api::HEARTBEAT, &[], Duration::from_secs(5))
                .await
                .unwrap_err();
            assert!(e.to_string().contains("out of step"), "{e}");
        });
    }
}
