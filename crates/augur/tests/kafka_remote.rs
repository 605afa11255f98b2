//! The enrichment stage predicting through a remote model server (the real `augur serve`):
//! BentoML's JSON contract and the Open Inference Protocol v2, with client-side batches; a row
//! the server refuses goes to the dead-letter topic alone; a server that goes away and comes
//! back is waited out with retries, and nothing is lost.

use std::time::{Duration, Instant};

use augur_testkit::Tansu;
use augur_testkit::kafka::{create_topic, produce, read_topic};

use crate::support::pipeline::Proc;

const T: Duration = Duration::from_secs(60);

const ROW_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"model"},{"type":"int32","optional":true,"field":"year"},{"type":"string","optional":true,"field":"transmission"},{"type":"int32","optional":true,"field":"mileage"},{"type":"string","optional":true,"field":"fueltype"},{"type":"int32","optional":true,"field":"tax"},{"type":"double","optional":true,"field":"mpg"},{"type":"double","optional":true,"field":"enginesize"}],"optional":false,"name":"srv.public.cars.Value"}"#;

fn row(id: i32, year: &str, mileage: i32) -> String {
    format!(
        r#"{{"schema":{ROW_SCHEMA},"payload":{{"id":{id},"model":" Focus","year":{year},"transmission":"Manual","mileage":{mileage},"fueltype":"Petrol","tax":150,"mpg":57.7,"enginesize":1.0}}}}"#
    )
}

fn expected(mileage: i32) -> f64 {
    let model = augur_model::load_shipped().unwrap();
    let r: Vec<String> = [
        " Focus",
        "2018",
        "0",
        "Manual",
        &mileage.to_string(),
        "Petrol",
        "150",
        "57.7",
        "1.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    crate::support::pipeline::expected_price(&model, &r)
}

fn serve(port: u16) -> Proc {
    let p = Proc::start("remote-serve", &["serve", "--port", &port.to_string()]);
    let deadline = Instant::now() + T;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serve did not start:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

fn run(protocol: &str) {
    let broker = Tansu::start();
    let b = broker.bootstrap();
    for t in ["in", "out", "out.dlq"] {
        create_topic(&b, t, 1);
    }
    let port = augur_pgcluster::free_port().unwrap();
    let mut server = serve(port);
    for i in 0..20 {
        produce(
            &b,
            "in",
            None,
            Some(row(i, "2018", 10_000 + i * 1000).as_bytes()),
        );
    }
    produce(&b, "in", None, Some(row(99, "null", 5000).as_bytes()));
    let url = format!("http://127.0.0.1:{port}");
    let enrich = Proc::start(
        &format!("remote-enrich-{protocol}"),
        &[
            "enrich",
            "--kafka",
            &b,
            "--topics",
            "in",
            "--output-topic",
            "out",
            "--predict-url",
            &url,
            "--predict-protocol",
            protocol,
            "--group-id",
            protocol,
        ],
    );
    let out = read_topic(&b, "out", 20, T);
    assert_eq!(out.len(), 20, "{}", enrich.log());
    for r in &out {
        let v: serde_json::Value = serde_json::from_slice(r.value.as_ref().unwrap()).unwrap();
        let mileage = v["payload"]["mileage"].as_i64().unwrap() as i32;
        let got = v["payload"]["suggestedprice"].as_f64().unwrap();
        // The server answers in whole cents.
        assert!(
            (got - expected(mileage)).abs() <= 0.005,
            "mileage {mileage}: remote {got} vs local {}",
            expected(mileage)
        );
        let model = r
            .headers
            .iter()
            .find(|(k, _)| k == "__augur.model")
            .map(|(_, v)| String::from_utf8_lossy(v).to_string());
        assert_eq!(model, Some(format!("remote:{url}")));
    }
    let dead = read_topic(&b, "out.dlq", 1, T);
    let reason = dead[0]
        .headers
        .iter()
        .find(|(k, _)| k == "__connect.errors.exception.message")
        .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        .unwrap();
    assert!(reason.contains("year"), "{reason}");

    // The server goes away; records wait (retries) and go through once it is back.
    server.kill();
    for i in 20..25 {
        produce(
            &b,
            "in",
            None,
            Some(row(i, "2018", 10_000 + i * 1000).as_bytes()),
        );
    }
    std::thread::sleep(Duration::from_millis(400));
    server = serve(port);
    let out = read_topic(&b, "out", 25, T);
    assert_eq!(
        out.len(),
        25,
        "records after the server came back:\n{}",
        enrich.log()
    );
    drop((server, enrich));
}

#[test]
fn enrichment_through_a_bentoml_style_server() {
    run("bentoml");
}

#[test]
fn enrichment_through_an_open_inference_protocol_server() {
    run("oip");
}
