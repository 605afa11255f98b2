//! Two workers of one cluster (`cluster.enabled`, the group on a real Tansu broker): the
//! leader serves the writes Kafka Connect sends to the leader and the other worker forwards
//! them (`?forward=`, at most two hops, Kafka Connect's 409s); both report the same statuses,
//! each unit with the id of the worker running it; a change made through either is seen by
//! both.

use std::collections::BTreeSet;
use std::time::Duration;

use augur_connect::WorkerConfig;
use augur_testkit::Tansu;
use serde_json::{Value, json};

use crate::support::{ConnectResp, Resp, TestWorker, wait_for};

/// A cluster member on `bootstrap`.
fn member(bootstrap: &str, group: &str) -> TestWorker {
    let mut cfg = WorkerConfig::new(bootstrap);
    cfg.addr = "127.0.0.1:0".parse().unwrap();
    cfg.shutdown_timeout = Duration::from_secs(20);
    cfg.group_id = group.to_string();
    cfg.cluster.enabled = true;
    cfg.cluster.session_timeout = Duration::from_secs(6);
    cfg.cluster.heartbeat_interval = Duration::from_secs(1);
    cfg.cluster.rebalance_timeout = Duration::from_secs(20);
    TestWorker::start_with(cfg)
}

/// An enrichment connector over `topic` with `tasks` tasks (Kafka only, the shipped model).
fn enrich(topic: &str, tasks: usize) -> Value {
    json!({
        "connector.class": "io.augur.connect.EnrichConnector",
        "tasks.max": tasks.to_string(),
        "topics": topic,
        "output.topic": format!("{topic}-out"),
        "model": "ford-price:latest",
    })
}

/// `POST /connectors` through `w`, retried while the group has no leader yet (409).
fn create(w: &TestWorker, name: &str, config: &Value) -> Resp {
    let body = json!({"name": name, "config": config});
    wait_for(Duration::from_secs(60), "a leader", || {
        let r = w.post("/connectors", &body);
        (r.status != 409).then_some(r)
    })
}

#[test]
fn followers_forward_writes_to_the_leader_and_statuses_name_each_worker() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    augur_testkit::kafka::create_topic(&bootstrap, "cars-in", 4);
    let group = "augur-distributed-test";
    let a = member(&bootstrap, group);
    let b = member(&bootstrap, group);
    let ids: BTreeSet<String> = [a.addr.to_string(), b.addr.to_string()].into();

    // Created through one, run by both: the three units spread, both say where.
    let r = create(&a, "enrich", &enrich("cars-in", 2));
    assert_eq!(r.status, 201, "{}", r.text());
    let status = |w: &TestWorker| {
        let r = w.get("/connectors/enrich/status");
        (r.status == 200).then(|| r.json())
    };
    let spread = wait_for(Duration::from_secs(60), "units on both workers", || {
        let s = status(&b)?;
        let tasks = s["tasks"].as_array()?;
        let running = tasks.len() == 2 && tasks.iter().all(|t| t["state"] == "RUNNING");
        let workers: BTreeSet<String> = tasks
            .iter()
            .chain([&s["connector"]])
            .filter_map(|u| u["worker_id"].as_str().map(str::to_string))
            .collect();
        (running && s["connector"]["state"] == "RUNNING" && workers == ids).then_some(s)
    });
    wait_for(Duration::from_secs(30), "the same status on both", || {
        (status(&a).as_ref() == Some(&spread)).then_some(())
    });

    // Exactly one of them leads: it serves a request that may not be forwarded again; the
    // other answers Kafka Connect's 409.
    let body = json!({"name": "second", "config": enrich("cars-in", 1)});
    let (ra, rb) = (
        a.post("/connectors?forward=false", &body),
        b.post("/connectors?forward=false", &body),
    );
    let (leader, follower, conflict) = match (ra.status, rb.status) {
        (201, 409) => (&a, &b, rb),
        (409, 201) => (&b, &a, ra),
        other => panic!("one leader expected: {other:?} {} {}", ra.text(), rb.text()),
    };
    assert_eq!(
        conflict.error(409),
        "Cannot complete request because of a conflicting operation (e.g. worker rebalance)"
    );

    // Writes through the follower are forwarded; what they change shows on both.
    let r = follower.post("/connectors", &body);
    assert_eq!(
        r.error(409),
        "Connector second already exists",
        "the leader's answer is passed back"
    );
    let r = follower.put("/connectors/second/config", &enrich("cars-in", 3));
    assert_eq!(r.status, 200, "{}", r.text());
    for w in [leader, follower] {
        wait_for(Duration::from_secs(30), "the new config everywhere", || {
            let c = w.get("/connectors/second/config").json();
            (c["tasks.max"] == "3").then_some(())
        });
    }
    let r = follower.put("/connectors/second/stop", &Value::Null);
    assert_eq!(r.status, 204, "{}", r.text());
    leader.wait_status("second", "STOPPED", |s| {
        s["connector"]["state"] == "STOPPED"
    });
    assert_eq!(follower.delete("/connectors/second").status, 204);
    for w in [leader, follower] {
        wait_for(Duration::from_secs(30), "deleted everywhere", || {
            (w.get("/connectors/second").status == 404).then_some(())
        });
    }
    // Requests Kafka Connect serves on any worker are not forwarded (pause goes to the
    // config topic from here).
    let r = follower.put("/connectors/enrich/pause?forward=false", &Value::Null);
    assert_eq!(r.status, 202, "{}", r.text());
    leader.wait_status("enrich", "PAUSED", |s| {
        s["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["state"] == "PAUSED"))
    });
    a.stop().expect("clean stop");
    b.stop().expect("clean stop");
}

