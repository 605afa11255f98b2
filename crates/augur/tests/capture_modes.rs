//! Capture behaviour beyond the golden events: snapshot modes, truncates, primary-key changes,
//! REPLICA IDENTITY variants, the ExtractNewRecordState transform with 2022-era options,
//! heartbeats that keep the slot moving, publication modes, and resuming after a clean stop.

use std::time::{Duration, Instant};

use augur_testkit::{TestDb, TestPg};
use serde_json::Value;

use crate::support::{self, Capture};

const T: Duration = Duration::from_secs(30);

fn props(db: &TestDb, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let dir = support::scratch_dir("modes");
    let mut p = support::connector_props(db, "srv");
    p.push((
        "offset.storage.file.filename".into(),
        dir.join("o.json").display().to_string(),
    ));
    for (k, v) in extra {
        p.retain(|(key, _)| key != k);
        p.push((k.to_string(), v.to_string()));
    }
    p
}

fn ops(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match l["value"]["payload"]["op"].as_str() {
            Some(op) => op.to_string(),
            None if l["value"].is_null() => "tombstone".into(),
            None => "?".into(),
        })
        .collect()
}

fn slot_confirmed(pg: &TestPg, db: &TestDb, slot: &str) -> String {
    pg.sql(db, &format!("SELECT coalesce(confirmed_flush_lsn::text, '') FROM pg_replication_slots WHERE slot_name = '{slot}'"))
        .trim()
        .to_string()
}

#[test]
fn snapshot_modes() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    );

    // no_data (and its old name, never): no snapshot, only new changes.
    for mode in ["no_data", "never"] {
        let slot = format!("s_{mode}");
        let p = props(
            &db,
            &[
                ("snapshot.mode", mode),
                ("slot.name", &slot),
                ("slot.drop.on.stop", "true"),
            ],
        );
        let mut cap = Capture::start(&p, &["--stdout"]);
        cap.wait_stderr("streaming changes", T);
        pg.sql(&db, "UPDATE t SET v = 'x' WHERE id = 1");
        let lines = cap.wait_lines(1, T);
        assert_eq!(ops(&lines), ["u"], "{mode}");
        assert!(cap.stop().0.success());
        pg.sql(&db, "UPDATE t SET v = 'a' WHERE id = 1");
    }

    // initial_only: the snapshot, then a clean exit, and no slot left behind.
    let p = props(
        &db,
        &[("snapshot.mode", "initial_only"), ("slot.name", "s_only")],
    );
    let cap = Capture::start(&p, &["--stdout"]);
    let (status, stderr) = cap.wait_exit(T);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("snapshot completed"), "{stderr}");
    assert_eq!(
        slot_confirmed(&pg, &db, "s_only"),
        "",
        "initial_only creates no slot"
    );

    // initial: a snapshot the first time only; a restart resumes the stream without one, and a
    // clean stop confirmed everything, so nothing is repeated.
    let p = props(&db, &[("slot.name", "s_initial")]);
    let mut cap = Capture::start(&p, &["--stdout"]);
    let lines = cap.wait_lines(2, T);
    assert_eq!(ops(&lines), ["r", "r"]);
    assert_eq!(lines[0]["value"]["payload"]["source"]["snapshot"], "first");
    assert_eq!(lines[1]["value"]["payload"]["source"]["snapshot"], "last");
    cap.wait_stderr("streaming changes", T);
    pg.sql(&db, "INSERT INTO t VALUES (3, 'c')");
    cap.wait_lines(3, T);
    assert!(cap.stop().0.success());
    pg.sql(&db, "INSERT INTO t VALUES (4, 'd')");
    let mut cap = Capture::start(&p, &["--stdout"]);
    let lines = cap.wait_lines(1, T);
    assert_eq!(ops(&lines), ["c"]);
    assert_eq!(
        lines[0]["value"]["payload"]["after"]["id"], 4,
        "resumes after the last confirmed change"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cap.lines().len(), 1, "nothing replayed after a clean stop");
    assert!(cap.stop().0.success());

    // always: a snapshot on every start.
    let p = props(
        &db,
        &[("snapshot.mode", "always"), ("slot.name", "s_always")],
    );
    for _ in 0..2 {
        let mut cap = Capture::start(&p, &["--stdout"]);
        let lines = cap.wait_lines(4, T);
        assert_eq!(ops(&lines), ["r", "r", "r", "r"]);
        cap.wait_stderr("streaming changes", T);
        assert!(cap.stop().0.success());
    }

    // when_needed: a snapshot without offsets, none with them.
    let p = props(
        &db,
        &[("snapshot.mode", "when_needed"), ("slot.name", "s_needed")],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    assert_eq!(ops(&cap.wait_lines(4, T)), ["r", "r", "r", "r"]);
    cap.wait_stderr("snapshot is durable", T);
    assert!(cap.stop().0.success());
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    std::thread::sleep(Duration::from_millis(300));
    assert!(cap.lines().is_empty(), "no second snapshot");
    assert!(cap.stop().0.success());
}

