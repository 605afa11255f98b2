//! A car a seller submits: parsed from the form's JSON and checked field by field, so a bad
//! value is refused with a message naming the field and nothing is inserted.

use serde_json::{Map, Value};

/// A validated listing, ready to insert into `car_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// Car model, as the data set writes it (with its leading space, e.g. `" Fiesta"`).
    pub model: String,
    /// Registration year.
    pub year: i32,
    /// `Manual`, `Automatic`, `Semi-Auto` or `Other`.
    pub transmission: String,
    /// Miles.
    pub mileage: i32,
    /// `Petrol`, `Diesel`, `Hybrid`, `Electric` or `Other`.
    pub fuel_type: String,
    /// Road tax, GBP.
    pub tax: i32,
    /// Miles per gallon.
    pub mpg: f64,
    /// Litres.
    pub engine_size: f64,
    /// The asking price, if the seller gave one.
    pub price: Option<i32>,
}

/// What is wrong with a submission: the field and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The form field.
    pub field: &'static str,
    /// The problem, in words for the seller.
    pub problem: String,
}

/// The form's fields in the order the seller sees them (errors are reported in this order).
const FORM_ORDER: &[&str] = &[
    "model",
    "year",
    "mileage",
    "transmission",
    "fuelType",
    "tax",
    "mpg",
    "engineSize",
    "price",
];

/// The transmissions the form offers.
pub const TRANSMISSIONS: &[&str] = &["Manual", "Automatic", "Semi-Auto", "Other"];
/// The fuel types the form offers.
pub const FUEL_TYPES: &[&str] = &["Petrol", "Diesel", "Hybrid", "Electric", "Other"];

fn field<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null() && v.as_str() != Some(""))
}

fn number(
    obj: &Map<String, Value>,
    names: &[&str],
    label: &'static str,
    min: f64,
    max: f64,
    integer: bool,
) -> Result<f64, Invalid> {
    let v = field(obj, names).ok_or_else(|| Invalid {
        field: label,
        problem: "is required".into(),
    })?;
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
    .ok_or_else(|| Invalid {
        field: label,
        problem: "must be a number".into(),
    })?;
    if integer && n.fract() != 0.0 {
        return Err(Invalid {
            field: label,
            problem: "must be a whole number".into(),
        });
    }
    if n < min || n > max {
        return Err(Invalid {
            field: label,
            problem: format!("must be between {min} and {max}"),
        });
    }
    Ok(n)
}

fn choice(
    obj: &Map<String, Value>,
    names: &[&str],
    label: &'static str,
    allowed: &[&str],
) -> Result<String, Invalid> {
    let v = field(obj, names)
        .and_then(Value::as_str)
        .ok_or_else(|| Invalid {
            field: label,
            problem: "is required".into(),
        })?;
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(v.trim()))
        .map(|a| a.to_string())
        .ok_or_else(|| Invalid {
            field: label,
            problem: format!("must be one of {}", allowed.join(", ")),
        })
}

