//! TLS to PostgreSQL: a cluster started with `ssl = on`, certificates made at test time and a
//! `hostssl`-only `pg_hba.conf`. `augur capture` and `augur run` (capture, SQL and sink
//! connections) work with `verify-full`, client-certificate authentication works, and each
//! misconfiguration fails at once with one clear line.

use std::path::PathBuf;
use std::time::Duration;

use augur_testkit::tls::TestCa;
use augur_testkit::{ClusterOptions, TestDb, TestPg};

use crate::support::pipeline::{
    CAR_DATA, Proc, assert_predicted_table, insert_listings, listings, wait_count,
};
use crate::support::{self, Capture};

const T: Duration = Duration::from_secs(60);

/// Only TLS is admitted; `certuser` must show a client certificate, everyone else a password.
const HBA: &str = "\
hostssl all certuser 127.0.0.1/32 cert
hostssl replication certuser 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl replication all 127.0.0.1/32 scram-sha-256
";

struct TlsServer {
    pg: TestPg,
    dir: PathBuf,
    /// The CA that signed the server's certificate (valid for `localhost` only).
    ca: PathBuf,
    /// `certuser`'s certificate and key.
    client: (PathBuf, PathBuf),
    /// The same key, encrypted with the password `key-pw-4411`.
    encrypted_key: String,
}

fn tls_server() -> TlsServer {
    let ca = TestCa::new("augur test CA");
    let server = ca.server(&["localhost"]);
    let dir = support::scratch_dir("pgtls");
    let ca_path = ca.write(&dir, "ca.pem");
    let client_pem = ca.client("certuser");
    let encrypted_key = client_pem.encrypted_key("key-pw-4411");
    let client = client_pem.write(&dir, "certuser");
    let pg = TestPg::start_with(ClusterOptions {
        extra_conf: vec![
            "ssl = on".into(),
            "ssl_cert_file = 'server.crt'".into(),
            "ssl_key_file = 'server.key'".into(),
            "ssl_ca_file = 'root.crt'".into(),
        ],
        files: vec![
            ("server.crt".into(), server.cert.into_bytes()),
            ("server.key".into(), server.key.into_bytes()),
            ("root.crt".into(), ca.cert_pem().into_bytes()),
        ],
        hba: Some(HBA.into()),
        ..Default::default()
    });
    pg.cluster
        .psql("postgres", "CREATE ROLE certuser LOGIN SUPERUSER")
        .unwrap();
    TlsServer {
        pg,
        dir,
        ca: ca_path,
        client,
        encrypted_key,
    }
}

fn props(db: &TestDb, dir: &std::path::Path, set: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p = support::connector_props(db, "tls");
    p.push((
        "offset.storage.file.filename".into(),
        dir.join(format!("{}.json", db.name)).display().to_string(),
    ));
    p.push(("table.include.list".into(), "public.car_data".into()));
    for (k, v) in set {
        p.retain(|(key, _)| key != k);
        p.push((k.to_string(), v.to_string()));
    }
    p
}

