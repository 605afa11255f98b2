//! Bad input never crashes or hangs the server: every error is a JSON body with the right
//! status that names the field and the problem.

use std::time::{Duration, Instant};

use augur_serve::{ModelSource, ServeConfig};
use serde_json::{Value, json};

use crate::support::*;

/// Asserts an error response: status, `code`, and (when given) `field` and a `problem`
/// containing `problem`.
fn assert_error(r: &Resp, status: u16, code: &str, field: Option<&str>, problem: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].is_string(), "{body}");
    if let Some(f) = field {
        assert_eq!(body["field"], f, "{body}");
    }
    let text = body["problem"].as_str().or(body["error"].as_str()).unwrap();
    assert!(
        text.contains(problem),
        "problem {text:?} lacks {problem:?}: {body}"
    );
}

/// The example car with one field replaced (or removed, for `Value::Null`... use `remove`).
fn car_with(field: &str, value: Option<Value>) -> String {
    let mut v: Value = serde_json::from_str(CAR).unwrap();
    match value {
        Some(x) => v[field] = x,
        None => {
            v.as_object_mut().unwrap().remove(field);
        }
    }
    v.to_string()
}

#[test]
fn predict_bad_input_is_400_naming_the_field() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let a = s.addr;
    assert_error(
        &post(a, "/predict", r#"{"model": "Fiesta", "year": }"#),
        400,
        "invalid_json",
        None,
        "invalid JSON",
    );
    assert_error(&post(a, "/predict", ""), 400, "invalid_json", None, "empty");
    assert_error(
        &post(a, "/predict", &car_with("year", None)),
        400,
        "invalid_input",
        Some("year"),
        "missing",
    );
    assert_error(
        &post(a, "/predict", &car_with("mileage", Some(Value::Null))),
        400,
        "invalid_input",
        Some("mileage"),
        "missing",
    );
    assert_error(
        &post(a, "/predict", &car_with("year", Some(json!(true)))),
        400,
        "invalid_input",
        Some("year"),
        "expected a number, got a boolean",
    );
    assert_error(
        &post(a, "/predict", &car_with("mpg", Some(json!("lots")))),
        400,
        "invalid_input",
        Some("mpg"),
        "number",
    );
    assert_error(
        &post(
            a,
            "/predict",
            &car_with("transmission", Some(json!(["Manual"]))),
        ),
        400,
        "invalid_input",
        Some("transmission"),
        "expected a string, got an array",
    );
    assert_error(
        &post(a, "/predict", "42"),
        400,
        "invalid_input",
        None,
        "got a number",
    );
    // A batch names the row.
    let batch = format!("[{CAR}, {}]", car_with("engineSize", None));
    let r = post(a, "/predict", &batch);
    assert_error(&r, 400, "invalid_input", Some("engineSize"), "missing");
    assert_eq!(r.json()["row"], 1);
    assert!(r.json()["error"].as_str().unwrap().starts_with("row 1: "));
    let r = post(a, "/predict", &format!("[{CAR}, 7]"));
    assert_error(&r, 400, "invalid_input", None, "got a number");
    assert_eq!(r.json()["row"], 1);
    // Still healthy after all that.
    assert_eq!(post(a, "/predict", CAR).status, 200);
}

#[test]
fn oversized_bodies_are_413_with_the_limit() {
    let cfg = ServeConfig {
        max_body_bytes: 1024,
        ..config()
    };
    let s = TestServer::start(cfg, ModelSource::Loaded(shipped()));
    let big = serde_json::to_string(&rows(20)).unwrap();
    assert!(big.len() > 1024);
    assert_error(
        &post(s.addr, "/predict", &big),
        413,
        "body_too_large",
        None,
        "1024 bytes",
    );
    // Chunked, without a length up front.
    let mut c = Conn::open(s.addr);
    let mut raw =
        b"POST /predict HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for chunk in big.as_bytes().chunks(300) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    c.send_raw(&raw);
    assert_error(&c.read_response(), 413, "body_too_large", None, "1024");
    // A body under the limit still works, chunked too.
    let small = format!("[{CAR}]");
    let mut c = Conn::open(s.addr);
    let raw = format!(
        "POST /predict HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        10,
        &small[..10],
        small.len() - 10,
        &small[10..]
    );
    c.send_raw(raw.as_bytes());
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn unknown_models_routes_and_methods() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let a = s.addr;
    for (method, path) in [
        ("GET", "/v2/models/other"),
        ("GET", "/v2/models/other/ready"),
        ("GET", "/v2/models/ford-price/versions/9"),
        ("GET", "/v2/models/ford-price/versions/9/ready"),
        ("POST", "/v2/models/other/infer"),
        ("POST", "/v2/models/ford-price/versions/2/infer"),
        ("GET", "/v1/models/other"),
        ("POST", "/v1/models/other:predict"),
        ("POST", "/v1/models/other:explain"),
        ("POST", "/v1/models/ford-price:describe"),
    ] {
        let r = request(a, method, path, b"{}");
        assert_error(&r, 404, "not_found", None, "");
        if path.contains("other") {
            assert!(r.json()["error"].as_str().unwrap().contains("ford-price:1"));
        }
    }
    assert_error(&get(a, "/nope"), 404, "not_found", None, "/nope");
    assert_error(&get(a, "/predict"), 405, "method_not_allowed", None, "GET");
}

