//! The Kafka path end to end over a real broker: capture (2022-era Debezium config with
//! ExtractNewRecordState) → Kafka → enrich → Kafka → JDBC sink (the original's Confluent
//! settings: auto.create, upsert, pk.mode=record_value, pk.fields=id, delete.enabled), then
//! scale-out with three enrichment processes in one group, one of them killed mid-stream.

use std::time::Duration;

use augur_testkit::{Tansu, TestPg};

use crate::support::pipeline::{
    CAR_DATA, Proc, assert_predicted_table, insert_listings, listings, wait_count,
};
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(120);

pub(crate) fn capture_args(
    db: &augur_testkit::TestDb,
    bootstrap: &str,
    offsets: &str,
    partitions: &str,
) -> Vec<String> {
    [
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector",
        ),
        ("plugin.name", "pgoutput"),
        ("database.hostname", "127.0.0.1"),
        ("database.user", "postgres"),
        ("database.password", "postgres"),
        ("database.server.name", "car_database"),
        ("table.include.list", "public.car_data"),
        ("transforms", "unwrap"),
        (
            "transforms.unwrap.type",
            "io.debezium.transforms.ExtractNewRecordState",
        ),
        ("transforms.unwrap.drop.tombstones", "false"),
        ("topic.creation.default.partitions", partitions),
        ("status.update.interval.ms", "200"),
    ]
    .iter()
    .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")])
    .chain([
        "--set".into(),
        format!("database.port={}", db.port),
        "--set".into(),
        format!("database.dbname={}", db.name),
        "--offsets".into(),
        offsets.to_string(),
        "--kafka".into(),
        bootstrap.to_string(),
    ])
    .collect()
}

pub(crate) fn sink_config(db: &augur_testkit::TestDb) -> String {
    serde_json::json!({
        "name": "jdbc-sink",
        "config": {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
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
            "value.converter": "org.apache.kafka.connect.json.JsonConverter"
        }
    })
    .to_string()
}

fn start_all(
    db: &augur_testkit::TestDb,
    broker: &Tansu,
    partitions: &str,
    enrichers: usize,
) -> (Proc, Vec<Proc>, Proc) {
    let dir = scratch_dir("kpath");
    let offsets = dir.join("offsets.json").display().to_string();
    let args = capture_args(db, &broker.bootstrap(), &offsets, partitions);
    let mut cargs = vec!["capture"];
    cargs.extend(args.iter().map(String::as_str));
    let capture = Proc::start("kpath-capture", &cargs);
    let bootstrap = broker.bootstrap();
    let enrich: Vec<Proc> = (0..enrichers)
        .map(|i| {
            Proc::start(
                &format!("kpath-enrich{i}"),
                &[
                    "enrich",
                    "--kafka",
                    &bootstrap,
                    "--topics",
                    "car_database.public.car_data",
                ],
            )
        })
        .collect();
    let sink_file = dir.join("sink.json");
    std::fs::write(&sink_file, sink_config(db)).unwrap();
    let sink = Proc::start(
        "kpath-sink",
        &[
            "sink",
            "--kafka",
            &bootstrap,
            "--config",
            &sink_file.display().to_string(),
        ],
    );
    (capture, enrich, sink)
}

#[test]
fn the_original_setup_end_to_end_over_a_real_broker() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let (capture, enrich, sink) = start_all(&db, &broker, "1", 1);
    let rows = listings(1000);
    insert_listings(&pg, &db, &rows);
    let count = "SELECT count(*) FROM car_data_predicted";
    wait_count(
        &pg,
        &db,
        count,
        1000,
        T,
        &format!(
            "sink table rows\ncapture:\n{}\nenrich:\n{}\nsink:\n{}",
            capture.log(),
            enrich[0].log(),
            sink.log()
        ),
    );
    assert_predicted_table(&pg, &db, "car_data_predicted");

    // Updates and deletes reach the sink table.
    pg.sql(
        &db,
        "UPDATE car_data SET mileage = mileage + 50000, price = price - 1000 WHERE id <= 10",
    );
    pg.sql(&db, "DELETE FROM car_data WHERE id BETWEEN 11 AND 20");
    wait_count(&pg, &db, count, 990, T, "rows after deletes");
    let deadline = std::time::Instant::now() + T;
    loop {
        let changed = pg.sql(&db, "SELECT count(*) FROM car_data s JOIN car_data_predicted p USING (id) WHERE s.mileage = p.mileage AND s.id <= 10");
        if changed.trim() == "10" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "updates did not reach the sink"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_predicted_table(&pg, &db, "car_data_predicted");
    for p in enrich {
        assert!(p.stop().success());
    }
    assert!(sink.stop().success());
    assert!(capture.stop().success());
}

