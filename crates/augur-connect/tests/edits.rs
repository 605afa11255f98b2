//! The Kafka Connect 3.x endpoints that edit stored state, against a real broker (and
//! PostgreSQL where a sink writes): `PATCH …/config`, the offsets API of stopped connectors
//! (KIP-875), `/admin/loggers` (KIP-495/976) and the 415 answer to bodies that are not JSON.

use std::time::Duration;

use augur_testkit::http::Conn;
use augur_testkit::kafka::{create_topic, produce_many};
use augur_testkit::{Tansu, TestDb, TestPg};
use serde_json::{Value, json};

use crate::support::{ConnectResp, Resp, TestWorker, request, wait_for};

const STOPPED_MSG: &str = "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{}/stop' endpoint";

/// `method path` with a JSON body.
fn send(w: &TestWorker, method: &str, path: &str, body: &Value) -> Resp {
    request(w.addr, method, path, body.to_string().as_bytes())
}

/// `method path` with `body` sent as `content_type`.
fn send_as(w: &TestWorker, method: &str, path: &str, content_type: &str, body: &str) -> Resp {
    let mut c = Conn::open(w.addr);
    c.send_raw(
        format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    c.read_response()
}

/// A Confluent JDBC sink of topic `topic` into `db` (`pk.fields=id`, upsert).
fn sink_config(db: &TestDb, topic: &str) -> Value {
    json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/{}", db.port, db.name),
        "connection.user": "postgres",
        "connection.password": "postgres",
        "auto.create": "true",
        "insert.mode": "upsert",
        "pk.mode": "record_value",
        "pk.fields": "id",
    })
}

/// A capture config that is never started here.
fn capture_config(prefix: &str) -> Value {
    json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "database.hostname": "127.0.0.1",
        "database.port": "5432",
        "database.user": "postgres",
        "database.password": "secret-pw",
        "database.dbname": "nowhere",
        "topic.prefix": prefix,
        "snapshot.mode": "initial",
    })
}

/// `{"schema","payload"}` records with ids `0..n`.
fn numbered(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            json!({
                "schema": {"type": "struct", "optional": false, "fields": [
                    {"field": "id", "type": "int32", "optional": false},
                    {"field": "n", "type": "string", "optional": true}]},
                "payload": {"id": i, "n": format!("row {i}")}
            })
            .to_string()
            .into_bytes()
        })
        .collect()
}

