//! Test helpers: the real worker on a free loopback port (its own tokio runtime on a thread), a
//! minimal blocking HTTP/1.1 client over raw TCP, polling helpers, and the original `car_data`
//! pipeline helpers (mirroring `crates/augur/tests/support/pipeline.rs`).

#![allow(dead_code)]

pub mod pipeline;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use augur_connect::{ConnectServer, WorkerConfig};
use augur_core::shutdown::{self, ShutdownTrigger};
use serde_json::Value;

/// A running worker.
pub struct TestWorker {
    /// Its REST address.
    pub addr: SocketAddr,
    /// Fires its shutdown.
    trigger: ShutdownTrigger,
    /// The thread running its runtime; yields `run`'s result.
    thread: Option<JoinHandle<Result<(), augur_core::Error>>>,
    /// The CA (PEM) that signed its HTTPS certificate, when its REST API is HTTPS.
    ca: Option<String>,
}

impl TestWorker {
    /// Starts a worker on `bootstrap` (default settings, a free port, a short shutdown timeout).
    pub fn start(bootstrap: &str) -> TestWorker {
        let mut cfg = WorkerConfig::new(bootstrap);
        cfg.addr = "127.0.0.1:0".parse().unwrap();
        cfg.shutdown_timeout = Duration::from_secs(20);
        TestWorker::start_with(cfg)
    }

    /// Starts a worker with `cfg`.
    pub fn start_with(cfg: WorkerConfig) -> TestWorker {
        let (trigger, shutdown) = shutdown::channel();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = match ConnectServer::start(cfg).await {
                    Ok(s) => s,
                    Err(e) => {
                        tx.send(Err(e.to_string())).unwrap();
                        return Err(e);
                    }
                };
                tx.send(Ok(server.local_addr())).unwrap();
                server.run(shutdown).await
            })
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("worker started")
            .unwrap_or_else(|e| panic!("worker failed to start: {e}"));
        TestWorker {
            addr,
            trigger,
            thread: Some(thread),
            ca: None,
        }
    }

    /// Starts a worker with `cfg` whose REST API is HTTPS with a certificate `ca_pem` signed
    /// (for `127.0.0.1`): requests go over TLS.
    pub fn start_https(cfg: WorkerConfig, ca_pem: &str) -> TestWorker {
        assert!(cfg.tls.is_some(), "an HTTPS worker needs cfg.tls");
        let mut w = TestWorker::start_with(cfg);
        w.ca = Some(ca_pem.to_string());
        w
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> Resp {
        match &self.ca {
            None => request(self.addr, method, path, body),
            Some(ca) => augur_testkit::http::Conn::open_tls(self.addr, "127.0.0.1", ca)
                .expect("TLS to the worker")
                .request(method, path, &[], body),
        }
    }

    /// Fires shutdown and returns `run`'s result.
    pub fn stop(mut self) -> Result<(), augur_core::Error> {
        self.trigger.trigger();
        self.thread.take().unwrap().join().expect("worker thread")
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, b"")
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> Resp {
        self.request("DELETE", path, b"")
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, body.to_string().as_bytes())
    }

    /// `PUT path` with a JSON body (`Value::Null`: no body).
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        let b = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.request("PUT", path, &b)
    }

    /// `POST /connectors` for `name` with `config`; asserts 201.
    pub fn create(&self, name: &str, config: &Value) -> Value {
        let r = self.post(
            "/connectors",
            &serde_json::json!({"name": name, "config": config}),
        );
        assert_eq!(r.status, 201, "create {name}: {}", r.text());
        r.json()
    }

    /// The connector's status body.
    pub fn status(&self, name: &str) -> Value {
        let r = self.get(&format!("/connectors/{name}/status"));
        assert_eq!(r.status, 200, "status of {name}: {}", r.text());
        r.json()
    }

    /// Waits until the connector's status satisfies `pred`; returns it.
    pub fn wait_status(&self, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status(name);
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {what} not reached in 60 s; status {s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the connector and all its (at least one) tasks are in `state`.
    pub fn wait_state(&self, name: &str, state: &str) -> Value {
        self.wait_status(name, state, |s| {
            s["connector"]["state"] == state
                && s["tasks"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["state"] == state))
        })
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.trigger.trigger();
            let _ = t.join();
        }
    }
}

pub use augur_testkit::http::{Resp, request};

/// What Kafka Connect's error bodies look like.
pub trait ConnectResp {
    /// Asserts a Kafka Connect error body with `status`; returns its message.
    fn error(&self, status: u16) -> String;
}

impl ConnectResp for Resp {
    fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "unexpected status: {}", self.text());
        let v = self.json();
        assert_eq!(v["error_code"], status, "error_code: {v}");
        assert_eq!(
            v.as_object().unwrap().len(),
            2,
            "only error_code and message: {v}"
        );
        v["message"].as_str().expect("message").to_string()
    }
}

/// Waits until `f` returns `Some`, polling every 100 ms for up to `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every log line the test process writes, from [`capture_logs`] on.
pub fn logs() -> String {
    let buf = LOGS.get().expect("capture_logs() first");
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// The log buffer.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

/// Sends the process's logs (every level from info) into a buffer [`logs`] reads.
pub fn capture_logs() {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = LOGS
        .get_or_init(|| Arc::new(Mutex::new(Vec::new())))
        .clone();
    let writer = Buf(buf);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init();
}