impl Listing {
    /// Parses and checks a submitted form, reporting every bad field at once. `this_year`
    /// bounds the year; `known_models` (the model's categories, as the data writes them) gives a
    /// typed model its canonical spelling, ignoring case and surrounding spaces.
    pub fn parse(
        obj: &Map<String, Value>,
        this_year: i32,
        known_models: &[String],
    ) -> Result<Listing, Vec<Invalid>> {
        let mut errors = Vec::new();
        let mut take = |r: Result<f64, Invalid>| r.map_err(|e| errors.push(e)).ok();
        let year = take(number(
            obj,
            &["year"],
            "year",
            1950.0,
            f64::from(this_year + 1),
            true,
        ));
        let mileage = take(number(obj, &["mileage"], "mileage", 0.0, 1_000_000.0, true));
        let tax = take(number(obj, &["tax"], "tax", 0.0, 1000.0, true));
        let mpg = take(number(obj, &["mpg"], "mpg", 1.0, 500.0, false));
        let engine = take(number(
            obj,
            &["engineSize", "engine_size"],
            "engineSize",
            0.0,
            10.0,
            false,
        ));
        let price = field(obj, &["price"])
            .and_then(|_| take(number(obj, &["price"], "price", 0.0, 10_000_000.0, true)));
        let mut keep = |r: Result<String, Invalid>| r.map_err(|e| errors.push(e)).ok();
        let model = keep(model_name(obj, known_models));
        let transmission = keep(choice(
            obj,
            &["transmission"],
            "transmission",
            TRANSMISSIONS,
        ));
        let fuel_type = keep(choice(
            obj,
            &["fuelType", "fuel_type"],
            "fuelType",
            FUEL_TYPES,
        ));
        if engine == Some(0.0) && fuel_type.as_deref().is_some_and(|f| f != "Electric") {
            errors.push(Invalid {
                field: "engineSize",
                problem: "can only be 0 for an electric car".into(),
            });
        }
        errors.sort_by_key(|e| FORM_ORDER.iter().position(|f| *f == e.field));
        if !errors.is_empty() {
            return Err(errors);
        }
        // No error: every field is there.
        Ok(Listing {
            model: model.unwrap_or_default(),
            year: year.unwrap_or_default() as i32,
            transmission: transmission.unwrap_or_default(),
            mileage: mileage.unwrap_or_default() as i32,
            fuel_type: fuel_type.unwrap_or_default(),
            tax: tax.unwrap_or_default() as i32,
            mpg: mpg.unwrap_or_default(),
            engine_size: engine.unwrap_or_default(),
            price: price.map(|p| p as i32),
        })
    }
}

/// The model as stored (`" Focus"`): a known model's own spelling when it matches ignoring
/// case, else the typed name with the data set's leading space.
fn model_name(obj: &Map<String, Value>, known_models: &[String]) -> Result<String, Invalid> {
    let model = field(obj, &["model"])
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Invalid {
            field: "model",
            problem: "is required".into(),
        })?;
    if model.chars().count() > 50 {
        return Err(Invalid {
            field: "model",
            problem: "must be at most 50 characters".into(),
        });
    }
    Ok(known_models
        .iter()
        .find(|k| k.trim().eq_ignore_ascii_case(model))
        .map(|k| format!(" {}", k.trim()))
        .unwrap_or_else(|| format!(" {model}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Map<String, Value> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn good_and_bad_submissions() {
        let known = vec![" Fiesta".to_string(), " Grand C-MAX".to_string()];
        let l = Listing::parse(&obj(r#"{"model":"fiesta","year":"2017","transmission":"automatic","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1}"#), 2026, &known).unwrap();
        assert_eq!(l.model, " Fiesta");
        assert_eq!(l.transmission, "Automatic");
        let l = Listing::parse(&obj(r#"{"model":" GRAND c-max ","year":2017,"transmission":"Manual","mileage":5,"fuelType":"Diesel","tax":0,"mpg":50,"engineSize":1.6,"price":9000}"#), 2026, &known).unwrap();
        assert_eq!((l.model.as_str(), l.price), (" Grand C-MAX", Some(9000)));
        let bad = |s: &str| Listing::parse(&obj(s), 2026, &known).unwrap_err();
        let fields = |e: &[Invalid]| e.iter().map(|i| i.field).collect::<Vec<_>>();
        // Every problem at once.
        let e = bad(r#"{"model":"","year":2060,"mileage":-5,"mpg":"x","price":"cheap"}"#);
        assert_eq!(
            fields(&e),
            [
                "model",
                "year",
                "mileage",
                "transmission",
                "fuelType",
                "tax",
                "mpg",
                "engineSize",
                "price"
            ]
        );
        assert_eq!(e[2].problem, "must be between 0 and 1000000");
        assert_eq!(e[6].problem, "must be a number");
        let e = bad(
            r#"{"model":"Focus","year":2017,"transmission":"Manual","mileage":5,"fuelType":"Petrol","tax":150,"mpg":50,"engineSize":0}"#,
        );
        assert_eq!(fields(&e), ["engineSize"]);
        // An unknown model is still allowed (it is priced as "Other").
        let l = Listing::parse(&obj(r#"{"model":"Model T","year":2017,"transmission":"Manual","mileage":5,"fuelType":"Petrol","tax":150,"mpg":50,"engineSize":1}"#), 2026, &known).unwrap();
        assert_eq!(l.model, " Model T");
    }
}
