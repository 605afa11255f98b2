//! Debezium's per-column options: which columns events carry (`column.include.list` /
//! `column.exclude.list`), how string values are masked or cut (`column.mask.with.N.chars`,
//! `column.mask.hash[.v2].<algorithm>.with.salt.<salt>`, `column.truncate.to.N.chars`), and
//! which columns make a table's message key (`message.key.columns`).
//!
//! Columns are named as Debezium names them, `schema.table.column`, and matched by regular
//! expressions that must match the whole name.

use augur_core::connect::{Schema, SchemaType, Value};
use regex_lite::Regex;
use sha2::Digest;

/// What a matching rule does to a string column's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnMapper {
    /// `column.truncate.to.N.chars`: values longer than N characters are cut to N.
    Truncate(usize),
    /// `column.mask.with.N.chars`: every value (null included) becomes N asterisks.
    Mask(usize),
    /// `column.mask.hash[.v2].<algorithm>.with.salt.<salt>`: the hex digest of salt + value.
    Hash(HashMask),
}

/// A hashing mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashMask {
    /// `SHA-256`, `SHA-384`, `SHA-512`, `SHA-224` or `MD5`.
    pub algorithm: String,
    /// The salt, hashed before the value.
    pub salt: String,
    /// `v2` hashes the value's UTF-8 bytes; v1 (the default) hashes Java's serialization of
    /// the string, as Debezium's `HashingByteArrayStrategy.V1` does.
    pub v2: bool,
}

/// The per-column rules of a capture.
#[derive(Debug, Clone, Default)]
pub struct ColumnRules {
    /// `column.include.list` (empty: every column).
    pub include: Vec<Regex>,
    /// `column.exclude.list`.
    pub exclude: Vec<Regex>,
    /// Mapping rules, the first match wins: truncations, then masks, then hashes.
    pub mappers: Vec<(Vec<Regex>, ColumnMapper)>,
    /// `message.key.columns`: a table pattern and the columns of its key.
    pub key_columns: Vec<(Regex, Vec<String>)>,
    /// `column.propagate.source.type`: columns (`schema.table.column`) whose schema carries
    /// their source type.
    pub propagate: Vec<Regex>,
    /// `datatype.propagate.source.type`: the same by type (`schema.table.typename`).
    pub propagate_types: Vec<Regex>,
}

fn patterns(list: &[Regex]) -> Vec<&str> {
    list.iter().map(Regex::as_str).collect()
}

impl PartialEq for ColumnRules {
    fn eq(&self, other: &Self) -> bool {
        let mappers = |r: &ColumnRules| -> Vec<(Vec<String>, ColumnMapper)> {
            r.mappers
                .iter()
                .map(|(p, m)| {
                    (
                        patterns(p).into_iter().map(String::from).collect(),
                        m.clone(),
                    )
                })
                .collect()
        };
        let keys = |r: &ColumnRules| -> Vec<(String, Vec<String>)> {
            r.key_columns
                .iter()
                .map(|(t, c)| (t.as_str().to_string(), c.clone()))
                .collect()
        };
        patterns(&self.include) == patterns(&other.include)
            && patterns(&self.exclude) == patterns(&other.exclude)
            && mappers(self) == mappers(other)
            && keys(self) == keys(other)
            && patterns(&self.propagate) == patterns(&other.propagate)
            && patterns(&self.propagate_types) == patterns(&other.propagate_types)
    }
}

impl Eq for ColumnRules {}

impl ColumnRules {
    /// Whether events carry column `schema.table.column`.
    pub fn carries(&self, qualified: &str) -> bool {
        if !self.include.is_empty() {
            return self.include.iter().any(|r| r.is_match(qualified));
        }
        !self.exclude.iter().any(|r| r.is_match(qualified))
    }

    /// The mapper of string column `schema.table.column` of declared `length` (`None`:
    /// unbounded), if a rule applies. A truncation applies only where values can be longer.
    pub fn mapper_for(&self, qualified: &str, length: Option<usize>) -> Option<ColumnMapper> {
        let (_, m) = self
            .mappers
            .iter()
            .find(|(p, _)| p.iter().any(|r| r.is_match(qualified)))?;
        match m {
            ColumnMapper::Truncate(n) if length.is_some_and(|l| l <= *n) => None,
            other => Some(other.clone()),
        }
    }

