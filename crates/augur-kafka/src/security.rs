//! Kafka client security: the Java client's settings (`security.protocol`, `sasl.mechanism`,
//! `sasl.jaas.config`, `ssl.truststore.*`, `ssl.keystore.*`, …) turned into librdkafka's, with
//! the ones librdkafka cannot honour refused by name.

/// A security setting that cannot be used: the key as given and why (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityError {
    /// The key as the user wrote it.
    pub key: String,
    /// What is wrong and what to do instead.
    pub message: String,
}

/// Whether `key` is a client security setting (Java's or librdkafka's name).
pub fn is_security_key(key: &str) -> bool {
    key == "security.protocol"
        || key.starts_with("sasl.")
        || key.starts_with("ssl.")
        || key == "enable.ssl.certificate.verification"
        || key == "enable.sasl.oauthbearer.unsecure.jwt"
}

/// Sets `overrides` on `c` in librdkafka's terms (all of them, or with `security_only` just the
/// security settings, for the admin and metadata clients beside a producer or consumer).
pub fn apply(
    c: &mut rdkafka::ClientConfig,
    overrides: &[(String, String)],
    security_only: bool,
) -> Result<(), augur_core::Error> {
    let translated = translate(overrides).map_err(|e| {
        augur_core::Error::new(
            augur_core::ErrorKind::Config,
            format!("invalid Kafka setting {}: {}", e.key, e.message),
        )
    })?;
    for (k, v) in &translated {
        if !security_only || is_security_key(k) {
            c.set(k, v);
        }
    }
    Ok(())
}

/// Kafka client settings for one cluster, as a Kafka Connect worker file or a Kafka CLI's
/// `--command-config` file gives them: unprefixed keys apply to every client, `producer.*` and
/// `consumer.*` keys to producers or consumers only. Printing it hides every value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientSettings(Vec<(String, String)>);

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.0.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_tuple("ClientSettings").field(&keys).finish()
    }
}

impl ClientSettings {
    /// Checks `pairs` (each client's view translates) and keeps them.
    pub fn new(pairs: Vec<(String, String)>) -> Result<ClientSettings, SecurityError> {
        let s = ClientSettings(pairs);
        translate(&s.for_producer())?;
        translate(&s.for_consumer())?;
        Ok(s)
    }

    /// Whether no setting is given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The settings every client takes (unprefixed keys).
    pub fn common(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| !k.starts_with("producer.") && !k.starts_with("consumer."))
            .cloned()
            .collect()
    }

    /// A producer's settings: the common ones, then `producer.*` without the prefix.
    pub fn for_producer(&self) -> Vec<(String, String)> {
        self.prefixed("producer.")
    }

    /// A consumer's settings: the common ones, then `consumer.*` without the prefix.
    pub fn for_consumer(&self) -> Vec<(String, String)> {
        self.prefixed("consumer.")
    }

    fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        let own = self
            .0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())));
        self.common().into_iter().chain(own).collect()
    }
}

