//! Records the git commit the worker was built from, for `GET /` (`commit`), as Kafka Connect
//! reports its own. Falls back to `unknown` outside a git checkout.

use std::process::Command;

fn main() {
    let root = std::path::Path::new("../..");
    for p in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        let path = root.join(p);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=16", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=AUGUR_GIT_COMMIT={commit}");
}
