//! The randomized differential test (`augur_testkit::differential`): seeded workloads with
//! injected faults through `augur run`; the predicted table must equal the source row by row
//! with `augur predict`'s prices, embedded and over Kafka. `AUGUR_DIFF_SEEDS=N` runs more
//! seeds (the soak in docs/reliability.md); a failure prints its seed and a replay.

use augur_testkit::differential::{Harness, run_seeds};

/// The seeds to run: `AUGUR_DIFF_SEEDS` of them (default `default`) from `first`, or from
/// `AUGUR_DIFF_FIRST` to replay one.
fn seeds(first: u64, default: u64) -> std::ops::Range<u64> {
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse::<u64>().ok());
    let n = env("AUGUR_DIFF_SEEDS").unwrap_or(default);
    let first = env("AUGUR_DIFF_FIRST").unwrap_or(first);
    first..first + n
}

fn harness(tag: &str, faults: bool, kafka: bool) -> Harness {
    Harness {
        augur: env!("CARGO_BIN_EXE_augur").into(),
        scratch: crate::support::scratch_dir(tag),
        faults,
        kafka,
        extra: Vec::new(),
    }
}

/// Without faults: ordering, snapshots, TOAST, truncates, added columns, impossible values.
#[test]
fn embedded_workloads_converge_exactly() {
    if let Err(f) = run_seeds(&harness("diff-plain", false, false), seeds(1, 50)) {
        panic!("{f}");
    }
}

/// With faults between the workload's chunks.
#[test]
fn embedded_workloads_with_faults_converge_exactly() {
    if let Err(f) = run_seeds(&harness("diff-faults", true, false), seeds(10_001, 160)) {
        panic!("{f}");
    }
}

/// Over Kafka (`augur run` with `kafka.bootstrap`: capture → topic → enrichment → topic →
/// JDBC sink), with faults, some of them a paused broker. Two halves, so they run side by side.
#[test]
fn kafka_workloads_with_faults_converge_exactly() {
    if let Err(f) = run_seeds(&harness("diff-kafka", true, true), seeds(30_001, 20)) {
        panic!("{f}");
    }
}

/// The second half of the Kafka seeds.
#[test]
fn kafka_workloads_with_faults_converge_exactly_more() {
    if let Err(f) = run_seeds(&harness("diff-kafka2", true, true), seeds(30_021, 20)) {
        panic!("{f}");
    }
}
