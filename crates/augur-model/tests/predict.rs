//! Predicting with the shipped model: golden predictions for fixed rows, per-row errors in
//! batches, JSON input with Debezium's lower-cased keys, unseen categories, sharing across
//! threads.

use std::sync::Arc;

use augur_model::{FieldProblem, Model, Value, load_shipped};

fn shipped() -> Model {
    load_shipped().expect("the shipped model loads from models/")
}

fn obj(s: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(s).unwrap()
}

/// Golden predictions: fixed rows and the prices the shipped model gives them (written when
/// the model was made; see tests/fixtures/golden.jsonl). Any change to the evaluator, the
/// pipeline or the model file format that moves a prediction fails here.
#[test]
fn golden_predictions() {
    let model = shipped();
    let path = common::fixtures().join("golden.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let mut row = obj(line);
        let expected = row.remove("expected").unwrap().as_f64().unwrap();
        let got = model.predict_json(&row).unwrap();
        // Expected values are recorded to the cent.
        assert!((got - expected).abs() <= 0.0051, "{line}: got {got}");
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn input_fields_are_canonical_and_match_case_insensitively() {
    let model = shipped();
    assert!(model.tag().starts_with("ford-price:"));
    let names: Vec<&str> = model
        .input_fields()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "model",
            "year",
            "transmission",
            "mileage",
            "fuelType",
            "tax",
            "mpg",
            "engineSize"
        ]
    );
    assert_eq!(model.field_index("enginesize"), Some(7));
    assert_eq!(model.field_index("fueltype"), Some(4));
    let exact = obj(
        r#"{"model":" Fiesta","year":2017,"transmission":"Automatic","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#,
    );
    let lower = obj(
        r#"{"model":"Fiesta","year":2017,"transmission":"Automatic","mileage":15944,"fueltype":"Petrol","tax":150,"mpg":57.7,"enginesize":"1.0","id":7}"#,
    );
    let a = model.predict_json(&exact).unwrap();
    assert_eq!(a, model.predict_json(&lower).unwrap());
    assert!((5_000.0..30_000.0).contains(&a), "{a}");
}

#[test]
fn unseen_category_is_other_not_an_error() {
    let model = shipped();
    let row = obj(
        r#"{"model":"Model T","year":2017,"transmission":"Steam","mileage":15944,"fuelType":"Coal","tax":150,"mpg":57.7,"engineSize":1.0}"#,
    );
    assert!(model.predict_json(&row).unwrap().is_finite());
}

#[test]
fn batch_reports_bad_rows_and_predicts_the_rest() {
    let model = shipped();
    let good = |m| {
        vec![
            Value::Text(m),
            Value::Number(2018.0),
            Value::Text("Manual"),
            Value::Number(20_000.0),
            Value::Text("Petrol"),
            Value::Number(145.0),
            Value::Number(55.4),
            Value::Number(1.0),
        ]
    };
    let mut rows = Vec::new();
    rows.extend(good("Fiesta"));
    let mut missing = good("Focus");
    missing[3] = Value::Missing;
    rows.extend(missing);
    rows.extend(good("Kuga"));
    let mut mistyped = good("Focus");
    mistyped[7] = Value::Text("big");
    rows.extend(mistyped);
    let mut out = vec![0.0; 4];
    let errors = model.predict_batch(&rows, &mut out).unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(
        (errors[0].row, errors[0].error.field.as_str()),
        (1, "mileage")
    );
    assert_eq!(errors[0].error.problem, FieldProblem::Missing);
    assert_eq!(
        (errors[1].row, errors[1].error.field.as_str()),
        (3, "engineSize")
    );
    assert!(matches!(
        errors[1].error.problem,
        FieldProblem::WrongType { .. }
    ));
    assert!(out[1].is_nan() && out[3].is_nan());
    assert_eq!(out[0], model.predict_row(&good("Fiesta")).unwrap());
    assert_eq!(out[2], model.predict_row(&good("Kuga")).unwrap());
    assert!(
        model.predict_batch(&rows[1..], &mut out).is_err(),
        "shape is checked"
    );
}

#[test]
fn json_batch_matches_single_rows() {
    let model = shipped();
    let rows = [
        obj(
            r#"{"model":" Focus","year":2018,"transmission":"Manual","mileage":9083,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1}"#,
        ),
        obj(
            r#"{"model":" Focus","year":null,"transmission":"Manual","mileage":9083,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1}"#,
        ),
        obj(
            r#"{"model":" Focus","year":2018,"transmission":true,"mileage":9083,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1}"#,
        ),
        obj(
            r#"{"model":" Kuga","year":2019,"transmission":"Automatic","mileage":100,"fuelType":"Diesel","tax":145,"mpg":47.1,"engineSize":2}"#,
        ),
    ];
    let refs: Vec<_> = rows.iter().collect();
    let out = model.predict_json_batch(&refs);
    assert_eq!(
        out[0].as_ref().unwrap(),
        &model.predict_json(&rows[0]).unwrap()
    );
    assert_eq!(
        out[1].as_ref().unwrap_err().to_string(),
        "field year: missing"
    );
    assert_eq!(
        out[2].as_ref().unwrap_err().to_string(),
        "field transmission: expected a string, got a boolean"
    );
    assert_eq!(
        out[3].as_ref().unwrap(),
        &model.predict_json(&rows[3]).unwrap()
    );
}

#[test]
fn shared_across_threads() {
    let model = Arc::new(shipped());
    let row = obj(
        r#"{"model":" Fiesta","year":2017,"transmission":"Automatic","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#,
    );
    let expected = model.predict_json(&row).unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (model, row) = (Arc::clone(&model), row.clone());
            s.spawn(move || assert_eq!(model.predict_json(&row).unwrap(), expected));
        }
    });
}

mod common;
