//! Crash safety of `augur run`: SIGKILL at random moments while listings stream in (20 times,
//! each followed by a restart), and separately the sink database restarted mid-stream. At the
//! end every source row has exactly one predicted row with the right price, and after every
//! kill the slot's confirmed LSN had not passed any change whose prediction was not committed.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use augur_testkit::{TestDb, TestPg};

use crate::support::pipeline::{CAR_DATA, Proc, assert_predicted_table, listings};
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(90);

fn lsn(s: &str) -> u64 {
    let (hi, lo) = s.trim().split_once('/').unwrap();
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

/// Every insert/update of car_data the witness slot saw: (commit end LSN, id, mileage).
fn witness(pg: &TestPg, db: &TestDb) -> Vec<(u64, i64, i64)> {
    let out = pg.sql(
        db,
        "SELECT lsn::text || '|' || data FROM pg_logical_slot_peek_changes('witness', NULL, NULL)",
    );
    let mut pending = Vec::new();
    let mut out_changes = Vec::new();
    for line in out.lines() {
        let (l, data) = line.split_once('|').unwrap();
        if data.starts_with("table public.car_data: INSERT:")
            || data.starts_with("table public.car_data: UPDATE:")
        {
            let num = |name: &str| -> i64 {
                let at = data.find(&format!("{name}[integer]:")).unwrap() + name.len() + 10;
                data[at..].split(' ').next().unwrap().parse().unwrap()
            };
            pending.push((num("id"), num("mileage")));
        } else if data.starts_with("COMMIT") {
            for (id, m) in pending.drain(..) {
                out_changes.push((lsn(l), id, m));
            }
        }
    }
    out_changes
}

fn predicted(pg: &TestPg, db: &TestDb) -> BTreeMap<i64, i64> {
    match pg.cluster.psql(
        &db.name,
        "SELECT id || ':' || mileage FROM car_data_predicted",
    ) {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// Streams listings (and mileage updates) into car_data until stopped.
fn writer(pg: &TestPg, db: &TestDb, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let psql = pg.cluster.bin_dir().join("psql");
    let url = db.url.clone();
    let rows = listings(2000);
    std::thread::spawn(move || {
        let mut child = std::process::Command::new(psql)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let r = &rows[i % rows.len()];
            let sql = if i % 4 == 3 {
                format!(
                    "UPDATE car_data SET mileage = mileage + 1 WHERE id = {};",
                    1 + (i * 7919) % (i / 2 + 1)
                )
            } else {
                format!(
                    "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {r};"
                )
            };
            writeln!(stdin, "{sql}").unwrap();
            i += 1;
            std::thread::sleep(Duration::from_millis(3));
        }
        drop(stdin);
        child.wait().unwrap();
    })
}

fn start_run(src: &TestDb, out_url: Option<&str>, offsets: &str, tag: &str) -> Proc {
    let mut args = vec![
        "run".to_string(),
        "--source-url".into(),
        src.url.clone(),
        "--offsets".into(),
        offsets.into(),
        "--set".into(),
        "http.listen=".into(),
    ];
    if let Some(u) = out_url {
        args.push("--set".into());
        args.push(format!("output.url={u}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::start(tag, &refs)
}

fn wait_streaming(p: &Proc) {
    let deadline = Instant::now() + T;
    while !p.log().contains("streaming changes") {
        assert!(Instant::now() < deadline, "not streaming:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_converged(pg: &TestPg, src: &TestDb, out_pg: &TestPg, out: &TestDb, p: &Proc) {
    let deadline = Instant::now() + T;
    loop {
        let want: BTreeMap<i64, i64> = pg
            .sql(src, "SELECT id || ':' || mileage FROM car_data")
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
            .collect();
        if predicted(out_pg, out) == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the predicted table never caught up:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn twenty_sigkills_lose_nothing_and_never_confirm_an_uncommitted_prediction() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    pg.sql(
        &db,
        "SELECT pg_create_logical_replication_slot('witness', 'test_decoding')",
    );
    let offsets = scratch_dir("run-crash")
        .join("offsets.json")
        .display()
        .to_string();
    let mut p = start_run(&db, None, &offsets, "run-crash");
    wait_streaming(&p);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&pg, &db, stop.clone());
    let mut kills = Vec::new();
    let mut seed = 0x5DEE_CE66Du64;
    for trial in 0..20 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 900));
        p.kill();
        std::thread::sleep(Duration::from_millis(50));
        let confirmed = lsn(&pg.sql(
            &db,
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'augur'",
        ));
        kills.push((confirmed, predicted(&pg, &db)));
        eprintln!(
            "kill {trial}: confirmed {confirmed}, {} predicted rows",
            kills.last().unwrap().1.len()
        );
        p = start_run(&db, None, &offsets, "run-crash");
        wait_streaming(&p);
    }
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    wait_converged(&pg, &db, &pg, &db, &p);
    assert!(p.stop().success());
    assert_predicted_table(&pg, &db, "car_data_predicted");

    let changes = witness(&pg, &db);
    assert!(changes.len() > 500, "{} changes", changes.len());
    for (i, (confirmed, state)) in kills.iter().enumerate() {
        for (end, id, mileage) in changes.iter().filter(|c| c.0 <= *confirmed) {
            let got = state.get(id).copied();
            assert!(
                got.is_some_and(|m| m >= *mileage),
                "kill {i}: slot confirmed {confirmed} but the change at commit {end} (id {id}, mileage {mileage}) was not committed in the sink (had {got:?})"
            );
        }
    }
}

#[test]
fn a_sink_database_restart_mid_stream_loses_nothing() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let mut out_pg = TestPg::start();
    let out = out_pg.database();
    let offsets = scratch_dir("run-sinkrestart")
        .join("offsets.json")
        .display()
        .to_string();
    let p = start_run(&db, Some(&out.url), &offsets, "run-sinkrestart");
    wait_streaming(&p);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&pg, &db, stop.clone());
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(800));
        out_pg.cluster.stop().unwrap();
        std::thread::sleep(Duration::from_millis(700));
        out_pg.cluster.restart().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    wait_converged(&pg, &db, &out_pg, &out, &p);
    let log = p.log();
    assert!(log.contains("retrying"), "the sink saw the restart:\n{log}");
    assert!(p.stop().success());
}
