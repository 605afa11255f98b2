//! `hstore` values as Debezium writes them: parsed from PostgreSQL's text form into the
//! JDBC driver's `HashMap` and printed in that map's iteration order — as a JSON document
//! (`hstore.handling.mode=json`) or as a Connect map (`map`).

use augur_core::connect::Value;

/// The pairs of an hstore's text form (`"k"=>"v", "n"=>NULL`), in the order written.
pub fn parse(text: &str) -> Option<Vec<(String, Option<String>)>> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let (key, after) = quoted(rest)?;
        let after = after.trim_start().strip_prefix("=>")?.trim_start();
        let (value, after) = match after.strip_prefix("NULL") {
            Some(a) => (None, a),
            None => {
                let (v, a) = quoted(after)?;
                (Some(v), a)
            }
        };
        pairs.push((key, value));
        let after = after.trim_start();
        rest = match after.strip_prefix(',') {
            Some(a) => a.trim_start(),
            None if after.is_empty() => after,
            None => return None,
        };
    }
    Some(pairs)
}

/// A double-quoted string with backslash escapes, and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, &body[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's `String.hashCode` (over UTF-16 units).
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, u| h.wrapping_mul(31).wrapping_add(i32::from(u)))
}

/// The pairs in the iteration order of a `java.util.HashMap` they were put into in order:
/// by bucket of the final table size, then insertion order within a bucket.
pub fn java_order(pairs: Vec<(String, Option<String>)>) -> Vec<(String, Option<String>)> {
    let mut cap: usize = 16;
    while pairs.len() > cap / 4 * 3 {
        cap *= 2;
    }
    let bucket = |k: &str| {
        let h = java_hash(k);
        ((h ^ ((h as u32) >> 16) as i32) as u32 as usize) & (cap - 1)
    };
    let mut keyed: Vec<(usize, usize, (String, Option<String>))> = pairs
        .into_iter()
        .enumerate()
        .map(|(i, p)| (bucket(&p.0), i, p))
        .collect();
    keyed.sort_by_key(|(b, i, _)| (*b, *i));
    keyed.into_iter().map(|(_, _, p)| p).collect()
}

/// The value for `hstore.handling.mode`: a JSON document (`json`) or a map (`map`).
pub fn value(text: &str, as_map: bool) -> Option<Value> {
    let pairs = java_order(parse(text)?);
    if as_map {
        return Some(Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::String(k), v.map_or(Value::Null, Value::String)))
                .collect(),
        ));
    }
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        jackson_str(&mut out, k);
        out.push(':');
        match v {
            Some(v) => jackson_str(&mut out, v),
            None => out.push_str("null"),
        }
    }
    out.push('}');
    Some(Value::String(out))
}

/// A JSON string as Jackson writes it (short escapes, `\u00XX` upper case for the rest of
/// the control characters, everything else as is).
fn jackson_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_parse_with_escapes_and_nulls() {
        let p = parse(r#""a"=>"1", "b c"=>"x y", "n"=>NULL, "q"=>"with \"quote\" \\"#).map(|_| ());
        assert_eq!(p, None, "an unterminated value is refused");
        let p = parse(r#""a"=>"1", "b c"=>"x y", "n"=>NULL, "k"=>"with \"quote\"""#).unwrap();
        assert_eq!(p[3], ("k".into(), Some("with \"quote\"".into())));
        assert_eq!(p[2], ("n".into(), None));
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn json_follows_javas_hashmap_order() {
        // Debezium 3.6.3's output for these (the zoo fixtures).
        let v = value(r#""a"=>"1", "n"=>NULL, "b c"=>"x y""#, false).unwrap();
        assert_eq!(v, Value::String(r#"{"a":"1","b c":"x y","n":null}"#.into()));
        let v = value(r#""e"=>"", "k"=>"with \"quote\"""#, false).unwrap();
        assert_eq!(v, Value::String(r#"{"e":"","k":"with \"quote\""}"#.into()));
        assert_eq!(value("", false).unwrap(), Value::String("{}".into()));
        // Java: "Aa" and "BB" share a hash, so insertion order decides within the bucket.
        let order: Vec<String> = java_order(vec![("BB".into(), None), ("Aa".into(), None)])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(order, ["BB", "Aa"]);
        assert_eq!(java_hash("hello"), 99_162_322);
    }
}
