//! `augur run`, the embedded pipeline: predictions for the snapshot and the stream, updates and
//! deletes, dead letters for bad rows without stopping, write-back into the source table
//! without re-triggering itself, metrics and readiness, and clear errors at start.

use std::time::{Duration, Instant};

use augur_testkit::{TestDb, TestPg};

use crate::support::pipeline::{
    CAR_DATA, Proc, assert_predicted_table, insert_listings, listings, wait_count,
};
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(60);

fn run_args(db: &TestDb, port: u16, extra: &[&str]) -> Vec<String> {
    let dir = scratch_dir("run");
    let mut v: Vec<String> = vec![
        "run".into(),
        "--source-url".into(),
        db.url.clone(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--offsets".into(),
        dir.join("offsets.json").display().to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let r = augur_testkit::http::get(([127, 0, 0, 1], port).into(), path);
    (r.status, r.text())
}

fn start(db: &TestDb, extra: &[&str]) -> (Proc, u16) {
    let port = augur_pgcluster::free_port().unwrap();
    let mut args = run_args(db, port, &[]);
    // A later --source-url replaces the default one.
    let mut extra = extra.to_vec();
    if let Some(i) = extra.iter().position(|a| *a == "--source-url") {
        args[2] = extra[i + 1].to_string();
        extra.drain(i..i + 2);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    (Proc::start("run", &refs), port)
}

fn wait_ready(p: &Proc, port: u16) {
    let deadline = Instant::now() + T;
    loop {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            drop(s);
            if http_get(port, "/readyz").0 == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "not ready:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn predicts_snapshot_and_stream_with_updates_deletes_and_dead_letters() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let rows = listings(400);
    insert_listings(&pg, &db, &rows[..200]);
    let (p, port) = start(&db, &[]);
    wait_ready(&p, port);
    insert_listings(&pg, &db, &rows[200..]);
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        400,
        T,
        &p.log(),
    );
    assert_predicted_table(&pg, &db, "car_data_predicted");

    // A row with a missing feature: recorded with the reason, the pipeline goes on.
    pg.sql(&db, "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES (' Focus', NULL, 1000, 'Manual', 10, 'Petrol', 150, 50, 1.0)");
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM augur_dead_letter WHERE reason LIKE 'field year%'",
        1,
        T,
        "dead letter",
    );
    pg.sql(&db, "UPDATE car_data SET mileage = mileage * 2 WHERE id <= 5; DELETE FROM car_data WHERE id BETWEEN 6 AND 10");
    pg.sql(&db, "DELETE FROM car_data WHERE year IS NULL");
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        395,
        T,
        "after deletes",
    );
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data s JOIN car_data_predicted p USING (id) WHERE s.mileage = p.mileage",
        395,
        T,
        "after updates",
    );
    assert_predicted_table(&pg, &db, "car_data_predicted");

    let (code, metrics) = http_get(port, "/metrics");
    assert_eq!(code, 200);
    for series in [
        "augur_pipeline_events_captured_total",
        "augur_pipeline_rows_predicted_total",
        "augur_pipeline_rows_written_total",
        "augur_pipeline_dead_letters_total 1",
        "augur_pipeline_slot_lag_bytes",
        "augur_pipeline_end_to_end_seconds_bucket",
        "augur_pipeline_predict_seconds_bucket",
        "augur_pipeline_predict_batch_rows_bucket",
    ] {
        assert!(metrics.contains(series), "no {series} in /metrics");
    }
    assert_eq!(http_get(port, "/healthz").0, 200);
    assert!(p.stop().success());
}

#[test]
fn writes_back_into_the_source_column_without_retriggering() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    insert_listings(&pg, &db, &listings(100));
    let (p, port) = start(&db, &["--set", "output.mode=column"]);
    wait_ready(&p, port);
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data WHERE suggestedprice IS NOT NULL",
        100,
        T,
        &p.log(),
    );
    let model = augur_model::load_shipped().unwrap();
    let out = pg.sql(&db, "SELECT model, year, price, transmission, mileage, fueltype, tax, mpg, enginesize, suggestedprice FROM car_data");
    for line in out.lines() {
        let f: Vec<String> = line.split('|').map(str::to_string).collect();
        let want = crate::support::pipeline::expected_price(&model, &f[..9]).round() as i64;
        assert_eq!(f[9], want.to_string());
    }
    // The write-back's own updates come around once, change nothing, and stop.
    let captured = |port| {
        let (_, m) = http_get(port, "/metrics");
        m.lines()
            .find(|l| l.starts_with("augur_pipeline_events_captured_total "))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_millis(1500));
    let a = captured(port);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(captured(port), a, "no feedback loop");
    assert!(
        a <= 200,
        "each row seen at most twice (snapshot and its write-back), saw {a}"
    );
    assert!(p.stop().success());
}

