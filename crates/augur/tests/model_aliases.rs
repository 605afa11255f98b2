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

/// Writes the shipped model with `edit` applied to `dir/name.json`; returns the path.
fn edited_model_file(
    dir: &std::path::Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> String {
    let shipped = augur_testkit::workspace_root().join("models/ford-price/1/model.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shipped).unwrap()).unwrap();
    edit(&mut doc);
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn promote_moves_the_alias_only_past_the_checks_and_compare_shows_the_difference() {
    let dir = scratch_dir("promote-cli");
    let store = dir.join("store").display().to_string();
    let same = edited_model_file(&dir, "same", |_| {});
    let houses = edited_model_file(&dir, "houses", |d| {
        let text = d.to_string().replace("\"mileage\"", "\"houses\"");
        *d = serde_json::from_str(&text).unwrap();
    });
    // 10 % dearer everywhere and a recorded CV MAE 10 % worse.
    let worse = edited_model_file(&dir, "worse", |d| {
        let base = d["forest"]["base_score"].as_f64().unwrap();
        d["forest"]["base_score"] = serde_json::json!(base + 1.1f64.ln());
        let mae = d["meta"]["source"]["cv"]["pooled"]["mae"].as_f64().unwrap();
        d["meta"]["source"]["cv"]["pooled"]["mae"] = serde_json::json!(mae * 1.1);
    });
    for (file, want) in [
        (&same, "ford-price:1"),
        (&houses, "ford-price:2"),
        (&worse, "ford-price:3"),
    ] {
        let (ok, out, err) = augur(&store, &["models", "import", file]);
        assert!(ok && out.trim() == want, "{out}{err}");
    }
    let (ok, _, err) = augur(&store, &["models", "promote", "ford-price:1"]);
    assert!(
        ok && err.contains("ford-price@champion points at version 1"),
        "{err}"
    );

    // Other inputs: refused, even with --force; the alias does not move.
    for force in [false, true] {
        let mut args = vec!["models", "promote", "ford-price:2"];
        if force {
            args.push("--force");
        }
        let (ok, _, err) = augur(&store, &args);
        assert!(!ok, "promoted a model with other inputs");
        assert!(
            err.contains("lacks mileage") && err.contains("wants houses"),
            "{err}"
        );
    }
    // Worse MAE: refused by default, accepted with a wider margin or --force.
    let (ok, _, err) = augur(&store, &["models", "promote", "ford-price:3"]);
    assert!(!ok && err.contains("10.0 % worse"), "{err}");
    assert_eq!(
        predict(&store, "ford-price@champion", ROW),
        predict(&store, "ford-price:1", ROW)
    );
    let (ok, _, err) = augur(
        &store,
        &[
            "models",
            "promote",
            "ford-price:3",
            "--max-mae-increase",
            "0.15",
        ],
    );
    assert!(
        ok && err.contains("now points at version 3 (was 1)"),
        "{err}"
    );
    let (ok, _, err) = augur(
        &store,
        &["models", "promote", "ford-price:1", "--alias", "challenger"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = augur(
        &store,
        &[
            "models",
            "promote",
            "ford-price:3",
            "--alias",
            "challenger",
            "--force",
        ],
    );
    assert!(
        ok && err.contains("ford-price@challenger now points at version 3"),
        "{err}"
    );
    let (ok, _, err) = augur(
        &store,
        &["models", "promote", "ford-price:1", "--max-mae-increase=-1"],
    );
    assert!(!ok && err.contains(">= 0"), "{err}");

    // Compare: metrics side by side, prices on a sample of the data.
    let data = augur_testkit::workspace_root().join("data/ford.csv");
    let data = data.display().to_string();
    let (ok, out, err) = augur(
        &store,
        &[
            "models",
            "compare",
            "ford-price:1",
            "ford-price@champion",
            "--data",
            &data,
            "--sample",
            "200",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("cv MAE") && out.contains("ford-price:3"),
        "{out}"
    );
    assert!(out.contains("inputs           the same"), "{out}");
    assert!(out.contains("priced by both:        200"), "{out}");
    assert!(
        out.contains("differ by more than 5 %: 200 (100.0 %)"),
        "{out}"
    );
    let (ok, out, err) = augur(
        &store,
        &[
            "models",
            "compare",
            "ford-price:1",
            "ford-price:2",
            "--data",
            &data,
            "--sample",
            "50",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("differ: it lacks mileage; it wants houses"),
        "{out}"
    );
    assert!(
        out.contains("no row was priced by both models (50 by one only)"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `augur predict` prints each price with its range; `--explain` adds the baseline and the
/// fields' effects, which sum to the price minus the baseline; bad rows still get their error.
#[test]
fn predict_prints_ranges_and_explains_on_request() {
    let dir = scratch_dir("predict-explain");
    let store = dir.join("store").display().to_string();
    let shipped = augur_testkit::workspace_root().join("models/ford-price/1/model.json");
    let (ok, _, err) = augur(
        &store,
        &["models", "import", &shipped.display().to_string()],
    );
    assert!(ok, "{err}");
    let plain: serde_json::Value =
        serde_json::from_str(&predict(&store, "ford-price", ROW)).unwrap();
    let price = plain["prediction"].as_f64().unwrap();
    let range = plain["range"].as_array().unwrap();
    assert!(
        range[0].as_f64().unwrap() < price && price < range[1].as_f64().unwrap(),
        "{plain}"
    );
    assert!(plain.get("contributions").is_none());

    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["predict", "--explain"])
        .env("AUGUR_MODEL_STORE", &store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            let input = format!("{ROW}{{\"model\":\"Focus\",\"year\":\"old\"}}\n");
            c.stdin.take().unwrap().write_all(input.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let e = &lines[0];
    assert_eq!(e["prediction"].as_f64().unwrap(), price);
    let effects: f64 = e["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["effect"].as_f64().unwrap())
        .sum();
    let baseline = e["baseline"].as_f64().unwrap();
    assert!((effects - (price - baseline)).abs() < 0.05, "{e}");
    assert_eq!(e["contributions"].as_array().unwrap().len(), 8);
    assert_eq!(lines[1]["field"], "year");
    let _ = std::fs::remove_dir_all(&dir);
}
