//! Requests that only the cluster's leader may serve (creating, reconfiguring, stopping and
//! deleting connectors, changing offsets) are forwarded to it, as Kafka Connect's
//! `HerderRequestHandler` forwards them: at most two hops (`?forward=true`, then
//! `?forward=false`), Kafka Connect's 409s when the leader is unknown or moved meanwhile, and
//! the leader's answer passed back unchanged.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;

use crate::error::{ApiError, ApiErrorKind};
use crate::worker::Worker;

/// How long a forwarded request may take (Kafka Connect's REST request timeout).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(90);
/// The largest answer relayed.
const MAX_ANSWER: usize = 16 << 20;

/// Where a request is served.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// Here (a lone worker, or the leader).
    Here,
    /// At the leader's `url`, with the `forward` flag to send along.
    Leader(String, bool),
}

/// Whether `method path` changes what only the leader may change.
fn leader_only(method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    matches!(
        (method.as_str(), parts.as_slice()),
        ("POST", ["connectors"])
            | ("DELETE", ["connectors", _])
            | ("PUT" | "PATCH", ["connectors", _, "config"])
            | ("PUT", ["connectors", _, "stop"])
            | ("PATCH" | "DELETE", ["connectors", _, "offsets"])
    )
}

/// The `forward` query flag: absent (`None`) on a client's request.
fn forward_flag(query: Option<&str>) -> Option<bool> {
    form_urlencoded_pairs(query)
        .find(|(k, _)| *k == "forward")
        .map(|(_, v)| v.eq_ignore_ascii_case("true"))
}

/// The query's `key=value` pairs (no decoding is needed for the keys used here).
fn form_urlencoded_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Decides where a leader-only request is served.
pub(crate) fn target(
    leader: Option<&str>,
    own: &str,
    forward: Option<bool>,
) -> Result<Target, ApiError> {
    let Some(leader) = leader else {
        return Err(ApiError::new(
            ApiErrorKind::Conflict,
            "Cannot complete request momentarily due to no known leader URL, likely because a rebalance is underway.",
        ));
    };
    if leader == own {
        return Ok(Target::Here);
    }
    match forward {
        // A request forwarded twice without reaching the leader: the leader moved.
        Some(false) => Err(ApiError::new(
            ApiErrorKind::Conflict,
            "Cannot complete request because of a conflicting operation (e.g. worker rebalance)",
        )),
        _ => Ok(Target::Leader(leader.to_string(), forward.is_none())),
    }
}

