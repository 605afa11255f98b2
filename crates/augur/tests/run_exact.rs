//! `augur run` keeps the predicted table exactly right: one regression test per finding of the
//! outside test that broke it (ordering within a batch, interrupted snapshots, TOAST, source
//! shutdown and restarts, refused rows, dropped tables, impossible listings). Each compares the
//! whole table with the source and the prices with `augur predict`.

use std::path::Path;
use std::time::{Duration, Instant};

use augur_testkit::differential::{TABLE, compare, run_args, wait_confirmed};
use augur_testkit::{TestDb, TestPg};

use crate::support::pipeline::Proc;
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(60);

fn augur_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_augur"))
}

fn start(db: &TestDb, dir: &Path, extra: &[&str]) -> Proc {
    let mut args = run_args(db, dir, "1024");
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::start("run-exact", &refs)
}

fn wait_log(p: &Proc, text: &str, n: usize) {
    let deadline = Instant::now() + T;
    while p.log().matches(text).count() < n {
        assert!(
            Instant::now() < deadline,
            "no {text:?} (×{n}) in:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the slot confirmed everything, then the tables must be equal.
fn assert_exact(pg: &TestPg, db: &TestDb, p: &Proc) {
    if let Err(e) = wait_confirmed(pg, db, T) {
        panic!("{e}\n{}", p.log());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match compare(augur_bin(), pg, db) {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{e}\n{}", p.log()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn listing(id: i64, model: &str, mileage: i64) -> String {
    format!(
        "INSERT INTO car_data (id, model, year, price, transmission, mileage, fueltype, tax, mpg, enginesize, notes) \
         VALUES ({id}, '{model}', 2017, 12000, 'Manual', {mileage}, 'Petrol', 150, 57.7, 1.0, 'n')"
    )
}

fn setup(rows: usize) -> (TestPg, TestDb, std::path::PathBuf) {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, TABLE);
    let values: Vec<String> = (1..=rows as i64)
        .map(|id| listing(id, " Fiesta", 1000 * id))
        .collect();
    for chunk in values.chunks(500) {
        pg.sql(&db, &chunk.join(";"));
    }
    (pg, db, scratch_dir("run-exact"))
}

/// Finding 1: a delete and an upsert of one key in one batch travel in different shapes; they
/// must still apply in order.
#[test]
fn deletes_and_upserts_of_one_key_in_one_batch_keep_their_order() {
    let (pg, db, dir) = setup(5);
    let p = start(&db, &dir, &[]);
    assert_exact(&pg, &db, &p);
    assert!(p.stop().success());
    // While augur is stopped, so the changes arrive as one batch.
    pg.sql(&db, "DELETE FROM car_data WHERE id = 2; UPDATE car_data SET mileage = 7 WHERE id = 3; DELETE FROM car_data WHERE id = 3;");
    pg.sql(
        &db,
        &format!(
            "BEGIN; {}; DELETE FROM car_data WHERE id = 501; {}; COMMIT;",
            listing(501, " Focus", 10),
            listing(501, " Kuga", 20)
        ),
    );
    let p = start(&db, &dir, &[]);
    assert_exact(&pg, &db, &p);
    assert_eq!(
        pg.sql(
            &db,
            "SELECT id, model FROM car_data_predicted WHERE id IN (2, 3, 501)"
        ),
        "501| Kuga\n"
    );
    assert!(p.stop().success());
}

/// Finding 2: a snapshot interrupted by SIGKILL is redone; rows the partial snapshot wrote and
/// that were deleted since must not stay in the predicted table.
#[test]
fn an_interrupted_snapshot_redone_leaves_no_deleted_rows_behind() {
    let (pg, db, dir) = setup(30_000);
    let mut p = start(&db, &dir, &["--set", "pipeline.batch_size=64"]);
    // Kill once the partial snapshot has written some rows.
    let deadline = Instant::now() + T;
    while augur_testkit::cars::count(&pg, &db, "SELECT count(*) FROM car_data_predicted") < 500 {
        assert!(Instant::now() < deadline, "{}", p.log());
        std::thread::sleep(Duration::from_millis(5));
    }
    p.kill();
    let written = augur_testkit::cars::count(&pg, &db, "SELECT count(*) FROM car_data_predicted");
    assert!(
        written < 30_000,
        "the snapshot finished before the kill ({written} rows)"
    );
    pg.sql(&db, "DELETE FROM car_data WHERE id IN (SELECT id FROM car_data_predicted ORDER BY id LIMIT 100)");
    let p = start(&db, &dir, &[]);
    assert_exact(&pg, &db, &p);
    assert!(p.stop().success());
}

/// Finding 3: an update that leaves a TOASTed column unchanged carries Debezium's placeholder;
/// the predicted table keeps the stored value and the price uses it.
#[test]
fn an_unchanged_toasted_value_keeps_the_stored_value_and_prices_with_it() {
    let (pg, db, dir) = setup(3);
    let long = format!(" Fiesta {}", "0123456789abcdef".repeat(640));
    pg.sql(
        &db,
        &format!("UPDATE car_data SET model = '{long}', notes = repeat('x', 20000) WHERE id = 1"),
    );
    let p = start(&db, &dir, &[]);
    assert_exact(&pg, &db, &p);
    // Streamed: the long values change once, then only the mileage (in one batch and across
    // batches), and a key change moves the row.
    pg.sql(
        &db,
        &format!("UPDATE car_data SET model = '{long}', notes = repeat('y', 20000) WHERE id = 2"),
    );
    pg.sql(&db, "UPDATE car_data SET mileage = 1234 WHERE id = 2; UPDATE car_data SET mileage = 4321 WHERE id = 1");
    pg.sql(&db, "BEGIN; UPDATE car_data SET mileage = 99 WHERE id = 1; UPDATE car_data SET id = 10 WHERE id = 1; UPDATE car_data SET mileage = 100 WHERE id = 10; COMMIT");
    assert_exact(&pg, &db, &p);
    let placeholders = pg.sql(
        &db,
        "SELECT count(*) FROM car_data_predicted WHERE model LIKE '%unavailable%' OR notes LIKE '%unavailable%' OR suggestedprice IS NULL",
    );
    assert_eq!(placeholders.trim(), "0");
    assert!(p.stop().success());
}

/// Finding 4: `pg_ctl stop -m fast` never waits on augur, even with augur's sink blocked by a
/// lock on its table (20 tries, each under 5 s); augur survives every restart.
#[test]
fn a_fast_stop_with_the_sink_blocked_finishes_within_5_s() {
    let (mut pg, db, dir) = setup(10);
    let p = start(&db, &dir, &[]);
    assert_exact(&pg, &db, &p);
    let mut id = 100;
    for round in 0..20 {
        // A session holds the predicted table; the sink waits on it.
        let mut locker = std::process::Command::new(pg.cluster.bin_dir().join("psql"))
            .args(["-X", "-q", "-d", &db.url, "-c"])
            .arg("BEGIN; LOCK TABLE car_data_predicted IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60);")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        for _ in 0..5 {
            id += 1;
            pg.sql(&db, &listing(id, " Focus", id));
        }
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        pg.cluster.stop().unwrap();
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "round {round}: stop took {took:?}\n{}",
            p.log()
        );
        let _ = locker.wait();
        pg.cluster.restart().unwrap();
    }
    assert_exact(&pg, &db, &p);
    assert!(p.log().contains("source connection lost"), "{}", p.log());
    assert!(
        p.stop().success(),
        "augur kept running through every restart"
    );
}

/// Finding 5: PostgreSQL restarts (fast and immediate) and terminated walsenders mid-stream
/// are survived without exiting, nothing lost.
#[test]
fn postgres_restarts_mid_stream_are_survived_without_exiting() {
    let (mut pg, db, dir) = setup(10);
    let mut p = start(&db, &dir, &[]);
    wait_log(&p, "streaming changes", 1);
    let mut id = 100;
    for round in 0..20 {
        for _ in 0..20 {
            id += 1;
            pg.sql(&db, &listing(id, " Kuga", id));
        }
        match round % 3 {
            0 => pg.cluster.restart().unwrap(),
            1 => {
                pg.cluster.crash();
                pg.cluster.restart().unwrap();
            }
            _ => {
                pg.sql(&db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'walsender'");
            }
        }
        assert!(
            p.0.try_wait().unwrap().is_none(),
            "round {round}: augur exited\n{}",
            p.log()
        );
    }
    assert_exact(&pg, &db, &p);
    assert!(p.0.try_wait().unwrap().is_none());
    let _ = &mut p;
    assert!(p.stop().success());
}

/// Finding 6: a row the output table refuses (a constraint) goes to the dead-letter table with
/// its reason; the pipeline goes on; the value never reaches the log.
#[test]
fn a_constraint_violation_is_a_dead_letter_and_the_pipeline_goes_on() {
    let (pg, db, dir) = setup(3);
    let p = start(&db, &dir, &[]);
    assert_exact(&pg, &db, &p);
    pg.sql(
        &db,
        "ALTER TABLE car_data_predicted ADD CONSTRAINT sane_mileage CHECK (mileage < 987654)",
    );
    pg.sql(&db, &listing(10, " Focus", 987_655));
    pg.sql(&db, &listing(11, " Focus", 12));
    wait_confirmed(&pg, &db, T).unwrap();
    let dead = pg.sql(
        &db,
        "SELECT key, reason_code, reason FROM augur_dead_letter",
    );
    assert!(
        dead.contains("{\"id\":10}|sink_refused|") && dead.contains("sane_mileage"),
        "{dead}"
    );
    assert_eq!(
        pg.sql(&db, "SELECT id FROM car_data_predicted WHERE id >= 10"),
        "11\n"
    );
    assert!(!p.log().contains("987655"), "{}", p.log());
    assert!(p.stop().success());
}

/// Finding 7: an output table dropped while augur owns it is never silently recreated with only
/// later rows: augur stops, refuses to start, and a new snapshot rebuilds it whole.
#[test]
fn a_dropped_output_table_is_refused_then_rebuilt_by_a_new_snapshot() {
    let (pg, db, dir) = setup(50);
    let p = start(&db, &dir, &[]);
    assert_exact(&pg, &db, &p);
    assert!(p.stop().success());
    pg.sql(&db, "DROP TABLE car_data_predicted");
    pg.sql(&db, &listing(100, " Focus", 5));
    let out = crate::support::augur()
        .args(run_args(&db, &dir, "1024"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("car_data_predicted")
            && err.contains("dropped")
            && err.contains("source.snapshot=always"),
        "{err}"
    );
    let p = start(&db, &dir, &["--set", "source.snapshot=always"]);
    assert_exact(&pg, &db, &p);
    assert!(p.stop().success());
}

/// Finding 8: listings the model's data checks refuse get no price but a dead letter with the
/// reason; category spellings match the training spelling.
#[test]
fn impossible_listings_get_dead_letters_not_prices() {
    let (pg, db, dir) = setup(1);
    let p = start(&db, &dir, &[]);
    assert_exact(&pg, &db, &p);
    pg.sql(&db, "UPDATE car_data SET year = 2060 WHERE id = 1");
    pg.sql(&db, &listing(2, " Focus", -5));
    pg.sql(&db, &listing(3, "", 10));
    pg.sql(&db, &listing(4, "fiesta", 1000));
    pg.sql(&db, &listing(5, " Fiesta", 1000));
    assert_exact(&pg, &db, &p);
    let dead = pg.sql(
        &db,
        "SELECT key, reason_code, reason FROM augur_dead_letter ORDER BY key",
    );
    for (key, reason) in [("1", "year"), ("2", "mileage"), ("3", "model")] {
        assert!(
            dead.contains(&format!("{{\"id\":{key}}}|invalid_input|field {reason}")),
            "{dead}"
        );
    }
    let prices = pg.sql(
        &db,
        "SELECT suggestedprice FROM car_data_predicted WHERE id IN (4, 5)",
    );
    let p4p5: Vec<&str> = prices.lines().collect();
    assert_eq!(p4p5.len(), 2);
    assert_eq!(p4p5[0], p4p5[1], "fiesta and ' Fiesta' are one category");
    assert!(p.stop().success());
}
