//! Incremental snapshots through Debezium's signal table: a table re-read in chunks while
//! writes stream in, checked by replaying every event in order against the table's final
//! contents (a stale chunk row overwriting a newer change, or a row never read, shows as a
//! difference); a kill mid-snapshot resumes from the durable chunk; composite keys,
//! `additional-conditions`, the `insert_delete` watermarks and `stop-snapshot`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use augur_testkit::{TestDb, TestPg};
use serde_json::Value;

use crate::support::{self, Capture};

const T: Duration = Duration::from_secs(90);

const SIGNAL_DDL: &str = "CREATE TABLE dbz_signal (id varchar(42) PRIMARY KEY, \
                          type varchar(32) NOT NULL, data varchar(2048))";

fn props(db: &TestDb, offsets: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = support::connector_props(db, "srv");
    p.push((
        "offset.storage.file.filename".into(),
        offsets.display().to_string(),
    ));
    for (k, v) in [
        ("snapshot.mode", "no_data"),
        ("signal.data.collection", "public.dbz_signal"),
        ("slot.name", "inc"),
    ]
    .iter()
    .chain(extra)
    {
        p.retain(|(key, _)| key != k);
        p.push((k.to_string(), v.to_string()));
    }
    p
}

/// A database with the signal table, the `marker` table and the tables `ddl` creates.
fn with_signals(pg: &TestPg, ddl: &str) -> TestDb {
    let db = pg.database();
    pg.sql(&db, SIGNAL_DDL);
    pg.sql(&db, "CREATE TABLE marker (n int PRIMARY KEY)");
    pg.sql(&db, ddl);
    db
}

fn signal(pg: &TestPg, db: &TestDb, id: &str, kind: &str, data: &str) {
    pg.sql(
        db,
        &format!(
            "INSERT INTO dbz_signal VALUES ('{id}', '{kind}', '{}')",
            data.replace('\'', "''")
        ),
    );
}

/// An event's payload, with or without the converter's schema.
fn payload(l: &Value) -> &Value {
    match l["value"].get("payload") {
        Some(p) => p,
        None => &l["value"],
    }
}

/// The rows the events leave when applied in order: `r`/`c`/`u` upsert, `d` deletes.
fn replay(lines: &[Value], key: &[&str], cols: &[&str]) -> BTreeMap<String, String> {
    let mut rows = BTreeMap::new();
    for l in lines {
        let p = payload(l);
        let Some(op) = p["op"].as_str() else { continue };
        let row = if op == "d" { &p["before"] } else { &p["after"] };
        let k = key
            .iter()
            .map(|c| row[c].to_string())
            .collect::<Vec<_>>()
            .join("|");
        if op == "d" {
            rows.remove(&k);
        } else {
            let v = cols
                .iter()
                .map(|c| row[c].to_string())
                .collect::<Vec<_>>()
                .join("|");
            rows.insert(k, v);
        }
    }
    rows
}

/// The table's rows in [`replay`]'s form (`sql` selects the key columns then the others,
/// each as JSON text).
fn table(pg: &TestPg, db: &TestDb, sql: &str, nkey: usize) -> BTreeMap<String, String> {
    pg.sql(db, sql)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[..nkey].join("|"), f[nkey..].join("|"))
        })
        .collect()
}

/// Writes to `t` until `stop`: updates (the newest value must win), deletes, re-inserts.
fn churn(pg: &TestPg, db: &TestDb, stop: &AtomicBool, max: i64) -> usize {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let id = (seed % max as u64) as i64 + 1;
        let sql = match seed % 5 {
            0 => format!("DELETE FROM t WHERE id = {id}"),
            1 => format!(
                "INSERT INTO t VALUES ({id}, 100, 'back') ON CONFLICT (id) DO UPDATE SET v = t.v + 1"
            ),
            _ => format!(
                "UPDATE t SET v = v + 1, note = 'u{n}' WHERE id IN ({id}, {})",
                max - id + 1
            ),
        };
        pg.sql(db, &sql);
        n += 1;
    }
    n
}

fn t_rows(pg: &TestPg, db: &TestDb) -> BTreeMap<String, String> {
    table(pg, db, "SELECT id, v, to_json(note) FROM t ORDER BY id", 1)
}

