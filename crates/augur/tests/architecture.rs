//! The crate rule of ARCHITECTURE.md, checked on the manifests: components (debezium,
//! postgres, kafka) depend on core only, the libraries (model, metrics) on nothing of augur;
//! composition happens in runtime, and the applications sit on top.

use std::collections::{BTreeMap, BTreeSet};

/// Which augur crates each crate may depend on (normal dependencies, not dev ones).
const ALLOWED: &[(&str, &[&str])] = &[
    ("augur-core", &[]),
    ("augur-model", &[]),
    ("augur-metrics", &[]),
    ("augur-http", &["augur-core"]),
    ("augur-debezium", &["augur-core"]),
    ("augur-postgres", &["augur-core"]),
    ("augur-kafka", &["augur-core"]),
    (
        "augur-serve",
        &["augur-core", "augur-http", "augur-model", "augur-metrics"],
    ),
    (
        "augur-runtime",
        &[
            "augur-core",
            "augur-debezium",
            "augur-http",
            "augur-postgres",
            "augur-kafka",
            "augur-model",
            "augur-metrics",
        ],
    ),
    (
        "augur-connect",
        &["augur-core", "augur-http", "augur-runtime"],
    ),
    (
        "augur-demo",
        &[
            "augur-core",
            "augur-metrics",
            "augur-model",
            "augur-runtime",
        ],
    ),
];

/// The augur crates named in a manifest's `[dependencies]` section.
fn augur_dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_deps = false;
    let mut out = BTreeSet::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && line.starts_with("augur-") {
            let name = line.split(['.', ' ', '=']).next().unwrap_or_default();
            out.insert(name.to_string());
        }
    }
    out
}

#[test]
fn crates_depend_only_as_the_architecture_allows() {
    let root = augur_testkit::workspace_root().join("crates");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        graph.insert(name, augur_dependencies(&manifest));
    }
    assert!(graph.len() >= 13, "crates found: {:?}", graph.keys());
    let mut broken = Vec::new();
    for (name, allowed) in ALLOWED {
        let deps = graph
            .get(*name)
            .unwrap_or_else(|| panic!("no crate {name}"));
        for d in deps {
            if !allowed.contains(&d.as_str()) {
                broken.push(format!("{name} → {d}"));
            }
        }
    }
    // Only the binary and the test/bench crates may depend on the applications.
    for (name, deps) in &graph {
        for app in ["augur-connect", "augur-demo", "augur"] {
            if deps.contains(app)
                && !matches!(name.as_str(), "augur" | "augur-bench" | "augur-testkit")
            {
                broken.push(format!("{name} → {app}"));
            }
        }
        let harness = matches!(name.as_str(), "augur-bench" | "augur-testkit");
        if !harness && (deps.contains("augur-testkit") || deps.contains("augur-bench")) {
            broken.push(format!("{name} → test/bench crate as a normal dependency"));
        }
    }
    assert!(
        broken.is_empty(),
        "edges against ARCHITECTURE.md: {broken:?}"
    );
}

#[test]
fn the_manifest_reader_sees_normal_dependencies_only() {
    let m = "[package]\nname = \"x\"\n[dependencies]\naugur-core.workspace = true\naugur-kafka = { path = \"../k\" }\nserde = \"1\"\n[dev-dependencies]\naugur-testkit.workspace = true\n";
    let got: Vec<String> = augur_dependencies(m).into_iter().collect();
    assert_eq!(got, ["augur-core", "augur-kafka"]);
}
