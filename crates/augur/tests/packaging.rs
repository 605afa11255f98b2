//! What the Debian package installs: the systemd unit passes `systemd-analyze verify` (with
//! `ExecStart` pointed at the binary under test), and `/etc/augur/augur.toml` is exactly the
//! documented default config (`augur run --print-config`).

use std::process::Command;

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