    /// Whether some column may carry its source type.
    pub fn propagates_any(&self) -> bool {
        !self.propagate.is_empty() || !self.propagate_types.is_empty()
    }

    /// Whether column `schema.table.column`, of type `schema.table.typename`, carries its
    /// source type.
    pub fn propagates(&self, column: &str, type_name: &str) -> bool {
        self.propagate.iter().any(|r| r.is_match(column))
            || self.propagate_types.iter().any(|r| r.is_match(type_name))
    }

    /// The key columns `message.key.columns` gives table `schema.table`.
    pub fn key_for(&self, qualified_table: &str) -> Option<&[String]> {
        self.key_columns
            .iter()
            .find(|(t, _)| t.is_match(qualified_table))
            .map(|(_, c)| c.as_slice())
    }
}

impl ColumnMapper {
    /// Adds the parameter Debezium's mapper puts on the field's schema.
    pub fn alter_schema(&self, schema: Schema) -> Schema {
        match self {
            ColumnMapper::Truncate(n) => schema.param("truncateLength", n.to_string()),
            ColumnMapper::Mask(_) | ColumnMapper::Hash(_) => schema.param("masked", "true"),
        }
    }

    /// The value events carry for `v` in a column of declared `length`.
    pub fn apply(&self, v: Value, length: Option<usize>) -> Value {
        match (self, v) {
            (ColumnMapper::Mask(n), _) => Value::String("*".repeat(*n)),
            (ColumnMapper::Truncate(n), Value::String(s)) => Value::String(truncate_utf16(s, *n)),
            (ColumnMapper::Hash(h), Value::String(s)) => {
                let mut hex = h.digest_hex(&s);
                if let Some(l) = length {
                    hex.truncate(l);
                }
                Value::String(hex)
            }
            (ColumnMapper::Hash(_), _) => Value::Null,
            (_, other) => other,
        }
    }
}

/// The first `n` UTF-16 code units of `s`, as Java's `substring(0, n)` counts (a character
/// beyond the BMP counts two; one that would be split is left out).
fn truncate_utf16(s: String, n: usize) -> String {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > n {
            return s[..i].to_string();
        }
    }
    s
}

impl HashMask {
    /// Whether Debezium's `MessageDigest` names this algorithm and augur can compute it.
    pub fn supported(algorithm: &str) -> bool {
        matches!(
            algorithm,
            "SHA-224" | "SHA-256" | "SHA-384" | "SHA-512" | "MD5"
        )
    }

