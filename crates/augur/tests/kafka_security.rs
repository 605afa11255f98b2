//! Kafka over TLS and SASL: the broker (Tansu) reachable only through a front that terminates
//! TLS (certificates made at test time, a client certificate demanded) and performs SASL
//! itself (`Tansu::start_behind`; Tansu 0.6's own TLS and SASL cannot be used). The Kafka
//! path — `augur run` over Kafka, and capture → enrich → sink as separate processes — works
//! over `SSL` and `SASL_SSL` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) in Java's and librdkafka's
//! spellings, with the password from a config provider and never in a log; a wrong CA, a
//! missing client certificate or a wrong password stops at start with the reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use augur_testkit::broker_proxy::Front;
use augur_testkit::tls::TestCa;
use augur_testkit::{Tansu, TestPg};

use crate::kafka_path::{capture_args, sink_config};
use crate::support::pipeline::{
    CAR_DATA, Proc, assert_predicted_table, insert_listings, listings, wait_count,
};
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(120);

/// The SASL user every test's front knows.
const USER: &str = "alice";
const PASSWORD: &str = "pw-9f3c2e7a-alice";

struct TlsKafka {
    _broker: Tansu,
    _proxy: augur_testkit::broker_proxy::BrokerProxy,
    bootstrap: String,
    ca: PathBuf,
    client: (PathBuf, PathBuf),
    dir: PathBuf,
}

/// A broker behind mutual TLS, and SASL when `sasl`.
fn tls_kafka(sasl: bool) -> TlsKafka {
    let ca = TestCa::new("augur kafka CA");
    let dir = scratch_dir("kafkatls");
    let mut front = Front::tls(&ca.server(&["localhost"]), Some(&ca));
    if sasl {
        front = front.with_users(&[(USER, PASSWORD)]);
    }
    let (broker, proxy, bootstrap) = Tansu::start_behind(front);
    TlsKafka {
        _broker: broker,
        _proxy: proxy,
        bootstrap,
        ca: ca.write(&dir, "ca.pem"),
        client: ca.client("augur").write(&dir, "client"),
        dir,
    }
}

/// A Java-style client properties file: SASL_SSL with PLAIN, a PEM trust store and a PEM key
/// store holding the client's key and certificate.
fn java_client_properties(k: &TlsKafka) -> PathBuf {
    let keystore = k.dir.join("keystore.pem");
    let key = std::fs::read_to_string(&k.client.1).unwrap();
    let cert = std::fs::read_to_string(&k.client.0).unwrap();
    std::fs::write(&keystore, format!("{key}{cert}")).unwrap();
    let props = k.dir.join("client.properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n\
             sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{USER}\" password=\"{PASSWORD}\";\n\
             ssl.truststore.type=PEM\nssl.truststore.location={}\n\
             ssl.keystore.type=PEM\nssl.keystore.location={}\nssl.endpoint.identification.algorithm=https\n",
            k.ca.display(),
            keystore.display()
        ),
    )
    .unwrap();
    props
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// `augur run` over the broker with `kafka.*` settings `sets`: 200 rows priced through the
/// topics; returns the log.
fn run_over(k: &TlsKafka, what: &str, sets: &[String]) -> String {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let rows = listings(200);
    insert_listings(&pg, &db, &rows[..100]);
    let offsets = p(&k.dir.join(format!("{what}.json")));
    let mut all = vec![
        format!("kafka.bootstrap={}", k.bootstrap),
        "http.listen=".into(),
    ];
    all.extend(sets.iter().cloned());
    let mut args = vec!["run", "--source-url", &db.url, "--offsets", &offsets];
    for s in &all {
        args.extend(["--set", s.as_str()]);
    }
    let run = Proc::start(what, &args);
    insert_listings(&pg, &db, &rows[100..]);
    let count = "SELECT count(*) FROM car_data_predicted";
    wait_count(&pg, &db, count, 200, T, &run.log());
    assert_predicted_table(&pg, &db, "car_data_predicted");
    let log = run.log();
    assert!(run.stop().success());
    log
}

fn tls_sets(k: &TlsKafka, protocol: &str) -> Vec<String> {
    vec![
        format!("kafka.security.protocol={protocol}"),
        format!("kafka.ssl.ca.location={}", p(&k.ca)),
        format!("kafka.ssl.certificate.location={}", p(&k.client.0)),
        format!("kafka.ssl.key.location={}", p(&k.client.1)),
    ]
}

#[test]
fn augur_run_over_kafka_with_verified_tls_and_a_client_certificate() {
    let k = tls_kafka(false);
    run_over(&k, "kafkatls-run", &tls_sets(&k, "SSL"));
}

#[test]
fn augur_run_over_sasl_ssl_with_scram_sha_512_and_the_password_from_a_file() {
    let k = tls_kafka(true);
    let secrets = k.dir.join("kafka-secrets.properties");
    std::fs::write(&secrets, format!("alice.password={PASSWORD}\n")).unwrap();
    let mut sets = tls_sets(&k, "SASL_SSL");
    sets.push("kafka.sasl.mechanism=SCRAM-SHA-512".into());
    sets.push(format!(
        "kafka.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
         username=\"{USER}\" password=\"${{file:{}:alice.password}}\";",
        p(&secrets)
    ));
    let log = run_over(&k, "kafkasasl-run", &sets);
    assert!(
        !log.contains(PASSWORD),
        "the password reached the log:\n{log}"
    );
}

