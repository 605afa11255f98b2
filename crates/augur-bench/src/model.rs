//! The model benchmark: training time, batch rows/s and single-row latency.

/// Arguments of `augur-bench model`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// Runs the model benchmark.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the model benchmark is being built (issue 3)")
}