/// A client context that remembers librdkafka's last error (a failed TLS handshake, a refused
/// SASL login), so "cannot reach the broker" can say why; each new error is logged once.
/// Clones share one record.
#[derive(Default, Clone)]
pub struct LastError(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl LastError {
    /// The last error librdkafka reported, if any.
    pub fn last(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl rdkafka::ClientContext for LastError {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() != Some(reason) {
            tracing::warn!(%error, "kafka client: {reason}");
            *last = Some(reason.to_string());
        }
    }
}

/// Java settings librdkafka has no use for (it negotiates TLS 1.2/1.3 with OpenSSL itself).
const JAVA_ONLY: [&str; 6] = [
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.truststore.password",
];

/// `pairs` with every security setting in librdkafka's terms; other settings pass unchanged
/// and in order. Translating twice gives the same result.
pub fn translate(pairs: &[(String, String)]) -> Result<Vec<(String, String)>, SecurityError> {
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len() + 2);
    let mut put = |k: &str, v: &str| {
        out.retain(|(n, _)| n != k);
        out.push((k.to_string(), v.to_string()));
    };
    for (k, v) in pairs {
        match k.as_str() {
            "security.protocol" => put(k, &protocol(v)?),
            "sasl.mechanism" | "sasl.mechanisms" => put("sasl.mechanisms", &mechanism(k, v)?),
            "sasl.jaas.config" => {
                let (user, password) = jaas(v)?;
                put("sasl.username", &user);
                put("sasl.password", &password);
            }
            "ssl.truststore.location" => put("ssl.ca.location", &truststore(v, get)?),
            "ssl.truststore.certificates" => put("ssl.ca.pem", v),
            "ssl.keystore.location" => keystore(v, get, &mut put)?,
            "ssl.keystore.certificate.chain" => put("ssl.certificate.pem", v),
            "ssl.keystore.key" => put("ssl.key.pem", v),
            "ssl.keystore.type" | "ssl.truststore.type" => {}
            "ssl.endpoint.identification.algorithm" => {
                put(k, if v.trim().is_empty() { "none" } else { v })
            }
            k if JAVA_ONLY.contains(&k) => {}
            _ => put(k, v),
        }
    }
    finish(out)
}

/// Checks the whole: SASL has credentials, TLS finds the system's CAs by default.
fn finish(mut out: Vec<(String, String)>) -> Result<Vec<(String, String)>, SecurityError> {
    let get = |out: &[(String, String)], k: &str| {
        out.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    };
    let protocol = get(&out, "security.protocol").unwrap_or_else(|| "plaintext".into());
    if protocol.starts_with("sasl_") {
        let mech = get(&out, "sasl.mechanisms").unwrap_or_else(|| "GSSAPI".into());
        if mech == "GSSAPI" {
            return Err(err(
                "sasl.mechanism",
                "GSSAPI (Kerberos) is not built into augur: use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
            ));
        }
        if mech != "OAUTHBEARER" && get(&out, "sasl.username").is_none() {
            return Err(err(
                "sasl.jaas.config",
                &format!(
                    "{mech} needs credentials: set sasl.jaas.config, or sasl.username and sasl.password"
                ),
            ));
        }
    }
    let tls = protocol == "ssl" || protocol == "sasl_ssl";
    if tls && get(&out, "ssl.ca.location").is_none() && get(&out, "ssl.ca.pem").is_none() {
        // librdkafka's own search of the usual system CA bundles.
        out.push(("ssl.ca.location".into(), "probe".into()));
    }
    Ok(out)
}

fn err(key: &str, message: &str) -> SecurityError {
    SecurityError {
        key: key.to_string(),
        message: message.to_string(),
    }
}

fn protocol(v: &str) -> Result<String, SecurityError> {
    let p = v.trim().to_ascii_lowercase();
    match p.as_str() {
        "plaintext" | "ssl" | "sasl_plaintext" | "sasl_ssl" => Ok(p),
        _ => Err(err(
            "security.protocol",
            &format!("\"{v}\" is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        )),
    }
}

fn mechanism(key: &str, v: &str) -> Result<String, SecurityError> {
    let m = v.trim().to_ascii_uppercase();
    match m.as_str() {
        "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" | "OAUTHBEARER" | "GSSAPI" => Ok(m),
        _ => Err(err(
            key,
            &format!("\"{v}\" is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"),
        )),
    }
}

/// `username` and `password` of a `PlainLoginModule` or `ScramLoginModule` line:
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`.
fn jaas(v: &str) -> Result<(String, String), SecurityError> {
    let bad = |why: &str| err("sasl.jaas.config", why);
    let text = v.trim().trim_end_matches(';');
    let (module, rest) = text
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad("expected `<LoginModule> required username=\"…\" password=\"…\";`"))?;
    if !(module.ends_with(".PlainLoginModule") || module.ends_with(".ScramLoginModule")) {
        return Err(bad(
            "only PlainLoginModule and ScramLoginModule are supported (OAuth: use librdkafka's sasl.oauthbearer.* settings)",
        ));
    }
    let options = jaas_options(rest.trim_start().strip_prefix("required").unwrap_or(rest))
        .ok_or_else(|| bad("a quoted value is not closed"))?;
    let find = |k: &str| options.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    match (find("username"), find("password")) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err(bad("username=\"…\" and password=\"…\" are both needed")),
    }
}

/// `key="value"` (or `key=value`) options; `\"` and `\\` escape inside quotes.
fn jaas_options(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.trim().chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        chars.next()?;
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        out.push((key.trim().to_string(), value));
    }
}

fn truststore<'a>(v: &str, get: impl Fn(&str) -> Option<&'a str>) -> Result<String, SecurityError> {
    match get("ssl.truststore.type")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("PEM") => Ok(v.to_string()),
        t => Err(err(
            "ssl.truststore.location",
            &format!(
                "a {} trust store cannot be read by augur (librdkafka): export its CA certificates as PEM \
                 (keytool -exportcert -rfc -keystore <store> -alias <ca> > ca.pem) and set ssl.ca.location, \
                 or set ssl.truststore.type=PEM for a PEM file",
                t.unwrap_or("JKS")
            ),
        )),
    }
}

