//! The pipeline benchmarks: the real `augur run` process against a private PostgreSQL cluster,
//! embedded (in-process queues) or over a Tansu broker (`kafka.bootstrap`), measuring
//!
//! 1. insert → predicted-row-visible latency at a steady 1,000 rows/s: each insert is sent on
//!    its own connection and timed until a trigger on the predicted table NOTIFYs that the row
//!    committed;
//! 2. sustained rows/s for a 100,000-row load (100 transactions of 1,000 rows), from the first
//!    commit to the last predicted row;
//! 3. the process's peak RSS;
//! 4. (Kafka) the sink's batched upserts against PostgreSQL's own `COPY` into the same table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use augur_pgcluster::PgCluster;
use futures_util::StreamExt;

use crate::common::{Run, build_augur, load_average, peak_rss_mb, percentile, repo_root};

/// Arguments of `augur-bench pipeline` and `augur-bench kafka`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rows per second in the latency test.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds the latency test runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Rows in the throughput test.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) rows: u64,
}

pub(crate) const CAR_DATA: &str = "CREATE TABLE car_data (id SERIAL PRIMARY KEY, model VARCHAR(50), year INTEGER, price INTEGER, \
    transmission VARCHAR(50), mileage INTEGER, fuelType VARCHAR(50), tax INTEGER, mpg FLOAT, engineSize FLOAT, suggestedPrice INTEGER)";
/// The predicted table as the sink would create it, with a trigger that reports each commit.
const PREDICTED: &str = "CREATE TABLE car_data_predicted (id integer NOT NULL DEFAULT 0, model text, year integer, price integer, \
    transmission text, mileage integer, fueltype text, tax integer, mpg double precision, enginesize double precision, \
    suggestedprice integer, PRIMARY KEY (id)); \
    CREATE FUNCTION bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('predicted', NEW.id::text); RETURN NEW; END $$; \
    CREATE TRIGGER bench_notify AFTER INSERT ON car_data_predicted FOR EACH ROW EXECUTE FUNCTION bench_notify();";

pub(crate) fn listings() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("data/ford.csv")).unwrap_or_default();
    let rows: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() == 9 && f[1].parse::<i32>().is_ok_and(|y| y < 2030) && f[8] != "0").then(
                || {
                    format!(
                        "('{}', {}, {}, '{}', {}, '{}', {}, {}, {})",
                        f[0].replace('\'', "''"),
                        f[1],
                        f[2],
                        f[3],
                        f[4],
                        f[5],
                        f[6],
                        f[7],
                        f[8]
                    )
                },
            )
        })
        .collect();
    if rows.is_empty() {
        vec!["(' Fiesta', 2017, 12000, 'Automatic', 15944, 'Petrol', 150, 57.7, 1)".into()]
    } else {
        rows
    }
}

/// Runs the embedded pipeline benchmark.
pub(crate) fn run_embedded(args: Args) -> anyhow::Result<()> {
    run(args, false)
}

/// Runs the Kafka path benchmark.
pub(crate) fn run_kafka(args: Args) -> anyhow::Result<()> {
    run(args, true)
}

/// What the phases share: broker (Kafka path), cluster (`cars`), folder; dropped in that order.
pub(crate) struct Env {
    /// The Tansu broker, on the Kafka path.
    broker: Option<augur_testkit::Tansu>,
    /// The private PostgreSQL cluster.
    pub(crate) cluster: PgCluster,
    /// The temporary folder holding augur's offsets.
    pub(crate) dir: PathBuf,
}

/// What the measured phases share inside the runtime.
struct Db<'a> {
    /// The connection LISTENing for commits of predicted rows.
    listener: tokio_postgres::Client,
    /// The connection that inserts.
    writer: tokio_postgres::Client,
    /// When each predicted row's commit was first reported, by id.
    arrivals: Arc<Mutex<HashMap<i32, Instant>>>,
    /// The listings inserted, cycled.
    rows: &'a [String],
}

/// The figures of sections 1–2, and the time until the first prediction.
pub(crate) struct Figures {
    /// Start → first row predicted.
    pub(crate) ready: Duration,
    /// Inserts per second actually sent in the latency test.
    achieved: f64,
    /// Sorted insert → predicted latencies, ms.
    pub(crate) ms: Vec<f64>,
    /// Seconds the throughput inserts took.
    inserted: f64,
    /// Seconds from the first throughput insert to the last predicted row.
    pub(crate) through: f64,
}

