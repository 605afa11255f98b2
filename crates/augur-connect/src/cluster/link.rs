//! One connection to a broker for the group APIs: framed requests with correlation ids, one
//! request in flight at a time (plain TCP; TLS and SASL are not supported here yet).

use std::time::Duration;

use augur_core::{Error, ErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wire;

/// The largest response accepted (a JoinGroup response carries every member's metadata).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// A connection to one broker.
#[derive(Debug)]
pub struct Link {
    /// The socket.
    stream: TcpStream,
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

impl Link {
    /// Connects to `addr` (`host:port`) within `timeout`.
    pub async fn connect(addr: &str, client_id: &str, timeout: Duration) -> Result<Link, Error> {
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
        Ok(Link {
            stream,
            addr: addr.to_string(),
            client_id: client_id.to_string(),
            next: 1,
            poisoned: false,
        })
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
            let mut link = Link::connect(&addr, "t", Duration::from_secs(5))
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
