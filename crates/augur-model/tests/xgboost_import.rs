//! XGBoost import fidelity: a model trained and saved by Python XGBoost (fixture made by
//! scripts/xgboost-fixture.py) predicts the same numbers here as in xgboost (max abs diff
//! <= 1e-3), on the fixture's rows and, when the data set is present, on every held-out row.

use std::collections::HashMap;

use augur_model::data::Table;
use augur_model::{Model, ModelError, ModelSource, ModelStore, PipelineSpec};

mod common;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixtures().join("xgboost").join(name)).unwrap()
}

fn imported() -> Model {
    let spec: PipelineSpec = serde_json::from_slice(&fixture("features.json")).unwrap();
    Model::from_xgboost("xgb-ford", &fixture("model.json"), "model.json", spec).unwrap()
}

#[test]
fn fixture_rows_match_xgboost() {
    let model = imported();
    assert_eq!(model.forest().num_trees(), 100);
    let text = String::from_utf8(fixture("rows.jsonl")).unwrap();
    let mut max = 0.0f64;
    let mut n = 0;
    for line in text.lines() {
        let mut row: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(line).unwrap();
        let expected = row.remove("xgboost").unwrap().as_f64().unwrap();
        let got = model.predict_json(&row).unwrap();
        max = max.max((got - expected).abs());
        n += 1;
    }
    assert_eq!(n, 200);
    eprintln!("max abs diff vs xgboost: {max} over {n} fixture rows");
    assert!(max <= 1e-3, "max abs diff {max}");
}

#[test]
fn every_held_out_ford_row_matches_xgboost() {
    let csv = common::ford_csv();
    let model = imported();
    let table = Table::read_csv(&csv).unwrap();
    let by_line: HashMap<usize, &Vec<String>> =
        table.records.iter().map(|r| (r.line, &r.fields)).collect();
    let split = String::from_utf8(fixture("test-split.csv")).unwrap();
    let mut objects = Vec::new();
    let mut expected = Vec::new();
    for line in split.lines().skip(1) {
        let (l, p) = line.split_once(',').unwrap();
        let fields = by_line[&l.parse::<usize>().unwrap()];
        let mut obj = serde_json::Map::new();
        for (h, v) in table.header.iter().zip(fields.iter()) {
            let value = match v.parse::<f64>() {
                Ok(x) => serde_json::json!(x),
                Err(_) => serde_json::json!(v),
            };
            obj.insert(h.clone(), value);
        }
        objects.push(obj);
        expected.push(p.parse::<f64>().unwrap());
    }
    assert!(objects.len() > 3000);
    let refs: Vec<_> = objects.iter().collect();
    let got = model.predict_json_batch(&refs);
    let max = got
        .iter()
        .zip(&expected)
        .map(|(g, e)| (g.as_ref().unwrap() - e).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "max abs diff vs xgboost: {max} over {} held-out rows",
        expected.len()
    );
    assert!(
        max <= 1e-3,
        "max abs diff {max} over {} rows",
        expected.len()
    );
}

