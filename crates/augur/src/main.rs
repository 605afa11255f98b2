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
/// colour only on a terminal without `NO_COLOR`, or JSON lines. The filter can be changed while
/// running (`augur connect`'s `/admin/loggers`).
fn init_tracing(filter: &str, format: &str) -> Result<(), String> {
    use std::io::IsTerminal;
    let parsed = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("--log (or AUGUR_LOG) {filter:?} is not a log filter: {e}"))?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::stderr().is_terminal() && !no_color;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(parsed)
        .with_writer(move || EscapedStderr { ansi })
        .with_target(false);
    let apply: augur_connect::loggers::ApplyFilter = if format == "json" {
        let b = builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_filter_reloading();
        let handle = b.reload_handle();
        b.init();
        std::sync::Arc::new(move |f: &str| reload(&handle, f))
    } else {
        let b = builder.with_ansi(ansi).with_filter_reloading();
        let handle = b.reload_handle();
        b.init();
        std::sync::Arc::new(move |f: &str| reload(&handle, f))
    };
    augur_connect::loggers::install(filter, apply);
    Ok(())
}

/// Replaces the live filter with `filter`.
fn reload<S>(
    handle: &tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, S>,
    filter: &str,
) -> Result<(), String> {
    let f = tracing_subscriber::EnvFilter::try_new(filter).map_err(|e| e.to_string())?;
    handle.reload(f).map_err(|e| e.to_string())
}

/// Stderr for one log line at a time, with the control characters inside the line escaped, so
/// a logged value holding a newline (a connector's name, a column value in an error) cannot
/// forge a line of its own. The line's final newline stays, and on a terminal colour codes.
struct EscapedStderr {
    ansi: bool,
}

