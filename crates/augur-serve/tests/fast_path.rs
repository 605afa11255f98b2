//! `POST /predict` answers a body the same whether it takes the fast path (flat objects read
//! without `serde_json::Value`) or the general one: random hostile rows — fields missing, null,
//! of the wrong type, numbers as strings, keys in other cases, escaped strings, repeated keys,
//! nested extras, out-of-range years — each sent bare (fast path when flat), wrapped as a
//! BentoML parameter `{"input_data": …}` (always the general path) and in an array, must get
//! the same status and the same price or error, and the price the model gives directly.

use augur_serve::ModelSource;
use serde_json::Value;

use crate::support::*;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One field's JSON text: usually right, sometimes hostile.
fn value(rng: &mut Rng, field: &str) -> Option<String> {
    let numeric = !matches!(field, "model" | "transmission" | "fuelType");
    let good = match field {
        "model" => format!(
            "\"{}\"",
            rng.pick(&[" Fiesta", " Focus", " Kuga", "fiesta", " Mustang", "Tesla"])
        ),
        "transmission" => format!("\"{}\"", rng.pick(&["Manual", "Automatic", "Semi-Auto"])),
        "fuelType" => format!("\"{}\"", rng.pick(&["Petrol", "Diesel", "Hybrid"])),
        "year" => (1995 + rng.below(40)).to_string(),
        "mileage" => rng.below(200_000).to_string(),
        "tax" => rng.below(600).to_string(),
        "mpg" => format!("{}.{}", 20 + rng.below(60), rng.below(10)),
        _ => format!("{}.{}", rng.below(5), rng.below(10)),
    };
    Some(match rng.below(100) {
        0..=7 => return None,
        8..=11 => "null".into(),
        12..=19 if numeric => format!("\"{}\"", good),
        20..=22 => "true".into(),
        23..=25 if numeric => "\"lots\"".into(),
        23..=25 => "42".into(),
        26..=27 => "[1]".into(),
        28..=29 if !numeric => good.replacen('e', "\\u0065", 1),
        30 if numeric => "1e400".into(),
        _ => good,
    })
}

/// One random row as JSON text.
fn row(rng: &mut Rng) -> String {
    let fields = [
        "model",
        "year",
        "transmission",
        "mileage",
        "fuelType",
        "tax",
        "mpg",
        "engineSize",
    ];
    let mut parts = Vec::new();
    for f in fields {
        let Some(v) = value(rng, f) else { continue };
        let key = match rng.below(10) {
            0 => f.to_ascii_uppercase(),
            1 => f.to_ascii_lowercase(),
            _ => f.to_string(),
        };
        parts.push(format!("\"{key}\":{v}"));
        if rng.below(25) == 0 {
            parts.push(format!("\"{key}\":{v}"));
        }
    }
    match rng.below(10) {
        0 => parts.push("\"seller\":{\"id\":7}".into()),
        1 => parts.push("\"note\":\"first \\\"owner\\\"\"".into()),
        _ => {}
    }
    let n = parts.len() as u64;
    for i in 0..parts.len() {
        let j = i + rng.below(n - i as u64) as usize;
        parts.swap(i, j);
    }
    format!("{{{}}}", parts.join(","))
}

#[test]
fn both_paths_answer_every_body_alike() {
    let model = shipped();
    let s = TestServer::start(config(), ModelSource::Loaded(model.clone()));
    let mut conn = Conn::open(s.addr);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut bad) = (0, 0);
    for _ in 0..400 {
        let r = row(&mut rng);
        let bare = conn.request("POST", "/predict", &[], r.as_bytes());
        let wrapped = conn.request(
            "POST",
            "/predict",
            &[],
            format!("{{\"input_data\":{r}}}").as_bytes(),
        );
        let listed = conn.request("POST", "/predict", &[], format!("[{r},{r}]").as_bytes());
        assert_eq!(bare.status, wrapped.status, "{r}: {}", bare.text());
        assert_eq!(bare.status, listed.status, "{r}: {}", listed.text());
        let Ok(direct) = serde_json::from_str::<Value>(&r) else {
            // Not JSON (a number out of range): refused alike, at different columns.
            assert_eq!(bare.status, 400, "{r}: {}", bare.text());
            assert!(bare.text().contains("invalid JSON"), "{}", bare.text());
            bad += 1;
            continue;
        };
        assert_eq!(bare.text(), wrapped.text(), "{r}");
        match model.predict_json(direct.as_object().unwrap()) {
            Ok(p) => {
                ok += 1;
                assert_eq!(bare.status, 200, "{r}: {}", bare.text());
                let cents = (p * 100.0).round() / 100.0;
                assert_eq!(bare.text().parse::<f64>().unwrap(), cents, "{r}");
                let both: Vec<f64> = serde_json::from_str(&listed.text()).unwrap();
                assert_eq!(both, [cents, cents], "{r}");
            }
            Err(e) => {
                bad += 1;
                assert_eq!(bare.status, 400, "{r}: {}", bare.text());
                assert!(bare.text().contains(&e.field), "{r}: {}", bare.text());
                assert!(listed.text().contains("row 0"), "{r}: {}", listed.text());
            }
        }
    }
    assert!(ok > 40 && bad > 40, "{ok} answered, {bad} refused");
}

#[test]
fn an_empty_array_makes_no_model_call() {
    let s = TestServer::start(config(), ModelSource::Loaded(shipped()));
    let r = post(s.addr, "/predict", "[]");
    assert_eq!((r.status, r.text().as_str()), (200, "[]"));
    let calls = s.metric("augur_service_adaptive_batch_size_count{model=\"ford-price:1\"}");
    assert_eq!(calls, 0.0);
}
