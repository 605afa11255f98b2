//! Connect values → PostgreSQL text input, for binding as `text[]` and casting to the target
//! column's type in SQL. Logical types render as the column wants them: a
//! `io.debezium.time.Date` is a date for a `date` column and a number for an `integer` one.

use augur_core::connect::{Schema, SchemaType, Value};

/// Renders `value` (under `schema`) as PostgreSQL input text for a column of type `target`
/// (as `format_type` prints it). `None` is SQL NULL.
pub fn render(schema: &Schema, value: &Value, target: &str) -> Result<Option<String>, String> {
    let name = schema.name.as_deref().unwrap_or("");
    let target = target.to_ascii_lowercase();
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Boolean(b) => (if *b { "t" } else { "f" }).to_string(),
        Value::Int8(v) => v.to_string(),
        Value::Int16(v) => v.to_string(),
        Value::Int32(v) => int32_text(*v, name, &target),
        Value::Int64(v) => int64_text(*v, name, &target),
        Value::Float32(v) => float_text(f64::from(*v)),
        Value::Float64(v) => float_text(*v),
        Value::String(s) => {
            if s.contains('\0') {
                return Err(
                    "text contains a NUL character, which PostgreSQL text cannot hold".into(),
                );
            }
            s.clone()
        }
        Value::Bytes(b) => bytes_text(schema, b),
        Value::Struct(members) if name == "io.debezium.data.VariableScaleDecimal" => {
            match members.as_slice() {
                [Value::Int32(scale), Value::Bytes(b)] => decimal_text(b, *scale),
                _ => return Err("malformed VariableScaleDecimal".into()),
            }
        }
        Value::Array(items) => array_text(schema, items, &target)?,
        Value::Struct(_) | Value::Map(_) => {
            let mut out = Vec::new();
            compact_json(schema, value, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
    }))
}

/// An `int32` under logical type `name`: a date or time for such a (lowercase) `target`.
fn int32_text(v: i32, name: &str, target: &str) -> String {
    let is = |p: &str| target.starts_with(p);
    match name {
        "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date"
            if is("date") || is("timestamp") =>
        {
            date_text(i64::from(v))
        }
        "io.debezium.time.Time" | "org.apache.kafka.connect.data.Time" if is("time") => {
            time_text(i64::from(v) * 1000)
        }
        _ => v.to_string(),
    }
}

/// An `int64` under logical type `name`: a timestamp, time or interval for such a (lowercase)
/// `target`.
fn int64_text(v: i64, name: &str, target: &str) -> String {
    let is = |p: &str| target.starts_with(p);
    match name {
        "io.debezium.time.MicroTimestamp" if is("timestamp") || is("date") => timestamp_text(v),
        "io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp"
            if is("timestamp") || is("date") =>
        {
            timestamp_text(v * 1000)
        }
        "io.debezium.time.NanoTimestamp" if is("timestamp") => timestamp_text(v / 1000),
        "io.debezium.time.MicroTime" if is("time") => time_text(v),
        "io.debezium.time.NanoTime" if is("time") => time_text(v / 1000),
        "io.debezium.time.MicroDuration" if is("interval") => format!("{v} microseconds"),
        _ => v.to_string(),
    }
}

/// Bytes as a Connect `Decimal`'s digits, or otherwise as `bytea` hex input (`\x…`).
fn bytes_text(schema: &Schema, b: &[u8]) -> String {
    if schema.name.as_deref() == Some("org.apache.kafka.connect.data.Decimal") {
        let scale: i32 = schema
            .parameter("scale")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        decimal_text(b, scale)
    } else {
        let mut s = String::with_capacity(2 + b.len() * 2);
        s.push_str("\\x");
        for byte in b {
            s.push_str(&format!("{byte:02x}"));
        }
        s
    }
}

