//! Kafka Connect's `JsonConverter`, reproduced byte for byte: schemas print their keys in the
//! converter's order (`type`, `items`/`keys`/`values`/`fields`, `optional`, `name`, `version`,
//! `doc`, `parameters`, `default`, then the member's `field`), numbers print as Java prints them
//! (`1.0`, `1.0E7`, `"NaN"`), strings escape as Jackson escapes them, and bytes are base64.
//!
//! The reverse direction ([`parse_schema`], [`parse_value`]) turns `{"schema","payload"}` JSON
//! back into Connect data for the enrichment stage and the sink.

use augur_core::connect::{Field, Schema, SchemaType, Value};
use base64::Engine as _;

/// Converter settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConverterConfig {
    /// `schemas.enable`: wrap as `{"schema":…,"payload":…}`.
    pub schemas_enable: bool,
    /// `replace.null.with.default`: print a null field that has a default as the default.
    pub replace_null_with_default: bool,
}

impl Default for ConverterConfig {
    fn default() -> Self {
        ConverterConfig {
            schemas_enable: true,
            replace_null_with_default: true,
        }
    }
}

/// Appends `s` as a JSON string literal, escaped as Jackson escapes it: `"`, `\\` and control
/// characters escaped, other characters of the Basic Multilingual Plane as UTF-8, and a
/// character beyond it (an emoji) as its two UTF-16 surrogates, `\uD83D\uDE00`, as Jackson's
/// UTF-8 generator writes them.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !NEEDS_ESCAPE[usize::from(b)] {
            i += 1;
            continue;
        }
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f | 0xf0..=0xf4 => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if !esc.is_empty() {
            out.extend_from_slice(esc);
            i += 1;
        } else if b < 0x20 {
            write_u_escape(out, u16::from(b));
            i += 1;
        } else {
            // A four-byte UTF-8 sequence: a character beyond the BMP.
            let c = s[i..].chars().next().map_or(0, u32::from) - 0x1_0000;
            write_u_escape(out, 0xd800 | (c >> 10) as u16);
            write_u_escape(out, 0xdc00 | (c & 0x3ff) as u16);
            i += 4;
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The bytes [`write_str`] cannot copy as they are: `"`, `\\`, control characters and the
/// lead bytes of four-byte UTF-8 sequences.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize || (b >= 0xf0 && b <= 0xf4);
        b += 1;
    }
    t
};

/// `\uXXXX` with upper-case hex digits, as Jackson writes it.
fn write_u_escape(out: &mut Vec<u8>, unit: u16) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((unit >> shift) & 0xf)]);
    }
}

pub use augur_core::java::{java_double, java_float};

/// Appends the JSON form of `schema` (without a `field` key).
pub fn write_schema(out: &mut Vec<u8>, schema: &Schema) {
    write_schema_inner(out, schema, None);
}

fn write_schema_inner(out: &mut Vec<u8>, schema: &Schema, field: Option<&str>) {
    out.extend_from_slice(b"{\"type\":");
    write_str(out, schema.ty.json_name());
    match schema.ty {
        SchemaType::Array => {
            out.extend_from_slice(b",\"items\":");
            match &schema.items {
                Some(items) => write_schema_inner(out, items, None),
                None => out.extend_from_slice(b"null"),
            }
        }
        SchemaType::Map => {
            out.extend_from_slice(b",\"keys\":");
            match &schema.keys {
                Some(k) => write_schema_inner(out, k, None),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b",\"values\":");
            match &schema.values {
                Some(v) => write_schema_inner(out, v, None),
                None => out.extend_from_slice(b"null"),
            }
        }
        SchemaType::Struct => {
            out.extend_from_slice(b",\"fields\":[");
            for (i, f) in schema.fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_schema_inner(out, &f.schema, Some(&f.name));
            }
            out.push(b']');
        }
        _ => {}
    }
    out.extend_from_slice(if schema.optional {
        b",\"optional\":true"
    } else {
        b",\"optional\":false"
    });
    if let Some(name) = &schema.name {
        out.extend_from_slice(b",\"name\":");
        write_str(out, name);
    }
    if let Some(v) = schema.version {
        out.extend_from_slice(format!(",\"version\":{v}").as_bytes());
    }
    if let Some(doc) = &schema.doc {
        out.extend_from_slice(b",\"doc\":");
        write_str(out, doc);
    }
    if !schema.parameters.is_empty() {
        out.extend_from_slice(b",\"parameters\":{");
        for (i, (k, v)) in schema.parameters.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k);
            out.push(b':');
            write_str(out, v);
        }
        out.push(b'}');
    }
    if let Some(d) = &schema.default {
        out.extend_from_slice(b",\"default\":");
        write_value(out, schema, d, false);
    }
    if let Some(name) = field {
        out.extend_from_slice(b",\"field\":");
        write_str(out, name);
    }
    out.push(b'}');
}