#[test]
fn clear_errors_at_start() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let fails = |extra: &[&str], needle: &str| {
        let (mut p, _) = start(&db, extra);
        let status = crate::support::wait_timeout(&mut p.0, T).expect("exits");
        let log = p.log();
        assert!(!status.success(), "{log}");
        assert!(log.contains(needle), "no {needle:?} in:\n{log}");
    };
    fails(&["--model", "nope:7"], "cannot load model nope:7");
    fails(
        &[
            "--source-url",
            "postgres://postgres:postgres@127.0.0.1:1/cars",
        ],
        "cannot connect to PostgreSQL at 127.0.0.1:1/cars",
    );
    fails(&["--set", "output.mode=sideways"], "output.mode");
    // A bad URL is quoted with its passwords masked, wherever they are.
    let bad = "postgres://u:Pw0rd1@127.0.0.1:1/cars?sslpassword=Pw0rd2&nope=1";
    let (mut p, _) = start(&db, &["--source-url", bad]);
    let _ = crate::support::wait_timeout(&mut p.0, T).expect("exits");
    let log = p.log();
    assert!(log.contains("unknown option"), "{log}");
    assert!(!log.contains("Pw0rd1") && !log.contains("Pw0rd2"), "{log}");
    fails(
        &["--set", "output.mode=column", "--set", "output.column=nope"],
        "has no column \"nope\"",
    );
    // Nothing was left behind that would stop a correct start.
    insert_listings(&pg, &db, &listings(10));
    let (p, port) = start(&db, &[]);
    wait_ready(&p, port);
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        10,
        T,
        &p.log(),
    );
    assert!(p.stop().success());
}

#[test]
fn doctor_prints_each_check_with_a_fix() {
    let doctor = |url: &str, extra: &[&str]| {
        let mut args = vec!["doctor", "--source-url", url];
        args.extend_from_slice(extra);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let (ok, text) = doctor(&db.url, &[]);
    assert!(ok, "{text}");
    for line in [
        "✓ wal_level",
        "✓ REPLICATION privilege",
        "✓ table public.car_data",
        "✓ model",
        "all checks passed",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    // Broken: a missing feature column, write-back without its column, an unknown model.
    pg.sql(
        &db,
        "ALTER TABLE car_data DROP COLUMN mpg, DROP COLUMN suggestedprice",
    );
    let (ok, text) = doctor(
        &db.url,
        &["--set", "output.mode=column", "--model", "nope:1"],
    );
    assert!(!ok);
    assert!(text.contains("✗ model"), "{text}");
    let (ok, text) = doctor(&db.url, &["--set", "output.mode=column"]);
    assert!(!ok);
    assert!(
        text.contains("no column for model input(s) mpg")
            && text.contains("fix: add the columns, or map them"),
        "{text}"
    );
    assert!(
        text.contains("no column \"suggestedprice\"") && text.contains("ADD COLUMN suggestedprice"),
        "{text}"
    );

    let replica = TestPg::start_with(augur_testkit::ClusterOptions {
        wal_level: "replica".into(),
        ..Default::default()
    });
    let rdb = replica.database();
    let (ok, text) = doctor(&rdb.url, &[]);
    assert!(!ok);
    assert!(
        text.contains("✗ wal_level") && text.contains("ALTER SYSTEM SET wal_level = logical"),
        "{text}"
    );
}

/// What `augur run` needs to create — the publication (CREATE on the database) and its tables
/// (CREATE on the output schema) — `doctor` checks first: a user without those privileges
/// fails both, doctor with the GRANT that fixes it.
#[test]
fn doctor_reports_missing_create_privileges_before_run_fails_on_them() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    pg.sql(
        &db,
        "CREATE ROLE limited LOGIN REPLICATION PASSWORD 'limited'; \
         GRANT SELECT ON car_data TO limited; REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    );
    let url = db.url.replacen("postgres:postgres@", "limited:limited@", 1);
    assert!(
        url.starts_with("postgres://limited:limited@127.0.0.1:"),
        "{url}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["doctor", "--source-url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("✗ publication") && text.contains("GRANT CREATE ON DATABASE"),
        "{text}"
    );
    assert!(
        text.contains("✗ CREATE on the output schema") && text.contains("GRANT CREATE ON SCHEMA"),
        "{text}"
    );
    let dir = scratch_dir("run-limited");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "run",
            "--source-url",
            &url,
            "--set",
            "http.listen=",
            "--offsets",
        ])
        .arg(dir.join("offsets.json"))
        .output()
        .unwrap();
    assert!(
        !run.status.success(),
        "augur run started where doctor said it could not: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `model.tag = "ford-price@champion"` runs the version the alias names, not the newest.
#[test]
fn runs_the_version_an_alias_names() {
    let dir = scratch_dir("run-alias");
    let store = augur_model::ModelStore::open(dir.join("store")).unwrap();
    let shipped = augur_model::load_shipped().unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&shipped.to_json()).unwrap();
    let base = doc["forest"]["base_score"].as_f64().unwrap();
    doc["forest"]["base_score"] = serde_json::json!(base + 1.5f64.ln());
    let dearer = augur_model::Model::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let champion = store.save(dearer, Some("ford-price")).unwrap();
    store.save(shipped, Some("ford-price")).unwrap(); // newer, not the champion
    store.set_alias("ford-price@champion", 1).unwrap();

    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    insert_listings(&pg, &db, &listings(30));
    let store_dir = dir.join("store").display().to_string();
    let (p, port) = start(
        &db,
        &[
            "--set",
            "model.tag=ford-price@champion",
            "--set",
            &format!("model.store={store_dir}"),
        ],
    );
    wait_ready(&p, port);
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        30,
        T,
        &p.log(),
    );
    let out = pg.sql(&db, "SELECT c.model, c.year, c.price, c.transmission, c.mileage, c.fueltype, c.tax, c.mpg, c.enginesize, p.suggestedprice FROM car_data c JOIN car_data_predicted p USING (id)");
    for line in out.lines() {
        let f: Vec<String> = line.split('|').map(str::to_string).collect();
        let want = crate::support::pipeline::expected_price(&champion, &f[..9]);
        let got: f64 = f[9].parse().unwrap();
        assert!((got - want).abs() <= 1.0, "{got} vs the champion's {want}");
    }
    assert!(p.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}
