//! The capture benchmark, side by side with `pg_recvlogical` on the same private cluster:
//!
//! 1. Throughput: one 100,000-row transaction, read by a consumer started after the commit
//!    (catch-up): `augur capture` (full Debezium JSON with schemas, or without them with
//!    `--no-schemas`, to a pipe) against
//!    `pg_recvlogical` (pgoutput, to /dev/null, `--endpos`). Then the same transaction size
//!    with augur already streaming (live: COMMIT → last event).
//! 2. Latency: single-row inserts at a steady rate; commit → event p50/p99 for augur and for
//!    `pg_recvlogical` (test_decoding, to a pipe) reading the same inserts at the same time.
//! 3. augur's peak RSS (VmHWM) and CPU seconds.
//!
//! It runs the real release binary (`cargo build --release --bin augur` first).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use augur_pgcluster::{PgCluster, SUPERUSER, SUPERUSER_PASSWORD};

use crate::common::{build_augur, load_average, percentile};

/// Arguments of `augur-bench capture`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rows in the big transaction.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Single-row inserts per second in the latency test.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Seconds the latency test runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Print events without schemas (`key.converter.schemas.enable=false`,
    /// `value.converter.schemas.enable=false`).
    #[arg(long)]
    no_schemas: bool,
}

const TABLE: &str = "CREATE TABLE bench (id bigint PRIMARY KEY, a int, b bigint, c text, d varchar(40), \
    e numeric(12,2), f float8, g boolean, h timestamptz, i uuid)";

fn insert_rows(from: u64, n: u64) -> String {
    format!(
        "INSERT INTO bench SELECT g, g % 1000, g * 7, 'text ' || g, 'varchar ' || g, (g % 100000) / 100.0, g * 1.5, \
         g % 2 = 0, now(), md5(g::text)::uuid FROM generate_series({from}, {}) g",
        from + n - 1
    )
}

/// A running `augur capture` whose stdout lines are counted (and, for the latency test,
/// timestamped by row id).
pub(crate) struct Augur {
    child: Child,
    lines: Arc<AtomicU64>,
    arrivals: Arrivals,
    stderr: Arc<Mutex<String>>,
}

