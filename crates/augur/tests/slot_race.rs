//! Two captures racing for one replication slot, as two workers would if both believed they
//! owned the capture task (issue 14: two workers must never stream one slot at once). Started
//! at the same instant, 20 times — the first round with no slot yet, so both also race to
//! create it: PostgreSQL lets one stream; the other waits for the slot (`slot.max.retries`,
//! `slot.retry.delay.ms`) and emits nothing while the first holds it; when the first is killed,
//! the second takes over from the slot and the change made meanwhile arrives.

use std::time::{Duration, Instant};

use augur_testkit::{TestDb, TestPg};

use crate::support::{self, Capture};

const T: Duration = Duration::from_secs(60);

fn props(db: &TestDb, tag: &str) -> Vec<(String, String)> {
    let mut p = support::connector_props(db, "race");
    let dir = support::scratch_dir(tag);
    p.push((
        "offset.storage.file.filename".into(),
        dir.join("o.json").display().to_string(),
    ));
    p.push(("table.include.list".into(), "public.t".into()));
    p.push(("snapshot.mode".into(), "no_data".into()));
    p.push(("slot.max.retries".into(), "400".into()));
    p.push(("slot.retry.delay.ms".into(), "100".into()));
    p
}

/// The ids in a capture's change events.
fn ids(c: &Capture) -> Vec<i64> {
    c.lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["value"]["payload"]["after"]["id"].as_i64())
        .collect()
}

/// How many connections stream from the slot right now.
fn active(pg: &TestPg, db: &TestDb) -> usize {
    pg.sql(
        db,
        "SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = 'debezium'",
    )
    .trim()
    .parse()
    .unwrap()
}

#[test]
fn two_captures_racing_for_one_slot_never_both_stream() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE t (id int PRIMARY KEY)");
    let mut id = 0;
    for round in 0..20 {
        let (a, b) = (
            Capture::start(&props(&db, "race-a"), &["--stdout"]),
            Capture::start(&props(&db, "race-b"), &["--stdout"]),
        );
        let deadline = Instant::now() + T;
        let a_won = loop {
            let (sa, sb) = (a.stderr(), b.stderr());
            let (ra, rb) = (
                sa.contains("streaming changes"),
                sb.contains("streaming changes"),
            );
            assert!(!(ra && rb), "round {round}: both stream\n{sa}\n{sb}");
            if ra || rb {
                break ra;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: neither streams\n{sa}\n{sb}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let (winner, mut loser) = if a_won { (a, b) } else { (b, a) };
        let deadline = Instant::now() + T;
        while !loser.stderr().contains("slot in use") {
            assert!(
                Instant::now() < deadline,
                "round {round}: the second capture does not wait for the slot:\n{}",
                loser.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(active(&pg, &db), 1, "round {round}");

        // A change while both run: only the holder emits it.
        id += 1;
        pg.sql(&db, &format!("INSERT INTO t VALUES ({id})"));
        let deadline = Instant::now() + T;
        while !ids(&winner).contains(&id) {
            assert!(
                Instant::now() < deadline,
                "round {round}: {id} not captured"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            ids(&loser).is_empty(),
            "round {round}: the waiting capture emitted {:?}",
            ids(&loser)
        );
        assert!(
            !loser.stderr().contains("streaming changes"),
            "round {round}"
        );

        // The holder dies: the other takes over and streams what came meanwhile.
        winner.kill();
        id += 1;
        pg.sql(&db, &format!("INSERT INTO t VALUES ({id})"));
        loser.wait_stderr("streaming changes", T);
        let deadline = Instant::now() + T;
        while !ids(&loser).contains(&id) {
            assert!(
                Instant::now() < deadline,
                "round {round}: {id} not captured after the takeover"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(active(&pg, &db), 1, "round {round}");
        let (status, stderr) = loser.stop();
        assert!(status.success(), "round {round}: {stderr}");
    }
}
