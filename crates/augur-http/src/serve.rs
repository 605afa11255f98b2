//! The HTTP/1.1 server loop augur's servers share, hardened against slow and idle clients: a
//! header read timeout, an idle timeout, and a connection limit that evicts the longest-idle
//! connection (never one inside a handler) so a new client is always served.
//!
//! A connection counts as *busy* while one of its requests is in a handler; otherwise it is
//! idle since its last request ended (or since it was accepted). Idle connections older than
//! `idle_timeout` are closed by a sweeper once a second, whether they sent nothing, half a
//! request head, or finished a request and kept the connection alive; hyper's header read
//! timeout closes a connection whose request head does not arrive in time. At
//! `max_connections`, accepting one more closes the longest-idle connection first; when every
//! connection is busy the new one is closed at once.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use crate::auth::ServerTls;

/// The limits a server enforces on its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest a request head may take to arrive.
    pub header_timeout: Duration,
    /// The longest a connection may stay open outside a handler.
    pub idle_timeout: Duration,
    /// The most open connections; one more evicts the longest-idle.
    pub max_connections: usize,
    /// The longest a request body may take to arrive (enforced where handlers read bodies).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 512,
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// One open connection, as the registry sees it.
struct Conn {
    /// Requests of it inside a handler.
    busy: AtomicUsize,
    /// When it last stopped being busy (or was accepted), in ms since the registry's start.
    idle_since: AtomicU64,
    abort: Mutex<Option<AbortHandle>>,
}

/// The open connections.
struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Closes the idle connection idle longest; `false` when every connection is busy.
    fn evict_one(&self) -> bool {
        let conns = self.conns.lock().expect("registry lock");
        let mut idle: Vec<&Arc<Conn>> = conns
            .values()
            .filter(|c| c.busy.load(Ordering::Acquire) == 0)
            .collect();
        idle.sort_by_key(|c| c.idle_since.load(Ordering::Acquire));
        // The first still open (an evicted one stays listed until its task has ended).
        let victim = idle
            .into_iter()
            .find_map(|c| c.abort.lock().expect("abort lock").take());
        victim.map(|a| a.abort()).is_some()
    }

    /// Closes every connection outside a handler (at shutdown).
    fn close_idle(&self) {
        self.sweep(Duration::ZERO);
    }

    /// Closes the connections idle for longer than `limit`.
    fn sweep(&self, limit: Duration) {
        let cutoff = (self.now_ms() + 1).saturating_sub(limit.as_millis() as u64);
        let conns = self.conns.lock().expect("registry lock");
        for c in conns.values() {
            if c.busy.load(Ordering::Acquire) == 0
                && c.idle_since.load(Ordering::Acquire) < cutoff
                && let Some(a) = c.abort.lock().expect("abort lock").take()
            {
                a.abort();
            }
        }
    }

    fn len(&self) -> usize {
        self.conns.lock().expect("registry lock").len()
    }
}

/// Marks its connection busy while a request is in a handler.
struct BusyGuard(Arc<Conn>, Arc<Registry>);

impl BusyGuard {
    fn new(conn: &Arc<Conn>, registry: &Arc<Registry>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        BusyGuard(conn.clone(), registry.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.idle_since.store(self.1.now_ms(), Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves; then stops accepting
/// and lets in-flight requests finish (connections close after their current request).
/// Handlers can read the peer's address with `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    serve_with(listener, app, limits, None, shutdown).await
}

/// As [`serve`], over TLS when `tls` is given (the handshake must finish within the header
/// timeout; a client that fails it is dropped).
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let tls = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.0));
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let sweeper = spawn_sweeper(registry.clone(), limits.idle_timeout);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(a) => a,
                // Out of descriptors or a connection reset before accept: keep serving.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        if registry.len() >= limits.max_connections && !registry.evict_one() {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let accept = Accept {
            stream,
            peer,
            tls: tls.clone(),
        };
        spawn_connection(accept, app.clone(), &registry, limits, stop_rx.clone());
    }
    let _ = stop_tx.send(true);
    sweeper.abort();
    registry.close_idle();
    // In-flight requests finish; their connections then close.
    while registry.len() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Closes idle connections past `idle` once a second.
fn spawn_sweeper(registry: Arc<Registry>, idle: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1).min(idle));
        loop {
            tick.tick().await;
            registry.sweep(idle);
        }
    })
}

/// An accepted connection, before its TLS handshake (when the server speaks TLS).
struct Accept {
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A connection's byte stream, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl Accept {
    /// The stream to serve HTTP on, once a TLS handshake (if any) finished within `limit`.
    async fn open(self, limit: Duration) -> Option<Box<dyn Io>> {
        let Some(acceptor) = self.tls else {
            return Some(Box::new(self.stream));
        };
        match tokio::time::timeout(limit, acceptor.accept(self.stream)).await {
            Ok(Ok(tls)) => Some(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => None,
        }
    }
}

/// Runs one connection in a task of its own, registered until it ends.
fn spawn_connection(
    accept: Accept,
    app: Router,
    registry: &Arc<Registry>,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn {
        busy: AtomicUsize::new(0),
        idle_since: AtomicU64::new(registry.now_ms()),
        abort: Mutex::new(None),
    });
    let peer = accept.peer;
    let (c, r) = (conn.clone(), registry.clone());
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let guard = BusyGuard::new(&c, &r);
            let mut app = app.clone();
            async move {
                let response = tower_service::Service::call(&mut app, req).await;
                drop(guard);
                response
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let registry2 = registry.clone();
    // The registry entry exists before the task runs, so eviction can always find it.
    registry
        .conns
        .lock()
        .expect("registry lock")
        .insert(id, conn.clone());
    let task = tokio::spawn(async move {
        let Some(io) = accept.open(limits.header_timeout).await else {
            return;
        };
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        tokio::select! {
            _ = connection.as_mut() => {}
            _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        }
    });
    *conn.abort.lock().expect("abort lock") = Some(task.abort_handle());
    tokio::spawn(async move {
        let _ = task.await;
        registry2.conns.lock().expect("registry lock").remove(&id);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                format!("hello {}", peer.ip())
            }),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, limits, async {
            let _ = rx.await;
        }));
        (addr, tx)
    }

    async fn get(addr: SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_full_server_evicts_the_longest_idle_connection_for_a_new_client() {
        let limits = Limits {
            max_connections: 4,
            ..Limits::default()
        };
        let (addr, _stop) = start(limits).await;
        let mut idle = Vec::new();
        for _ in 0..10 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let reply = tokio::time::timeout(Duration::from_secs(5), get(addr))
            .await
            .unwrap();
        assert!(
            reply.starts_with("HTTP/1.1 200") && reply.ends_with("hello 127.0.0.1"),
            "{reply}"
        );
        // The oldest idle connections were closed by the server.
        let mut buf = [0u8; 1];
        let closed = idle[0].read(&mut buf).await.unwrap();
        assert_eq!(closed, 0);
    }

    #[tokio::test]
    async fn idle_and_half_sent_connections_are_closed_after_the_idle_timeout() {
        let limits = Limits {
            idle_timeout: Duration::from_millis(300),
            header_timeout: Duration::from_secs(60),
            max_connections: 100,
            body_timeout: Duration::from_secs(30),
        };
        let (addr, _stop) = start(limits).await;
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
        half.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        for s in [&mut silent, &mut half] {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("closed within the timeout")
                .unwrap_or(0);
            assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
        }
        assert!(get(addr).await.starts_with("HTTP/1.1 200"));
    }
}