/// The ids in table `nums`, sorted.
fn ids(pg: &TestPg, db: &TestDb) -> Vec<i64> {
    let out = pg.sql(
        db,
        "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM nums",
    );
    out.trim()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Waits until table `nums` holds exactly `want`.
fn wait_ids(pg: &TestPg, db: &TestDb, want: &[i64]) {
    wait_for(Duration::from_secs(90), &format!("ids {want:?}"), || {
        let exists = pg.sql(db, "SELECT to_regclass('nums') IS NOT NULL");
        (exists.trim() == "t" && ids(pg, db) == want).then_some(())
    });
}

/// The connector's offsets body.
fn offsets(w: &TestWorker, name: &str) -> Value {
    let r = w.get(&format!("/connectors/{name}/offsets"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn sink_offset(topic: &str, partition: i32, offset: Option<i64>) -> Value {
    json!({
        "partition": {"kafka_topic": topic, "kafka_partition": partition},
        "offset": offset.map(|o| json!({"kafka_offset": o})),
    })
}

#[test]
fn a_stopped_sinks_offsets_are_altered_and_reset_and_it_resumes_from_them() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "nums", 1);
    produce_many(&bootstrap, "nums", numbered(10));
    let w = TestWorker::start(&bootstrap);
    let r = w.post(
        "/connectors",
        &json!({"name": "nums-sink", "config": sink_config(&db, "nums"), "initial_state": "STOPPED"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(offsets(&w, "nums-sink"), json!({"offsets": []}));

    // Bad requests change nothing.
    let path = "/connectors/nums-sink/offsets";
    let bad = |body: Value| send(&w, "PATCH", path, &body).error(400);
    assert_eq!(
        bad(json!({})),
        "Partitions / offsets need to be provided for an alter offsets request"
    );
    assert_eq!(
        bad(json!({"offsets": []})),
        "Partitions / offsets need to be provided for an alter offsets request"
    );
    assert_eq!(
        bad(
            json!({"offsets": [{"partition": {"kafka_topic": "nums"}, "offset": {"kafka_offset": 1}}]})
        ),
        "The partition for a sink connector offset must contain the keys 'kafka_topic' and 'kafka_partition'"
    );
    assert!(
        bad(json!({"offsets": [{"partition": {"kafka_topic": "nums", "kafka_partition": 0}, "offset": {"kafka_offset": "x"}}]}))
            .starts_with("Failed to parse the following Kafka offset value in the provided offsets: 'x'")
    );
    assert_eq!(
        send(
            &w,
            "PATCH",
            "/connectors/nope/offsets",
            &json!({"offsets": [sink_offset("nums", 0, Some(1))]})
        )
        .error(404),
        "Connector nope not found"
    );
    assert_eq!(
        w.delete("/connectors/nope/offsets").error(404),
        "Connector nope not found"
    );
    assert_eq!(offsets(&w, "nums-sink"), json!({"offsets": []}));

    // Skip the first seven records: the sink writes only 7, 8, 9.
    let r = send(
        &w,
        "PATCH",
        path,
        &json!({"offsets": [sink_offset("nums", 0, Some(7))]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"message": "The offsets for this connector have been altered successfully"})
    );
    assert_eq!(
        offsets(&w, "nums-sink"),
        json!({"offsets": [sink_offset("nums", 0, Some(7))]})
    );
    assert_eq!(
        w.put("/connectors/nums-sink/resume", &Value::Null).status,
        202
    );
    wait_ids(&pg, &db, &[7, 8, 9]);
    wait_for(Duration::from_secs(60), "offset 10 committed", || {
        (offsets(&w, "nums-sink") == json!({"offsets": [sink_offset("nums", 0, Some(10))]}))
            .then_some(())
    });

    assert_eq!(
        w.get("/connectors/nums-sink/topics").json(),
        json!({"nums-sink": {"topics": ["nums"]}})
    );

    // Not while it runs.
    let msg = STOPPED_MSG.replace("{}", "nums-sink");
    assert_eq!(
        send(
            &w,
            "PATCH",
            path,
            &json!({"offsets": [sink_offset("nums", 0, Some(0))]})
        )
        .error(400),
        msg
    );
    assert_eq!(w.delete(path).error(400), msg);
    w.put("/connectors/nums-sink/pause", &Value::Null);
    assert_eq!(w.delete(path).error(400), msg, "paused is not stopped");

    // A reset forgets the group: resumed, the sink reads the topic from its start.
    assert_eq!(
        w.put("/connectors/nums-sink/stop", &Value::Null).status,
        204
    );
    let r = w.delete(path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"message": "The offsets for this connector have been reset successfully"})
    );
    assert_eq!(offsets(&w, "nums-sink"), json!({"offsets": []}));
    pg.sql(&db, "TRUNCATE nums");
    w.put("/connectors/nums-sink/resume", &Value::Null);
    wait_ids(&pg, &db, &(0..10).collect::<Vec<_>>());

    // A null offset resets one partition: it reads from the partition's start again.
    w.put("/connectors/nums-sink/stop", &Value::Null);
    wait_for(Duration::from_secs(60), "stopped", || {
        (w.status("nums-sink")["connector"]["state"] == "STOPPED").then_some(())
    });
    let r = send(
        &w,
        "PATCH",
        path,
        &json!({"offsets": [sink_offset("nums", 0, None)]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        offsets(&w, "nums-sink"),
        json!({"offsets": [sink_offset("nums", 0, Some(0))]})
    );
}

#[test]
fn a_stopped_captures_offsets_are_altered_reset_and_durable() {
    let broker = Tansu::start();
    let w = TestWorker::start(&broker.bootstrap());
    let r = w.post(
        "/connectors",
        &json!({"name": "cap", "config": capture_config("shop"), "initial_state": "STOPPED"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let path = "/connectors/cap/offsets";
    let offset = json!({"lsn": 123456, "txId": 77, "ts_usec": 1700000000000000_i64});
    let entry = json!({"partition": {"server": "shop"}, "offset": offset});
    let r = send(&w, "PATCH", path, &json!({"offsets": [entry]}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("The Connect framework-managed offsets for this connector have been altered successfully."),
        "{}",
        r.text()
    );
    assert_eq!(offsets(&w, "cap"), json!({"offsets": [entry]}));

    // Offsets the capture could not read are refused, and nothing changes.
    for bad in [
        json!({"offsets": [{"partition": {"server": "shop"}, "offset": {"lsn": "zero"}}]}),
        json!({"offsets": [{"partition": {"server": "shop"}, "offset": {"lsn": -5}}]}),
        json!({"offsets": [{"partition": null, "offset": {"lsn": 1}}]}),
        json!({"offsets": [{"partition": {"server": "shop"}, "offset": [1, 2]}]}),
        json!({"offsets": ["x"]}),
    ] {
        send(&w, "PATCH", path, &bad).error(400);
    }
    assert_eq!(offsets(&w, "cap"), json!({"offsets": [entry]}));

    // Durable: a restarted worker reads them back.
    w.stop().unwrap();
    let w = TestWorker::start(&broker.bootstrap());
    assert_eq!(offsets(&w, "cap"), json!({"offsets": [entry]}));
    let r = w.delete(path);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().starts_with(
        "The Connect framework-managed offsets for this connector have been reset successfully."
    ),);
    assert_eq!(offsets(&w, "cap"), json!({"offsets": []}));
    w.stop().unwrap();
    let w = TestWorker::start(&broker.bootstrap());
    assert_eq!(offsets(&w, "cap"), json!({"offsets": []}));
}

#[test]
fn patch_changes_and_removes_keys_and_keeps_hidden_secrets() {
    let broker = Tansu::start();
    let w = TestWorker::start(&broker.bootstrap());
    let path = "/connectors/cap/config";
    assert_eq!(
        send(&w, "PATCH", path, &json!({"tasks.max": "1"})).error(404),
        "Connector cap not found"
    );
    let r = w.post(
        "/connectors",
        &json!({"name": "cap", "config": capture_config("shop"), "initial_state": "STOPPED"}),
    );
    assert_eq!(r.status, 201);
    let before = w.get(path).json();
    assert_eq!(before["database.password"], "[hidden]");

    // Set one key, remove another, send the hidden password back unchanged.
    let r = send(
        &w,
        "PATCH",
        path,
        &json!({"topic.prefix": "shop2", "database.port": 6543, "snapshot.mode": null,
                "database.password": "[hidden]", "slot.name": "s2"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let info = r.json();
    assert_eq!(info["name"], "cap");
    assert_eq!(info["type"], "source");
    assert_eq!(info["config"]["topic.prefix"], "shop2");
    assert_eq!(info["config"]["database.port"], "6543");
    assert!(info["config"].get("snapshot.mode").is_none());
    assert_eq!(info["config"]["database.password"], "[hidden]");
    let after = w.get(path).json();
    assert_eq!(after, info["config"]);

    // Refused patches change nothing.
    let r = send(&w, "PATCH", path, &json!({"name": "other"}));
    assert_eq!(
        r.error(400),
        "Connector name configuration (other) doesn't match connector name in the URL (cap)"
    );
    send(&w, "PATCH", path, &json!({"connector.class": null})).error(400);
    send(&w, "PATCH", path, &json!({"tasks.max": {"n": 1}})).error(400);
    send(&w, "PATCH", path, &json!(["x"])).error(400);
    request(w.addr, "PATCH", path, b"{not json").error(400);
    assert_eq!(w.get(path).json(), after);

    // The stored password is the original one: a restarted worker still has it (shown
    // hidden), and the patched keys survived.
    w.stop().unwrap();
    let w = TestWorker::start(&broker.bootstrap());
    let cfg = w.get(path).json();
    assert_eq!(cfg, after);
}

#[test]
fn topic_tracking_can_be_switched_off() {
    let broker = Tansu::start();
    let mut cfg = augur_connect::WorkerConfig::new(broker.bootstrap());
    cfg.addr = "127.0.0.1:0".parse().unwrap();
    cfg.topic_tracking_reset = false;
    let w = TestWorker::start_with(cfg.clone());
    assert_eq!(
        w.get("/connectors/any/topics").json(),
        json!({"any": {"topics": []}})
    );
    assert_eq!(
        w.put("/connectors/any/topics/reset", &Value::Null)
            .error(403),
        "Topic tracking reset is disabled."
    );
    w.stop().unwrap();
    cfg.topic_tracking = false;
    let w = TestWorker::start_with(cfg);
    assert_eq!(
        w.get("/connectors/any/topics").error(403),
        "Topic tracking is disabled."
    );
    assert_eq!(
        w.put("/connectors/any/topics/reset", &Value::Null)
            .error(403),
        "Topic tracking is disabled."
    );
}

#[test]
fn bodies_that_are_not_json_get_415() {
    let broker = Tansu::start();
    let w = TestWorker::start(&broker.bootstrap());
    let body =
        json!({"name": "c", "config": capture_config("p"), "initial_state": "STOPPED"}).to_string();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let r = send_as(&w, "POST", "/connectors", ct, &body);
        assert_eq!(r.error(415), "HTTP 415 Unsupported Media Type", "{ct}");
    }
    assert_eq!(
        w.get("/connectors").json(),
        json!([]),
        "nothing was created"
    );
    let r = send_as(
        &w,
        "POST",
        "/connectors",
        "application/json; charset=UTF-8",
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = send_as(&w, "PUT", "/connectors/c/config", "text/plain", "{}");
    assert_eq!(r.error(415), "HTTP 415 Unsupported Media Type");
    let r = send_as(
        &w,
        "PUT",
        "/admin/loggers/augur",
        "text/plain",
        r#"{"level":"DEBUG"}"#,
    );
    assert_eq!(r.error(415), "HTTP 415 Unsupported Media Type");
    // No Content-Type at all is read as JSON (curl -X PUT …/pause sends none).
    let mut c = Conn::open(w.addr);
    c.send_raw(b"PUT /connectors/c/pause HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(c.read_response().status, 202);
}

#[test]
fn loggers_change_the_live_log_filter() {
    // This test process's subscriber, reloadable, as `augur`'s main installs it.
    let b = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,augur_probe::quiet=warn",
        ))
        .with_writer(std::io::sink)
        .with_filter_reloading();
    let handle = b.reload_handle();
    b.init();
    augur_connect::loggers::install(
        "info,augur_probe::quiet=warn",
        std::sync::Arc::new(move |f: &str| {
            let filter = tracing_subscriber::EnvFilter::try_new(f).map_err(|e| e.to_string())?;
            handle.reload(filter).map_err(|e| e.to_string())
        }),
    );
    let broker = Tansu::start();
    let w = TestWorker::start(&broker.bootstrap());
    assert!(!tracing::enabled!(target: "augur_probe::quiet", tracing::Level::INFO));
    assert!(!tracing::enabled!(target: "augur_probe", tracing::Level::DEBUG));

    let all = w.get("/admin/loggers").json();
    assert_eq!(all["root"], json!({"level": "INFO", "last_modified": null}));
    assert_eq!(
        all["augur_probe::quiet"],
        json!({"level": "WARN", "last_modified": null})
    );
    assert_eq!(
        w.get("/admin/loggers/augur_probe::quiet").json(),
        json!({"level": "WARN", "last_modified": null})
    );
    assert_eq!(
        w.get("/admin/loggers/nothing.here").error(404),
        "Logger nothing.here not found."
    );

    // A prefix sets itself and its children, live.
    let r = w.put("/admin/loggers/augur_probe", &json!({"level": "debug"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!(["augur_probe", "augur_probe::quiet"]));
    assert!(tracing::enabled!(target: "augur_probe", tracing::Level::DEBUG));
    assert!(tracing::enabled!(target: "augur_probe::quiet", tracing::Level::DEBUG));
    assert!(!tracing::enabled!(target: "augur_probe", tracing::Level::TRACE));
    let one = w.get("/admin/loggers/augur_probe").json();
    assert_eq!(one["level"], "DEBUG");
    assert!(
        one["last_modified"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000)
    );

    // Refusals change nothing.
    assert_eq!(
        w.put("/admin/loggers/augur_probe", &json!({"level": "LOUD"}))
            .error(404),
        "invalid log level 'LOUD'."
    );
    assert_eq!(
        w.put("/admin/loggers/augur_probe", &json!({})).error(400),
        "Desired 'level' parameter was not specified in request."
    );
    w.put("/admin/loggers/a=trace,b", &json!({"level": "TRACE"}))
        .error(400);
    assert!(!tracing::enabled!(target: "augur_probe", tracing::Level::TRACE));

    // Cluster scope: 204 (this worker is the cluster); root sets everything.
    let r = w.put(
        "/admin/loggers/root?scope=cluster",
        &json!({"level": "ERROR"}),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(!tracing::enabled!(target: "augur_probe", tracing::Level::WARN));
    assert!(!tracing::enabled!(target: "anything_else", tracing::Level::INFO));
    assert_eq!(w.get("/admin/loggers").json()["root"]["level"], "ERROR");
}