impl std::io::Write for EscapedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().write_all(&escape_line(buf, self.ansi))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `line` with its control characters escaped (`\n`, `\r`, `\x1b`, …), but a final newline,
/// tabs and (when `ansi`) colour escapes kept.
fn escape_line(line: &[u8], ansi: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 8);
    for (i, &b) in line.iter().enumerate() {
        match b {
            b'\n' if i + 1 == line.len() => out.push(b),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0x1b if ansi => out.push(b),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// The config key each flag is the shorthand of: `augur run` keys of `augur.toml`
/// (`--print-config`; `doctor` takes the same), Debezium connector properties for `capture`,
/// Kafka Connect worker properties for `connect`.
#[cfg(test)]
const CONFIG_KEYS: &[(&str, &str, &str)] = &[
    ("run", "set", "any `section.key`"),
    ("run", "source_url", "`source.url`"),
    ("run", "model", "`model.tag`"),
    ("run", "listen", "`http.listen`"),
    (
        "run",
        "offsets",
        "`source.\"offset.storage.file.filename\"`",
    ),
    ("capture", "set", "any connector property"),
    ("capture", "kafka", "`bootstrap.servers`"),
    ("capture", "offsets", "`offset.storage.file.filename`"),
    ("sink", "set", "any connector property"),
    ("sink", "kafka", "`bootstrap.servers`"),
    ("connect", "kafka", "`bootstrap.servers`"),
    ("connect", "listen", "`listeners`"),
    ("connect", "group_id", "`group.id`"),
    ("connect", "config_topic", "`config.storage.topic`"),
    ("connect", "offset_topic", "`offset.storage.topic`"),
    ("connect", "status_topic", "`status.storage.topic`"),
    (
        "connect",
        "replication_factor",
        "`*.storage.replication.factor`",
    ),
    (
        "connect",
        "shutdown_timeout",
        "`task.shutdown.graceful.timeout.ms` (in seconds)",
    ),
    ("connect", "session_timeout_ms", "`session.timeout.ms`"),
    (
        "connect",
        "heartbeat_interval_ms",
        "`heartbeat.interval.ms`",
    ),
    ("connect", "rebalance_timeout_ms", "`rebalance.timeout.ms`"),
    (
        "connect",
        "scheduled_rebalance_max_delay_ms",
        "`scheduled.rebalance.max.delay.ms`",
    ),
];

/// Arguments that are no setting and so have no environment variable: actions that print and
/// exit, and `--set` (its environment form is the key's own variable).
#[cfg(test)]
fn is_action_or_override(a: &clap::Arg) -> bool {
    matches!(
        a.get_id().as_str(),
        "print_config" | "print_spec" | "set" | "kafka_set" | "help" | "version"
    )
}

/// `docs/cli.md`'s table, made from the command definitions themselves.
#[cfg(test)]
fn cli_reference() -> String {
    use clap::CommandFactory;
    let cli = Cli::command();
    let mut out = String::from(
        "# Command-line reference\n\n\
         Generated from augur's command definitions (`crates/augur/src/main.rs`, test\n\
         `docs_cli_md_matches_the_commands`): every flag with its environment variable, the config\n\
         key it stands for, and its default. Flags before the subcommand (`--log`, `--log-format`)\n\
         apply to all of them.\n\n\
         One name per concept: `--listen host:port` wherever augur listens, `--model` for a model\n\
         tag, `--model-file`, `--store` (`AUGUR_MODEL_STORE`), `--kafka` (`AUGUR_KAFKA`) for bootstrap\n\
         servers, `--data` (`AUGUR_DATA`) for the Ford CSV, `--batch-size`, `--group-id`, `--offsets`\n\
         (`AUGUR_OFFSETS`). Older spellings still work but are hidden: `--host`/`--port` (serve,\n\
         connect), `--group` (enrich), `--batch` (predict). Other variables are\n\
         `AUGUR_<COMMAND>_<FLAG>`; for `augur run` and `doctor` they are the config key's own\n\
         variable (`source.url` → `AUGUR_SOURCE__URL`, any key of `--print-config` likewise).\n\
         Precedence: flag, then environment variable, then config file, then default — except\n\
         that `augur run --set` wins over all of them.\n",
    );
    let mut section = |name: &str, cmd: &clap::Command| {
        out.push_str(&format!("\n## `augur {name}`\n\n"));
        if let Some(about) = cmd.get_about() {
            out.push_str(&format!("{about}\n\n"));
        }
        out.push_str("| flag | env | config key | default | what |\n|---|---|---|---|---|\n");
        let top = name.split(' ').next().unwrap_or(name);
        for a in cmd.get_arguments() {
            if a.is_hide_set() || matches!(a.get_id().as_str(), "help" | "version") {
                continue;
            }
            out.push_str(&arg_row(top, a));
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

/// One table row: flag, env, config key, default, help.
#[cfg(test)]
fn arg_row(command: &str, a: &clap::Arg) -> String {
    let flag = match (a.get_long(), a.get_short()) {
        (Some(l), Some(s)) => format!("`--{l}`, `-{s}`"),
        (Some(l), None) => format!("`--{l}`"),
        (None, Some(s)) => format!("`-{s}`"),
        (None, None) => format!("`<{}>`", a.get_id()),
    };
    let env = match a.get_env() {
        Some(e) => format!("`{}`", e.to_string_lossy()),
        None if a.get_id() == "set" && matches!(command, "run" | "doctor") => {
            "`AUGUR_<SECTION>__<KEY>`".to_string()
        }
        None => "—".to_string(),
    };
    let command = if command == "doctor" { "run" } else { command };
    let key = CONFIG_KEYS
        .iter()
        .find(|(c, id, _)| *c == command && *id == a.get_id().as_str())
        .map(|(_, _, k)| k.to_string())
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
    format!("| {flag} | {env} | {key} | {default} | {help} |\n")
}

#[cfg(test)]
mod tests {
    /// Every setting a flag takes can also come from the environment; positional arguments,
    /// actions and `--set` are the only exceptions.
    #[test]
    fn every_flag_has_an_environment_variable() {
        use clap::CommandFactory;
        let mut missing = Vec::new();
        let mut visit = |path: String, cmd: &clap::Command| {
            for a in cmd.get_arguments() {
                if a.is_positional() || super::is_action_or_override(a) || a.is_hide_set() {
                    continue;
                }
                if a.get_env().is_none() {
                    missing.push(format!("{path} --{}", a.get_long().unwrap_or_default()));
                }
            }
        };
        let cli = super::Cli::command();
        visit("augur".into(), &cli);
        for sub in cli.get_subcommands() {
            visit(format!("augur {}", sub.get_name()), sub);
            for inner in sub.get_subcommands() {
                visit(
                    format!("augur {} {}", sub.get_name(), inner.get_name()),
                    inner,
                );
            }
        }
        assert!(missing.is_empty(), "flags without an env var: {missing:?}");
    }

    /// The config keys in the table are keys `augur run --print-config` knows.
    #[test]
    fn run_flags_name_keys_of_the_printed_config() {
        let printed = augur_runtime::pipeline::config::DEFAULT_TOML;
        for (cmd, _, key) in super::CONFIG_KEYS {
            if *cmd != "run" || key.starts_with("any") {
                continue;
            }
            let key = key.trim_matches('`');
            let (section, name) = key.split_once('.').unwrap();
            if name.starts_with('"') {
                continue; // a Debezium property passed through [source]
            }
            let in_section = printed
                .split(&format!("[{section}]"))
                .nth(1)
                .unwrap_or_else(|| panic!("no [{section}] in the printed config"));
            assert!(
                in_section.contains(&format!("\n{name} =")),
                "{key} is not in the printed config"
            );
        }
    }

    #[test]
    fn log_lines_cannot_be_forged_by_a_value() {
        let line = b"INFO connector created name=evil\nERROR forged\r\x1b[31m\n";
        assert_eq!(
            super::escape_line(line, false),
            b"INFO connector created name=evil\\nERROR forged\\r\\x1b[31m\n".to_vec()
        );
        assert_eq!(
            super::escape_line(b"a\x1b[1mb\tc\n", true),
            b"a\x1b[1mb\tc\n".to_vec()
        );
    }

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