fn run(args: Args, kafka: bool) -> anyhow::Result<()> {
    let bin = build_augur()?;
    let what = if kafka {
        "Kafka path (capture → Kafka → enrich → Kafka → sink, one augur run process, Tansu broker)"
    } else {
        "embedded pipeline (augur run)"
    };
    println!(
        "augur {what} benchmark ({} cores, load average {})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    let env = Env::setup(kafka)?;
    let (run, started) = env.spawn_augur(&bin)?;
    let rows = listings();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let url = env.cluster.url("cars");
    let figures = rt.block_on(measure(&url, &args, &rows, started))?;
    let rss = peak_rss_mb(run.0.id());
    figures.print(&args, rss, kafka);
    drop(run);
    if kafka {
        sink_vs_copy(&env.cluster, &rows)?;
    }
    let _ = std::fs::remove_dir_all(&env.dir);
    Ok(())
}

impl Env {
    /// Starts the cluster with both tables, the broker (Kafka path) and creates the folder.
    pub(crate) fn setup(kafka: bool) -> anyhow::Result<Env> {
        let cluster = PgCluster::start().map_err(|e| anyhow::anyhow!("{e}"))?;
        cluster
            .psql("postgres", "CREATE DATABASE cars")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let sql = |q: &str| cluster.psql("cars", q).map_err(|e| anyhow::anyhow!("{e}"));
        sql(CAR_DATA)?;
        sql(PREDICTED)?;
        let broker = if kafka {
            Some(augur_testkit::Tansu::start())
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!("augur-bench-pipeline-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Env {
            broker,
            cluster,
            dir,
        })
    }

    /// The broker's bootstrap address (the Kafka path's environment).
    pub(crate) fn bootstrap(&self) -> String {
        self.broker
            .as_ref()
            .map(|b| b.bootstrap())
            .unwrap_or_default()
    }

    /// Starts `augur run` against the cluster (and broker); the process and when it started.
    fn spawn_augur(&self, bin: &Path) -> anyhow::Result<(Run, Instant)> {
        let mut cmd = Command::new(bin);
        cmd.args([
            "run",
            "--source-url",
            &self.cluster.url("cars"),
            "--offsets",
        ])
        .arg(self.dir.join("offsets.json"))
        .args(["--set", "http.listen="])
        .env("AUGUR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        if let Some(b) = &self.broker {
            cmd.args(["--set", &format!("kafka.bootstrap={}", b.bootstrap())]);
        }
        let started = Instant::now();
        let run = Run(cmd.spawn().context("starting augur run")?);
        Ok((run, started))
    }
}

/// Connects, waits for the pipeline to be up, then measures latency (1) and throughput (2).
pub(crate) async fn measure(
    url: &str,
    args: &Args,
    rows: &[String],
    started: Instant,
) -> anyhow::Result<Figures> {
    // A listener for commits of predicted rows.
    let (listener, mut conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let arrivals: Arc<Mutex<HashMap<i32, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let a2 = arrivals.clone();
    tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(msg)) = stream.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = msg
                && let Ok(id) = n.payload().parse::<i32>()
            {
                a2.lock().unwrap().entry(id).or_insert_with(Instant::now);
            }
        }
    });
    listener.batch_execute("LISTEN predicted").await?;
    let (writer, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let db = Db {
        listener,
        writer,
        arrivals,
        rows,
    };
    let ready = db.wait_ready(started).await?;
    let (achieved, ms) = db.latency(args).await?;
    let (inserted, through) = db.throughput(args).await?;
    Ok(Figures {
        ready,
        achieved,
        ms,
        inserted,
        through,
    })
}

