//! Reads Debezium's per-column options (`column.include.list`, `column.exclude.list`,
//! `column.mask.with.N.chars`, `column.mask.hash[.v2].<algorithm>.with.salt.<salt>`,
//! `column.truncate.to.N.chars`, `message.key.columns`) into [`ColumnRules`], without I/O.

use augur_postgres::source::columns::{ColumnMapper, ColumnRules, HashMask};
use augur_postgres::source::config::compile_list;
use regex_lite::Regex;

use crate::props::{ConfigError, Props};

/// Whether `key` is one of the per-column option names (the mapper ones carry a number, an
/// algorithm or a salt in the name).
pub(crate) fn is_column_key(key: &str) -> bool {
    matches!(
        key,
        "column.include.list"
            | "column.exclude.list"
            | "column.whitelist"
            | "column.blacklist"
            | "message.key.columns"
            | "column.propagate.source.type"
            | "datatype.propagate.source.type"
    ) || key.starts_with("column.truncate.to.")
        || key.starts_with("column.mask.")
}

/// The rules `props` set; every malformed one is an error naming its key.
pub(crate) fn column_rules(props: &Props, errors: &mut Vec<ConfigError>) -> ColumnRules {
    let list = |keys: &[&str], errors: &mut Vec<ConfigError>| {
        keys.iter()
            .find_map(|k| props.get(k).filter(|v| !v.is_empty()).map(|v| (*k, v)))
            .map_or_else(Vec::new, |(k, v)| regexes(k, v, errors))
    };
    let include = list(&["column.include.list", "column.whitelist"], errors);
    let exclude = list(&["column.exclude.list", "column.blacklist"], errors);
    if !include.is_empty() && !exclude.is_empty() {
        errors.push(invalid(
            "column.exclude.list",
            "\"column.include.list\" is already specified; column.exclude.list cannot be used with it",
        ));
    }
    ColumnRules {
        include,
        exclude,
        mappers: mappers(props, errors),
        key_columns: key_columns(props.get("message.key.columns").unwrap_or(""), errors),
        propagate: case_insensitive(props, "column.propagate.source.type", errors),
        propagate_types: case_insensitive(props, "datatype.propagate.source.type", errors),
    }
}

/// A list of whole-name patterns matched ignoring case, as Debezium matches these.
fn case_insensitive(props: &Props, key: &str, errors: &mut Vec<ConfigError>) -> Vec<Regex> {
    let value = props.get(key).unwrap_or("");
    let list: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| format!("(?i){p}"))
        .collect();
    regexes(key, &list.join(","), errors)
}

fn invalid(key: &str, why: &str) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: format!("The '{key}' value is invalid: {why}"),
    }
}

fn regexes(key: &str, value: &str, errors: &mut Vec<ConfigError>) -> Vec<Regex> {
    compile_list(value).unwrap_or_else(|bad| {
        errors.push(invalid(
            key,
            &format!("not a valid regular expression ({bad})"),
        ));
        Vec::new()
    })
}

/// Truncations, then masks, then hashes, then v2 hashes (each in key order): the first rule
/// that matches a column is the one applied, as in Debezium's `ColumnMappers`.
fn mappers(props: &Props, errors: &mut Vec<ConfigError>) -> Vec<(Vec<Regex>, ColumnMapper)> {
    let mut groups: [Vec<(Vec<Regex>, ColumnMapper)>; 4] = Default::default();
    for (key, value) in &props.0 {
        let Some((group, mapper)) = mapper_of(key, errors) else {
            continue;
        };
        groups[group].push((regexes(key, value, errors), mapper));
    }
    groups.into_iter().flatten().collect()
}

