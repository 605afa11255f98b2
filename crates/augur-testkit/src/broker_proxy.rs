//! A front for a Kafka broker whose own TLS and SASL cannot be used (Tansu 0.6, see
//! docs/security.md): it terminates TLS (optionally demanding a client certificate) and
//! performs Kafka's SASL exchange itself — `SaslHandshake` and `SaslAuthenticate` with PLAIN,
//! SCRAM-SHA-256 or SCRAM-SHA-512 (RFC 5802) against its own users — then forwards the
//! connection, byte for byte, to the broker. A client that is not authenticated gets nothing
//! but `ApiVersions` forwarded.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::tls::{Pem, TestCa};

/// What the front demands of clients.
#[derive(Clone, Default)]
pub struct Front {
    tls: Option<Arc<rustls::ServerConfig>>,
    users: Vec<(String, String)>,
}

impl Front {
    /// TLS with `server`'s certificate; with `client_ca`, a client certificate it signed too.
    pub fn tls(server: &Pem, client_ca: Option<&TestCa>) -> Front {
        Front {
            tls: Some(crate::tls::server_config(server, client_ca)),
            users: Vec::new(),
        }
    }

    /// No TLS (SASL over plain TCP, `SASL_PLAINTEXT`).
    pub fn plain() -> Front {
        Front::default()
    }

    /// SASL with these `(user, password)` pairs.
    pub fn with_users(mut self, users: &[(&str, &str)]) -> Front {
        self.users = users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        self
    }
}

/// A running front on a loopback port. Stops when dropped.
pub struct BrokerProxy {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BrokerProxy {
    /// Listens on `127.0.0.1:port` (0: a free one) and forwards to `127.0.0.1:upstream`.
    pub fn start(port: u16, front: Front, upstream: u16) -> BrokerProxy {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(serve(listener, front, upstream, stopped));
        });
        BrokerProxy {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    front: Front,
    upstream: u16,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let users = Arc::new(front.users);
    let acceptor = front.tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let socket = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => continue,
            },
        };
        let (acceptor, users) = (acceptor.clone(), users.clone());
        tokio::spawn(async move {
            match acceptor {
                Some(a) => {
                    if let Ok(tls) = a.accept(socket).await {
                        connect(tls, upstream, &users).await;
                    }
                }
                None => connect(socket, upstream, &users).await,
            }
        });
    }
}

async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    upstream: u16,
    users: &[(String, String)],
) {
    let Ok(mut broker) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    if !users.is_empty()
        && authenticate(&mut client, &mut broker, users)
            .await
            .is_none()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
}

const API_VERSIONS: i16 = 18;
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// Runs the client's side of the connection until it authenticated (`Some`) or must be
/// dropped (`None`: a wrong password, a request before authentication, a bad frame).
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    broker: &mut tokio::net::TcpStream,
    users: &[(String, String)],
) -> Option<()> {
    let mut mechanism = String::new();
    let mut scram: Option<Scram> = None;
    loop {
        let frame = read_frame(client).await?;
        let mut r = Reader(&frame);
        let (api_key, version, correlation) = (r.i16()?, r.i16()?, r.i32()?);
        let _client_id = r.string()?;
        match api_key {
            API_VERSIONS => {
                write_frame(broker, &frame).await?;
                let answer = read_frame(broker).await?;
                write_frame(client, &answer).await?;
            }
            SASL_HANDSHAKE => {
                mechanism = r.string()?.unwrap_or_default();
                let known = MECHANISMS.contains(&mechanism.as_str());
                write_frame(client, &handshake_response(correlation, known)).await?;
                if !known {
                    return None;
                }
            }
            SASL_AUTHENTICATE if version <= 1 => {
                let bytes = r.bytes()?;
                let step = auth_step(&mechanism, &mut scram, &bytes, users);
                let ok = step.is_ok();
                write_frame(client, &authenticate_response(correlation, version, step)).await?;
                match (ok, &scram) {
                    (false, _) => return None,
                    (true, Some(s)) if !s.done => {}
                    (true, _) => return Some(()),
                }
            }
            _ => return None,
        }
    }
}

/// One `SaslAuthenticate` round: the bytes to send back, or the failure message.
fn auth_step(
    mechanism: &str,
    scram: &mut Option<Scram>,
    bytes: &[u8],
    users: &[(String, String)],
) -> Result<Vec<u8>, String> {
    let failed = || "Authentication failed: Invalid username or password".to_string();
    if mechanism == "PLAIN" {
        let text = String::from_utf8_lossy(bytes);
        let mut parts = text.split('\0').skip(1);
        let (user, password) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let ok = users.iter().any(|(u, p)| u == user && p == password);
        return if ok { Ok(Vec::new()) } else { Err(failed()) };
    }
    match scram {
        None => {
            let (s, first) = Scram::first(mechanism, bytes, users).ok_or_else(failed)?;
            *scram = Some(s);
            Ok(first)
        }
        Some(s) => s.finish(bytes).ok_or_else(failed),
    }
}

