//! `augur demo`: the one-command tour. Starts a private PostgreSQL cluster in a temp dir (unless
//! `--database-url` names one explicitly; `DATABASE_URL` is never followed), creates the original `car_data` table with a few listings,
//! runs the embedded pipeline with the shipped model, and serves the listing page on
//! http://127.0.0.1:8080 where a seller lists a car and sees its suggested price arrive.
//! Ctrl-C stops everything it started and removes the temp cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use augur_core::offset::{FileOffsetStore, MemoryOffsetStore, OffsetStore};
use augur_core::shutdown::Shutdown;
use augur_core::status::SourceStatus;
use augur_core::{Error, ErrorKind};
use augur_pgcluster::PgCluster;
use augur_postgres::conn::PgConnect;
use augur_runtime::pipeline::config::RunConfig;
use augur_runtime::pipeline::{Hooks, Written};
use augur_runtime::props::Props;
use tokio::sync::{broadcast, watch};

use super::runtime;

/// The original table.
pub(crate) const CAR_DATA_DDL: &str = "CREATE TABLE IF NOT EXISTS car_data (id SERIAL PRIMARY KEY, \
    model VARCHAR(50), year INTEGER, price INTEGER, transmission VARCHAR(50), mileage INTEGER, \
    fuelType VARCHAR(50), tax INTEGER, mpg FLOAT, engineSize FLOAT, suggestedPrice INTEGER)";

/// Arguments of `augur demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Use this database instead of starting a private cluster: the demo creates `car_data`
    /// there and writes listings into it. Only taken from this flag or its own variable
    /// (`DATABASE_URL` is not followed, so the demo never writes into a database by accident).
    #[arg(long, env = "AUGUR_DEMO_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the listing page is served.
    #[arg(long, env = "AUGUR_DEMO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Ford data to draw the first listings from (default `data/ford.csv`; a built-in
    /// sample when absent).
    #[arg(long, env = "AUGUR_DATA")]
    data: Option<PathBuf>,
    /// Also insert a listing from the data every this many seconds (0: only what sellers list).
    #[arg(long, env = "AUGUR_DEMO_FEED", default_value_t = 0.0)]
    feed: f64,
    /// Model tag (falls back to the model compiled into augur).
    #[arg(long, env = "AUGUR_MODEL", default_value = augur_model::SHIPPED_MODEL)]
    model: String,
    #[command(flatten)]
    tls: super::http_tls::TlsArgs,
}

/// A few listings from the Ford data, used when the CSV is not around.
const SAMPLE: &[&str] = &[
    " Fiesta,2017,12000,Automatic,15944,Petrol,150,57.7,1",
    " Focus,2018,14000,Manual,9083,Petrol,150,57.7,1",
    " Focus,2017,13000,Manual,12456,Petrol,150,57.7,1",
    " Fiesta,2019,17500,Manual,10460,Petrol,145,40.3,1.5",
    " Kuga,2019,23700,Automatic,1500,Diesel,145,47.1,2",
];

/// Listings the table starts with: enough for every car to have comparable listings.
const SEED_ROWS: usize = 2000;

/// The listings: a spread of [`SEED_ROWS`] from the data first (the seed), the rest after
/// (the feed); the built-in sample when the data is not there.
fn listings(path: Option<PathBuf>) -> Vec<String> {
    let path = path.unwrap_or_else(|| PathBuf::from("data/ford.csv"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return SAMPLE.iter().map(|s| s.to_string()).collect();
    };
    let all: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| l.split(',').count() == 9)
        .collect();
    let step = (all.len() / SEED_ROWS).max(1);
    let (seed, feed): (Vec<_>, Vec<_>) = all.iter().enumerate().partition(|(i, _)| i % step == 0);
    seed.into_iter()
        .take(SEED_ROWS)
        .chain(feed)
        .map(|(_, l)| l.to_string())
        .collect()
}

