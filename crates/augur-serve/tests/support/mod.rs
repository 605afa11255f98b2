//! Test helpers: a real server on a free port (its own tokio runtime on a thread), a minimal
//! blocking HTTP/1.1 client over raw TCP, the shipped model, and temporary model stores.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use augur_core::shutdown::{self, ShutdownTrigger};
use augur_model::{Model, ModelStore};
use augur_serve::{ModelSource, ServeConfig, Server, ServerHandle};
use serde_json::Value;

/// The example body from the original service.
pub const CAR: &str = r#"{"model":" Fiesta","year":2017,"transmission":"Automatic","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#;

/// The shipped model, loaded once.
pub fn shipped() -> Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    MODEL
        .get_or_init(|| Arc::new(augur_model::load_shipped().expect("the shipped model")))
        .clone()
}

/// A test config: a free loopback port, defaults otherwise.
pub fn config() -> ServeConfig {
    ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    }
}

/// What the model says for `row`, rounded to cents as the server answers.
pub fn expected(model: &Model, row: &str) -> f64 {
    let v: Value = serde_json::from_str(row).unwrap();
    let p = model.predict_json(v.as_object().unwrap()).unwrap();
    (p * 100.0).round() / 100.0
}

/// A running server.
pub struct TestServer {
    /// Its address.
    pub addr: SocketAddr,
    /// Its handle.
    pub handle: ServerHandle,
    /// Fires its shutdown.
    trigger: ShutdownTrigger,
    /// The thread running its runtime; yields `run`'s result.
    thread: Option<JoinHandle<Result<(), augur_core::Error>>>,
}

impl TestServer {
    /// Starts a server for `source` and waits until it is ready.
    pub fn start(cfg: ServeConfig, source: ModelSource) -> TestServer {
        let s = TestServer::spawn(cfg, source);
        s.wait_ready();
        s
    }

    /// Starts a server without waiting for readiness.
    pub fn spawn(cfg: ServeConfig, source: ModelSource) -> TestServer {
        let (trigger, shutdown) = shutdown::channel();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::bind(cfg, source).await?;
                tx.send((server.local_addr(), server.handle())).unwrap();
                server.run(shutdown).await
            })
        });
        let (addr, handle) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server bound");
        TestServer {
            addr,
            handle,
            trigger,
            thread: Some(thread),
        }
    }

    /// Waits (up to 30 s) until `/readyz` answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(self.addr, "/readyz").status != 200 {
            assert!(Instant::now() < deadline, "server not ready in 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Fires shutdown without waiting.
    pub fn trigger_shutdown(&self) {
        self.trigger.trigger();
    }

    /// Fires shutdown and returns `run`'s result.
    pub fn stop(mut self) -> Result<(), augur_core::Error> {
        self.trigger.trigger();
        self.thread.take().unwrap().join().expect("server thread")
    }

    /// Waits for `run` to return (after [`TestServer::trigger_shutdown`]).
    pub fn join(mut self) -> Result<(), augur_core::Error> {
        self.thread.take().unwrap().join().expect("server thread")
    }

    /// `GET /metrics`.
    pub fn metrics(&self) -> String {
        get(self.addr, "/metrics").text()
    }

    /// The value of one metric sample line (`name{labels}` exactly as rendered), or 0.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.trigger.trigger();
            let _ = t.join();
        }
    }
}

/// The value of the sample `series` in a metrics text, or 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

pub use augur_testkit::http::{Conn, Resp, get, post, request};

/// What the model server adds to a response.
pub trait ServeResp {
    /// The model version header.
    fn model(&self) -> &str;
}

impl ServeResp for Resp {
    fn model(&self) -> &str {
        self.header("x-augur-model").expect("x-augur-model header")
    }
}

/// A fresh temporary directory.
pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "augur-serve-test-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The shipped model with its prices multiplied by `factor` (its base score shifted by
/// `ln(factor)`; the model predicts `exp(score)`), so versions are told apart by their answers.
pub fn scaled_model(factor: f64) -> Model {
    let mut doc: Value = serde_json::from_slice(&shipped().to_json()).unwrap();
    let base = doc["forest"]["base_score"].as_f64().unwrap();
    doc["forest"]["base_score"] = serde_json::json!(base + factor.ln());
    Model::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

/// The shipped model with its JSON edited by `edit` (metadata, inputs), reloaded.
pub fn edited_model(edit: impl FnOnce(&mut Value)) -> Model {
    let mut doc: Value = serde_json::from_slice(&shipped().to_json()).unwrap();
    edit(&mut doc);
    Model::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

/// The shipped model reading a field named `houses` where it read `mileage`.
pub fn houses_model() -> Model {
    let text = String::from_utf8(shipped().to_json()).unwrap();
    Model::from_json(text.replace("\"mileage\"", "\"houses\"").as_bytes()).unwrap()
}

/// The shipped model with its recorded cross-validated MAE multiplied by `factor`.
pub fn mae_scaled_model(factor: f64) -> Model {
    edited_model(|d| {
        let mae = &mut d["meta"]["source"]["cv"]["pooled"]["mae"];
        *mae = serde_json::json!(mae.as_f64().unwrap() * factor);
    })
}

/// A store in a scratch directory holding the shipped model as version 1.
pub fn store_with_v1(tag: &str) -> (ModelStore, PathBuf) {
    let dir = scratch(tag);
    let store = ModelStore::open(&dir).unwrap();
    let m = store
        .save(Model::clone(&shipped()), Some("ford-price"))
        .unwrap();
    assert_eq!(m.tag(), "ford-price:1");
    (store, dir)
}

/// `n` rows: the example car with varying years and mileages.
pub fn rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut v: Value = serde_json::from_str(CAR).unwrap();
            v["year"] = serde_json::json!(2010 + (i % 10) as i64);
            v["mileage"] = serde_json::json!(1000 + 37 * i as i64);
            v
        })
        .collect()
}

/// Rows in a request that keeps the inference thread busy for a good fraction of a second:
/// 10,000 in a debug build, 200,000 in an optimized one.
pub const LONG: usize = if cfg!(debug_assertions) {
    10_000
} else {
    200_000
};

/// Removes a directory tree, ignoring errors.
pub fn cleanup(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
