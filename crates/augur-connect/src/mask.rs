//! Secrets never leave the worker: every config the REST API returns has its passwords
//! replaced by [`HIDDEN`] (what Kafka Connect shows for `PASSWORD` settings), and text that
//! might quote one (a task's failure trace) has the connector's secret values scrubbed.
//!
//! A key is secret when its name ends in `password`, `secret`, `sasl.jaas.config`,
//! `ssl.key.pem` or `ssl.keystore.key`
//! (`database.password`, `connection.password`, `ssl.key.password`, …); URLs additionally have
//! their `…password=` parameters (`sslpassword=` too) and `user:password@` part hidden
//! (`connection.url`).

use std::collections::BTreeMap;

/// What a secret value is shown as.
pub const HIDDEN: &str = "[hidden]";

/// Whether the value of `key` is a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("password")
        || k.ends_with("secret")
        || k.ends_with("sasl.jaas.config")
        // PEM private keys given inline (librdkafka's and Java's names).
        || k.ends_with("ssl.key.pem")
        || k.ends_with("ssl.keystore.key")
}

/// The value of `key` as it may be shown.
pub fn mask_value(key: &str, value: &str) -> String {
    if is_secret_key(key) {
        return HIDDEN.to_string();
    }
    mask_url(value)
}

/// Hides every password a connection string carries (`augur_core::secret::mask_url`).
fn mask_url(value: &str) -> String {
    augur_core::secret::mask_url(value, HIDDEN)
}

/// A config with every secret hidden.
pub fn mask_config(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, v)| (k.clone(), mask_value(k, v)))
        .collect()
}

/// `text` with every secret value of `config` replaced by [`HIDDEN`] — as written, and as its
/// config provider references (`${file:…}`) resolve.
pub fn scrub(text: &str, config: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    let resolved = augur_runtime::providers::resolve(config).unwrap_or_default();
    for (k, v) in config.iter().chain(&resolved) {
        if is_secret_key(k) && !v.trim().is_empty() && out.contains(v.as_str()) {
            out = out.replace(v.as_str(), HIDDEN);
        }
    }
    out
}

/// A config submitted by a client that read it back masked: a value equal to the masked form
/// of the stored one (and different from it) keeps the stored secret, so `GET …/config`, edit,
/// `PUT …/config` does not overwrite passwords with `[hidden]`.
pub fn unmask_with(
    submitted: BTreeMap<String, String>,
    stored: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    submitted
        .into_iter()
        .map(|(k, v)| {
            let keep = stored.get(&k).filter(|old| {
                let masked = mask_value(&k, old);
                masked != **old && masked == v
            });
            match keep {
                Some(old) => (k, old.clone()),
                None => (k, v),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_props as map;

    #[test]
    fn passwords_and_url_secrets_are_hidden() {
        let c = map(&[
            ("database.password", "s3cret"),
            ("connection.password", "pw"),
            ("producer.override.ssl.key.password", "k"),
            (
                "producer.override.sasl.jaas.config",
                "x required password=\"p\";",
            ),
            (
                "connection.url",
                "jdbc:postgresql://db:5432/cars?user=u&password=hunter2&ssl=false&sslpassword=k3y",
            ),
            ("other.url", "postgres://me:hunter2@db:5432/cars"),
            ("database.user", "postgres"),
        ]);
        let m = mask_config(&c);
        assert_eq!(m["database.password"], HIDDEN);
        assert_eq!(m["connection.password"], HIDDEN);
        assert_eq!(m["producer.override.ssl.key.password"], HIDDEN);
        assert_eq!(m["producer.override.sasl.jaas.config"], HIDDEN);
        assert_eq!(
            m["connection.url"],
            "jdbc:postgresql://db:5432/cars?user=u&password=[hidden]&ssl=false&sslpassword=[hidden]"
        );
        assert_eq!(m["other.url"], "postgres://me:[hidden]@db:5432/cars");
        assert_eq!(m["database.user"], "postgres");
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    #[test]
    fn traces_are_scrubbed_and_masked_values_round_trip() {
        let c = map(&[("database.password", "s3cret"), ("database.user", "me")]);
        assert_eq!(
            scrub("auth failed for s3cret at host", &c),
            "auth failed for [hidden] at host"
        );
        let submitted = map(&[("database.password", HIDDEN), ("database.user", "you")]);
        let merged = unmask_with(submitted, &c);
        assert_eq!(merged["database.password"], "s3cret");
        assert_eq!(merged["database.user"], "you");
        let changed = unmask_with(map(&[("database.password", "new")]), &c);
        assert_eq!(changed["database.password"], "new");
    }
}