async fn insert(
    client: &impl tokio_postgres::GenericClient,
    line: &str,
) -> Result<(), tokio_postgres::Error> {
    let f: Vec<&str> = line.split(',').collect();
    let num = |s: &str| s.trim().parse::<f64>().unwrap_or(0.0);
    client
        .execute(
            "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&f[0], &(num(f[1]) as i32), &(num(f[2]) as i32), &f[3], &(num(f[4]) as i32), &f[5], &(num(f[6]) as i32), &num(f[7]), &num(f[8])],
        )
        .await
        .map(|_| ())
}

/// Runs `augur demo`.
pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let (cluster, connect) = database(&args)?;
    let cfg = run_config(&connect, cluster.is_some(), &args.model)?;
    let offsets: Arc<dyn OffsetStore> = match cluster {
        // A private cluster lives as long as this process: so do its offsets.
        Some(_) => Arc::new(MemoryOffsetStore::default()),
        None => Arc::new(FileOffsetStore::new(
            augur_runtime::capture::default_offsets_file("augur-demo"),
        )),
    };
    let rows = listings(args.data.clone());
    let model = match augur_runtime::models::load(&args.model, None) {
        Ok(m) => m,
        Err(e) => return Ok(runtime::report(&e)),
    };
    let tls = match args.tls.load() {
        Ok(t) => t,
        Err(e) => return Ok(runtime::report(&e)),
    };
    let rt = runtime::tokio()?;
    let demo = Demo {
        connect,
        cfg,
        offsets,
        rows,
        listen: args.listen,
        tls,
        feed: args.feed,
        model,
    };
    let result: Result<(), Error> = rt.block_on(demo.run());
    drop(cluster);
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => runtime::report(&e),
    })
}

/// The database to use: `--database-url`, else a private cluster started here (returned too,
/// so it lives until the demo ends).
fn database(args: &DemoArgs) -> anyhow::Result<(Option<PgCluster>, PgConnect)> {
    Ok(match &args.database_url {
        Some(url) => (
            None,
            PgConnect::from_url(url).map_err(|e| anyhow::anyhow!(e.full_message()))?,
        ),
        None => {
            if std::env::var_os("DATABASE_URL").is_some() {
                eprintln!(
                    "augur demo: DATABASE_URL is set but not used; pass --database-url to use that database"
                );
            }
            eprintln!("augur demo: starting a private PostgreSQL cluster in a temp dir …");
            let c = PgCluster::start().map_err(|e| anyhow::anyhow!("{e}"))?;
            c.psql("postgres", "CREATE DATABASE cars")
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let connect = PgConnect::from_url(&c.url("cars"))
                .map_err(|e| anyhow::anyhow!(e.full_message()))?;
            (Some(c), connect)
        }
    })
}

/// Announces the database and builds the pipeline configuration for it (`private`: a cluster
/// started by the demo).
fn run_config(connect: &PgConnect, private: bool, model: &str) -> anyhow::Result<RunConfig> {
    let url = format!(
        "postgres://{}:{}@{}:{}/{}",
        connect.user,
        connect.password.expose(),
        connect.host,
        connect.port,
        connect.dbname
    );
    eprintln!(
        "augur demo: using database {} on {}:{} as {}{}",
        connect.dbname,
        connect.host,
        connect.port,
        connect.user,
        if private {
            " (private, removed on exit)"
        } else {
            " (from --database-url)"
        }
    );
    let mut props = Props::new();
    props.set("source.url", url);
    // Its own slot and publication: never the ones an `augur run` on that database uses.
    props.set("source.slot", "augur_demo");
    props.set("source.publication", "augur_demo");
    props.set("model.tag", model.to_string());
    props.set("http.listen", "");
    let (cfg, _) = RunConfig::from_props(&props).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(cfg)
}

