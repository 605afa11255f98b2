//! `augur-bench`: the shipped benchmarks. Run with `cargo run --release -p augur-bench -- <name>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod all;
mod capture;
mod catchup;
mod common;
mod connect;
mod incremental;
mod model;
mod pipeline;
mod remote;
mod serve;

/// The benchmarks augur ships; each prints its figures and ratios.
#[derive(Debug, Parser)]
#[command(name = "augur-bench")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Every comparison below in one run (serve, capture with and without schemas, catchup,
    /// pipeline, kafka, model), written as one dated round with the commit and load averages
    /// (`--write` puts it at the top of docs/benchmarks.md).
    All(all::Args),
    /// Capture throughput and latency, side by side with pg_recvlogical; peak RSS.
    Capture(capture::Args),
    /// `augur run` catching up on one big transaction, side by side with `augur capture` alone
    /// (alternating rounds; the ratio is issue 16's run ≥ 0.8 × capture).
    Catchup(catchup::Args),
    /// The embedded pipeline (augur run): insert → prediction latency, sustained rows/s, RSS.
    Pipeline(pipeline::Args),
    /// The Kafka path: the same figures through capture → Kafka → enrich → Kafka → sink, and
    /// the sink's upserts against COPY.
    Kafka(pipeline::Args),
    /// The Kafka path as a cluster of `augur connect --distributed` workers (`--workers 1,2,3`):
    /// latency, rows/s, RSS of all workers, and the failover time after a worker is killed.
    Connect(connect::Args),
    /// An incremental snapshot of a big table (`--rows`, default 1,000,000) through `augur run`
    /// while writes stream in; `--debezium` runs Debezium's on the same table for comparison.
    Incremental(incremental::Args),
    /// Model training time, batch and single-row prediction speed (vs xgboost when installable).
    Model(model::Args),
    /// The enrichment stage predicting through a remote model server (`augur enrich
    /// --predict-url` → `augur serve`), BentoML JSON and OIP v2, optionally side by side with
    /// another build (`--baseline`).
    Remote(remote::Args),
    /// Model server requests/s and p50/p99 at several concurrencies, side by side with a bare
    /// HTTP server (oha); cold start time and peak RSS.
    Serve(serve::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.bench {
        Bench::All(args) => all::run(args),
        Bench::Capture(args) => capture::run(args),
        Bench::Catchup(args) => catchup::run(args),
        Bench::Pipeline(args) => pipeline::run_embedded(args),
        Bench::Kafka(args) => pipeline::run_kafka(args),
        Bench::Connect(args) => connect::run(args),
        Bench::Incremental(args) => incremental::run(args),
        Bench::Model(args) => model::run(args),
        Bench::Remote(args) => remote::run(args),
        Bench::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
