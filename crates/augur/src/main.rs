//! The `augur` binary: parses the command line, sets up logging, then runs one subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// augur: PostgreSQL change capture, price prediction and write-back in one program.
#[derive(Debug, Parser)]
#[command(name = "augur", version, about, long_about = None)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax: `info`, `debug`, `augur_runtime=debug,info`);
    /// the flag wins over `AUGUR_LOG`.
    #[arg(long, global = true, default_value = "info", env = "AUGUR_LOG")]
    log: String,

    /// Log format: `text` (coloured only on a terminal, never with `NO_COLOR`) or `json` (one
    /// object per line); the flag wins over `AUGUR_LOG_FORMAT`.
    #[arg(long, global = true, default_value = "text", env = "AUGUR_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: String,

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
    if let Err(e) = init_tracing(&cli.log, &cli.log_format) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
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

/// Logs go to stderr so stdout stays free for data (JSON lines, predictions): text with
/// colour only on a terminal without `NO_COLOR`, or JSON lines.
fn init_tracing(filter: &str, format: &str) -> Result<(), String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("--log (or AUGUR_LOG) {filter:?} is not a log filter: {e}"))?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::stderr().is_terminal() && !no_color;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if format == "json" {
        builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(ansi).init();
    }
    Ok(())
}

/// `docs/cli.md`'s table, made from the command definitions themselves.
#[cfg(test)]
fn cli_reference() -> String {
    use clap::CommandFactory;
    let cli = Cli::command();
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from augur's command definitions (`crates/augur/src/main.rs`, test\n\
         `docs_cli_md_matches_the_commands`); every flag with its environment variable and default.\n\
         Flags before the subcommand (`--log`, `--log-format`) apply to all of them.\n",
    );
    let mut section = |name: &str, cmd: &clap::Command| {
        out.push_str(&format!("\n## `augur {name}`\n\n"));
        if let Some(about) = cmd.get_about() {
            out.push_str(&format!("{about}\n\n"));
        }
        out.push_str("| flag | env | default | what |\n|---|---|---|---|\n");
        for a in cmd.get_arguments() {
            if a.is_hide_set() || matches!(a.get_id().as_str(), "help" | "version") {
                continue;
            }
            let flag = match (a.get_long(), a.get_short()) {
                (Some(l), Some(s)) => format!("`--{l}`, `-{s}`"),
                (Some(l), None) => format!("`--{l}`"),
                (None, Some(s)) => format!("`-{s}`"),
                (None, None) => format!("`<{}>`", a.get_id()),
            };
            let env = a
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default();
            let default: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default = if default.is_empty() {
                String::new()
            } else {
                format!("`{}`", default.join(","))
            };
            let help = a
                .get_help()
                .map(|h| h.to_string().replace('\n', " ").replace('|', "\\|"))
                .unwrap_or_default();
            out.push_str(&format!("| {flag} | {env} | {default} | {help} |\n"));
        }
    };
    section("(global)", &cli);
    for sub in cli.get_subcommands() {
        section(sub.get_name(), sub);
        for inner in sub.get_subcommands() {
            section(&format!("{} {}", sub.get_name(), inner.get_name()), inner);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// `docs/cli.md` is the generated reference; `AUGUR_BLESS=1` rewrites it.
    #[test]
    fn docs_cli_md_matches_the_commands() {
        let want = super::cli_reference();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli.md");
        if std::env::var_os("AUGUR_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/cli.md is out of date: run AUGUR_BLESS=1 cargo test -p augur --bin augur"
        );
    }
}
