//! `augur demo`: the one-command tour. Starts a private PostgreSQL cluster in a temp dir (unless
//! `DATABASE_URL` points at one), creates the original `car_data` table, inserts a listing from
//! the Ford data every second, and captures every change as a Debezium event on stdout.
//! Ctrl-C stops everything it started and removes the temp cluster.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use augur_postgres::cluster::PgCluster;
use augur_postgres::conn::PgConnect;
use augur_postgres::source::offset::MemoryOffsetStore;
use augur_runtime::capture::config::CaptureConfig;
use augur_runtime::capture::destination::Destination;
use augur_runtime::props::Props;

use super::runtime;

/// The original table.
pub(crate) const CAR_DATA_DDL: &str = "CREATE TABLE IF NOT EXISTS car_data (id SERIAL PRIMARY KEY, \
    model VARCHAR(50), year INTEGER, price INTEGER, transmission VARCHAR(50), mileage INTEGER, \
    fuelType VARCHAR(50), tax INTEGER, mpg FLOAT, engineSize FLOAT, suggestedPrice INTEGER)";

/// Arguments of `augur demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Use this database instead of starting a private cluster.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Ford data to draw listings from (default `../shared/data/ford.csv`; a built-in sample
    /// when absent).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seconds between inserted listings.
    #[arg(long, default_value_t = 1.0)]
    every: f64,
}

/// A few listings from the Ford data, used when the CSV is not around.
const SAMPLE: &[&str] = &[
    " Fiesta,2017,12000,Automatic,15944,Petrol,150,57.7,1",
    " Focus,2018,14000,Manual,9083,Petrol,150,57.7,1",
    " Focus,2017,13000,Manual,12456,Petrol,150,57.7,1",
    " Fiesta,2019,17500,Manual,10460,Petrol,145,40.3,1.5",
    " Kuga,2019,23700,Automatic,1500,Diesel,145,47.1,2",
];

fn listings(path: Option<PathBuf>) -> Vec<String> {
    let path = path.unwrap_or_else(|| PathBuf::from("../shared/data/ford.csv"));
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .lines()
            .skip(1)
            .filter(|l| l.split(',').count() == 9)
            .map(str::to_string)
            .collect(),
        Err(_) => SAMPLE.iter().map(|s| s.to_string()).collect(),
    }
}

/// Runs `augur demo`.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (cluster, connect) = match &args.database_url {
        Some(url) => (
            None,
            PgConnect::from_url(url).map_err(|e| anyhow::anyhow!(e.full_message()))?,
        ),
        None => {
            eprintln!("augur demo: starting a private PostgreSQL cluster …");
            let c = PgCluster::start().map_err(|e| anyhow::anyhow!("{e}"))?;
            c.psql("postgres", "CREATE DATABASE cars")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let connect = PgConnect::from_url(&c.url("cars"))
                .map_err(|e| anyhow::anyhow!(e.full_message()))?;
            (Some(c), connect)
        }
    };
    let rows = listings(args.data.clone());
    let mut props = Props::new();
    for (k, v) in [
        ("name", "augur-demo"),
        ("topic.prefix", "car_database"),
        ("table.include.list", "public.car_data"),
        ("slot.name", "augur_demo"),
        ("publication.name", "augur_demo"),
        ("value.converter.schemas.enable", "false"),
        ("key.converter.schemas.enable", "false"),
        ("slot.drop.on.stop", "true"),
    ] {
        props.set(k, v);
    }
    props.set("database.hostname", connect.host.clone());
    props.set("database.port", connect.port.to_string());
    props.set("database.user", connect.user.clone());
    props.set("database.password", connect.password.expose().to_string());
    props.set("database.dbname", connect.dbname.clone());
    let (cfg, _) = CaptureConfig::from_props(&props).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = runtime::tokio()?;
    let every = Duration::from_secs_f64(args.every.max(0.01));
    let result = rt.block_on(async move {
        let shutdown = runtime::signals();
        let client = connect.connect_sql().await?;
        client
            .batch_execute(CAR_DATA_DDL)
            .await
            .map_err(|e| augur_core::Error::new(augur_core::ErrorKind::SourceSetup, "cannot create car_data").with_source(e))?;
        eprintln!(
            "augur demo: capturing {}; inserting a listing every {:.1} s; change events follow on stdout (Ctrl-C stops)",
            connect.display(),
            every.as_secs_f64()
        );
        let mut stop = shutdown.clone();
        let inserter = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            for line in rows.iter().cycle() {
                tokio::select! { _ = tick.tick() => {}, _ = stop.wait() => return }
                let f: Vec<&str> = line.split(',').collect();
                let num = |s: &str| s.trim().parse::<f64>().unwrap_or(0.0);
                let r = client
                    .execute(
                        "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[&f[0], &(num(f[1]) as i32), &(num(f[2]) as i32), &f[3], &(num(f[4]) as i32), &f[5],
                          &(num(f[6]) as i32), &num(f[7]), &num(f[8])],
                    )
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %e, "insert failed");
                }
            }
        });
        let dest = Destination::Stdout;
        let r = augur_runtime::capture::run_with(cfg, dest, Arc::new(MemoryOffsetStore::default()), shutdown).await;
        inserter.abort();
        r
    });
    drop(cluster);
    Ok(match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => runtime::report(&e),
    })
}