/// Appends the JSON form of `value` under `schema`. With `replace_null_with_default`, a null
/// whose schema has a default prints the default, as the converter does.
pub fn write_value(
    out: &mut Vec<u8>,
    schema: &Schema,
    value: &Value,
    replace_null_with_default: bool,
) {
    match value {
        Value::Null => match (&schema.default, replace_null_with_default) {
            (Some(d), true) => write_value(out, schema, d, false),
            _ => out.extend_from_slice(b"null"),
        },
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int8(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Value::Int16(v) => out.extend_from_slice(v.to_string().as_bytes()),
        Value::Int32(v) => out.extend_from_slice(itoa(i64::from(*v)).as_bytes()),
        Value::Int64(v) => out.extend_from_slice(itoa(*v).as_bytes()),
        Value::Float32(v) => {
            if v.is_finite() {
                out.extend_from_slice(java_float(*v).as_bytes());
            } else {
                write_str(out, non_finite(f64::from(*v)));
            }
        }
        Value::Float64(v) => {
            if v.is_finite() {
                out.extend_from_slice(java_double(*v).as_bytes());
            } else {
                write_str(out, non_finite(*v));
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Bytes(b) => write_base64(out, b),
        Value::Array(items) => write_array(out, schema, items, replace_null_with_default),
        Value::Map(entries) => {
            // String-keyed maps print as objects, others as [[k,v],…] pairs.
            let string_keys = schema
                .keys
                .as_deref()
                .is_some_and(|k| k.ty == SchemaType::String);
            if string_keys {
                write_map_object(out, schema, entries, replace_null_with_default);
            } else {
                write_map_pairs(out, schema, entries, replace_null_with_default);
            }
        }
        Value::Struct(members) => write_struct(out, schema, members, replace_null_with_default),
    }
}

/// Appends `bytes` as a base64 JSON string, encoded in place in `out`.
#[inline]
fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .expect("sized for base64");
    out.truncate(start + n);
    out.push(b'"');
}

/// Appends `value` under `schema` if there is one, schemaless otherwise.
#[inline]
fn write_member(
    out: &mut Vec<u8>,
    schema: Option<&Schema>,
    value: &Value,
    replace_null_with_default: bool,
) {
    match schema {
        Some(s) => write_value(out, s, value, replace_null_with_default),
        None => write_schemaless(out, value),
    }
}

/// Appends an array under its schema's item schema.
#[inline]
fn write_array(
    out: &mut Vec<u8>,
    schema: &Schema,
    items: &[Value],
    replace_null_with_default: bool,
) {
    out.push(b'[');
    let item_schema = schema.items.as_deref();
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_member(out, item_schema, v, replace_null_with_default);
    }
    out.push(b']');
}

/// Appends a string-keyed map as a JSON object.
#[inline]
fn write_map_object(
    out: &mut Vec<u8>,
    schema: &Schema,
    entries: &[(Value, Value)],
    replace_null_with_default: bool,
) {
    let vs = schema.values.as_deref();
    out.push(b'{');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k.as_str().unwrap_or_default());
        out.push(b':');
        write_member(out, vs, v, replace_null_with_default);
    }
    out.push(b'}');
}

