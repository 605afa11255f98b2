//! `augur train`, `augur predict` and `augur models`: the model store and price model commands.

use std::process::ExitCode;

/// Arguments of `augur train`.
#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {}

/// Arguments of `augur predict`.
#[derive(Debug, clap::Args)]
pub(crate) struct PredictArgs {}

/// Arguments of `augur models`.
#[derive(Debug, clap::Args)]
pub(crate) struct ModelsArgs {}

/// Runs `augur train`.
pub(crate) fn train(_args: TrainArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("augur train is being built (issue 3)")
}

/// Runs `augur predict`.
pub(crate) fn predict(_args: PredictArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("augur predict is being built (issue 3)")
}

/// Runs `augur models`.
pub(crate) fn models(_args: ModelsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("augur models is being built (issue 3)")
}
