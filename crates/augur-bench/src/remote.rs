//! The remote-model enrichment benchmark: `augur enrich --predict-url` reading Debezium-style
//! records from a Tansu topic and predicting each batch through the real `augur serve` (BentoML
//! JSON and Open Inference Protocol v2), writing the enriched records to an output topic.
//! Measures rows/s from the first enriched record to the last (by record timestamps, so the
//! consumer group's join is not counted), wall time and the enrich process's peak RSS — side by
//! side with another `augur` binary (`--baseline`, e.g. a build of an older commit), in
//! alternating rounds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use augur_runtime::remote::{Protocol, RemoteModel, RemoteSettings};
use augur_testkit::Tansu;
use augur_testkit::kafka::{create_topic, produce_many, read_topic};
use serde_json::{Map, Value};

use crate::common::{Run, build_augur, load_average, peak_rss_mb};

/// Arguments of `augur-bench remote`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Records enriched per run.
    #[arg(long, default_value_t = 20_000)]
    rows: usize,
    /// Runs of each binary and protocol (alternating).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Another `augur` binary to measure side by side (e.g. the commit before a change).
    #[arg(long)]
    baseline: Option<PathBuf>,
}

const ROW_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"model"},{"type":"int32","optional":true,"field":"year"},{"type":"string","optional":true,"field":"transmission"},{"type":"int32","optional":true,"field":"mileage"},{"type":"string","optional":true,"field":"fueltype"},{"type":"int32","optional":true,"field":"tax"},{"type":"double","optional":true,"field":"mpg"},{"type":"double","optional":true,"field":"enginesize"}],"optional":false,"name":"srv.public.cars.Value"}"#;

/// One input record: a car listing with a schema, as the JsonConverter writes it.
fn record(id: usize) -> Vec<u8> {
    const MODELS: [&str; 5] = [" Fiesta", " Focus", " Kuga", " EcoSport", " Mondeo"];
    let model = MODELS[id % MODELS.len()];
    let year = 2010 + id % 10;
    let mileage = 5_000 + (id * 7_919) % 90_000;
    format!(
        r#"{{"schema":{ROW_SCHEMA},"payload":{{"id":{id},"model":"{model}","year":{year},"transmission":"Manual","mileage":{mileage},"fueltype":"Petrol","tax":150,"mpg":57.7,"enginesize":1.0}}}}"#
    )
    .into_bytes()
}

/// One measured run.
struct Measure {
    rows_per_s: f64,
    wall_s: f64,
    rss_mb: f64,
}