/// Appends a map whose keys are not strings as `[[k,v],…]` pairs.
#[inline]
fn write_map_pairs(
    out: &mut Vec<u8>,
    schema: &Schema,
    entries: &[(Value, Value)],
    replace_null_with_default: bool,
) {
    let (ks, vs) = (schema.keys.as_deref(), schema.values.as_deref());
    out.push(b'[');
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        write_member(out, ks, k, replace_null_with_default);
        out.push(b',');
        write_member(out, vs, v, replace_null_with_default);
        out.push(b']');
    }
    out.push(b']');
}

/// Appends a struct as a JSON object, its members in schema order.
#[inline]
fn write_struct(
    out: &mut Vec<u8>,
    schema: &Schema,
    members: &[Value],
    replace_null_with_default: bool,
) {
    out.push(b'{');
    for (i, (f, v)) in schema.fields.iter().zip(members).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, &f.name);
        out.push(b':');
        write_value(out, &f.schema, v, replace_null_with_default);
    }
    out.push(b'}');
}

fn write_schemaless(out: &mut Vec<u8>, v: &Value) {
    let s = Schema::new(match v {
        Value::Struct(_) => SchemaType::Struct,
        _ => SchemaType::String,
    });
    write_value(out, &s, v, false);
}

fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

fn itoa(v: i64) -> String {
    v.to_string()
}

/// Why JSON could not be read as Connect data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// A schema is not a JSON object.
    #[error("schema is not a JSON object")]
    SchemaNotObject,
    /// A schema's `type` is missing or is not a Connect type name.
    #[error("schema has no valid \"type\"")]
    NoType,
    /// A struct schema has no `fields` array.
    #[error("struct schema has no \"fields\" array")]
    NoFields,
    /// A struct schema's member has no `field` name.
    #[error("struct member has no \"field\" name")]
    UnnamedMember,
    /// An array or map schema lacks the schema of its items, keys or values.
    #[error("{} schema has no \"{key}\"", .schema.json_name())]
    MissingSchema {
        /// The container type: [`SchemaType::Array`] or [`SchemaType::Map`].
        schema: SchemaType,
        /// The absent key: `items`, `keys` or `values`.
        key: &'static str,
    },
    /// The JSON is not what a value of the schema's type needs.
    #[error("expected {expected} for a {} value", .schema.json_name())]
    WrongType {
        /// What the value needed, e.g. `an integer`.
        expected: &'static str,
        /// The type of the schema the value was read under.
        schema: SchemaType,
    },
    /// A struct member's value could not be read.
    #[error("field \"{field}\": {error}")]
    InField {
        /// The member's name.
        field: String,
        /// What was wrong with its value (shown in this error's message, so not a source).
        error: Box<JsonError>,
    },
}

/// Reads a Connect schema from its JSON form.
pub fn parse_schema(json: &serde_json::Value) -> Result<Schema, JsonError> {
    let obj = json.as_object().ok_or(JsonError::SchemaNotObject)?;
    let ty = obj
        .get("type")
        .and_then(|t| t.as_str())
        .and_then(SchemaType::from_json_name)
        .ok_or(JsonError::NoType)?;
    let mut schema = Schema::new(ty);
    schema.optional = obj
        .get("optional")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    schema.name = obj.get("name").and_then(|v| v.as_str()).map(str::to_string);
    schema.version = obj
        .get("version")
        .and_then(|v| v.as_i64())
        .map(|v| v as i32);
    schema.doc = obj.get("doc").and_then(|v| v.as_str()).map(str::to_string);
    if let Some(params) = obj.get("parameters").and_then(|p| p.as_object()) {
        for (k, v) in params {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            schema.parameters.push((k.clone(), v));
        }
    }
    match ty {
        SchemaType::Struct => {
            let fields = obj
                .get("fields")
                .and_then(|f| f.as_array())
                .ok_or(JsonError::NoFields)?;
            for f in fields {
                let name = f
                    .get("field")
                    .and_then(|n| n.as_str())
                    .ok_or(JsonError::UnnamedMember)?;
                schema.fields.push(Field::new(name, parse_schema(f)?));
            }
        }
        SchemaType::Array => {
            let items = obj.get("items").ok_or(missing_schema(ty, "items"))?;
            schema.items = Some(Box::new(parse_schema(items)?));
        }
        SchemaType::Map => {
            let k = obj.get("keys").ok_or(missing_schema(ty, "keys"))?;
            let v = obj.get("values").ok_or(missing_schema(ty, "values"))?;
            schema.keys = Some(Box::new(parse_schema(k)?));
            schema.values = Some(Box::new(parse_schema(v)?));
        }
        _ => {}
    }
    if let Some(d) = obj.get("default")
        && !d.is_null()
    {
        schema.default = Some(parse_value(&schema, d)?);
    }
    Ok(schema)
}

