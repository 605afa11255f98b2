//! The catch-up benchmark: `augur run` (capture → predict → upsert into PostgreSQL) against
//! `augur capture` alone (Debezium JSON to a pipe), each reading the same kind of one big
//! transaction committed before it starts, on one private cluster, in alternating rounds.
//!
//! Per round: one `--rows`-row transaction into `car_data`; then both consumers, in turn
//! (the order alternates between rounds), start from a slot positioned before it and are timed
//! from their start to the last row: for capture, the last event line read from its stdout;
//! for `augur run`, the last listing's prediction visible in `car_data_predicted` (a waiting
//! session polls its key every 2 ms). Both times include process start. Before each round both
//! slots are moved to the end of the WAL, so neither reads an earlier round again. Prints every round,
//! the medians and their ratio (issue 16's target: run ≥ 0.8 × capture), and the CPU each row
//! cost augur and the whole cluster (every process of it, the probe session included) during
//! each turn, with the ceiling that cost sets when every core does nothing else.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use augur_pgcluster::PgCluster;

use crate::capture::{
    Augur, CaptureTable, cluster_with_table, proc_cpu_seconds, reaped_cpu_seconds,
};
use crate::common::{Run, build_augur, load_average};
use crate::pipeline::CAR_DATA;

/// Arguments of `augur-bench catchup`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Rows in each round's transaction.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Rounds (each: one transaction, both consumers; the order alternates).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// The private cluster, the folder and the two consumers' settings.
struct Bench {
    bin: PathBuf,
    cluster: PgCluster,
    dir: PathBuf,
    /// `augur capture`'s connector properties (its own slot and publication).
    props: PathBuf,
}

/// Runs the catch-up benchmark.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let bin = build_augur()?;
    println!(
        "augur run catching up, against augur capture alone ({} cores, load average {})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    let bench = Bench::setup(bin)?;
    bench.create_slots()?;
    println!(
        "\none {}-row transaction per round; seconds from start to the last row\n",
        args.rows
    );
    println!(
        "| round | capture alone | augur run | capture rows/s | run rows/s | run / capture | capture CPU µs/row (augur + PostgreSQL) | run CPU µs/row (augur + PostgreSQL) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let (mut cap, mut run) = (Vec::new(), Vec::new());
    let (mut cap_cpu, mut run_cpu) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        bench.advance_slots()?;
        let last = bench.insert(args.rows)?;
        let (c, r) = if round % 2 == 0 {
            let c = bench.capture(args.rows)?;
            (c, bench.run(last)?)
        } else {
            let r = bench.run(last)?;
            (bench.capture(args.rows)?, r)
        };
        let n = args.rows as f64;
        let per_row = |t: &Turn| (t.augur_cpu * 1e6 / n, t.pg_cpu * 1e6 / n);
        let (ca, cp) = per_row(&c);
        let (ra, rp) = per_row(&r);
        println!(
            "| {} | {:.3} s | {:.3} s | {:.0} | {:.0} | {:.2} | {:.1} ({ca:.1} + {cp:.1}) | {:.1} ({ra:.1} + {rp:.1}) |",
            round + 1,
            c.secs,
            r.secs,
            n / c.secs,
            n / r.secs,
            c.secs / r.secs,
            ca + cp,
            ra + rp,
        );
        cap.push(n / c.secs);
        run.push(n / r.secs);
        cap_cpu.push(ca + cp);
        run_cpu.push(ra + rp);
    }
    let (c, r) = (median(&mut cap), median(&mut run));
    println!(
        "\nmedians: capture alone {c:.0} rows/s, augur run {r:.0} rows/s, run / capture {:.2} (target ≥ 0.8)",
        r / c
    );
    // What the CPU each row costs allows at best: every core busy with nothing but this.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (cc, rc) = (median(&mut cap_cpu), median(&mut run_cpu));
    println!(
        "CPU per row (medians, augur and every PostgreSQL process): capture {cc:.1} µs, run {rc:.1} µs; \
         at {cores} fully busy cores that allows at most {:.0} rows/s for run ({:.2} × capture alone's measured rate)",
        cores * 1e6 / rc,
        cores * 1e6 / rc / c
    );
    let _ = std::fs::remove_dir_all(&bench.dir);
    Ok(())
}

/// One consumer's turn: seconds from its start to the last row, and the CPU seconds it and
/// the cluster used meanwhile.
struct Turn {
    secs: f64,
    augur_cpu: f64,
    pg_cpu: f64,
}

/// CPU seconds used so far by the cluster's postmaster and every process it started.
fn cluster_cpu(cluster: &PgCluster) -> f64 {
    let Some(postmaster) = cluster.pid() else {
        return f64::NAN;
    };
    // The postmaster's own time and that of the children it already reaped (a backend that
    // ended during the turn), then every child still running.
    let mut total = proc_cpu_seconds(postmaster) + reaped_cpu_seconds(postmaster);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(postmaster) {
            total += proc_cpu_seconds(pid);
        }
    }
    total
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