/// The mapper a `column.truncate.*` / `column.mask.*` key names, and its group.
fn mapper_of(key: &str, errors: &mut Vec<ConfigError>) -> Option<(usize, ColumnMapper)> {
    let chars = |rest: &str| {
        rest.strip_suffix(".chars")
            .and_then(|n| n.parse::<usize>().ok())
    };
    if let Some(rest) = key.strip_prefix("column.truncate.to.") {
        return match chars(rest) {
            Some(n) if n > 0 => Some((0, ColumnMapper::Truncate(n))),
            _ => bad_key(
                key,
                "expected column.truncate.to.<positive number>.chars",
                errors,
            ),
        };
    }
    if let Some(rest) = key.strip_prefix("column.mask.with.") {
        return match chars(rest) {
            Some(n) => Some((1, ColumnMapper::Mask(n))),
            None => bad_key(key, "expected column.mask.with.<number>.chars", errors),
        };
    }
    let (v2, rest) = match key.strip_prefix("column.mask.hash.v2.") {
        Some(rest) => (true, rest),
        None => (false, key.strip_prefix("column.mask.hash.")?),
    };
    match rest.split_once(".with.salt.") {
        Some((algorithm, salt)) if HashMask::supported(algorithm) => {
            let mask = HashMask {
                algorithm: algorithm.to_string(),
                salt: salt.to_string(),
                v2,
            };
            Some((2 + usize::from(v2), ColumnMapper::Hash(mask)))
        }
        Some((algorithm, _)) => bad_key(
            key,
            &format!(
                "hash algorithm {algorithm} is not available (SHA-224, SHA-256, SHA-384, SHA-512, MD5)"
            ),
            errors,
        ),
        None => bad_key(
            key,
            "expected column.mask.hash.<algorithm>.with.salt.<salt>",
            errors,
        ),
    }
}

fn bad_key<T>(key: &str, why: &str, errors: &mut Vec<ConfigError>) -> Option<T> {
    errors.push(ConfigError {
        key: key.to_string(),
        message: format!("The '{key}' option is invalid: {why}"),
    });
    None
}

/// `schema.table:col1,col2;other_table_regex:col3`.
fn key_columns(value: &str, errors: &mut Vec<ConfigError>) -> Vec<(Regex, Vec<String>)> {
    let mut out = Vec::new();
    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once(':').and_then(|(table, cols)| {
            let cols: Vec<String> = cols
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            let table = compile_list(table.trim()).ok()?.into_iter().next()?;
            (!cols.is_empty()).then_some((table, cols))
        });
        match parsed {
            Some(p) => out.push(p),
            None => errors.push(invalid(
                "message.key.columns",
                &format!("'{entry}' is not <schema>.<table>:<column>[,<column>…]"),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        let mut p = Props::new();
        for (k, v) in pairs {
            p.set(*k, *v);
        }
        p
    }

    #[test]
    fn every_option_is_read_and_each_mistake_is_named() {
        let mut errors = Vec::new();
        let p = props(&[
            ("column.exclude.list", r"public\.cars\.secret"),
            ("column.mask.with.4.chars", "public.cars.owner"),
            ("column.truncate.to.3.chars", "public.cars.model"),
            (
                "column.mask.hash.v2.SHA-256.with.salt.pepper",
                "public.cars.vin",
            ),
            ("message.key.columns", "public.cars:vin;public.other:a,b"),
        ]);
        let r = column_rules(&p, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!r.carries("public.cars.secret") && r.carries("public.cars.vin"));
        assert_eq!(
            r.mapper_for("public.cars.model", None),
            Some(ColumnMapper::Truncate(3))
        );
        assert_eq!(
            r.mapper_for("public.cars.owner", None),
            Some(ColumnMapper::Mask(4))
        );
        assert!(
            matches!(r.mapper_for("public.cars.vin", None), Some(ColumnMapper::Hash(h)) if h.v2 && h.salt == "pepper")
        );
        assert_eq!(
            r.key_for("public.other"),
            Some(&["a".to_string(), "b".to_string()][..])
        );

        let bad = props(&[
            ("column.include.list", "a.b.c"),
            ("column.exclude.list", "a.b.d"),
            ("column.truncate.to.0.chars", "x"),
            ("column.mask.hash.SHA-1.with.salt.s", "x"),
            ("column.mask.with.many.chars", "x"),
            ("message.key.columns", "no_colon"),
        ]);
        let mut errors = Vec::new();
        column_rules(&bad, &mut errors);
        let mut keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "column.exclude.list",
                "column.mask.hash.SHA-1.with.salt.s",
                "column.mask.with.many.chars",
                "column.truncate.to.0.chars",
                "message.key.columns",
            ]
        );
        assert_eq!(errors.len(), 5, "{errors:?}");
    }
}
