//! Capture into a real Kafka-protocol broker (Tansu): Debezium's records land on
//! `<prefix>.<schema>.<table>` with the same bytes as on stdout, and a SIGKILL at any moment
//! loses nothing: every committed change reaches Kafka at least once, in commit order per key,
//! and the slot's confirmed LSN never passes a change Kafka does not have.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use augur_testkit::kafka::{ReadRecord, read_topic};
use augur_testkit::{Tansu, TestPg};
use serde_json::Value;

use crate::support::{self, Capture, assert_same_json, golden, raw, redact_event, redact_key};

fn kafka_props(db: &augur_testkit::TestDb, dir: &std::path::Path) -> Vec<(String, String)> {
    let mut props = support::connector_props(db, "car_database");
    props.push(("table.include.list".into(), "public.car_data".into()));
    props.push((
        "offset.storage.file.filename".into(),
        dir.join("offsets.json").display().to_string(),
    ));
    props
}

fn json(r: &ReadRecord) -> (Value, Value) {
    let k = r
        .key
        .as_ref()
        .map(|k| serde_json::from_slice(k).unwrap())
        .unwrap_or(Value::Null);
    let v = r
        .value
        .as_ref()
        .map(|v| serde_json::from_slice(v).unwrap())
        .unwrap_or(Value::Null);
    (k, v)
}

#[test]
fn records_reach_kafka_with_debeziums_bytes_and_headers() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.named_database("cars");
    pg.sql(&db, "CREATE TABLE car_data (id SERIAL PRIMARY KEY, model VARCHAR(50), year INTEGER, price INTEGER, transmission VARCHAR(50), mileage INTEGER, fuelType VARCHAR(50), tax INTEGER, mpg FLOAT, engineSize FLOAT, suggestedPrice INTEGER)");
    let dir = support::scratch_dir("kafka");
    let mut cap = Capture::start(&kafka_props(&db, &dir), &["--kafka", &broker.bootstrap()]);
    cap.wait_stderr("streaming changes", Duration::from_secs(60));
    pg.sql(&db, "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES (' Fiesta', 2017, 12000, 'Automatic', 15944, 'Petrol', 150, 57.7, 1)");
    pg.sql(
        &db,
        "UPDATE car_data SET price = 11500, suggestedPrice = 11800 WHERE id = 1",
    );
    pg.sql(&db, "DELETE FROM car_data WHERE id = 1");
    let recs = read_topic(
        &broker.bootstrap(),
        "car_database.public.car_data",
        4,
        Duration::from_secs(30),
    );
    assert_eq!(
        recs.len(),
        4,
        "insert, update, delete, tombstone; stderr:\n{}",
        cap.stderr()
    );
    let gold = golden();
    for (r, name) in recs
        .iter()
        .zip(["insert", "update", "delete", "delete_tombstone"])
    {
        let (k, v) = json(r);
        assert_same_json(
            &format!("{name} key"),
            &redact_key(&raw(&gold[name], "key_raw")),
            &redact_key(&k),
        );
        assert_same_json(
            &format!("{name} value"),
            &redact_event(&raw(&gold[name], "value_raw")),
            &redact_event(&v),
        );
        let names: Vec<&str> = r.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "__debezium.context.connectorLogicalName",
                "__debezium.context.taskId",
                "__debezium.context.connectorName",
                "__debezium.context.runId"
            ]
        );
    }
    assert!(
        recs[3].value.is_none(),
        "the tombstone is a null Kafka value"
    );
    let (status, stderr) = cap.stop();
    assert!(status.success(), "{stderr}");
}

/// One change as the witness slot (test_decoding, never advanced) saw it.
#[derive(Debug, Clone)]
struct WitnessChange {
    lsn: u64,
    commit_end: u64,
}

