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
    rows: u64,
}

const CAR_DATA: &str = "CREATE TABLE car_data (id SERIAL PRIMARY KEY, model VARCHAR(50), year INTEGER, price INTEGER, \
    transmission VARCHAR(50), mileage INTEGER, fuelType VARCHAR(50), tax INTEGER, mpg FLOAT, engineSize FLOAT, suggestedPrice INTEGER)";
/// The predicted table as the sink would create it, with a trigger that reports each commit.
const PREDICTED: &str = "CREATE TABLE car_data_predicted (id integer NOT NULL DEFAULT 0, model text, year integer, price integer, \
    transmission text, mileage integer, fueltype text, tax integer, mpg double precision, enginesize double precision, \
    suggestedprice integer, PRIMARY KEY (id)); \
    CREATE FUNCTION bench_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('predicted', NEW.id::text); RETURN NEW; END $$; \
    CREATE TRIGGER bench_notify AFTER INSERT ON car_data_predicted FOR EACH ROW EXECUTE FUNCTION bench_notify();";

fn listings() -> Vec<String> {
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
    let mut cmd = Command::new(&bin);
    cmd.args(["run", "--source-url", &cluster.url("cars"), "--offsets"])
        .arg(dir.join("offsets.json"))
        .args(["--set", "http.listen="])
        .env("AUGUR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(b) = &broker {
        cmd.args(["--set", &format!("kafka.bootstrap={}", b.bootstrap())]);
    }
    let started = Instant::now();
    let run = Run(cmd.spawn().context("starting augur run")?);
    let rows = listings();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let url = cluster.url("cars");
    let result = rt.block_on(async {
        // A listener for commits of predicted rows.
        let (listener, mut conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        let arrivals: Arc<Mutex<HashMap<i32, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
        let a2 = arrivals.clone();
        tokio::spawn(async move {
            let mut stream = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(Ok(msg)) = stream.next().await {
                if let tokio_postgres::AsyncMessage::Notification(n) = msg
                    && let Ok(id) = n.payload().parse::<i32>() {
                        a2.lock().unwrap().entry(id).or_insert_with(Instant::now);
                    }
            }
        });
        listener.batch_execute("LISTEN predicted").await?;
        let (writer, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        // Wait until the pipeline predicts a first row (it is up and streaming).
        let probe: i32 = writer.query_one(&format!("INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {} RETURNING id", rows[0]), &[]).await?.get(0);
        let deadline = Instant::now() + Duration::from_secs(120);
        while !arrivals.lock().unwrap().contains_key(&probe) {
            if Instant::now() > deadline {
                bail!("the pipeline never predicted a row");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ready = started.elapsed();

        // 1. Latency at a steady rate.
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
        let mut ms: Vec<f64> = sent.iter().filter_map(|(id, t)| got.get(id).map(|a| a.saturating_duration_since(*t).as_secs_f64() * 1000.0)).collect();
        ms.sort_by(|a, b| a.total_cmp(b));

        // 2. Throughput: 100 transactions of 1,000 rows.
        listener.batch_execute("UNLISTEN predicted").await?;
        writer.batch_execute("DROP TRIGGER bench_notify ON car_data_predicted").await?;
        let before: i64 = writer.query_one("SELECT count(*) FROM car_data_predicted", &[]).await?.get(0);
        let chunk = 1000u64;
        let t1 = Instant::now();
        let mut i = 0u64;
        while i < args.rows {
            let n = chunk.min(args.rows - i);
            let values: Vec<&str> = (0..n).map(|k| rows[((i + k) as usize) % rows.len()].as_str()).collect();
            writer
                .batch_execute(&format!("INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {}", values.join(", ")))
                .await?;
            i += n;
        }
        let inserted = t1.elapsed().as_secs_f64();
        let target = before + args.rows as i64;
        loop {
            let c: i64 = writer.query_one("SELECT count(*) FROM car_data_predicted", &[]).await?.get(0);
            if c >= target {
                break;
            }
            if t1.elapsed() > Duration::from_secs(600) {
                bail!("only {} of {} rows predicted", c - before, args.rows);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let through = t1.elapsed().as_secs_f64();
        Ok::<_, anyhow::Error>((ready, achieved, ms, inserted, through))
    });
    let (ready, achieved, ms, inserted, through) = result?;
    let rss = peak_rss_mb(run.0.id());
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
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "\n2. {} rows in 100 transactions: inserted in {inserted:.2} s; last row predicted after {through:.2} s → {:.0} rows/s sustained",
        args.rows,
        args.rows as f64 / through
    );
    println!("\n3. augur run peak RSS: {rss:.1} MB");
    if kafka {
        println!("targets (Kafka path): p99 < 100 ms at 1,000 rows/s; ≥ 10,000 rows/s sustained");
    } else {
        println!(
            "targets: p50 < 20 ms and p99 < 50 ms at 1,000 rows/s; ≥ 20,000 rows/s sustained; RSS < 60 MB"
        );
    }
    drop(run);
    if kafka {
        sink_vs_copy(&cluster, &rows)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// 4. The sink's batched upserts of 100,000 rows against `COPY` of the same rows.
fn sink_vs_copy(cluster: &PgCluster, rows: &[String]) -> anyhow::Result<()> {
    use augur_core::connect::{Field, Schema, SchemaType, Value};
    use augur_postgres::sink::config::{InsertMode, PkMode, SinkConfig};
    use augur_postgres::sink::{PgSink, RowShape, RowWrite, WriteOp};
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
    let writes: Vec<RowWrite> = (0..n)
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
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let connect = augur_postgres::conn::PgConnect::from_url(&cluster.url("cars"))
        .map_err(|e| anyhow::anyhow!(e.full_message()))?;
    let (upsert_insert, upsert_update, copy) = rt.block_on(async {
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
        let (a, b) = (times[0], times[1]);
        // COPY of the same rows, text format, into an empty table.
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
        Ok::<_, anyhow::Error>((a, b, t.elapsed().as_secs_f64()))
    })?;
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
    Ok(())
}

mod bytes_shim {
    pub(crate) use bytes::Bytes;
}
