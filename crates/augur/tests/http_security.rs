//! HTTPS and authentication on augur's HTTP servers: `augur serve` with `--tls-cert`/`--tls-key`
//! and an API token (bearer; probes open, 401 with a challenge otherwise, admin endpoints
//! behind it), `augur connect` with HTTPS and HTTP Basic users from a file (as Kafka
//! Connect's `BasicAuthSecurityRestExtension`), and `augur run`'s metrics port over HTTPS.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use augur_testkit::http::{Conn, Resp};
use augur_testkit::tls::TestCa;
use augur_testkit::{Tansu, TestPg};
use base64::Engine as _;

use crate::support::pipeline::Proc;
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(60);

/// The CA's PEM and the server certificate and key files (valid for `localhost`).
fn certificates(dir: &Path) -> (String, String, String) {
    let ca = TestCa::new("augur http CA");
    let (cert, key) = ca.server(&["localhost"]).write(dir, "server");
    (
        ca.cert_pem(),
        cert.display().to_string(),
        key.display().to_string(),
    )
}

/// Waits until `path` answers over TLS (any status) and returns that answer.
fn wait_tls(addr: SocketAddr, ca: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let deadline = Instant::now() + T;
    loop {
        if std::net::TcpStream::connect(addr).is_ok()
            && let Ok(mut c) = Conn::open_tls(addr, "localhost", ca)
        {
            return c.request("GET", path, headers, b"");
        }
        assert!(Instant::now() < deadline, "{path} never answered over TLS");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tls_request(
    addr: SocketAddr,
    ca: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let mut c = Conn::open_tls(addr, "localhost", ca).expect("TLS handshake");
    c.request(method, path, headers, body.as_bytes())
}

/// A plain-text request to a TLS port gets no HTTP answer.
fn plain_http_gets_nothing(addr: SocketAddr) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        !String::from_utf8_lossy(&buf).contains("HTTP/1.1 200"),
        "plain HTTP was answered"
    );
}

const ROW: &str = r#"[{"model":"Fiesta","year":2017,"price":9000,"transmission":"Manual","mileage":20000,"fuelType":"Petrol","tax":145,"mpg":55.4,"engineSize":1.0}]"#;

#[test]
fn serve_over_https_with_an_api_token() {
    let dir = scratch_dir("https-serve");
    let (ca, cert, key) = certificates(&dir);
    let token = "tok-3b9d1f0c-serve";
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let port = augur_pgcluster::free_port().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let listen = addr.to_string();
    let serve = Proc::start(
        "https-serve",
        &[
            "serve",
            "--listen",
            &listen,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--api-token-file",
            &token_file.display().to_string(),
        ],
    );
    let ready = wait_tls(addr, &ca, "/readyz", &[]);
    assert_eq!(ready.status, 200, "probes need no token: {}", ready.text());
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];

    let r = tls_request(addr, &ca, "POST", "/predict", &[], ROW);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"augur\""));
    let wrong = [("authorization", "Bearer tok-3b9d1f0c-servf")];
    assert_eq!(
        tls_request(addr, &ca, "POST", "/predict", &wrong, ROW).status,
        401
    );
    let r = tls_request(addr, &ca, "POST", "/predict", &auth, ROW);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()[0].as_f64().is_some_and(|p| p > 1000.0),
        "{}",
        r.text()
    );
    for path in [
        "/metrics",
        "/v2/models/ford-price",
        "/docs.json",
        "/no/such/route",
    ] {
        assert_eq!(
            tls_request(addr, &ca, "GET", path, &[], "").status,
            401,
            "{path}"
        );
    }
    // Admin endpoints take the API token when no admin token is set, loopback or not.
    assert_eq!(
        tls_request(addr, &ca, "GET", "/admin/model", &[], "").status,
        403
    );
    assert_eq!(
        tls_request(addr, &ca, "GET", "/admin/model", &auth, "").status,
        200
    );

    plain_http_gets_nothing(addr);
    let other = TestCa::new("not the server's CA").cert_pem();
    let e = Conn::open_tls(addr, "localhost", &other).unwrap_err();
    assert!(
        e.contains("UnknownIssuer") || e.contains("certificate"),
        "{e}"
    );
    let log = serve.log();
    assert!(!log.contains(token), "the token reached the log:\n{log}");
    assert!(serve.stop().success());
}

#[test]
fn serve_refuses_bad_tls_files_with_the_file_named() {
    let dir = scratch_dir("https-bad");
    let (_, cert, _) = certificates(&dir);
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();
    let junk = junk.display().to_string();
    let out = crate::support::augur()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &junk,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("junk.pem") && err.contains("private key"),
        "{err}"
    );
    let out = crate::support::augur()
        .args(["serve", "--tls-cert", &cert])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

fn basic(user: &str, password: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

#[test]
fn connect_over_https_with_basic_authentication() {
    let dir = scratch_dir("https-connect");
    let (ca, cert, key) = certificates(&dir);
    let password = "pw-rest-61aa0b";
    let creds = dir.join("credentials.properties");
    std::fs::write(
        &creds,
        format!("# REST users\nadmin: {password}\nreader=other-pw\n"),
    )
    .unwrap();
    let broker = Tansu::start();
    let port = augur_pgcluster::free_port().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let listen = addr.to_string();
    let worker = Proc::start(
        "https-connect",
        &[
            "connect",
            "--kafka",
            &broker.bootstrap(),
            "--listen",
            &listen,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--rest-auth-file",
            &creds.display().to_string(),
        ],
    );
    let health = wait_tls(addr, &ca, "/health", &[]);
    assert_eq!(
        health.status,
        200,
        "GET /health needs no credentials: {}",
        health.text()
    );
    let good = basic("admin", password);
    let r = tls_request(addr, &ca, "GET", "/connectors", &[], "");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"augur connect\"")
    );
    assert_eq!(r.json()["error_code"], 401);
    let wrong = basic("admin", "pw-rest-61aa0c");
    assert_eq!(
        tls_request(
            addr,
            &ca,
            "GET",
            "/connectors",
            &[("authorization", &wrong)],
            ""
        )
        .status,
        401
    );
    let r = tls_request(
        addr,
        &ca,
        "GET",
        "/connectors",
        &[("authorization", &good)],
        "",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "[]"));
    let reader = basic("reader", "other-pw");
    assert_eq!(
        tls_request(addr, &ca, "GET", "/", &[("authorization", &reader)], "").status,
        200
    );
    let r = tls_request(addr, &ca, "POST", "/connectors", &[], "{}");
    assert_eq!(r.status, 401, "writes need credentials too");
    plain_http_gets_nothing(addr);
    assert!(!worker.log().contains(password));
    assert!(worker.stop().success());
}

#[test]
fn run_serves_its_metrics_over_https() {
    let dir = scratch_dir("https-run");
    let (ca, cert, key) = certificates(&dir);
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, augur_testkit::cars::CAR_DATA);
    let port = augur_pgcluster::free_port().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let sets = [
        format!("http.listen={addr}"),
        format!("http.tls_cert={cert}"),
        format!("http.tls_key={key}"),
    ];
    let offsets = dir.join("offsets.json").display().to_string();
    let mut args = vec!["run", "--source-url", &db.url, "--offsets", &offsets];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let run = Proc::start("https-run", &args);
    let deadline = Instant::now() + T;
    loop {
        let r = wait_tls(addr, &ca, "/readyz", &[]);
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready: {}", run.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = wait_tls(addr, &ca, "/metrics", &[]);
    assert!(metrics.text().contains("augur_"), "{}", metrics.text());
    plain_http_gets_nothing(addr);
    assert!(run.stop().success());
}