#[test]
fn three_enrichers_share_the_work_and_survive_a_kill() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let (capture, mut enrich, sink) = start_all(&db, &broker, "3", 3);
    let rows = listings(3000);
    insert_listings(&pg, &db, &rows[..1500]);
    // Kill one enricher while rows are flowing.
    std::thread::sleep(Duration::from_millis(1500));
    enrich[1].kill();
    insert_listings(&pg, &db, &rows[1500..]);
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        3000,
        T,
        "sink table rows after a kill",
    );
    assert_predicted_table(&pg, &db, "car_data_predicted");
    let served: Vec<bool> = enrich
        .iter()
        .map(|p| p.log().contains("enrichment stage running"))
        .collect();
    assert!(served.iter().all(|s| *s), "all three enrichers joined");
    for p in enrich {
        drop(p);
    }
    drop(sink);
    drop(capture);
}

#[test]
fn the_embedded_pipeline_and_the_kafka_path_give_identical_tables() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let (capture, enrich, sink) = start_all(&db, &broker, "1", 1);
    let dir = scratch_dir("both");
    let run = Proc::start(
        "both-run",
        &[
            "run",
            "--source-url",
            &db.url,
            "--offsets",
            &dir.join("offsets.json").display().to_string(),
            "--set",
            "http.listen=",
            "--set",
            "output.table=car_data_predicted_embedded",
        ],
    );
    insert_listings(&pg, &db, &listings(1000));
    pg.sql(&db, "UPDATE car_data SET price = price + 1 WHERE id % 10 = 0; DELETE FROM car_data WHERE id % 97 = 0");
    let n: usize = pg
        .sql(&db, "SELECT count(*) FROM car_data")
        .trim()
        .parse()
        .unwrap();
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        n,
        T,
        "Kafka path",
    );
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted_embedded",
        n,
        T,
        &run.log(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let table = |t: &str| pg.sql(&db, &format!("SELECT * FROM {t} ORDER BY id"));
    let (kafka, embedded) = (
        table("car_data_predicted"),
        table("car_data_predicted_embedded"),
    );
    assert_eq!(kafka.lines().count(), n);
    assert!(kafka == embedded, "the two paths disagree");
    let types = |t: &str| {
        pg.sql(&db, &format!("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = '{t}'"))
    };
    assert_eq!(
        types("car_data_predicted"),
        types("car_data_predicted_embedded")
    );
    assert_predicted_table(&pg, &db, "car_data_predicted_embedded");
    assert!(run.stop().success());
    drop((capture, enrich, sink));
}

#[test]
fn augur_run_with_a_kafka_bootstrap_runs_the_same_stages_over_kafka() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    insert_listings(&pg, &db, &listings(300)[..100]);
    let dir = scratch_dir("runkafka");
    let run = Proc::start(
        "runkafka",
        &[
            "run",
            "--source-url",
            &db.url,
            "--offsets",
            &dir.join("offsets.json").display().to_string(),
            "--set",
            "http.listen=",
            "--set",
            &format!("kafka.bootstrap={}", broker.bootstrap()),
        ],
    );
    insert_listings(&pg, &db, &listings(300)[100..]);
    pg.sql(
        &db,
        "DELETE FROM car_data WHERE id <= 5; UPDATE car_data SET price = 1 WHERE id = 6",
    );
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        295,
        T,
        &run.log(),
    );
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted WHERE price = 1",
        1,
        T,
        "update",
    );
    assert_predicted_table(&pg, &db, "car_data_predicted");
    let topics = augur_testkit::kafka::read_topic(
        &broker.bootstrap(),
        "augur.public.car_data",
        1,
        Duration::from_secs(10),
    );
    assert!(
        !topics.is_empty(),
        "changes went through the broker:\n{}",
        run.log()
    );
    assert!(run.stop().success());
}

