//! What the Debian package installs: the systemd unit passes `systemd-analyze verify` (with
//! `ExecStart` pointed at the binary under test), and `/etc/augur/augur.toml` is exactly the
//! documented default config (`augur run --print-config`); the package that `scripts/test` builds
//! and installs works from `/` with nothing of the repository around it.

use std::process::Command;
use std::time::Duration;

use crate::support::pipeline::{CAR_DATA, Proc, insert_listings, listings, wait_count};

fn repo(path: &str) -> std::path::PathBuf {
    augur_testkit::workspace_root().join(path)
}

#[test]
fn the_systemd_unit_verifies_and_runs_augur_run_hardened() {
    let unit = std::fs::read_to_string(repo("packaging/augur.service")).unwrap();
    for line in [
        "ExecStart=/usr/bin/augur run --config /etc/augur/augur.toml",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(line), "no {line:?} in the unit");
    }
    let dir = crate::support::scratch_dir("unit");
    let local = dir.join("augur.service");
    std::fs::write(
        &local,
        unit.replace("/usr/bin/augur", env!("CARGO_BIN_EXE_augur")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .expect("systemd-analyze (Debian's systemd) is needed for this test");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_packaged_config_is_the_documented_default() {
    let packaged = std::fs::read_to_string(repo("packaging/augur.toml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["run", "--print-config"])
        .output()
        .unwrap();
    assert_eq!(
        packaged,
        String::from_utf8_lossy(&out.stdout),
        "packaging/augur.toml differs from `augur run --print-config`: regenerate it"
    );
}

/// The installed binary, as `scripts/test` leaves it: it builds the package with `cargo deb`,
/// installs it with `dpkg -i` and names the binary in `AUGUR_INSTALLED_BIN`. Without it (a
/// developer running one test) the test says so and passes; under CI it must be there.
fn installed_bin() -> Option<std::path::PathBuf> {
    match std::env::var_os("AUGUR_INSTALLED_BIN") {
        Some(b) => Some(b.into()),
        None => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI checks the installed package: run the suite through scripts/test"
            );
            eprintln!("AUGUR_INSTALLED_BIN is not set: the installed package is not checked");
            None
        }
    }
}

/// `bin <args>` started from `/` with nothing of the repository around it: an empty home, no
/// `AUGUR_*` settings, stderr to a log file.
fn installed(bin: &std::path::Path, home: &std::path::Path, args: &[&str], log: &str) -> Proc {
    let log = home.join(log);
    let child = Command::new(bin)
        .args(args)
        .current_dir("/")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AUGUR_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Proc(child, log.display().to_string())
}

fn wait_for(what: &str, p: &Proc, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the package put on the machine: the binary, the conffile (the documented default) and
/// the unit (verifying against the real `/usr/bin/augur`).
#[test]
fn the_installed_package_has_the_binary_the_config_and_a_valid_unit() {
    let Some(bin) = installed_bin() else { return };
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("augur "));
    assert_eq!(
        std::fs::read_to_string("/etc/augur/augur.toml").unwrap(),
        std::fs::read_to_string(repo("packaging/augur.toml")).unwrap()
    );
    let out = Command::new("systemd-analyze")
        .args(["verify", "/usr/lib/systemd/system/augur.service"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// From `/`, with an empty home: `doctor` and a short `run` on the packaged config, `serve`
/// answering `/predict` with the model compiled in, and the demo answering its page.
#[test]
fn the_installed_binary_runs_doctor_run_serve_and_demo_from_the_root_directory() {
    let Some(bin) = installed_bin() else { return };
    let home = crate::support::scratch_dir("installed-home");
    let pg = augur_testkit::TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    insert_listings(&pg, &db, &listings(20));

    let config = ["--config", "/etc/augur/augur.toml", "--source-url", &db.url];
    let out = Command::new(&bin)
        .arg("doctor")
        .args(config)
        .current_dir("/")
        .env_clear()
        .env("HOME", &home)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("all checks passed"),
        "{text}"
    );

    let port = augur_pgcluster::free_port().unwrap().to_string();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["run"];
    args.extend(config);
    args.extend(["--listen", &listen]);
    let run = installed(&bin, &home, &args, "run.log");
    insert_listings(&pg, &db, &listings(30)[20..]);
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        30,
        Duration::from_secs(90),
        &run.log(),
    );
    assert!(run.stop().success());

    let port = augur_pgcluster::free_port().unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let serve = installed(
        &bin,
        &home,
        &["serve", "--listen", &addr.to_string()],
        "serve.log",
    );
    let mut answer = None;
    wait_for("serve answering", &serve, || {
        if std::net::TcpStream::connect(addr).is_err() {
            return false;
        }
        answer = Some(augur_testkit::http::request(
            addr,
            "POST",
            "/predict",
            CAR.as_bytes(),
        ));
        true
    });
    let answer = answer.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.text());
    let price = answer.text().trim().parse::<f64>();
    assert!(price.is_ok_and(|p| p > 1000.0), "{}", answer.text());
    assert!(serve.stop().success());

    let port = augur_pgcluster::free_port().unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let demo = installed(
        &bin,
        &home,
        &["demo", "--listen", &addr.to_string()],
        "demo.log",
    );
    wait_for("the demo page", &demo, || {
        demo.log().contains("augur demo: open")
    });
    let page = augur_testkit::http::get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"), "{}", page.text());
    let log = demo.log();
    assert!(demo.stop().success(), "{log}");
}

/// The example body of the original service.
const CAR: &str = r#"{"model":" Fiesta","year":2017,"transmission":"Automatic","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#;
