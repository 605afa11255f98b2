//! The incremental snapshot benchmark: `augur run` on a `car_data` table of `--rows` listings it
//! never captured (`source.snapshot=no_data`), an `execute-snapshot` signal, and `--rate` writes
//! per second (inserts and price updates) streaming in while it runs. Prints the snapshot's
//! rows/s (signal → every original row in the predicted table), the writes achieved meanwhile,
//! augur's peak RSS, and checks that the predicted table equals the source at the end. With
//! `--debezium`, Debezium 3.6.3 embedded (`scripts/debezium-incremental-bench.py`, needs Java 17
//! and the cache `scripts/debezium-fixtures.py` installs) snapshots the same table under the
//! same load afterwards, for a side-by-side figure.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use augur_pgcluster::PgCluster;

use crate::common::{Run, build_augur, load_average, peak_rss_mb, repo_root};
use crate::pipeline::{CAR_DATA, listings};

/// Arguments of `augur-bench incremental`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rows in the table before the snapshot.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Writes per second streaming in during the snapshot.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// `incremental.snapshot.chunk.size` (Debezium's default).
    #[arg(long, default_value_t = 1024)]
    chunk: u64,
    /// Also run Debezium's incremental snapshot of the same table (Java 17 and .cache/debezium).
    #[arg(long)]
    debezium: bool,
}

const SIGNAL: &str = "CREATE TABLE dbz_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))";

