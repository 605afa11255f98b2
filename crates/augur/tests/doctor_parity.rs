//! `augur doctor` reports first what would stop `augur run`: for every start failure this
//! suite can provoke — credentials, server settings, privileges, tables and columns, the model,
//! the output, the broker, the metrics address, the offsets file, option combinations — doctor
//! fails naming it, and `augur run` on the same setup fails too (it is no false alarm).

use std::process::{Command, Stdio};
use std::time::Duration;

use augur_testkit::{ClusterOptions, TestDb, TestPg};

use crate::support::pipeline::CAR_DATA;
use crate::support::{scratch_dir, wait_timeout};

/// One way to break `augur run`.
struct Case {
    name: &'static str,
    /// SQL run in the fresh database before anything (after `car_data` unless `no_table`).
    sql: &'static str,
    no_table: bool,
    /// Extra arguments; `{url}` is the database URL, `{busy}` an address something listens on,
    /// `{free}` a port nothing listens on, `{scratch}` a scratch folder.
    args: &'static [&'static str],
    /// What doctor prints (stdout, or stderr for a config error).
    doctor_says: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "wrong password",
        sql: "",
        no_table: false,
        args: &["--source-url", "{url_wrong_password}"],
        doctor_says: &["✗ source database", "password authentication failed"],
    },
    Case {
        name: "no table",
        sql: "",
        no_table: true,
        args: &[],
        doctor_says: &["✗ tables", "no table matches source.tables"],
    },
    Case {
        name: "no REPLICATION privilege",
        sql: "CREATE ROLE plain LOGIN PASSWORD 'plain'; GRANT SELECT ON car_data TO plain; \
              GRANT CREATE ON DATABASE {db} TO plain; GRANT CREATE ON SCHEMA public TO plain",
        no_table: false,
        args: &["--source-url", "{url_plain}"],
        doctor_says: &["✗ REPLICATION privilege"],
    },
    Case {
        name: "unknown model",
        sql: "",
        no_table: false,
        args: &["--model", "no-such-model:3"],
        doctor_says: &["✗ model"],
    },
    Case {
        name: "write-back column missing",
        sql: "ALTER TABLE car_data DROP COLUMN suggestedprice",
        no_table: false,
        args: &["--set", "output.mode=column"],
        doctor_says: &["no column \"suggestedprice\""],
    },
    Case {
        name: "output database unreachable",
        sql: "",
        no_table: false,
        args: &[
            "--set",
            "output.url=postgres://postgres:postgres@127.0.0.1:{free}/nowhere",
        ],
        doctor_says: &["✗ output database"],
    },
    Case {
        name: "metrics address taken",
        sql: "",
        no_table: false,
        args: &["--listen", "{busy}"],
        doctor_says: &["✗ http.listen", "cannot listen on"],
    },
    Case {
        name: "offsets folder not writable",
        sql: "",
        no_table: false,
        args: &["--offsets", "/proc/augur/offsets.json"],
        doctor_says: &["✗ offsets file", "cannot write in /proc/augur"],
    },
    Case {
        name: "offsets file corrupt",
        sql: "",
        no_table: false,
        args: &["--offsets", "{scratch}/corrupt.json"],
        doctor_says: &["✗ offsets file"],
    },
    Case {
        name: "column write-back over Kafka",
        sql: "",
        no_table: false,
        args: &[
            "--set",
            "output.mode=column",
            "--set",
            "kafka.bootstrap=127.0.0.1:{free}",
        ],
        doctor_says: &["output.mode = \"column\""],
    },
    Case {
        name: "typo in a key",
        sql: "",
        no_table: false,
        args: &["--set", "pipeline.batchsize=10"],
        doctor_says: &["did you mean \"pipeline.batch_size\""],
    },
];

/// `augur <cmd> <args>` with the case's placeholders filled in.
fn command(cmd: &str, args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_augur"));
    c.arg(cmd).args(args).stdin(Stdio::null());
    c
}

fn fill(case: &Case, db: &TestDb, busy: &str, free: u16, scratch: &std::path::Path) -> Vec<String> {
    let plain = db.url.replacen("postgres:postgres@", "plain:plain@", 1);
    let wrong = db.url.replacen("postgres:postgres@", "postgres:wrong@", 1);
    let named = |a: &str| case.args.contains(&a);
    let mut args: Vec<String> = Vec::new();
    if !named("--source-url") {
        args.extend(["--source-url".into(), db.url.clone()]);
    }
    if !named("--listen") {
        let port = augur_pgcluster::free_port().unwrap();
        args.extend(["--listen".into(), format!("127.0.0.1:{port}")]);
    }
    if !named("--offsets") {
        args.extend([
            "--offsets".into(),
            scratch.join("offsets.json").display().to_string(),
        ]);
    }
    for a in case.args {
        args.push(
            a.replace("{url_wrong_password}", &wrong)
                .replace("{url_plain}", &plain)
                .replace("{busy}", busy)
                .replace("{free}", &free.to_string())
                .replace("{scratch}", &scratch.display().to_string()),
        );
    }
    args
}

#[test]
fn doctor_reports_each_start_failure_that_stops_run() {
    let pg = TestPg::start();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let free = augur_pgcluster::free_port().unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let db = pg.database();
        if !case.no_table {
            pg.sql(&db, CAR_DATA);
        }
        if !case.sql.is_empty() {
            pg.sql(&db, &case.sql.replace("{db}", &format!("\"{}\"", db.name)));
        }
        let scratch = scratch_dir("parity");
        std::fs::write(scratch.join("corrupt.json"), "{not offsets").unwrap();
        let args = fill(case, &db, &busy, free, &scratch);
        if let Err(e) = check_case(case, &args) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Doctor fails saying what the case expects; run then fails too, within a minute.
fn check_case(case: &Case, args: &[String]) -> Result<(), String> {
    let out = command("doctor", args).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        return Err(format!("doctor passed:\n{said}"));
    }
    if let Some(missing) = case.doctor_says.iter().find(|s| !said.contains(*s)) {
        return Err(format!("doctor did not say {missing:?}:\n{said}"));
    }
    let log = scratch_dir("parity-run").join("stderr.log");
    let mut run = command("run", args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut run, Duration::from_secs(60));
    let _ = run.kill();
    let _ = run.wait();
    let run_log = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(s) if !s.success() => Ok(()),
        Some(_) => Err(format!("run exited 0 where doctor failed:\n{run_log}")),
        None => Err(format!("run kept running where doctor failed:\n{run_log}")),
    }
}

/// A server without `wal_level=logical`: doctor names the setting, run refuses to start.
#[test]
fn doctor_and_run_both_refuse_a_server_without_logical_decoding() {
    let pg = TestPg::start_with(ClusterOptions {
        wal_level: "replica".into(),
        ..Default::default()
    });
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let case = Case {
        name: "wal_level",
        sql: "",
        no_table: false,
        args: &[],
        doctor_says: &["✗ wal_level", "ALTER SYSTEM SET wal_level = logical"],
    };
    let scratch = scratch_dir("parity-wal");
    let args = fill(&case, &db, "", 1, &scratch);
    check_case(&case, &args).unwrap();
}