impl Augur {
    pub(crate) fn start(bin: &Path, props: &Path) -> anyhow::Result<Augur> {
        let mut child = Command::new(bin)
            .args(["capture", "--stdout", "--config"])
            .arg(props)
            .env("AUGUR_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting augur capture")?;
        let lines = Arc::new(AtomicU64::new(0));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let (l2, a2) = (lines.clone(), arrivals.clone());
        std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 20, out);
            let mut line = Vec::with_capacity(8192);
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let now = Instant::now();
                        l2.fetch_add(1, Ordering::Relaxed);
                        if let Some(id) = after_id(&line)
                            && id >= LATENCY_ID_BASE
                        {
                            a2.lock().unwrap().push((id, now));
                        }
                    }
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let e2 = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                e2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Augur {
            child,
            lines,
            arrivals,
            stderr,
        })
    }

    pub(crate) fn wait_streaming(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.stderr.lock().unwrap().contains("streaming changes") {
            if Instant::now() > deadline {
                bail!(
                    "augur did not start streaming:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    pub(crate) fn wait_lines(&self, n: u64, timeout: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + timeout;
        while self.lines.load(Ordering::Relaxed) < n {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {n} events; stderr:\n{}",
                    self.lines.load(Ordering::Relaxed),
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(Instant::now())
    }

    pub(crate) fn cpu_seconds(&self) -> f64 {
        proc_cpu_seconds(self.child.id())
    }

    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    pub(crate) fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Row ids at or above this are the latency test's.
const LATENCY_ID_BASE: u64 = 10_000_000;

/// The `id` of `"after":{"id":N` in an event line.
fn after_id(line: &[u8]) -> Option<u64> {
    let pat = b"\"after\":{\"id\":";
    // A SIMD search: the reader shares the cores with augur, so it must cost little.
    let at = memchr::memmem::find(line, pat)? + pat.len();
    let digits: Vec<u8> = line[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// A private cluster with database `db` holding the tables `ddl` creates.
pub(crate) fn cluster_with_table(db: &str, ddl: &str) -> anyhow::Result<PgCluster> {
    let cluster = PgCluster::start().map_err(|e| anyhow::anyhow!("{e}"))?;
    cluster
        .psql("postgres", &format!("CREATE DATABASE {db}"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    cluster.psql(db, ddl).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(cluster)
}

/// What one `augur capture` properties file names: database, table, slot and publication.
pub(crate) struct CaptureTable<'a> {
    pub(crate) db: &'a str,
    pub(crate) table: &'a str,
    pub(crate) slot: &'a str,
    pub(crate) publication: Option<&'a str>,
}

impl CaptureTable<'_> {
    /// The Debezium-style properties for capturing this table from `cluster` as its superuser,
    /// offsets in `offsets`, with `extra` lines appended.
    pub(crate) fn properties(&self, cluster: &PgCluster, offsets: &Path, extra: &str) -> String {
        let publication = self
            .publication
            .map(|p| format!("publication.name={p}\n"))
            .unwrap_or_default();
        format!(
            "connector.class=io.debezium.connector.postgresql.PostgresConnector\nplugin.name=pgoutput\n\
             database.hostname=127.0.0.1\ndatabase.port={}\ndatabase.user={SUPERUSER}\ndatabase.password={SUPERUSER_PASSWORD}\n\
             database.dbname={}\ntopic.prefix={}\ntable.include.list={}\nslot.name={}\n{publication}\
             snapshot.mode=no_data\noffset.storage.file.filename={}\n{extra}",
            cluster.port(),
            self.db,
            self.db,
            self.table,
            self.slot,
            offsets.display(),
        )
    }
}

/// CPU seconds (user + system) of process `pid`.
pub(crate) fn proc_cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, [11, 12])
}

/// CPU seconds of the children process `pid` has waited for (`cutime` + `cstime`).
pub(crate) fn reaped_cpu_seconds(pid: u32) -> f64 {
    stat_seconds(pid, [13, 14])
}

/// The sum of two tick fields of `/proc/<pid>/stat` (counted after the command name), in
/// seconds.
fn stat_seconds(pid: u32, at: [usize; 2]) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(at[0]) + ticks(at[1])) / hz
}

/// Row arrival times by row id, filled by a reader thread.
type Arrivals = Arc<Mutex<Vec<(u64, Instant)>>>;

/// What the phases share: the augur binary, the private cluster and the run's files.
struct Bench {
    /// The release `augur` binary.
    bin: PathBuf,
    /// The private PostgreSQL cluster (database `bench`).
    cluster: PgCluster,
    /// The temporary folder holding the properties and offsets.
    dir: PathBuf,
    /// augur's connector properties.
    props: PathBuf,
}

/// The throughput phase's figures.
struct Throughput {
    /// Rows in the transaction.
    n: u64,
    /// pg_recvlogical's catch-up seconds.
    recv_secs: f64,
    /// augur's catch-up seconds.
    augur_secs: f64,
    /// augur's live seconds (COMMIT returned → last event).
    live_secs: f64,
    /// Seconds the live INSERT took.
    committed: f64,
    /// augur's CPU seconds for the catch-up.
    catchup_cpu: f64,
}

/// Runs the capture benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let bin = build_augur()?;
    println!(
        "augur capture benchmark ({} cores, load average {})",
        cores(),
        load_average()
    );
    let schemas = if args.no_schemas { "without" } else { "with" };
    println!("augur's events: Debezium JSON {schemas} schemas");
    let bench = Bench::setup(bin, args.no_schemas)?;
    bench.create_slots()?;
    let a = bench.throughput(args.rows)?;
    bench.latency(&a, &args)?;

    println!(
        "\n3. augur process: peak RSS {:.1} MB, CPU {:.2} s in total",
        a.peak_rss_mb(),
        a.cpu_seconds()
    );
    println!("targets: ≥ 50,000 rows/s; p99 < 10 ms at 100 rows/s; RSS < 50 MB");
    a.stop();
    bench.finish();
    Ok(())
}

impl Bench {
    /// Starts the cluster, creates the table and writes augur's properties.
    fn setup(bin: PathBuf, no_schemas: bool) -> anyhow::Result<Bench> {
        let cluster = cluster_with_table("bench", TABLE)?;
        let dir = std::env::temp_dir().join(format!("augur-bench-capture-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let props = dir.join("bench.properties");
        let schemas_off = if no_schemas {
            "key.converter.schemas.enable=false\nvalue.converter.schemas.enable=false\n"
        } else {
            ""
        };
        let table = CaptureTable {
            db: "bench",
            table: "public.bench",
            slot: "augur_bench",
            publication: None,
        };
        std::fs::write(
            &props,
            table.properties(&cluster, &dir.join("offsets.json"), schemas_off),
        )?;
        Ok(Bench {
            bin,
            cluster,
            dir,
            props,
        })
    }

    /// Runs `q` in the `bench` database.
    fn sql(&self, q: &str) -> anyhow::Result<String> {
        self.cluster
            .psql("bench", q)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Starts `pg_recvlogical` on `slot` with `extra` arguments, stdout to `out`.
    fn recv(&self, slot: &str, extra: &[&str], out: Stdio) -> anyhow::Result<Child> {
        Command::new(self.cluster.bin_dir().join("pg_recvlogical"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.cluster.port().to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "bench",
                "--slot",
                slot,
                "--start",
                "--no-loop",
            ])
            .args(extra)
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .context("starting pg_recvlogical")
    }

    /// Creates augur's slot and publication (a first, short run), then pg_recvlogical's slot.
    fn create_slots(&self) -> anyhow::Result<()> {
        let a = Augur::start(&self.bin, &self.props)?;
        a.wait_streaming()?;
        a.stop();
        self.sql("SELECT pg_create_logical_replication_slot('recv', 'pgoutput')")?;
        Ok(())
    }

    /// Section 1: one `n`-row transaction, catch-up then live; prints it, returns augur running.
    fn throughput(&self, n: u64) -> anyhow::Result<Augur> {
        // 1a. Catch-up throughput: the transaction is committed before either consumer starts.
        println!("\n1. one {n}-row transaction");
        self.sql(&insert_rows(1, n))?;
        let endpos = self.sql("SELECT pg_current_wal_lsn()")?.trim().to_string();
        let recv_secs = self.recv_catch_up(&endpos)?;

        let t = Instant::now();
        let a = Augur::start(&self.bin, &self.props)?;
        a.wait_lines(n, Duration::from_secs(300))?;
        let augur_secs = t.elapsed().as_secs_f64();
        let catchup_cpu = a.cpu_seconds();

        let (committed, live_secs) = self.live(&a, n)?;
        Throughput {
            n,
            recv_secs,
            augur_secs,
            live_secs,
            committed,
            catchup_cpu,
        }
        .print();
        Ok(a)
    }

    /// Seconds pg_recvlogical (pgoutput → /dev/null) takes to read up to `endpos`.
    fn recv_catch_up(&self, endpos: &str) -> anyhow::Result<f64> {
        let t = Instant::now();
        let mut pr = self.recv(
            "recv",
            &[
                "--endpos",
                endpos,
                "-o",
                "proto_version=1",
                "-o",
                "publication_names=dbz_publication",
                "-f",
                "/dev/null",
            ],
            Stdio::null(),
        )?;
        pr.wait()?;
        Ok(t.elapsed().as_secs_f64())
    }

    /// Live: a second `n`-row INSERT while augur streams; (INSERT s, COMMIT → last event s).
    fn live(&self, a: &Augur, n: u64) -> anyhow::Result<(f64, f64)> {
        let before = a.lines.load(Ordering::Relaxed);
        let t = Instant::now();
        self.sql(&insert_rows(n + 1, n))?;
        let committed = t.elapsed().as_secs_f64();
        let t_commit = Instant::now();
        let done = a.wait_lines(before + n, Duration::from_secs(300))?;
        let live_secs = done.duration_since(t_commit).as_secs_f64();
        Ok((committed, live_secs))
    }

    /// Section 2: latency at a steady rate, both consumers on the same inserts; prints it.
    fn latency(&self, a: &Augur, args: &Args) -> anyhow::Result<()> {
        self.sql("SELECT pg_create_logical_replication_slot('recv_td', 'test_decoding')")?;
        let mut td = self.recv("recv_td", &["-f", "-"], Stdio::piped())?;
        let td_arrivals = follow_test_decoding(&mut td);
        std::thread::sleep(Duration::from_millis(500));
        let sent = self.steady_inserts(args)?;
        let (augur_ms, augur_n) = latencies(&sent, &a.arrivals);
        let (td_ms, td_n) = latencies(&sent, &td_arrivals);
        println!("| consumer | events | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|");
        println!(
            "| pg_recvlogical (test_decoding → pipe) | {td_n} | {:.2} | {:.2} | {:.2} |",
            percentile(&td_ms, 0.5),
            percentile(&td_ms, 0.99),
            td_ms.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "| augur capture (Debezium JSON → pipe) | {augur_n} | {:.2} | {:.2} | {:.2} |",
            percentile(&augur_ms, 0.5),
            percentile(&augur_ms, 0.99),
            augur_ms.last().copied().unwrap_or(f64::NAN)
        );
        let _ = td.kill();
        let _ = td.wait();
        Ok(())
    }

    /// Prints section 2's heading and sends the paced single-row inserts; (id, sent at) each.
    fn steady_inserts(&self, args: &Args) -> anyhow::Result<Vec<(u64, Instant)>> {
        let mut psql = Command::new(self.cluster.bin_dir().join("psql"))
            .args(["-X", "-q", "-d", &self.cluster.url("bench")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let mut stdin = psql.stdin.take().expect("stdin");
        let total = args.rate * args.seconds;
        let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
        let mut sent = Vec::with_capacity(total as usize);
        let start = Instant::now();
        println!("\n2. {total} single-row inserts at {} rows/s", args.rate);
        for i in 0..total {
            let due = start + interval * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let id = LATENCY_ID_BASE + i;
            writeln!(
                stdin,
                "INSERT INTO bench VALUES ({id}, 1, 2, 'x', 'y', 3.14, 2.5, true, now(), gen_random_uuid());"
            )?;
            stdin.flush()?;
            sent.push((id, Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(1500));
        drop(stdin);
        psql.wait()?;
        Ok(sent)
    }

    /// Stops the cluster and removes the run's files.
    fn finish(self) {
        drop(self.cluster);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Throughput {
    /// Prints the throughput table and the INSERT / CPU note.
    fn print(&self) {
        let Throughput {
            n,
            recv_secs,
            augur_secs,
            live_secs,
            committed,
            catchup_cpu,
        } = *self;
        println!("| consumer | seconds | rows/s | ratio |");
        println!("|---|---|---|---|");
        println!(
            "| pg_recvlogical (pgoutput → /dev/null), catch-up | {recv_secs:.2} | {:.0} | 1.00 |",
            n as f64 / recv_secs
        );
        println!(
            "| augur capture (Debezium JSON → pipe), catch-up | {augur_secs:.2} | {:.0} | {:.2} |",
            n as f64 / augur_secs,
            recv_secs / augur_secs
        );
        println!(
            "| augur capture, live (COMMIT returned → last event) | {live_secs:.2} | {:.0} | |",
            n as f64 / live_secs
        );
        println!(
            "(INSERT of {n} rows took {committed:.2} s; augur CPU for the catch-up: {catchup_cpu:.2} s)"
        );
    }
}

/// Timestamps, by row id, the inserts pg_recvlogical (test_decoding) writes to `td`'s stdout.
fn follow_test_decoding(td: &mut Child) -> Arrivals {
    let td_arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let out = td.stdout.take().expect("stdout");
    let arr = td_arrivals.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("id[bigint]:") {
                let id: u64 = line[at + 11..]
                    .split(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                arr.lock().unwrap().push((id, Instant::now()));
            }
        }
    });
    td_arrivals
}

/// Sorted send → arrival latencies (ms) of the `sent` rows that arrived, and their count.
fn latencies(sent: &[(u64, Instant)], arr: &Mutex<Vec<(u64, Instant)>>) -> (Vec<f64>, usize) {
    let got: std::collections::HashMap<u64, Instant> =
        arr.lock().unwrap().iter().copied().collect();
    let mut ms: Vec<f64> = sent
        .iter()
        .filter_map(|(id, t)| {
            got.get(id)
                .map(|r| r.saturating_duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let n = ms.len();
    (ms, n)
}

/// The number of cores.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
