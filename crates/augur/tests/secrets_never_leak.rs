//! A full run with every kind of credential configured — the database password, a wrong one,
//! the Kafka SASL password, the REST API's Basic password — and every log line (at debug
//! level) and every REST response searched for them: none may appear.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use augur_testkit::broker_proxy::Front;
use augur_testkit::http::Conn;
use augur_testkit::tls::TestCa;
use augur_testkit::{Tansu, TestPg};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::pipeline::{CAR_DATA, Proc, insert_listings, listings, wait_count};
use crate::support::scratch_dir;

const T: Duration = Duration::from_secs(120);
const DB_PW: &str = "pw-db-8e2c41a7";
const WRONG_PW: &str = "pw-wrong-0d7b2c";
const KAFKA_PW: &str = "pw-kafka-5f0e93";
const REST_PW: &str = "pw-rest-77c3d1";
const SECRETS: [&str; 4] = [DB_PW, WRONG_PW, KAFKA_PW, REST_PW];

/// Every response body and header of the REST calls made, for the final search.
struct Rest {
    addr: SocketAddr,
    auth: String,
    seen: Vec<String>,
}

impl Rest {
    fn call(&mut self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let r = Conn::open(self.addr).request(
            method,
            path,
            &[("authorization", &self.auth), ("connection", "close")],
            body.as_bytes(),
        );
        self.seen.push(format!(
            "{method} {path} → {} {:?} {}",
            r.status,
            r.headers,
            r.text()
        ));
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }
}

fn source(db: &augur_testkit::TestDb, password: &str, prefix: &str, slot: &str) -> Value {
    json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "database.hostname": "127.0.0.1",
        "database.port": db.port.to_string(),
        "database.user": "app_user",
        "database.password": password,
        "database.dbname": db.name,
        "topic.prefix": prefix,
        "slot.name": slot,
        "table.include.list": "public.car_data",
        "transforms": "unwrap",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
    })
}

fn sink(db: &augur_testkit::TestDb) -> Value {
    json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "topics": "car_data_predicted",
        "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/{}?user=app_user&password={DB_PW}", db.port, db.name),
        "auto.create": "true",
        "insert.mode": "upsert",
        "pk.mode": "record_value",
        "pk.fields": "id",
    })
}

fn wait_state(rest: &mut Rest, name: &str, task_state: &str) -> Value {
    let deadline = Instant::now() + T;
    loop {
        let (_, s) = rest.call("GET", &format!("/connectors/{name}/status"), None);
        if s["tasks"][0]["state"] == task_state {
            return s;
        }
        assert!(Instant::now() < deadline, "{name} never {task_state}: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(
            !text.contains(s),
            "{what} contains a password ({s}):\n{text}"
        );
    }
}

