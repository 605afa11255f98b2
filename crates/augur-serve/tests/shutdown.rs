//! Graceful shutdown: stop accepting, finish in-flight requests, return Ok within the
//! deadline; idle keep-alive connections do not hold it up; past the deadline `run` fails.

use std::time::{Duration, Instant};

use augur_serve::{ModelSource, ServeConfig, is_shutdown_timeout};

use crate::support::*;

/// Waits until the long request is being scored (the second batch since start).
fn wait_scoring(s: &TestServer, batches: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.metric("augur_service_queue_wait_seconds_count") < batches {
        assert!(Instant::now() < deadline, "the long request never started");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn in_flight_requests_finish_then_run_returns_ok() {
    let cfg = ServeConfig {
        max_body_bytes: 64 << 20,
        max_latency: Duration::from_secs(60),
        ..config()
    };
    let s = TestServer::start(cfg, ModelSource::Loaded(shipped()));
    let addr = s.addr;
    // An idle keep-alive connection that has already been used.
    let mut idle = Conn::open(addr);
    assert_eq!(idle.request("GET", "/livez", &[], b"").status, 200);
    assert_eq!(post(addr, "/predict", CAR).status, 200);

    let body = serde_json::to_string(&rows(LONG)).unwrap();
    let long = std::thread::spawn(move || post(addr, "/predict", &body));
    wait_scoring(&s, 2.0);
    let asked = Instant::now();
    s.trigger_shutdown();
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = long.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        serde_json::from_slice::<Vec<f64>>(&r.body).unwrap().len(),
        LONG
    );
    assert!(idle.is_closed(), "the idle connection was not closed");
    s.join().expect("run returns Ok after draining");
    assert!(asked.elapsed() < Duration::from_secs(10));
}

#[test]
fn an_idle_server_stops_at_once() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let mut idle = Conn::open(s.addr);
    assert_eq!(
        idle.request("POST", "/predict", &[], CAR.as_bytes()).status,
        200
    );
    let started = Instant::now();
    s.stop().expect("clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn past_the_deadline_run_fails() {
    let cfg = ServeConfig {
        max_body_bytes: 64 << 20,
        max_latency: Duration::from_secs(60),
        shutdown_timeout: Duration::from_millis(1),
        ..config()
    };
    let s = TestServer::start(cfg, ModelSource::Loaded(shipped()));
    let addr = s.addr;
    let body = serde_json::to_string(&rows(LONG)).unwrap();
    let long = std::thread::spawn(move || post_may_fail(addr, &body));
    wait_scoring(&s, 1.0);
    let err = s.stop().expect_err("the deadline passed");
    assert!(is_shutdown_timeout(&err), "{err:?}");
    assert_eq!(err.kind(), augur_core::ErrorKind::Internal);
    let _ = long.join();
}

/// `POST /predict` that tolerates the connection being cut.
fn post_may_fail(addr: std::net::SocketAddr, body: &str) -> Option<u16> {
    std::panic::catch_unwind(|| post(addr, "/predict", body).status).ok()
}