fn parse_lsn(s: &str) -> u64 {
    let (hi, lo) = s.split_once('/').unwrap();
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

fn witness(pg: &TestPg, db: &augur_testkit::TestDb) -> Vec<WitnessChange> {
    let out = pg.sql(db, "SELECT lsn::text || '|' || xid::text || '|' || data FROM pg_logical_slot_peek_changes('witness', NULL, NULL)");
    let mut pending: Vec<u64> = Vec::new();
    let mut changes = Vec::new();
    for line in out.lines() {
        let mut parts = line.splitn(3, '|');
        let (lsn, _xid, data) = (
            parse_lsn(parts.next().unwrap()),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        if data.starts_with("table public.t: INSERT:")
            || data.starts_with("table public.t: UPDATE:")
        {
            pending.push(lsn);
        } else if data.starts_with("COMMIT") {
            for l in pending.drain(..) {
                changes.push(WitnessChange {
                    lsn: l,
                    commit_end: lsn,
                });
            }
        }
    }
    changes
}

/// The (source.lsn, id, v) of every change record in the topic, in topic order.
fn topic_changes(recs: &[ReadRecord]) -> Vec<(u64, i64, i64)> {
    recs.iter()
        .filter_map(|r| {
            let (_, v) = json(r);
            let p = &v["payload"];
            let after = p.get("after").filter(|a| !a.is_null())?;
            Some((
                p["source"]["lsn"].as_u64().unwrap_or(0),
                after["id"].as_i64()?,
                after["v"].as_i64()?,
            ))
        })
        .collect()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_never_confirms_ahead_of_kafka() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)");
    pg.sql(
        &db,
        "SELECT pg_create_logical_replication_slot('witness', 'test_decoding')",
    );
    let dir = support::scratch_dir("crash");
    let mut props = support::connector_props(&db, "crash");
    props.push(("table.include.list".into(), "public.t".into()));
    props.push((
        "offset.storage.file.filename".into(),
        dir.join("offsets.json").display().to_string(),
    ));
    props.push(("max.batch.size".into(), "64".into()));
    props.push(("max.queue.size".into(), "256".into()));
    let topic = "crash.public.t";
    let bootstrap = broker.bootstrap();

    // The first run creates the slot; then the writer starts.
    let mut cap = Capture::start(&props, &["--kafka", &bootstrap]);
    cap.wait_stderr("streaming changes", Duration::from_secs(60));

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, committed, url) = (stop.clone(), committed.clone(), db.url.clone());
        let psql = pg.cluster.bin_dir().join("psql");
        std::thread::spawn(move || {
            // One psql session fed statements through stdin: many small transactions, some
            // multi-row, and updates that move hot keys forward (v counts a key's updates).
            use std::io::Write;
            let mut child = std::process::Command::new(psql)
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut id = 0i64;
            let mut seed = 0x2545_F491_4F6C_DD1Du64;
            while !stop.load(Ordering::Relaxed) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let sql = match seed % 4 {
                    0 => {
                        let hot = 1 + (seed >> 8) as i64 % id.max(1);
                        format!("UPDATE t SET v = v + 1 WHERE id = {hot};")
                    }
                    1 => {
                        id += 3;
                        format!(
                            "BEGIN; INSERT INTO t VALUES ({}, 0), ({}, 0); INSERT INTO t VALUES ({id}, 0); COMMIT;",
                            id - 2,
                            id - 1
                        )
                    }
                    _ => {
                        id += 1;
                        format!("INSERT INTO t VALUES ({id}, 0);")
                    }
                };
                writeln!(stdin, "{sql}").unwrap();
                committed.store(id as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(6));
            }
            drop(stdin);
            child.wait().unwrap();
        })
    };

    let mut kills: Vec<(u64, HashSet<u64>)> = Vec::new();
    let trials = 12;
    let mut seed = 0x9E37_79B9u64;
    for trial in 0..trials {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let wait = Duration::from_millis(150 + (seed >> 33) % 1400);
        std::thread::sleep(wait);
        cap.kill();
        // The process is gone: what the slot confirmed and what Kafka holds are now fixed.
        std::thread::sleep(Duration::from_millis(100));
        let confirmed = parse_lsn(
            pg.sql(
                &db,
                "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'debezium'",
            )
            .trim(),
        );
        let recs = read_topic(&bootstrap, topic, usize::MAX, Duration::from_secs(3));
        let lsns: HashSet<u64> = topic_changes(&recs).iter().map(|c| c.0).collect();
        eprintln!(
            "trial {trial}: killed after {wait:?}, confirmed {confirmed}, {} records in Kafka",
            recs.len()
        );
        kills.push((confirmed, lsns));
        cap = Capture::start(&props, &["--kafka", &bootstrap]);
        cap.wait_stderr("streaming changes", Duration::from_secs(60));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let changes = witness(&pg, &db);
    assert!(
        changes.len() > 200,
        "the workload produced {} changes",
        changes.len()
    );
    // Let the last run catch up, then stop it cleanly.
    let deadline = Instant::now() + Duration::from_secs(60);
    let all: HashSet<u64> = changes.iter().map(|c| c.lsn).collect();
    let mut recs;
    loop {
        recs = read_topic(&bootstrap, topic, usize::MAX, Duration::from_secs(3));
        let have: HashSet<u64> = topic_changes(&recs).iter().map(|c| c.0).collect();
        if all.is_subset(&have) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} changes never reached Kafka",
            all.difference(&have).count(),
            all.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (status, stderr) = cap.stop();
    assert!(status.success(), "{stderr}");

    // 1. After every kill, each change of a transaction the slot had confirmed was in Kafka.
    for (i, (confirmed, present)) in kills.iter().enumerate() {
        for c in changes.iter().filter(|c| c.commit_end <= *confirmed) {
            assert!(
                present.contains(&c.lsn),
                "kill {i}: slot confirmed {confirmed} but change at {} (commit end {}) was not in Kafka",
                c.lsn,
                c.commit_end
            );
        }
    }
    // 2. Every committed change is in Kafka at least once, and per key the first deliveries come
    //    in commit order (v only grows), with the newest value delivered last.
    let delivered = topic_changes(&recs);
    let mut seen = HashSet::new();
    let mut per_key: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (lsn, id, v) in &delivered {
        if seen.insert(*lsn) {
            per_key.entry(*id).or_default().push(*v);
        }
    }
    for (id, vs) in &per_key {
        assert!(
            vs.windows(2).all(|w| w[0] < w[1]),
            "key {id}: first deliveries out of commit order: {vs:?}"
        );
    }
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    for (_, id, v) in &delivered {
        last.insert(*id, *v);
    }
    let final_state = pg.sql(&db, "SELECT id || ':' || v FROM t");
    let final_rows: Vec<(i64, i64)> = final_state
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(':').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(
        final_rows.len() as u64,
        committed
            .load(Ordering::Relaxed)
            .min(final_rows.len() as u64)
    );
    for (id, v) in &final_rows {
        assert_eq!(
            last.get(id),
            Some(v),
            "key {id}: the last record in Kafka is the latest committed value"
        );
    }
    let dups = delivered.len() - seen.len();
    eprintln!(
        "{} changes, {} deliveries ({dups} replayed duplicates), {trials} kills",
        all.len(),
        delivered.len()
    );
}
