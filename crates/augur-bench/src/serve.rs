//! The model server benchmark, side by side with a bare HTTP server on the same stack:
//!
//! 1. Cold start: launch `augur serve` (release binary, shipped model store) and time launch
//!    → first `200` from `POST /predict`, several times; each run ends with SIGTERM and must
//!    exit 0.
//! 2. Throughput and latency: `oha` drives `POST /predict` with the original single-car body
//!    at each concurrency level, for `augur serve` and for a bare server that answers a
//!    constant number — axum on a two-worker tokio runtime like augur, built into this
//!    benchmark — alternating the two, same load generator, same machine. augur's own
//!    batch-size histogram gives the mean batch size per level.
//! 3. Peak RSS (VmHWM) and CPU seconds of both servers from /proc.
//!
//! `oha` is looked for in `--oha`, `.cache/oha/bin/oha`, then `PATH`; when missing it is
//! installed with `cargo install oha --locked --root .cache/oha` (about 8 minutes here).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::common::{build_augur, load_average, repo_root};

/// Arguments of `augur-bench serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seconds of load per concurrency level and server.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrency levels (connections).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    concurrency: Vec<usize>,
    /// Rounds per level: each round measures the bare server, then augur, for `--seconds`
    /// each; figures are medians over rounds (the machine may be shared and noisy).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Cold starts to time.
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// The oha binary [default: .cache/oha/bin/oha, else oha on PATH, else install it there].
    #[arg(long)]
    oha: Option<PathBuf>,
    /// Internal: run only the bare constant server on this port.
    #[arg(long, hide = true)]
    bare_server: Option<u16>,
}

/// The original service's example body.
const CAR: &str = r#"{"model":" Fiesta","year":2017,"transmission":"Automatic","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#;

/// A free loopback port (bound, then released).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One `POST /predict` on a fresh connection; the status, or `None` if it could not connect.
fn predict_once(addr: SocketAddr) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_nodelay(true).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "POST /predict HTTP/1.1\r\nhost: bench\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{CAR}",
        CAR.len()
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    std::str::from_utf8(out.get(9..12)?).ok()?.parse().ok()
}

/// `GET path` on a fresh connection; the body.
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default())
}

