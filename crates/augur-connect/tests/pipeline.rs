//! The original setup end to end, through the Connect REST API over a real broker: PostgreSQL,
//! Tansu and `augur connect` running three connectors POSTed as the original system POSTed
//! them — a Debezium PostgreSQL source with the 2022-era option names, the enrichment stage,
//! and a Confluent JDBC sink (`auto.create`, `upsert`, `pk.mode=record_value`, `pk.fields=id`,
//! `delete.enabled`) into `car_data_predicted`.

use std::time::{Duration, Instant};

use augur_testkit::{Tansu, TestDb, TestPg};
use serde_json::{Value, json};

use crate::support::TestWorker;
use crate::support::pipeline::{
    CAR_DATA, assert_predicted_table, insert_listings, listings, wait_count,
};

const T: Duration = Duration::from_secs(120);

/// The Debezium source config, with the 2022-era option names.
fn source_config(db: &TestDb) -> Value {
    json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "database.hostname": "127.0.0.1",
        "database.port": db.port.to_string(),
        "database.user": "postgres",
        "database.password": "postgres",
        "database.dbname": db.name,
        "database.server.name": "car_database",
        "table.include.list": "public.car_data",
        "transforms": "unwrap",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.drop.tombstones": "false",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "status.update.interval.ms": "200",
    })
}

/// The enrichment stage: car_database.public.car_data → car_data_predicted.
fn enrich_config() -> Value {
    json!({
        "connector.class": "io.augur.connect.EnrichConnector",
        "topics": "car_database.public.car_data",
        "output.topic": "car_data_predicted",
        "model": "ford-price:latest",
    })
}

/// The original Confluent JDBC sink config.
fn sink_config(db: &TestDb) -> Value {
    json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": "car_data_predicted",
        "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/{}", db.port, db.name),
        "connection.user": "postgres",
        "connection.password": "postgres",
        "auto.create": "true",
        "insert.mode": "upsert",
        "pk.mode": "record_value",
        "pk.fields": "id",
        "delete.enabled": "true",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    })
}

#[test]
fn the_original_setup_through_the_connect_api() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let w = TestWorker::start(&broker.bootstrap());

    w.create("car-source", &source_config(&db));
    w.create("car-enrich", &enrich_config());
    w.create("car-sink", &sink_config(&db));
    for name in ["car-source", "car-enrich", "car-sink"] {
        w.wait_state(name, "RUNNING");
    }

    let rows = listings(1000);
    assert_eq!(rows.len(), 1000);
    insert_listings(&pg, &db, &rows);
    let count = "SELECT count(*) FROM car_data_predicted";
    wait_count(&pg, &db, count, 1000, T, "sink table rows");
    assert_predicted_table(&pg, &db, "car_data_predicted");
    // The source column is INTEGER, so the enriched field kept int32 and the auto-created
    // column is an integer too.
    let ty = pg.sql(
        &db,
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'car_data_predicted' AND column_name = 'suggestedprice'",
    );
    assert_eq!(ty.trim(), "integer");

    // Updates and deletes reach the sink table.
    pg.sql(
        &db,
        "UPDATE car_data SET mileage = mileage + 50000, price = price - 1000 WHERE id <= 10",
    );
    pg.sql(&db, "DELETE FROM car_data WHERE id BETWEEN 11 AND 20");
    wait_count(&pg, &db, count, 990, T, "rows after deletes");
    let deadline = Instant::now() + T;
    loop {
        let changed = pg.sql(
            &db,
            "SELECT count(*) FROM car_data s JOIN car_data_predicted p USING (id) WHERE s.mileage = p.mileage AND s.id <= 10",
        );
        if changed.trim() == "10" {
            break;
        }
        assert!(Instant::now() < deadline, "updates did not reach the sink");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_predicted_table(&pg, &db, "car_data_predicted");

    // Every connector is still running, and reports where it is.
    for name in ["car-source", "car-enrich", "car-sink"] {
        let s = w.status(name);
        assert_eq!(s["connector"]["state"], "RUNNING", "{s}");
        assert_eq!(s["tasks"][0]["state"], "RUNNING", "{s}");
    }
    let source = w.get("/connectors/car-source/offsets").json();
    assert_eq!(
        source["offsets"][0]["partition"],
        json!({"server": "car_database"})
    );
    assert!(
        source["offsets"][0]["offset"]["lsn"].as_u64().is_some(),
        "{source}"
    );
    let sink = w.get("/connectors/car-sink/offsets").json();
    assert_eq!(
        sink["offsets"][0]["partition"],
        json!({"kafka_topic": "car_data_predicted", "kafka_partition": 0})
    );
    assert!(
        sink["offsets"][0]["offset"]["kafka_offset"]
            .as_i64()
            .unwrap()
            >= 1000,
        "{sink}"
    );

    // Each connector's active topics (KIP-558): written to, read from, or both.
    let topics = |name: &str| w.get(&format!("/connectors/{name}/topics")).json();
    assert_eq!(
        topics("car-source"),
        json!({"car-source": {"topics": ["car_database.public.car_data"]}})
    );
    assert_eq!(
        topics("car-enrich"),
        json!({"car-enrich": {"topics": ["car_data_predicted", "car_database.public.car_data"]}})
    );
    assert_eq!(
        topics("car-sink"),
        json!({"car-sink": {"topics": ["car_data_predicted"]}})
    );
    let r = w.put("/connectors/car-sink/topics/reset", &Value::Null);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(topics("car-sink"), json!({"car-sink": {"topics": []}}));
    // They are durable: a restarted worker reports them (the reset one stays empty).
    w.stop().expect("clean stop");
    let w = TestWorker::start(&broker.bootstrap());
    let topics = |name: &str| w.get(&format!("/connectors/{name}/topics")).json();
    assert_eq!(
        topics("car-source"),
        json!({"car-source": {"topics": ["car_database.public.car_data"]}})
    );
    assert_eq!(topics("car-sink"), json!({"car-sink": {"topics": []}}));
    assert_eq!(w.delete("/connectors/car-enrich").status, 204);
    assert_eq!(topics("car-enrich"), json!({"car-enrich": {"topics": []}}));
    w.stop().expect("clean stop");
}

