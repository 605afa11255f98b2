//! REST semantics over real HTTP against the real worker: every endpoint and status code, the
//! `{"error_code","message"}` shape, validation errors naming their keys in Debezium's and
//! Kafka Connect's words, password masking in responses and logs, and a worker restart that
//! brings every connector back in its state.

use std::time::Duration;

use augur_testkit::kafka::read_topic;
use augur_testkit::{Tansu, TestDb, TestPg};
use serde_json::{Value, json};

use crate::support::pipeline::{count, wait_count};
use crate::support::{ConnectResp, TestWorker, capture_logs, logs, wait_for};

const CAPTURE: &str = "io.debezium.connector.postgresql.PostgresConnector";
const CONFLUENT_SINK: &str = "io.confluent.connect.jdbc.JdbcSinkConnector";
const DEBEZIUM_SINK: &str = "io.debezium.connector.jdbc.JdbcSinkConnector";
const ENRICH: &str = "io.augur.connect.EnrichConnector";

/// A capture config for `db` (superuser `postgres`, password `postgres`).
fn capture_config(db: &TestDb, prefix: &str, slot: &str) -> Value {
    json!({
        "connector.class": CAPTURE,
        "plugin.name": "pgoutput",
        "database.hostname": "127.0.0.1",
        "database.port": db.port.to_string(),
        "database.user": "postgres",
        "database.password": "postgres",
        "database.dbname": db.name,
        "topic.prefix": prefix,
        "slot.name": slot,
        "publication.name": format!("{slot}_pub"),
        "status.update.interval.ms": "200",
    })
}

/// Whether `slot` exists and a replication connection is reading it.
fn slot_active(pg: &TestPg, db: &TestDb, slot: &str) -> Option<bool> {
    let out = pg.sql(
        db,
        &format!("SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'"),
    );
    match out.trim() {
        "t" => Some(true),
        "f" => Some(false),
        _ => None,
    }
}

/// Waits until `slot`'s activity is `active`.
fn wait_slot(pg: &TestPg, db: &TestDb, slot: &str, active: bool) {
    wait_for(
        Duration::from_secs(30),
        &format!("slot {slot} active={active}"),
        || (slot_active(pg, db, slot) == Some(active)).then_some(()),
    );
}