/// An array literal (`{"a",NULL,…}`), each element rendered for the (lowercase) `target`'s
/// element type.
fn array_text(schema: &Schema, items: &[Value], target: &str) -> Result<String, String> {
    let item_schema = schema
        .items
        .as_deref()
        .cloned()
        .unwrap_or_else(|| Schema::new(SchemaType::String));
    let elem_target = target.trim_end_matches("[]").to_string();
    let mut out = String::from("{");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match render(&item_schema, it, &elem_target)? {
            None => out.push_str("NULL"),
            Some(t) => {
                out.push('"');
                for c in t.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    Ok(out)
}

/// Structs and maps go into text/json columns as compact JSON.
fn compact_json(schema: &Schema, value: &Value, out: &mut Vec<u8>) {
    fn write_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(serde_json::to_string(s).unwrap_or_default().as_bytes());
    }
    match value {
        Value::Struct(members) => {
            out.push(b'{');
            for (i, (f, v)) in schema.fields.iter().zip(members).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, &f.name);
                out.push(b':');
                compact_json(&f.schema, v, out);
            }
            out.push(b'}');
        }
        Value::Map(entries) => {
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, &format!("{k:?}"));
                out.push(b':');
                let vs = schema
                    .values
                    .as_deref()
                    .cloned()
                    .unwrap_or_else(|| Schema::new(SchemaType::String));
                compact_json(&vs, v, out);
            }
            out.push(b'}');
        }
        Value::Null => out.extend_from_slice(b"null"),
        Value::String(s) => write_str(out, s),
        other => {
            let t = render(schema, other, "text")
                .ok()
                .flatten()
                .unwrap_or_default();
            out.extend_from_slice(t.as_bytes());
        }
    }
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        // Shortest round-trip digits; float8in reads them back exactly.
        format!("{v:?}")
    }
}

/// The decimal text of an unscaled big-endian two's-complement integer with `scale`.
pub fn decimal_text(bytes: &[u8], scale: i32) -> String {
    let neg = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut mag: Vec<u8> = if neg {
        // Two's complement negate: invert and add one.
        let mut v: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for byte in v.iter_mut().rev() {
            let (n, overflow) = byte.overflowing_add(1);
            *byte = n;
            if !overflow {
                break;
            }
        }
        v
    } else {
        bytes.to_vec()
    };
    // Repeated division by 10 of the big-endian magnitude.
    let mut digits = Vec::new();
    while mag.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for byte in mag.iter_mut() {
            let cur = (rem << 8) | u32::from(*byte);
            *byte = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    let mut s = String::from_utf8(digits).unwrap_or_default();
    if scale > 0 {
        let scale = scale as usize;
        if s.len() <= scale {
            s = format!("{}{s}", "0".repeat(scale - s.len() + 1));
        }
        s.insert(s.len() - scale, '.');
    } else if scale < 0 {
        s.push_str(&"0".repeat((-scale) as usize));
    }
    if neg { format!("-{s}") } else { s }
}

fn date_text(days: i64) -> String {
    let (y, m, d) = crate::source::text::civil_from_days(days);
    if y <= 0 {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

fn time_text(micros: i64) -> String {
    let s = micros.div_euclid(1_000_000);
    let f = micros.rem_euclid(1_000_000);
    format!("{:02}:{:02}:{:02}.{f:06}", s / 3600, (s / 60) % 60, s % 60)
}

fn timestamp_text(micros: i64) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let rem = micros.rem_euclid(86_400_000_000);
    format!("{} {}", date_text(days), time_text(rem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_dates_render_as_postgres_input() {
        assert_eq!(decimal_text(&[0x12, 0xd6, 0x87], 2), "12345.67");
        assert_eq!(decimal_text(&[0xff, 0x6a], 2), "-1.50");
        assert_eq!(decimal_text(&[0x00], 2), "0.00");
        assert_eq!(decimal_text(&[0x05], 3), "0.005");
        assert_eq!(decimal_text(&[0x80], 0), "-128");
        let date = Schema::new(SchemaType::Int32).named("io.debezium.time.Date", Some(1));
        assert_eq!(
            render(&date, &Value::Int32(19783), "date")
                .unwrap()
                .unwrap(),
            "2024-03-01"
        );
        assert_eq!(
            render(&date, &Value::Int32(19783), "integer")
                .unwrap()
                .unwrap(),
            "19783"
        );
        let ts = Schema::new(SchemaType::Int64).named("io.debezium.time.MicroTimestamp", Some(1));
        assert_eq!(
            render(
                &ts,
                &Value::Int64(1_529_507_596_945_104),
                "timestamp without time zone"
            )
            .unwrap()
            .unwrap(),
            "2018-06-20 15:13:16.945104"
        );
        assert_eq!(
            render(
                &Schema::new(SchemaType::Float64),
                &Value::Float64(57.7),
                "double precision"
            )
            .unwrap()
            .unwrap(),
            "57.7"
        );
        let arr = Schema::array(Schema::new(SchemaType::String).optional(true));
        assert_eq!(
            render(
                &arr,
                &Value::Array(vec![Value::String("a\"b".into()), Value::Null]),
                "text[]"
            )
            .unwrap()
            .unwrap(),
            r#"{"a\"b",NULL}"#
        );
        assert!(
            render(
                &Schema::new(SchemaType::String),
                &Value::String("a\0b".into()),
                "text"
            )
            .is_err()
        );
    }
}