/// `(connections, of which without TLS)` among augur's connections to the server.
fn augur_connections(pg: &TestPg, db: &TestDb) -> (usize, usize) {
    let out = pg.sql(
        db,
        "SELECT count(*), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s USING (pid) WHERE a.application_name LIKE 'augur%'",
    );
    let mut it = out.trim().split('|').map(|v| v.parse::<usize>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn capture_and_run_work_over_verify_full_and_every_connection_is_encrypted() {
    let s = tls_server();
    let pg = &s.pg;
    let ca = s.ca.display().to_string();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let rows = listings(80);
    insert_listings(pg, &db, &rows[..50]);
    let p = props(
        &db,
        &s.dir,
        &[
            ("database.hostname", "localhost"),
            ("database.sslmode", "verify-full"),
            ("database.sslrootcert", &ca),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    cap.wait_lines(50, T);
    insert_listings(pg, &db, &rows[50..60]);
    let lines = cap.wait_lines(60, T);
    assert_eq!(lines.len(), 60);
    let (n, plain) = augur_connections(pg, &db);
    assert!(n >= 1 && plain == 0, "{n} connections, {plain} without TLS");
    assert!(cap.stop().0.success());

    let run_db = pg.database();
    pg.sql(&run_db, CAR_DATA);
    insert_listings(pg, &run_db, &rows[..50]);
    let url = format!(
        "postgres://postgres:postgres@localhost:{}/{}?sslmode=verify-full&sslrootcert={ca}",
        run_db.port, run_db.name
    );
    let port = augur_pgcluster::free_port().unwrap();
    let dir = support::scratch_dir("pgtls-run");
    let offsets = dir.join("offsets.json").display().to_string();
    let listen = format!("127.0.0.1:{port}");
    let run = Proc::start(
        "run-tls",
        &[
            "run",
            "--source-url",
            &url,
            "--listen",
            &listen,
            "--offsets",
            &offsets,
        ],
    );
    let count = "SELECT count(*) FROM car_data_predicted";
    wait_count(pg, &run_db, count, 50, T, &run.log());
    insert_listings(pg, &run_db, &rows[50..]);
    wait_count(pg, &run_db, count, 80, T, &run.log());
    assert_predicted_table(pg, &run_db, "car_data_predicted");
    let (n, plain) = augur_connections(pg, &run_db);
    assert!(n >= 2 && plain == 0, "{n} connections, {plain} without TLS");
    assert!(run.stop().success());
}

#[test]
fn client_certificates_and_allow_mode_connect() {
    let s = tls_server();
    let pg = &s.pg;
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    insert_listings(pg, &db, &listings(5));
    let (cert, key) = (
        s.client.0.display().to_string(),
        s.client.1.display().to_string(),
    );
    let ca = s.ca.display().to_string();
    let p = props(
        &db,
        &s.dir,
        &[
            ("database.hostname", "localhost"),
            ("database.user", "certuser"),
            ("database.password", ""),
            ("database.sslmode", "verify-full"),
            ("database.sslrootcert", &ca),
            ("database.sslcert", &cert),
            ("database.sslkey", &key),
            ("slot.name", "by_cert"),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    assert_eq!(cap.wait_lines(5, T).len(), 5);
    assert!(cap.stop().0.success());

    // The same key encrypted (PKCS#8), opened with `sslpassword` on both connections.
    let encrypted = s.dir.join("certuser-encrypted.key");
    std::fs::write(&encrypted, &s.encrypted_key).unwrap();
    let encrypted = encrypted.display().to_string();
    let offsets = s.dir.join("encrypted.json").display().to_string();
    let mut p = p.clone();
    p.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "database.sslkey" | "slot.name" | "offset.storage.file.filename"
        )
    });
    p.extend([
        ("database.sslkey".to_string(), encrypted),
        (
            "database.sslpassword".to_string(),
            "key-pw-4411".to_string(),
        ),
        ("slot.name".to_string(), "by_encrypted_key".to_string()),
        ("offset.storage.file.filename".to_string(), offsets),
    ]);
    let mut cap = Capture::start(&p, &["--stdout"]);
    assert_eq!(cap.wait_lines(5, T).len(), 5);
    let (status, stderr) = cap.stop();
    assert!(status.success());
    assert!(!stderr.contains("key-pw-4411"), "{stderr}");

    // `allow` starts without TLS, is refused by hostssl, and connects with TLS.
    let offsets = s.dir.join("allow.json").display().to_string();
    let p = props(
        &db,
        &s.dir,
        &[
            ("database.sslmode", "allow"),
            ("slot.name", "by_allow"),
            ("offset.storage.file.filename", &offsets),
        ],
    );
    let mut cap = Capture::start(&p, &["--stdout"]);
    assert_eq!(cap.wait_lines(5, T).len(), 5);
    assert!(cap.stop().0.success());
}

/// Runs capture with `set`, expects it to stop at once with `needle` in one line of stderr.
fn fails_with(db: &TestDb, dir: &std::path::Path, set: &[(&str, &str)], needle: &str) {
    let cap = Capture::start(&props(db, dir, set), &["--stdout"]);
    let (status, stderr) = cap.wait_exit(T);
    assert!(!status.success(), "expected a failure:\n{stderr}");
    let line = stderr.lines().find(|l| l.contains(needle));
    assert!(line.is_some(), "stderr lacks {needle:?}:\n{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("postgres:postgres"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("retrying"),
        "a TLS misconfiguration is not retried:\n{stderr}"
    );
}

#[test]
fn each_tls_misconfiguration_fails_with_one_clear_line() {
    let s = tls_server();
    let pg = &s.pg;
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE car_data (id int PRIMARY KEY)");
    let ca = s.ca.display().to_string();
    let other_ca = TestCa::new("another CA").write(&s.dir, "other-ca.pem");
    let other_ca = other_ca.display().to_string();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[
                ("database.hostname", "localhost"),
                ("database.sslmode", "verify-ca"),
                ("database.sslrootcert", &other_ca),
            ],
            "is not signed by a CA in sslrootcert",
        ),
        (
            &[
                ("database.sslmode", "verify-full"),
                ("database.sslrootcert", &ca),
            ],
            "does not name the host connected to",
        ),
        (&[("database.sslmode", "disable")], "only over TLS"),
        (
            &[
                ("database.user", "certuser"),
                ("database.sslmode", "require"),
            ],
            "refused the client certificate",
        ),
        (
            &[
                ("database.sslmode", "verify-full"),
                ("database.sslrootcert", "/nonexistent/ca.pem"),
            ],
            "cannot read sslrootcert \"/nonexistent/ca.pem\"",
        ),
    ];
    for (set, needle) in cases {
        fails_with(&db, &s.dir, set, needle);
    }

    let plain = TestPg::start();
    let db = plain.database();
    plain.sql(&db, "CREATE TABLE car_data (id int PRIMARY KEY)");
    fails_with(
        &db,
        &s.dir,
        &[("database.sslmode", "require")],
        "does not accept TLS",
    );
}
