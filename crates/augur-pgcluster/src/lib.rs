//! Private PostgreSQL clusters: `initdb` into a temporary directory, start on a free loopback
//! port with `wal_level=logical`, stop and remove everything on drop.
//!
//! Used by `augur demo`, the test harness and the benchmarks. The server process is tied to the
//! thread that started it (`PR_SET_PDEATHSIG`), so it dies even if its owner is killed. When run
//! as root (which PostgreSQL refuses), the server runs as the `postgres` user.

use std::ffi::CString;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The superuser every private cluster is created with.
pub const SUPERUSER: &str = "postgres";
/// The superuser's password (SCRAM over TCP).
pub const SUPERUSER_PASSWORD: &str = "postgres";

/// How to set up a private cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `wal_level` (`logical` unless a test wants to see the refusal with `replica`).
    pub wal_level: String,
    /// Extra `postgresql.conf` lines.
    pub extra_conf: Vec<String>,
    /// Keep the data directory after drop (for debugging).
    pub keep: bool,
    /// Use this port instead of a free one.
    pub port: Option<u16>,
    /// Files written into the data directory, readable only by the server (certificates
    /// and keys for `ssl = on`).
    pub files: Vec<(String, Vec<u8>)>,
    /// Replaces `pg_hba.conf` (initdb's: SCRAM over TCP for every user and replication).
    pub hba: Option<String>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            wal_level: "logical".into(),
            extra_conf: Vec::new(),
            keep: false,
            port: None,
            files: Vec::new(),
            hba: None,
        }
    }
}

/// Errors starting or stopping a private cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "no PostgreSQL server binaries found (looked in $AUGUR_PG_BIN, /usr/lib/postgresql/*/bin and PATH); install postgresql-15 or set AUGUR_PG_BIN"
    )]
    NoBinaries,
    /// A step failed.
    #[error("{step}: {detail}")]
    Step {
        /// What was being done.
        step: String,
        /// What went wrong.
        detail: String,
    },
}

fn step_err(step: &str, detail: impl ToString) -> ClusterError {
    ClusterError::Step {
        step: step.to_string(),
        detail: detail.to_string(),
    }
}

/// A running private cluster. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct PgCluster {
    root: PathBuf,
    data: PathBuf,
    port: u16,
    bin: PathBuf,
    child: Option<Child>,
    run_as: Option<(u32, u32)>,
    keep: bool,
    options: ClusterOptions,
}

impl PgCluster {
    /// Starts a new private cluster with default options.
    pub fn start() -> Result<PgCluster, ClusterError> {
        Self::start_with(ClusterOptions::default())
    }

    /// Starts a new private cluster.
    pub fn start_with(options: ClusterOptions) -> Result<PgCluster, ClusterError> {
        let bin = find_bin_dir().ok_or(ClusterError::NoBinaries)?;
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user()?)
        } else {
            None
        };
        let template = template_dir(&bin, run_as)?;
        let root = unique_temp_dir("augur-pg")?;
        if let Some((uid, gid)) = run_as {
            chown(&root, uid, gid)?;
        }
        let data = root.join("data");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&data)
            .status()
            .map_err(|e| step_err("copying the template cluster", e))?;
        if !status.success() {
            return Err(step_err("copying the template cluster", status));
        }
        let port = match options.port {
            Some(p) => p,
            None => free_port().map_err(|e| step_err("finding a free port", e))?,
        };
        let mut conf = format!(
            "\n# augur private cluster\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = ''\nwal_level = {}\nmax_replication_slots = 32\n\
             max_wal_senders = 32\nfsync = off\nfull_page_writes = off\nshared_buffers = 64MB\n\
             max_connections = 200\nwal_sender_timeout = 60s\nlogging_collector = off\n\
             log_min_messages = warning\ntimezone = 'UTC'\n",
            options.wal_level
        );
        for line in &options.extra_conf {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = data.join("postgresql.auto.conf");
        fs::write(&conf_path, conf).map_err(|e| step_err("writing postgresql.auto.conf", e))?;
        if let Some((uid, gid)) = run_as {
            chown(&conf_path, uid, gid)?;
        }
        let hba = options
            .hba
            .as_ref()
            .map(|h| ("pg_hba.conf".to_string(), h.clone().into_bytes()));
        for (name, content) in options.files.iter().chain(hba.iter()) {
            write_private(&data.join(name), content, run_as)?;
        }
        let mut cluster = PgCluster {
            root,
            data,
            port,
            bin,
            child: None,
            run_as,
            keep: options.keep,
            options,
        };
        cluster.spawn_server()?;
        Ok(cluster)
    }

    fn spawn_server(&mut self) -> Result<(), ClusterError> {
        // After a crash the old pid file still says "ready": never mistake it for the new
        // server. Backends of a killed postmaster may hold its shared memory for a moment;
        // the new server then refuses to start, so try again briefly.
        let _ = fs::remove_file(self.data.join("postmaster.pid"));
        let mut tries = 0;
        loop {
            match self.spawn_server_once() {
                Err(e) if tries < 20 && e.to_string().contains("still in use") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(250));
                }
                other => return other,
            }
        }
    }

    fn spawn_server_once(&mut self) -> Result<(), ClusterError> {
        let log = fs::File::create(self.root.join("server.log"))
            .map_err(|e| step_err("creating the server log", e))?;
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        drop_privileges_and_tie_to_parent(&mut cmd, self.run_as);
        let child = cmd.spawn().map_err(|e| step_err("starting postgres", e))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = Instant::now() + timeout;
        let pid_file = self.data.join("postmaster.pid");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
                return Err(step_err(
                    "starting postgres",
                    format!("server exited with {status}: {}", log.trim()),
                ));
            }
            // Line 8 of postmaster.pid is the server status; "ready" means it accepts connections.
            if let Ok(text) = fs::read_to_string(&pid_file)
                && text.lines().nth(7).map(str::trim) == Some("ready")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(step_err("starting postgres", "server not ready after 30 s"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host to connect to.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// A libpq-style URL for database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server (fast shutdown), waiting for it to exit.
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(());
                }
            }
        }
    }

    /// Kills the server without a clean shutdown (SIGKILL), as a crash would.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again after [`stop`](Self::stop) or [`crash`](Self::crash), on the
    /// same port and data.
    pub fn restart(&mut self) -> Result<(), ClusterError> {
        self.stop()?;
        // A crashed server leaves its pid file behind; postgres checks the pid and removes it.
        let _ = &self.options;
        self.spawn_server()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
    }

    /// Runs `psql` with `sql` against database `db`, returning its stdout (unaligned, tuples
    /// only). For setup scripts in tests and the demo.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, ClusterError> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(db))
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| step_err("running psql", e))?;
        if !out.status.success() {
            return Err(step_err(
                "running psql",
                String::from_utf8_lossy(&out.stderr).trim(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The directory holding the server binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.stop();
        if !self.keep {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// Where the PostgreSQL server binaries are: `$AUGUR_PG_BIN`, then the newest
/// `/usr/lib/postgresql/*/bin`, then the directory of `postgres` on `PATH`.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("AUGUR_PG_BIN") {
        let dir = PathBuf::from(dir);
        if dir.join("postgres").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|p| p.join("postgres").exists() && p.join("initdb").exists())
    })
}

fn postgres_user() -> Result<(u32, u32), ClusterError> {
    let name = CString::new("postgres").expect("no nul");
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy the ids out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(step_err(
            "running as root",
            "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as",
        ));
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((uid, gid))
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), ClusterError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| step_err(&format!("chown {}", path.display()), e))
}

