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
