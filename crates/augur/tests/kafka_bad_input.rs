//! Bad input on the Kafka path: a non-JSON record and a record missing a feature go to the
//! enrichment stage's dead-letter topic with the reason in Kafka Connect's headers while good
//! records keep flowing; a schema-less record is refused by the sink (to its dead-letter topic
//! with errors.tolerance=all, or by stopping with a clear error and committing nothing with the
//! default errors.tolerance=none); a sink table whose column type conflicts stops the sink
//! with a clear error, and nothing is lost: fixed, it writes everything.

use std::time::Duration;

use augur_testkit::kafka::{create_topic, produce, read_topic};
use augur_testkit::{Tansu, TestPg};

use crate::support::pipeline::{Proc, wait_count};
use crate::support::{scratch_dir, wait_timeout};

const T: Duration = Duration::from_secs(60);

const ROW_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"model"},{"type":"int32","optional":true,"field":"year"},{"type":"string","optional":true,"field":"transmission"},{"type":"int32","optional":true,"field":"mileage"},{"type":"string","optional":true,"field":"fueltype"},{"type":"int32","optional":true,"field":"tax"},{"type":"double","optional":true,"field":"mpg"},{"type":"double","optional":true,"field":"enginesize"}],"optional":false,"name":"srv.public.cars.Value"}"#;

fn row(id: i32, year: &str) -> String {
    format!(
        r#"{{"schema":{ROW_SCHEMA},"payload":{{"id":{id},"model":" Focus","year":{year},"transmission":"Manual","mileage":9083,"fueltype":"Petrol","tax":150,"mpg":57.7,"enginesize":1.0}}}}"#
    )
}

fn key(id: i32) -> String {
    format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}],"optional":false,"name":"srv.public.cars.Key"}},"payload":{{"id":{id}}}}}"#
    )
}

fn header<'a>(r: &'a augur_testkit::kafka::ReadRecord, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

