//! `augur-bench all`: every side-by-side comparison in one run, one after another on the same
//! machine, written as one dated round (commit, load averages, every benchmark's full output
//! with all its rounds) at the top of `docs/benchmarks.md`, or printed only.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::common::{build_augur, load_average, repo_root};

/// Arguments of `augur-bench all`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write the round into `docs/benchmarks.md` (at the top, under its introduction);
    /// without it the round is only printed.
    #[arg(long)]
    write: bool,
    /// Only these benchmarks (comma-separated names from the list `all` runs).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// What `all` runs, in order: a name and the subcommand's arguments.
const BENCHES: &[(&str, &[&str])] = &[
    ("serve", &["serve", "--seconds", "3", "--rounds", "3"]),
    ("capture", &["capture"]),
    ("capture-no-schemas", &["capture", "--no-schemas"]),
    ("catchup", &["catchup"]),
    ("pipeline", &["pipeline"]),
    ("kafka", &["kafka"]),
    ("model", &["model", "--no-python"]),
];

/// Runs every benchmark (or `--only` some), then prints or writes the round.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    for name in &args.only {
        if !BENCHES.iter().any(|(n, _)| n == name) {
            let known: Vec<&str> = BENCHES.iter().map(|(n, _)| *n).collect();
            bail!("unknown benchmark {name:?}; known: {}", known.join(", "));
        }
    }
    // One build for all of them (each child finds it fresh, or uses AUGUR_BENCH_BIN).
    build_augur()?;
    let root = repo_root();
    let commit = commit(&root);
    let started = load_average();
    let mut sections = Vec::new();
    for (name, argv) in BENCHES {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == name) {
            continue;
        }
        println!("\n===== augur-bench {} =====", argv.join(" "));
        let t = Instant::now();
        let output = run_one(argv)?;
        sections.push(format!(
            "### `augur-bench {}` ({:.0} s)\n\n{}\n",
            argv.join(" "),
            t.elapsed().as_secs_f64(),
            output.trim_end()
        ));
    }
    // A build named by AUGUR_BENCH_BIN is not necessarily the checked-out commit.
    let build = match std::env::var("AUGUR_BENCH_BIN") {
        Ok(bin) => format!("the build {bin} (the tree is at {commit})"),
        Err(_) => commit,
    };
    let round = format!(
        "## Round {} (all): every benchmark at {build}\n\n\
         `augur-bench all{}`: each benchmark in turn on this machine ({} cores), its full output \
         with every round. Load average at the start {started}, at the end {}.\n\n{}",
        today(),
        if args.only.is_empty() {
            String::new()
        } else {
            format!(" --only {}", args.only.join(","))
        },
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average(),
        sections.join("\n")
    );
    if args.write {
        let path = root.join("docs/benchmarks.md");
        insert_round(&path, &round)?;
        println!("\nwrote the round into {}", path.display());
    } else {
        println!("\n{round}");
    }
    Ok(())
}

/// Runs `augur-bench <argv>` (this same binary), echoing and returning its standard output.
fn run_one(argv: &[&str]) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("the augur-bench binary")?;
    let mut child = Command::new(exe)
        .args(argv)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting augur-bench {}", argv.join(" ")))?;
    let mut text = String::new();
    let out = child.stdout.take().context("stdout")?;
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        text.push_str(&line);
        text.push('\n');
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("augur-bench {} failed ({status})", argv.join(" "));
    }
    Ok(text)
}

/// The checked-out commit, marked `-dirty` when the tree has changes ("unknown" without git).
fn commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) if git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty()) => {
            format!("{c}-dirty")
        }
        Some(c) => c,
        None => "unknown".into(),
    }
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    civil_date(days)
}

/// The civil date `days` after 1970-01-01 (H. Hinnant's algorithm), `YYYY-MM-DD`.
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Puts `round` before the first `## ` heading of the file at `path`.
fn insert_round(path: &Path, round: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let at = text.find("\n## ").map_or(text.len(), |i| i + 1);
    let mut out = String::with_capacity(text.len() + round.len() + 2);
    out.push_str(&text[..at]);
    out.push_str(round.trim_end());
    out.push_str("\n\n");
    out.push_str(&text[at..]);
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_goes_before_the_first_round_and_keeps_everything_else() {
        let dir = std::env::temp_dir().join(format!("augur-bench-all-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("benchmarks.md");
        std::fs::write(
            &path,
            "# Benchmarks\n\nIntro.\n\n## Round old\n\nold text\n",
        )
        .unwrap();
        insert_round(&path, "## Round new\n\nnew text\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "# Benchmarks\n\nIntro.\n\n## Round new\n\nnew text\n\n## Round old\n\nold text\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn days_become_civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(20_795), "2026-12-08");
        assert_eq!(civil_date(-1), "1969-12-31");
    }
}
