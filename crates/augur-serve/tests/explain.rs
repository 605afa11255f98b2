//! Price ranges and explanations over HTTP: `/predict?range=true` and `?explain=true`, KServe
//! v1's `:explain`, OIP v2's `price_range` and `contributions` outputs — the same numbers as the
//! model's own calls, effects that add up, and clear errors.

use augur_serve::ModelSource;
use serde_json::{Value, json};

use crate::support::*;

/// The model's own explanation of `row`.
fn own(row: &str) -> augur_model::Explanation {
    let v: Value = serde_json::from_str(row).unwrap();
    shipped().explain_json(v.as_object().unwrap()).unwrap()
}

/// Checks one explained row object against the model's own explanation.
fn check_explained(got: &Value, row: &str) {
    let want = own(row);
    let price = got["price"].as_f64().unwrap();
    assert_eq!(price, (want.prediction * 100.0).round() / 100.0);
    let (lo, hi) = shipped().range(want.prediction).unwrap();
    assert!(
        (got["range"]["low"].as_f64().unwrap() - lo).abs() < 0.006,
        "{got}"
    );
    assert!(
        (got["range"]["high"].as_f64().unwrap() - hi).abs() < 0.006,
        "{got}"
    );
    assert_eq!(got["range"]["level"], 0.8);
    let parts = got["contributions"].as_array().unwrap();
    assert_eq!(parts.len(), 8);
    let effects: Vec<f64> = parts
        .iter()
        .map(|c| c["effect"].as_f64().unwrap())
        .collect();
    // Largest first, summing (to rounding) to the price minus the baseline.
    assert!(
        effects.windows(2).all(|w| w[0].abs() >= w[1].abs()),
        "{effects:?}"
    );
    let baseline = got["baseline"].as_f64().unwrap();
    let sum: f64 = effects.iter().sum();
    assert!(
        (sum - (price - baseline)).abs() < 0.05,
        "{sum} vs {}",
        price - baseline
    );
    for c in parts {
        let w = want
            .contributions
            .iter()
            .find(|w| w.field == c["field"])
            .unwrap();
        assert!((c["score"].as_f64().unwrap() - w.score).abs() < 1e-12);
    }
}

#[test]
fn predict_answers_ranges_and_explanations_on_request() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let a = s.addr;
    // Plain: a bare number, as before.
    let plain: f64 = post(a, "/predict", CAR).text().parse().unwrap();
    // ?range=true: an object with the price and its range.
    let r = post(a, "/predict?range=true", CAR).json();
    assert_eq!(r["price"], plain);
    let (lo, hi) = (
        r["range"]["low"].as_f64().unwrap(),
        r["range"]["high"].as_f64().unwrap(),
    );
    assert!(lo < plain && plain < hi, "{r}");
    // ?explain=true, one row and a batch.
    check_explained(&post(a, "/predict?explain=true", CAR).json(), CAR);
    let cars = rows(5);
    let body = serde_json::to_string(&cars).unwrap();
    let got = post(a, "/predict?explain=1", &body).json();
    for (g, c) in got.as_array().unwrap().iter().zip(&cars) {
        check_explained(g, &c.to_string());
    }
    // A bad row is named; a bad flag is a 400; too many rows are refused.
    let mut bad = cars.clone();
    bad[3]["year"] = json!("old");
    let r = post(
        a,
        "/predict?explain=true",
        &serde_json::to_string(&bad).unwrap(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["field"], "year");
    assert_eq!(r.json()["row"], 3);
    let r = post(a, "/predict?explain=maybe", CAR);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["field"], "explain");
    let many = serde_json::to_string(&rows(1001)).unwrap();
    let r = post(a, "/predict?explain=true", &many);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("at most 1000 rows"), "{}", r.text());
}

