//! What every benchmark shares: the repository root, the release build of `augur`, the load
//! average printed beside each figure, and percentiles.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The repository root (the workspace folder).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds `target/release/augur` (quietly; a no-op when fresh) and returns its path, or
/// returns `$AUGUR_BENCH_BIN` when set.
pub(crate) fn build_augur() -> anyhow::Result<PathBuf> {
    // Another build (an older commit's, for a side-by-side round) instead of this tree's.
    if let Some(bin) = std::env::var_os("AUGUR_BENCH_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "augur"])
        .current_dir(&root)
        .status()
        .context("building augur")?;
    if !status.success() {
        bail!("cargo build --release --bin augur failed");
    }
    Ok(root.join("target/release/augur"))
}

/// The 1-minute load average, as text ("?" when unknown).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The `p` quantile (0..=1) of sorted values (nearest rank); NaN when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The peak resident set size of process `pid`, in MB.
pub(crate) fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A child process that is stopped (SIGTERM, then SIGKILL after 20 s) when dropped.
pub(crate) struct Run(pub(crate) Child);

impl Drop for Run {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
    }
}