/// Makes `cmd` run as `run_as` (uid, gid) when given, and die with SIGKILL when the thread
/// that spawned it ends.
fn drop_privileges_and_tie_to_parent(cmd: &mut Command, run_as: Option<(u32, u32)>) {
    let parent = unsafe { libc::getpid() };
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = run_as
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(io::Error::last_os_error());
            }
            // Its own process group: a Ctrl-C at the terminal reaches augur, which then stops
            // the server in order, instead of reaching the server directly.
            libc::setpgid(0, 0);
            // After setuid: changing credentials clears the parent-death signal.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// An initdb'd template cluster, made once per machine and PostgreSQL version and copied for
/// every new cluster (copying takes a fraction of initdb's time).
fn template_dir(bin: &Path, run_as: Option<(u32, u32)>) -> Result<PathBuf, ClusterError> {
    let version = bin
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .unwrap_or("pg")
        .to_string();
    let base = std::env::temp_dir().join(format!("augur-pg-template-v1-{version}"));
    if base.join("PG_VERSION").exists() {
        return Ok(base);
    }
    let work = unique_temp_dir("augur-pg-initdb")?;
    if let Some((uid, gid)) = run_as {
        chown(&work, uid, gid)?;
    }
    let data = work.join("data");
    let pwfile = work.join("pw");
    fs::write(&pwfile, SUPERUSER_PASSWORD).map_err(|e| step_err("writing the password file", e))?;
    if let Some((uid, gid)) = run_as {
        chown(&pwfile, uid, gid)?;
    }
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D")
        .arg(&data)
        .args([
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
        ])
        .args(["--locale=C", "--no-sync"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    drop_privileges_and_tie_to_parent(&mut cmd, run_as);
    let out = cmd.output().map_err(|e| step_err("running initdb", e))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&work);
        return Err(step_err(
            "running initdb",
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    // Another process may have won the race; either template is as good.
    if fs::rename(&data, &base).is_err() && !base.join("PG_VERSION").exists() {
        let _ = fs::remove_dir_all(&work);
        return Err(step_err("installing the template cluster", base.display()));
    }
    let _ = fs::remove_dir_all(&work);
    Ok(base)
}

fn unique_temp_dir(prefix: &str) -> Result<PathBuf, ClusterError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).map_err(|e| step_err("creating a temp dir", e))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| step_err("creating a temp dir", e))?;
    Ok(dir)
}

/// Writes `content` to `path` with mode 0600, owned by the server's user.
fn write_private(
    path: &Path,
    content: &[u8],
    run_as: Option<(u32, u32)>,
) -> Result<(), ClusterError> {
    use std::os::unix::fs::PermissionsExt;
    let step = format!("writing {}", path.display());
    fs::write(path, content).map_err(|e| step_err(&step, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| step_err(&step, e))?;
    if let Some((uid, gid)) = run_as {
        chown(path, uid, gid)?;
    }
    Ok(())
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
