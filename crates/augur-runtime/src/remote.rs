//! Predictions from a remote model server, for the enrichment stage: BentoML-style JSON
//! (`POST /predict` with an array of objects → an array of numbers — the original's contract)
//! or the Open Inference Protocol v2 (`POST /v2/models/{name}/infer`, one tensor per input
//! field). Client-side batching (one request per batch, up to `max_batch` rows) over pooled
//! keep-alive connections (hyper), a timeout per request, and retries with backoff for
//! transient failures (connection errors, 5xx, 503
//! "busy"); a 400 means some row is bad, and the batch is retried row by row so only the bad
//! rows become dead letters.

use std::time::Duration;

use augur_core::{Backoff, Error, ErrorKind};

use crate::http_client::Pool;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;
use hyper::{Method, Request};
use serde_json::{Map, Value, json};

/// Which protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// BentoML's `POST /predict` (JSON objects in, numbers out).
    BentoMl,
    /// Open Inference Protocol v2.
    Oip,
}

impl Protocol {
    /// Parses `bentoml` or `oip` (also `v2`).
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bentoml" | "json" => Some(Protocol::BentoMl),
            "oip" | "v2" | "kserve-v2" => Some(Protocol::Oip),
            _ => None,
        }
    }
}

/// How to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSettings {
    /// Base URL, `http://host:port` with an optional path prefix (no TLS).
    pub url: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Model name (OIP).
    pub model: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Attempts for a transient failure before the batch fails.
    pub retries: u32,
    /// Rows per request at most.
    pub max_batch: usize,
}

impl RemoteSettings {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>, protocol: Protocol) -> Self {
        RemoteSettings {
            url: url.into(),
            protocol,
            model: "ford-price".into(),
            timeout: Duration::from_secs(5),
            retries: 5,
            max_batch: 256,
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Bytes,
}

/// `application/json`.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The largest answer read from a model server.
const MAX_ANSWER: usize = 64 << 20;

/// A remote model.
#[derive(Debug, Clone)]
pub struct RemoteModel {
    settings: RemoteSettings,
    /// `http://host:port` and the URL's path without a trailing slash.
    base: String,
    /// Keep-alive connections to the server.
    pool: Pool,
    /// OIP input names and whether each is a string (BYTES) input, from the model's metadata.
    inputs: Vec<(String, bool)>,
}

fn transient(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Connection, msg.into())
}

/// Where requests go: the base URL (scheme, authority and path prefix of `url`), the host and
/// the port.
fn target(url: &str) -> Result<(String, String, u16), Error> {
    let bad = |why: &str| Error::new(ErrorKind::Config, format!("remote model URL {url} {why}"));
    let uri: hyper::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("must start with http://"));
    }
    let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
    let port = match &authority.as_str()[authority.host().len()..] {
        "" => 80,
        p => p
            .strip_prefix(':')
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| bad("has a bad port"))?,
    };
    let path = uri.path().trim_end_matches('/');
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    Ok((format!("http://{authority}{path}"), host.to_string(), port))
}

impl RemoteModel {
    /// Connects to the server and, for OIP, reads the model's inputs.
    pub async fn connect(settings: RemoteSettings) -> Result<RemoteModel, Error> {
        let (base, host, port) = target(&settings.url)?;
        let mut m = RemoteModel {
            base,
            pool: Pool::new(host, port),
            settings,
            inputs: Vec::new(),
        };
        if m.settings.protocol == Protocol::Oip {
            m.inputs = m.oip_inputs().await?;
        } else {
            let a = m.request(Method::GET, "/readyz", Bytes::new()).await?;
            if a.status != 200 {
                return Err(transient(format!(
                    "the remote model server at {} is not ready (HTTP {})",
                    m.settings.url, a.status
                )));
            }
        }
        Ok(m)
    }