/// ALTER TABLE during a 10,000-row stream, capture → Kafka → Confluent sink with
/// `auto.evolve=true`: the sink table gains the added column (and the renamed one) and ends up
/// equal to the source, no row lost.
#[test]
fn columns_added_mid_stream_reach_the_sink_table_with_no_row_lost() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE s (id int PRIMARY KEY, mileage int, notes text)",
    );
    let dir = scratch_dir("evolve");
    let offsets = dir.join("offsets.json").display().to_string();
    let mut args = capture_args(&db, &broker.bootstrap(), &offsets, "1");
    for a in args.iter_mut() {
        if a == "table.include.list=public.car_data" {
            *a = "table.include.list=public.s".into();
        }
    }
    let mut cargs = vec!["capture"];
    cargs.extend(args.iter().map(String::as_str));
    let capture = Proc::start("evolve-capture", &cargs);
    let sink_file = dir.join("sink.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&sink_config(&db)).unwrap();
    cfg["config"]["topics"] = "car_database.public.s".into();
    cfg["config"]["table.name.format"] = "s_copy".into();
    cfg["config"]["auto.evolve"] = "true".into();
    std::fs::write(&sink_file, cfg.to_string()).unwrap();
    let bootstrap = broker.bootstrap();
    let sink_path = sink_file.display().to_string();
    let sink = Proc::start(
        "evolve-sink",
        &["sink", "--kafka", &bootstrap, "--config", &sink_path],
    );
    let chunk = |from: i32, extra: &str| {
        format!(
            "INSERT INTO s SELECT g, g * 10, 'n'{extra} FROM generate_series({from}, {}) g",
            from + 499
        )
    };
    for c in 0..20 {
        if c == 10 {
            pg.sql(&db, "ALTER TABLE s ADD COLUMN extra int DEFAULT 7");
        }
        pg.sql(
            &db,
            &chunk(c * 500 + 1, if c >= 10 { ", g % 3" } else { "" }),
        );
    }
    pg.sql(&db, "ALTER TABLE s RENAME COLUMN extra TO colour_code");
    pg.sql(&db, "INSERT INTO s VALUES (10001, 1, 'n', 1)");
    let logs = || format!("capture:\n{}\nsink:\n{}", capture.log(), sink.log());
    wait_count(&pg, &db, "SELECT count(*) FROM s_copy", 10_001, T, &logs());
    let cols = pg.sql(
        &db,
        "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 's_copy'",
    );
    assert_eq!(
        cols.trim(),
        "id,mileage,notes,extra,colour_code",
        "{}",
        logs()
    );
    let differ = pg.sql(
        &db,
        "SELECT count(*) FROM s FULL JOIN s_copy c USING (id) \
         WHERE c.id IS NULL OR s.id IS NULL OR s.mileage IS DISTINCT FROM c.mileage \
            OR s.notes IS DISTINCT FROM c.notes \
            OR (s.id <= 5000 AND c.extra IS NOT NULL) \
            OR (s.id BETWEEN 5001 AND 10000 AND c.extra IS DISTINCT FROM s.colour_code) \
            OR (s.id = 10001 AND c.colour_code IS DISTINCT FROM s.colour_code)",
    );
    assert_eq!(differ.trim(), "0", "rows that differ\n{}", logs());
    drop(sink);
    drop(capture);
}

/// Two `augur run` processes over one Kafka with the same config (each its own offsets file, as
/// on two machines): exactly one streams from the slot, the other stands by; the enrichment and
/// sink groups have both as members. The one streaming is killed (SIGKILL) in the middle of
/// 4,000 inserts: the other takes the slot over, resumes from the offsets the first left in
/// Kafka (not from its own empty file: no second snapshot), and every row reaches the predicted
/// table with the right price.
#[test]
fn two_augur_runs_share_one_pipeline_and_the_standby_takes_over_the_capture() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let rows = listings(4000);
    insert_listings(&pg, &db, &rows[..500]);
    let bootstrap = format!("kafka.bootstrap={}", broker.bootstrap());
    let start = |name: &str| {
        let dir = scratch_dir(name);
        let offsets = dir.join("offsets.json").display().to_string();
        Proc::start(
            name,
            &[
                "run",
                "--source-url",
                &db.url,
                "--offsets",
                &offsets,
                "--set",
                "http.listen=",
                "--set",
                &bootstrap,
                "--set",
                "source.slot.retry.delay.ms=300",
                "--set",
                "kafka.consumer.session.timeout.ms=6000",
                "--set",
                "kafka.consumer.heartbeat.interval.ms=500",
            ],
        )
    };
    let mut a = start("share-a");
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        500,
        T,
        &a.log(),
    );
    let b = start("share-b");
    let deadline = std::time::Instant::now() + T;
    while !b.log().contains("standing by") {
        assert!(
            std::time::Instant::now() < deadline,
            "b stands by:\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let snapshots = |p: &Proc| p.log().matches("snapshot is durable downstream").count();
    assert_eq!(snapshots(&b), 0, "{}", b.log());

    // Rows keep arriving while the capture's owner dies.
    std::thread::scope(|s| {
        s.spawn(|| {
            for chunk in rows[500..].chunks(100) {
                insert_listings(&pg, &db, chunk);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        std::thread::sleep(Duration::from_millis(800));
        a.kill();
    });
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        4000,
        T,
        &b.log(),
    );
    assert_predicted_table(&pg, &db, "car_data_predicted");
    let log = b.log();
    assert!(
        !log.contains("standing by") || log.contains("streaming"),
        "{log}"
    );
    assert_eq!(
        snapshots(&b),
        0,
        "the standby took no snapshot of its own:\n{log}"
    );
    let offsets = augur_testkit::kafka::read_topic(
        &broker.bootstrap(),
        "augur.offsets",
        1,
        Duration::from_secs(10),
    );
    assert!(!offsets.is_empty(), "the offsets are in Kafka");
    drop(b);
}