#[test]
fn kserve_explain_and_oip_outputs() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let a = s.addr;
    let cars = rows(3);
    let body = json!({ "instances": cars }).to_string();
    let r = post(a, "/v1/models/ford-price:explain", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    let predicted = post(a, "/v1/models/ford-price:predict", &body).json();
    assert_eq!(r["predictions"], predicted["predictions"]);
    for (e, c) in r["explanations"].as_array().unwrap().iter().zip(&cars) {
        check_explained(e, &c.to_string());
    }

    let col = |name: &str, dt: &str, f: &dyn Fn(&Value) -> Value| json!({"name": name, "datatype": dt, "shape": [3], "data": cars.iter().map(f).collect::<Vec<_>>()});
    let inputs = json!([
        col("model", "BYTES", &|c| c["model"].clone()),
        col("year", "INT64", &|c| c["year"].clone()),
        col("transmission", "BYTES", &|c| c["transmission"].clone()),
        col("mileage", "FP64", &|c| c["mileage"].clone()),
        col("fuelType", "BYTES", &|c| c["fuelType"].clone()),
        col("tax", "FP64", &|c| c["tax"].clone()),
        col("mpg", "FP64", &|c| c["mpg"].clone()),
        col("engineSize", "FP64", &|c| c["engineSize"].clone()),
    ]);
    let infer = |outputs: Value| {
        post(
            a,
            "/v2/models/ford-price/infer",
            &json!({"inputs": inputs, "outputs": outputs}).to_string(),
        )
    };
    let r = infer(json!([{"name": "contributions"}, {"name": "price"}, {"name": "price_range"}]));
    assert_eq!(r.status, 200, "{}", r.text());
    let outs = r.json()["outputs"].as_array().unwrap().clone();
    let names: Vec<&str> = outs.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["contributions", "price", "price_range"]);
    let (contrib, price, range) = (&outs[0], &outs[1], &outs[2]);
    assert_eq!(contrib["shape"], json!([3, 8]));
    assert_eq!(range["shape"], json!([3, 2]));
    assert_eq!(range["parameters"]["level"], 0.8);
    let fields = contrib["parameters"]["fields"].as_str().unwrap();
    assert_eq!(
        fields,
        "model,year,transmission,mileage,fuelType,tax,mpg,engineSize"
    );
    let baseline = contrib["parameters"]["baseline"].as_f64().unwrap();
    let data = contrib["data"].as_array().unwrap();
    for i in 0..cars.len() {
        let p = price["data"][i].as_f64().unwrap();
        assert_eq!(p, predicted["predictions"][i]);
        let sum: f64 = data[i * 8..(i + 1) * 8]
            .iter()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((sum - (p - baseline)).abs() < 0.05, "row {i}: {sum}");
        let (lo, hi) = (
            range["data"][2 * i].as_f64().unwrap(),
            range["data"][2 * i + 1].as_f64().unwrap(),
        );
        assert!(lo < p && p < hi);
    }
    // The price alone by default, and ranges without explaining.
    let r = post(
        a,
        "/v2/models/ford-price/infer",
        &json!({"inputs": inputs}).to_string(),
    )
    .json();
    assert_eq!(r["outputs"].as_array().unwrap().len(), 1);
    let r = infer(json!([{"name": "price_range"}])).json();
    assert_eq!(r["outputs"][0]["name"], "price_range");
}

#[test]
fn a_model_without_covers_or_range_says_so() {
    // An older model file: no node covers, no range.
    let old = edited_model(|d| {
        d["meta"]["source"]
            .as_object_mut()
            .unwrap()
            .remove("interval");
        for t in d["forest"]["trees"].as_array_mut().unwrap() {
            t.as_object_mut().unwrap().remove("cover");
        }
    });
    assert!(old.meta().interval().is_none());
    let s = TestServer::start(config(), ModelSource::Loaded(std::sync::Arc::new(old)));
    let a = s.addr;
    let r = post(a, "/predict?explain=true", CAR);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("cannot explain"), "{}", r.text());
    // Ranges are simply absent.
    let r = post(a, "/predict?range=true", CAR).json();
    assert!(r.get("range").is_none() && r["price"].is_number(), "{r}");
    let meta = get(a, "/v2/models/ford-price").json();
    assert_eq!(meta["outputs"].as_array().unwrap().len(), 1);
}
