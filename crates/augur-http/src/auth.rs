//! Authentication and TLS for augur's HTTP servers: server certificates ([`ServerTls`]), a
//! bearer token check, and HTTP Basic credentials read from a file (as Kafka Connect's
//! `BasicAuthSecurityRestExtension` reads them through `PropertyFileLoginModule`).

use std::path::Path;
use std::sync::Arc;

use augur_core::secret::Secret;
use augur_core::{Error, ErrorKind};
use axum::http::{HeaderMap, header};
use base64::Engine as _;

/// A server's TLS certificate chain and key, ready to accept connections. Printing it never
/// shows the key.
#[derive(Clone)]
pub struct ServerTls(pub(crate) Arc<rustls::ServerConfig>);

/// Two are equal when they are the same loaded config.
impl PartialEq for ServerTls {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ServerTls {}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls(..)")
    }
}

impl ServerTls {
    /// Reads a PEM certificate chain and its PEM private key (PKCS#8, PKCS#1 or SEC1);
    /// errors name the file and what is wrong, never the key.
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, Error> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, p: &Path, why: String| {
            Error::new(ErrorKind::Config, format!("{what} {}: {why}", p.display()))
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad("cannot read the TLS certificate", cert, e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad("the TLS certificate", cert, format!("is not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(bad(
                "the TLS certificate",
                cert,
                "holds no certificate".into(),
            ));
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            bad(
                "the TLS key",
                key,
                format!("holds no usable PEM private key ({e})"),
            )
        })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::Config, format!("TLS setup failed: {e}")))?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| {
                bad(
                    "the TLS key",
                    key,
                    format!("does not match the certificate: {e}"),
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls(Arc::new(config)))
    }
}

/// Compares without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `headers` carry `Authorization: Bearer <token>`.
pub fn bearer_matches(headers: &HeaderMap, token: &Secret) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.trim().as_bytes(), token.expose().as_bytes()))
}

/// HTTP Basic users and passwords.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BasicCredentials(Vec<(String, Secret)>);

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BasicCredentials({} users)", self.0.len())
    }
}

impl BasicCredentials {
    /// Reads `user=password` or `user: password` lines (Java properties, as Kafka's
    /// `PropertyFileLoginModule` reads them; `#` and `!` start comments). Errors name the
    /// file and line, never a password.
    pub fn load(path: &Path) -> Result<BasicCredentials, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read the credentials file {}", path.display()),
            )
            .with_source(e)
        })?;
        let mut users = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some(at) = line.find(['=', ':']) else {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{} line {}: expected user=password", path.display(), n + 1),
                ));
            };
            let (user, password) = (line[..at].trim(), line[at + 1..].trim());
            users.push((user.to_string(), Secret::new(password)));
        }
        if users.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("the credentials file {} names no user", path.display()),
            ));
        }
        Ok(BasicCredentials(users))
    }

    /// The user `headers` authenticate as with `Authorization: Basic …`, if the password
    /// matches.
    pub fn check(&self, headers: &HeaderMap) -> Option<&str> {
        let encoded = headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        let (name, secret) = self.0.iter().find(|(u, _)| u == user)?;
        same(password.as_bytes(), secret.expose().as_bytes()).then_some(name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn basic_credentials_check_user_and_password() {
        let dir = std::env::temp_dir().join(format!("augur-basic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("creds.properties");
        std::fs::write(&f, "# users\nalice: s3cret:with:colons\nbob=hunter2\n").unwrap();
        let c = BasicCredentials::load(&f).unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let h = with_auth(&format!("Basic {}", b64("alice:s3cret:with:colons")));
        assert_eq!(c.check(&h), Some("alice"));
        assert_eq!(
            c.check(&with_auth(&format!("Basic {}", b64("bob:hunter2")))),
            Some("bob")
        );
        assert_eq!(
            c.check(&with_auth(&format!("Basic {}", b64("bob:hunter3")))),
            None
        );
        assert_eq!(
            c.check(&with_auth(&format!("Basic {}", b64("carol:hunter2")))),
            None
        );
        assert_eq!(c.check(&with_auth("Bearer hunter2")), None);
        assert!(!format!("{c:?}").contains("hunter2"));
        std::fs::write(&f, "just a line\n").unwrap();
        let e = BasicCredentials::load(&f).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let t = Secret::new("tok-123");
        assert!(bearer_matches(&with_auth("Bearer tok-123"), &t));
        assert!(!bearer_matches(&with_auth("Bearer tok-1234"), &t));
        assert!(!bearer_matches(&with_auth("Basic tok-123"), &t));
        assert!(!bearer_matches(&HeaderMap::new(), &t));
    }
}