/// Waits until `POST /predict` answers 200; the time it took from `since`.
fn wait_predict(addr: SocketAddr, since: Instant, child: &mut Child) -> anyhow::Result<Duration> {
    let deadline = since + Duration::from_secs(30);
    loop {
        if predict_once(addr) == Some(200) {
            return Ok(since.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited before answering: {status}");
        }
        if Instant::now() > deadline {
            bail!("no 200 from {addr} within 30 s");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A server process under test.
struct Proc {
    /// The process.
    child: Child,
    /// Where it listens.
    addr: SocketAddr,
}

impl Proc {
    /// `VmHWM` in MB.
    fn peak_rss_mb(&self) -> f64 {
        proc_status_kb(self.child.id(), "VmHWM:") / 1024.0
    }

    /// User + system CPU seconds so far.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of proc(5); index 0 here is field 3.
        (tick(11) + tick(12)) / 100.0
    }

    /// SIGTERM, then the exit code and how long it took.
    fn stop(mut self) -> anyhow::Result<(Option<i32>, Duration)> {
        let t = Instant::now();
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let status = self.child.wait()?;
        Ok((status.code(), t.elapsed()))
    }
}

/// A `kB` line of `/proc/<pid>/status`.
fn proc_status_kb(pid: u32, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Starts `augur serve` on a free port with the shipped store and quiet logs.
fn start_augur(bin: &Path, root: &Path) -> anyhow::Result<(Proc, Instant)> {
    let port = free_port()?;
    let t = Instant::now();
    let child = Command::new(bin)
        .args([
            "serve",
            "--model",
            augur_model::SHIPPED_MODEL,
            "--port",
            &port.to_string(),
        ])
        .arg("--store")
        .arg(root.join("models"))
        .env("AUGUR_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting augur serve")?;
    Ok((
        Proc {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        },
        t,
    ))
}

/// Starts this benchmark's bare server in a child process.
fn start_bare() -> anyhow::Result<Proc> {
    let port = free_port()?;
    let child = Command::new(std::env::current_exe()?)
        .args(["serve", "--bare-server", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the bare server")?;
    Ok(Proc {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

/// Runs the bare server: axum, two tokio workers, `POST /predict` reads the body and answers
/// a constant price — the HTTP floor under augur's model and JSON handling.
fn run_bare(port: u16) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let app = axum::Router::new().route(
            "/predict",
            axum::routing::post(|body: axum::body::Bytes| async move {
                let _ = body;
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    "11187.29",
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await?
            .tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}

/// Finds (or installs) oha.
fn find_oha(args: &Args, root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = &args.oha {
        return Ok(p.clone());
    }
    let cached = root.join(".cache/oha/bin/oha");
    if cached.is_file() {
        return Ok(cached);
    }
    if Command::new("oha")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(PathBuf::from("oha"));
    }
    eprintln!("installing oha into .cache/oha (cargo install oha --locked; about 8 minutes)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["install", "oha", "--locked", "--root"])
        .arg(root.join(".cache/oha"))
        .status()
        .context("cargo install oha")?;
    if !status.success() || !cached.is_file() {
        bail!("cargo install oha failed; pass --oha PATH");
    }
    Ok(cached)
}

/// One oha run's figures.
#[derive(Debug, Clone, Copy)]
struct Load {
    /// Requests per second.
    rps: f64,
    /// Median latency, ms.
    p50: f64,
    /// 99th percentile latency, ms.
    p99: f64,
    /// Responses that were not 200.
    non_200: u64,
    /// Requests that failed outright (aborted at the deadline excluded).
    errors: u64,
}

impl Load {
    /// Per-figure medians over rounds; failures are summed.
    fn median(runs: &[Load]) -> Load {
        let m = |f: fn(&Load) -> f64| median(runs.iter().map(f).collect());
        Load {
            rps: m(|l| l.rps),
            p50: m(|l| l.p50),
            p99: m(|l| l.p99),
            non_200: runs.iter().map(|l| l.non_200).sum(),
            errors: runs.iter().map(|l| l.errors).sum(),
        }
    }
}

/// Runs oha against `addr` for `seconds` at `c` connections.
fn oha(oha: &Path, addr: SocketAddr, c: usize, seconds: u64) -> anyhow::Result<Load> {
    let out = Command::new(oha)
        .args([
            "-z",
            &format!("{seconds}s"),
            "-c",
            &c.to_string(),
            "-m",
            "POST",
            "-d",
            CAR,
            "-H",
            "content-type: application/json",
            "--no-tui",
            "--output-format",
            "json",
        ])
        .arg(format!("http://{addr}/predict"))
        .output()
        .context("running oha")?;
    if !out.status.success() {
        bail!("oha failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("oha's JSON")?;
    let f = |p: &[&str]| {
        p.iter()
            .try_fold(&v, |v, k| v.get(*k))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    };
    let codes = v["statusCodeDistribution"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let non_200 = codes
        .iter()
        .filter(|(k, _)| k.as_str() != "200")
        .map(|(_, n)| n.as_u64().unwrap_or(0))
        .sum();
    let errors = v["errorDistribution"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.contains("aborted due to deadline"))
                .map(|(_, n)| n.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    Ok(Load {
        rps: f(&["summary", "requestsPerSec"]),
        p50: f(&["latencyPercentiles", "p50"]) * 1e3,
        p99: f(&["latencyPercentiles", "p99"]) * 1e3,
        non_200,
        errors,
    })
}

/// `(batches, rows)` scored so far, from augur's batch-size histogram.
fn batch_totals(addr: SocketAddr) -> (f64, f64) {
    let text = get(addr, "/metrics").unwrap_or_default();
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    (
        value("augur_service_adaptive_batch_size_count"),
        value("augur_service_adaptive_batch_size_sum"),
    )
}

/// Median of a non-empty slice.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What the phases share: the arguments, the repository, the augur binary and oha.
struct Bench<'a> {
    /// The benchmark's arguments.
    args: &'a Args,
    /// The repository root (for the model store).
    root: PathBuf,
    /// The release `augur` binary.
    bin: PathBuf,
    /// The oha binary.
    oha: PathBuf,
}

/// One concurrency level's figures (medians over rounds).
struct Level {
    /// Connections.
    c: usize,
    /// The bare server.
    bare: Load,
    /// augur serve.
    augur: Load,
    /// Median over rounds of augur's requests/s over the bare server's.
    ratio: f64,
    /// Medians over rounds of each server's CPU per request, µs: (bare, augur).
    cpu_us: (f64, f64),
    /// Every round.
    rounds: Vec<Round>,
}

/// One round at one level, as printed.
struct Round {
    bare: Load,
    augur: Load,
    /// CPU per request, µs: (bare, augur).
    cpu_us: (f64, f64),
}

/// Runs the model server benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if let Some(port) = args.bare_server {
        return run_bare(port);
    }
    let root = repo_root();
    let bin = build_augur()?;
    let oha_bin = find_oha(&args, &root)?;
    let oha_version = Command::new(&oha_bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "augur serve benchmark ({cores} cores, load average {}, {oha_version})",
        load_average()
    );
    let bench = Bench {
        args: &args,
        root,
        bin,
        oha: oha_bin,
    };
    let ready = bench.cold_starts()?;
    let (results, augur_rss) = bench.load()?;
    print_rounds(&results);
    print_targets(&args, &results, augur_rss, ready);
    Ok(())
}

impl Bench<'_> {
    /// Section 1, cold starts: prints the medians, returns the launch → ready times (ms).
    fn cold_starts(&self) -> anyhow::Result<Vec<f64>> {
        let args = self.args;
        println!(
            "\n1. launch → first 200 from POST /predict ({} runs)",
            args.starts
        );
        let mut ready = Vec::new();
        let mut stops = Vec::new();
        let mut start_rss = Vec::new();
        for _ in 0..args.starts.max(1) {
            let (mut p, t) = start_augur(&self.bin, &self.root)?;
            let took = wait_predict(p.addr, t, &mut p.child)?;
            ready.push(took.as_secs_f64() * 1e3);
            start_rss.push(p.peak_rss_mb());
            let (code, stop) = p.stop()?;
            if code != Some(0) {
                bail!("augur serve exited with {code:?} after SIGTERM");
            }
            stops.push(stop.as_secs_f64() * 1e3);
        }
        let (lo, hi) = ready
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        println!(
            "   ready in {:.1} ms median ({lo:.1}–{hi:.1}); SIGTERM → exit 0 in {:.1} ms median; RSS after one request {:.1} MB",
            median(ready.clone()),
            median(stops),
            median(start_rss),
        );
        Ok(ready)
    }

    /// Sections 2 (load per level) and 3 (memory, CPU); the levels and augur's peak RSS.
    fn load(&self) -> anyhow::Result<(Vec<Level>, f64)> {
        let args = self.args;
        let (mut augur, t) = start_augur(&self.bin, &self.root)?;
        wait_predict(augur.addr, t, &mut augur.child)?;
        let mut bare = start_bare()?;
        wait_predict(bare.addr, Instant::now(), &mut bare.child)?;
        println!(
            "\n2. POST /predict, single-car body; per level {} rounds of oha for {} s against each \
             server in turn; medians over rounds",
            args.rounds, args.seconds
        );
        println!(
            "\n| concurrency | server | requests/s | p50 ms | p99 ms | non-200 | errors | mean batch |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        let mut results = Vec::new();
        for &c in &args.concurrency {
            results.push(self.level(c, &augur, &bare)?);
        }

        // 3. Memory and CPU.
        let (augur_rss, bare_rss) = (augur.peak_rss_mb(), bare.peak_rss_mb());
        let (augur_cpu, bare_cpu) = (augur.cpu_seconds(), bare.cpu_seconds());
        let (code, _) = augur.stop()?;
        let _ = bare.stop();
        println!(
            "\n3. peak RSS: augur serve {augur_rss:.1} MB, bare server {bare_rss:.1} MB; CPU seconds: augur {augur_cpu:.1}, bare {bare_cpu:.1}; augur exit code after SIGTERM {code:?}"
        );
        Ok((results, augur_rss))
    }

    /// One concurrency level: warm both, alternate bare and augur per round; prints its rows.
    fn level(&self, c: usize, augur: &Proc, bare: &Proc) -> anyhow::Result<Level> {
        let (args, oha_bin) = (self.args, &self.oha);
        // Warm both, then alternate bare and augur, round after round.
        oha(oha_bin, bare.addr, c, 1)?;
        oha(oha_bin, augur.addr, c, 1)?;
        let (mut rounds, mut batches) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds.max(1) {
            let (b, b_cpu) = measured(bare, || oha(oha_bin, bare.addr, c, args.seconds))?;
            let before = batch_totals(augur.addr);
            let (a, a_cpu) = measured(augur, || oha(oha_bin, augur.addr, c, args.seconds))?;
            let after = batch_totals(augur.addr);
            batches.push((after.1 - before.1) / (after.0 - before.0).max(1.0));
            let per_request =
                |cpu: f64, l: &Load| cpu * 1e6 / (l.rps * args.seconds as f64).max(1.0);
            rounds.push(Round {
                cpu_us: (per_request(b_cpu, &b), per_request(a_cpu, &a)),
                bare: b,
                augur: a,
            });
        }
        let b = Load::median(&rounds.iter().map(|r| r.bare).collect::<Vec<_>>());
        let a = Load::median(&rounds.iter().map(|r| r.augur).collect::<Vec<_>>());
        let ratio = median(rounds.iter().map(|r| r.augur.rps / r.bare.rps).collect());
        let cpu_us = (
            median(rounds.iter().map(|r| r.cpu_us.0).collect()),
            median(rounds.iter().map(|r| r.cpu_us.1).collect()),
        );
        for (name, l, batch) in [
            ("bare axum (constant)", &b, String::new()),
            ("augur serve", &a, format!("{:.2}", median(batches))),
        ] {
            println!(
                "| {c} | {name} | {:.0} | {:.3} | {:.3} | {} | {} | {batch} |",
                l.rps, l.p50, l.p99, l.non_200, l.errors
            );
        }
        Ok(Level {
            c,
            bare: b,
            augur: a,
            ratio,
            cpu_us,
            rounds,
        })
    }
}

/// Runs `f` and returns its result with the CPU seconds `p` used meanwhile.
fn measured(p: &Proc, f: impl FnOnce() -> anyhow::Result<Load>) -> anyhow::Result<(Load, f64)> {
    let before = p.cpu_seconds();
    let l = f()?;
    Ok((l, p.cpu_seconds() - before))
}

/// Every round of every level, in the order they ran (bare first in each).
fn print_rounds(results: &[Level]) {
    println!("\nEvery round (bare, then augur, alternating):\n");
    println!(
        "| concurrency | round | bare req/s | augur req/s | augur / bare | bare p99 ms | augur p99 ms | bare CPU µs/req | augur CPU µs/req |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for l in results {
        for (i, r) in l.rounds.iter().enumerate() {
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.2} | {:.3} | {:.3} | {:.1} | {:.1} |",
                l.c,
                i + 1,
                r.bare.rps,
                r.augur.rps,
                r.augur.rps / r.bare.rps,
                r.bare.p99,
                r.augur.p99,
                r.cpu_us.0,
                r.cpu_us.1
            );
        }
    }
}

/// The shipped model's single-row `predict_json` p50 on the benchmark's car, µs.
fn predict_json_us() -> anyhow::Result<f64> {
    let model = augur_model::load_shipped().map_err(|e| anyhow::anyhow!("{e}"))?;
    let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(CAR)?;
    for _ in 0..2000 {
        std::hint::black_box(
            model
                .predict_json(&row)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    let mut ns: Vec<f64> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(model.predict_json(&row).ok());
            t.elapsed().as_nanos() as f64
        })
        .collect();
    Ok(median(std::mem::take(&mut ns)) / 1000.0)
}

/// Prints the targets table (requests/s vs bare, p99 at 8, peak RSS, launch → ready).
fn print_targets(args: &Args, results: &[Level], augur_rss: f64, ready: Vec<f64>) {
    println!("\n| target | result | goal |");
    println!("|---|---|---|");
    let json_us = predict_json_us().unwrap_or(f64::NAN);
    for Level {
        c,
        bare: b,
        augur: a,
        ratio,
        cpu_us,
        ..
    } in results
    {
        println!(
            "| requests/s vs bare, concurrency {c} | {:.0} / {:.0}, median ratio of rounds **{ratio:.2}** | ≥ 0.75 |",
            a.rps, b.rps
        );
        println!(
            "| server CPU per request, concurrency {c} | augur **{:.1} µs**, bare {:.1} µs | ≤ bare + 1.5 × predict_json ({json_us:.2} µs) = {:.1} µs |",
            cpu_us.1,
            cpu_us.0,
            cpu_us.0 + 1.5 * json_us
        );
    }
    if let (Some(a), Some(b)) = (
        results.iter().find(|r| r.c == 1).map(|r| r.augur.p99),
        results.iter().find(|r| r.c == 1).map(|r| r.bare.p99),
    ) {
        println!(
            "| p99 at concurrency 1 | **{a:.3} ms** vs bare {b:.3} ms ({:.2} ×) | ≤ 1.3 × bare |",
            a / b
        );
    }
    if let Some(Level { augur: a, .. }) = results.iter().find(|r| r.c == 8) {
        println!("| p99 at concurrency 8 | **{:.2} ms** | < 5 ms |", a.p99);
    }
    println!("| peak RSS under load | **{augur_rss:.1} MB** | < 30 MB |");
    println!(
        "| launch → first successful request | **{:.1} ms** (median of {}) | < 200 ms |",
        median(ready),
        args.starts.max(1)
    );
}
