//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The Ford data set shipped in the repository (`data/ford.csv`).
pub(crate) fn ford_csv() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/ford.csv");
    assert!(
        p.is_file(),
        "the Ford data set is missing at {}",
        p.display()
    );
    p
}

/// This crate's test fixtures folder.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fresh, empty temporary folder for one test.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("augur-model-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A small synthetic car table (no data set needed): price depends on year, mileage, model
/// and transmission, with a few bad rows mixed in.
pub(crate) fn synthetic_csv(rows: usize) -> String {
    let models = [" Fiesta", " Focus", " Kuga", " Ka+", " Puma"];
    let trans = ["Manual", "Automatic", "Semi-Auto"];
    let fuels = ["Petrol", "Diesel", "Petrol", "Petrol", "Hybrid"];
    let mut s = String::from("model,year,price,transmission,mileage,fuelType,tax,mpg,engineSize\n");
    let mut x: u64 = 12345;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..rows {
        let m = (next() % 5) as usize;
        let t = (next() % 3) as usize;
        let year = 2010 + (next() % 10) as i64;
        let mileage = (next() % 100_000) as f64;
        let price = 4000.0 + 1500.0 * m as f64 + 900.0 * (year - 2010) as f64 - mileage * 0.03
            + if t == 1 { 1200.0 } else { 0.0 };
        let fuel = fuels[(i + m) % 5];
        s.push_str(&format!(
            "{},{year},{price:.0},{},{mileage},{fuel},{},{:.1},{:.1}\n",
            models[m],
            trans[t],
            [0, 20, 145, 150][(next() % 4) as usize],
            40.0 + (next() % 300) as f64 / 10.0,
            1.0 + (next() % 10) as f64 / 10.0,
        ));
    }
    s
}

/// A model's predictions for every row of prepared columns.
pub(crate) fn predict_columns(
    model: &augur_model::Model,
    cols: &augur_model::features::Columns,
) -> Vec<f64> {
    let map = cols.input_map(model.pipeline()).unwrap();
    let mut values = Vec::new();
    (0..cols.len())
        .map(|r| {
            cols.row(r, &map, &mut values);
            model.predict_row(&values).unwrap()
        })
        .collect()
}
