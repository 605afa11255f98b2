//! The listing page in a real browser (headless Debian Chromium driven by playwright-core):
//! a seller submits a car and sees its suggested price within 2 seconds; an invalid listing
//! shows a clear message and inserts nothing.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::pipeline::Proc;

fn node_modules() -> PathBuf {
    augur_testkit::workspace_root().join(".cache/node/node_modules")
}

#[test]
fn a_seller_lists_a_car_and_sees_the_price_within_two_seconds() {
    assert!(
        node_modules().join("playwright-core").exists()
            && PathBuf::from("/usr/bin/chromium").exists(),
        "the browser test needs Debian's chromium and playwright-core: run scripts/test (it installs both)"
    );
    let port = augur_pgcluster::free_port().unwrap();
    let demo = Proc::start(
        "demo-browser",
        &["demo", "--listen", &format!("127.0.0.1:{port}")],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !demo.log().contains("augur demo: open") {
        assert!(
            Instant::now() < deadline,
            "demo did not start:\n{}",
            demo.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/demo.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .env("NODE_PATH", node_modules())
        .current_dir(augur_testkit::workspace_root().join(".cache/node"))
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| {
            panic!(
                "browser script output: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(result["ok"], true, "{result}\n{}", demo.log());
    let seconds = result["seconds"].as_f64().unwrap();
    assert!(seconds <= 2.0, "price appeared after {seconds} s");
    // The price shown is the shipped model's price for the submitted car.
    let model = augur_model::load_shipped().unwrap();
    let row: Vec<String> = [
        " Focus", "2018", "0", "Manual", "9083", "Petrol", "150", "57.7", "1.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let want = crate::support::pipeline::expected_price(&model, &row).round() as i64;
    let shown: i64 = result["price"]
        .as_str()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
    assert_eq!(shown, want);
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("year must be between"), "{error}");
    assert_eq!(
        result["inserted_after_error"], 0,
        "the invalid listing inserted nothing"
    );
    assert!(demo.stop().success());
}

/// `DATABASE_URL` in the environment is not followed: the demo starts its own cluster, says
/// which database it uses, and writes nothing into the database `DATABASE_URL` names.
#[test]
fn the_demo_never_writes_into_the_database_of_database_url() {
    use std::io::{BufRead, BufReader};
    let pg = augur_testkit::TestPg::start();
    let db = pg.database();
    let port = augur_pgcluster::free_port().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("augur demo: open") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(said.contains("DATABASE_URL is set but not used"), "{said}");
    assert!(said.contains("(private, removed on exit)"), "{said}");
    let tables = pg.sql(
        &db,
        "SELECT count(*) FROM pg_tables WHERE tablename = 'car_data'",
    );
    assert_eq!(tables.trim(), "0", "{said}");
}
