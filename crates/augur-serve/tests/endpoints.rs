//! Every endpoint answers with the documented shape: BentoML `/predict`, OIP v2, KServe v1,
//! health, metrics, docs; and readiness waits for the model.

use std::io::Write;
use std::time::Duration;

use augur_serve::ModelSource;
use serde_json::{Value, json};

use crate::support::*;

#[test]
fn predict_answers_a_bare_number_like_bentoml() {
    let model = shipped();
    let s = TestServer::start(config(), ModelSource::Loaded(model.clone()));
    let r = post(s.addr, "/predict", CAR);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.model(), "ford-price:1");
    let price: f64 = r.text().parse().expect("a bare number");
    assert_eq!(price, expected(&model, CAR));
    assert!(price > 5000.0 && price < 20000.0, "{price}");

    // Debezium's lower-cased names and numbers as strings give the same answer.
    let lower = r#"{"model":"Fiesta","year":"2017","transmission":"Automatic","mileage":15944,
        "fueltype":"Petrol","tax":150,"mpg":57.7,"enginesize":"1.0","price":12000,"id":7}"#;
    let r2 = post(s.addr, "/predict", lower);
    assert_eq!(r2.status, 200, "{}", r2.text());
    assert_eq!(r2.text().parse::<f64>().unwrap(), price);

    // BentoML >= 1.2 bodies name the API parameter.
    let wrapped = format!(r#"{{"input_data": {CAR}}}"#);
    let r3 = post(s.addr, "/predict", &wrapped);
    assert_eq!(r3.status, 200, "{}", r3.text());
    assert_eq!(r3.text().parse::<f64>().unwrap(), price);
}

