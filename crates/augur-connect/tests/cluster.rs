//! Group membership through a real broker's group coordinator (Tansu), as `augur connect`
//! workers will form a cluster: three members with protocol type `connect` and Kafka Connect's
//! metadata join one generation, the leader's assignment reaches every member, a member that
//! dies is noticed through heartbeats and its work is reassigned, a leader that leaves hands
//! over, and a member offering another protocol is refused with the reason.

use std::time::{Duration, Instant};

use augur_connect::cluster::assignor::Work;
use augur_connect::cluster::herder::{Configured, Herder};
use augur_connect::cluster::member::{Beat, Member, MemberConfig};
use augur_connect::cluster::wire::{Assignment, Units, WorkerMetadata};
use augur_testkit::Tansu;

/// Work units: 3 connectors with 2 tasks each.
fn units() -> Vec<(String, i32)> {
    ["src", "enrich", "sink"]
        .iter()
        .flat_map(|c| (0..2).map(move |t| (c.to_string(), t)))
        .collect()
}

fn config(bootstrap: &str, group: &str, i: usize) -> MemberConfig {
    MemberConfig {
        bootstrap: vec![bootstrap.to_string()],
        group_id: group.to_string(),
        client_id: format!("worker-{i}"),
        protocol_type: "connect".into(),
        session_timeout: Duration::from_secs(6),
        rebalance_timeout: Duration::from_secs(20),
        heartbeat_interval: Duration::from_secs(1),
        security: Default::default(),
    }
}

/// Kafka Connect's protocols, `compatible` first, with this worker's URL and rejoin count.
fn protocols(url: &str, rejoin: i32) -> Vec<(String, Vec<u8>)> {
    let meta = |version| WorkerMetadata {
        version,
        url: url.to_string(),
        config_offset: 5,
        allocation: None,
        rejoin: Some(rejoin),
    };
    vec![
        ("compatible".into(), meta(1).encode()),
        ("default".into(), meta(0).encode()),
    ]
}

/// Round-robin of the units over the members (sorted by id), as the leader assigns them.
fn assign(leader: &str, leader_url: &str, members: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut sorted = members.to_vec();
    sorted.sort();
    sorted
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut mine: Units = Vec::new();
            for (c, t) in units().into_iter().skip(i).step_by(sorted.len()) {
                match mine.iter_mut().find(|(n, _)| *n == c) {
                    Some((_, ts)) => ts.push(t),
                    None => mine.push((c, vec![t])),
                }
            }
            let a = Assignment {
                version: 1,
                leader: leader.to_string(),
                leader_url: leader_url.to_string(),
                config_offset: 5,
                assigned: mine,
                ..Assignment::default()
            };
            (m.clone(), a.encode())
        })
        .collect()
}

/// One rebalance: every member joins at once, the leader assigns, every member syncs.
/// Returns the members and what each was assigned.
async fn rebalance(
    members: Vec<(Member, String)>,
    rejoin: i32,
) -> Vec<(Member, String, Assignment)> {
    let joins: Vec<_> = members
        .into_iter()
        .map(|(mut m, url)| {
            tokio::spawn(async move {
                let j = m.join(&protocols(&url, rejoin)).await.expect("join");
                (m, url, j)
            })
        })
        .collect();
    let mut joined = Vec::new();
    for j in joins {
        joined.push(j.await.unwrap());
    }
    let syncs: Vec<_> = joined
        .into_iter()
        .map(|(mut m, url, j)| {
            tokio::spawn(async move {
                assert_eq!(j.protocol, "compatible");
                let mine = if j.leader == j.member_id {
                    let ids: Vec<String> = j.members.iter().map(|(id, _)| id.clone()).collect();
                    for (_, meta) in &j.members {
                        let w = WorkerMetadata::decode(meta).expect("member metadata");
                        assert_eq!((w.version, w.config_offset), (1, 5));
                    }
                    assign(&j.leader, &url, &ids)
                } else {
                    Vec::new()
                };
                let got = m.sync(&mine).await.expect("sync").expect("an assignment");
                let a = Assignment::decode(&got).expect("assignment");
                (m, url, a)
            })
        })
        .collect();
    let mut out = Vec::new();
    for s in syncs {
        out.push(s.await.unwrap());
    }
    out
}

/// Every unit exactly once over the assignments, each member something, one leader.
fn check_spread(round: &[(Member, String, Assignment)]) {
    let mut all: Vec<(String, i32)> = round
        .iter()
        .flat_map(|(_, _, a)| {
            a.assigned
                .iter()
                .flat_map(|(c, ts)| ts.iter().map(move |t| (c.clone(), *t)))
        })
        .collect();
    all.sort();
    let mut want = units();
    want.sort();
    assert_eq!(all, want, "every unit on exactly one member");
    assert!(round.iter().all(|(_, _, a)| !a.assigned.is_empty()));
    let leaders: std::collections::BTreeSet<_> =
        round.iter().map(|(_, _, a)| a.leader_url.clone()).collect();
    assert_eq!(leaders.len(), 1, "one leader: {leaders:?}");
    let generations: std::collections::BTreeSet<_> =
        round.iter().map(|(m, _, _)| m.generation()).collect();
    assert_eq!(generations.len(), 1, "one generation");
}