/// Reads a Connect value under `schema` from its JSON form.
pub fn parse_value(schema: &Schema, json: &serde_json::Value) -> Result<Value, JsonError> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let wrong = |what: &'static str| wrong_json(schema, what);
    Ok(match schema.ty {
        SchemaType::Boolean => Value::Boolean(json.as_bool().ok_or_else(|| wrong("true/false"))?),
        SchemaType::Int8 => Value::Int8(int_in_range(json, &wrong)?),
        SchemaType::Int16 => Value::Int16(int_in_range(json, &wrong)?),
        SchemaType::Int32 => Value::Int32(int_in_range(json, &wrong)?),
        SchemaType::Int64 => Value::Int64(int_in_range(json, &wrong)?),
        SchemaType::Float32 => {
            Value::Float32(float_of(json).ok_or_else(|| wrong("a number"))? as f32)
        }
        SchemaType::Float64 => Value::Float64(float_of(json).ok_or_else(|| wrong("a number"))?),
        SchemaType::String => {
            Value::String(json.as_str().ok_or_else(|| wrong("a string"))?.to_string())
        }
        SchemaType::Bytes => {
            let s = json.as_str().ok_or_else(|| wrong("a base64 string"))?;
            Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| wrong("valid base64"))?,
            )
        }
        SchemaType::Array => parse_array(schema, json)?,
        SchemaType::Map => parse_map(schema, json)?,
        SchemaType::Struct => parse_struct(schema, json)?,
    })
}

/// The error for JSON that is not `what` a value of `schema` needs.
#[cold]
fn wrong_json(schema: &Schema, what: &'static str) -> JsonError {
    JsonError::WrongType {
        expected: what,
        schema: schema.ty,
    }
}

/// The error for a container schema of type `ty` without its `key` member schema.
fn missing_schema(ty: SchemaType, key: &'static str) -> JsonError {
    JsonError::MissingSchema { schema: ty, key }
}

/// Reads an array value under `schema`'s item schema.
#[inline]
fn parse_array(schema: &Schema, json: &serde_json::Value) -> Result<Value, JsonError> {
    let items = schema
        .items
        .as_deref()
        .ok_or_else(|| wrong_json(schema, "an item schema"))?;
    let arr = json
        .as_array()
        .ok_or_else(|| wrong_json(schema, "an array"))?;
    Ok(Value::Array(
        arr.iter()
            .map(|v| parse_value(items, v))
            .collect::<Result<_, _>>()?,
    ))
}

/// Reads a map value: an object (string keys) or `[[key, value], …]` pairs.
#[inline]
fn parse_map(schema: &Schema, json: &serde_json::Value) -> Result<Value, JsonError> {
    use serde_json::Value as J;
    let (ks, vs) = match (schema.keys.as_deref(), schema.values.as_deref()) {
        (Some(k), Some(v)) => (k, v),
        _ => return Err(wrong_json(schema, "key and value schemas")),
    };
    Ok(match json {
        J::Object(o) => Value::Map(
            o.iter()
                .map(|(k, v)| Ok((Value::String(k.clone()), parse_value(vs, v)?)))
                .collect::<Result<_, JsonError>>()?,
        ),
        J::Array(pairs) => Value::Map(
            pairs
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([k, v]) => Ok((parse_value(ks, k)?, parse_value(vs, v)?)),
                    _ => Err(wrong_json(schema, "[key, value] pairs")),
                })
                .collect::<Result<_, JsonError>>()?,
        ),
        _ => return Err(wrong_json(schema, "an object")),
    })
}

