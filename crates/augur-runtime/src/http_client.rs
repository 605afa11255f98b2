//! Keep-alive HTTP/1.1 connections to one server (hyper's connection API), each driven on the
//! task that sends on it, so a request costs no hand-off to another task.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use augur_core::{Error, ErrorKind};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Idle connections kept at most.
const MAX_IDLE: usize = 8;

/// One open connection: its request handle and the future that performs its I/O.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

/// How an exchange failed.
enum Failure {
    /// No answer began: the connection was closed or broken (an idle one the server closed).
    NoAnswer(Error),
    /// The answer broke off or was too large.
    Broken(Error),
}

/// Idle keep-alive connections to `host:port`, shared by clones.
#[derive(Clone)]
pub(crate) struct Pool {
    host: String,
    port: u16,
    idle: Arc<Mutex<Vec<Conn>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({}:{})", self.host, self.port)
    }
}

fn transient(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Connection, msg.into())
}

impl Pool {
    /// No connections yet; the first request opens one.
    pub(crate) fn new(host: impl Into<String>, port: u16) -> Pool {
        Pool {
            host: host.into(),
            port,
            idle: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Sends the request `make` builds on an idle connection — or on a new one when none is
    /// idle or the idle one turns out closed — and reads the answer (at most `limit` bytes).
    pub(crate) async fn send(
        &self,
        make: impl Fn() -> Request<Full<Bytes>>,
        limit: usize,
    ) -> Result<(u16, Bytes), Error> {
        if let Some(conn) = self.take_idle() {
            match exchange(conn, make(), limit).await {
                Ok((conn, answer)) => {
                    self.put_back(conn);
                    return Ok(answer);
                }
                // A connection the server closed while idle: try a new one at once.
                Err(Failure::NoAnswer(_)) => {}
                Err(Failure::Broken(e)) => return Err(e),
            }
        }
        let conn = self.open().await?;
        match exchange(conn, make(), limit).await {
            Ok((conn, answer)) => {
                self.put_back(conn);
                Ok(answer)
            }
            Err(Failure::NoAnswer(e) | Failure::Broken(e)) => Err(e),
        }
    }

    fn take_idle(&self) -> Option<Conn> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put_back(&self, conn: Option<Conn>) {
        let Some(conn) = conn else {
            return;
        };
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// Opens a connection (TCP_NODELAY) and does the HTTP/1.1 handshake.
    async fn open(&self) -> Result<Conn, Error> {
        let cannot = |e: std::io::Error| {
            transient(format!(
                "cannot reach the model server at {}:{}",
                self.host, self.port
            ))
            .with_source(e)
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(cannot)?;
        tcp.set_nodelay(true).map_err(cannot)?;
        let (sender, driver) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| transient("HTTP handshake with the model server failed").with_source(e))?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
        })
    }
}

/// One request and its whole answer on `conn`, driving the connection on this task; the
/// connection comes back for reuse unless it ended.
async fn exchange(
    mut conn: Conn,
    req: Request<Full<Bytes>>,
    limit: usize,
) -> Result<(Option<Conn>, (u16, Bytes)), Failure> {
    // Whether the connection is still open, and the answer.
    let outcome: Result<(bool, (u16, Bytes)), Failure> = {
        let Conn { sender, driver } = &mut conn;
        let work = async {
            sender.ready().await.map_err(|e| {
                Failure::NoAnswer(
                    transient("the model server closed the connection").with_source(e),
                )
            })?;
            let resp = sender.send_request(req).await.map_err(|e| {
                Failure::NoAnswer(transient("the model server did not answer").with_source(e))
            })?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), limit)
                .collect()
                .await
                .map_err(|e| {
                    Failure::Broken(
                        transient("reading from the model server failed").with_boxed_source(e),
                    )
                })?
                .to_bytes();
            Ok((status, body))
        };
        let mut work = std::pin::pin!(work);
        let ended = tokio::select! {
            biased;
            r = &mut work => Some(r),
            _ = driver.as_mut() => None,
        };
        match ended {
            Some(r) => r.map(|a| (true, a)),
            // The connection ended (the server closed it, perhaps right after answering): the
            // answer stands if it arrived whole; the connection is not reused.
            None => work.await.map(|a| (false, a)),
        }
    };
    let (open, answer) = outcome?;
    Ok((open.then_some(conn), answer))
}
