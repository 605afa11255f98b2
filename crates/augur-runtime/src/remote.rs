//! Predictions from a remote model server, for the enrichment stage: BentoML-style JSON
//! (`POST /predict` with an array of objects → an array of numbers — the original's contract)
//! or the Open Inference Protocol v2 (`POST /v2/models/{name}/infer`, one tensor per input
//! field). Client-side batching (one request per batch, up to `max_batch` rows), a timeout per
//! request, and retries with backoff for transient failures (connection errors, 5xx, 503
//! "busy"); a 400 means some row is bad, and the batch is retried row by row so only the bad
//! rows become dead letters.

use std::time::Duration;

use augur_core::{Error, ErrorKind};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    /// Base URL, `http://host:port` (no TLS).
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
    body: Vec<u8>,
}

/// A remote model.
#[derive(Debug, Clone)]
pub struct RemoteModel {
    settings: RemoteSettings,
    host: String,
    port: u16,
    /// OIP input names and whether each is a string (BYTES) input, from the model's metadata.
    inputs: Vec<(String, bool)>,
}

fn transient(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Connection, msg.into())
}

impl RemoteModel {
    /// Connects to the server and, for OIP, reads the model's inputs.
    pub async fn connect(settings: RemoteSettings) -> Result<RemoteModel, Error> {
        let rest = settings.url.strip_prefix("http://").ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("remote model URL {} must start with http://", settings.url),
            )
        })?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| {
                    Error::new(ErrorKind::Config, format!("bad port in {}", settings.url))
                })?,
            ),
            None => (hostport.to_string(), 80),
        };
        let mut m = RemoteModel {
            settings,
            host,
            port,
            inputs: Vec::new(),
        };
        if m.settings.protocol == Protocol::Oip {
            let a = m
                .request("GET", &format!("/v2/models/{}", m.settings.model), None)
                .await?;
            if a.status != 200 {
                return Err(Error::new(
                    ErrorKind::Model,
                    format!(
                        "the remote server has no model {} (HTTP {})",
                        m.settings.model, a.status
                    ),
                ));
            }
            let meta: Value = serde_json::from_slice(&a.body).map_err(|e| {
                Error::new(ErrorKind::Protocol, "bad OIP model metadata").with_source(e)
            })?;
            m.inputs = meta["inputs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| {
                            Some((i["name"].as_str()?.to_string(), i["datatype"] == "BYTES"))
                        })
                        .collect()
                })
                .unwrap_or_default();
        } else {
            let a = m.request("GET", "/readyz", None).await?;
            if a.status != 200 {
                return Err(transient(format!(
                    "the remote model server at {} is not ready (HTTP {})",
                    m.settings.url, a.status
                )));
            }
        }
        Ok(m)
    }

    /// `remote:<url>` (for headers and logs).
    pub fn describe(&self) -> String {
        format!("remote:{}", self.settings.url)
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer, Error> {
        let fut = async {
            let mut s = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| {
                    transient(format!(
                        "cannot reach the model server at {}",
                        self.settings.url
                    ))
                    .with_source(e)
                })?;
            s.set_nodelay(true).ok();
            let body = body.unwrap_or_default();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                self.host,
                self.port,
                body.len()
            );
            s.write_all(head.as_bytes())
                .await
                .map_err(|e| transient("writing to the model server failed").with_source(e))?;
            s.write_all(body)
                .await
                .map_err(|e| transient("writing to the model server failed").with_source(e))?;
            let mut buf = Vec::with_capacity(4096);
            s.read_to_end(&mut buf)
                .await
                .map_err(|e| transient("reading from the model server failed").with_source(e))?;
            parse_response(&buf)
        };
        tokio::time::timeout(self.settings.timeout, fut)
            .await
            .map_err(|_| {
                transient(format!(
                    "the model server did not answer within {:?}",
                    self.settings.timeout
                ))
            })?
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
        let mut attempt = 0;
        loop {
            let result = self.request("POST", &path, Some(&body)).await;
            let retry = match &result {
                Err(_) => true,
                Ok(a) => a.status >= 500 || a.status == 429,
            };
            if retry && attempt < self.settings.retries {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * 2u64.pow(attempt.min(6)))).await;
                continue;
            }
            let a = result?;
            if a.status >= 500 || a.status == 429 {
                return Err(transient(format!(
                    "the model server answered HTTP {} after {attempt} retries",
                    a.status
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

/// Parses an HTTP/1.1 response (Content-Length or chunked body).
fn parse_response(buf: &[u8]) -> Result<Answer, Error> {
    let bad = || {
        Error::new(
            ErrorKind::Protocol,
            "malformed HTTP response from the model server",
        )
    };
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad())?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let mut body = buf[end + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..nl]).map_err(|_| bad())?.trim(),
                16,
            )
            .map_err(|_| bad())?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size).ok_or_else(bad)?);
            rest = rest.get(size + 2..).ok_or_else(bad)?;
        }
        body = out;
    }
    Ok(Answer { status, body })
}
