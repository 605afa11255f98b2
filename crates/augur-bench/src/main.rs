//! `augur-bench`: the shipped benchmarks. Run with `cargo run --release -p augur-bench -- <name>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod capture;
mod model;

/// The benchmarks augur ships; each prints its figures and ratios.
#[derive(Debug, Parser)]
#[command(name = "augur-bench")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Capture throughput and latency, side by side with pg_recvlogical; peak RSS.
    Capture(capture::Args),
    /// Model training time, batch and single-row prediction speed (vs xgboost when installable).
    Model(model::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.bench {
        Bench::Capture(args) => capture::run(args),
        Bench::Model(args) => model::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
