//! What a seller sees about a priced listing: the price and its range, the three biggest
//! reasons in words, comparable listings from `car_data` (one indexed query), and how their
//! asking price compares with the range.

use augur_model::{Explanation, Model};
use serde_json::{Value, json};
use tokio_postgres::Client;

/// Comparable listings shown per car.
pub const COMPARABLES: i64 = 5;

/// The index the comparables query uses (created with the demo's table).
pub const COMPARABLES_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS car_data_model_year ON car_data (model, year)";

/// The comparables query: the same model within three years (the index's range), nearest first
/// by year, mileage (10,000 miles count as a year) and engine size (0.5 l counts as a year),
/// with an asking price.
const COMPARABLES_SQL: &str = "SELECT id, trim(model), year, mileage, enginesize, price, \
     transmission, fueltype FROM car_data \
     WHERE model = $1 AND id <> $2 AND price > 0 AND year BETWEEN $3 - 3 AND $3 + 3 \
     ORDER BY abs(year - $3) + abs(mileage - $4) / 10000.0 + abs(enginesize - $5) / 0.5, id DESC \
     LIMIT $6";

/// A listing as stored, read back for its insight.
pub struct Stored {
    /// `car_data.id`.
    pub id: i32,
    /// The model as stored (with the data set's leading space).
    pub model: String,
    /// The fields as the price model reads them.
    pub row: serde_json::Map<String, Value>,
    /// Year, mileage and engine size, for the comparables query.
    pub year: i32,
    /// Miles.
    pub mileage: i32,
    /// Litres.
    pub engine_size: f64,
    /// The asking price, if the seller gave one.
    pub asking: Option<i32>,
}

/// Reads listing `id` (`None` if there is none).
pub async fn read(client: &Client, id: i32) -> Result<Option<Stored>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT model, year, transmission, mileage, fueltype, tax, mpg, enginesize, price \
             FROM car_data WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok(row.map(|r| {
        let model: Option<String> = r.get(0);
        let (year, mileage) = (r.get::<_, Option<i32>>(1), r.get::<_, Option<i32>>(3));
        let engine_size = r.get::<_, Option<f64>>(7);
        let row = json!({
            "model": model, "year": year, "transmission": r.get::<_, Option<String>>(2),
            "mileage": mileage, "fuelType": r.get::<_, Option<String>>(4),
            "tax": r.get::<_, Option<i32>>(5), "mpg": r.get::<_, Option<f64>>(6),
            "engineSize": engine_size,
        });
        Stored {
            id,
            model: model.unwrap_or_default(),
            row: row.as_object().cloned().unwrap_or_default(),
            year: year.unwrap_or(0),
            mileage: mileage.unwrap_or(0),
            engine_size: engine_size.unwrap_or(0.0),
            asking: r.get(8),
        }
    }))
}

/// The comparable listings of `l`, nearest first.
pub async fn comparables(client: &Client, l: &Stored) -> Result<Vec<Value>, tokio_postgres::Error> {
    let rows = client
        .query(
            COMPARABLES_SQL,
            &[
                &l.model,
                &l.id,
                &l.year,
                &l.mileage,
                &l.engine_size,
                &COMPARABLES,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, i32>(0), "model": r.get::<_, Option<String>>(1),
                "year": r.get::<_, Option<i32>>(2), "mileage": r.get::<_, Option<i32>>(3),
                "engineSize": r.get::<_, Option<f64>>(4), "price": r.get::<_, Option<i32>>(5),
                "transmission": r.get::<_, Option<String>>(6),
                "fuelType": r.get::<_, Option<String>>(7),
            })
        })
        .collect())
}

/// The insight document: price, range, reasons, asking-price verdict (comparables are added by
/// the caller).
pub fn describe(model: &Model, l: &Stored, e: &Explanation) -> Value {
    let range = model.range(e.prediction);
    let mut parts: Vec<_> = e.contributions.iter().collect();
    parts.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
    let reasons: Vec<Value> = parts
        .iter()
        .take(3)
        .map(|c| json!({ "field": c.field, "effect": c.effect.round(), "text": reason(&l.row, &c.field, c.effect) }))
        .collect();
    json!({
        "id": l.id,
        "price": e.prediction.round(),
        "range": range.map(|(lo, hi)| json!({
            "low": lo.round(), "high": hi.round(),
            "level": model.meta().interval().map(|iv| iv.level),
        })),
        "baseline": e.baseline.round(),
        "reasons": reasons,
        "asking": l.asking.map(|a| asking(a, e.prediction, range)),
    })
}