#[test]
fn predict_answers_an_array_for_an_array() {
    let model = shipped();
    let s = TestServer::start(config(), ModelSource::Loaded(model.clone()));
    let rows = rows(25);
    let body = serde_json::to_string(&rows).unwrap();
    let r = post(s.addr, "/predict", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let got: Vec<f64> = serde_json::from_slice(&r.body).unwrap();
    let want: Vec<f64> = rows
        .iter()
        .map(|v| expected(&model, &v.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(post(s.addr, "/predict", "[]").json(), json!([]));
    // The wrapped form takes arrays too.
    let r = post(s.addr, "/predict", &format!(r#"{{"cars": {body}}}"#));
    assert_eq!(serde_json::from_slice::<Vec<f64>>(&r.body).unwrap(), want);
}

#[test]
fn open_inference_protocol_v2() {
    let model = shipped();
    let s = TestServer::start(config(), ModelSource::Loaded(model.clone()));
    let v2 = get(s.addr, "/v2").json();
    assert_eq!(v2["name"], "augur");
    assert!(v2["version"].is_string() && v2["extensions"].is_array());
    assert_eq!(get(s.addr, "/v2/health/live").json(), json!({"live": true}));
    assert_eq!(
        get(s.addr, "/v2/health/ready").json(),
        json!({"ready": true})
    );

    let meta = get(s.addr, "/v2/models/ford-price");
    assert_eq!(meta.status, 200);
    let meta = meta.json();
    assert_eq!(meta["name"], "ford-price");
    assert_eq!(meta["versions"], json!(["1"]));
    assert_eq!(meta["platform"], "augur-gbdt");
    let inputs = meta["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), model.input_fields().len());
    assert!(inputs.contains(&json!({"name": "year", "datatype": "FP64", "shape": [-1]})));
    assert!(inputs.contains(&json!({"name": "fuelType", "datatype": "BYTES", "shape": [-1]})));
    assert_eq!(
        meta["outputs"],
        json!([
            {"name": "price", "datatype": "FP64", "shape": [-1]},
            {"name": "price_range", "datatype": "FP64", "shape": [-1, 2]},
            {"name": "contributions", "datatype": "FP64", "shape": [-1, 8]},
        ])
    );
    assert_eq!(get(s.addr, "/v2/models/ford-price/versions/1").json(), meta);
    assert_eq!(
        get(s.addr, "/v2/models/ford-price/ready").json(),
        json!({"name": "ford-price", "ready": true})
    );
    assert_eq!(
        get(s.addr, "/v2/models/ford-price/versions/1/ready").status,
        200
    );

    // Two rows, one tensor per field; numeric fields in assorted datatypes and shapes.
    let rows = rows(2);
    let col = |f: &str| rows.iter().map(|r| r[f].clone()).collect::<Vec<Value>>();
    let request = json!({
        "id": "req-1",
        "inputs": [
            {"name": "model", "datatype": "BYTES", "shape": [2], "data": col("model")},
            {"name": "year", "datatype": "INT64", "shape": [2, 1], "data": [[rows[0]["year"]], [rows[1]["year"]]]},
            {"name": "transmission", "datatype": "BYTES", "shape": [2], "data": col("transmission")},
            {"name": "mileage", "datatype": "FP32", "shape": [2], "data": col("mileage")},
            {"name": "fueltype", "datatype": "BYTES", "shape": [2], "data": col("fuelType")},
            {"name": "tax", "datatype": "INT32", "shape": [2], "data": col("tax")},
            {"name": "mpg", "datatype": "FP64", "shape": [2], "data": col("mpg")},
            {"name": "engineSize", "datatype": "FP64", "shape": [2], "data": col("engineSize")}
        ],
        "outputs": [{"name": "price"}]
    });
    let want: Vec<f64> = rows
        .iter()
        .map(|v| expected(&model, &v.to_string()))
        .collect();
    for path in [
        "/v2/models/ford-price/infer",
        "/v2/models/ford-price/versions/1/infer",
    ] {
        let r = post(s.addr, path, &request.to_string());
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.model(), "ford-price:1");
        assert_eq!(
            r.json(),
            json!({
                "model_name": "ford-price", "model_version": "1", "id": "req-1",
                "outputs": [{"name": "price", "datatype": "FP64", "shape": [2], "data": want}]
            })
        );
    }
    // Without an id the server makes one.
    let mut no_id = request.clone();
    no_id.as_object_mut().unwrap().remove("id");
    let r = post(s.addr, "/v2/models/ford-price/infer", &no_id.to_string()).json();
    assert!(r["id"].as_str().is_some_and(|s| !s.is_empty()));
}

#[test]
fn kserve_v1() {
    let model = shipped();
    let s = TestServer::start(config(), ModelSource::Loaded(model.clone()));
    assert_eq!(
        get(s.addr, "/v1/models").json(),
        json!({"models": ["ford-price"]})
    );
    assert_eq!(
        get(s.addr, "/v1/models/ford-price").json(),
        json!({"name": "ford-price", "ready": true})
    );
    let rows = rows(3);
    // Objects, and arrays in input order.
    let positional: Vec<Value> = model
        .input_fields()
        .iter()
        .map(|f| rows[2][&f.name].clone())
        .collect();
    let body = json!({"instances": [rows[0], rows[1], positional]});
    let r = post(s.addr, "/v1/models/ford-price:predict", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.model(), "ford-price:1");
    let want: Vec<f64> = rows
        .iter()
        .map(|v| expected(&model, &v.to_string()))
        .collect();
    assert_eq!(r.json(), json!({"predictions": want}));
}

#[test]
fn health_metrics_and_docs() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    for p in ["/livez", "/healthz", "/readyz"] {
        let r = get(s.addr, p);
        assert_eq!(r.status, 200, "{p}");
    }
    assert_eq!(post(s.addr, "/predict", CAR).status, 200);
    assert_eq!(post(s.addr, "/predict", "{").status, 400);

    let m = get(s.addr, "/metrics");
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = m.text();
    for needle in [
        "# TYPE augur_service_request_total counter",
        "augur_service_request_total{endpoint=\"/predict\",http_response_code=\"200\"} 1",
        "augur_service_request_total{endpoint=\"/predict\",http_response_code=\"400\"} 1",
        "# TYPE augur_service_request_duration_seconds histogram",
        "augur_service_request_duration_seconds_count{endpoint=\"/predict\",http_response_code=\"200\"} 1",
        "# TYPE augur_service_request_in_progress gauge",
        "augur_service_request_in_progress{endpoint=\"/metrics\"} 1",
        "augur_service_adaptive_batch_size_bucket{model=\"ford-price:1\",le=\"1\"} 1",
        "augur_service_model_info{model=\"ford-price\",version=\"1\"} 1",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }

    let doc = get(s.addr, "/docs.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/predict",
        "/v2/models/ford-price/infer",
        "/v1/models/ford-price:predict",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "docs.json lacks {path}");
    }
    let example = &doc["components"]["schemas"]["Car"]["example"];
    assert_eq!(example["fuelType"], "Petrol");
    // The documented example is a valid request.
    assert_eq!(post(s.addr, "/predict", &example.to_string()).status, 200);

    let page = get(s.addr, "/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text();
    assert!(html.contains("augur model server") && html.contains("fetch(url"));
}

#[test]
fn not_ready_until_the_model_is_loaded() {
    // The model file is a FIFO: loading blocks until the test writes the model into it.
    let dir = scratch("fifo");
    let fifo = dir.join("model.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let s = TestServer::spawn(config(), ModelSource::File(fifo.clone()));
    for _ in 0..3 {
        assert_eq!(get(s.addr, "/livez").status, 200);
        assert_eq!(get(s.addr, "/readyz").status, 503);
        assert_eq!(
            get(s.addr, "/v2/health/ready").json(),
            json!({"ready": false})
        );
        let r = post(s.addr, "/predict", CAR);
        assert_eq!(r.status, 503);
        assert_eq!(r.json()["code"], "not_ready");
        assert_eq!(r.header("retry-after"), Some("1"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let bytes = shipped().to_json();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
    s.wait_ready();
    assert_eq!(post(s.addr, "/predict", CAR).status, 200);
    drop(s);
    cleanup(&dir);
}