    /// Lower-case hex of the digest of salt, then the value's bytes (v1: Java serialization).
    fn digest_hex(&self, value: &str) -> String {
        let mut input = self.salt.as_bytes().to_vec();
        if self.v2 {
            input.extend_from_slice(value.as_bytes());
        } else {
            input.extend(java_serialized_string(value));
        }
        let digest: Vec<u8> = match self.algorithm.as_str() {
            "SHA-224" => sha2::Sha224::digest(&input).to_vec(),
            "SHA-384" => sha2::Sha384::digest(&input).to_vec(),
            "SHA-512" => sha2::Sha512::digest(&input).to_vec(),
            "MD5" => md5::compute(&input).0.to_vec(),
            _ => sha2::Sha256::digest(&input).to_vec(),
        };
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A `String` as `ObjectOutputStream.writeObject` writes it: the stream header, then
/// `TC_STRING` and a 2-byte length (`TC_LONGSTRING` and 8 bytes past 65,535), then modified
/// UTF-8 (NUL as two bytes, characters beyond the BMP as two 3-byte surrogates).
fn java_serialized_string(s: &str) -> Vec<u8> {
    let mut utf = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        match unit {
            0x01..=0x7f => utf.push(unit as u8),
            0x00 | 0x80..=0x7ff => {
                utf.push(0xc0 | (unit >> 6) as u8);
                utf.push(0x80 | (unit & 0x3f) as u8);
            }
            _ => {
                utf.push(0xe0 | (unit >> 12) as u8);
                utf.push(0x80 | ((unit >> 6) & 0x3f) as u8);
                utf.push(0x80 | (unit & 0x3f) as u8);
            }
        }
    }
    let mut out = vec![0xac, 0xed, 0x00, 0x05];
    match u16::try_from(utf.len()) {
        Ok(n) => {
            out.push(0x74);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            out.push(0x7c);
            out.extend_from_slice(&(utf.len() as u64).to_be_bytes());
        }
    }
    out.extend(utf);
    out
}

/// Whether a column of this Connect schema holds text the mappers act on.
pub fn is_text(schema: &Schema) -> bool {
    schema.ty == SchemaType::String && schema.name.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx(p: &str) -> Vec<Regex> {
        crate::source::config::compile_list(p).unwrap()
    }

    #[test]
    fn include_and_exclude_lists_name_whole_columns() {
        let inc = ColumnRules {
            include: rx("public.cars.(id|model)"),
            ..ColumnRules::default()
        };
        assert!(inc.carries("public.cars.id") && inc.carries("public.cars.model"));
        assert!(!inc.carries("public.cars.price") && !inc.carries("public.cars.id2"));
        let exc = ColumnRules {
            exclude: rx(r"public\.cars\.secret"),
            ..ColumnRules::default()
        };
        assert!(exc.carries("public.cars.id") && !exc.carries("public.cars.secret"));
    }

    #[test]
    fn masks_truncations_and_hashes_as_debezium_applies_them() {
        let rules = ColumnRules {
            mappers: vec![
                (rx("public.t.short"), ColumnMapper::Truncate(3)),
                (rx("public.t.secret"), ColumnMapper::Mask(5)),
            ],
            ..ColumnRules::default()
        };
        let t = rules.mapper_for("public.t.short", None).unwrap();
        assert_eq!(
            t.apply(Value::String("abcdef".into()), None),
            Value::String("abc".into())
        );
        assert_eq!(t.apply(Value::Null, None), Value::Null);
        assert!(
            rules.mapper_for("public.t.short", Some(3)).is_none(),
            "cannot be longer"
        );
        let m = rules.mapper_for("public.t.secret", Some(20)).unwrap();
        assert_eq!(m.apply(Value::Null, None), Value::String("*****".into()));
        assert_eq!(truncate_utf16("a😀b".into(), 2), "a");
        assert_eq!(truncate_utf16("a😀b".into(), 3), "a😀");
    }

    /// Digests Java computed the way Debezium's `MaskStrings.HashValueConverter` does (salt
    /// "salt"; v1 over `ObjectOutputStream.writeObject(value)`, v2 over `value.getBytes()`).
    #[test]
    fn hashes_match_debeziums_digests() {
        let cases = [
            (
                "SHA-256",
                false,
                "abc",
                "42d7a081efd6e39d260bdb3c417b0d1e353ac43cfd1c47cd97c7ba9b98f295eb",
            ),
            (
                "SHA-256",
                true,
                "abc",
                "3681099918be28c95b81e27e7e5c2e4c6a6dea566d2d10e7f49139ebb779eb6f",
            ),
            (
                "SHA-256",
                false,
                "Fiesta ✓ 😀",
                "92e3dcdc1d9df1d335421101e4617e5298dd255bf62c725dac53883ddbc5c151",
            ),
            (
                "SHA-256",
                true,
                "Fiesta ✓ 😀",
                "145426bb2355a1d85e9d389e1c59fe93a9eae46965438a380863d4cbaffa111b",
            ),
            ("MD5", false, "abc", "d7b1a134faf2fadc0cd22f304a8a504c"),
            (
                "MD5",
                true,
                "Fiesta ✓ 😀",
                "fe8b3cb6cdfed2723d5834321c418607",
            ),
        ];
        for (algorithm, v2, value, want) in cases {
            let h = HashMask {
                algorithm: algorithm.into(),
                salt: "salt".into(),
                v2,
            };
            assert_eq!(h.digest_hex(value), want, "{algorithm} v2={v2} {value}");
        }
        let m = ColumnMapper::Hash(HashMask {
            algorithm: "MD5".into(),
            salt: "salt".into(),
            v2: true,
        });
        // Cut to a varchar(8)'s length; a null stays null.
        assert_eq!(
            m.apply(Value::String("abc".into()), Some(8)),
            Value::String("10374787".into())
        );
        assert_eq!(m.apply(Value::Null, Some(8)), Value::Null);
    }
}