/// Reads a struct value; a missing member is null, a bad one is named in the error.
#[inline]
fn parse_struct(schema: &Schema, json: &serde_json::Value) -> Result<Value, JsonError> {
    let obj = json
        .as_object()
        .ok_or_else(|| wrong_json(schema, "an object"))?;
    let mut members = Vec::with_capacity(schema.fields.len());
    for f in &schema.fields {
        members.push(match obj.get(&f.name) {
            Some(v) => parse_value(&f.schema, v).map_err(|e| JsonError::InField {
                field: f.name.clone(),
                error: Box::new(e),
            })?,
            None => Value::Null,
        });
    }
    Ok(Value::Struct(members))
}

/// An integer field's value. A number with a fraction is truncated toward zero, as Kafka's
/// JsonConverter reads it (Jackson's `intValue()`/`longValue()`: a Python producer's `12345.0`
/// in an `int32` field is `12345`). Unlike Java's casts, a value that does not fit the type is
/// an error, not a wrapped or saturated number.
fn int_in_range<T: TryFrom<i64>>(
    json: &serde_json::Value,
    wrong: &dyn Fn(&'static str) -> JsonError,
) -> Result<T, JsonError> {
    let v = match json.as_i64() {
        Some(v) => v,
        None => {
            let t = json.as_f64().ok_or_else(|| wrong("an integer"))?.trunc();
            // i64::MIN is exact as a double; i64::MAX rounds up to 2^63, which does not fit.
            if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) {
                return Err(wrong("an integer in range"));
            }
            t as i64
        }
    };
    T::try_from(v).map_err(|_| wrong("an integer in range"))
}