#[test]
fn plugins_validation_and_error_codes() {
    let broker = Tansu::start();
    let w = TestWorker::start(&broker.bootstrap());

    // GET / and /health.
    let root = w.get("/");
    assert_eq!(root.status, 200);
    assert_eq!(root.header("content-type"), Some("application/json"));
    let root = root.json();
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert!(root["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(root["kafka_cluster_id"], "tansu_cluster");
    assert_eq!(w.get("/health").json()["status"], "healthy");

    // The four connector classes with their types; converters and transforms on request.
    let plugins = w.get("/connector-plugins").json();
    let mut classes: Vec<(String, String)> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["class"].as_str().unwrap().to_string(),
                p["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    classes.sort();
    assert_eq!(
        classes,
        [
            (ENRICH.to_string(), "sink".to_string()),
            (CONFLUENT_SINK.to_string(), "sink".to_string()),
            (DEBEZIUM_SINK.to_string(), "sink".to_string()),
            (CAPTURE.to_string(), "source".to_string()),
        ]
    );
    let all = w.get("/connector-plugins?connectorsOnly=false").json();
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|p| p["type"] == "transformation"
                && p["class"] == "io.debezium.transforms.ExtractNewRecordState")
    );
    let defs = w
        .get(&format!("/connector-plugins/{CAPTURE}/config"))
        .json();
    assert!(
        defs.as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "database.hostname" && d["required"] == true)
    );

    // Validate: a good config has no errors and its password hidden.
    let db = TestDb {
        name: "cars".into(),
        port: 5432,
        url: String::new(),
    };
    let mut good = capture_config(&db, "car_database", "debezium");
    good["name"] = json!("pg");
    let r = w.put(
        &format!("/connector-plugins/{CAPTURE}/config/validate"),
        &good,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let infos = r.json();
    assert_eq!(infos["name"], CAPTURE);
    assert_eq!(infos["error_count"], 0, "{infos}");
    assert!(
        infos["groups"]
            .as_array()
            .unwrap()
            .contains(&json!("Common"))
    );
    let value_of = |infos: &Value, key: &str| {
        infos["configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["value"]["name"] == key)
            .unwrap_or_else(|| panic!("{key} in {infos}"))["value"]
            .clone()
    };
    assert_eq!(value_of(&infos, "database.password")["value"], "[hidden]");

    // Missing database.hostname and a bad snapshot.mode: per-key errors, Debezium's wording.
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("database.hostname");
    bad["snapshot.mode"] = json!("sometimes");
    // The simple class name works as an alias.
    let infos = w
        .put("/connector-plugins/PostgresConnector/config/validate", &bad)
        .json();
    assert_eq!(infos["error_count"], 2, "{infos}");
    assert_eq!(
        value_of(&infos, "database.hostname")["errors"],
        json!(["The 'database.hostname' value is invalid: A value is required"])
    );
    let snapshot_errors = value_of(&infos, "snapshot.mode")["errors"].clone();
    assert!(
        snapshot_errors[0].as_str().unwrap().starts_with(
            "The 'snapshot.mode' value is invalid: Value must be one of always, initial_only"
        ),
        "{snapshot_errors}"
    );
    assert_eq!(value_of(&infos, "snapshot.mode")["value"], "sometimes");
    assert!(
        value_of(&infos, "snapshot.mode")["recommended_values"]
            .as_array()
            .unwrap()
            .contains(&json!("no_data"))
    );

    // A sink validated: missing topics names the key.
    let infos = w
        .put(
            &format!("/connector-plugins/{CONFLUENT_SINK}/config/validate"),
            &json!({"name": "s", "connection.url": "jdbc:postgresql://h/db"}),
        )
        .json();
    assert_eq!(infos["error_count"], 1);
    assert_eq!(
        value_of(&infos, "topics")["errors"],
        json!(["Must configure one of topics or topics.regex"])
    );

    // Validate errors: unknown class, class mismatch, body not JSON.
    let m = w
        .put(
            "/connector-plugins/com.example.Nope/config/validate",
            &json!({}),
        )
        .error(400);
    assert!(m.starts_with("Failed to find any class that implements Connector and which name matches com.example.Nope"), "{m}");
    let m = w
        .put(
            &format!("/connector-plugins/{CAPTURE}/config/validate"),
            &json!({"connector.class": ENRICH}),
        )
        .error(400);
    assert!(m.contains("does not match request type"), "{m}");
    let r = crate::support::request(
        w.addr,
        "PUT",
        &format!("/connector-plugins/{CAPTURE}/config/validate"),
        b"{not json",
    );
    r.error(400);

    // POST errors: no class, unknown class, missing key named, bad value in Debezium's words,
    // name mismatch, malformed body, bad initial state.
    let post = |name: &str, config: &Value| {
        w.post("/connectors", &json!({"name": name, "config": config}))
    };
    let m = post("x", &json!({"topics": "t"})).error(400);
    assert!(m.contains("contains no connector type"), "{m}");
    let m = post("x", &json!({"connector.class": "com.example.Nope"})).error(400);
    assert!(m.contains("com.example.Nope"), "{m}");
    let mut no_host = good.clone();
    no_host.as_object_mut().unwrap().remove("database.hostname");
    no_host.as_object_mut().unwrap().remove("name");
    let m = post("pg", &no_host).error(400);
    assert_eq!(
        m,
        "Connector configuration is invalid and contains the following 1 error(s):\n\
         The 'database.hostname' value is invalid: A value is required\n\
         You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`"
    );
    let mut never = good.clone();
    never["snapshot.mode"] = json!("sometimes");
    let m = post("pg", &never).error(400);
    assert!(
        m.contains("The 'snapshot.mode' value is invalid: Value must be one of"),
        "{m}"
    );
    let m = post("other", &good).error(400);
    assert_eq!(
        m,
        "Connector name configuration (pg) doesn't match connector name in the URL (other)"
    );
    crate::support::request(w.addr, "POST", "/connectors", b"[1,").error(400);
    let m = w
        .post(
            "/connectors",
            &json!({"name": "pg", "config": good, "initial_state": "SLEEPING"}),
        )
        .error(400);
    assert!(m.contains("initial state"), "{m}");
    let m = w.post("/connectors", &json!({"config": good})).error(400);
    assert!(m.contains("name"), "{m}");
    assert_eq!(
        w.get("/connectors").json(),
        json!([]),
        "nothing was created"
    );

    // 404 for an unknown connector, on every endpoint.
    let missing = "Connector nope not found";
    assert_eq!(w.get("/connectors/nope").error(404), missing);
    assert_eq!(w.delete("/connectors/nope").error(404), missing);
    for path in ["config", "status", "tasks", "offsets"] {
        assert_eq!(
            w.get(&format!("/connectors/nope/{path}")).error(404),
            missing
        );
    }
    for path in ["pause", "resume", "stop"] {
        assert_eq!(
            w.put(&format!("/connectors/nope/{path}"), &Value::Null)
                .error(404),
            missing
        );
    }
    assert_eq!(
        w.post("/connectors/nope/restart", &json!({})).error(404),
        missing
    );
    assert_eq!(w.get("/connectors/nope/tasks/0/status").error(404), missing);
    assert_eq!(
        w.post("/connectors/nope/tasks/0/restart", &json!({}))
            .error(404),
        missing
    );
    // Unknown routes and methods.
    assert_eq!(w.get("/nowhere").error(404), "HTTP 404 Not Found");
    assert_eq!(
        w.get("/connectors/x/tasks/abc/status").error(404),
        "HTTP 404 Not Found"
    );
    assert_eq!(
        w.delete("/connectors").error(405),
        "HTTP 405 Method Not Allowed"
    );

    w.stop().unwrap();
}

#[test]
fn connector_lifecycle_over_rest() {
    capture_logs();
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    // A capture user with a password that must never be shown or logged.
    let secret = "Vh7-capture-Secret-0xC0FFEE";
    pg.sql(
        &db,
        &format!("CREATE ROLE capturer LOGIN SUPERUSER REPLICATION PASSWORD '{secret}'"),
    );
    pg.sql(&db, "CREATE TABLE items (id INT PRIMARY KEY, label TEXT)");
    pg.sql(&db, "INSERT INTO items VALUES (1, 'a'), (2, 'b')");
    let w = TestWorker::start(&broker.bootstrap());

    // Create: 201 + Location + ConnectorInfo; the same name again: 409.
    let mut cfg = capture_config(&db, "life", "life_slot");
    cfg["database.user"] = json!("capturer");
    cfg["database.password"] = json!(secret);
    let r = w.post("/connectors", &json!({"name": "pg-source", "config": cfg}));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("http://{}/connectors/pg-source", w.addr).as_str())
    );
    let info = r.json();
    assert_eq!(info["name"], "pg-source");
    assert_eq!(info["type"], "source");
    assert_eq!(info["config"]["name"], "pg-source");
    assert_eq!(info["config"]["database.password"], "[hidden]");
    assert_eq!(
        w.post("/connectors", &json!({"name": "pg-source", "config": cfg}))
            .error(409),
        "Connector pg-source already exists"
    );

    let s = w.wait_state("pg-source", "RUNNING");
    assert_eq!(s["name"], "pg-source");
    assert_eq!(s["type"], "source");
    assert_eq!(s["connector"]["worker_id"], w.addr.to_string());
    assert_eq!(s["tasks"][0]["id"], 0);
    assert_eq!(s["tasks"][0]["worker_id"], w.addr.to_string());
    assert!(s["tasks"][0].get("trace").is_none());
    wait_slot(&pg, &db, "life_slot", true);

    // Reads: list, info, config, tasks, task status, expand — secrets hidden everywhere.
    assert_eq!(w.get("/connectors").json(), json!(["pg-source"]));
    let info = w.get("/connectors/pg-source").json();
    assert_eq!(
        info["tasks"],
        json!([{"connector": "pg-source", "task": 0}])
    );
    let config = w.get("/connectors/pg-source/config").json();
    assert_eq!(config["database.user"], "capturer");
    assert_eq!(config["database.password"], "[hidden]");
    let tasks = w.get("/connectors/pg-source/tasks").json();
    assert_eq!(tasks[0]["id"], json!({"connector": "pg-source", "task": 0}));
    assert_eq!(
        tasks[0]["config"]["task.class"],
        "io.debezium.connector.postgresql.PostgresConnectorTask"
    );
    assert_eq!(tasks[0]["config"]["database.password"], "[hidden]");
    assert_eq!(
        w.get("/connectors/pg-source/tasks/0/status").json()["state"],
        "RUNNING"
    );
    w.get("/connectors/pg-source/tasks/1/status").error(404);
    let expanded = w.get("/connectors?expand=status&expand=info").json();
    assert_eq!(
        expanded["pg-source"]["status"]["connector"]["state"],
        "RUNNING"
    );
    assert_eq!(
        expanded["pg-source"]["info"]["config"]["database.password"],
        "[hidden]"
    );
    let only_status = w.get("/connectors?expand=status").json();
    assert!(only_status["pg-source"].get("info").is_none());

    // Offsets: the snapshot is recorded under Debezium's partition.
    let offsets = wait_for(Duration::from_secs(30), "capture offsets", || {
        let o = w.get("/connectors/pg-source/offsets").json();
        (o["offsets"][0]["offset"]["snapshot_completed"] == true).then_some(o)
    });
    assert_eq!(
        offsets["offsets"][0]["partition"],
        json!({"server": "life"})
    );

    // Pause: 202 at once; the task stops and the slot is released (nothing reads it).
    let r = w.put("/connectors/pg-source/pause", &Value::Null);
    assert_eq!(r.status, 202);
    assert!(r.body.is_empty());
    w.wait_state("pg-source", "PAUSED");
    wait_slot(&pg, &db, "life_slot", false);
    assert_eq!(
        w.put("/connectors/pg-source/pause", &Value::Null).status,
        202,
        "idempotent"
    );
    pg.sql(&db, "INSERT INTO items VALUES (3, 'c')");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        slot_active(&pg, &db, "life_slot"),
        Some(false),
        "still paused"
    );

    // Resume: 202; the change made while paused arrives (nothing lost).
    assert_eq!(
        w.put("/connectors/pg-source/resume", &Value::Null).status,
        202
    );
    w.wait_state("pg-source", "RUNNING");
    wait_slot(&pg, &db, "life_slot", true);
    let topic = read_topic(
        &broker.bootstrap(),
        "life.public.items",
        3,
        Duration::from_secs(30),
    );
    let ops: Vec<String> = topic
        .iter()
        .filter_map(|r| r.value_str())
        .map(|v| {
            serde_json::from_str::<Value>(&v).unwrap()["payload"]["op"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        ops,
        ["r", "r", "c"],
        "snapshot rows, then the insert made while paused"
    );

    // Restart: plain → 204; with includeTasks → 202 and the status showing RESTARTING.
    let r = w.post("/connectors/pg-source/restart", &json!({}));
    assert_eq!(r.status, 204, "{}", r.text());
    let r = w.post(
        "/connectors/pg-source/restart?includeTasks=true",
        &json!({}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let body = r.json();
    assert_eq!(body["connector"]["state"], "RESTARTING");
    assert_eq!(body["tasks"][0]["state"], "RESTARTING");
    w.wait_state("pg-source", "RUNNING");
    assert_eq!(
        w.post("/connectors/pg-source/tasks/0/restart", &json!({}))
            .status,
        204
    );
    w.wait_state("pg-source", "RUNNING");
    // onlyFailed with nothing failed restarts nothing.
    let r = w.post(
        "/connectors/pg-source/restart?includeTasks=true&onlyFailed=true",
        &json!({}),
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["tasks"][0]["state"], "RUNNING");

    // A task that fails shows FAILED with its error, and the connector stays listed.
    let bad_sink = json!({
        "connector.class": CONFLUENT_SINK,
        "topics": "nowhere",
        "connection.url": "jdbc:postgresql://127.0.0.1:1/nodb",
        "connection.user": "postgres",
        "connection.password": secret,
    });
    w.create("bad-sink", &bad_sink);
    let s = w.wait_status("bad-sink", "FAILED task", |s| {
        s["tasks"][0]["state"] == "FAILED"
    });
    assert_eq!(s["connector"]["state"], "RUNNING");
    let trace = s["tasks"][0]["trace"].as_str().unwrap();
    assert!(trace.contains("127.0.0.1:1"), "{trace}");
    assert!(!trace.contains(secret));
    // Restart only the failed tasks: 202 with the failed task RESTARTING; it fails again.
    let r = w.post(
        "/connectors/bad-sink/restart?includeTasks=true&onlyFailed=true",
        &json!({}),
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["tasks"][0]["state"], "RESTARTING");
    w.wait_status("bad-sink", "FAILED again", |s| {
        s["tasks"][0]["state"] == "FAILED"
    });

    // PUT config: an update answers 200 and restarts the tasks with the new config (here it
    // fixes the sink); a client echoing "[hidden]" keeps the stored password.
    let mut fixed = w.get("/connectors/bad-sink/config").json();
    assert_eq!(fixed["connection.password"], "[hidden]");
    fixed["connection.url"] = json!(format!(
        "jdbc:postgresql://127.0.0.1:{}/{}",
        db.port, db.name
    ));
    fixed["connection.user"] = json!("capturer");
    let r = w.put("/connectors/bad-sink/config", &fixed);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["config"]["connection.password"], "[hidden]");
    w.wait_state("bad-sink", "RUNNING");
    // PUT config for a new name creates it: 201 + Location.
    let r = w.put(
        "/connectors/second-sink/config",
        &fixed_named(&fixed, "second-sink"),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.header("location")
            .unwrap()
            .ends_with("/connectors/second-sink")
    );
    // A config naming another connector is refused.
    w.put("/connectors/third/config", &fixed).error(400);
    // An invalid update is refused and changes nothing.
    let mut invalid = fixed.clone();
    invalid["insert.mode"] = json!("merge");
    let m = w.put("/connectors/bad-sink/config", &invalid).error(400);
    assert!(m.contains("insert.mode"), "{m}");
    assert_eq!(
        w.get("/connectors/bad-sink/config").json()["insert.mode"],
        Value::Null
    );
    // No response shows the password: every read endpoint, and validation.
    for path in [
        "/connectors?expand=status&expand=info",
        "/connectors/pg-source",
        "/connectors/pg-source/config",
        "/connectors/pg-source/tasks",
        "/connectors/pg-source/status",
        "/connectors/bad-sink",
        "/connectors/bad-sink/config",
        "/connectors/bad-sink/tasks",
        "/connectors/bad-sink/status",
    ] {
        let r = w.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(!r.text().contains(secret), "{path} shows the password");
    }
    let mut with_secret = cfg.clone();
    with_secret["name"] = json!("pg-source");
    let r = w.put(
        &format!("/connector-plugins/{CAPTURE}/config/validate"),
        &with_secret,
    );
    assert_eq!(r.status, 200);
    assert!(!r.text().contains(secret), "validate shows the password");
    // Sink offsets are the group's committed offsets (nothing committed on an empty topic).
    assert_eq!(
        w.get("/connectors/bad-sink/offsets").json(),
        json!({"offsets": []})
    );

    // Stop: 204 once the tasks are down; STOPPED with no tasks; the slot is released.
    let r = w.put("/connectors/pg-source/stop", &Value::Null);
    assert_eq!(r.status, 204, "{}", r.text());
    let s = w.status("pg-source");
    assert_eq!(s["connector"]["state"], "STOPPED");
    assert_eq!(s["tasks"], json!([]));
    assert_eq!(w.get("/connectors/pg-source").json()["tasks"], json!([]));
    wait_slot(&pg, &db, "life_slot", false);
    // Resume from stopped.
    assert_eq!(
        w.put("/connectors/pg-source/resume", &Value::Null).status,
        202
    );
    w.wait_state("pg-source", "RUNNING");

    // Delete: 204, then 404; the others remain.
    assert_eq!(w.delete("/connectors/second-sink").status, 204);
    w.get("/connectors/second-sink").error(404);
    w.get("/connectors/second-sink/status").error(404);
    assert_eq!(
        w.get("/connectors").json(),
        json!(["bad-sink", "pg-source"])
    );

    // The status topic tells other tools what happened.
    let status = read_topic(
        &broker.bootstrap(),
        "connect-status",
        usize::MAX,
        Duration::from_secs(3),
    );
    assert!(status.iter().any(
        |r| r.key_str().as_deref() == Some("status-task-pg-source-0")
            && r.value_str().is_some_and(|v| v.contains("\"PAUSED\""))
    ));

    w.stop().unwrap();
    let logged = logs();
    assert!(logged.contains("connector created"), "logs were captured");
    assert!(!logged.contains(secret), "a password reached the logs");
    let count_topics = read_topic(
        &broker.bootstrap(),
        "connect-configs",
        1,
        Duration::from_secs(5),
    );
    assert!(!count_topics.is_empty());
}

/// `config` with `name` set to `name`.
fn fixed_named(config: &Value, name: &str) -> Value {
    let mut c = config.clone();
    c["name"] = json!(name);
    c
}

#[test]
fn restarted_worker_resumes_every_connector_in_its_state() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, "CREATE TABLE items (id INT PRIMARY KEY, label TEXT)");
    pg.sql(&db, "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    let bootstrap = broker.bootstrap();
    let w = TestWorker::start(&bootstrap);

    w.create("source", &capture_config(&db, "dur", "dur_slot"));
    let sink = json!({
        "connector.class": DEBEZIUM_SINK,
        "topics": "dur.public.items",
        "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/{}", db.port, db.name),
        "connection.username": "postgres",
        "connection.password": "postgres",
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "schema.evolution": "basic",
        "collection.name.format": "items_copy",
    });
    w.create("sink", &sink);
    // A third connector created STOPPED (initial_state) stays stopped throughout.
    let r = w.post(
        "/connectors",
        &json!({"name": "idle", "config": {"connector.class": ENRICH, "topics": "dur.public.items"}, "initial_state": "STOPPED"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    w.wait_state("source", "RUNNING");
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM items_copy",
        3,
        Duration::from_secs(60),
        "snapshot in the sink",
    );
    assert_eq!(w.status("idle")["connector"]["state"], "STOPPED");

    // Pause the sink; rows inserted now must wait for it.
    assert_eq!(w.put("/connectors/sink/pause", &Value::Null).status, 202);
    w.wait_state("sink", "PAUSED");
    // The snapshot's completion is durable before the restart.
    wait_for(Duration::from_secs(30), "snapshot offsets", || {
        let o = w.get("/connectors/source/offsets").json();
        (o["offsets"][0]["offset"]["snapshot_completed"] == true).then_some(())
    });
    w.stop().expect("clean stop");

    // A new worker on the same topics: the same connectors in the same states.
    let w = TestWorker::start(&bootstrap);
    assert_eq!(
        w.get("/connectors").json(),
        json!(["idle", "sink", "source"])
    );
    w.wait_state("source", "RUNNING");
    w.wait_state("sink", "PAUSED");
    let idle = w.status("idle");
    assert_eq!(idle["connector"]["state"], "STOPPED");
    assert_eq!(idle["tasks"], json!([]));
    assert_eq!(
        w.get("/connectors/sink/config").json()["connection.password"],
        "[hidden]"
    );

    // Capture resumes from its offsets: no second snapshot, the new rows stream in.
    pg.sql(&db, "INSERT INTO items VALUES (4, 'd'), (5, 'e')");
    let records = read_topic(&bootstrap, "dur.public.items", 5, Duration::from_secs(30));
    let ops: Vec<String> = records
        .iter()
        .filter_map(|r| r.value_str())
        .map(|v| {
            serde_json::from_str::<Value>(&v).unwrap()["payload"]["op"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ops, ["r", "r", "r", "c", "c"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        read_topic(&bootstrap, "dur.public.items", 6, Duration::from_secs(2)).len(),
        5,
        "no snapshot was taken again"
    );
    // The paused sink really does not consume.
    assert_eq!(count(&pg, &db, "SELECT count(*) FROM items_copy"), 3);

    // Resume: the sink continues from its committed offsets without loss.
    assert_eq!(w.put("/connectors/sink/resume", &Value::Null).status, 202);
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM items_copy",
        5,
        Duration::from_secs(60),
        "rows after resume",
    );
    let offsets = wait_for(Duration::from_secs(30), "sink offsets", || {
        let o = w.get("/connectors/sink/offsets").json();
        (o["offsets"][0]["offset"]["kafka_offset"] == 5).then_some(o)
    });
    assert_eq!(
        offsets["offsets"][0]["partition"],
        json!({"kafka_topic": "dur.public.items", "kafka_partition": 0})
    );
    w.stop().expect("clean stop");
}

/// Config providers: credentials from `${file:…}` and `${env:…}` reach the capture (its slot
/// goes active), while the REST API keeps showing the references and no log holds a resolved
/// secret; a reference that cannot resolve fails validation naming its key.
#[test]
fn config_provider_references_resolve_at_start_and_stay_references_in_the_api() {
    capture_logs();
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    let secret = "Pr0vided-Secret-7d1f";
    pg.sql(
        &db,
        &format!("CREATE ROLE provided LOGIN SUPERUSER REPLICATION PASSWORD '{secret}'"),
    );
    pg.sql(&db, "CREATE TABLE items (id INT PRIMARY KEY)");
    let dir = std::env::temp_dir().join(format!("augur-providers-rest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("db.properties");
    std::fs::write(&file, format!("user=provided\npassword={secret}\n")).unwrap();
    let user_ref = format!("${{file:{}:user}}", file.display());
    let w = TestWorker::start(&broker.bootstrap());
    let mut cfg = capture_config(&db, "prov", "prov_slot");
    cfg["database.user"] = json!(user_ref);
    cfg["database.password"] = json!(format!("${{file:{}:password}}", file.display()));
    let r = w.post("/connectors", &json!({"name": "prov", "config": cfg}));
    assert_eq!(r.status, 201, "{}", r.text());
    wait_slot(&pg, &db, "prov_slot", true);
    let shown = w.get("/connectors/prov/config").json();
    assert_eq!(shown["database.user"], json!(user_ref));
    assert_eq!(shown["database.password"], "[hidden]");
    // A reference that cannot resolve names its key.
    let mut bad = capture_config(&db, "prov2", "prov2_slot");
    bad["database.password"] = json!("${file:/no/such/file.properties:password}");
    let infos = w
        .put(
            &format!("/connector-plugins/{CAPTURE}/config/validate"),
            &bad,
        )
        .json();
    assert_eq!(infos["error_count"], 1, "{infos}");
    let errors = infos["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["value"]["name"] == "database.password")
        .map(|c| c["value"]["errors"].to_string())
        .unwrap_or_default();
    assert!(errors.contains("cannot be resolved"), "{errors}");
    assert!(w.delete("/connectors/prov").status < 300);
    for text in [logs(), w.get("/connectors").text()] {
        assert!(!text.contains(secret), "a resolved secret leaked");
    }
    let _ = std::fs::remove_dir_all(dir);
}
