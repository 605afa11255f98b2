//! Model store round trip: train (small, synthetic), save, list, load, export, import, delete.

use augur_model::data::{Table, prepare};
use augur_model::train::{TrainConfig, train};
use augur_model::{FeatureSpec, Model, ModelError, ModelStore, TrainParams, Value};

mod common;

fn small_model(name: &str) -> Model {
    let csv = common::synthetic_csv(600);
    let table = Table::parse_csv(&csv).unwrap();
    let spec = FeatureSpec::ford();
    let (cols, report) = prepare(&spec, &table, 10).unwrap();
    let params = TrainParams {
        trees: 20,
        learning_rate: 0.3,
        ..TrainParams::default()
    };
    let cfg = TrainConfig {
        spec: spec.clone(),
        params: params.clone(),
        folds: 3,
        cv_seed: 1,
        threads: 2,
        ..TrainConfig::default()
    };
    let trained = train(&cfg, &cols, &|_, _| {}).unwrap();
    assert!(trained.cv.as_ref().unwrap().pooled.r2 > 0.5);
    Model::from_trained(
        name,
        trained,
        spec,
        params,
        "synthetic.csv",
        &table.sha256,
        report,
    )
    .unwrap()
}

fn row() -> Vec<Value<'static>> {
    vec![
        Value::Text("Focus"),
        Value::Number(2015.0),
        Value::Text("Automatic"),
        Value::Number(30_000.0),
        Value::Text("Petrol"),
        Value::Number(145.0),
        Value::Number(55.0),
        Value::Number(1.2),
    ]
}

#[test]
fn round_trip() {
    let dir = common::temp_dir("store");
    let store = ModelStore::open(dir.join("models")).unwrap();
    assert!(store.list().unwrap().is_empty());
    let model = small_model("cars");
    let expected = model.predict_row(&row()).unwrap();

    let v1 = store.save(model.clone(), None).unwrap();
    let v2 = store.save(model, None).unwrap();
    assert_eq!((v1.tag(), v2.tag()), ("cars:1", "cars:2"));
    let list = store.list().unwrap();
    let tags: Vec<&str> = list.iter().map(|m| m.tag.as_str()).collect();
    assert_eq!(tags, ["cars:1", "cars:2"]);
    assert!(list[0].size_bytes > 1000);
    assert!(list[0].meta.cv().is_some());

    let latest = store.load("cars:latest").unwrap();
    assert_eq!(latest.tag(), "cars:2");
    assert_eq!(store.load("cars").unwrap().tag(), "cars:2");
    assert_eq!(
        store.load("cars:1").unwrap().predict_row(&row()).unwrap(),
        expected
    );
    let meta = latest.meta();
    assert_eq!(meta.augur_version, env!("CARGO_PKG_VERSION"));
    assert!(meta.created_at.ends_with('Z'));
    match &meta.source {
        augur_model::ModelSource::Trained {
            data_sha256,
            spec,
            data_report,
            ..
        } => {
            assert_eq!(data_sha256.len(), 64);
            assert_eq!(spec, &FeatureSpec::ford());
            assert_eq!(data_report.total_rows, 600);
        }
        other => panic!("{other:?}"),
    }

    let file = dir.join("cars-1.json");
    assert_eq!(store.export("cars:1", &file).unwrap(), "cars:1");
    let other = ModelStore::open(dir.join("elsewhere")).unwrap();
    let imported = other.import(&file, None).unwrap();
    assert_eq!(imported.tag(), "cars:1");
    assert_eq!(imported.predict_row(&row()).unwrap(), expected);
    let renamed = other.import(&file, Some("trucks")).unwrap();
    assert_eq!(renamed.tag(), "trucks:1");
    assert_eq!(
        other
            .load("trucks:latest")
            .unwrap()
            .predict_row(&row())
            .unwrap(),
        expected
    );

    assert_eq!(store.delete("cars:latest").unwrap(), "cars:2");
    assert_eq!(store.load("cars:latest").unwrap().tag(), "cars:1");
    assert_eq!(store.delete("cars:1").unwrap(), "cars:1");
    assert!(matches!(store.load("cars"), Err(ModelError::NotFound(_))));
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(
        store.delete("cars:1"),
        Err(ModelError::NotFound(_))
    ));
    assert!(matches!(
        store.load("../x"),
        Err(ModelError::InvalidTag { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_files_are_errors_not_panics() {
    let dir = common::temp_dir("corrupt");
    let store = ModelStore::open(&dir).unwrap();
    std::fs::create_dir_all(dir.join("bad/1")).unwrap();
    std::fs::write(dir.join("bad/1/model.json"), b"{\"format\":\"augur-model\"").unwrap();
    assert!(matches!(store.load("bad:1"), Err(ModelError::Json { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn default_location_honours_the_environment() {
    // Only reads the environment; the variable names are the documented ones.
    let loc = ModelStore::default_location();
    if let Some(v) = std::env::var_os("AUGUR_MODEL_STORE").filter(|v| !v.is_empty()) {
        assert_eq!(loc.unwrap(), std::path::PathBuf::from(v));
    } else if let Some(h) = std::env::var_os("AUGUR_HOME").filter(|v| !v.is_empty()) {
        assert_eq!(loc.unwrap(), std::path::PathBuf::from(h).join("models"));
    } else if let Some(h) = std::env::var_os("HOME") {
        assert_eq!(
            loc.unwrap(),
            std::path::PathBuf::from(h).join(".augur/models")
        );
    }
}