/// The same three connectors with the broker reachable only over `SASL_SSL` (SCRAM-SHA-256)
/// with a client certificate (Tansu behind a front doing TLS and SASL), the worker's client
/// settings in Java's spelling (`sasl.jaas.config`, `ssl.truststore.*` and `ssl.keystore.*` as
/// PEM) — for its own state topics and every connector's clients — and one connector
/// overriding its producer's TLS files in librdkafka's spelling. No response of the REST API
/// carries the password.
#[test]
fn the_original_setup_through_the_connect_api_over_sasl_ssl() {
    use augur_testkit::broker_proxy::Front;
    use augur_testkit::tls::TestCa;
    let ca = TestCa::new("connect CA");
    let password = "pw-connect-5d1e";
    let front =
        Front::tls(&ca.server(&["localhost"]), Some(&ca)).with_users(&[("worker", password)]);
    let (_broker, _proxy, bootstrap) = Tansu::start_behind(front);
    let dir = std::env::temp_dir().join(format!("augur-connect-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = ca.write(&dir, "ca.pem");
    let client = ca.client("connect-worker");
    let keystore = dir.join("keystore.pem");
    std::fs::write(&keystore, format!("{}{}", client.key, client.cert)).unwrap();
    let (cert, key) = client.write(&dir, "client");
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"worker\" password=\"{password}\";"
    );
    let pairs = [
        ("security.protocol", "SASL_SSL".to_string()),
        ("sasl.mechanism", "SCRAM-SHA-256".into()),
        ("sasl.jaas.config", jaas),
        ("ssl.truststore.type", "PEM".into()),
        ("ssl.truststore.location", ca_file.display().to_string()),
        ("ssl.keystore.type", "PEM".into()),
        ("ssl.keystore.location", keystore.display().to_string()),
    ];
    let mut cfg = augur_connect::config::WorkerConfig::new(&bootstrap);
    cfg.addr = "127.0.0.1:0".parse().unwrap();
    cfg.shutdown_timeout = Duration::from_secs(20);
    cfg.client = augur_runtime::security::ClientSettings::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
    .unwrap();
    let w = TestWorker::start_with(cfg);

    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let mut source = source_config(&db);
    source["producer.override.ssl.ca.location"] = json!(ca_file.display().to_string());
    source["producer.override.ssl.certificate.location"] = json!(cert.display().to_string());
    source["producer.override.ssl.key.location"] = json!(key.display().to_string());
    w.create("car-source", &source);
    w.create("car-enrich", &enrich_config());
    w.create("car-sink", &sink_config(&db));
    for name in ["car-source", "car-enrich", "car-sink"] {
        w.wait_state(name, "RUNNING");
    }
    insert_listings(&pg, &db, &listings(300));
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        300,
        T,
        "sink table rows",
    );
    assert_predicted_table(&pg, &db, "car_data_predicted");
    for path in [
        "/connectors?expand=status&expand=info",
        "/connectors/car-source/config",
        "/connectors/car-sink/status",
    ] {
        let body = w.get(path).text();
        assert!(!body.contains(password), "{path}: {body}");
    }
    w.stop().expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}
