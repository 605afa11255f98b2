//! Model aliases and never-reused versions through the CLI: `augur models alias set`, then
//! `name@alias` wherever a tag is accepted (`predict`, `serve`), and a deleted version's number
//! never handed out again.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::scratch_dir;

fn augur(store: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(args)
        .env("AUGUR_MODEL_STORE", store)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn predict(store: &str, tag: &str, row: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["predict", "--model", tag])
        .env("AUGUR_MODEL_STORE", store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(row.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const ROW: &str = r#"{"model":"Fiesta","year":2017,"price":9000,"transmission":"Manual","mileage":20000,"fuelType":"Petrol","tax":145,"mpg":55.4,"engineSize":1.0}
"#;

#[test]
fn aliases_resolve_everywhere_and_versions_are_never_reused() {
    let dir = scratch_dir("aliases");
    let store = dir.join("store").display().to_string();
    let shipped = augur_testkit::workspace_root().join("models/ford-price/1/model.json");
    let shipped = shipped.display().to_string();
    for want in ["ford-price:1", "ford-price:2", "ford-price:3"] {
        let (ok, out, err) = augur(&store, &["models", "import", &shipped]);
        assert!(ok && out.trim() == want, "{out}{err}");
    }
    let (ok, _, err) = augur(
        &store,
        &["models", "alias", "set", "ford-price@champion", "2"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = augur(
        &store,
        &["models", "alias", "set", "ford-price@champion", "9"],
    );
    assert!(!ok && err.contains("ford-price:9"), "{err}");
    let (_, list, _) = augur(&store, &["models", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("ford-price:2") && l.ends_with("champion")),
        "{list}"
    );

    let by_alias = predict(&store, "ford-price@champion", ROW);
    assert_eq!(by_alias, predict(&store, "ford-price:2", ROW));
    let v: serde_json::Value = serde_json::from_str(&by_alias).unwrap();
    assert!(
        v["prediction"].as_f64().is_some_and(|p| p > 1000.0),
        "{by_alias}"
    );
    let (ok, _, err) = augur(&store, &["models", "show", "ford-price@nope"]);
    assert!(!ok && err.contains("ford-price@nope"), "{err}");

    // Deleting a version frees neither its number nor keeps its aliases.
    let (ok, _, err) = augur(&store, &["models", "delete", "ford-price@champion"]);
    assert!(ok && err.contains("ford-price:2"), "{err}");
    let (ok, _, _) = augur(&store, &["models", "show", "ford-price@champion"]);
    assert!(!ok, "the alias went with its version");
    augur(&store, &["models", "delete", "ford-price:3"]);
    let (ok, out, err) = augur(&store, &["models", "import", &shipped]);
    assert!(ok && out.trim() == "ford-price:4", "{out}{err}");

    // `serve` takes an alias as its model.
    augur(
        &store,
        &["models", "alias", "set", "ford-price@challenger", "4"],
    );
    let port = augur_pgcluster::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args([
            "serve",
            "--listen",
            &listen,
            "--model",
            "ford-price@challenger",
        ])
        .env("AUGUR_MODEL_STORE", &store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = ([127, 0, 0, 1], port).into();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let served = loop {
        if std::net::TcpStream::connect(addr).is_ok() {
            let r = augur_testkit::http::get(addr, "/admin/model");
            if r.status == 200 {
                break r.json();
            }
        }
        assert!(std::time::Instant::now() < deadline, "serve did not answer");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(served["model"], "ford-price:4", "{served}");
}