    /// The OIP model's input names and whether each is a string (BYTES) input.
    async fn oip_inputs(&self) -> Result<Vec<(String, bool)>, Error> {
        let path = format!("/v2/models/{}", self.settings.model);
        let a = self.request(Method::GET, &path, Bytes::new()).await?;
        if a.status != 200 {
            return Err(Error::new(
                ErrorKind::Model,
                format!(
                    "the remote server has no model {} (HTTP {})",
                    self.settings.model, a.status
                ),
            ));
        }
        let meta: Value = serde_json::from_slice(&a.body).map_err(|e| {
            Error::new(ErrorKind::Protocol, "bad OIP model metadata").with_source(e)
        })?;
        Ok(meta["inputs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|i| {
                        Some((i["name"].as_str()?.to_string(), i["datatype"] == "BYTES"))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `remote:<url>` (for headers and logs).
    pub fn describe(&self) -> String {
        format!("remote:{}", self.settings.url)
    }

    /// One request on a kept-alive connection, within the per-request timeout.
    async fn request(&self, method: Method, path: &str, body: Bytes) -> Result<Answer, Error> {
        let uri: hyper::Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|e| Error::new(ErrorKind::Config, "bad model server URL").with_source(e))?;
        let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
        let make = || {
            let mut req = Request::new(Full::new(body.clone()));
            *req.method_mut() = method.clone();
            *req.uri_mut() = uri.clone();
            let headers = req.headers_mut();
            headers.insert(hyper::header::CONTENT_TYPE, JSON.clone());
            if let Ok(h) = hyper::header::HeaderValue::from_str(&host) {
                headers.insert(hyper::header::HOST, h);
            }
            req
        };
        let (status, body) =
            tokio::time::timeout(self.settings.timeout, self.pool.send(make, MAX_ANSWER))
                .await
                .map_err(|_| {
                    transient(format!(
                        "the model server did not answer within {:?}",
                        self.settings.timeout
                    ))
                })??;
        Ok(Answer { status, body })
    }

    /// Predicts `rows` (JSON objects keyed by column name). Transient failures are retried;
    /// `Err` means the server could not be used (the caller should not commit). Per-row
    /// problems come back as `Ok(Err(reason))`.
    pub async fn predict(
        &self,
        rows: &[Map<String, Value>],
    ) -> Result<Vec<Result<f64, String>>, Error> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(self.settings.max_batch.max(1)) {
            match self.call(chunk).await? {
                Ok(prices) => out.extend(prices.into_iter().map(Ok)),
                Err(_) if chunk.len() > 1 => {
                    // Some row is bad: find which, one by one.
                    for row in chunk {
                        out.push(match self.call(std::slice::from_ref(row)).await? {
                            Ok(p) => p.first().copied().ok_or_else(|| "empty answer".to_string()),
                            Err(reason) => Err(reason),
                        });
                    }
                }
                Err(reason) => out.push(Err(reason)),
            }
        }
        Ok(out)
    }

    /// One request with retries. `Ok(Err(reason))`: the server refused the rows (400).
    async fn call(&self, rows: &[Map<String, Value>]) -> Result<Result<Vec<f64>, String>, Error> {
        let (path, body) = match self.settings.protocol {
            Protocol::BentoMl => (
                "/predict".to_string(),
                serde_json::to_vec(&rows).unwrap_or_default(),
            ),
            Protocol::Oip => (
                format!("/v2/models/{}/infer", self.settings.model),
                serde_json::to_vec(&self.oip_request(rows)).unwrap_or_default(),
            ),
        };
        let body = Bytes::from(body);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2))
            .with_limit(self.settings.retries);
        loop {
            let result = self.request(Method::POST, &path, body.clone()).await;
            let retry = match &result {
                Err(e) => e.kind() == ErrorKind::Connection,
                Ok(a) => a.status >= 500 || a.status == 429,
            };
            if retry && let Some(wait) = backoff.wait() {
                tokio::time::sleep(wait).await;
                continue;
            }
            let a = result?;
            if a.status >= 500 || a.status == 429 {
                return Err(transient(format!(
                    "the model server answered HTTP {} after {} retries",
                    a.status,
                    backoff.attempt()
                )));
            }
            let json: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
            if a.status != 200 {
                let reason = json
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {}", a.status));
                return Ok(Err(format!("the model server refused the row: {reason}")));
            }
            let numbers = match self.settings.protocol {
                Protocol::BentoMl => match &json {
                    Value::Array(a) => a.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>(),
                    Value::Number(n) => n.as_f64().map(|v| vec![v]),
                    _ => None,
                },
                Protocol::Oip => json["outputs"][0]["data"]
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_f64).collect()),
            };
            return match numbers {
                Some(n) if n.len() == rows.len() => Ok(Ok(n)),
                _ => Err(Error::new(
                    ErrorKind::Protocol,
                    "the model server's answer has the wrong shape",
                )),
            };
        }
    }

    fn oip_request(&self, rows: &[Map<String, Value>]) -> Value {
        let get = |row: &Map<String, Value>, name: &str| {
            row.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null)
        };
        let inputs: Vec<Value> = self
            .inputs
            .iter()
            .map(|(name, bytes)| {
                let data: Vec<Value> = rows.iter().map(|r| get(r, name)).collect();
                json!({"name": name, "datatype": if *bytes { "BYTES" } else { "FP64" }, "shape": [rows.len()], "data": data})
            })
            .collect();
        json!({"inputs": inputs})
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;

    #[test]
    fn targets() {
        let t = |u: &str| target(u).unwrap();
        let owned = |b: &str, h: &str, p: u16| (b.to_string(), h.to_string(), p);
        assert_eq!(
            t("http://127.0.0.1:3000"),
            owned("http://127.0.0.1:3000", "127.0.0.1", 3000)
        );
        assert_eq!(t("http://h:1/bento/"), owned("http://h:1/bento", "h", 1));
        assert_eq!(t("http://h"), owned("http://h", "h", 80));
        assert_eq!(t("http://[::1]:9/"), owned("http://[::1]:9", "::1", 9));
        for bad in [
            "https://h:1",
            "h:1",
            "http://",
            "http://h:x",
            "http://h:99999",
        ] {
            let e = target(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        }
    }

    /// A BentoML-style HTTP/1.1 server that answers every request with one price per row and
    /// keeps connections open; counts the connections it accepted.
    async fn server(accepted: Arc<AtomicUsize>) -> String {
        server_with(accepted, false).await
    }

    /// As [`server`]; with `one_each`, a connection is closed after its first answer (as a
    /// server's keep-alive timeout closes idle connections).
    async fn server_with(accepted: Arc<AtomicUsize>, one_each: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer_requests(sock, one_each));
            }
        });
        format!("http://{addr}")
    }

    async fn answer_requests(sock: tokio::net::TcpStream, one_each: bool) {
        let mut r = BufReader::new(sock);
        loop {
            let mut len = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).await.unwrap();
            let rows = serde_json::from_slice::<Vec<Value>>(&body).map_or(0, |v| v.len());
            let answer = serde_json::to_string(&vec![1.5; rows]).unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                answer.len()
            );
            let reply = format!("{head}{answer}");
            r.get_mut().write_all(reply.as_bytes()).await.unwrap();
            if one_each {
                return;
            }
        }
    }

    #[tokio::test]
    async fn batches_reuse_one_connection() {
        let accepted = Arc::new(AtomicUsize::new(0));
        let url = server(accepted.clone()).await;
        let mut settings = RemoteSettings::new(url, Protocol::BentoMl);
        settings.max_batch = 3;
        let model = RemoteModel::connect(settings).await.unwrap();
        let row: Map<String, Value> = serde_json::from_str(r#"{"model":"Focus"}"#).unwrap();
        for _ in 0..20 {
            let out = model.predict(&vec![row.clone(); 7]).await.unwrap();
            assert_eq!(out.len(), 7);
            assert!(out.iter().all(|p| p.as_ref().is_ok_and(|p| *p == 1.5)));
        }
        // 1 readiness check + 60 batches, all on the first connection.
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_replaced_without_a_retry() {
        let accepted = Arc::new(AtomicUsize::new(0));
        let url = server_with(accepted.clone(), true).await;
        let mut settings = RemoteSettings::new(url, Protocol::BentoMl);
        settings.retries = 0;
        let model = RemoteModel::connect(settings).await.unwrap();
        let row: Map<String, Value> = serde_json::from_str(r#"{"model":"Focus"}"#).unwrap();
        for _ in 0..10 {
            let out = model.predict(std::slice::from_ref(&row)).await.unwrap();
            assert_eq!(out.len(), 1);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 11);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transient_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut settings =
            RemoteSettings::new(format!("http://127.0.0.1:{port}"), Protocol::BentoMl);
        settings.retries = 1;
        let e = RemoteModel::connect(settings).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Connection);
        assert!(e.to_string().contains("cannot reach"), "{e}");
    }
}