#[test]
fn no_password_in_any_log_line_or_rest_response_of_a_full_run() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        &format!("CREATE ROLE app_user LOGIN SUPERUSER PASSWORD '{DB_PW}'"),
    );
    pg.sql(&db, CAR_DATA);
    let ca = TestCa::new("leak CA");
    let front = Front::tls(&ca.server(&["localhost"]), None).with_users(&[("worker", KAFKA_PW)]);
    let (_broker, _proxy, bootstrap) = Tansu::start_behind(front);
    let dir = scratch_dir("leaks");
    let ca_file = ca.write(&dir, "ca.pem").display().to_string();
    let client = dir.join("client.properties");
    std::fs::write(&client, format!(
        "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nssl.ca.location={ca_file}\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"worker\" password=\"{KAFKA_PW}\";\n"
    )).unwrap();
    let creds = dir.join("rest.properties");
    std::fs::write(&creds, format!("admin: {REST_PW}\n")).unwrap();
    let port = augur_pgcluster::free_port().unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let (client, creds, listen) = (
        client.display().to_string(),
        creds.display().to_string(),
        addr.to_string(),
    );
    let worker = Proc::start_logging(
        "leaks-connect",
        &[
            "connect",
            "--kafka",
            &bootstrap,
            "--kafka-config",
            &client,
            "--rest-auth-file",
            &creds,
            "--listen",
            &listen,
        ],
        "debug",
    );
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{REST_PW}"))
    );
    let mut rest = Rest {
        addr,
        auth,
        seen: Vec::new(),
    };
    let deadline = Instant::now() + T;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "worker did not listen:\n{}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let create = |rest: &mut Rest, name: &str, config: Value| {
        let (status, body) = rest.call(
            "POST",
            "/connectors",
            Some(&json!({"name": name, "config": config})),
        );
        assert_eq!(status, 201, "{body}");
    };
    create(
        &mut rest,
        "src",
        source(&db, DB_PW, "car_database", "leak_src"),
    );
    create(
        &mut rest,
        "enrich",
        json!({
            "connector.class": "io.augur.connect.EnrichConnector",
            "topics": "car_database.public.car_data",
            "output.topic": "car_data_predicted",
        }),
    );
    create(&mut rest, "sink", sink(&db));
    create(
        &mut rest,
        "bad-src",
        source(&db, WRONG_PW, "bad", "leak_bad"),
    );
    for name in ["src", "enrich", "sink"] {
        wait_state(&mut rest, name, "RUNNING");
    }
    let failed = wait_state(&mut rest, "bad-src", "FAILED");
    assert!(
        failed["tasks"][0]["trace"]
            .as_str()
            .is_some_and(|t| t.contains("password authentication failed")),
        "{failed}"
    );

    insert_listings(&pg, &db, &listings(200));
    wait_count(
        &pg,
        &db,
        "SELECT count(*) FROM car_data_predicted",
        200,
        T,
        &worker.log(),
    );

    // Every read the API offers, and the error paths that echo input.
    rest.call("GET", "/", None);
    rest.call("GET", "/connectors?expand=status&expand=info", None);
    for name in ["src", "enrich", "sink", "bad-src"] {
        for tail in [
            "",
            "/config",
            "/status",
            "/tasks",
            "/tasks/0/status",
            "/offsets",
        ] {
            rest.call("GET", &format!("/connectors/{name}{tail}"), None);
        }
    }
    let mut invalid = source(&db, DB_PW, "car_database", "leak_src");
    invalid["snapshot.mode"] = json!("never-ever");
    invalid["connector.class"] = json!("io.debezium.connector.postgresql.PostgresConnector");
    rest.call(
        "PUT",
        "/connector-plugins/PostgresConnector/config/validate",
        Some(&invalid),
    );
    rest.call(
        "POST",
        "/connectors",
        Some(&json!({"name": "invalid", "config": invalid})),
    );
    rest.call(
        "PUT",
        "/connectors/src/config",
        Some(&source(&db, WRONG_PW, "car_database", "leak_src")),
    );
    rest.call(
        "POST",
        "/connectors/bad-src/restart?includeTasks=true",
        None,
    );
    rest.call("GET", "/connectors/src/status", None);
    for seen in &rest.seen {
        assert_clean("a REST response", seen);
    }
    assert!(rest.seen.len() > 30);
    for name in ["src", "enrich", "sink", "bad-src"] {
        rest.call("DELETE", &format!("/connectors/{name}"), None);
    }
    let log_file = worker.1.clone();
    let _ = worker.stop();
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(log.lines().count() > 20, "a debug log of the run:\n{log}");
    assert_clean("the connect worker's log", &log);

    // The same credentials through `augur run` over Kafka, and a wrong password at start.
    let run_db = pg.database();
    pg.sql(&run_db, CAR_DATA);
    insert_listings(&pg, &run_db, &listings(50));
    let url = |pw: &str| {
        format!(
            "postgres://app_user:{pw}@127.0.0.1:{}/{}",
            run_db.port, run_db.name
        )
    };
    let sets = [
        format!("kafka.bootstrap={bootstrap}"),
        "kafka.security.protocol=SASL_SSL".into(),
        "kafka.sasl.mechanism=SCRAM-SHA-512".into(),
        "kafka.sasl.username=worker".into(),
        format!("kafka.sasl.password={KAFKA_PW}"),
        format!("kafka.ssl.ca.location={ca_file}"),
        "http.listen=".into(),
    ];
    let offsets = dir.join("run-offsets.json").display().to_string();
    let good_url = url(DB_PW);
    let mut args = vec!["run", "--source-url", &good_url, "--offsets", &offsets];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let run = Proc::start_logging("leaks-run", &args, "debug");
    wait_count(
        &pg,
        &run_db,
        "SELECT count(*) FROM car_data_predicted",
        50,
        T,
        &run.log(),
    );
    let log_file = run.1.clone();
    let _ = run.stop();
    assert_clean(
        "augur run's log",
        &std::fs::read_to_string(&log_file).unwrap(),
    );
    let bad_url = url(WRONG_PW);
    args[2] = &bad_url;
    let mut bad = Proc::start_logging("leaks-run-bad", &args, "debug");
    let status =
        crate::support::wait_timeout(&mut bad.0, T).expect("a wrong password stops augur run");
    assert!(!status.success());
    let log = bad.log();
    assert!(log.contains("password authentication failed"), "{log}");
    assert_clean("augur run's log with a wrong password", &log);
}

/// Over Kafka too, a wrong database password stops `augur run` at start with the reason.
#[test]
fn a_wrong_database_password_stops_augur_run_over_kafka() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    let broker = Tansu::start();
    let url = format!(
        "postgres://postgres:{WRONG_PW}@127.0.0.1:{}/{}",
        db.port, db.name
    );
    let dir = scratch_dir("leaks-wrong");
    let offsets = dir.join("o.json").display().to_string();
    let kafka = format!("kafka.bootstrap={}", broker.bootstrap());
    let args = [
        "run",
        "--source-url",
        &url,
        "--offsets",
        &offsets,
        "--set",
        &kafka,
        "--set",
        "http.listen=",
    ];
    let mut bad = Proc::start_logging("leaks-wrong-run", &args, "debug");
    let status = crate::support::wait_timeout(&mut bad.0, Duration::from_secs(60));
    let log = bad.log();
    assert!(
        status.is_some_and(|s| !s.success()),
        "still running or succeeded:\n{log}"
    );
    assert!(log.contains("password authentication failed"), "{log}");
    assert_clean("augur run's log with a wrong password", &log);
}
