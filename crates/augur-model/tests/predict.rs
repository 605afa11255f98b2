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

/// Finding 8 of issue 9: the data checks recorded with the model refuse, at prediction time,
/// the listings training would have excluded — in single rows, JSON rows and batches alike.
#[test]
fn impossible_listings_get_an_error_naming_the_check_never_a_price() {
    let model = shipped();
    let base = r#"{"model":" Fiesta","year":2017,"transmission":"Manual","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#;
    let with = |k: &str, v: serde_json::Value| {
        let mut r = obj(base);
        r.insert(k.into(), v);
        r
    };
    assert!(model.predict_json(&obj(base)).unwrap().is_finite());
    let cases = [
        ("year", serde_json::json!(-5), "below 1900"),
        ("year", serde_json::json!(99_999), "after"),
        ("year", serde_json::json!(2060), "after"),
        (
            "mileage",
            serde_json::json!(2_147_483_647i64),
            "above 1000000",
        ),
        ("mileage", serde_json::json!(-1), "below 0"),
        ("tax", serde_json::json!(-20), "below 0"),
        ("mpg", serde_json::json!(-3.5), "not positive"),
        ("mpg", serde_json::json!(0), "not positive"),
        (
            "engineSize",
            serde_json::json!(0),
            "not positive (and fuelType is not Electric)",
        ),
        ("engineSize", serde_json::json!(60), "above 10"),
    ];
    for (field, value, rule) in cases {
        let e = model.predict_json(&with(field, value.clone())).unwrap_err();
        assert_eq!(e.field, field, "{field}={value}");
        match &e.problem {
            FieldProblem::Check(r) => assert!(r.contains(rule), "{field}={value}: {r}"),
            other => panic!("{field}={value}: {other:?}"),
        }
    }
    // An electric car may have no engine; an empty model name is missing, not a category.
    let mut electric = with("engineSize", serde_json::json!(0));
    electric.insert("fuelType".into(), serde_json::json!("electric"));
    assert!(model.predict_json(&electric).unwrap().is_finite());
    for empty in ["", "   "] {
        let e = model
            .predict_json(&with("model", serde_json::json!(empty)))
            .unwrap_err();
        assert_eq!(
            (e.field.as_str(), &e.problem),
            ("model", &FieldProblem::Missing)
        );
    }
    // The same checks apply inside a batch, row by row.
    let rows = [with("year", serde_json::json!(2060)), obj(base)];
    let out = model.predict_json_batch(&rows.iter().collect::<Vec<_>>());
    assert!(out[0].is_err() && out[1].is_ok(), "{out:?}");
}

/// Category values match the training spelling without regard to case or spacing, and only
/// truly unseen values count as unseen.
#[test]
fn categories_match_the_training_spelling_ignoring_case_and_spaces() {
    let model = shipped();
    let canonical = obj(
        r#"{"model":" Fiesta","year":2017,"transmission":"Manual","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#,
    );
    let sloppy = obj(
        r#"{"model":"fiesta","year":2017,"transmission":"MANUAL","mileage":15944,"fuelType":" petrol ","tax":150,"mpg":57.7,"engineSize":1.0}"#,
    );
    let a = model.predict_json(&canonical).unwrap();
    assert_eq!(a, model.predict_json(&sloppy).unwrap());
    let spaced = obj(
        r#"{"model":"grand  c-max","year":2017,"transmission":"Manual","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#,
    );
    let exact = obj(
        r#"{"model":"Grand C-MAX","year":2017,"transmission":"Manual","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1.0}"#,
    );
    assert_eq!(
        model.predict_json(&spaced).unwrap(),
        model.predict_json(&exact).unwrap()
    );
    let text = |s: &'static str| Value::Text(s);
    let row = |m: &'static str| {
        vec![
            text(m),
            Value::Number(2017.0),
            text("manual"),
            Value::Number(1.0),
            text("Coal"),
            Value::Number(1.0),
            Value::Number(1.0),
            Value::Number(1.0),
        ]
    };
    assert_eq!(
        model.unseen_categories(&row("FIESTA")),
        1,
        "only Coal is unseen"
    );
    assert_eq!(model.unseen_categories(&row("Model T")), 2);
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
