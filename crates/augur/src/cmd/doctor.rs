//! `augur doctor`: prints each check `augur run` depends on, with a fix for each problem.
//! Exits non-zero when something would stop the pipeline.

use std::process::ExitCode;

use augur_runtime::pipeline::doctor::{self, Outcome};

use super::run::{RunArgs, load, offsets_path};
use super::runtime;

/// Runs `augur doctor` (same config sources as `augur run`).
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let (cfg, warnings) = match load(&args) {
        Ok(v) => v,
        Err(code) => return Ok(code),
    };
    for w in warnings {
        println!("! config: {w}");
    }
    let rt = runtime::tokio()?;
    let mut checks = rt.block_on(doctor::run(&cfg));
    checks.extend(doctor::local(&cfg, &offsets_path(&args, &cfg)));
    let mut failed = 0;
    for c in &checks {
        let mark = match c.outcome {
            Outcome::Pass => "✓",
            Outcome::Warn => "!",
            Outcome::Fail => {
                failed += 1;
                "✗"
            }
        };
        println!("{mark} {:<24} {}", c.name, c.detail);
        if !c.fix.is_empty() {
            println!("  {:<24} fix: {}", "", c.fix);
        }
    }
    if failed > 0 {
        println!("\n{failed} problem(s) would stop augur run.");
        Ok(ExitCode::FAILURE)
    } else {
        println!("\nall checks passed.");
        Ok(ExitCode::SUCCESS)
    }
}