fn sink_config(db: &augur_testkit::TestDb, name: &str, topic: &str, tolerance: &str) -> String {
    let mut c = serde_json::json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "name": name,
        "topics": topic,
        "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/{}", db.port, db.name),
        "connection.user": "postgres",
        "connection.password": "postgres",
        "auto.create": "true",
        "insert.mode": "upsert",
        "pk.mode": "record_key",
        "errors.tolerance": tolerance,
    });
    if tolerance == "all" {
        c["errors.deadletterqueue.topic.name"] = serde_json::Value::from(format!("{name}.dlq"));
    }
    let path = scratch_dir(name).join("sink.json");
    std::fs::write(&path, c.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn bad_records_go_aside_and_good_ones_keep_flowing() {
    let broker = Tansu::start();
    let pg = TestPg::start();
    let db = pg.database();
    let b = broker.bootstrap();
    for t in ["cars", "priced", "priced.dlq", "tolerant.dlq"] {
        create_topic(&b, t, 1);
    }
    produce(
        &b,
        "cars",
        Some(key(1).as_bytes()),
        Some(row(1, "2018").as_bytes()),
    );
    produce(
        &b,
        "cars",
        Some(key(2).as_bytes()),
        Some(b"this is not json"),
    );
    produce(
        &b,
        "cars",
        Some(key(3).as_bytes()),
        Some(row(3, "null").as_bytes()),
    );
    produce(
        &b,
        "cars",
        Some(key(4).as_bytes()),
        Some(row(4, "2017").as_bytes()),
    );
    let enrich = Proc::start(
        "bad-enrich",
        &[
            "enrich",
            "--kafka",
            &b,
            "--topics",
            "cars",
            "--output-topic",
            "priced",
        ],
    );
    let out = read_topic(&b, "priced", 2, T);
    assert_eq!(
        out.len(),
        2,
        "the good records were enriched:\n{}",
        enrich.log()
    );
    for r in &out {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        assert!(v["payload"]["suggestedprice"].as_f64().unwrap() > 1000.0);
        assert_eq!(header(r, "__augur.model"), Some("ford-price:1"));
    }
    let dead = read_topic(&b, "priced.dlq", 2, T);
    assert_eq!(dead.len(), 2);
    assert!(
        header(&dead[0], "__connect.errors.exception.message")
            .unwrap()
            .contains("not JSON")
    );
    assert!(
        header(&dead[1], "__connect.errors.exception.message")
            .unwrap()
            .contains("field year: missing")
    );
    assert_eq!(header(&dead[1], "__connect.errors.offset"), Some("2"));
    assert_eq!(
        dead[0].value.as_deref(),
        Some(&b"this is not json"[..]),
        "the original record is kept"
    );

    // The sink: a schema-less record goes to its dead-letter topic; the rest is written.
    produce(
        &b,
        "priced",
        Some(key(9).as_bytes()),
        Some(br#"{"id":9,"model":" Ka"}"#),
    );
    let sink = Proc::start(
        "bad-sink",
        &[
            "sink",
            "--kafka",
            &b,
            "--config",
            &sink_config(&db, "tolerant", "priced", "all"),
        ],
    );
    wait_count(&pg, &db, "SELECT count(*) FROM priced", 2, T, &sink.log());
    let dead = read_topic(&b, "tolerant.dlq", 1, T);
    assert!(
        header(&dead[0], "__connect.errors.exception.message")
            .unwrap()
            .contains("no schema")
    );
    drop((enrich, sink));
}

#[test]
fn a_sink_that_cannot_write_stops_clearly_and_loses_nothing() {
    let broker = Tansu::start();
    let pg = TestPg::start();
    let db = pg.database();
    let b = broker.bootstrap();
    for t in ["strict", "typed"] {
        create_topic(&b, t, 1);
    }
    // errors.tolerance=none: a schema-less record stops the sink before it commits anything.
    produce(
        &b,
        "strict",
        Some(key(1).as_bytes()),
        Some(row(1, "2018").as_bytes()),
    );
    produce(&b, "strict", Some(key(2).as_bytes()), Some(br#"{"id":2}"#));
    let cfg = sink_config(&db, "strict", "strict", "none");
    let mut sink = Proc::start("strict-sink", &["sink", "--kafka", &b, "--config", &cfg]);
    let status = wait_timeout(&mut sink.0, T).expect("the sink stops");
    assert!(!status.success());
    let log = sink.log();
    assert!(
        log.contains("record strict-0@1 cannot be written")
            && log.contains("no schema")
            && log.contains("fix: fix the producer, or set errors.tolerance=all"),
        "{log}"
    );
    assert!(
        pg.cluster
            .psql(&db.name, "SELECT count(*) FROM strict")
            .is_err()
            || pg.sql(&db, "SELECT count(*) FROM strict").trim() == "0",
        "the batch with the bad record was not committed"
    );

    // A column whose type conflicts: a clear error, offsets not committed; once the table is
    // fixed, everything arrives.
    produce(
        &b,
        "typed",
        Some(key(1).as_bytes()),
        Some(row(1, "2018").as_bytes()),
    );
    produce(
        &b,
        "typed",
        Some(key(4).as_bytes()),
        Some(row(4, "2017").as_bytes()),
    );
    pg.sql(&db, "CREATE TABLE typed (id int PRIMARY KEY, model int, year int, transmission text, mileage int, fueltype text, tax int, mpg float8, enginesize float8)");
    let cfg = sink_config(&db, "typed", "typed", "none");
    let mut sink = Proc::start("typed-sink", &["sink", "--kafka", &b, "--config", &cfg]);
    let status = wait_timeout(&mut sink.0, T).expect("the sink stops");
    assert!(!status.success());
    assert!(
        sink.log().contains("cannot write rows into typed"),
        "{}",
        sink.log()
    );
    pg.sql(&db, "ALTER TABLE typed ALTER COLUMN model TYPE text");
    let sink = Proc::start("typed-sink2", &["sink", "--kafka", &b, "--config", &cfg]);
    wait_count(&pg, &db, "SELECT count(*) FROM typed", 2, T, &sink.log());
    drop(sink);
}

/// The original glue script wrote its float prediction into the `price` field of the row it
/// read, keeping the row's schema (`int32`): Kafka's JsonConverter reads `12345.67` there as
/// `12345` (Jackson's `intValue()` truncates), so the Confluent JDBC sink stores 12345. augur's
/// sink reads it the same way; a value that does not fit an int32 is still refused.
#[test]
fn a_float_in_an_int32_field_lands_truncated_as_the_original_stack_wrote_it() {
    let broker = Tansu::start();
    let pg = TestPg::start();
    let db = pg.database();
    let b = broker.bootstrap();
    create_topic(&b, "glue", 1);
    let schema = r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"model"},{"type":"int32","optional":true,"field":"price"}],"optional":false,"name":"car_database.public.car_data.Value"}"#;
    for (id, price) in [(1, "12345.67"), (2, "9999.0"), (3, "-0.5"), (4, "15000")] {
        let value = format!(
            r#"{{"schema":{schema},"payload":{{"id":{id},"model":" Fiesta","price":{price}}}}}"#
        );
        produce(&b, "glue", Some(key(id).as_bytes()), Some(value.as_bytes()));
    }
    let cfg = sink_config(&db, "glue", "glue", "none");
    let sink = Proc::start("glue-sink", &["sink", "--kafka", &b, "--config", &cfg]);
    wait_count(&pg, &db, "SELECT count(*) FROM glue", 4, T, &sink.log());
    let rows = pg.sql(&db, "SELECT id, price FROM glue ORDER BY id");
    let rows: Vec<&str> = rows.lines().map(str::trim).collect();
    assert_eq!(
        rows,
        ["1|12345", "2|9999", "3|0", "4|15000"],
        "{}",
        sink.log()
    );
    drop(sink);
}