impl Bench {
    fn setup(bin: PathBuf) -> anyhow::Result<Bench> {
        let cluster = cluster_with_table("cars", CAR_DATA)?;
        let dir = std::env::temp_dir().join(format!("augur-bench-catchup-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let props = dir.join("capture.properties");
        let table = CaptureTable {
            db: "cars",
            table: "public.car_data",
            slot: "augur_capture_bench",
            publication: Some("augur_capture_bench"),
        };
        std::fs::write(
            &props,
            table.properties(&cluster, &dir.join("capture-offsets.json"), ""),
        )?;
        Ok(Bench {
            bin,
            cluster,
            dir,
            props,
        })
    }

    fn sql(&self, q: &str) -> anyhow::Result<String> {
        self.cluster
            .psql("cars", q)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Both consumers start once, so their slots (and `car_data_predicted`) exist before the
    /// first transaction.
    fn create_slots(&self) -> anyhow::Result<()> {
        let a = Augur::start(&self.bin, &self.props)?;
        a.wait_streaming()?;
        a.stop();
        let run = self.spawn_run()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .sql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'augur'")?
            .trim()
            != "1"
            || self
                .sql("SELECT to_regclass('car_data_predicted') IS NOT NULL")?
                .trim()
                != "t"
        {
            if Instant::now() > deadline {
                bail!("augur run did not create its slot and output table");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(run);
        // Autovacuum waking on either table in the middle of one consumer's turn would charge
        // it for work that is not its own.
        self.sql(
            "ALTER TABLE car_data SET (autovacuum_enabled = false); \
             ALTER TABLE car_data_predicted SET (autovacuum_enabled = false)",
        )?;
        Ok(())
    }

    /// Moves both slots (confirmed and restart positions) to the end of the WAL: a consumer
    /// stopped right after its last row may not have confirmed it yet, and must not read or
    /// decode the previous round again.
    fn advance_slots(&self) -> anyhow::Result<()> {
        // A checkpoint logs the running transactions, the point a slot's restart position can
        // move to; without one, every start would decode all earlier rounds again.
        self.sql("CHECKPOINT")?;
        self.sql(
            "SELECT pg_replication_slot_advance(slot_name, pg_current_wal_lsn()) FROM pg_replication_slots \
             WHERE slot_name IN ('augur', 'augur_capture_bench')",
        )?;
        Ok(())
    }

    /// Commits one `n`-row transaction of listings; returns the last id.
    fn insert(&self, n: u64) -> anyhow::Result<i64> {
        self.sql(&format!(
            "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) \
             SELECT (ARRAY[' Fiesta',' Focus',' Kuga',' EcoSport',' Puma'])[1 + i % 5], 2012 + i % 9, 8000 + i % 9000, \
             (ARRAY['Manual','Automatic','Semi-Auto'])[1 + i % 3], 1000 + i % 90000, (ARRAY['Petrol','Diesel','Hybrid'])[1 + i % 3], \
             (ARRAY[0, 20, 145, 150])[1 + i % 4], 40.0 + (i % 300) / 10.0, (ARRAY[1.0, 1.5, 2.0])[1 + i % 3] \
             FROM generate_series(1, {n}) i"
        ))?;
        let last = self.sql("SELECT max(id) FROM car_data")?;
        last.trim().parse().context("the last id")
    }

    /// `augur capture` from its start to the `n`-th event line.
    fn capture(&self, n: u64) -> anyhow::Result<Turn> {
        let pg = cluster_cpu(&self.cluster);
        let t = Instant::now();
        let a = Augur::start(&self.bin, &self.props)?;
        a.wait_lines(n, Duration::from_secs(600))?;
        let turn = Turn {
            secs: t.elapsed().as_secs_f64(),
            augur_cpu: a.cpu_seconds(),
            pg_cpu: cluster_cpu(&self.cluster) - pg,
        };
        a.stop();
        Ok(turn)
    }

    /// Seconds `augur run` takes from its start until listing `last` has its prediction,
    /// polled every 2 ms over a connection opened before the start.
    fn run(&self, last: i64) -> anyhow::Result<Turn> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let url = self.cluster.url("cars");
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(conn);
            let probe = client
                .prepare("SELECT 1 FROM car_data_predicted WHERE id = $1")
                .await?;
            let id = i32::try_from(last).context("the last id")?;
            let pg = cluster_cpu(&self.cluster);
            let t = Instant::now();
            let run = self.spawn_run()?;
            let deadline = t + Duration::from_secs(600);
            while client.query_opt(&probe, &[&id]).await?.is_none() {
                if Instant::now() > deadline {
                    bail!("augur run did not predict listing {last} within 10 minutes");
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let turn = Turn {
                secs: t.elapsed().as_secs_f64(),
                augur_cpu: proc_cpu_seconds(run.0.id()),
                pg_cpu: cluster_cpu(&self.cluster) - pg,
            };
            drop(run);
            Ok(turn)
        })
    }

    fn spawn_run(&self) -> anyhow::Result<Run> {
        spawn_run(&self.bin, &self.cluster, &self.dir)
    }
}

/// Starts `augur run` on the cluster's `cars` database with its own offsets file.
fn spawn_run(bin: &Path, cluster: &PgCluster, dir: &Path) -> anyhow::Result<Run> {
    let child = Command::new(bin)
        .args(["run", "--source-url", &cluster.url("cars"), "--offsets"])
        .arg(dir.join("run-offsets.json"))
        .args(["--set", "http.listen="])
        .env("AUGUR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting augur run")?;
    Ok(Run(child))
}
