//! `augur run`: the embedded pipeline (capture → predict → write back, one process) from an
//! `augur.toml`, overridden by `AUGUR_*` environment variables and flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use augur_core::offset::FileOffsetStore;
use augur_runtime::pipeline::config::{DEFAULT_TOML, RunConfig, apply_env};
use augur_runtime::props::Props;

use super::runtime;

/// Arguments of `augur run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The config file (TOML). Without it the documented defaults apply (see --print-config).
    #[arg(long, short = 'c', env = "AUGUR_CONFIG")]
    config: Option<PathBuf>,
    /// Set or override one key, `section.key=value` (repeatable; wins over the file, the
    /// environment and the other flags).
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The source database (`source.url`; also DATABASE_URL).
    #[arg(long, env = "AUGUR_SOURCE__URL", hide_env_values = true)]
    source_url: Option<String>,
    /// The model tag (`model.tag`).
    #[arg(long, env = "AUGUR_MODEL__TAG")]
    model: Option<String>,
    /// Where /metrics, /healthz and /readyz are served (`http.listen`).
    #[arg(long, env = "AUGUR_HTTP__LISTEN")]
    listen: Option<String>,
    /// Offsets file [default: $AUGUR_HOME/offsets/augur-run-<slot>.json].
    #[arg(long, env = "AUGUR_OFFSETS")]
    offsets: Option<PathBuf>,
    /// Print the default config file and exit.
    #[arg(long)]
    print_config: bool,
}

/// Builds the run config: the file, then `DATABASE_URL`, `AUGUR_SECTION__KEY` variables, the
/// named flags (each the shorthand of one key) and last `--set`.
pub(crate) fn load(args: &RunArgs) -> Result<(RunConfig, Vec<String>), ExitCode> {
    let mut props = match &args.config {
        Some(p) => match Props::load(p) {
            Ok(p) => p,
            Err(e) => return Err(runtime::report(&e)),
        },
        None => Props::new(),
    };
    if let Ok(url) = std::env::var("DATABASE_URL")
        && props.get("source.url").is_none()
    {
        props.set("source.url", url);
    }
    apply_env(&mut props, std::env::vars());
    for (flag, key) in [
        (&args.source_url, "source.url"),
        (&args.model, "model.tag"),
        (&args.listen, "http.listen"),
    ] {
        if let Some(v) = flag {
            props.set(key, v.clone());
        }
    }
    if let Err(e) = props.apply_overrides(&args.set) {
        return Err(runtime::report(&e));
    }
    match RunConfig::from_props(&props) {
        Ok(v) => Ok(v),
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {}", e.message);
            }
            Err(ExitCode::FAILURE)
        }
    }
}

/// Where `augur run` keeps its offsets: `--offsets`, the config's
/// `offset.storage.file.filename`, else `$AUGUR_HOME/offsets/augur-run-<slot>.json`.
pub(crate) fn offsets_path(args: &RunArgs, cfg: &RunConfig) -> PathBuf {
    args.offsets
        .clone()
        .or_else(|| cfg.capture.offsets_file.clone())
        .unwrap_or_else(|| {
            augur_runtime::capture::default_offsets_file(&format!(
                "augur-run-{}",
                cfg.capture.source.slot_name
            ))
        })
}

/// Runs `augur run`.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.print_config {
        print!("{DEFAULT_TOML}");
        return Ok(ExitCode::SUCCESS);
    }
    let (cfg, warnings) = match load(&args) {
        Ok(v) => v,
        Err(code) => return Ok(code),
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    let offsets_path = offsets_path(&args, &cfg);
    let rt = runtime::tokio()?;
    let result = rt.block_on(runtime::on_workers(async move {
        let shutdown = runtime::signals();
        let offsets = Arc::new(FileOffsetStore::new(offsets_path));
        if let Some(bootstrap) = cfg.kafka.clone() {
            return augur_runtime::pipeline::kafka::run(cfg, bootstrap, offsets, shutdown).await;
        }
        let registry = augur_metrics::Registry::new();
        augur_metrics::process::register(&registry);
        augur_runtime::pipeline::run(cfg, offsets, registry, Default::default(), shutdown).await
    }));
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => runtime::report(&e),
    })
}
