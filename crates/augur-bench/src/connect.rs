//! `augur-bench connect`: the Kafka path as Kafka Connect users run it — N `augur connect
//! --distributed` worker processes on one Tansu broker running the original three connectors
//! (capture; enrichment and JDBC sink with `tasks.max=3` over six-partition topics) — for each
//! N of `--workers`: the figures of `augur-bench kafka` (insert → predicted latency at a steady
//! rate, rows/s for a large load, peak RSS summed over the workers) and, with two or more
//! workers, the failover time: the worker running the capture is killed (SIGKILL) and rows
//! keep coming; the time until the first row inserted after the kill is predicted.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::common::{Run, build_augur, load_average, peak_rss_mb, percentile};
use crate::pipeline::{self, Env, Figures};

/// Arguments of `augur-bench connect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Worker counts to measure, one cluster each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    workers: Vec<usize>,
    #[command(flatten)]
    load: pipeline::Args,
}

/// One measured cluster size.
struct Row {
    workers: usize,
    figures: Figures,
    rows_per_s: f64,
    rss: f64,
    failover: Option<f64>,
}

/// Runs the benchmark for every worker count, then prints the table.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let bin = build_augur()?;
    println!(
        "augur connect cluster benchmark ({} cores, load average {})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    let rows = pipeline::listings();
    let mut out = Vec::new();
    for &n in &args.workers {
        out.push(one(&bin, n, &args.load, &rows)?);
    }
    println!(
        "\n| workers | ready s | p50 ms | p99 ms | rows/s | peak RSS MB (all workers) | failover s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &out {
        let f = &r.figures;
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {} |",
            r.workers,
            f.ready.as_secs_f64(),
            percentile(&f.ms, 0.5),
            percentile(&f.ms, 0.99),
            r.rows_per_s,
            r.rss,
            r.failover.map_or("–".into(), |s| format!("{s:.1}")),
        );
    }
    Ok(())
}

/// One cluster of `n` workers: set up, measure, kill the capture's worker.
fn one(
    bin: &std::path::Path,
    n: usize,
    load: &pipeline::Args,
    rows: &[String],
) -> anyhow::Result<Row> {
    let env = Env::setup(true)?;
    let bootstrap = env.bootstrap();
    for topic in ["car_database.public.car_data", "car_data_predicted"] {
        augur_testkit::kafka::create_topic(&bootstrap, topic, 6);
    }
    let started = Instant::now();
    let mut workers: Vec<(SocketAddr, Run)> = Vec::new();
    for _ in 0..n {
        workers.push(spawn_worker(bin, &bootstrap)?);
    }
    create_connectors(workers[0].0, env.cluster.port())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let url = env.cluster.url("cars");
    let figures = rt.block_on(pipeline::measure(&url, load, rows, started))?;
    let rss = workers.iter().map(|(_, r)| peak_rss_mb(r.0.id())).sum();
    let failover = if n > 1 {
        Some(rt.block_on(failover(&url, &mut workers, rows))?)
    } else {
        None
    };
    let rows_per_s = load.rows as f64 / figures.through;
    println!("{n} worker(s): {rows_per_s:.0} rows/s");
    drop(workers);
    let _ = std::fs::remove_dir_all(&env.dir);
    Ok(Row {
        workers: n,
        figures,
        rows_per_s,
        rss,
        failover,
    })
}

/// Starts one `augur connect --distributed` worker on a free port.
fn spawn_worker(bin: &std::path::Path, bootstrap: &str) -> anyhow::Result<(SocketAddr, Run)> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut cmd = Command::new(bin);
    cmd.args([
        "connect",
        "--kafka",
        bootstrap,
        "--listen",
        &addr.to_string(),
    ])
    .args(["--group-id", "bench-cluster", "--distributed"])
    .args([
        "--session-timeout-ms",
        "6000",
        "--heartbeat-interval-ms",
        "1000",
    ])
    .args(["--rebalance-timeout-ms", "20000"])
    .env("AUGUR_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    let run = Run(cmd.spawn().context("starting augur connect")?);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("augur connect did not listen on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((addr, run))
}

/// POSTs the three connectors, retrying Kafka Connect's 409 until the group has a leader.
fn create_connectors(addr: SocketAddr, pg_port: u16) -> anyhow::Result<()> {
    let db = json!({
        "database.hostname": "127.0.0.1", "database.port": pg_port.to_string(),
        "database.user": "postgres", "database.password": "postgres", "database.dbname": "cars",
    });
    let mut source = json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput", "topic.prefix": "car_database",
        "table.include.list": "public.car_data",
        "transforms": "unwrap",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
    });
    merge(&mut source, &db);
    let enrich = json!({
        "connector.class": "io.augur.connect.EnrichConnector", "tasks.max": "3",
        "topics": "car_database.public.car_data", "output.topic": "car_data_predicted",
        "model": "ford-price:latest",
    });
    let sink = json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "tasks.max": "3",
        "topics": "car_data_predicted",
        "connection.url": format!("jdbc:postgresql://127.0.0.1:{pg_port}/cars"),
        "connection.user": "postgres", "connection.password": "postgres",
        "auto.create": "true", "insert.mode": "upsert", "pk.mode": "record_value",
        "pk.fields": "id", "delete.enabled": "true",
    });
    for (name, config) in [
        ("car-source", source),
        ("car-enrich", enrich),
        ("car-sink", sink),
    ] {
        let body = json!({"name": name, "config": config}).to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = augur_testkit::http::request(addr, "POST", "/connectors", body.as_bytes());
            match r.status {
                201 => break,
                409 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
                s => bail!("creating {name}: {s} {}", r.text()),
            }
        }
    }
    Ok(())
}

/// Adds `extra`'s keys to `v`.
fn merge(v: &mut Value, extra: &Value) {
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
}

/// Kills the worker running the capture while a row is inserted every 100 ms; the seconds
/// until the first row inserted after the kill is predicted.
async fn failover(
    url: &str,
    workers: &mut Vec<(SocketAddr, Run)>,
    rows: &[String],
) -> anyhow::Result<f64> {
    let status =
        augur_testkit::http::request(workers[0].0, "GET", "/connectors/car-source/status", b"");
    let owner = status.json()["tasks"][0]["worker_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let i = workers
        .iter()
        .position(|(a, _)| a.to_string() == owner)
        .context("no worker runs the capture")?;
    let (writer, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let (_, mut dead) = workers.remove(i);
    let killed = Instant::now();
    let _ = dead.0.kill();
    let _ = dead.0.wait();
    let insert = format!(
        "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {} RETURNING id",
        rows[0]
    );
    let first: i32 = writer.query_one(&insert, &[]).await?.get(0);
    loop {
        let done: bool = writer
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM car_data_predicted WHERE id = $1)",
                &[&first],
            )
            .await?
            .get(0);
        if done {
            return Ok(killed.elapsed().as_secs_f64());
        }
        if killed.elapsed() > Duration::from_secs(180) {
            bail!("no row predicted within 180 s of the kill");
        }
        writer.query_one(&insert, &[]).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
