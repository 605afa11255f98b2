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
    // The accuracy target, with default settings.
    assert!(cv.pooled.mae <= 800.0, "cv MAE {}", cv.pooled.mae);
}