/// Everything the demo's async part needs.
struct Demo {
    /// How to reach the database.
    connect: PgConnect,
    /// The pipeline configuration.
    cfg: RunConfig,
    /// Where the pipeline keeps its offsets.
    offsets: Arc<dyn OffsetStore>,
    /// Listings to seed the table with and to feed.
    rows: Vec<String>,
    /// Where the listing page is served.
    listen: SocketAddr,
    /// HTTPS for the page, when given.
    tls: Option<augur_http::ServerTls>,
    /// Seconds between fed listings (0: no feed).
    feed: f64,
    /// The model the pipeline prices with, for the page's explanations.
    model: Arc<augur_model::Model>,
}

impl Demo {
    /// Seeds the table, runs the pipeline and the listing page until shutdown.
    async fn run(self) -> Result<(), Error> {
        let Demo {
            connect,
            cfg,
            offsets,
            rows,
            listen,
            tls,
            feed,
            model,
        } = self;
        let shutdown = runtime::signals();
        let mut client = connect.connect_sql().await?;
        seed_table(&mut client, &rows).await?;
        let registry = augur_metrics::Registry::new();
        augur_metrics::process::register(&registry);
        let (written, _) = broadcast::channel::<Written>(4096);
        let (status_tx, status_rx) = watch::channel(SourceStatus::Starting);
        let hooks = Hooks {
            written: Some(written.clone()),
            status: Some(status_tx),
        };
        let pipeline = tokio::spawn(augur_runtime::pipeline::run(
            cfg,
            offsets,
            registry.clone(),
            hooks,
            shutdown.clone(),
        ));
        let page_client = connect.connect_sql().await?;
        let state =
            augur_demo::app::AppState::new(page_client, model, written, status_rx, &registry);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = augur_runtime::pipeline::http::serve(
            listen,
            tls,
            augur_demo::app::router(state, registry),
            shutdown.clone(),
        )
        .await?;
        eprintln!(
            "augur demo: open {scheme}://{listen} — list a car and watch its suggested price arrive (Ctrl-C stops)"
        );
        if feed > 0.0 {
            spawn_feed(client, rows, feed, shutdown.clone());
        }
        let r = pipeline.await.unwrap_or_else(|e| {
            Err(Error::new(ErrorKind::Internal, "pipeline task failed").with_source(e))
        });
        server.abort();
        r
    }
}

/// Creates `car_data` (and the comparables' index) if needed and, when it is empty, inserts
/// the first [`SEED_ROWS`] of `rows` in one transaction.
async fn seed_table(client: &mut tokio_postgres::Client, rows: &[String]) -> Result<(), Error> {
    let setup = format!("{CAR_DATA_DDL}; {}", augur_demo::insight::COMPARABLES_INDEX);
    client
        .batch_execute(&setup)
        .await
        .map_err(|e| Error::new(ErrorKind::SourceSetup, "cannot create car_data").with_source(e))?;
    let empty: i64 = client
        .query_one("SELECT count(*) FROM car_data", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(1);
    if empty == 0 {
        let seeding = |e| Error::new(ErrorKind::SourceSetup, "cannot seed car_data").with_source(e);
        let tx = client.transaction().await.map_err(seeding)?;
        for line in rows.iter().take(SEED_ROWS) {
            insert(&tx, line).await.map_err(seeding)?;
        }
        tx.commit().await.map_err(seeding)?;
    }
    Ok(())
}

/// Inserts a listing from `rows` (after the first 12) every `feed` seconds until shutdown.
fn spawn_feed(client: tokio_postgres::Client, rows: Vec<String>, feed: f64, mut stop: Shutdown) {
    let every = Duration::from_secs_f64(feed.max(0.01));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        for line in rows.iter().cycle().skip(SEED_ROWS) {
            tokio::select! { _ = tick.tick() => {}, _ = stop.wait() => return }
            if let Err(e) = insert(&client, line).await {
                tracing::warn!(error = %e, "feed insert failed");
            }
        }
    });
}