#[test]
fn import_through_the_store_records_the_source() {
    let dir = common::temp_dir("xgb-store");
    let xgb = common::fixtures().join("xgboost");
    let store = ModelStore::open(&dir).unwrap();
    let model = store
        .import_xgboost(
            &xgb.join("model.json"),
            &xgb.join("features.json"),
            "ford-xgb",
        )
        .unwrap();
    assert_eq!(model.tag(), "ford-xgb:1");
    let loaded = store.load("ford-xgb:latest").unwrap();
    match &loaded.meta().source {
        ModelSource::Xgboost {
            objective,
            xgboost_version,
            file_sha256,
            ..
        } => {
            assert_eq!(objective, "reg:squarederror");
            assert!(xgboost_version.starts_with('3'));
            assert_eq!(
                file_sha256,
                &augur_model::sha256_hex(&fixture("model.json"))
            );
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unsupported_models_are_rejected_clearly() {
    let spec: PipelineSpec = serde_json::from_slice(&fixture("features.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&fixture("model.json")).unwrap();
    doc["learner"]["objective"]["name"] = "binary:logistic".into();
    let err = Model::from_xgboost(
        "x",
        &serde_json::to_vec(&doc).unwrap(),
        "m.json",
        spec.clone(),
    )
    .unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedXgboost(_)), "{err}");

    let mut doc: serde_json::Value = serde_json::from_slice(&fixture("model.json")).unwrap();
    let tree = &mut doc["learner"]["gradient_booster"]["model"]["trees"][0];
    tree["split_type"][0] = 1.into();
    let err = Model::from_xgboost(
        "x",
        &serde_json::to_vec(&doc).unwrap(),
        "m.json",
        spec.clone(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("categorical"), "{err}");

    let mut short = spec;
    short.columns.pop();
    let err = Model::from_xgboost("x", &fixture("model.json"), "m.json", short).unwrap_err();
    assert!(err.to_string().contains("reads 11 features"), "{err}");
}

/// Every held-out Ford row as a JSON object, with its fixture CSV's other columns.
fn held_out(file: &str) -> Vec<(serde_json::Map<String, serde_json::Value>, Vec<f64>)> {
    let table = Table::read_csv(&common::ford_csv()).unwrap();
    let by_line: HashMap<usize, &Vec<String>> =
        table.records.iter().map(|r| (r.line, &r.fields)).collect();
    let text = String::from_utf8(fixture(file)).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let mut cells = line.split(',');
            let l: usize = cells.next().unwrap().parse().unwrap();
            let mut obj = serde_json::Map::new();
            for (h, v) in table.header.iter().zip(by_line[&l].iter()) {
                obj.insert(h.clone(), serde_json::json!(v));
            }
            (obj, cells.map(|c| c.parse().unwrap()).collect())
        })
        .collect()
}

/// Imported models explain exactly as xgboost's `pred_contribs`: per column and bias, on every
/// held-out row, for a price model (float tolerance relative to the price: xgboost computes in
/// f32) and a log-price model (≤ 1e-4 absolute); contributions sum to the score.
#[test]
fn shap_contributions_equal_xgboost_pred_contribs() {
    for (model_file, features, contribs, tol_of) in [
        (
            "model-log.json",
            "features-log.json",
            "contribs-log.csv",
            0.0,
        ),
        ("model.json", "features.json", "contribs.csv", 2e-6),
    ] {
        let spec: PipelineSpec = serde_json::from_slice(&fixture(features)).unwrap();
        let model = Model::from_xgboost("x", &fixture(model_file), model_file, spec).unwrap();
        let rows = held_out(contribs);
        assert!(rows.len() > 3000);
        let (mut max, mut max_sum) = (0.0f64, 0.0f64);
        let mut values = Vec::new();
        for (obj, want) in &rows {
            model.values_from_json(obj, &mut values).unwrap();
            let (phi, bias) = model.column_contributions(&values).unwrap();
            let margin = want[want.len() - 1];
            let largest = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let tol = 1e-4 + tol_of * largest;
            assert_eq!(phi.len() + 2, want.len());
            for (a, b) in phi.iter().chain([&bias]).zip(want) {
                max = max.max((a - b).abs());
                assert!(
                    (a - b).abs() <= tol,
                    "{model_file}: {phi:?} + {bias} vs {want:?}"
                );
            }
            let e = model.explain_row(&values).unwrap();
            let sum = e.baseline_score + e.contributions.iter().map(|c| c.score).sum::<f64>();
            max_sum = max_sum.max((sum - e.score).abs());
            assert!((e.score - margin).abs() <= tol, "{} vs {margin}", e.score);
        }
        assert!(
            max_sum <= 1e-6,
            "{model_file}: contributions miss the score by {max_sum}"
        );
        eprintln!(
            "{model_file}: max |augur - xgboost pred_contribs| = {max:e} over {} rows",
            rows.len()
        );
    }
}