/// The server side of one SCRAM exchange (RFC 5802; SHA-256 or SHA-512).
struct Scram {
    sha512: bool,
    password: String,
    salt: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    server_first: String,
    done: bool,
}

const ITERATIONS: u32 = 4096;

impl Scram {
    fn first(
        mechanism: &str,
        bytes: &[u8],
        users: &[(String, String)],
    ) -> Option<(Scram, Vec<u8>)> {
        let text = std::str::from_utf8(bytes).ok()?;
        let bare = text.strip_prefix("n,,")?.to_string();
        let attr = |k: &str| {
            bare.split(',')
                .find_map(|p| p.strip_prefix(k))
                .map(str::to_string)
        };
        let user = attr("n=")?;
        let (_, password) = users.iter().find(|(u, _)| *u == user)?;
        let nonce = format!("{}{}", attr("r=")?, server_nonce());
        let salt = format!("salt-of-{user}").into_bytes();
        let server_first = format!("r={nonce},s={},i={ITERATIONS}", B64.encode(&salt));
        let s = Scram {
            sha512: mechanism == "SCRAM-SHA-512",
            password: password.clone(),
            salt,
            nonce,
            client_first_bare: bare,
            server_first: server_first.clone(),
            done: false,
        };
        Some((s, server_first.into_bytes()))
    }

    fn finish(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (without_proof, proof) = text.rsplit_once(",p=")?;
        if !without_proof.contains(&format!("r={}", self.nonce)) {
            return None;
        }
        let proof = B64.decode(proof).ok()?;
        let auth = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let salted = self.hi();
        let client_key = self.hmac(&salted, b"Client Key");
        let stored_key = self.hash(&client_key);
        let signature = self.hmac(&stored_key, auth.as_bytes());
        let expected: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        if proof != expected {
            return None;
        }
        let server_key = self.hmac(&salted, b"Server Key");
        self.done = true;
        Some(format!("v={}", B64.encode(self.hmac(&server_key, auth.as_bytes()))).into_bytes())
    }

    fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        if self.sha512 {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(key).expect("hmac key");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        } else {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("hmac key");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }

    fn hash(&self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        if self.sha512 {
            sha2::Sha512::digest(data).to_vec()
        } else {
            sha2::Sha256::digest(data).to_vec()
        }
    }

    /// PBKDF2 with the mechanism's HMAC (RFC 5802's `Hi`).
    fn hi(&self) -> Vec<u8> {
        let mut block = self.salt.clone();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(self.password.as_bytes(), &block);
        let mut out = u.clone();
        for _ in 1..ITERATIONS {
            u = self.hmac(self.password.as_bytes(), &u);
            out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        out
    }
}

fn server_nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    B64.encode(format!("{t}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

fn handshake_response(correlation: i32, known: bool) -> Vec<u8> {
    let mut out = correlation.to_be_bytes().to_vec();
    out.extend_from_slice(&(if known { 0i16 } else { 33 }).to_be_bytes());
    out.extend_from_slice(&(MECHANISMS.len() as i32).to_be_bytes());
    for m in MECHANISMS {
        out.extend_from_slice(&(m.len() as i16).to_be_bytes());
        out.extend_from_slice(m.as_bytes());
    }
    out
}

/// A `SaslAuthenticate` v0/v1 response; a failure is error 58 (SASL_AUTHENTICATION_FAILED).
fn authenticate_response(correlation: i32, version: i16, step: Result<Vec<u8>, String>) -> Vec<u8> {
    let mut out = correlation.to_be_bytes().to_vec();
    let (code, message, bytes) = match step {
        Ok(b) => (0i16, None, b),
        Err(m) => (58, Some(m), Vec::new()),
    };
    out.extend_from_slice(&code.to_be_bytes());
    match message {
        Some(m) => {
            out.extend_from_slice(&(m.len() as i16).to_be_bytes());
            out.extend_from_slice(m.as_bytes());
        }
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(&bytes);
    if version >= 1 {
        out.extend_from_slice(&0i64.to_be_bytes());
    }
    out
}

/// Reads one size-prefixed Kafka frame (at most 1 MiB during authentication).
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let len = s.read_i32().await.ok()?;
    if !(0..=1 << 20).contains(&len) {
        return None;
    }
    let mut buf = vec![0; len as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

async fn write_frame<S: AsyncWrite + Unpin>(s: &mut S, frame: &[u8]) -> Option<()> {
    s.write_i32(frame.len() as i32).await.ok()?;
    s.write_all(frame).await.ok()?;
    s.flush().await.ok()
}

/// Big-endian reads over a request frame.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Some(None);
        }
        Some(Some(
            String::from_utf8_lossy(self.take(len as usize)?).into_owned(),
        ))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = self.i32()?;
        Some(self.take(len.max(0) as usize)?.to_vec())
    }
}
