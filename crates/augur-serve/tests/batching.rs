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

#[test]
fn concurrent_requests_are_batched_and_answered_correctly() {
    let model = shipped();
    let cfg = ServeConfig {
        max_batch_size: 16,
        ..config()
    };
    let s = TestServer::start(cfg, ModelSource::Loaded(model.clone()));
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
    let m = s.metrics();
    let (ones, batches) = batch_counts(&m);
    let rows_scored = metric_value(
        &m,
        "augur_service_adaptive_batch_size_sum{model=\"ford-price:1\"}",
    );
    assert_eq!(rows_scored, (clients * per_client) as f64);
    assert!(
        ones < batches,
        "no batch had more than one row: {ones} of {batches} batches had one"
    );
    assert!(
        batches < rows_scored,
        "{batches} model calls for {rows_scored} rows"
    );
    // No batch is larger than max_batch_size.
    assert_eq!(
        metric_value(
            &m,
            "augur_service_adaptive_batch_size_bucket{model=\"ford-price:1\",le=\"16\"}"
        ),
        batches
    );
    assert_eq!(
        metric_value(
            &m,
            "augur_service_request_total{endpoint=\"/predict\",http_response_code=\"200\"}"
        ),
        (clients * per_client) as f64
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
