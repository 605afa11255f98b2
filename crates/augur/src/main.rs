//! The `augur` binary: parses the command line, sets up logging, then runs one subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// augur: PostgreSQL change capture, price prediction and write-back in one program.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax); `AUGUR_LOG` overrides it.
    #[arg(long, global = true, default_value = "info", env = "AUGUR_LOG")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The one-command tour: private PostgreSQL, the car_data table, live listings, capture.
    Demo(cmd::demo::DemoArgs),
    /// Capture → predict → write back, in one process (the embedded default).
    Run(cmd::run::RunArgs),
    /// Check what `augur run` needs (server settings, privileges, tables, model, broker).
    Doctor(cmd::run::RunArgs),
    /// Capture PostgreSQL changes as Debezium change events, to Kafka or stdout.
    Capture(cmd::capture::CaptureArgs),
    /// Kafka stage: read change records, predict, write enriched records (consumer group).
    Enrich(cmd::stages::EnrichArgs),
    /// Kafka stage: write change records into PostgreSQL with JDBC-sink semantics.
    Sink(cmd::stages::SinkArgs),
    /// Train a price model on a CSV file and save it as a new version in the model store.
    Train(cmd::model::TrainArgs),
    /// Predict prices for JSON lines read from stdin (or a file), one result per line.
    Predict(cmd::model::PredictArgs),
    /// Manage the model store: list, show, delete, export, import.
    Models(cmd::model::ModelsArgs),
    /// Serve the price model over HTTP: BentoML-compatible POST /predict, Open Inference
    /// Protocol v2 and KServe v1, with micro-batching, metrics and hot model promotion.
    Serve(cmd::serve::ServeArgs),
    /// Kafka Connect-compatible worker: the Connect REST API on :8083 running capture,
    /// enrichment and JDBC sink connectors as in-process tasks, state durable in Kafka.
    Connect(cmd::connect::ConnectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Doctor(args) => cmd::doctor::run(args),
        Command::Capture(args) => cmd::capture::run(args),
        Command::Enrich(args) => cmd::stages::enrich(args),
        Command::Sink(args) => cmd::stages::sink(args),
        Command::Train(args) => cmd::model::train(args),
        Command::Predict(args) => cmd::model::predict(args),
        Command::Models(args) => cmd::model::models(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Connect(args) => cmd::connect::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so stdout stays free for data (JSON lines, predictions).
fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
