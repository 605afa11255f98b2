//! Tests on the real Ford data (`data/ford.csv`, shipped in the repository):
//! the bad-row report, and re-training the shipped model with the settings it records.

use augur_model::data::{Table, prepare};
use augur_model::train::{TrainConfig, train};
use augur_model::{ModelSource, load_shipped};

mod common;

#[test]
fn bad_rows_are_reported_with_counts_lines_and_examples() {
    let csv = common::ford_csv();
    let table = Table::read_csv(&csv).unwrap();
    let (cols, report) = prepare(&augur_model::FeatureSpec::ford(), &table, 10).unwrap();
    assert_eq!(report.total_rows, 17_966);
    assert_eq!(report.excluded_rows, 52);
    assert_eq!(cols.len(), 17_914);
    let year = report
        .problems
        .iter()
        .find(|p| p.problem.starts_with("year: after"))
        .unwrap();
    assert_eq!((year.rows, year.lines.as_slice()), (1, &[17_728][..]));
    assert_eq!(year.examples, ["line 17728: year = 2060"]);
    let engine = report
        .problems
        .iter()
        .find(|p| p.problem.starts_with("engineSize"))
        .unwrap();
    assert_eq!(engine.rows, 51);
    assert_eq!(engine.lines.len(), 5);
    assert!(
        engine.examples[0].contains("engineSize = 0, fuelType = "),
        "{:?}",
        engine.examples
    );
}

/// The shipped model was made by `augur train --data data/ford.csv --name ford-price
/// --store models` (README). Re-train with the settings it records and check the data hash and
/// every metric match, and that the trees are the same.
#[test]
fn shipped_model_retrains_to_the_same_metrics() {
    let csv = common::ford_csv();
    let shipped = load_shipped().unwrap();
    let ModelSource::Trained {
        data_sha256,
        spec,
        params,
        cv: Some(cv),
        train_metrics,
        ..
    } = &shipped.meta().source
    else {
        panic!("the shipped model is a trained model with cross-validation");
    };
    let table = Table::read_csv(&csv).unwrap();
    assert_eq!(
        &table.sha256, data_sha256,
        "the data set changed since the shipped model was made"
    );
    let (cols, _) = prepare(spec, &table, 10).unwrap();
    let cfg = TrainConfig {
        spec: spec.clone(),
        params: params.clone(),
        folds: cv.folds,
        cv_seed: cv.seed,
        threads: 2,
        ..TrainConfig::default()
    };
    let again = train(&cfg, &cols, &|_, _| {}).unwrap();
    let again_cv = again.cv.unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    for (a, b) in [
        (&again_cv.pooled, &cv.pooled),
        (&again.train_metrics, train_metrics),
    ] {
        assert!(
            close(a.mae, b.mae)
                && close(a.rmse, b.rmse)
                && close(a.r2, b.r2)
                && close(a.mape, b.mape),
            "{a:?} vs {b:?}"
        );
    }
    assert_eq!(again.forest.arrays(), shipped.forest().arrays());
    assert_eq!(again.interval.as_ref(), shipped.meta().interval());
    // The accuracy target, with default settings.
    assert!(cv.pooled.mae <= 800.0, "cv MAE {}", cv.pooled.mae);
}

/// The price range is honest: trained (with its cross-validation) on one half of the Ford data,
/// its 80 % ranges cover 80 % ± 2 points of the other half's actual prices, and the coverage it
/// reported from its own out-of-fold rows is within 2 points too.
#[test]
fn price_ranges_cover_the_level_on_unseen_rows() {
    let table = Table::read_csv(&common::ford_csv()).unwrap();
    let spec = augur_model::FeatureSpec::ford();
    let (mut a, mut b) = (table.clone(), table.clone());
    a.records = table.records.iter().step_by(2).cloned().collect();
    b.records = table.records.iter().skip(1).step_by(2).cloned().collect();
    let (cols_a, _) = prepare(&spec, &a, 10).unwrap();
    let (cols_b, _) = prepare(&spec, &b, 10).unwrap();
    let cfg = TrainConfig {
        spec: spec.clone(),
        threads: 2,
        ..TrainConfig::default()
    };
    let trained = train(&cfg, &cols_a, &|_, _| {}).unwrap();
    let iv = trained
        .interval
        .clone()
        .expect("a range with cross-validation");
    assert_eq!(iv.level, 0.8);
    let reported = iv.evaluation.coverage;
    assert!(
        (reported - 0.8).abs() <= 0.02,
        "out-of-fold coverage {reported}"
    );
    let model = augur_model::Model::from_trained(
        "half",
        trained,
        spec,
        Default::default(),
        "half a",
        "",
        Default::default(),
    )
    .unwrap();
    let prices = common::predict_columns(&model, &cols_b);
    let inside = prices
        .iter()
        .zip(&cols_b.target)
        .filter(|(p, actual)| {
            let (lo, hi) = model.range(**p).unwrap();
            assert!(lo < **p && **p < hi);
            (lo..=hi).contains(*actual)
        })
        .count();
    let coverage = inside as f64 / prices.len() as f64;
    assert!(
        (coverage - 0.8).abs() <= 0.02,
        "coverage on the other half {coverage}"
    );
    eprintln!(
        "80 % ranges: {:.1} % out-of-fold, {:.1} % on the other half, mean width £{:.0}",
        100.0 * reported,
        100.0 * coverage,
        iv.evaluation.mean_width
    );
}

/// The shipped (trained) model explains every row of the Ford data: field contributions sum to
/// the score in log space (1e-6), the score matches the f32 prediction, and the price effects sum
/// to the prediction minus the baseline.
#[test]
fn shap_contributions_sum_to_every_ford_prediction() {
    let model = load_shipped().unwrap();
    let table = Table::read_csv(&common::ford_csv()).unwrap();
    let ModelSource::Trained { spec, .. } = &model.meta().source else {
        panic!("the shipped model is trained");
    };
    let (cols, _) = prepare(spec, &table, 10).unwrap();
    let map = cols.input_map(model.pipeline()).unwrap();
    let mut values = Vec::new();
    let (mut worst_log, mut worst_price) = (0.0f64, 0.0f64);
    for r in 0..cols.len() {
        cols.row(r, &map, &mut values);
        let e = model.explain_row(&values).unwrap();
        let sum = e.baseline_score + e.contributions.iter().map(|c| c.score).sum::<f64>();
        worst_log = worst_log.max((sum - e.score).abs());
        assert!((e.score - e.prediction.ln()).abs() < 1e-4, "row {r}");
        let effects: f64 = e.contributions.iter().map(|c| c.effect).sum();
        worst_price = worst_price.max((effects - (e.prediction - e.baseline)).abs());
    }
    assert!(worst_log <= 1e-6, "log-space sums miss by {worst_log}");
    assert!(worst_price <= 1e-6, "price effects miss by £{worst_price}");
}