impl Db<'_> {
    /// Waits until the pipeline predicts a first row (up and streaming); the time since `started`.
    async fn wait_ready(&self, started: Instant) -> anyhow::Result<Duration> {
        let (writer, arrivals, rows) = (&self.writer, &self.arrivals, self.rows);
        let probe: i32 = writer.query_one(&format!("INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {} RETURNING id", rows[0]), &[]).await?.get(0);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !arrivals.lock().unwrap().contains_key(&probe) {
            if Instant::now() > deadline {
                bail!("the pipeline never predicted a row");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(started.elapsed())
    }

    /// Section 1, latency at a steady rate: (achieved inserts/s, sorted insert → predicted ms).
    async fn latency(&self, args: &Args) -> anyhow::Result<(f64, Vec<f64>)> {
        let (writer, arrivals, rows) = (&self.writer, &self.arrivals, self.rows);
        let total = args.rate * args.seconds;
        let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
        let mut sent: Vec<(i32, Instant)> = Vec::with_capacity(total as usize);
        let t0 = Instant::now();
        for i in 0..total {
            let due = t0 + interval * i as u32;
            if let Some(w) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(w).await;
            }
            let at = Instant::now();
            let id: i32 = writer
                .query_one(
                    &format!("INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {} RETURNING id", rows[(i as usize + 1) % rows.len()]),
                    &[],
                )
                .await?
                .get(0);
            sent.push((id, at));
        }
        let achieved = total as f64 / t0.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = arrivals.lock().unwrap().clone();
        let mut ms: Vec<f64> = sent
            .iter()
            .filter_map(|(id, t)| {
                got.get(id)
                    .map(|a| a.saturating_duration_since(*t).as_secs_f64() * 1000.0)
            })
            .collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        Ok((achieved, ms))
    }

    /// Section 2, throughput: `--rows` rows by 1,000; (seconds inserting, seconds to last row).
    async fn throughput(&self, args: &Args) -> anyhow::Result<(f64, f64)> {
        let (listener, writer, rows) = (&self.listener, &self.writer, self.rows);
        listener.batch_execute("UNLISTEN predicted").await?;
        writer
            .batch_execute("DROP TRIGGER bench_notify ON car_data_predicted")
            .await?;
        let before: i64 = writer
            .query_one("SELECT count(*) FROM car_data_predicted", &[])
            .await?
            .get(0);
        let chunk = 1000u64;
        let t1 = Instant::now();
        let mut i = 0u64;
        while i < args.rows {
            let n = chunk.min(args.rows - i);
            let values: Vec<&str> = (0..n)
                .map(|k| rows[((i + k) as usize) % rows.len()].as_str())
                .collect();
            writer
                .batch_execute(&format!("INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {}", values.join(", ")))
                .await?;
            i += n;
        }
        let inserted = t1.elapsed().as_secs_f64();
        let target = before + args.rows as i64;
        loop {
            let c: i64 = writer
                .query_one("SELECT count(*) FROM car_data_predicted", &[])
                .await?
                .get(0);
            if c >= target {
                break;
            }
            if t1.elapsed() > Duration::from_secs(600) {
                bail!("only {} of {} rows predicted", c - before, args.rows);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let through = t1.elapsed().as_secs_f64();
        Ok((inserted, through))
    }
}

impl Figures {
    /// Prints sections 1–3 (with the process's peak `rss`) and the targets.
    fn print(&self, args: &Args, rss: f64, kafka: bool) {
        let Figures {
            ready,
            achieved,
            ref ms,
            inserted,
            through,
        } = *self;
        println!(
            "\nready (first row predicted) {:.2} s after start",
            ready.as_secs_f64()
        );
        println!(
            "\n1. insert → predicted row committed, {} rows at {} rows/s (achieved {achieved:.0}/s)",
            ms.len(),
            args.rate
        );
        println!("| p50 ms | p90 ms | p99 ms | max ms |");
        println!("|---|---|---|---|");
        println!(
            "| {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(ms, 0.5),
            percentile(ms, 0.9),
            percentile(ms, 0.99),
            ms.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "\n2. {} rows in 100 transactions: inserted in {inserted:.2} s; last row predicted after {through:.2} s → {:.0} rows/s sustained",
            args.rows,
            args.rows as f64 / through
        );
        println!("\n3. augur run peak RSS: {rss:.1} MB");
        if kafka {
            println!(
                "targets (Kafka path): p99 < 100 ms at 1,000 rows/s; ≥ 10,000 rows/s sustained"
            );
        } else {
            println!(
                "targets: p50 < 20 ms and p99 < 50 ms at 1,000 rows/s; ≥ 20,000 rows/s sustained; RSS < 60 MB"
            );
        }
    }
}

/// 4. The sink's batched upserts of 100,000 rows against `COPY` of the same rows.
fn sink_vs_copy(cluster: &PgCluster, rows: &[String]) -> anyhow::Result<()> {
    let n = 100_000usize;
    cluster
        .psql("cars", "CREATE TABLE up (id integer PRIMARY KEY, model text, year integer, price integer, mileage integer, mpg double precision); CREATE TABLE cp (LIKE up INCLUDING ALL)")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let parsed: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.trim_matches(|c| c == '(' || c == ')')
                .split(", ")
                .map(|s| s.trim_matches('\'').to_string())
                .collect()
        })
        .collect();
    let writes = upsert_writes(&parsed, n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let connect = augur_postgres::conn::PgConnect::from_url(&cluster.url("cars"))
        .map_err(|e| anyhow::anyhow!(e.full_message()))?;
    let (upsert_insert, upsert_update, copy) = rt.block_on(async {
        // The sink stays connected while COPY runs, as it always did.
        let (_sink, [a, b]) = time_upserts(&connect, &writes).await?;
        let copy = time_copy(&connect, &parsed, n).await?;
        Ok::<_, anyhow::Error>((a, b, copy))
    })?;
    print_sink_vs_copy(n, upsert_insert, upsert_update, copy);
    Ok(())
}

/// `n` upserts into `up` of the parsed listings, cycled, keyed 0..n.
fn upsert_writes(parsed: &[Vec<String>], n: usize) -> Vec<augur_postgres::sink::RowWrite> {
    use augur_core::connect::{Field, Schema, SchemaType, Value};
    use augur_postgres::sink::{RowShape, RowWrite, WriteOp};
    let opt = |t| Schema::new(t).optional(true);
    let shape = Arc::new(RowShape {
        fields: vec![
            Field::new("id", Schema::new(SchemaType::Int32)),
            Field::new("model", opt(SchemaType::String)),
            Field::new("year", opt(SchemaType::Int32)),
            Field::new("price", opt(SchemaType::Int32)),
            Field::new("mileage", opt(SchemaType::Int32)),
            Field::new("mpg", opt(SchemaType::Float64)),
        ],
        pk: vec!["id".into()],
    });
    (0..n)
        .map(|i| {
            let r = &parsed[i % parsed.len()];
            RowWrite {
                table: "up".into(),
                shape: shape.clone(),
                op: WriteOp::Row(vec![
                    Value::Int32(i as i32),
                    Value::String(r[0].clone()),
                    Value::Int32(r[1].parse().unwrap_or(0)),
                    Value::Int32(r[2].parse().unwrap_or(0)),
                    Value::Int32(r[4].parse().unwrap_or(0)),
                    Value::Float64(r[7].parse().unwrap_or(0.0)),
                ]),
            }
        })
        .collect()
}

/// Seconds of two upsert passes (new keys, existing keys); returns the sink, still connected.
async fn time_upserts(
    connect: &augur_postgres::conn::PgConnect,
    writes: &[augur_postgres::sink::RowWrite],
) -> anyhow::Result<(augur_postgres::sink::PgSink, [f64; 2])> {
    use augur_postgres::sink::PgSink;
    use augur_postgres::sink::config::{InsertMode, PkMode, SinkConfig};
    let mut cfg = SinkConfig::new(connect.clone());
    cfg.insert_mode = InsertMode::Upsert;
    cfg.pk_mode = PkMode::RecordValue;
    cfg.pk_fields = vec!["id".into()];
    let mut sink = PgSink::connect(cfg)
        .await
        .map_err(|e| anyhow::anyhow!(e.full_message()))?;
    let mut times = [0.0f64; 2];
    for slot in &mut times {
        let t = Instant::now();
        for chunk in writes.chunks(3000) {
            sink.write(chunk)
                .await
                .map_err(|e| anyhow::anyhow!(e.full_message()))?;
        }
        *slot = t.elapsed().as_secs_f64();
    }
    Ok((sink, times))
}

/// Seconds of `COPY` of the same `n` rows, text format, into the empty table `cp`.
async fn time_copy(
    connect: &augur_postgres::conn::PgConnect,
    parsed: &[Vec<String>],
    n: usize,
) -> anyhow::Result<f64> {
    let client = connect
        .connect_sql()
        .await
        .map_err(|e| anyhow::anyhow!(e.full_message()))?;
    let mut data = String::with_capacity(n * 48);
    for i in 0..n {
        let r = &parsed[i % parsed.len()];
        data.push_str(&format!(
            "{i}\t{}\t{}\t{}\t{}\t{}\n",
            r[0], r[1], r[2], r[4], r[7]
        ));
    }
    let t = Instant::now();
    let sinkc = client
        .copy_in::<_, bytes_shim::Bytes>("COPY cp FROM STDIN")
        .await?;
    futures_util::pin_mut!(sinkc);
    use futures_util::SinkExt;
    sinkc.send(bytes_shim::Bytes::from(data)).await?;
    sinkc.finish().await?;
    Ok(t.elapsed().as_secs_f64())
}

/// Prints section 4: COPY, then the two upsert passes, with rows/s and ratios.
fn print_sink_vs_copy(n: usize, upsert_insert: f64, upsert_update: f64, copy: f64) {
    let rate = |s: f64| n as f64 / s;
    println!(
        "\n4. sink batched upserts (3,000 rows per transaction) vs COPY, {n} rows, same table shape"
    );
    println!("| writer | seconds | rows/s | vs COPY |");
    println!("|---|---|---|---|");
    println!(
        "| PostgreSQL COPY (text, one statement) | {copy:.2} | {:.0} | 1.00 |",
        rate(copy)
    );
    println!(
        "| augur sink upsert, new keys | {upsert_insert:.2} | {:.0} | {:.2} |",
        rate(upsert_insert),
        copy / upsert_insert
    );
    println!(
        "| augur sink upsert, existing keys | {upsert_update:.2} | {:.0} | {:.2} |",
        rate(upsert_update),
        copy / upsert_update
    );
}

mod bytes_shim {
    pub(crate) use bytes::Bytes;
}