/// Waits until the capture has sent the marker row (id 0) — everything before it is out.
fn wait_marker(cap: &mut Capture, pg: &TestPg, db: &TestDb, n: i32) -> Vec<Value> {
    pg.sql(db, &format!("INSERT INTO marker VALUES ({n})"));
    let deadline = Instant::now() + T;
    loop {
        let lines: Vec<Value> = cap
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines
            .iter()
            .any(|l| l["topic"] == "srv.public.marker" && payload(l)["after"]["n"] == n)
        {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "marker {n} not captured:\n{}",
            cap.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn chunks_interleave_with_writes_and_never_overwrite_newer_rows() {
    let pg = TestPg::start();
    let db = with_signals(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v int, note text); \
         INSERT INTO t SELECT g, 0, 'row ' || g FROM generate_series(1, 4000) g",
    );
    let offsets = support::scratch_dir("inc").join("o.json");
    let p = props(
        &db,
        &offsets,
        &[
            ("incremental.snapshot.chunk.size", "50"),
            ("table.include.list", "public.t,public.marker"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    let stop = AtomicBool::new(false);
    let writes = std::thread::scope(|s| {
        let w = s.spawn(|| churn(&pg, &db, &stop, 4000));
        std::thread::sleep(Duration::from_millis(300));
        signal(
            &pg,
            &db,
            "ad-hoc-1",
            "execute-snapshot",
            r#"{"data-collections": ["public\\.t"], "type": "incremental"}"#,
        );
        cap.wait_stderr("incremental snapshot completed", T);
        stop.store(true, Ordering::Relaxed);
        w.join().unwrap()
    });
    let lines = wait_marker(&mut cap, &pg, &db, 1);
    let t_lines: Vec<Value> = lines
        .into_iter()
        .filter(|l| l["topic"] == "srv.public.t")
        .collect();
    let reads = t_lines
        .iter()
        .filter(|l| payload(l)["op"] == "r")
        .inspect(|l| assert_eq!(payload(l)["source"]["snapshot"], "incremental"))
        .count();
    assert!(
        reads >= 3000,
        "{reads} chunk rows for 4,000 rows and {writes} writes\n{}",
        cap.stderr()
    );
    assert!(writes > 5, "only {writes} writes during the snapshot");
    assert_eq!(replay(&t_lines, &["id"], &["v", "note"]), t_rows(&pg, &db));
    // As in Debezium, the signal table's rows (the signal, each window's markers) stream too.
    let signals = cap
        .lines()
        .iter()
        .filter(|l| l.contains("\"topic\":\"srv.public.dbz_signal\""))
        .count();
    assert!(signals >= 3, "{signals} signal-table records");
    assert!(cap.stop().0.success());
}

#[test]
fn a_killed_capture_resumes_the_snapshot_from_its_last_durable_chunk() {
    let pg = TestPg::start();
    let db = with_signals(
        &pg,
        "CREATE TABLE t (id int PRIMARY KEY, v int, note text); \
         INSERT INTO t SELECT g, 0, 'n' FROM generate_series(1, 100000) g",
    );
    let offsets = support::scratch_dir("inc-kill").join("o.json");
    let run = |chunk: &'static str| {
        props(
            &db,
            &offsets,
            &[
                ("incremental.snapshot.chunk.size", chunk),
                ("table.include.list", "public.t,public.marker"),
                ("key.converter.schemas.enable", "false"),
                ("value.converter.schemas.enable", "false"),
            ],
        )
    };
    let mut cap = Capture::start(&run("20"), &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    signal(
        &pg,
        &db,
        "s1",
        "execute-snapshot",
        r#"{"data-collections": ["public.t"]}"#,
    );
    let deadline = Instant::now() + T;
    while cap.lines().len() < 2000 {
        assert!(
            Instant::now() < deadline,
            "no chunk rows:\n{}",
            cap.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Paused, so the kill comes at a known place; its progress is saved within a second.
    signal(
        &pg,
        &db,
        "p1",
        "pause-snapshot",
        r#"{"type": "incremental"}"#,
    );
    cap.wait_stderr("signal=pause-snapshot", T);
    std::thread::sleep(Duration::from_millis(1500));
    let first = cap.kill();
    assert!(
        first.len() < 100_000,
        "the snapshot finished before the pause"
    );
    pg.sql(
        &db,
        "UPDATE t SET v = 7 WHERE id % 1000 = 0; DELETE FROM t WHERE id % 999 = 0",
    );
    let mut cap = Capture::start(&run("2000"), &["--stdout"]);
    cap.wait_stderr("incremental snapshot in progress", T);
    signal(&pg, &db, "r1", "resume-snapshot", "{}");
    cap.wait_stderr("incremental snapshot completed", T);
    let second = wait_marker(&mut cap, &pg, &db, 1);
    let all: Vec<Value> = first
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .chain(second)
        .filter(|l: &Value| l["topic"] == "srv.public.t")
        .collect();
    assert_eq!(replay(&all, &["id"], &["v", "note"]), t_rows(&pg, &db));
    let read = all.iter().filter(|l| payload(l)["op"] == "r").count();
    assert!(
        read < 100_000 + 5_000,
        "the second run started over instead of resuming ({read} chunk rows)"
    );
    assert!(cap.stop().0.success());
}

#[test]
fn composite_keys_conditions_insert_delete_watermarks_and_stop() {
    let pg = TestPg::start();
    let db = with_signals(
        &pg,
        "CREATE TABLE c (a int, b text, v int, PRIMARY KEY (a, b)); \
         INSERT INTO c SELECT g % 10, 'k''' || g, g FROM generate_series(1, 500) g; \
         CREATE TABLE other (id int PRIMARY KEY); INSERT INTO other SELECT generate_series(1, 100)",
    );
    let offsets = support::scratch_dir("inc-cond").join("o.json");
    let p = props(
        &db,
        &offsets,
        &[
            ("incremental.snapshot.chunk.size", "7"),
            (
                "incremental.snapshot.watermarking.strategy",
                "insert_delete",
            ),
            ("table.include.list", "public.c,public.other,public.marker"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    signal(
        &pg,
        &db,
        "s1",
        "execute-snapshot",
        r#"{"data-collections": ["public.c"], "additional-conditions": [{"data-collection": "public.c", "filter": "a % 2 = 0"}]}"#,
    );
    cap.wait_stderr("incremental snapshot completed", T);
    let lines = wait_marker(&mut cap, &pg, &db, 1);
    let reads: Vec<&Value> = lines.iter().filter(|l| payload(l)["op"] == "r").collect();
    assert_eq!(reads.len(), 250, "the even rows of c, once each");
    assert!(
        reads
            .iter()
            .all(|l| payload(l)["after"]["a"].as_i64().unwrap() % 2 == 0)
    );
    let mut keys: Vec<String> = reads
        .iter()
        .map(|l| l["key"]["payload"].to_string())
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 250);
    // insert_delete: the windows leave no rows behind.
    assert_eq!(pg.sql(&db, "SELECT count(*) FROM dbz_signal").trim(), "1");

    // stop-snapshot: a second snapshot of a slowly read table is stopped part-way.
    signal(
        &pg,
        &db,
        "s2",
        "execute-snapshot",
        r#"{"data-collections": ["public.other", "public.c"]}"#,
    );
    signal(
        &pg,
        &db,
        "s3",
        "stop-snapshot",
        r#"{"data-collections": ["public.c"], "type": "incremental"}"#,
    );
    cap.wait_stderr("incremental snapshot stopped for the named tables", T);
    let deadline = Instant::now() + T;
    while cap
        .stderr()
        .matches("incremental snapshot completed")
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "no second completion:\n{}",
            cap.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = wait_marker(&mut cap, &pg, &db, 2);
    let other = lines
        .iter()
        .filter(|l| l["topic"] == "srv.public.other" && payload(l)["op"] == "r")
        .count();
    assert_eq!(other, 100, "the table not stopped is read whole");
    assert!(cap.stop().0.success());
}

#[test]
fn a_missing_signal_table_is_a_clear_error_at_start() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE t (id int PRIMARY KEY)");
    let offsets = support::scratch_dir("inc-missing").join("o.json");
    let p = props(&db, &offsets, &[("signal.data.collection", "public.nope")]);
    let (status, stderr) = Capture::start(&p, &["--stdout"]).wait_exit(T);
    assert!(!status.success());
    assert!(
        stderr.contains("the signal table public.nope (signal.data.collection) does not exist")
            && stderr.contains("CREATE TABLE \"public\".\"nope\""),
        "{stderr}"
    );
}

/// `augur run` streaming only, then an incremental snapshot while prices change and rows are
/// deleted: the predicted table ends equal to the source, every row priced.
#[test]
fn augur_run_fills_the_predicted_table_incrementally_while_writes_stream() {
    use crate::support::pipeline::{
        CAR_DATA, Proc, assert_predicted_table, insert_listings, listings, wait_count,
    };
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    pg.sql(&db, SIGNAL_DDL);
    insert_listings(&pg, &db, &listings(3000));
    let dir = support::scratch_dir("inc-run");
    let offsets = dir.join("offsets.json").display().to_string();
    let run = Proc::start(
        "inc-run",
        &[
            "run",
            "--source-url",
            &db.url,
            "--offsets",
            &offsets,
            "--set",
            "http.listen=",
            "--set",
            "source.snapshot=no_data",
            "--set",
            "source.signal.data.collection=public.dbz_signal",
            "--set",
            "source.incremental.snapshot.chunk.size=200",
        ],
    );
    let deadline = Instant::now() + T;
    while !run.log().contains("streaming changes") {
        assert!(Instant::now() < deadline, "not streaming:\n{}", run.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(
        &pg,
        &db,
        "s1",
        "execute-snapshot",
        r#"{"data-collections": ["public.car_data"]}"#,
    );
    for k in 0..60 {
        let id = k * 47 % 3000 + 1;
        pg.sql(
            &db,
            &format!(
                "UPDATE car_data SET price = price + 100, mileage = mileage + 1 WHERE id = {id}"
            ),
        );
        if k % 10 == 0 {
            pg.sql(&db, &format!("DELETE FROM car_data WHERE id = {}", id + 1));
        }
    }
    let n: usize = pg
        .sql(&db, "SELECT count(*) FROM car_data")
        .trim()
        .parse()
        .unwrap();
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        n,
        T,
        &run.log(),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_predicted_table(&pg, &db, "car_data_predicted");
    assert!(
        run.log().contains("incremental snapshot completed"),
        "{}",
        run.log()
    );
    assert!(run.stop().success());
}