/// Heartbeats every member until each is told to rejoin; returns how long that took.
async fn until_rejoin(round: &mut [(Member, String, Assignment)], limit: Duration) -> Duration {
    let start = Instant::now();
    let mut told = vec![false; round.len()];
    while told.iter().any(|t| !t) {
        assert!(start.elapsed() < limit, "no rebalance within {limit:?}");
        for (i, (m, _, _)) in round.iter_mut().enumerate() {
            if !told[i] && m.heartbeat().await.expect("heartbeat") == Beat::Rejoin {
                told[i] = true;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    start.elapsed()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn three_members_share_work_and_survive_a_death_and_a_leaving_leader() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    runtime().block_on(async move {
        let members: Vec<(Member, String)> = (0..3)
            .map(|i| {
                (
                    Member::new(config(&bootstrap, "cluster-a", i)),
                    format!("http://w{i}:8083/"),
                )
            })
            .collect();
        let mut round = rebalance(members, 0).await;
        check_spread(&round);
        for (m, _, _) in round.iter_mut() {
            assert_eq!(m.heartbeat().await.unwrap(), Beat::Stable);
        }

        // A member dies without leaving: the others hear of it through heartbeats after the
        // session timeout, and its units move to them.
        let dead = round.pop().unwrap();
        drop(dead);
        let took = until_rejoin(&mut round, Duration::from_secs(45)).await;
        eprintln!("a dead member was noticed after {took:?}");
        let before = round[0].0.generation();
        let members = round.into_iter().map(|(m, u, _)| (m, u)).collect();
        let mut round = rebalance(members, 1).await;
        check_spread(&round);
        assert_eq!(round.len(), 2);
        assert!(round[0].0.generation() > before);

        // The leader leaves gracefully: the survivor leads and runs everything.
        let leader_url = round[0].2.leader_url.clone();
        let at = round.iter().position(|(_, u, _)| *u == leader_url).unwrap();
        let (mut leader, _, _) = round.remove(at);
        leader.leave().await.unwrap();
        let took = until_rejoin(&mut round, Duration::from_secs(45)).await;
        eprintln!("a leaving leader was noticed after {took:?}");
        let members = round.into_iter().map(|(m, u, _)| (m, u)).collect();
        let round = rebalance(members, 2).await;
        check_spread(&round);
        assert_eq!(round[0].2.leader_url, round[0].1);
        assert_eq!(
            round[0]
                .2
                .assigned
                .iter()
                .map(|(_, t)| t.len())
                .sum::<usize>(),
            6
        );
    });
}

#[test]
fn a_member_offering_another_protocol_is_refused_with_the_reason() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    runtime().block_on(async move {
        let mut first = Member::new(config(&bootstrap, "cluster-b", 0));
        first.join(&protocols("http://w0/", 0)).await.unwrap();
        first
            .sync(&assign(
                first.member_id(),
                "http://w0/",
                &[first.member_id().to_string()],
            ))
            .await
            .unwrap()
            .expect("assignment");
        let mut other = Member::new(config(&bootstrap, "cluster-b", 1));
        let e = other
            .join(&[("range".to_string(), vec![0, 1, 2])])
            .await
            .unwrap_err();
        assert!(e.to_string().contains("runs another protocol"), "{e}");
        // Hostile member metadata in the group is a decoding error, not a panic.
        assert!(WorkerMetadata::decode(&[0, 1, 0, 9]).is_err());
    });
}

/// What each worker runs, and every stop, as the herders' `apply` reports them.
#[derive(Default)]
struct Cluster {
    running: std::collections::BTreeMap<String, Work>,
    stops: Vec<(String, Work)>,
    violations: Vec<String>,
}

type Shared = std::sync::Arc<std::sync::Mutex<Cluster>>;

/// The original three connectors: a source (one task), enrichment and a sink (three each).
fn original() -> Work {
    let mut w = Work::default();
    for (c, n) in [("car-source", 1), ("car-enrich", 3), ("car-sink", 3)] {
        w.connectors.insert(c.to_string());
        for t in 0..n {
            w.tasks.insert((c.to_string(), t));
        }
    }
    w
}

/// Starts worker `name`'s herder; returns its shutdown trigger and task.
fn start_herder(
    bootstrap: &str,
    name: &str,
    configured: &tokio::sync::watch::Receiver<Configured>,
    cluster: &Shared,
) -> (
    augur_core::shutdown::ShutdownTrigger,
    tokio::task::JoinHandle<Result<(), augur_core::Error>>,
) {
    let mut cfg = config(bootstrap, "cluster-h", 0);
    cfg.client_id = name.to_string();
    let herder = Herder::new(cfg, format!("http://{name}:8083/"), 0);
    let (trigger, shutdown) = augur_core::shutdown::channel();
    let (me, shared) = (name.to_string(), cluster.clone());
    let apply = move |stop: Work, start: Work| {
        let mut c = shared.lock().unwrap();
        let clashes: Vec<String> = c
            .running
            .iter()
            .filter(|(o, w)| {
                **o != me
                    && (!start.connectors.is_disjoint(&w.connectors)
                        || !start.tasks.is_disjoint(&w.tasks))
            })
            .map(|(o, w)| format!("{me} started work {o} still runs: {start:?} vs {w:?}"))
            .collect();
        c.violations.extend(clashes);
        let mine = c.running.remove(&me).unwrap_or_default();
        c.running
            .insert(me.clone(), mine.without(&stop).with(&start));
        if !stop.is_empty() {
            c.stops.push((me.clone(), stop));
        }
        std::future::ready(())
    };
    let task = tokio::spawn(herder.run(configured.clone(), apply, shutdown));
    (trigger, task)
}

/// Waits until every configured unit runs exactly once, on `workers` only, each busy.
async fn until_spread(
    cluster: &Shared,
    configured: &Work,
    workers: &[&str],
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        {
            let c = cluster.lock().unwrap();
            assert!(c.violations.is_empty(), "{:?}", c.violations);
            let mut all = Work::default();
            let mut n = 0;
            for w in c.running.values() {
                all = all.with(w);
                n += w.connectors.len() + w.tasks.len();
            }
            let busy = workers
                .iter()
                .all(|w| c.running.get(*w).is_some_and(|r| !r.is_empty()));
            let only = c
                .running
                .iter()
                .all(|(w, r)| r.is_empty() || workers.contains(&w.as_str()));
            if all == *configured
                && n == configured.connectors.len() + configured.tasks.len()
                && busy
                && only
            {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < limit,
                "not spread over {workers:?} within {limit:?}: {:?}",
                c.running
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn herders_spread_work_move_it_off_a_dead_worker_and_let_a_newcomer_in_cooperatively() {
    let broker = Tansu::start();
    let bootstrap = broker.bootstrap();
    runtime().block_on(async move {
        let cluster: Shared = Default::default();
        let mut configured = original();
        let (tx, rx) = tokio::sync::watch::channel((configured.clone(), 1));
        let limit = Duration::from_secs(90);
        let mut workers: std::collections::BTreeMap<&str, _> = ["w1", "w2", "w3"]
            .into_iter()
            .map(|n| (n, start_herder(&bootstrap, n, &rx, &cluster)))
            .collect();
        let took = until_spread(&cluster, &configured, &["w1", "w2", "w3"], limit).await;
        eprintln!("three workers spread the work after {took:?}");

        // kill -9 of w2: no leave; its work is gone with it.
        let (_t, task) = workers.remove("w2").unwrap();
        task.abort();
        let _ = task.await;
        cluster.lock().unwrap().running.remove("w2");
        let took = until_spread(&cluster, &configured, &["w1", "w3"], limit).await;
        eprintln!("a dead worker's work ran again after {took:?}");

        // A newcomer takes work; only what moves to it is stopped anywhere.
        cluster.lock().unwrap().stops.clear();
        workers.insert("w4", start_herder(&bootstrap, "w4", &rx, &cluster));
        let took = until_spread(&cluster, &configured, &["w1", "w3", "w4"], limit).await;
        eprintln!("a joining worker got work after {took:?}");
        {
            let c = cluster.lock().unwrap();
            let moved = &c.running["w4"];
            for (w, stopped) in &c.stops {
                assert!(
                    stopped.connectors.is_subset(&moved.connectors)
                        && stopped.tasks.is_subset(&moved.tasks),
                    "{w} stopped {stopped:?}, which did not move to w4 ({moved:?})"
                );
            }
        }

        // A new connector is placed; a graceful leave hands work over.
        configured.connectors.insert("extra".into());
        configured.tasks.insert(("extra".into(), 0));
        tx.send((configured.clone(), 2)).unwrap();
        until_spread(&cluster, &configured, &["w1", "w3", "w4"], limit).await;
        let (trigger, task) = workers.remove("w1").unwrap();
        trigger.trigger();
        task.await.unwrap().unwrap();
        assert!(cluster.lock().unwrap().running["w1"].is_empty());
        let took = until_spread(&cluster, &configured, &["w3", "w4"], limit).await;
        eprintln!("a leaving worker's work moved after {took:?}");
        for (_, (trigger, task)) in workers {
            trigger.trigger();
            task.await.unwrap().unwrap();
        }
    });
}

/// The group connection's security from Java-style client settings, as a worker builds it.
fn secured(pairs: &[(&str, String)]) -> augur_connect::cluster::secure::LoadedSecurity {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let translated = augur_runtime::security::translate(&pairs).unwrap();
    augur_connect::cluster::secure::LinkSecurity::from_settings(&translated)
        .unwrap()
        .load()
        .unwrap()
}

/// Members reach the coordinator only through a front that demands TLS with a client
/// certificate and SASL: with SCRAM-SHA-256 over TLS they join and share the work; PLAIN over
/// plain TCP (`SASL_PLAINTEXT`) works too. A wrong password, an unknown user, a CA that did not
/// sign the broker's certificate or a missing client certificate stop the join with the reason,
/// never the password.
#[test]
fn members_join_over_tls_and_sasl_and_bad_credentials_are_refused() {
    use augur_testkit::broker_proxy::Front;
    use augur_testkit::tls::TestCa;
    let ca = TestCa::new("group CA");
    let password = "pw-group-93be";
    let front =
        Front::tls(&ca.server(&["localhost"]), Some(&ca)).with_users(&[("worker", password)]);
    let (_broker, _proxy, bootstrap) = Tansu::start_behind(front);
    let (_broker2, _proxy2, plain_bootstrap) =
        Tansu::start_behind(Front::plain().with_users(&[("worker", password)]));
    let dir = std::env::temp_dir().join(format!("augur-group-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = ca.write(&dir, "ca.pem").display().to_string();
    let (cert, key) = ca.client("worker").write(&dir, "client");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let tls_sasl = |mechanism: &str, user: &str, pw: &str, ca: &str, with_cert: bool| {
        let mut p = vec![
            ("security.protocol", "SASL_SSL".to_string()),
            ("sasl.mechanism", mechanism.to_string()),
            (
                "sasl.jaas.config",
                format!(
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{pw}\";"
                ),
            ),
            ("ssl.truststore.type", "PEM".into()),
            ("ssl.truststore.location", ca.to_string()),
        ];
        if with_cert {
            p.push(("ssl.certificate.location", cert.clone()));
            p.push(("ssl.key.location", key.clone()));
        }
        secured(&p)
    };
    runtime().block_on(async {
        let members: Vec<(Member, String)> = (0..3)
            .map(|i| {
                let mut c = config(&bootstrap, "secure-a", i);
                c.security = tls_sasl("SCRAM-SHA-256", "worker", password, &ca_file, true);
                (Member::new(c), format!("https://w{i}:8083/"))
            })
            .collect();
        let mut round = rebalance(members, 0).await;
        check_spread(&round);
        for (m, _, _) in round.iter_mut() {
            assert_eq!(m.heartbeat().await.unwrap(), Beat::Stable);
        }

        let plain = secured(&[
            ("security.protocol", "SASL_PLAINTEXT".into()),
            ("sasl.mechanism", "PLAIN".into()),
            (
                "sasl.jaas.config",
                format!("org.apache.kafka.common.security.plain.PlainLoginModule required username=\"worker\" password=\"{password}\";"),
            ),
        ]);
        let members: Vec<(Member, String)> = (0..2)
            .map(|i| {
                let mut c = config(&plain_bootstrap, "secure-b", i);
                c.security = plain.clone();
                (Member::new(c), format!("http://p{i}:8083/"))
            })
            .collect();
        let round = rebalance(members, 0).await;
        assert_eq!(round.len(), 2);

        let other_ca = TestCa::new("another CA").write(&dir, "other.pem").display().to_string();
        let wrong = "wrong-pw-51d0";
        let cases = [
            (tls_sasl("SCRAM-SHA-512", "worker", wrong, &ca_file, true), "refused SASL authentication"),
            (tls_sasl("SCRAM-SHA-256", "nobody", password, &ca_file, true), "refused SASL authentication"),
            (tls_sasl("SCRAM-SHA-256", "worker", password, &other_ca, true), "TLS handshake"),
            (tls_sasl("SCRAM-SHA-256", "worker", password, &ca_file, false), "broker"),
        ];
        for (i, (security, want)) in cases.into_iter().enumerate() {
            let mut c = config(&bootstrap, "secure-a", 10 + i);
            c.rebalance_timeout = Duration::from_secs(2);
            c.session_timeout = Duration::from_secs(2);
            c.security = security;
            let e = Member::new(c)
                .join(&protocols("https://bad:8083/", 0))
                .await
                .expect_err("refused");
            let text = e.full_message();
            assert!(text.contains(want), "case {i}: {text}");
            assert!(!text.contains(wrong) && !text.contains(password), "case {i}: {text}");
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
