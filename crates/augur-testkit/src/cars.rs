//! The original pipeline's `car_data` table: its DDL, listings from the Ford data, the shipped
//! model's expected price for a row, and comparing a predicted table with the source.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::{TestDb, TestPg};

/// The original DDL.
pub const CAR_DATA: &str = "CREATE TABLE car_data (id SERIAL PRIMARY KEY, model VARCHAR(50), year INTEGER, price INTEGER, \
    transmission VARCHAR(50), mileage INTEGER, fuelType VARCHAR(50), tax INTEGER, mpg FLOAT, engineSize FLOAT, suggestedPrice INTEGER)";

/// The first `n` listings of the Ford data (skipping rows with a bad field), as SQL values.
pub fn listings(n: usize) -> Vec<String> {
    let path = crate::ford_csv();
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            if f.len() != 9 || f[1].parse::<i32>().is_err() {
                return None;
            }
            Some(format!(
                "('{}', {}, {}, '{}', {}, '{}', {}, {}, {})",
                f[0].replace('\'', "''"),
                f[1],
                f[2],
                f[3],
                f[4],
                f[5],
                f[6],
                f[7],
                f[8]
            ))
        })
        .take(n)
        .collect()
}

/// Inserts `rows` into car_data in batches of 100.
pub fn insert_listings(pg: &TestPg, db: &TestDb, rows: &[String]) {
    for chunk in rows.chunks(100) {
        pg.sql(
            db,
            &format!(
                "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES {}",
                chunk.join(", ")
            ),
        );
    }
}

/// The number `sql` returns (0 when it fails, e.g. while the table does not exist yet).
pub fn count(pg: &TestPg, db: &TestDb, sql: &str) -> usize {
    pg.cluster
        .psql(&db.name, sql)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `sql` (a count) returns `want`.
pub fn wait_count(pg: &TestPg, db: &TestDb, sql: &str, want: usize, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = count(pg, db, sql);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {got} of {want} after {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The table's rows as `id → [columns…]` text, for `columns`.
pub fn rows(pg: &TestPg, db: &TestDb, table: &str, columns: &str) -> BTreeMap<i64, Vec<String>> {
    let out = pg.sql(
        db,
        &format!("SELECT id, {columns} FROM {table} ORDER BY id"),
    );
    out.lines()
        .map(|l| {
            let mut parts = l.split('|');
            let id: i64 = parts.next().unwrap().parse().unwrap();
            (id, parts.map(str::to_string).collect())
        })
        .collect()
}

/// The shipped model's prediction for a `car_data` row given as
/// `[model, year, price, transmission, mileage, fueltype, tax, mpg, enginesize]` text.
pub fn expected_price(model: &augur_model::Model, r: &[String]) -> f64 {
    let num = |s: &str| serde_json::Value::from(s.parse::<f64>().unwrap());
    let obj: serde_json::Map<String, serde_json::Value> = [
        ("model", serde_json::Value::from(r[0].clone())),
        ("year", num(&r[1])),
        ("transmission", serde_json::Value::from(r[3].clone())),
        ("mileage", num(&r[4])),
        ("fuelType", serde_json::Value::from(r[5].clone())),
        ("tax", num(&r[6])),
        ("mpg", num(&r[7])),
        ("engineSize", num(&r[8])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    model.predict_json(&obj).unwrap()
}

/// Checks that `predicted` holds exactly the rows of `car_data`, every source column equal, and
/// `suggestedprice` the (rounded) prediction of the shipped model.
pub fn assert_predicted_table(pg: &TestPg, db: &TestDb, predicted: &str) {
    assert_predicted_table_as(pg, db, predicted, |p| p.round() as i64);
}

/// As [`assert_predicted_table`], with `stored` turning the model's prediction into the integer
/// the table must hold (the original stack truncates a price rounded to cents).
pub fn assert_predicted_table_as(
    pg: &TestPg,
    db: &TestDb,
    predicted: &str,
    stored: impl Fn(f64) -> i64,
) {
    let cols = "model, year, price, transmission, mileage, fueltype, tax, mpg, enginesize";
    let src = rows(pg, db, "car_data", cols);
    let dst = rows(pg, db, predicted, &format!("{cols}, suggestedprice"));
    assert_eq!(src.len(), dst.len(), "row counts differ");
    let model = augur_model::load_shipped().unwrap();
    for (id, s) in &src {
        let d = dst
            .get(id)
            .unwrap_or_else(|| panic!("row {id} missing from {predicted}"));
        assert_eq!(&d[..9], &s[..], "row {id}: source columns differ");
        let want = stored(expected_price(&model, s));
        assert_eq!(d[9], want.to_string(), "row {id}: suggestedprice");
    }
}