/// Middleware: serves a leader-only request here when this worker leads (or works alone), and
/// forwards it otherwise.
pub(crate) async fn to_leader(State(worker): State<Worker>, req: Request, next: Next) -> Response {
    if !leader_only(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let Some((leader, own)) = worker.leadership() else {
        return next.run(req).await;
    };
    let flag = forward_flag(req.uri().query());
    match target(leader.as_deref(), &own, flag) {
        Ok(Target::Here) => next.run(req).await,
        Ok(Target::Leader(url, hop)) => match relay(&url, req, hop, worker.forward_tls()).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// The TLS client for forwarding: in a cluster whose REST API is HTTPS, or when a CA for the
/// leaders is given; it trusts `rest_ca` (or the system's CAs) and checks the leader's name.
pub(crate) fn client_tls(
    config: &crate::WorkerConfig,
) -> Result<Option<Arc<rustls::ClientConfig>>, augur_core::Error> {
    use crate::client_tls::{TlsSettings, Trust, Verify};
    let c = &config.cluster;
    if !c.enabled || (config.tls.is_none() && c.rest_ca.is_none()) {
        return Ok(None);
    }
    let settings = TlsSettings {
        trust: c.rest_ca.clone().map_or(Trust::System, Trust::File),
        identity: None,
        verify: Verify::Full,
    };
    settings.load(&[b"http/1.1"]).map(Some).map_err(|e| {
        augur_core::Error::new(
            augur_core::ErrorKind::Config,
            format!("the CA for forwarding to an HTTPS leader: {}", e.message()),
        )
    })
}

/// A connection to the leader: TCP, or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Connects to the leader at `authority`, with TLS when `tls` is given.
async fn connect(
    authority: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Box<dyn Stream>, String> {
    let tcp = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let name = crate::client_tls::server_name(authority).map_err(|e| e.message().to_string())?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with the leader failed: {e}"))?;
    Ok(Box::new(stream))
}

/// Sends `req` to the leader at `base` (`http://host:port/` or `https://…`) with
/// `forward=hop`; returns its answer.
async fn relay(
    base: &str,
    req: Request,
    hop: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Response, ApiError> {
    let io = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!("IO Error trying to forward REST request: {e}"))
    };
    let (authority, tls) = match (base.strip_prefix("http://"), base.strip_prefix("https://")) {
        (Some(rest), _) => (rest, None),
        (_, Some(rest)) => {
            let tls = tls.ok_or_else(|| {
                io(&"the leader's REST API is HTTPS and this worker has no TLS client for it (give it --tls-cert or --rest-ca-file)")
            })?;
            (rest, Some(tls))
        }
        _ => {
            return Err(io(&format!(
                "the leader's URL {base} is not http:// or https://"
            )));
        }
    };
    let authority = authority.trim_end_matches('/').to_string();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_ANSWER)
        .await
        .map_err(|e| io(&e))?;
    let mut query: Vec<String> = form_urlencoded_pairs(parts.uri.query())
        .filter(|(k, _)| *k != "forward")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    query.push(format!("forward={hop}"));
    let uri = format!("{}?{}", parts.uri.path(), query.join("&"));
    let mut out = hyper::Request::builder().method(parts.method).uri(uri);
    for name in [header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT] {
        if let Some(v) = parts.headers.get(&name) {
            out = out.header(name, v.clone());
        }
    }
    let out = out
        .header(
            header::HOST,
            HeaderValue::from_str(&authority).map_err(|e| io(&e))?,
        )
        .body(Full::new(body))
        .map_err(|e| io(&e))?;
    let exchange = async {
        let stream = connect(&authority, tls).await.map_err(|e| io(&e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| io(&e))?;
        tokio::spawn(conn);
        let answer = sender.send_request(out).await.map_err(|e| io(&e))?;
        let (parts, body) = answer.into_parts();
        let bytes: Bytes = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| io(&e))?
            .to_bytes();
        Ok::<_, ApiError>((parts, bytes))
    };
    let (parts, bytes) = tokio::time::timeout(FORWARD_TIMEOUT, exchange)
        .await
        .map_err(|_| io(&"the leader did not answer in time"))??;
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_that_kafka_connect_forwards_go_to_the_leader() {
        let yes = [
            ("POST", "/connectors"),
            ("POST", "/connectors/"),
            ("DELETE", "/connectors/a"),
            ("PUT", "/connectors/a/config"),
            ("PATCH", "/connectors/a/config"),
            ("PUT", "/connectors/a/stop"),
            ("PATCH", "/connectors/a/offsets"),
            ("DELETE", "/connectors/a/offsets"),
        ];
        let no = [
            ("GET", "/connectors"),
            ("GET", "/connectors/a/config"),
            ("PUT", "/connectors/a/pause"),
            ("PUT", "/connectors/a/resume"),
            ("POST", "/connectors/a/restart"),
            ("POST", "/connectors/a/tasks/0/restart"),
            ("PUT", "/connectors/a/topics/reset"),
            ("PUT", "/admin/loggers/augur"),
            ("PUT", "/connector-plugins/x/config/validate"),
        ];
        for (m, p) in yes {
            assert!(leader_only(&m.parse().unwrap(), p), "{m} {p}");
        }
        for (m, p) in no {
            assert!(!leader_only(&m.parse().unwrap(), p), "{m} {p}");
        }
    }

    #[test]
    fn two_hops_at_most_and_kafka_connects_conflicts() {
        let own = "http://w1/";
        assert_eq!(target(Some(own), own, None).unwrap(), Target::Here);
        assert_eq!(target(Some(own), own, Some(false)).unwrap(), Target::Here);
        assert_eq!(
            target(Some("http://w2/"), own, None).unwrap(),
            Target::Leader("http://w2/".into(), true)
        );
        assert_eq!(
            target(Some("http://w2/"), own, Some(true)).unwrap(),
            Target::Leader("http://w2/".into(), false)
        );
        let e = target(Some("http://w2/"), own, Some(false)).unwrap_err();
        assert_eq!(e.kind().status().as_u16(), 409);
        assert!(
            e.message().contains("conflicting operation"),
            "{}",
            e.message()
        );
        let e = target(None, own, None).unwrap_err();
        assert_eq!(e.kind().status().as_u16(), 409);
        assert!(
            e.message().contains("no known leader URL"),
            "{}",
            e.message()
        );
        assert_eq!(forward_flag(Some("a=1&forward=false")), Some(false));
        assert_eq!(forward_flag(Some("forward=TRUE")), Some(true));
        assert_eq!(forward_flag(None), None);
    }
}
