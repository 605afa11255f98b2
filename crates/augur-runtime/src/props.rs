//! Flat property maps (`key=value`), loaded from Java `.properties`, JSON or TOML files and
//! overridden by `--set key=value` flags: the form Debezium and Kafka Connect configs take.

use std::collections::BTreeMap;
use std::path::Path;

use augur_core::{Error, ErrorKind};

/// A flat, ordered map of property names to string values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props(pub BTreeMap<String, String>);

impl Props {
    /// A sink-style subscription, as Kafka Connect reads it: `topics` (comma-separated) or
    /// `topics.regex` (anchored at the start), exactly one of them.
    pub fn subscription(&self) -> Result<Vec<String>, ConfigError> {
        let get = |k: &str| self.get(k).filter(|v| !v.is_empty());
        match (get("topics"), get("topics.regex")) {
            (Some(t), None) => Ok(t
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()),
            (None, Some(r)) => Ok(vec![if r.starts_with('^') {
                r.to_string()
            } else {
                format!("^{r}")
            }]),
            (Some(_), Some(_)) => Err(ConfigError {
                key: "topics.regex".into(),
                message: "topics and topics.regex are mutually exclusive options, but both are set"
                    .into(),
            }),
            (None, None) => Err(ConfigError {
                key: "topics".into(),
                message: "Must configure one of topics or topics.regex".into(),
            }),
        }
    }

    /// An empty map.
    pub fn new() -> Self {
        Props(BTreeMap::new())
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// The value of `key`, trimmed, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|s| s.trim())
    }

    /// Loads a file, choosing the format by extension (`.json`, `.toml`, anything else is
    /// `.properties`). A Kafka Connect `{"name":…,"config":{…}}` JSON body is accepted too.
    pub fn load(path: &Path) -> Result<Props, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read config file {}", path.display()),
            )
            .with_source(e)
        })?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let parsed = match ext {
            "json" => Self::from_json_str(&text),
            "toml" => Self::from_toml_str(&text),
            _ => Ok(Self::from_properties_str(&text)),
        };
        parsed.map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("config file {}: {}", path.display(), e.message()),
            )
        })
    }

    /// Parses Java `.properties` text: `key=value` or `key: value` lines, `#`/`!` comments,
    /// backslash line continuations and escapes.
    pub fn from_properties_str(text: &str) -> Props {
        let mut out = Props::new();
        let mut logical = String::new();
        for raw in text.lines() {
            // Leading whitespace goes both on a first line and on a continuation line.
            let line = raw.trim_start();
            if logical.is_empty()
                && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
            {
                continue;
            }
            let trailing = line.chars().rev().take_while(|c| *c == '\\').count();
            if trailing % 2 == 1 {
                logical.push_str(&line[..line.len() - 1]);
                continue;
            }
            logical.push_str(line);
            let entry = std::mem::take(&mut logical);
            let sep = entry
                .char_indices()
                .find(|&(i, c)| (c == '=' || c == ':') && !escaped(&entry, i));
            let (k, v) = match sep {
                Some((i, _)) => (&entry[..i], &entry[i + 1..]),
                None => (entry.as_str(), ""),
            };
            out.set(unescape(k.trim()), unescape(v.trim_start()));
        }
        out
    }

    /// Parses a JSON object (or a Connect `{"name","config"}` body) of scalar values.
    pub fn from_json_str(text: &str) -> Result<Props, Error> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::new(ErrorKind::Config, format!("not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| Error::new(ErrorKind::Config, "JSON config must be an object"))?;
        let mut out = Props::new();
        let (inner, name) = match obj.get("config").and_then(|c| c.as_object()) {
            Some(c) => (c, obj.get("name").and_then(|n| n.as_str())),
            None => (obj, None),
        };
        if let Some(n) = name {
            out.set("name", n);
        }
        for (k, v) in inner {
            out.set(
                k.clone(),
                json_scalar(v).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        format!("value of \"{k}\" must be a string, number or boolean"),
                    )
                })?,
            );
        }
        Ok(out)
    }

    /// Parses TOML; nested tables flatten to dotted keys.
    pub fn from_toml_str(text: &str) -> Result<Props, Error> {
        let v: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::new(
                ErrorKind::Config,
                format!("not valid TOML: {}", e.message()),
            )
        })?;
        let mut out = Props::new();
        flatten_toml("", &toml::Value::Table(v), &mut out)?;
        Ok(out)
    }

    /// Applies `key=value` overrides.
    pub fn apply_overrides(&mut self, sets: &[String]) -> Result<(), Error> {
        for s in sets {
            let (k, v) = s.split_once('=').ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!("--set expects key=value, got \"{s}\""),
                )
            })?;
            self.set(k.trim(), v.trim());
        }
        Ok(())
    }
}