#[test]
fn oip_and_kserve_bad_input() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let infer = |body: Value| post(s.addr, "/v2/models/ford-price/infer", &body.to_string());
    let col = |name: &str, dt: &str, data: Value| json!({"name": name, "datatype": dt, "shape": [1], "data": data});
    let good = || {
        vec![
            col("model", "BYTES", json!(["Fiesta"])),
            col("year", "INT64", json!([2017])),
            col("transmission", "BYTES", json!(["Manual"])),
            col("mileage", "FP64", json!([15944])),
            col("fuelType", "BYTES", json!(["Petrol"])),
            col("tax", "FP64", json!([150])),
            col("mpg", "FP64", json!([57.7])),
            col("engineSize", "FP64", json!([1.0])),
        ]
    };
    assert_eq!(infer(json!({"inputs": good()})).status, 200);
    assert_error(
        &infer(json!({})),
        400,
        "invalid_input",
        Some("inputs"),
        "missing",
    );
    assert_error(
        &infer(json!({"inputs": []})),
        400,
        "invalid_input",
        Some("inputs"),
        "empty",
    );
    assert_error(
        &infer(json!([1])),
        400,
        "invalid_input",
        None,
        "got an array",
    );
    let mut missing = good();
    missing.remove(1);
    assert_error(
        &infer(json!({"inputs": missing})),
        400,
        "invalid_input",
        Some("year"),
        "missing",
    );
    let mut extra = good();
    extra.push(col("colour", "BYTES", json!(["red"])));
    assert_error(
        &infer(json!({"inputs": extra})),
        400,
        "invalid_input",
        Some("colour"),
        "not an input",
    );
    let mut bad_dt = good();
    bad_dt[1] = col("year", "FP64", json!(["2017"]));
    assert_error(
        &infer(json!({"inputs": bad_dt})),
        400,
        "invalid_input",
        Some("year"),
        "datatype FP64 but element 0 is a string",
    );
    let mut unknown_dt = good();
    unknown_dt[1] = col("year", "FLOAT", json!([2017]));
    assert_error(
        &infer(json!({"inputs": unknown_dt})),
        400,
        "invalid_input",
        Some("year"),
        "unknown datatype",
    );
    let mut bad_shape = good();
    bad_shape[3] = json!({"name": "mileage", "datatype": "FP64", "shape": [2], "data": [1]});
    assert_error(
        &infer(json!({"inputs": bad_shape})),
        400,
        "invalid_input",
        Some("mileage"),
        "needs 2 elements",
    );
    let mut rows_differ = good();
    rows_differ[3] = json!({"name": "mileage", "datatype": "FP64", "shape": [2], "data": [1, 2]});
    assert_error(
        &infer(json!({"inputs": rows_differ})),
        400,
        "invalid_input",
        Some("mileage"),
        "rows",
    );
    assert_error(
        &infer(json!({"inputs": good(), "outputs": [{"name": "colour"}]})),
        400,
        "invalid_input",
        Some("outputs"),
        "offers the outputs",
    );

    let predict = |body: &str| post(s.addr, "/v1/models/ford-price:predict", body);
    assert_error(
        &predict("{}"),
        400,
        "invalid_input",
        Some("instances"),
        "missing",
    );
    assert_error(
        &predict(r#"{"instances": 3}"#),
        400,
        "invalid_input",
        Some("instances"),
        "expected an array",
    );
    assert_error(
        &predict(r#"{"instances": [[1, 2]]}"#),
        400,
        "invalid_input",
        None,
        "needs 8 values",
    );
    assert_error(
        &predict("not json"),
        400,
        "invalid_json",
        None,
        "invalid JSON",
    );
    let r = predict(&format!(
        r#"{{"instances": [{CAR}, {}]}}"#,
        car_with("tax", Some(json!({})))
    ));
    assert_error(
        &r,
        400,
        "invalid_input",
        Some("tax"),
        "expected a number, got an object",
    );
    assert_eq!(r.json()["row"], 1);
}

#[test]
fn over_the_latency_budget_is_503() {
    // 2,000 rows take longer than 1 ms to score, so the request misses its budget.
    let cfg = ServeConfig {
        max_latency: Duration::from_millis(1),
        ..config()
    };
    let s = TestServer::start(cfg, ModelSource::Loaded(shipped()));
    let body = serde_json::to_string(&rows(2000)).unwrap();
    let r = post(s.addr, "/predict", &body);
    assert_error(&r, 503, "latency_budget_exceeded", None, "1 ms");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(
        s.metric("augur_service_rejected_total{reason=\"latency_budget\"}"),
        1.0
    );
}

#[test]
fn a_full_queue_is_503_at_once() {
    let cfg = ServeConfig {
        max_queue: 1,
        max_body_bytes: 64 << 20,
        max_latency: Duration::from_secs(60),
        ..config()
    };
    let s = TestServer::start(cfg, ModelSource::Loaded(shipped()));
    let addr = s.addr;
    // A long request occupies the inference thread...
    let long = serde_json::to_string(&rows(LONG)).unwrap();
    let busy = std::thread::spawn(move || post(addr, "/predict", &long));
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.metric("augur_service_queue_wait_seconds_count") < 1.0 {
        assert!(Instant::now() < deadline, "the long request never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    // ...one more fills the queue, the next finds it full.
    let queued = std::thread::spawn(move || post(addr, "/predict", CAR));
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.metric("augur_service_queue_depth") < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the second request was never queued"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let rejected = post(addr, "/predict", CAR);
    assert_error(&rejected, 503, "overloaded", None, "queue is full");
    assert_eq!(busy.join().unwrap().status, 200);
    assert_eq!(queued.join().unwrap().status, 200);
    assert!(s.metric("augur_service_rejected_total{reason=\"queue_full\"}") >= 1.0);
}
