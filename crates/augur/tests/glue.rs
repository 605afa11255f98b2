//! The original stack's Python stream script, unchanged, between augur's capture, model server
//! and Confluent JDBC sink: it writes a float price into a field the record's schema declares
//! int32, and the table must hold what Kafka's JsonConverter makes of it (Jackson's
//! `intValue()`: the price truncated), exactly as the original stack stores it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use augur_testkit::{Tansu, TestPg, workspace_root};

use crate::kafka_path::capture_args;
use crate::support::pipeline::{
    CAR_DATA, Proc, assert_predicted_table_as, insert_listings, listings, wait_count,
};
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(120);

/// The original sink settings, deletes off (Confluent's sink allows them only with
/// `pk.mode=record_key`; the flattened stream drops deletes anyway).
fn sink_config(db: &augur_testkit::TestDb) -> String {
    let mut cfg: serde_json::Value =
        serde_json::from_str(&crate::kafka_path::sink_config(db)).unwrap();
    cfg["config"]
        .as_object_mut()
        .unwrap()
        .remove("delete.enabled");
    cfg.to_string()
}

/// `augur serve` on a free port, once it answers `/readyz`.
fn serve() -> (Proc, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = scratch_dir("glue-store");
    let p = Proc::start(
        "glue-serve",
        &[
            "serve",
            "--port",
            &port.to_string(),
            "--store",
            &store.display().to_string(),
        ],
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = || {
        std::net::TcpStream::connect(addr).is_ok()
            && augur_testkit::http::get(addr, "/readyz").status == 200
    };
    while !ready() {
        assert!(Instant::now() < deadline, "serve not ready:\n{}", p.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    (p, format!("http://127.0.0.1:{port}"))
}

/// The stream script under python3, with kafka-python from the test script's cache.
fn stream_script(bootstrap: &str, bentoml: &str) -> (Child, String) {
    let lib = workspace_root().join(".cache/pyglue");
    assert!(
        lib.join("kafka").is_dir(),
        "kafka-python is not installed: run scripts/test (it installs it into .cache/pyglue)"
    );
    let log = scratch_dir("glue-script").join("stream.log");
    let script = workspace_root().join("crates/augur/tests/fixtures/glue/stream.py");
    let child = Command::new("python3")
        .arg(script)
        .env("PYTHONPATH", lib)
        .env("KAFKA_BOOTSTRAP", bootstrap)
        .env("BENTOML_URL", bentoml)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .unwrap();
    (child, log.with_extension("err").display().to_string())
}

/// What the original stack stores: the BentoML answer (cents) truncated by `intValue()`.
fn truncated_cents(p: f64) -> i64 {
    ((p * 100.0).round() / 100.0).trunc() as i64
}

#[test]
fn the_original_stream_script_feeds_the_confluent_sink_as_in_the_original_stack() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let dir = scratch_dir("glue");
    let offsets = dir.join("offsets.json").display().to_string();
    let args = capture_args(&db, &broker.bootstrap(), &offsets, "1");
    let mut cargs = vec!["capture"];
    cargs.extend(args.iter().map(String::as_str));
    let capture = Proc::start("glue-capture", &cargs);
    let (serve, url) = serve();
    let (mut script, script_log) = stream_script(&broker.bootstrap(), &url);
    let sink_file = dir.join("sink.json");
    std::fs::write(&sink_file, sink_config(&db)).unwrap();
    let sink_file = sink_file.display().to_string();
    let bootstrap = broker.bootstrap();
    let sink = Proc::start(
        "glue-sink",
        &["sink", "--kafka", &bootstrap, "--config", &sink_file],
    );
    let rows = listings(500);
    insert_listings(&pg, &db, &rows);
    let logs = || {
        format!(
            "capture:\n{}\nscript:\n{}\nsink:\n{}",
            capture.log(),
            std::fs::read_to_string(&script_log).unwrap_or_default(),
            sink.log()
        )
    };
    let count = "SELECT count(*) FROM car_data_predicted";
    wait_count(&pg, &db, count, 500, T, &format!("sink rows\n{}", logs()));
    // Updates go the same way.
    pg.sql(
        &db,
        "UPDATE car_data SET mileage = mileage + 40000 WHERE id <= 25",
    );
    let updated = "SELECT count(*) FROM car_data s JOIN car_data_predicted p USING (id) \
                   WHERE s.id <= 25 AND s.mileage = p.mileage";
    wait_count(&pg, &db, updated, 25, T, &format!("updates\n{}", logs()));
    std::thread::sleep(Duration::from_millis(500));
    assert_predicted_table_as(&pg, &db, "car_data_predicted", truncated_cents);
    let _ = script.kill();
    let _ = script.wait();
    let all = logs();
    assert!(sink.stop().success(), "{all}");
    assert!(serve.stop().success());
    assert!(capture.stop().success());
}
