//! Adaptive micro-batching: concurrent single requests are scored together (the batch-size
//! histogram shows batches larger than one), each gets its own correct answer, and a lone
//! request is not held back.

use std::time::{Duration, Instant};

use augur_serve::{ModelSource, ServeConfig};

use crate::support::*;

/// Observations in batch-size buckets `le <= 1` and in total.
fn batch_counts(metrics: &str) -> (f64, f64) {
    let ones = metric_value(
        metrics,
        "augur_service_adaptive_batch_size_bucket{model=\"ford-price:1\",le=\"1\"}",
    );
    let all = metric_value(
        metrics,
        "augur_service_adaptive_batch_size_count{model=\"ford-price:1\"}",
    );
    (ones, all)
}

/// Requests that arrive while the inference thread is busy queue and are scored together: a
/// long request keeps the thread busy while 32 clients send single rows (a lone request on an
/// idle batcher is scored at once on its own task, so without the long one, whether requests
/// overlap would depend on the machine's timing).
#[test]
fn concurrent_requests_are_batched_and_answered_correctly() {
    let model = shipped();
    let cfg = ServeConfig {
        max_batch_size: 16,
        max_body_bytes: 64 << 20,
        max_latency: Duration::from_secs(60),
        ..config()
    };
    let s = TestServer::start(cfg, ModelSource::Loaded(model.clone()));
    let long_body = serde_json::to_string(&rows(LONG)).unwrap();
    let addr = s.addr;
    let long = std::thread::spawn(move || post(addr, "/predict", &long_body).status);
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.metric("augur_service_queue_wait_seconds_count") < 1.0 {
        assert!(Instant::now() < deadline, "the long request never started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let rows = rows(40);
    let want: Vec<f64> = rows
        .iter()
        .map(|v| expected(&model, &v.to_string()))
        .collect();
    let clients = 32;
    let per_client = 15;
    std::thread::scope(|scope| {
        for c in 0..clients {
            let (rows, want, addr) = (&rows, &want, s.addr);
            scope.spawn(move || {
                let mut conn = Conn::open(addr);
                for i in 0..per_client {
                    let k = (c * 7 + i) % rows.len();
                    let r = conn.request("POST", "/predict", &[], rows[k].to_string().as_bytes());
                    assert_eq!(r.status, 200, "{}", r.text());
                    assert_eq!(r.text().parse::<f64>().unwrap(), want[k], "row {k}");
                }
            });
        }
    });
    assert_eq!(long.join().unwrap(), 200);
    let m = s.metrics();
    let (ones, batches) = batch_counts(&m);
    let rows_scored = metric_value(
        &m,
        "augur_service_adaptive_batch_size_sum{model=\"ford-price:1\"}",
    );
    assert_eq!(rows_scored, (clients * per_client + LONG) as f64);
    let up_to_16 = metric_value(
        &m,
        "augur_service_adaptive_batch_size_bucket{model=\"ford-price:1\",le=\"16\"}",
    );
    assert!(
        up_to_16 - ones >= 1.0,
        "no batch of single requests had more than one row: {ones} of {up_to_16} had one"
    );
    // Only the long request's batch is larger than max_batch_size (a request runs whole).
    assert_eq!(batches - up_to_16, 1.0);
    assert_eq!(
        metric_value(
            &m,
            "augur_service_request_total{endpoint=\"/predict\",http_response_code=\"200\"}"
        ),
        (clients * per_client + 1) as f64
    );
}

#[test]
fn a_lone_request_is_not_held_back() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let mut conn = Conn::open(s.addr);
    // Warm up, then time sequential requests: each is scored alone, at once.
    conn.request("POST", "/predict", &[], CAR.as_bytes());
    let started = Instant::now();
    for _ in 0..50 {
        assert_eq!(
            conn.request("POST", "/predict", &[], CAR.as_bytes()).status,
            200
        );
    }
    let per_request = started.elapsed() / 50;
    assert!(
        per_request < Duration::from_millis(50),
        "{per_request:?} per sequential request"
    );
    let (ones, batches) = batch_counts(&s.metrics());
    assert_eq!(ones, batches, "sequential requests are batches of one");
}
