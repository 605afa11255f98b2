//! Kafka Connect's config providers in config values: `${file:/path/file.properties:key}` (a
//! key of a Java properties file), `${directory:/path/dir:name}` (the content of a file in a
//! folder) and `${env:NAME}` (an environment variable), resolved when a connector or
//! `augur run` starts. Stored and shown configs keep the references; [`hide`] puts them back
//! into any message that quotes a resolved value.

use std::collections::BTreeMap;
use std::path::Path;

use crate::props::ConfigError;

/// `config` with every provider reference resolved; an error per value that cannot be
/// (naming the key and the reference, never a resolved value). References to other providers
/// are left as written, as Kafka Connect leaves them.
pub fn resolve(
    config: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut out = BTreeMap::new();
    for (k, v) in config {
        match resolve_value(v) {
            Ok(r) => {
                out.insert(k.clone(), r);
            }
            Err(why) => errors.push(ConfigError {
                key: k.clone(),
                message: format!("The '{k}' value cannot be resolved: {why}"),
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// `text` with every resolved value of `resolved` that differs from its reference in `raw`
/// (as written, or masked as connection strings are quoted) replaced by that reference.
pub fn hide(
    text: &str,
    raw: &BTreeMap<String, String>,
    resolved: &BTreeMap<String, String>,
) -> String {
    let mut out = text.to_string();
    for (k, r) in resolved {
        if let Some(orig) = raw.get(k)
            && orig != r
            && !r.is_empty()
        {
            // The value as written, and as a message quotes a connection string (masked).
            let masked = augur_core::secret::mask_url(r, "****");
            out = out.replace(r.as_str(), orig).replace(masked.as_str(), orig);
        }
    }
    out
}

/// One value with its references resolved.
fn resolve_value(value: &str) -> Result<String, String> {
    if !value.contains("${") {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let reference = &rest[start..start + len + 1];
        match lookup(&reference[2..reference.len() - 1]) {
            Some(r) => out.push_str(&r.map_err(|why| format!("{reference}: {why}"))?),
            None => out.push_str(reference),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of `provider:path:key` / `provider:key`; `None` for a provider augur does not
/// know (the reference stays).
fn lookup(inner: &str) -> Option<Result<String, String>> {
    let (provider, rest) = inner.split_once(':')?;
    Some(match provider {
        "env" => std::env::var(rest).map_err(|_| format!("environment variable {rest} is not set")),
        "file" => {
            let (path, key) = rest.rsplit_once(':')?;
            properties(Path::new(path)).and_then(|p| {
                p.get(key)
                    .cloned()
                    .ok_or_else(|| format!("{path} has no key {key}"))
            })
        }
        "directory" => {
            let (dir, name) = rest.rsplit_once(':')?;
            if name.contains('/') || name == ".." {
                return Some(Err(format!("{name} is not a file name in {dir}")));
            }
            std::fs::read_to_string(Path::new(dir).join(name))
                .map_err(|e| format!("cannot read {name} in {dir}: {e}"))
        }
        _ => return None,
    })
}

/// A Java properties file's entries (parsed as every `.properties` file augur reads).
fn properties(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read properties from {}: {e}", path.display()))?;
    Ok(crate::props::Props::from_properties_str(&text).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("augur-providers-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn file_directory_and_env_references_resolve() {
        let d = dir("ok");
        let props = d.join("secrets.properties");
        std::fs::write(
            &props,
            "# comment\ndb.password = s3cr3t\nurl: postgres://h/db?x=1\nlong=a\\\n  b\n",
        )
        .unwrap();
        std::fs::write(d.join("token"), "tok-123").unwrap();
        // SAFETY: this test's own variable; no other thread reads it.
        unsafe { std::env::set_var("AUGUR_PROVIDER_TEST", "from-env") };
        let p = props.display().to_string();
        let cfg: BTreeMap<String, String> = [
            ("database.password", format!("${{file:{p}:db.password}}")),
            ("connection.url", format!("${{file:{p}:url}}")),
            ("long", format!("${{file:{p}:long}}")),
            ("token", format!("${{directory:{}:token}}", d.display())),
            ("user", "pre-${env:AUGUR_PROVIDER_TEST}-post".into()),
            ("vault", "${vault:secret/x:k}".into()),
            ("plain", "no reference".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let r = resolve(&cfg).unwrap();
        assert_eq!(r["database.password"], "s3cr3t");
        assert_eq!(r["connection.url"], "postgres://h/db?x=1");
        assert_eq!(r["long"], "ab");
        assert_eq!(r["token"], "tok-123");
        assert_eq!(r["user"], "pre-from-env-post");
        assert_eq!(
            r["vault"], "${vault:secret/x:k}",
            "an unknown provider is left as written"
        );
        assert_eq!(r["plain"], "no reference");
        let msg = "auth failed for s3cr3t";
        assert_eq!(
            hide(msg, &cfg, &r),
            format!("auth failed for ${{file:{p}:db.password}}")
        );
        let mut raw = BTreeMap::new();
        raw.insert("u".to_string(), "${env:U}".to_string());
        let mut got = BTreeMap::new();
        got.insert("u".to_string(), "postgres://a:pw@h/d".to_string());
        let quoted = "Invalid value postgres://a:****@h/d for source.url";
        assert_eq!(
            hide(quoted, &raw, &got),
            "Invalid value ${env:U} for source.url"
        );
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn unresolvable_references_name_the_key_not_a_value() {
        let d = dir("bad");
        std::fs::write(d.join("s.properties"), "a=1\n").unwrap();
        let p = d.join("s.properties").display().to_string();
        let cfg: BTreeMap<String, String> = [
            ("x", format!("${{file:{p}:missing}}")),
            ("y", "${file:/no/such/file.properties:k}".to_string()),
            ("z", "${env:AUGUR_PROVIDER_TEST_UNSET_VAR}".to_string()),
            ("w", format!("${{directory:{}:../etc}}", d.display())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let errors = resolve(&cfg).unwrap_err();
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["w", "x", "y", "z"]);
        assert!(
            errors[1].message.contains("has no key missing"),
            "{}",
            errors[1].message
        );
        assert!(
            errors[3]
                .message
                .contains("AUGUR_PROVIDER_TEST_UNSET_VAR is not set")
        );
        let _ = std::fs::remove_dir_all(d);
    }
}