#[test]
fn truncates_primary_key_changes_and_replica_identities() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text); \
         CREATE TABLE nothing (id int PRIMARY KEY, v text); ALTER TABLE nothing REPLICA IDENTITY NOTHING; \
         CREATE TABLE idx (a int NOT NULL, b text, c text); CREATE UNIQUE INDEX idx_a ON idx (a); \
         ALTER TABLE idx REPLICA IDENTITY USING INDEX idx_a;",
    );
    let p = props(
        &db,
        &[("skipped.operations", "none"), ("snapshot.mode", "no_data")],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    pg.sql(&db, "INSERT INTO t VALUES (1, 'a')");
    pg.sql(&db, "UPDATE t SET id = 2 WHERE id = 1");
    let lines = cap.wait_lines(4, T);
    assert_eq!(ops(&lines), ["c", "d", "tombstone", "c"]);
    let header = |l: &Value, name: &str| l["headers"][name].as_str().map(str::to_string);
    assert_eq!(
        header(&lines[1], "__debezium.newkey").as_deref(),
        Some(r#"{"id":2}"#)
    );
    assert_eq!(
        header(&lines[2], "__debezium.newkey").as_deref(),
        Some(r#"{"id":2}"#)
    );
    assert_eq!(
        header(&lines[3], "__debezium.oldkey").as_deref(),
        Some(r#"{"id":1}"#)
    );
    assert_eq!(lines[1]["key"]["payload"]["id"], 1);
    assert_eq!(lines[3]["key"]["payload"]["id"], 2);

    pg.sql(&db, "TRUNCATE t");
    let lines = cap.wait_lines(5, T);
    assert_eq!(lines[4]["value"]["payload"]["op"], "t");
    assert!(lines[4]["key"].is_null(), "a truncate has a null key");

    // NOTHING: inserts are captured; PostgreSQL itself refuses updates and deletes on such a
    // table while a publication publishes them.
    pg.sql(&db, "INSERT INTO nothing VALUES (1, 'a')");
    let refused = pg.sql_err(&db, "UPDATE nothing SET v = 'b'");
    assert!(
        refused.contains("does not have a replica identity"),
        "{refused}"
    );
    let lines = cap.wait_lines(6, T);
    assert_eq!(ops(&lines[5..6]), ["c"]);
    assert_eq!(lines[5]["key"]["payload"]["id"], 1);

    // USING INDEX: the index columns are the key.
    pg.sql(
        &db,
        "INSERT INTO idx VALUES (1, 'x', 'y'); DELETE FROM idx WHERE a = 1",
    );
    let lines = cap.wait_lines(9, T);
    assert_eq!(ops(&lines[6..9]), ["c", "d", "tombstone"]);
    assert_eq!(lines[7]["key"]["payload"], serde_json::json!({"a": 1}));
    assert_eq!(
        lines[7]["value"]["payload"]["before"],
        serde_json::json!({"a": 1, "b": null, "c": null})
    );
    assert!(cap.stop().0.success());
}

#[test]
fn extract_new_record_state_with_2022_era_options() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE t (id int PRIMARY KEY, v text)");
    let mut p = props(
        &db,
        &[
            ("transforms", "unwrap"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            ("transforms.unwrap.drop.tombstones", "false"),
            ("snapshot.mode", "never"),
        ],
    );
    p.retain(|(k, _)| k != "topic.prefix");
    p.push(("database.server.name".into(), "legacy".into()));
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    pg.sql(
        &db,
        "INSERT INTO t VALUES (1, 'a'); UPDATE t SET v = 'b'; DELETE FROM t",
    );
    let lines = cap.wait_lines(3, T);
    assert_eq!(lines[0]["topic"], "legacy.public.t");
    assert_eq!(
        lines[0]["value"]["payload"],
        serde_json::json!({"id": 1, "v": "a"})
    );
    assert_eq!(lines[0]["value"]["schema"]["name"], "legacy.public.t.Value");
    assert_eq!(lines[0]["value"]["schema"]["optional"], false);
    assert_eq!(lines[1]["value"]["payload"]["v"], "b");
    // The delete becomes a null payload (Debezium 3.x `tombstone` mode); its own tombstone goes.
    assert!(lines[2]["value"]["payload"].is_null());
    assert_eq!(lines[2]["key"]["payload"]["id"], 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cap.lines().len(), 3);
    assert!(cap.stop().0.success());

    // rewrite + add.fields.
    let p = props(
        &db,
        &[
            ("transforms", "unwrap"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            (
                "transforms.unwrap.delete.tombstone.handling.mode",
                "rewrite",
            ),
            ("transforms.unwrap.add.fields", "op,table,source.ts_ms"),
            ("snapshot.mode", "no_data"),
            ("slot.name", "rewrite"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    pg.sql(&db, "INSERT INTO t VALUES (5, 'e'); DELETE FROM t");
    let lines = cap.wait_lines(2, T);
    let p0 = &lines[0]["value"]["payload"];
    assert_eq!(p0["__deleted"], "false");
    assert_eq!(p0["__op"], "c");
    assert_eq!(p0["__table"], "t");
    assert!(p0["__source_ts_ms"].as_i64().unwrap() > 0);
    let names: Vec<&str> = lines[0]["value"]["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["id", "v", "__deleted", "__op", "__table", "__source_ts_ms"]
    );
    assert_eq!(lines[1]["value"]["payload"]["__deleted"], "true");
    assert_eq!(lines[1]["value"]["payload"]["id"], 5);
    assert!(cap.stop().0.success());

    // The default `tombstone` mode + add.fields: a row gets the fields, the delete's null
    // payload keeps the row's own schema without them (as Debezium writes it).
    let p = props(
        &db,
        &[
            ("transforms", "unwrap"),
            (
                "transforms.unwrap.type",
                "io.debezium.transforms.ExtractNewRecordState",
            ),
            ("transforms.unwrap.add.fields", "op,table"),
            ("snapshot.mode", "no_data"),
            ("slot.name", "tombstone_fields"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    pg.sql(&db, "INSERT INTO t VALUES (6, 'f'); DELETE FROM t");
    let lines = cap.wait_lines(2, T);
    let names = |l: &Value| -> Vec<String> {
        l["value"]["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&lines[0]), ["id", "v", "__op", "__table"]);
    assert!(lines[1]["value"]["payload"].is_null());
    assert_eq!(names(&lines[1]), ["id", "v"]);
    assert!(cap.stop().0.success());
}

#[test]
fn heartbeats_keep_the_slot_moving_while_captured_tables_are_quiet() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE captured (id int PRIMARY KEY); CREATE TABLE busy (id serial PRIMARY KEY, v int)");
    let p = props(
        &db,
        &[
            ("table.include.list", "public.captured"),
            ("publication.autocreate.mode", "filtered"),
            ("heartbeat.interval.ms", "200"),
            ("snapshot.mode", "no_data"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    let before = slot_confirmed(&pg, &db, "debezium");
    // Only the uncaptured table is written: WAL grows, the captured stream stays empty.
    for _ in 0..20 {
        pg.sql(
            &db,
            "INSERT INTO busy (v) SELECT g FROM generate_series(1, 200) g",
        );
    }
    let target = pg
        .sql(&db, "SELECT pg_current_wal_lsn()")
        .trim()
        .to_string();
    let deadline = Instant::now() + T;
    loop {
        let now = slot_confirmed(&pg, &db, "debezium");
        let passed = pg
            .sql(
                &db,
                &format!("SELECT '{now}'::pg_lsn >= '{target}'::pg_lsn"),
            )
            .trim()
            == "t";
        if passed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot stuck at {now} (started at {before}, WAL at {target})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = cap.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"topic\":\"__debezium-heartbeat.srv\"")),
        "heartbeat records are written"
    );
    assert!(
        !lines.iter().any(|l| l.contains("public.busy")),
        "the uncaptured table stays out"
    );
    // The filtered publication holds exactly the captured table.
    assert_eq!(
        pg.sql(
            &db,
            "SELECT tablename FROM pg_publication_tables WHERE pubname = 'dbz_publication'"
        )
        .trim(),
        "captured"
    );
    assert!(cap.stop().0.success());
}

#[test]
fn an_interrupted_snapshot_is_redone_and_a_vanished_slot_is_never_skipped() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 50000) g");
    let p = props(
        &db,
        &[("max.batch.size", "256"), ("max.queue.size", "1024")],
    );

    // Killed in the middle of the snapshot: the next start recreates the slot and snapshots
    // again from the first row; no later change is lost.
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_lines(100, T);
    let partial = cap.kill().len();
    assert!(
        partial < 50_000,
        "killed during the snapshot ({partial} rows out)"
    );
    pg.sql(&db, "INSERT INTO t VALUES (50001, 'late')");
    let mut cap = Capture::start(&p, &["--stdout"]);
    let lines = cap.wait_lines(50_001, Duration::from_secs(120));
    assert_eq!(lines[0]["value"]["payload"]["source"]["snapshot"], "first");
    let ids: std::collections::HashSet<i64> = lines
        .iter()
        .map(|l| l["value"]["payload"]["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        50_001,
        "every row exactly once across snapshot and stream"
    );
    cap.wait_stderr("snapshot is durable", T);
    assert!(cap.stop().0.success());

    // The slot disappears behind the connector's back: refused under `initial`…
    pg.sql(&db, "SELECT pg_drop_replication_slot('debezium')");
    pg.sql(&db, "INSERT INTO t VALUES (50002, 'during the gap')");
    let cap = Capture::start(&p, &["--stdout"]);
    let (status, stderr) = cap.wait_exit(T);
    assert!(!status.success());
    assert!(stderr.contains("is gone but the offsets say"), "{stderr}");
    assert!(
        stderr.contains("fix: restart with snapshot.mode=when_needed"),
        "{stderr}"
    );
    // …and healed by a new snapshot under `when_needed`.
    let mut p2 = p.clone();
    p2.push(("snapshot.mode".into(), "when_needed".into()));
    let mut cap = Capture::start(&p2, &["--stdout"]);
    let lines = cap.wait_lines(50_002, Duration::from_secs(120));
    assert!(
        lines
            .iter()
            .any(|l| l["value"]["payload"]["after"]["id"] == 50_002)
    );
    assert!(cap.stop().0.success());
}

#[test]
fn schemas_disabled_writes_payloads_only() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text, n numeric(6,2))",
    );
    let p = props(
        &db,
        &[
            ("converter.schemas.enable", "false"),
            ("snapshot.mode", "no_data"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    pg.sql(&db, "INSERT INTO t VALUES (1, 'a', 12.34); DELETE FROM t");
    let lines = cap.wait_lines(3, T);
    assert_eq!(
        lines[0]["key"],
        serde_json::json!({"id": 1}),
        "the key is the bare payload"
    );
    let v = &lines[0]["value"];
    assert!(v.get("schema").is_none());
    assert_eq!(v["op"], "c");
    assert_eq!(
        v["after"],
        serde_json::json!({"id": 1, "v": "a", "n": "BNI="})
    );
    assert_eq!(v["source"]["table"], "t");
    assert_eq!(lines[1]["value"]["op"], "d");
    assert!(lines[2]["value"].is_null(), "tombstone");
    assert!(cap.stop().0.success());
}

/// Debezium's snapshot markers, by its precedence: the last row "last", else the first row
/// "first", else a table's last row "last_in_data_collection", else its first
/// "first_in_data_collection" — so a one-row first table's row is "first".
#[test]
fn snapshot_markers_follow_debeziums_precedence() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE m1 (id int PRIMARY KEY); CREATE TABLE m2 (id int PRIMARY KEY); \
         CREATE TABLE m3 (id int PRIMARY KEY); INSERT INTO m1 VALUES (1); \
         INSERT INTO m2 VALUES (1); INSERT INTO m3 VALUES (1), (2), (3);",
    );
    let p = props(
        &db,
        &[
            ("table.include.list", "public.m1,public.m2,public.m3"),
            ("snapshot.mode", "initial_only"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    let lines = cap.wait_lines(5, T);
    let marks: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let s = &l["value"]["payload"]["source"];
            let m = s["snapshot"].as_str().unwrap_or_default().to_string();
            (s["table"].as_str().unwrap_or_default().to_string(), m)
        })
        .collect();
    let want = [
        ("m1", "first"),
        ("m2", "last_in_data_collection"),
        ("m3", "first_in_data_collection"),
        ("m3", "true"),
        ("m3", "last"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(t, m)| (t.to_string(), m.to_string()))
        .collect();
    assert_eq!(marks, want);
    let (status, stderr) = cap.wait_exit(T);
    assert!(status.success(), "{stderr}");
}

/// Debezium's per-column options end to end: a column left out, a mask, a truncation, a salted
/// hash cut to the column's length (the digest Java computes), and a message key of another
/// column — in the snapshot and in the stream.
#[test]
fn column_filters_masks_and_message_key_columns() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE c (id int PRIMARY KEY, model text, secret text, owner varchar(20), \
         vin varchar(8), code text); \
         INSERT INTO c VALUES (1, 'Fiesta', 'hunter2', 'Ada', 'abc', 'K1');",
    );
    let p = props(
        &db,
        &[
            ("table.include.list", "public.c"),
            ("column.exclude.list", r"public\.c\.secret"),
            ("column.mask.with.4.chars", "public.c.owner"),
            ("column.truncate.to.3.chars", "public.c.model"),
            ("column.mask.hash.v2.SHA-256.with.salt.salt", "public.c.vin"),
            ("message.key.columns", "public.c:code"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    pg.sql(
        &db,
        "INSERT INTO c VALUES (2, 'Focus', 'pw', NULL, 'abc', 'K2')",
    );
    let lines = cap.wait_lines(2, T);
    for (l, (model, owner, code)) in lines
        .iter()
        .zip([("Fie", "****", "K1"), ("Foc", "****", "K2")])
    {
        let v = &l["value"];
        let after = &v["payload"]["after"];
        assert_eq!(after["model"], model);
        assert_eq!(after["owner"], owner, "masked, a null too");
        assert_eq!(
            after["vin"], "36810999",
            "sha256(salt + value), cut to varchar(8)"
        );
        assert!(after.get("secret").is_none(), "{after}");
        assert_eq!(l["key"]["payload"], serde_json::json!({ "code": code }));
        let fields = v["schema"]["fields"][1]["fields"].as_array().unwrap();
        let field = |n: &str| fields.iter().find(|f| f["field"] == n).cloned().unwrap();
        assert_eq!(field("model")["parameters"]["truncateLength"], "3");
        assert_eq!(field("owner")["parameters"]["masked"], "true");
        assert_eq!(field("vin")["parameters"]["masked"], "true");
    }
    assert!(
        cap.stderr()
            .lines()
            .all(|l| !l.contains("unknown configuration key"))
    );
    assert!(cap.stop().0.success());
}

/// Schema changes mid-stream, as Debezium shows them: every event before an ALTER TABLE has the
/// old schema, every event after it the new one — over a 10,000-row stream with a column added
/// half-way, then a rename, a drop and a type change.
#[test]
fn schema_changes_mid_stream_take_effect_from_the_next_event() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE s (id int PRIMARY KEY, mileage int, notes text)",
    );
    let p = props(
        &db,
        &[
            ("table.include.list", "public.s"),
            ("snapshot.mode", "no_data"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    let chunk = |from: i32, extra: &str| {
        format!(
            "INSERT INTO s SELECT g, g * 10, 'n'{extra} FROM generate_series({from}, {}) g",
            from + 499
        )
    };
    for c in 0..20 {
        let from = c * 500 + 1;
        if c == 10 {
            pg.sql(&db, "ALTER TABLE s ADD COLUMN extra int DEFAULT 7");
        }
        pg.sql(&db, &chunk(from, if c >= 10 { ", g % 3" } else { "" }));
    }
    pg.sql(&db, "ALTER TABLE s RENAME COLUMN extra TO colour_code");
    pg.sql(&db, "INSERT INTO s VALUES (10001, 1, 'n', 1)");
    pg.sql(&db, "ALTER TABLE s DROP COLUMN notes");
    pg.sql(&db, "INSERT INTO s VALUES (10002, 2, 2)");
    pg.sql(&db, "ALTER TABLE s ALTER COLUMN mileage TYPE bigint");
    pg.sql(&db, "INSERT INTO s VALUES (10003, 3000000000, 3)");
    let lines = cap.wait_lines(10_003, Duration::from_secs(120));
    let shape = |l: &Value| -> Vec<String> {
        l["value"]["schema"]["fields"][1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}:{}",
                    f["field"].as_str().unwrap(),
                    f["type"].as_str().unwrap()
                )
            })
            .collect()
    };
    for (i, l) in lines.iter().enumerate().take(10_000) {
        let id = l["value"]["payload"]["after"]["id"].as_i64().unwrap();
        assert_eq!(id, i as i64 + 1, "in commit order, none lost");
        let want: &[&str] = if id <= 5000 {
            &["id:int32", "mileage:int32", "notes:string"]
        } else {
            &["id:int32", "mileage:int32", "notes:string", "extra:int32"]
        };
        assert_eq!(shape(l), want, "event {id}");
    }
    assert_eq!(lines[5000]["value"]["payload"]["after"]["extra"], 5001 % 3);
    assert_eq!(
        shape(&lines[10_000]),
        [
            "id:int32",
            "mileage:int32",
            "notes:string",
            "colour_code:int32"
        ]
    );
    assert_eq!(
        shape(&lines[10_001]),
        ["id:int32", "mileage:int32", "colour_code:int32"]
    );
    assert_eq!(
        shape(&lines[10_002]),
        ["id:int32", "mileage:int64", "colour_code:int32"]
    );
    assert_eq!(
        lines[10_002]["value"]["payload"]["after"]["mileage"],
        3_000_000_000i64
    );
    assert!(cap.stop().0.success());
}

/// A reader that goes away mid-stream: augur stops with a clear error instead of losing what
/// it could not write, and the next run delivers every row from where the reader stopped (the
/// slot only moves past what was written and flushed).
#[test]
fn a_reader_that_closes_stdout_stops_capture_and_loses_nothing() {
    const ROWS: i64 = 4000;
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE t (id int PRIMARY KEY, pad text)");
    let p = props(&db, &[("snapshot.mode", "no_data")]);
    let mut cap = Capture::start_reading(&p, &["--stdout"], 300);
    cap.wait_stderr("streaming changes", T);
    for from in (1..=ROWS).step_by(500) {
        pg.sql(
            &db,
            &format!(
                "INSERT INTO t SELECT g, repeat('x', 1000) FROM generate_series({from}, {}) g",
                from + 499
            ),
        );
    }
    let first: Vec<i64> = cap
        .wait_lines(300, T)
        .iter()
        .map(|v| v["value"]["payload"]["after"]["id"].as_i64().unwrap())
        .collect();
    let (status, stderr) = cap.wait_exit(Duration::from_secs(60));
    assert!(
        !status.success(),
        "augur must fail when stdout closes:\n{stderr}"
    );
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(first, (1..=300).collect::<Vec<_>>());

    let again = Capture::start(&p, &["--stdout"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let ids = loop {
        let ids: Vec<i64> = again.lines().iter().map(|l| after_id(l)).collect();
        if ids.last() == Some(&ROWS) || Instant::now() > deadline {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let resumed_at = ids.first().copied().unwrap_or(i64::MAX);
    assert!(
        resumed_at <= 301,
        "rows after the reader's last were skipped: resumed at {resumed_at}"
    );
    assert_eq!(
        ids,
        (resumed_at..=ROWS).collect::<Vec<_>>(),
        "{}",
        again.stderr()
    );
    assert!(again.stop().0.success());
}

fn after_id(line: &str) -> i64 {
    let v: Value = serde_json::from_str(line).expect("JSON line");
    v["value"]["payload"]["after"]["id"]
        .as_i64()
        .expect("an insert")
}
