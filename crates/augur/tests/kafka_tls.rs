//! Kafka over TLS: the broker (Tansu) reachable only through a TLS terminator that demands a
//! client certificate (`Tansu::start_behind_tls`), certificates made at test time. The Kafka
//! path — `augur run` over Kafka, and capture → enrich → sink as separate processes — works with
//! verified TLS and client certificates, in Java's and librdkafka's spellings; a client with
//! the wrong CA or without a certificate gets nothing through.

use std::path::{Path, PathBuf};
use std::time::Duration;

use augur_testkit::tls::TestCa;
use augur_testkit::{Tansu, TestPg};

use crate::kafka_path::{capture_args, sink_config};
use crate::support::pipeline::{
    CAR_DATA, Proc, assert_predicted_table, insert_listings, listings, wait_count,
};
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(120);

struct TlsKafka {
    _broker: Tansu,
    _proxy: augur_testkit::tls::TlsProxy,
    bootstrap: String,
    ca: PathBuf,
    client: (PathBuf, PathBuf),
    dir: PathBuf,
}

fn tls_kafka() -> TlsKafka {
    let ca = TestCa::new("augur kafka CA");
    let dir = scratch_dir("kafkatls");
    let (broker, proxy, bootstrap) = Tansu::start_behind_tls(&ca.server(&["localhost"]), Some(&ca));
    TlsKafka {
        _broker: broker,
        _proxy: proxy,
        bootstrap,
        ca: ca.write(&dir, "ca.pem"),
        client: ca.client("augur").write(&dir, "client"),
        dir,
    }
}

/// A Java-style client properties file: PEM trust store and a PEM key store holding the
/// client's key and certificate.
fn java_client_properties(k: &TlsKafka) -> PathBuf {
    let keystore = k.dir.join("keystore.pem");
    let key = std::fs::read_to_string(&k.client.1).unwrap();
    let cert = std::fs::read_to_string(&k.client.0).unwrap();
    std::fs::write(&keystore, format!("{key}{cert}")).unwrap();
    let props = k.dir.join("client.properties");
    std::fs::write(
        &props,
        format!(
            "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n\
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

#[test]
fn augur_run_over_kafka_with_verified_tls_and_a_client_certificate() {
    let k = tls_kafka();
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let rows = listings(200);
    insert_listings(&pg, &db, &rows[..100]);
    let offsets = p(&k.dir.join("offsets.json"));
    let sets = [
        format!("kafka.bootstrap={}", k.bootstrap),
        "kafka.security.protocol=SSL".into(),
        format!("kafka.ssl.ca.location={}", p(&k.ca)),
        format!("kafka.ssl.certificate.location={}", p(&k.client.0)),
        format!("kafka.ssl.key.location={}", p(&k.client.1)),
        "http.listen=".into(),
    ];
    let mut args = vec!["run", "--source-url", &db.url, "--offsets", &offsets];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let run = Proc::start("kafkatls-run", &args);
    insert_listings(&pg, &db, &rows[100..]);
    let count = "SELECT count(*) FROM car_data_predicted";
    wait_count(&pg, &db, count, 200, T, &run.log());
    assert_predicted_table(&pg, &db, "car_data_predicted");
    assert!(run.stop().success());
}

#[test]
fn capture_enrich_and_sink_processes_over_tls_with_java_style_settings() {
    let k = tls_kafka();
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
fn a_wrong_ca_or_a_missing_client_certificate_is_refused_with_the_reason() {
    let k = tls_kafka();
    let other = TestCa::new("another CA").write(&k.dir, "other.pem");
    let tls = "kafka.security.protocol=SSL".to_string();
    let cert = format!("kafka.ssl.certificate.location={}", p(&k.client.0));
    let key = format!("kafka.ssl.key.location={}", p(&k.client.1));
    let wrong_ca = [
        tls.clone(),
        format!("kafka.ssl.ca.location={}", p(&other)),
        cert,
        key,
    ];
    refused(
        &k,
        "kafkatls-wrongca",
        &wrong_ca,
        "certificate verify failed",
    );
    let no_cert = [tls, format!("kafka.ssl.ca.location={}", p(&k.ca))];
    refused(&k, "kafkatls-nocert", &no_cert, "SSL");
}