/// Runs the benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let bin = build_augur()?;
    println!(
        "augur incremental snapshot benchmark: {} rows, {} writes/s, chunk {} ({} cores, load average {})",
        args.rows,
        args.rate,
        args.chunk,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    let cluster = PgCluster::start().map_err(|e| anyhow::anyhow!("{e}"))?;
    let sql = |q: &str| cluster.psql("cars", q).map_err(|e| anyhow::anyhow!("{e}"));
    cluster
        .psql("postgres", "CREATE DATABASE cars")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    sql(CAR_DATA)?;
    sql(SIGNAL)?;
    let url = cluster.url("cars");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(fill(&url, args.rows))?;
    let dir = std::env::temp_dir().join(format!("augur-bench-incr-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let augur = spawn_augur(&bin, &url, &dir, args.chunk)?;
    let figures = rt.block_on(measure_augur(&url, &args))?;
    let rss = peak_rss_mb(augur.0.id());
    figures.print("augur run", Some(rss));
    rt.block_on(assert_equal(&url))?;
    drop(augur);
    if args.debezium {
        let f = rt.block_on(measure_debezium(&cluster, &url, &args))?;
        f.print("Debezium 3.6.3 embedded", None);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Fills `car_data` with `rows` listings, cycled (untimed).
async fn fill(url: &str, rows: u64) -> anyhow::Result<()> {
    let (db, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let values = listings();
    db.batch_execute(&format!(
        "CREATE TABLE seed (model varchar(50), year int, price int, transmission varchar(50), mileage int, fuelType varchar(50), tax int, mpg float, engineSize float); \
         INSERT INTO seed VALUES {}",
        values.join(", ")
    ))
    .await?;
    let n = values.len() as u64;
    db.batch_execute(&format!(
        "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) \
         SELECT s.model, s.year, s.price, s.transmission, s.mileage, s.fuelType, s.tax, s.mpg, s.engineSize \
         FROM generate_series(1, {}) g, seed s LIMIT {rows}; \
         DROP TABLE seed; ANALYZE car_data",
        rows.div_ceil(n)
    ))
    .await?;
    Ok(())
}

/// `augur run` streaming only (no initial snapshot), with signals on.
fn spawn_augur(
    bin: &std::path::Path,
    url: &str,
    dir: &std::path::Path,
    chunk: u64,
) -> anyhow::Result<Run> {
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--source-url", url, "--offsets"])
        .arg(dir.join("offsets.json"))
        .args(["--set", "http.listen="])
        .args(["--set", "source.snapshot=no_data"])
        .args(["--set", "source.signal.data.collection=public.dbz_signal"])
        .args([
            "--set",
            &format!("source.incremental.snapshot.chunk.size={chunk}"),
        ])
        .env("AUGUR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    Ok(Run(cmd.spawn().context("starting augur run")?))
}

/// What one snapshot run measured.
struct Figures {
    rows: u64,
    /// Signal → last original row present downstream.
    seconds: f64,
    /// Writes sent while the snapshot ran, and their rate.
    writes: u64,
    write_rate: f64,
    /// Peak RSS and CPU seconds reported by the process itself (Debezium).
    reported: Option<(f64, f64)>,
}

impl Figures {
    fn print(&self, who: &str, rss: Option<f64>) {
        println!(
            "\n{who}: {} rows in {:.1} s → {:.0} rows/s while {} writes streamed in ({:.0}/s)",
            self.rows,
            self.seconds,
            self.rows as f64 / self.seconds,
            self.writes,
            self.write_rate
        );
        if let Some(rss) = rss {
            println!("{who} peak RSS: {rss:.1} MB");
        }
        if let Some((rss, cpu)) = self.reported {
            println!("{who} peak RSS: {rss:.1} MB, CPU {cpu:.1} s");
        }
    }
}

/// Waits for the pipeline, signals, writes at `--rate` until every original row is predicted.
async fn measure_augur(url: &str, args: &Args) -> anyhow::Result<Figures> {
    let (db, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    // Up: a streamed change reaches the predicted table (which the sink creates); repeated
    // until augur streams (a change before its slot exists is not captured).
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&db, "SELECT count(*) FROM car_data_predicted").await? < 1 {
        if Instant::now() > deadline {
            bail!("augur run never wrote a row");
        }
        db.batch_execute("UPDATE car_data SET price = price + 1 WHERE id = 1")
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let load = Load::start(url, args).await?;
    let t0 = Instant::now();
    signal(&db).await?;
    let done = format!(
        "SELECT count(*) FROM car_data_predicted WHERE id <= {}",
        args.rows
    );
    while count(&db, &done).await? < args.rows as i64 {
        if t0.elapsed() > Duration::from_secs(3600) {
            bail!("the snapshot did not finish within an hour");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let (writes, write_rate) = load.stop().await;
    Ok(Figures {
        rows: args.rows,
        seconds,
        writes,
        write_rate,
        reported: None,
    })
}

async fn count(db: &tokio_postgres::Client, sql: &str) -> anyhow::Result<i64> {
    Ok(db.query_one(sql, &[]).await.map(|r| r.get(0)).unwrap_or(0))
}

async fn signal(db: &tokio_postgres::Client) -> anyhow::Result<()> {
    db.batch_execute(&format!(
        "INSERT INTO dbz_signal VALUES ('bench-{}', 'execute-snapshot', '{{\"data-collections\": [\"public.car_data\"], \"type\": \"incremental\"}}')",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ))
    .await?;
    Ok(())
}

/// The write load: one statement every `1/rate` s, alternately an insert of a new listing and
/// a price update of an original row (so streamed changes meet chunk rows).
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    started: Instant,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Load {
    async fn start(url: &str, args: &Args) -> anyhow::Result<Load> {
        let (db, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        let (stop, sent) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s2, n2) = (stop.clone(), sent.clone());
        let (rate, rows) = (args.rate.max(1), args.rows.max(1));
        let values = listings();
        let task = tokio::spawn(async move {
            let t0 = Instant::now();
            let mut i = 0u64;
            while !s2.load(Ordering::Relaxed) {
                let due = t0 + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let sql = if i.is_multiple_of(2) {
                    format!(
                        "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {}",
                        values[(i as usize) % values.len()]
                    )
                } else {
                    format!(
                        "UPDATE car_data SET price = price + 1 WHERE id = {}",
                        (i * 7919) % rows + 1
                    )
                };
                db.batch_execute(&sql).await?;
                n2.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
            Ok(())
        });
        Ok(Load {
            stop,
            sent,
            started: Instant::now(),
            task,
        })
    }

    /// Stops the load: (writes sent, writes/s).
    async fn stop(self) -> (u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let n = self.sent.load(Ordering::Relaxed);
        (n, n as f64 / self.started.elapsed().as_secs_f64())
    }
}

/// The predicted table equals the source, column by column, each row priced.
async fn assert_equal(url: &str) -> anyhow::Result<()> {
    let (db, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let cols = "id, model, year, price, transmission, mileage, fueltype, tax, mpg, enginesize";
    let diff = format!(
        "SELECT (SELECT count(*) FROM (SELECT {cols} FROM car_data EXCEPT SELECT {cols} FROM car_data_predicted) a) \
              + (SELECT count(*) FROM (SELECT {cols} FROM car_data_predicted EXCEPT SELECT {cols} FROM car_data) b) \
              + (SELECT count(*) FROM car_data_predicted WHERE suggestedprice IS NULL)"
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let d = count(&db, &diff).await?;
        if d == 0 {
            let n = count(&db, "SELECT count(*) FROM car_data").await?;
            println!("the predicted table equals the source: {n} rows, every one priced");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the predicted table still differs from the source in {d} rows");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Debezium's incremental snapshot of the same table under the same load.
async fn measure_debezium(cluster: &PgCluster, url: &str, args: &Args) -> anyhow::Result<Figures> {
    let script = repo_root().join("scripts/debezium-incremental-bench.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["--host", "127.0.0.1", "--port", &cluster.port().to_string()])
        .args([
            "--user",
            augur_pgcluster::SUPERUSER,
            "--password",
            augur_pgcluster::SUPERUSER_PASSWORD,
        ])
        .args(["--dbname", "cars"])
        .args([
            "--table",
            "public.car_data",
            "--signal",
            "public.dbz_signal",
        ])
        .args(["--chunk", &args.chunk.to_string()])
        .args(["--expect-reads", &args.rows.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting scripts/debezium-incremental-bench.py")?;
    let out = child.stdout.take().context("script stdout")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let child = Run(child);
    wait_line(&mut rx, "READY").await?;
    let (db, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let load = Load::start(url, args).await?;
    let t0 = Instant::now();
    signal(&db).await?;
    let done = wait_line(&mut rx, "DONE").await?;
    let seconds = t0.elapsed().as_secs_f64();
    let (writes, write_rate) = load.stop().await;
    drop(child);
    let f: Vec<f64> = done
        .split_whitespace()
        .skip(4)
        .filter_map(|s| s.parse().ok())
        .collect();
    Ok(Figures {
        rows: args.rows,
        seconds,
        writes,
        write_rate,
        reported: (f.len() >= 2).then(|| (f[0], f[1])),
    })
}

/// The first line starting with `word` (an `ERROR`/`TIMEOUT` line, or the end, fails).
async fn wait_line(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    word: &str,
) -> anyhow::Result<String> {
    while let Some(line) = rx.recv().await {
        if line.starts_with(word) {
            return Ok(line);
        }
        if line.starts_with("ERROR") || line.starts_with("TIMEOUT") {
            bail!("Debezium: {line}");
        }
    }
    bail!("the Debezium script ended before {word}")
}