fn keystore<'a>(
    v: &str,
    get: impl Fn(&str) -> Option<&'a str>,
    put: &mut impl FnMut(&str, &str),
) -> Result<(), SecurityError> {
    match get("ssl.keystore.type")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        // librdkafka reads PKCS#12 key stores itself.
        None | Some("PKCS12") => put("ssl.keystore.location", v),
        // One PEM file with the key and the certificate chain.
        Some("PEM") => {
            put("ssl.certificate.location", v);
            put("ssl.key.location", v);
        }
        Some(t) => {
            return Err(err(
                "ssl.keystore.location",
                &format!(
                    "a {t} key store cannot be read by augur (librdkafka): convert it to PKCS12 \
                     (keytool -importkeystore -deststoretype PKCS12) or to PEM files for \
                     ssl.certificate.location and ssl.key.location"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pairs: &[(&str, &str)]) -> Result<Vec<(String, String)>, SecurityError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        translate(&owned)
    }

    fn get<'a>(out: &'a [(String, String)], k: &str) -> Option<&'a str> {
        out.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn java_settings_become_librdkafka_settings() {
        let out = t(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "scram-sha-512"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3\"cr=t";"#,
            ),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/etc/kafka/ca.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
            ("ssl.protocol", "TLSv1.3"),
            ("linger.ms", "5"),
        ])
        .unwrap();
        assert_eq!(get(&out, "security.protocol"), Some("sasl_ssl"));
        assert_eq!(get(&out, "sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(get(&out, "sasl.username"), Some("alice"));
        assert_eq!(get(&out, "sasl.password"), Some("s3\"cr=t"));
        assert_eq!(get(&out, "ssl.ca.location"), Some("/etc/kafka/ca.pem"));
        assert_eq!(
            get(&out, "ssl.endpoint.identification.algorithm"),
            Some("none")
        );
        assert_eq!(get(&out, "linger.ms"), Some("5"));
        assert!(get(&out, "ssl.protocol").is_none() && get(&out, "sasl.jaas.config").is_none());
        assert_eq!(
            translate(&out).unwrap(),
            out,
            "translating twice changes nothing"
        );
        let out = t(&[("security.protocol", "ssl")]).unwrap();
        assert_eq!(get(&out, "ssl.ca.location"), Some("probe"));
        let out = t(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", "/k.pem"),
        ])
        .unwrap();
        assert_eq!(get(&out, "ssl.certificate.location"), Some("/k.pem"));
        assert_eq!(get(&out, "ssl.key.location"), Some("/k.pem"));
    }

    #[test]
    fn client_settings_split_by_client_and_never_print_values() {
        let pairs = vec![
            ("security.protocol".to_string(), "SSL".to_string()),
            ("producer.linger.ms".to_string(), "7".to_string()),
            ("consumer.sasl.password".to_string(), "hunter2".to_string()),
        ];
        let c = ClientSettings::new(pairs).unwrap();
        assert_eq!(c.common().len(), 1);
        assert_eq!(get(&c.for_producer(), "linger.ms"), Some("7"));
        assert_eq!(get(&c.for_consumer(), "sasl.password"), Some("hunter2"));
        assert!(get(&c.for_consumer(), "linger.ms").is_none());
        assert!(!format!("{c:?}").contains("hunter2"));
        let bad = vec![("consumer.security.protocol".to_string(), "TLS".to_string())];
        assert_eq!(
            ClientSettings::new(bad).unwrap_err().key,
            "security.protocol"
        );
    }

    #[test]
    fn what_librdkafka_cannot_honour_is_refused_by_key_without_the_secret() {
        let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="hunter2""#;
        for (pairs, key, says) in [
            (
                vec![("security.protocol", "SASL_TLS")],
                "security.protocol",
                "not one of",
            ),
            (
                vec![("ssl.truststore.location", "/t.jks")],
                "ssl.truststore.location",
                "keytool",
            ),
            (
                vec![
                    ("ssl.keystore.type", "JKS"),
                    ("ssl.keystore.location", "/k.jks"),
                ],
                "ssl.keystore.location",
                "PKCS12",
            ),
            (
                vec![("security.protocol", "SASL_SSL")],
                "sasl.mechanism",
                "GSSAPI",
            ),
            (
                vec![
                    ("security.protocol", "SASL_SSL"),
                    ("sasl.mechanism", "PLAIN"),
                ],
                "sasl.jaas.config",
                "credentials",
            ),
            (
                vec![(
                    "sasl.jaas.config",
                    &jaas.replace("password=\"hunter2\"", ""),
                )],
                "sasl.jaas.config",
                "both needed",
            ),
            (
                vec![(
                    "sasl.jaas.config",
                    &jaas.replace("plain.PlainLoginModule", "x.Krb5LoginModule"),
                )],
                "sasl.jaas.config",
                "PlainLoginModule",
            ),
            (
                vec![(
                    "sasl.jaas.config",
                    &jaas.replace("\"hunter2\"", "\"hunter2"),
                )],
                "sasl.jaas.config",
                "not closed",
            ),
        ] {
            let e = t(&pairs).unwrap_err();
            assert_eq!(e.key, key, "{pairs:?}");
            assert!(e.message.contains(says), "{pairs:?}: {}", e.message);
            assert!(!e.message.contains("hunter2"));
        }
    }
}