/// One reason in words: "The mileage (9,083 miles) lowers it by £620".
fn reason(row: &serde_json::Map<String, Value>, field: &str, effect: f64) -> String {
    let v = row.get(field).cloned().unwrap_or(Value::Null);
    let text = |v: &Value| match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    let num = |v: &Value| v.as_f64().unwrap_or(0.0);
    let what = match field {
        "model" => format!("The model ({})", text(&v)),
        "year" => format!("The year ({})", text(&v)),
        "mileage" => format!("The mileage ({} miles)", thousands(num(&v))),
        "transmission" => format!("The gearbox ({})", text(&v)),
        "fuelType" => format!("The fuel ({})", text(&v)),
        "tax" => format!("The road tax (£{})", thousands(num(&v))),
        "mpg" => format!("The fuel economy ({} mpg)", num(&v)),
        "engineSize" => format!("The engine size ({:.1} l)", num(&v)),
        other => format!("The {other} ({})", text(&v)),
    };
    let verb = if effect >= 0.0 { "raises" } else { "lowers" };
    format!("{what} {verb} it by £{}", thousands(effect.abs()))
}

/// How an asking price compares with the range (or the price when there is no range).
fn asking(ask: i32, price: f64, range: Option<(f64, f64)>) -> Value {
    let a = f64::from(ask);
    let (lo, hi) = range.unwrap_or((price, price));
    let (verdict, pct) = if a > hi {
        ("above", 100.0 * (a / hi - 1.0))
    } else if a < lo {
        ("below", 100.0 * (1.0 - a / lo))
    } else {
        ("within", 0.0)
    };
    let text = match verdict {
        "within" => format!(
            "£{} is within the typical range for this car (£{}–£{})",
            thousands(a),
            thousands(lo),
            thousands(hi)
        ),
        v => format!(
            "£{} is {:.0}% {v} the typical range for this car (£{}–£{})",
            thousands(a),
            pct,
            thousands(lo),
            thousands(hi)
        ),
    };
    json!({ "price": ask, "verdict": verdict, "percent": pct.round(), "text": text })
}

/// A whole number with thousands separators: 12,345.
fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The known values of a categorical input (its learned categories), sorted.
pub fn known_categories(model: &Model, field: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in &model.pipeline().spec().columns {
        match c {
            augur_model::features::Column::Lookup {
                field: f, table, ..
            } if f == field => out.extend(table.keys().cloned()),
            augur_model::features::Column::Indicator { field: f, category } if f == field => {
                out.push(category.clone())
            }
            _ => {}
        }
    }
    out.sort_by_key(|s| s.to_lowercase());
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_numbers() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(-620.0), "-620");
        assert_eq!(thousands(999.0), "999");
        let row = json!({"mileage": 9083, "model": " Focus", "engineSize": 1.0});
        let row = row.as_object().unwrap();
        assert_eq!(
            reason(row, "mileage", -620.2),
            "The mileage (9,083 miles) lowers it by £620"
        );
        assert_eq!(
            reason(row, "model", 1200.0),
            "The model (Focus) raises it by £1,200"
        );
        let a = asking(13200, 11000.0, Some((10000.0, 12000.0)));
        assert_eq!(a["verdict"], "above");
        assert_eq!(
            a["text"],
            "£13,200 is 10% above the typical range for this car (£10,000–£12,000)"
        );
        assert_eq!(
            asking(9000, 11000.0, Some((10000.0, 12000.0)))["text"],
            "£9,000 is 10% below the typical range for this car (£10,000–£12,000)"
        );
        assert_eq!(
            asking(11000, 11000.0, Some((10000.0, 12000.0)))["verdict"],
            "within"
        );
    }

    #[test]
    fn the_shipped_model_knows_its_car_models() {
        let m = augur_model::load_shipped().unwrap();
        let known = known_categories(&m, "model");
        assert!(
            known.iter().any(|k| k == "Focus") && known.iter().any(|k| k == "Ka+"),
            "{known:?}"
        );
    }
}
