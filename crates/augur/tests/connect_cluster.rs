//! `augur connect --distributed`: workers that form one cluster through the broker's group
//! coordinator (issue 14). Three worker processes on one Tansu broker run the original three
//! connectors (capture, enrichment with `tasks.max=3`, JDBC sink with `tasks.max=3`) over
//! six-partition topics; the work spreads over all three (their statuses say where), the worker
//! holding the capture is killed with SIGKILL during a 20,000-row load and the capture resumes
//! on another, a fourth worker joins mid-load and takes work without the others' tasks
//! restarting, and every worker in turn is killed and restarted — `car_data_predicted` is
//! exactly `car_data`, with the right prices, after each step.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use augur_testkit::http::request;
use augur_testkit::{Tansu, TestDb, TestPg};
use serde_json::{Value, json};

use crate::support::pipeline::{CAR_DATA, Proc, assert_predicted_table, count, listings};

/// How long anything may take.
const T: Duration = Duration::from_secs(180);
/// The connectors and their task counts.
const CONNECTORS: [(&str, usize); 3] = [("car-source", 1), ("car-enrich", 3), ("car-sink", 3)];

/// One `augur connect --distributed` process.
struct Worker {
    /// The process.
    proc: Proc,
    /// Its REST address (also its worker id).
    addr: SocketAddr,
}

/// The workers' ids.
fn ids(ws: &[Worker]) -> Vec<String> {
    ws.iter().map(Worker::id).collect()
}

/// A free loopback port.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Worker {
    /// Starts a worker of `group` on `addr`; returns once its REST API answers.
    fn start(bootstrap: &str, group: &str, addr: SocketAddr) -> Worker {
        let listen = addr.to_string();
        let level = std::env::var("AUGUR_CLUSTER_LOG").unwrap_or_else(|_| "info".into());
        let proc = Proc::start_logging(
            &format!("cluster-{}", addr.port()),
            &[
                "connect",
                "--kafka",
                bootstrap,
                "--listen",
                &listen,
                "--group-id",
                group,
                "--distributed",
                "--session-timeout-ms",
                "6000",
                "--heartbeat-interval-ms",
                "1000",
                "--rebalance-timeout-ms",
                "20000",
                "--shutdown-timeout",
                "20",
            ],
            &level,
        );
        let w = Worker { proc, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "worker {addr} did not start: {}",
                w.proc.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        w
    }

    /// Its worker id.
    fn id(&self) -> String {
        self.addr.to_string()
    }

    /// `GET /connectors/{name}/status`, if it answers 200.
    fn status(&self, name: &str) -> Option<Value> {
        let r = request(self.addr, "GET", &format!("/connectors/{name}/status"), b"");
        (r.status == 200).then(|| r.json())
    }

    /// How many times this worker started `connector`'s task `task`.
    fn starts(&self, connector: &str, task: usize) -> usize {
        let log = self.proc.log();
        log.lines()
            .filter(|l| {
                l.contains("task started")
                    && l.contains(&format!("connector={connector}"))
                    && l.contains(&format!("task={task}"))
            })
            .count()
    }
}

/// Where every unit runs, as `worker`'s status API says — once every connector and task is
/// `RUNNING`; `None` before.
fn placement(worker: &Worker) -> Option<BTreeMap<(String, i64), String>> {
    let mut out = BTreeMap::new();
    for (name, tasks) in CONNECTORS {
        let s = worker.status(name)?;
        if s["connector"]["state"] != "RUNNING" {
            return None;
        }
        out.insert(
            (name.to_string(), -1),
            s["connector"]["worker_id"].as_str()?.to_string(),
        );
        let list = s["tasks"].as_array()?;
        if list.len() != tasks || list.iter().any(|t| t["state"] != "RUNNING") {
            return None;
        }
        for t in list {
            out.insert(
                (name.to_string(), t["id"].as_i64()?),
                t["worker_id"].as_str()?.to_string(),
            );
        }
    }
    Some(out)
}