/// Starts `augur serve` and waits until it answers.
fn serve(bin: &Path, port: u16) -> anyhow::Result<Run> {
    let child = Command::new(bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("AUGUR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting augur serve")?;
    let run = Run(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("augur serve did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(run)
}

/// Enriches every input record once with `bin` into a fresh topic.
fn measure(
    bin: &Path,
    bootstrap: &str,
    url: &str,
    protocol: &str,
    tag: &str,
    rows: usize,
) -> anyhow::Result<Measure> {
    let out = format!("out-{tag}");
    create_topic(bootstrap, &out, 1);
    let started = Instant::now();
    let child = Command::new(bin)
        .args([
            "enrich",
            "--kafka",
            bootstrap,
            "--topics",
            "in",
            "--output-topic",
            &out,
        ])
        .args([
            "--predict-url",
            url,
            "--predict-protocol",
            protocol,
            "--group-id",
            tag,
        ])
        .env("AUGUR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting augur enrich")?;
    let run = Run(child);
    let got = read_topic(bootstrap, &out, rows, Duration::from_secs(600));
    let wall_s = started.elapsed().as_secs_f64();
    let rss_mb = peak_rss_mb(run.0.id());
    drop(run);
    if got.len() < rows {
        bail!("{tag}: only {} of {rows} records enriched", got.len());
    }
    let ts: Vec<i64> = got.iter().filter_map(|r| r.timestamp).collect();
    let span_ms = (ts.iter().max().unwrap_or(&0) - ts.iter().min().unwrap_or(&0)).max(1);
    Ok(Measure {
        rows_per_s: rows as f64 / (span_ms as f64 / 1000.0),
        wall_s,
        rss_mb,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs the remote-model enrichment benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let bin = build_augur()?;
    let mut bins = vec![("current", bin.clone())];
    if let Some(b) = &args.baseline {
        anyhow::ensure!(b.exists(), "no baseline binary at {}", b.display());
        bins.insert(0, ("baseline", b.clone()));
    }
    println!(
        "augur remote-model enrichment benchmark ({} cores, load average {}): {} records, augur serve as the model server",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average(),
        args.rows
    );
    let broker = Tansu::start();
    let b = broker.bootstrap();
    create_topic(&b, "in", 1);
    produce_many(&b, "in", (0..args.rows).map(record));
    let port = augur_pgcluster::free_port().map_err(|e| anyhow::anyhow!("{e}"))?;
    let _server = serve(&bin, port)?;
    let url = format!("http://127.0.0.1:{port}");
    let results = enrichment_rounds(&args, &bins, &b, &url)?;
    print_medians(&results, &bins);
    client_requests(&url, port)
}

/// Part 1: `augur enrich` end to end, each binary and protocol in alternating rounds.
fn enrichment_rounds<'a>(
    args: &Args,
    bins: &'a [(&'static str, PathBuf)],
    bootstrap: &str,
    url: &str,
) -> anyhow::Result<Vec<(&'static str, &'a str, Measure)>> {
    println!(
        "\n1. enrichment end to end\n| protocol | binary | round | rows/s (first → last record) | wall s (incl. start, group join) | enrich peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for protocol in ["bentoml", "oip"] {
        for round in 0..args.rounds {
            for (name, bin) in bins {
                let tag = format!("{protocol}-{name}-{round}");
                let m = measure(bin, bootstrap, url, protocol, &tag, args.rows)?;
                println!(
                    "| {protocol} | {name} | {round} | {:.0} | {:.2} | {:.1} |",
                    m.rows_per_s, m.wall_s, m.rss_mb
                );
                results.push((protocol, *name, m));
            }
        }
    }
    Ok(results)
}

/// The medians of part 1 per protocol and binary, and the ratio of the two binaries.
fn print_medians(results: &[(&str, &str, Measure)], bins: &[(&str, PathBuf)]) {
    println!("\n| protocol | binary | median rows/s | median wall s |");
    println!("|---|---|---|---|");
    for protocol in ["bentoml", "oip"] {
        let mut medians = Vec::new();
        for (name, _) in bins {
            let of = |f: fn(&Measure) -> f64| {
                median(
                    results
                        .iter()
                        .filter(|r| r.0 == protocol && r.1 == *name)
                        .map(|r| f(&r.2))
                        .collect(),
                )
            };
            let (rps, wall) = (of(|m| m.rows_per_s), of(|m| m.wall_s));
            println!("| {protocol} | {name} | {rps:.0} | {wall:.2} |");
            medians.push(rps);
        }
        if let [base, cur] = medians[..] {
            println!("| {protocol} | current / baseline | {:.2} | |", cur / base);
        }
    }
}

/// One listing as the enrichment stage sends it (BentoML JSON object).
fn listing() -> Map<String, Value> {
    serde_json::from_str(
        r#"{"model":" Focus","year":2018,"transmission":"Manual","mileage":12000,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#,
    )
    .expect("a JSON object")
}

/// Part 2: the client alone, one request at a time against the same server: augur's pooled
/// keep-alive client against a new TCP connection per request (what augur's client did
/// before), both serializing the rows and parsing the answer.
fn client_requests(url: &str, port: u16) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "\n2. one request at a time (POST /predict, BentoML JSON): µs per request, median of 5 alternating runs"
    );
    println!(
        "| rows per request | requests per run | pooled keep-alive (augur's client) | new connection per request | pooled / new |"
    );
    println!("|---|---|---|---|---|");
    for (rows, n) in [(1usize, 2000usize), (16, 1000), (256, 200)] {
        let batch = vec![listing(); rows];
        let (mut pooled, mut fresh) = (Vec::new(), Vec::new());
        rt.block_on(async {
            let settings = RemoteSettings::new(url, Protocol::BentoMl);
            let client = RemoteModel::connect(settings).await?;
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..n {
                    client.predict(&batch).await?;
                }
                pooled.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
                let t = Instant::now();
                for _ in 0..n {
                    post_on_new_connection(port, &batch).await?;
                }
                fresh.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
            }
            Ok::<_, anyhow::Error>(())
        })?;
        let (p, f) = (median(pooled), median(fresh));
        println!("| {rows} | {n} | {p:.1} | {f:.1} | {:.2} |", p / f);
    }
    Ok(())
}

/// `POST /predict` on a new connection (`Connection: close`), the answer parsed as JSON.
async fn post_on_new_connection(port: u16, rows: &[Map<String, Value>]) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = serde_json::to_vec(rows)?;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(&body).await?;
    let mut answer = Vec::with_capacity(4096);
    s.read_to_end(&mut answer).await?;
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP head")?;
    anyhow::ensure!(answer.starts_with(b"HTTP/1.1 200"), "the server refused");
    let prices: Vec<f64> = serde_json::from_slice(&answer[end + 4..])?;
    anyhow::ensure!(prices.len() == rows.len(), "wrong number of prices");
    Ok(())
}