fn float_of(json: &serde_json::Value) -> Option<f64> {
    match json {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_like_java() {
        let cases = [
            (1.0, "1.0"),
            (57.7, "57.7"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1234567.0, "1234567.0"),
            (1.0e7, "1.0E7"),
            (12345678.9, "1.23456789E7"),
            (-2.5, "-2.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (100.0, "100.0"),
            (f64::MAX, "1.7976931348623157E308"),
            (5e-324, "4.9E-324"),
        ];
        for (v, want) in cases {
            assert_eq!(java_double(v), want, "{v}");
        }
        // Subnormals whose shortest digits are one print the closest two (JDK 19+).
        assert_eq!(java_double(1e-323), "9.9E-324");
        assert_eq!(java_double(-5e-324), "-4.9E-324");
        assert_eq!(java_double(1.5e-323), "1.5E-323");
        assert_eq!(java_double(5.0e-310), "5.0E-310");
        assert_eq!(java_float(f32::from_bits(1)), "1.4E-45");
        assert_eq!(java_float(1.1f32), "1.1");
        assert_eq!(java_float(3.4028235e38f32), "3.4028235E38");
    }

    #[test]
    fn strings_escape_like_jackson() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}é/");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\nd\\u0001é/\""
        );
        let mut out = Vec::new();
        write_str(&mut out, "car 😀 ok 𝄞\u{10FFFF}é");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""car \uD83D\uDE00 ok \uD834\uDD1E\uDBFF\uDFFFé""#
        );
        // What Jackson writes reads back as the same text.
        let mut out = Vec::new();
        write_str(&mut out, "a😀\u{1}\"");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a😀\u{1}\"");
    }

    proptest::proptest! {
        #[test]
        fn any_text_reads_back_and_nothing_beyond_the_bmp_is_written_raw(text in "\\PC*|[\\u{0}-\\u{1f}😀𝄞é\"\\\\]*") {
            let mut out = Vec::new();
            write_str(&mut out, &text);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(&back, &text);
            let written = String::from_utf8(out).unwrap();
            proptest::prop_assert!(written.chars().all(|c| (c as u32) < 0x1_0000));
        }
    }

    #[test]
    fn numbers_coerce_into_integer_fields_as_kafkas_json_converter_reads_them() {
        let int32 = Schema::new(SchemaType::Int32);
        let int64 = Schema::new(SchemaType::Int64);
        let int8 = Schema::new(SchemaType::Int8);
        let f64s = Schema::new(SchemaType::Float64);
        let read = |s: &Schema, j: &str| parse_value(s, &serde_json::from_str(j).unwrap());
        assert_eq!(read(&int32, "12345.0").unwrap(), Value::Int32(12345));
        assert_eq!(read(&int32, "12345.9").unwrap(), Value::Int32(12345));
        assert_eq!(read(&int32, "-7.9").unwrap(), Value::Int32(-7));
        assert_eq!(read(&int64, "1.5e3").unwrap(), Value::Int64(1500));
        assert_eq!(read(&int8, "127.5").unwrap(), Value::Int8(127));
        assert_eq!(read(&f64s, "3").unwrap(), Value::Float64(3.0));
        for (s, j) in [
            (&int32, "3e9"),
            (&int8, "128.0"),
            (&int64, "1e19"),
            (&int64, "18446744073709551615"),
            (&int32, "\"12\""),
            (&int32, "true"),
        ] {
            assert!(read(s, j).is_err(), "{j} for {:?}", s.ty);
        }
    }

    #[test]
    fn schema_round_trips_through_json() {
        let s = Schema::structure(
            Some("x.Value".into()),
            vec![
                Field::new(
                    "id",
                    Schema::new(SchemaType::Int32).with_default(Value::Int32(0)),
                ),
                Field::new(
                    "d",
                    Schema::new(SchemaType::Bytes)
                        .optional(true)
                        .named("org.apache.kafka.connect.data.Decimal", Some(1))
                        .param("scale", "2"),
                ),
            ],
        )
        .optional(true);
        let mut out = Vec::new();
        write_schema(&mut out, &s);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            r#"{"type":"struct","fields":[{"type":"int32","optional":false,"default":0,"field":"id"},{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"},"field":"d"}],"optional":true,"name":"x.Value"}"#
        );
        let back = parse_schema(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, s);
        let v = Value::Struct(vec![Value::Null, Value::Bytes(vec![0x12, 0xd6, 0x87])]);
        let mut out = Vec::new();
        write_value(&mut out, &s, &v, true);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"id":0,"d":"EtaH"}"#
        );
        let parsed = parse_value(&s, &serde_json::from_slice(&out).unwrap()).unwrap();
        assert_eq!(
            parsed,
            Value::Struct(vec![Value::Int32(0), Value::Bytes(vec![0x12, 0xd6, 0x87])])
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let schema_err =
            |json: &str| parse_schema(&serde_json::from_str(json).unwrap()).unwrap_err();
        let e = schema_err("[]");
        assert_eq!(e, JsonError::SchemaNotObject);
        assert_eq!(e.to_string(), "schema is not a JSON object");
        assert_eq!(
            schema_err(r#"{"type":"nope"}"#).to_string(),
            r#"schema has no valid "type""#
        );
        assert_eq!(
            schema_err(r#"{"type":"struct"}"#).to_string(),
            r#"struct schema has no "fields" array"#
        );
        assert_eq!(
            schema_err(r#"{"type":"struct","fields":[{"type":"int32"}]}"#).to_string(),
            r#"struct member has no "field" name"#
        );
        let e = schema_err(r#"{"type":"array"}"#);
        assert_eq!(
            e,
            JsonError::MissingSchema {
                schema: SchemaType::Array,
                key: "items"
            }
        );
        assert_eq!(e.to_string(), r#"array schema has no "items""#);
        assert_eq!(
            schema_err(r#"{"type":"map","keys":{"type":"string"}}"#).to_string(),
            r#"map schema has no "values""#
        );

        let s = Schema::structure(None, vec![Field::new("n", Schema::new(SchemaType::Int8))]);
        let e = parse_value(&s, &serde_json::json!({"n": 300})).unwrap_err();
        assert_eq!(
            e,
            JsonError::InField {
                field: "n".into(),
                error: Box::new(JsonError::WrongType {
                    expected: "an integer in range",
                    schema: SchemaType::Int8
                }),
            }
        );
        assert_eq!(
            e.to_string(),
            r#"field "n": expected an integer in range for a int8 value"#
        );
        let e = parse_value(&Schema::new(SchemaType::Bytes), &serde_json::json!("!")).unwrap_err();
        assert_eq!(e.to_string(), "expected valid base64 for a bytes value");
    }
}