/// Waits until every unit runs on a live worker (per `via`) and `pred` holds for the placement.
fn wait_placement(
    via: &Worker,
    live: &[String],
    what: &str,
    pred: impl Fn(&BTreeMap<(String, i64), String>) -> bool,
) -> BTreeMap<(String, i64), String> {
    let deadline = Instant::now() + T;
    let mut last = None;
    loop {
        if let Some(p) = placement(via) {
            if p.values().all(|w| live.contains(w)) && pred(&p) {
                return p;
            }
            last = Some(p);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {T:?}; last placement {last:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn source_config(db: &TestDb) -> Value {
    json!({
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "database.hostname": "127.0.0.1",
        "database.port": db.port.to_string(),
        "database.user": "postgres",
        "database.password": "postgres",
        "database.dbname": db.name,
        "topic.prefix": "car_database",
        "table.include.list": "public.car_data",
        "slot.retry.delay.ms": "1000",
        "slot.max.retries": "60",
        "transforms": "unwrap",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.drop.tombstones": "false",
    })
}

fn enrich_config() -> Value {
    json!({
        "connector.class": "io.augur.connect.EnrichConnector",
        "tasks.max": "3",
        "topics": "car_database.public.car_data",
        "output.topic": "car_data_predicted",
        "model": "ford-price:latest",
    })
}

fn sink_config(db: &TestDb) -> Value {
    json!({
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "tasks.max": "3",
        "topics": "car_data_predicted",
        "connection.url": format!("jdbc:postgresql://127.0.0.1:{}/{}", db.port, db.name),
        "connection.user": "postgres",
        "connection.password": "postgres",
        "auto.create": "true",
        "insert.mode": "upsert",
        "pk.mode": "record_value",
        "pk.fields": "id",
        "delete.enabled": "true",
    })
}

/// Inserts `n` listings (the Ford rows the model accepts, again from the start when they run
/// out) in batches of 100, pausing `pause` between batches. (A row with `engineSize` 0 and a
/// fuel other than electric fails the model's data check and goes to the dead-letter topic.)
fn load(pg: &TestPg, db: &TestDb, n: usize, pause: Duration) {
    let all: Vec<String> = listings(17_000)
        .into_iter()
        .filter(|r| !r.ends_with(", 0)") && !r.ends_with(", 0.0)"))
        .collect();
    let rows: Vec<String> = all.iter().cycle().take(n).cloned().collect();
    for chunk in rows.chunks(100) {
        augur_testkit::cars::insert_listings(pg, db, chunk);
        std::thread::sleep(pause);
    }
}

/// Waits until `car_data_predicted` holds as many rows as `car_data`, then compares them.
fn assert_caught_up(pg: &TestPg, db: &TestDb, bootstrap: &str, workers: &[Worker]) {
    let want = count(pg, db, "SELECT count(*) FROM car_data");
    let deadline = Instant::now() + T;
    loop {
        let got = count(pg, db, "SELECT count(*) FROM car_data_predicted");
        if got == want {
            break;
        }
        if Instant::now() > deadline {
            for topic in ["car_database.public.car_data", "car_data_predicted"] {
                let n = augur_testkit::kafka::read_topic(
                    bootstrap,
                    topic,
                    usize::MAX,
                    Duration::from_secs(10),
                )
                .len();
                eprintln!("{topic}: {n} records");
            }
            for w in workers {
                for (name, _) in CONNECTORS {
                    eprintln!("{} says {:?}", w.id(), w.status(name));
                }
            }
            for name in ["car-enrich", "car-sink"] {
                let r = request(
                    workers[0].addr,
                    "GET",
                    &format!("/connectors/{name}/offsets"),
                    b"",
                );
                eprintln!("{name} offsets: {}", r.text());
                augur_testkit::kafka::describe_group(bootstrap, &format!("connect-{name}"));
            }
            panic!("car_data_predicted has {got} of {want} rows");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_predicted_table(pg, db, "car_data_predicted");
}

/// POSTs the three connectors to `w`, retrying while the group has no leader yet.
fn create_connectors(w: &Worker, db: &TestDb) {
    for (name, config) in [
        ("car-source", source_config(db)),
        ("car-enrich", enrich_config()),
        ("car-sink", sink_config(db)),
    ] {
        // Until the group has a leader, Kafka Connect's 409 says to come back.
        let body = json!({"name": name, "config": config}).to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        let r = loop {
            let r = request(w.addr, "POST", "/connectors", body.as_bytes());
            if r.status != 409 || Instant::now() > deadline {
                break r;
            }
            assert!(r.text().contains("no known leader URL"), "{}", r.text());
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(r.status, 201, "create {name}: {}", r.text());
    }
}

/// Every worker in turn is killed (SIGKILL) and started again on its address, rows arriving
/// all along: the others carry the load meanwhile, the restarted worker takes work again,
/// and the table is exact after each step. (A graceful rolling restart — SIGTERM, so each
/// task's consumer leaves its group — can wedge a consumer group on Tansu 0.6, whose
/// coordinator keeps a departed leader when it leaves during a rebalance; see
/// docs/connect.md. A killed member is evicted after the session timeout instead.)
fn kill_and_restart_each(
    pg: &TestPg,
    db: &TestDb,
    bootstrap: &str,
    group: &str,
    workers: &mut Vec<Worker>,
) {
    for i in 0..workers.len() {
        let mut w = workers.remove(i);
        let addr = w.addr;
        w.proc.kill();
        load(pg, db, 300, Duration::ZERO);
        assert_caught_up(pg, db, bootstrap, workers);
        workers.insert(i, Worker::start(bootstrap, group, addr));
        let deadline = Instant::now() + T;
        while !workers[i].proc.log().contains("task started") {
            assert!(
                Instant::now() < deadline,
                "{addr} got no work after its restart"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        load(pg, db, 300, Duration::ZERO);
        assert_caught_up(pg, db, bootstrap, workers);
    }
}

/// Starts a fourth worker: it takes work, and no task that stays where it was (in placement
/// `p`) is restarted — the cooperative protocol stops only what moves.
fn newcomer_joins(
    bootstrap: &str,
    group: &str,
    workers: &mut Vec<Worker>,
    p: &BTreeMap<(String, i64), String>,
) {
    let before: BTreeMap<(String, i64), (String, usize)> = p
        .iter()
        .map(|(u, w)| {
            let owner = workers.iter().find(|x| &x.id() == w).unwrap();
            let starts = if u.1 < 0 {
                0
            } else {
                owner.starts(&u.0, u.1 as usize)
            };
            (u.clone(), (w.clone(), starts))
        })
        .collect();
    workers.push(Worker::start(bootstrap, group, free_addr()));
    let newcomer = workers[2].id();
    let p = wait_placement(&workers[0], &ids(workers), "the newcomer takes work", |p| {
        p.values().any(|w| *w == newcomer)
    });
    eprintln!("with a newcomer: {p:?}");
    for (u, (w, starts)) in &before {
        if u.1 >= 0 && p.get(u) == Some(w) {
            let owner = workers.iter().find(|x| &x.id() == w).unwrap();
            assert_eq!(
                owner.starts(&u.0, u.1 as usize),
                *starts,
                "{u:?} stayed on {w} but was restarted when a worker joined"
            );
        }
    }
}

#[test]
fn workers_share_the_connectors_survive_kills_and_take_in_a_newcomer() {
    let pg = TestPg::start();
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    let db = pg.database();
    pg.sql(&db, CAR_DATA);
    for topic in ["car_database.public.car_data", "car_data_predicted"] {
        augur_testkit::kafka::create_topic(&bootstrap, topic, 6);
    }
    let group = "augur-cluster-test";
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::start(&bootstrap, group, free_addr()))
        .collect();

    // Created through one worker, the connectors spread over all three.
    create_connectors(&workers[0], &db);
    let spread = wait_placement(&workers[1], &ids(&workers), "spread over 3 workers", |p| {
        p.values().collect::<BTreeSet<_>>().len() == 3
    });
    eprintln!("placement: {spread:?}");

    // A 20,000-row load; the worker holding the capture is killed once it is under way.
    std::thread::scope(|s| {
        let rows = std::env::var("AUGUR_CLUSTER_ROWS").map_or(20_000, |v| v.parse().unwrap());
        let (pg_ref, db_ref) = (&pg, &db);
        let loader = s.spawn(move || load(pg_ref, db_ref, rows, Duration::from_millis(60)));
        let deadline = Instant::now() + T;
        while count(&pg, &db, "SELECT count(*) FROM car_data_predicted") < 2_000 {
            assert!(Instant::now() < deadline, "the load did not get going");
            std::thread::sleep(Duration::from_millis(100));
        }
        let source = workers[1].status("car-source").expect("status");
        assert_eq!(source["tasks"][0]["state"], "RUNNING", "{source}");
        for (name, _) in CONNECTORS {
            let s = workers[1].status(name).unwrap();
            eprintln!("during the load: {s}");
        }
        let capture = source["tasks"][0]["worker_id"]
            .as_str()
            .unwrap()
            .to_string();
        let i = workers.iter().position(|w| w.id() == capture).unwrap();
        let mut dead = workers.remove(i);
        let killed = Instant::now();
        dead.proc.kill();
        let p = wait_placement(
            &workers[0],
            &ids(&workers),
            "capture moved off the dead worker",
            |_| true,
        );
        eprintln!("after kill -9 of {capture} ({:?}): {p:?}", killed.elapsed());

        // The survivors carry the load on.
        let now = count(&pg, &db, "SELECT count(*) FROM car_data_predicted");
        let deadline = Instant::now() + T;
        while count(&pg, &db, "SELECT count(*) FROM car_data_predicted") < now + 300 {
            assert!(Instant::now() < deadline, "no progress after the kill");
            std::thread::sleep(Duration::from_millis(100));
        }

        // A fourth worker joins mid-load: it takes work, and nothing that stays put restarts.
        newcomer_joins(&bootstrap, group, &mut workers, &p);
        loader.join().unwrap();
    });
    assert_caught_up(&pg, &db, &bootstrap, &workers);

    kill_and_restart_each(&pg, &db, &bootstrap, group, &mut workers);
    load(&pg, &db, 300, Duration::ZERO);
    wait_placement(
        &workers[0],
        &ids(&workers),
        "running after every worker was restarted",
        |_| true,
    );
    assert_caught_up(&pg, &db, &bootstrap, &workers);
}
