//! Helpers shared by the integration tests: run the real `augur` binary, collect its JSON
//! lines, stop or kill it, and compare Debezium events with run-specific values redacted.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod pipeline;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use augur_testkit::TestDb;
use serde_json::Value;

/// A `Command` for the augur binary under test.
pub fn augur() -> Command {
    Command::new(env!("CARGO_BIN_EXE_augur"))
}

/// A unique scratch directory for one test.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "augur-test-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Debezium connector properties for `db` with `topic.prefix` = `prefix`.
pub fn connector_props(db: &TestDb, prefix: &str) -> Vec<(String, String)> {
    [
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector",
        ),
        ("plugin.name", "pgoutput"),
        ("database.hostname", "127.0.0.1"),
        ("database.user", "postgres"),
        ("database.password", "postgres"),
        ("slot.max.retries", "20"),
        ("slot.retry.delay.ms", "250"),
        ("status.update.interval.ms", "200"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([
        ("database.port".to_string(), db.port.to_string()),
        ("database.dbname".to_string(), db.name.clone()),
        ("topic.prefix".to_string(), prefix.to_string()),
    ])
    .collect()
}

/// A running `augur capture` process.
pub struct Capture {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Capture {
    /// Starts `augur capture` with `props` (as `--set`) plus `extra` arguments.
    pub fn start(props: &[(String, String)], extra: &[&str]) -> Capture {
        Capture::start_reading(props, extra, usize::MAX)
    }

    /// [`Capture::start`] with a reader that closes augur's stdout after `limit` lines.
    pub fn start_reading(props: &[(String, String)], extra: &[&str], limit: usize) -> Capture {
        let mut cmd = augur();
        cmd.arg("capture");
        for (k, v) in props {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.env(
            "AUGUR_LOG",
            std::env::var("AUGUR_TEST_LOG").unwrap_or_else(|_| "info".into()),
        );
        let mut child = cmd.spawn().expect("spawn augur capture");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().take(limit) {
                match line {
                    Ok(l) => l2.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let e2 = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match err.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => e2
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Capture {
            child,
            lines,
            stderr,
        }
    }

    /// Lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for at least `n` lines; panics with stderr after `timeout`.
    pub fn wait_lines(&mut self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines
                    .iter()
                    .map(|l| serde_json::from_str(l).expect("JSON line"))
                    .collect();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "augur exited ({status}) after {} of {n} lines; stderr:\n{}",
                    self.lines().len(),
                    self.stderr()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "only {} of {n} lines after {timeout:?}; stderr:\n{}",
                    lines.len(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until stderr contains `text`.
    pub fn wait_stderr(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(text) {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "augur exited ({status}) before logging {text:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {text:?} in stderr after {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for exit. The wait is longer than augur's own shutdown deadline
    /// (30 s for in-flight changes to become durable, then the final confirmation), so a
    /// clean stop on a loaded machine is not taken for a hang; a hang shows augur's log.
    pub fn stop(mut self) -> (ExitStatus, String) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let Some(status) = wait_timeout(&mut self.child, Duration::from_secs(60)) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "augur did not exit within 60 s of SIGTERM; stderr:\n{}",
                self.stderr()
            );
        };
        std::thread::sleep(Duration::from_millis(50));
        (status, self.stderr())
    }

    /// SIGKILL.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        self.lines()
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(mut self, timeout: Duration) -> (ExitStatus, String) {
        let status = wait_timeout(&mut self.child, timeout).expect("augur exits");
        std::thread::sleep(Duration::from_millis(50));
        (status, self.stderr())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces values that differ from run to run (LSNs, txIds, timestamps, version, row ids) so
/// two events can be compared field by field and in field order.
pub fn redact_event(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(p) = v.get_mut("payload") {
        redact_payload(p);
    }
    v
}

fn redact_payload(p: &mut Value) {
    if !p.is_object() {
        return;
    }
    for k in ["ts_ms", "ts_us", "ts_ns"] {
        if p.get(k).is_some() {
            p[k] = Value::from(0);
        }
    }
    if let Some(s) = p.get_mut("source") {
        for k in [
            "version", "ts_ms", "ts_us", "ts_ns", "txId", "lsn", "sequence",
        ] {
            if s.get(k).is_some_and(|x| !x.is_null()) {
                s[k] = Value::from("<redacted>");
            }
        }
    }
    for row in ["before", "after"] {
        if let Some(r) = p.get_mut(row)
            && r.get("id").is_some()
        {
            r["id"] = Value::from(0);
        }
    }
    if p.get("id").is_some() && p.get("before").is_none() {
        p["id"] = Value::from(0);
    }
}

/// The key with its row id redacted.
pub fn redact_key(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(p) = v.get_mut("payload")
        && p.get("id").is_some()
    {
        p["id"] = Value::from(0);
    }
    v
}

/// The reference events Debezium 3.6.3 produced on this machine.
pub fn golden() -> Value {
    let path =
        augur_testkit::workspace_root().join("crates/augur/tests/fixtures/debezium/events.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Parses a golden `*_raw` string (keeps field order).
pub fn raw(v: &Value, field: &str) -> Value {
    match v.get(field).and_then(|r| r.as_str()) {
        Some(s) => serde_json::from_str(s).unwrap(),
        None => Value::Null,
    }
}

/// Asserts equality of two JSON values including object key order, with a readable diff.
pub fn assert_same_json(what: &str, want: &Value, got: &Value) {
    let (w, g) = (
        serde_json::to_string(want).unwrap(),
        serde_json::to_string(got).unwrap(),
    );
    if let Some(diff) = first_difference(&w, &g) {
        panic!("{what} {diff}");
    }
}

/// Where two texts first differ, with some context from each (`None`: equal).
pub fn first_difference(w: &str, g: &str) -> Option<String> {
    if w == g {
        return None;
    }
    let pos = w
        .bytes()
        .zip(g.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let window = |s: &str| {
        let from = (0..=pos.saturating_sub(120).min(s.len()))
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        let to = ((pos + 120).min(s.len())..=s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s[from..to].to_string()
    };
    Some(format!(
        "differs at byte {pos}:\n want …{}\n  got …{}",
        window(w),
        window(g)
    ))
}
