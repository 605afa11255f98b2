//! The prediction body read without `serde_json::Value`: an object, or an array of objects, of
//! scalar fields borrowed straight from the request bytes. Anything else — a nested value, an
//! escaped string, a repeated key, invalid JSON — gives `None`, and the caller takes the
//! general path, which also words every error; so both paths answer every body alike.

use std::fmt;

use augur_model::JsonScalar;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One object's keys and scalar values, in the order they came.
pub(crate) type Pairs<'a> = Vec<(&'a str, JsonScalar<'a>)>;

/// A body of flat objects.
#[derive(Debug, PartialEq)]
pub(crate) enum Flat<'a> {
    /// One object.
    One(Pairs<'a>),
    /// An array of objects.
    Many(Vec<Pairs<'a>>),
}

impl<'a> Flat<'a> {
    /// The rows, and whether the body was an array.
    pub(crate) fn rows(&self) -> (&[Pairs<'a>], bool) {
        match self {
            Flat::One(p) => (std::slice::from_ref(p), false),
            Flat::Many(rows) => (rows, true),
        }
    }
}

/// The body as flat objects, or `None` when it is anything else (see the module docs).
pub(crate) fn parse(bytes: &[u8]) -> Option<Flat<'_>> {
    let flat: Flat<'_> = serde_json::from_slice(bytes).ok()?;
    let (rows, _) = flat.rows();
    rows.iter().all(|p| distinct(p)).then_some(flat)
}

/// Whether no key repeats (a map keeps only the last of equal keys).
fn distinct(pairs: &Pairs<'_>) -> bool {
    pairs
        .iter()
        .enumerate()
        .all(|(i, (k, _))| pairs[..i].iter().all(|(other, _)| other != k))
}

impl<'de> Deserialize<'de> for Flat<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Flat<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object or an array of objects")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                pairs(map).map(Flat::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(Row(p)) = seq.next_element()? {
                    rows.push(p);
                }
                Ok(Flat::Many(rows))
            }
        }
        d.deserialize_any(Top)
    }
}

/// One object of an array.
struct Row<'a>(Pairs<'a>);

impl<'de> Deserialize<'de> for Row<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Obj;
        impl<'de> Visitor<'de> for Obj {
            type Value = Row<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                pairs(map).map(Row)
            }
        }
        d.deserialize_map(Obj)
    }
}

/// An object's entries; a key with escapes fails (it cannot be borrowed).
fn pairs<'de, A: MapAccess<'de>>(mut map: A) -> Result<Pairs<'de>, A::Error> {
    let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).clamp(8, 64));
    while let Some(key) = map.next_key::<&'de str>()? {
        let Scalar(value) = map.next_value()?;
        out.push((key, value));
    }
    Ok(out)
}

/// A scalar value; containers and escaped strings fail.
struct Scalar<'a>(JsonScalar<'a>);

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar(JsonScalar::Null))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Scalar(JsonScalar::Bool))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar(JsonScalar::Number(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar(JsonScalar::Number(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar(JsonScalar::Number(v)))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar(JsonScalar::Text(v)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the general path reads from the same body, as pairs.
    fn general(bytes: &[u8]) -> Vec<Vec<(String, String)>> {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        let objects = match v {
            serde_json::Value::Array(items) => items,
            one => vec![one],
        };
        objects
            .iter()
            .map(|o| {
                o.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), format!("{:?}", JsonScalar::of(v))))
                    .collect()
            })
            .collect()
    }

    fn flat(bytes: &[u8]) -> Option<Vec<Vec<(String, String)>>> {
        let f = parse(bytes)?;
        let (rows, _) = f.rows();
        Some(
            rows.iter()
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| (k.to_string(), format!("{v:?}")))
                        .collect()
                })
                .collect(),
        )
    }

    #[test]
    fn flat_bodies_read_as_the_general_path_reads_them() {
        for body in [
            r#"{"model":" Fiesta","year":2017,"mpg":57.7,"engineSize":1.0,"tax":-3,"x":null,"b":true}"#,
            r#"  [ {"model":"Focus","year":"2019"}, {}, {"YEAR": 1e3, "mileage": 18446744073709551615} ] "#,
            r#"[]"#,
            r#"{"price": 0.1000000000000000055511151231257827}"#,
        ] {
            assert_eq!(
                flat(body.as_bytes()).unwrap(),
                general(body.as_bytes()),
                "{body}"
            );
        }
    }

    #[test]
    fn anything_else_takes_the_general_path() {
        for body in [
            r#"{"input_data": {"model": "Focus"}}"#,
            r#"{"model": ["Focus"]}"#,
            r#"{"model": "Fo\"cus"}"#,
            r#"{"mo\u0064el": "Focus"}"#,
            r#"{"year": 2017, "year": 2018}"#,
            r#"{"year": 2017"#,
            r#"{"year": 2017} x"#,
            r#"[{"year": 2017}, 5]"#,
            r#"5"#,
            r#""text""#,
            r#"null"#,
            "",
        ] {
            assert_eq!(flat(body.as_bytes()), None, "{body}");
        }
    }
}
