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
    /// Parses and checks a submitted form. `this_year` bounds the year.
    pub fn parse(obj: &Map<String, Value>, this_year: i32) -> Result<Listing, Invalid> {
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
        let year = number(
            obj,
            &["year"],
            "year",
            1950.0,
            f64::from(this_year + 1),
            true,
        )? as i32;
        let transmission = choice(obj, &["transmission"], "transmission", TRANSMISSIONS)?;
        let mileage = number(obj, &["mileage"], "mileage", 0.0, 1_000_000.0, true)? as i32;
        let fuel_type = choice(obj, &["fuelType", "fuel_type"], "fuelType", FUEL_TYPES)?;
        let tax = number(obj, &["tax"], "tax", 0.0, 1000.0, true)? as i32;
        let mpg = number(obj, &["mpg"], "mpg", 1.0, 500.0, false)?;
        let engine_size = number(
            obj,
            &["engineSize", "engine_size"],
            "engineSize",
            0.0,
            10.0,
            false,
        )?;
        if engine_size == 0.0 && fuel_type != "Electric" {
            return Err(Invalid {
                field: "engineSize",
                problem: "can only be 0 for an electric car".into(),
            });
        }
        let price = match field(obj, &["price"]) {
            None => None,
            Some(_) => Some(number(obj, &["price"], "price", 0.0, 10_000_000.0, true)? as i32),
        };
        Ok(Listing {
            model: format!(" {model}"),
            year,
            transmission,
            mileage,
            fuel_type,
            tax,
            mpg,
            engine_size,
            price,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> Map<String, Value> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn good_and_bad_submissions() {
        let l = Listing::parse(&obj(r#"{"model":"Fiesta","year":"2017","transmission":"automatic","mileage":15944,"fuelType":"Petrol","tax":150,"mpg":57.7,"engineSize":1}"#), 2026).unwrap();
        assert_eq!(l.model, " Fiesta");
        assert_eq!(l.transmission, "Automatic");
        let bad = |s: &str| Listing::parse(&obj(s), 2026).unwrap_err();
        assert_eq!(bad(r#"{"model":"Fiesta","year":2060}"#).field, "year");
        assert_eq!(bad(r#"{"model":"","year":2017}"#).field, "model");
        let e = bad(
            r#"{"model":"Focus","year":2017,"transmission":"Manual","mileage":-5,"fuelType":"Petrol","tax":150,"mpg":50,"engineSize":1}"#,
        );
        assert_eq!(
            (e.field, e.problem.as_str()),
            ("mileage", "must be between 0 and 1000000")
        );
        let e = bad(
            r#"{"model":"Focus","year":2017,"transmission":"Manual","mileage":5,"fuelType":"Petrol","tax":150,"mpg":50,"engineSize":0}"#,
        );
        assert_eq!(e.field, "engineSize");
        assert_eq!(
            bad(r#"{"model":"Focus","year":"abc"}"#).problem,
            "must be a number"
        );
    }
}
