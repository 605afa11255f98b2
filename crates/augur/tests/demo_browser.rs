//! The listing page in a real browser (headless Debian Chromium driven by playwright-core):
//! a seller submits a car and sees its suggested price, range, three reasons and comparable
//! listings within 2 seconds; an invalid listing shows every problem at once and inserts
//! nothing; operator figures live on the operator view.

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
    let data = augur_testkit::workspace_root().join("data/ford.csv");
    let demo = Proc::start(
        "demo-browser",
        &[
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data",
            &data.display().to_string(),
        ],
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
    eprintln!("browser: {result}");
    assert_eq!(result["operator_status"], "Streaming");
    assert_eq!(
        result["operator_figures_on_seller_page"], 0,
        "operator figures on the seller page"
    );
    let models = result["suggested_models"].as_array().unwrap();
    assert!(
        models.iter().any(|m| m == "Focus") && models.len() >= 10,
        "{models:?}"
    );
    assert_eq!(
        result["prefilled"],
        serde_json::json!({"tax": "", "mpg": "", "year": ""}),
        "the form is prefilled with another car's values"
    );
    let seconds = result["seconds"].as_f64().unwrap();
    assert!(
        seconds <= 2.0,
        "price, range, reasons and comparables after {seconds} s"
    );
    // The price shown is the shipped model's price for the submitted car ("focus" is the known
    // model " Focus").
    let model = augur_model::load_shipped().unwrap();
    let row: Vec<String> = [
        " Focus", "2018", "20000", "Manual", "9083", "Petrol", "150", "57.7", "1.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let price = crate::support::pipeline::expected_price(&model, &row);
    let digits = |v: &serde_json::Value| -> i64 {
        v.as_str()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    assert_eq!(digits(&result["price"]), price.round() as i64);
    let (lo, hi) = model.range(price).unwrap();
    let range = result["range"].as_str().unwrap();
    for bound in [lo, hi] {
        let shown = format!("£{}", thousands(bound.round() as i64));
        assert!(range.contains(&shown), "{range} lacks {shown}");
    }
    let reasons = result["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 3);
    for r in reasons {
        let r = r.as_str().unwrap();
        assert!(
            r.contains(" raises it by £") || r.contains(" lowers it by £"),
            "{r}"
        );
    }
    let asking = result["asking"].as_str().unwrap();
    assert!(
        asking.contains("above the typical range for this car"),
        "{asking}"
    );
    let comparables = result["comparables"].as_array().unwrap();
    assert_eq!(comparables.len(), 5, "{comparables:?}");
    for c in comparables {
        assert_eq!(c[0], "Focus", "{c}");
        let year: i64 = c[1].as_str().unwrap().parse().unwrap();
        assert!((2015..=2021).contains(&year), "{c}");
    }
    // Every problem at once, next to its field.
    let errors = &result["field_errors"];
    assert!(
        errors["year"].as_str().unwrap().contains("between"),
        "{errors}"
    );
    assert!(
        errors["mpg"].as_str().unwrap().contains("required"),
        "{errors}"
    );
    assert_eq!(errors["model"], "", "{errors}");
    assert!(
        result["error"].as_str().unwrap().contains("2 fields"),
        "{result}"
    );
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

/// 12345 → "12,345".
fn thousands(n: i64) -> String {
    let d = n.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