#[test]
fn capture_enrich_and_sink_processes_over_sasl_ssl_with_java_style_settings() {
    let k = tls_kafka(true);
    let props = p(&java_client_properties(&k));
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let offsets = p(&k.dir.join("cap-offsets.json"));
    let mut cargs: Vec<String> = vec!["capture".into()];
    cargs.extend(capture_args(&db, &k.bootstrap, &offsets, "1"));
    cargs.extend(["--kafka-config".into(), props.clone()]);
    let cargs: Vec<&str> = cargs.iter().map(String::as_str).collect();
    let capture = Proc::start("kafkatls-capture", &cargs);
    let enrich = Proc::start(
        "kafkatls-enrich",
        &[
            "enrich",
            "--kafka",
            &k.bootstrap,
            "--kafka-config",
            &props,
            "--topics",
            "car_database.public.car_data",
        ],
    );
    let sink_file = k.dir.join("sink.json");
    std::fs::write(&sink_file, sink_config(&db)).unwrap();
    let sink = Proc::start(
        "kafkatls-sink",
        &[
            "sink",
            "--kafka",
            &k.bootstrap,
            "--kafka-config",
            &props,
            "--config",
            &p(&sink_file),
        ],
    );
    insert_listings(&pg, &db, &listings(300));
    let count = "SELECT count(*) FROM car_data_predicted";
    let logs = || {
        format!(
            "capture:\n{}\nenrich:\n{}\nsink:\n{}",
            capture.log(),
            enrich.log(),
            sink.log()
        )
    };
    wait_count(&pg, &db, count, 300, T, &logs());
    assert_predicted_table(&pg, &db, "car_data_predicted");
    let logs = logs();
    assert!(
        !logs.contains(PASSWORD),
        "the password reached a log:\n{logs}"
    );
    for proc in [enrich, sink, capture] {
        assert!(proc.stop().success());
    }
}

/// `augur run` over the TLS broker with `settings` (`kafka.*` keys): it must stop at start
/// with `needle` in its error, the database's rows unpriced.
fn refused(k: &TlsKafka, what: &str, settings: &[String], needle: &str) {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    insert_listings(&pg, &db, &listings(5));
    let offsets = p(&k.dir.join(format!("{what}.json")));
    let mut sets = vec![
        format!("kafka.bootstrap={}", k.bootstrap),
        "http.listen=".to_string(),
    ];
    sets.extend(settings.iter().cloned());
    let mut args = vec!["run", "--source-url", &db.url, "--offsets", &offsets];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let mut run = Proc::start(what, &args);
    let status = crate::support::wait_timeout(&mut run.0, T).expect("augur run stops");
    let log = run.log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("cannot reach a Kafka broker") && log.contains(needle),
        "{log}"
    );
    let exists = pg.sql(&db, "SELECT to_regclass('car_data_predicted') IS NOT NULL");
    if exists.trim() == "t" {
        let n = pg.sql(&db, "SELECT count(*) FROM car_data_predicted");
        assert_eq!(n.trim(), "0", "nothing was priced");
    }
}

#[test]
fn a_wrong_ca_a_missing_client_certificate_or_a_wrong_password_is_refused_with_the_reason() {
    let k = tls_kafka(false);
    let other = TestCa::new("another CA").write(&k.dir, "other.pem");
    let mut wrong_ca = tls_sets(&k, "SSL");
    wrong_ca[1] = format!("kafka.ssl.ca.location={}", p(&other));
    refused(
        &k,
        "kafkatls-wrongca",
        &wrong_ca,
        "certificate verify failed",
    );
    let no_cert = tls_sets(&k, "SSL")[..2].to_vec();
    refused(&k, "kafkatls-nocert", &no_cert, "SSL");

    let k = tls_kafka(true);
    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        let mut wrong_password = tls_sets(&k, "SASL_SSL");
        wrong_password.push(format!("kafka.sasl.mechanism={mechanism}"));
        wrong_password.push(format!("kafka.sasl.username={USER}"));
        wrong_password.push("kafka.sasl.password=not-the-password".into());
        refused(
            &k,
            &format!("kafkasasl-{mechanism}"),
            &wrong_password,
            "Authentication failed",
        );
    }
}

/// SASL without TLS (`SASL_PLAINTEXT`, SCRAM-SHA-256): `augur doctor` reaches the broker
/// with the right password and says why not with a wrong one.
#[test]
fn sasl_plaintext_with_scram_sha_256() {
    let (_broker, _proxy, bootstrap) =
        Tansu::start_behind(Front::plain().with_users(&[(USER, PASSWORD)]));
    let pg = TestPg::start();
    let db = pg.database();
    let doctor = |password: &str| {
        let out = crate::support::augur()
            .args(["doctor", "--source-url", &db.url, "--set"])
            .arg(format!("kafka.bootstrap={bootstrap}"))
            .args([
                "--set",
                "kafka.security.protocol=SASL_PLAINTEXT",
                "--set",
                "kafka.sasl.mechanism=SCRAM-SHA-256",
                "--set",
            ])
            .arg(format!("kafka.sasl.username={USER}"))
            .arg("--set")
            .arg(format!("kafka.sasl.password={password}"))
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let good = doctor(PASSWORD);
    assert!(
        good.contains(&format!("a broker answers at {bootstrap}")),
        "{good}"
    );
    let bad = doctor("wrong-password");
    assert!(bad.contains("Authentication failed"), "{bad}");
    assert!(
        !good.contains(PASSWORD) && !bad.contains("wrong-password"),
        "{good}{bad}"
    );
}