fn escaped(s: &str, i: usize) -> bool {
    s[..i].chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = it.by_ref().take(4).collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn json_scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Null => Some(String::new()),
        _ => None,
    }
}

fn flatten_toml(prefix: &str, v: &toml::Value, out: &mut Props) -> Result<(), Error> {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, out)?;
            }
        }
        toml::Value::String(s) => out.set(prefix, s.clone()),
        toml::Value::Integer(i) => out.set(prefix, i.to_string()),
        toml::Value::Float(f) => out.set(prefix, f.to_string()),
        toml::Value::Boolean(b) => out.set(prefix, b.to_string()),
        toml::Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s.clone()),
                    toml::Value::Integer(n) => Ok(n.to_string()),
                    _ => Err(Error::new(
                        ErrorKind::Config,
                        format!("array \"{prefix}\" may hold only strings and integers"),
                    )),
                })
                .collect::<Result<_, _>>()?;
            out.set(prefix, parts.join(","));
        }
        toml::Value::Datetime(d) => out.set(prefix, d.to_string()),
    }
    Ok(())
}

/// One invalid setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The property name.
    pub key: String,
    /// What is wrong, in Kafka Connect's words where it has them.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let msgs: Vec<&str> = self.0.iter().map(|e| e.message.as_str()).collect();
        write!(f, "{}", msgs.join("; "))
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigErrors> for augur_core::Error {
    fn from(e: ConfigErrors) -> Self {
        augur_core::Error::new(augur_core::ErrorKind::Config, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_take_topics_or_a_regex_not_both() {
        let mut p = Props::new();
        assert_eq!(p.subscription().unwrap_err().key, "topics");
        p.set("topics", "a, b,");
        assert_eq!(p.subscription().unwrap(), ["a", "b"]);
        p.set("topics.regex", "x.*");
        assert_eq!(p.subscription().unwrap_err().key, "topics.regex");
        p.set("topics", "");
        assert_eq!(p.subscription().unwrap(), ["^x.*"]);
    }

    #[test]
    fn properties_parse_like_java() {
        let p = Props::from_properties_str(
            "# comment\nconnector.class=io.debezium.connector.postgresql.PostgresConnector\n\
             table.include.list = public.a,\\\n  public.b\nkey\\=with\\=eq: v\nempty=\n",
        );
        assert_eq!(p.get("table.include.list"), Some("public.a,public.b"));
        assert_eq!(p.get("key=with=eq"), Some("v"));
        assert_eq!(p.get("empty"), Some(""));
    }

    #[test]
    fn json_and_toml_flatten() {
        let p = Props::from_json_str(
            r#"{"name":"pg","config":{"database.port":5432,"tombstones.on.delete":false}}"#,
        )
        .unwrap();
        assert_eq!(p.get("name"), Some("pg"));
        assert_eq!(p.get("database.port"), Some("5432"));
        let t =
            Props::from_toml_str("topic.prefix = \"x\"\n[database]\nhostname = \"h\"\nport = 1\n")
                .unwrap();
        assert_eq!(t.get("database.hostname"), Some("h"));
        assert_eq!(t.get("topic.prefix"), Some("x"));
        assert!(Props::from_json_str("[1]").is_err());
    }
}