/// Java-style client settings for SASL_SSL with SCRAM-SHA-512 and a PEM client certificate.
fn sasl_ssl(
    user: &str,
    password: &str,
    ca: &std::path::Path,
    keystore: &std::path::Path,
) -> augur_runtime::security::ClientSettings {
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";"
    );
    let pairs = [
        ("security.protocol", "SASL_SSL".to_string()),
        ("sasl.mechanism", "SCRAM-SHA-512".into()),
        ("sasl.jaas.config", jaas),
        ("ssl.truststore.type", "PEM".into()),
        ("ssl.truststore.location", ca.display().to_string()),
        ("ssl.keystore.type", "PEM".into()),
        ("ssl.keystore.location", keystore.display().to_string()),
    ];
    augur_runtime::security::ClientSettings::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
    .unwrap()
}

/// The same cluster with everything secured: the broker reachable only over TLS with a client
/// certificate and SCRAM-SHA-512 (a front doing both before Tansu), the REST API over HTTPS.
/// The group connection uses the worker's client settings (Java's spelling) like its producers
/// and consumers do; a follower forwards over HTTPS, checking the leader's certificate; a
/// follower that does not trust the leader's certificate answers Kafka Connect's 500 for a
/// failed forward.
#[test]
fn a_cluster_over_sasl_ssl_forwards_over_https() {
    use augur_testkit::broker_proxy::Front;
    use augur_testkit::tls::TestCa;
    let ca = TestCa::new("cluster CA");
    let password = "pw-cluster-7c41";
    let front =
        Front::tls(&ca.server(&["localhost"]), Some(&ca)).with_users(&[("worker", password)]);
    let (_broker, _proxy, bootstrap) = Tansu::start_behind(front);
    let dir = std::env::temp_dir().join(format!("augur-cluster-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = ca.write(&dir, "ca.pem");
    let client = ca.client("worker");
    let keystore = dir.join("keystore.pem");
    std::fs::write(&keystore, format!("{}{}", client.key, client.cert)).unwrap();
    let (rest_cert, rest_key) = ca.server(&["127.0.0.1"]).write(&dir, "rest");
    let rest_tls = augur_http::ServerTls::load(&rest_cert, &rest_key).unwrap();
    let group = "augur-secure-cluster";
    let secure = |password: &str, rest_ca: &std::path::Path| {
        let mut cfg = WorkerConfig::new(&bootstrap);
        cfg.addr = "127.0.0.1:0".parse().unwrap();
        cfg.shutdown_timeout = Duration::from_secs(20);
        cfg.group_id = group.to_string();
        cfg.cluster.enabled = true;
        cfg.cluster.session_timeout = Duration::from_secs(6);
        cfg.cluster.heartbeat_interval = Duration::from_secs(1);
        cfg.cluster.rebalance_timeout = Duration::from_secs(20);
        cfg.cluster.rest_ca = Some(rest_ca.to_path_buf());
        cfg.client = sasl_ssl("worker", password, &ca_file, &keystore);
        cfg.tls = Some(rest_tls.clone());
        cfg
    };
    let a = TestWorker::start_https(secure(password, &ca_file), &ca.cert_pem());
    let b = TestWorker::start_https(secure(password, &ca_file), &ca.cert_pem());
    let ids: BTreeSet<String> = [a.addr.to_string(), b.addr.to_string()].into();

    let r = create(&a, "enrich", &enrich("secure-in", 2));
    assert_eq!(r.status, 201, "{}", r.text());
    wait_for(Duration::from_secs(90), "units on both workers", || {
        let s = b.get("/connectors/enrich/status");
        let s = (s.status == 200).then(|| s.json())?;
        let tasks = s["tasks"].as_array()?;
        let running = tasks.len() == 2 && tasks.iter().all(|t| t["state"] == "RUNNING");
        let workers: BTreeSet<String> = tasks
            .iter()
            .chain([&s["connector"]])
            .filter_map(|u| u["worker_id"].as_str().map(str::to_string))
            .collect();
        (running && workers == ids).then_some(())
    });
    // Which one leads: the follower's writes reach it over HTTPS.
    let body = json!({"name": "second", "config": enrich("secure-in", 1)});
    let (ra, rb) = (
        a.post("/connectors?forward=false", &body),
        b.post("/connectors?forward=false", &body),
    );
    let (leader, follower) = match (ra.status, rb.status) {
        (201, 409) => (&a, &b),
        (409, 201) => (&b, &a),
        other => panic!("one leader expected: {other:?} {} {}", ra.text(), rb.text()),
    };
    let r = follower.put("/connectors/second/config", &enrich("secure-in", 2));
    assert_eq!(r.status, 200, "forwarded over HTTPS: {}", r.text());
    wait_for(
        Duration::from_secs(30),
        "the new config on the leader",
        || {
            let c = leader.get("/connectors/second/config").json();
            (c["tasks.max"] == "2").then_some(())
        },
    );

    // A follower that trusts another CA cannot forward: Kafka Connect's 500, the reason.
    let other = TestCa::new("another CA");
    let other_file = other.write(&dir, "other-ca.pem");
    let c = TestWorker::start_https(secure(password, &other_file), &ca.cert_pem());
    let r = wait_for(Duration::from_secs(60), "a known leader", || {
        let r = c.delete("/connectors/second");
        (r.status != 409).then_some(r)
    });
    eprintln!("a follower trusting another CA: {} {}", r.status, r.text());
    if r.status != 204 {
        // (It could have become the leader itself only if the others had left.)
        let m = r.error(500);
        assert!(
            m.starts_with("IO Error trying to forward REST request"),
            "{m}"
        );
        assert!(m.contains("TLS") || m.contains("certificate"), "{m}");
    }
    drop(c);

    a.stop().expect("clean stop");
    b.stop().expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}
