//! Bad input at start: each case gives a clear one-line error with the fix and a non-zero exit,
//! leaves nothing half-made that breaks the next run, and loses nothing once fixed.

use std::time::Duration;

use augur_testkit::{ClusterOptions, TestDb, TestPg};

use crate::support::{self, Capture};

const T: Duration = Duration::from_secs(60);

fn props(db: &TestDb, dir: &std::path::Path) -> Vec<(String, String)> {
    let mut p = support::connector_props(db, "srv");
    p.push((
        "offset.storage.file.filename".into(),
        dir.join("o.json").display().to_string(),
    ));
    p.push(("table.include.list".into(), "public.t".into()));
    p
}

fn with(mut p: Vec<(String, String)>, k: &str, v: &str) -> Vec<(String, String)> {
    p.retain(|(key, _)| key != k);
    p.push((k.into(), v.into()));
    p
}

/// Runs capture, expects a failure whose stderr contains each of `needles`.
fn fails(p: &[(String, String)], extra: &[&str], needles: &[&str]) -> String {
    let cap = Capture::start(p, extra);
    let (status, stderr) = cap.wait_exit(T);
    assert!(!status.success(), "expected a failure; stderr:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn slots(pg: &TestPg, db: &TestDb) -> String {
    pg.sql(
        db,
        "SELECT string_agg(slot_name, ',') FROM pg_replication_slots",
    )
    .trim()
    .to_string()
}

/// After a fix, the next run captures everything, including rows written while it was broken.
fn recovers(p: &[(String, String)], extra: &[&str], rows: usize) {
    let mut cap = Capture::start(p, extra);
    let lines = cap.wait_lines(rows, T);
    let ids: Vec<i64> = lines
        .iter()
        .map(|l| l["value"]["payload"]["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, (1..=rows as i64).collect::<Vec<_>>());
    assert!(cap.stop().0.success());
}

#[test]
fn wal_level_replica_is_refused_with_the_fix() {
    let pg = TestPg::start_with(ClusterOptions {
        wal_level: "replica".into(),
        ..Default::default()
    });
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)",
    );
    let dir = support::scratch_dir("walrep");
    fails(
        &props(&db, &dir),
        &["--stdout"],
        &[
            "wal_level is 'replica'",
            "fix: run ALTER SYSTEM SET wal_level = logical",
        ],
    );
    pg.sql(&db, "INSERT INTO t VALUES (2)");
    let mut pg = pg;
    pg.sql(&db, "ALTER SYSTEM SET wal_level = logical");
    pg.cluster.restart().unwrap();
    recovers(&props(&db, &dir), &["--stdout"], 2);
}

#[test]
fn wrong_password_missing_table_bad_mode_and_missing_privilege() {
    let pg = TestPg::start();
    let db = pg.database();
    let dir = support::scratch_dir("bad");
    let good = props(&db, &dir);

    fails(
        &with(good.clone(), "database.password", "wrong"),
        &["--stdout"],
        &[
            "password authentication failed",
            "fix: check database.user and database.password",
        ],
    );
    assert!(
        !fails(
            &with(good.clone(), "database.password", "wrong"),
            &["--stdout"],
            &[]
        )
        .contains("wrong"),
        "the password is never printed"
    );

    fails(
        &good,
        &["--stdout"],
        &[
            "table.include.list entry 'public.t' matches no table",
            "fix:",
        ],
    );
    assert_eq!(slots(&pg, &db), "", "no slot was created");
    fails(
        &with(good.clone(), "snapshot.mode", "sometimes"),
        &["--stdout"],
        &["The 'snapshot.mode' value is invalid: Value must be one of"],
    );

    pg.sql(&db, "CREATE ROLE weak LOGIN PASSWORD 'weak'");
    let mut weak = with(good.clone(), "database.user", "weak");
    weak = with(weak, "database.password", "weak");
    pg.sql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)",
    );
    fails(
        &weak,
        &["--stdout"],
        &[
            "lacks the REPLICATION privilege",
            "fix: run ALTER ROLE \"weak\" REPLICATION",
        ],
    );
    assert_eq!(slots(&pg, &db), "");

    pg.sql(&db, "INSERT INTO t VALUES (2)");
    recovers(&good, &["--stdout"], 2);
}

#[test]
fn a_slot_in_use_and_a_broker_that_is_down() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)",
    );
    let dir = support::scratch_dir("slot");
    let p = props(&db, &dir);

    // A broker that is down: refused before the database is touched.
    let dead = augur_pgcluster::free_port().unwrap();
    fails(
        &p,
        &["--kafka", &format!("127.0.0.1:{dead}")],
        &["cannot reach a Kafka broker", "fix: start the broker"],
    );
    assert_eq!(slots(&pg, &db), "", "nothing was created in the database");

    let mut first = Capture::start(&p, &["--stdout"]);
    first.wait_lines(1, T);
    first.wait_stderr("streaming changes", T);
    let other_dir = support::scratch_dir("slot2");
    let second = with(
        with(props(&db, &other_dir), "slot.max.retries", "1"),
        "slot.retry.delay.ms",
        "100",
    );
    fails(
        &second,
        &["--stdout"],
        &[
            "replication slot \"debezium\" is active for PID",
            "fix: stop the other connector",
        ],
    );
    pg.sql(&db, "INSERT INTO t VALUES (2)");
    let lines = first.wait_lines(2, T);
    assert_eq!(
        lines[1]["value"]["payload"]["after"]["id"], 2,
        "the first connector was not disturbed"
    );
    assert!(first.stop().0.success());
}
