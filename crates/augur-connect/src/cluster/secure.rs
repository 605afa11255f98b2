//! How the group link reaches a secured broker: TLS, then Kafka's SASL exchange
//! (`SaslHandshake` v1 + `SaslAuthenticate` v1) with PLAIN or SCRAM-SHA-256/512 (RFC 5802,
//! no channel binding, as Kafka's clients do) — taken from the worker's own client settings so
//! that the group connection is as secure as its producers and consumers.

use std::sync::Arc;

use augur_core::secret::Secret;
use augur_core::{Error, ErrorKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::client_tls::{Identity, TlsSettings, Trust, Verify};

/// A SASL mechanism the link speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `PLAIN`: the password sent as is (use it over TLS).
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl Mechanism {
    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The user.
    pub user: String,
    /// The password (never printed).
    pub password: Secret,
}

/// The link's security, as settings (no file read yet).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkSecurity {
    pub(crate) tls: Option<TlsSettings>,
    pub(crate) sasl: Option<Sasl>,
}

/// The link's security, loaded: a TLS client config and SASL credentials.
#[derive(Debug, Clone, Default)]
pub struct LoadedSecurity {
    /// TLS, when the protocol is `SSL` or `SASL_SSL`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SASL, when the protocol is `SASL_PLAINTEXT` or `SASL_SSL`.
    pub sasl: Option<Sasl>,
}

fn refuse(key: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("invalid Kafka setting {key} for the worker cluster's group connection: {why}"),
    )
}

impl LinkSecurity {
    /// Reads the security settings from librdkafka-style `pairs` (the worker's translated
    /// client settings); refuses what the link cannot do, by key. No I/O.
    pub fn from_settings(pairs: &[(String, String)]) -> Result<LinkSecurity, Error> {
        let get = |k: &str| {
            pairs
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let protocol = get("security.protocol")
            .unwrap_or("plaintext")
            .to_ascii_lowercase();
        let (tls, sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => {
                return Err(refuse(
                    "security.protocol",
                    &format!("unknown protocol {other}"),
                ));
            }
        };
        Ok(LinkSecurity {
            tls: if tls { Some(tls_settings(&get)?) } else { None },
            sasl: if sasl {
                Some(sasl_settings(&get)?)
            } else {
                None
            },
        })
    }

    /// Reads the TLS files.
    pub fn load(&self) -> Result<LoadedSecurity, Error> {
        Ok(LoadedSecurity {
            tls: self.tls.as_ref().map(|t| t.load(&[])).transpose()?,
            sasl: self.sasl.clone(),
        })
    }
}

fn tls_settings<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<TlsSettings, Error> {
    for key in [
        "ssl.keystore.location",
        "ssl.key.password",
        "ssl.engine.location",
    ] {
        if get(key).is_some() {
            return Err(refuse(
                key,
                "use an unencrypted PEM key and certificate (ssl.keystore.type=PEM, or ssl.certificate.location and ssl.key.location)",
            ));
        }
    }
    let trust = match (get("ssl.ca.pem"), get("ssl.ca.location")) {
        (Some(pem), _) => Trust::Pem(pem.to_string()),
        (None, Some(p)) if p != "probe" => Trust::File(p.into()),
        _ => Trust::System,
    };
    let identity = match (
        get("ssl.certificate.location"),
        get("ssl.key.location"),
        get("ssl.certificate.pem"),
        get("ssl.key.pem"),
    ) {
        (Some(cert), Some(key), _, _) => Some(Identity::Files {
            cert: cert.into(),
            key: key.into(),
        }),
        (_, _, Some(cert), Some(key)) => Some(Identity::Pem {
            cert: cert.to_string(),
            key: key.to_string(),
        }),
        (None, None, None, None) => None,
        _ => {
            return Err(refuse(
                "ssl.keystore.location",
                "a client certificate needs both the certificate and its key",
            ));
        }
    };
    let off = |k: &str| get(k).is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
    let verify = if off("enable.ssl.certificate.verification") {
        Verify::Nothing
    } else if get("ssl.endpoint.identification.algorithm")
        .is_some_and(|v| v.trim().is_empty() || v.trim().eq_ignore_ascii_case("none"))
    {
        Verify::ChainOnly
    } else {
        Verify::Full
    };
    Ok(TlsSettings {
        trust,
        identity,
        verify,
    })
}

fn sasl_settings<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Sasl, Error> {
    let name = get("sasl.mechanisms")
        .unwrap_or("GSSAPI")
        .trim()
        .to_ascii_uppercase();
    let mechanism = match name.as_str() {
        "PLAIN" => Mechanism::Plain,
        "SCRAM-SHA-256" => Mechanism::ScramSha256,
        "SCRAM-SHA-512" => Mechanism::ScramSha512,
        other => {
            return Err(refuse(
                "sasl.mechanism",
                &format!(
                    "{other} is not supported here: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
                ),
            ));
        }
    };
    match (get("sasl.username"), get("sasl.password")) {
        (Some(user), Some(password)) => Ok(Sasl {
            mechanism,
            user: user.to_string(),
            password: Secret::new(password),
        }),
        _ => Err(refuse(
            "sasl.jaas.config",
            "a user name and a password are needed",
        )),
    }
}

/// One SCRAM exchange, the client's side.
pub(crate) struct Scram {
    sha512: bool,
    password: Secret,
    nonce: String,
    first_bare: String,
    /// The server signature expected in the final message.
    expected: Option<Vec<u8>>,
}

/// A fresh client nonce: 18 random bytes, base64.
pub(crate) fn client_nonce() -> String {
    let mut bytes = [0u8; 18];
    let random = rustls::crypto::aws_lc_rs::default_provider().secure_random;
    if random.fill(&mut bytes).is_err() {
        // Without randomness the nonce would repeat: refuse to make one that looks random.
        bytes = [0; 18];
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_be_bytes();
        bytes[..16].copy_from_slice(&t);
    }
    B64.encode(bytes)
}

/// `name` with `=` and `,` escaped as SCRAM requires.
fn saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn scram_error(why: &str) -> Error {
    Error::new(
        ErrorKind::Connection,
        format!("SCRAM authentication with the broker failed: {why}"),
    )
}

impl Scram {
    /// Starts an exchange; returns it and the client-first message.
    pub(crate) fn start(sasl: &Sasl, nonce: String) -> (Scram, Vec<u8>) {
        let first_bare = format!("n={},r={nonce}", saslname(&sasl.user));
        let s = Scram {
            sha512: sasl.mechanism == Mechanism::ScramSha512,
            password: sasl.password.clone(),
            nonce,
            first_bare,
            expected: None,
        };
        let first = format!("n,,{}", s.first_bare).into_bytes();
        (s, first)
    }

    /// Answers the server-first message with the client-final one (the proof).
    pub(crate) fn respond(&mut self, server_first: &[u8]) -> Result<Vec<u8>, Error> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| scram_error("the server sent non-UTF-8"))?;
        let attr = |k: &str| text.split(',').find_map(|p| p.strip_prefix(k));
        if let Some(e) = attr("e=") {
            return Err(scram_error(&format!("the server says {e}")));
        }
        let nonce = attr("r=").ok_or_else(|| scram_error("no nonce from the server"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(scram_error("the server's nonce does not extend ours"));
        }
        let salt = attr("s=")
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| scram_error("no salt from the server"))?;
        let iterations: u32 = attr("i=")
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=1_000_000).contains(i))
            .ok_or_else(|| scram_error("no usable iteration count from the server"))?;
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{},{text},{without_proof}", self.first_bare);
        let salted = self.hi(&salt, iterations);
        let client_key = self.hmac(&salted, b"Client Key");
        let stored_key = self.hash(&client_key);
        let signature = self.hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = self.hmac(&salted, b"Server Key");
        self.expected = Some(self.hmac(&server_key, auth.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it knows the password too.
    pub(crate) fn verify(&self, server_final: &[u8]) -> Result<(), Error> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| scram_error("the server sent non-UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(scram_error(&format!("the server says {e}")));
        }
        let got = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| scram_error("no server signature"))?;
        match &self.expected {
            Some(want) if *want == got => Ok(()),
            _ => Err(scram_error("the server's signature is wrong")),
        }
    }

    fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        if self.sha512 {
            let mut m = Hmac::<sha2::Sha512>::new_from_slice(key).expect("any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        } else {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
    }

    fn hash(&self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        if self.sha512 {
            sha2::Sha512::digest(data).to_vec()
        } else {
            sha2::Sha256::digest(data).to_vec()
        }
    }

    /// RFC 5802's `Hi`: PBKDF2 with the mechanism's HMAC.
    fn hi(&self, salt: &[u8], iterations: u32) -> Vec<u8> {
        let password = self.password.expose().as_bytes();
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password, &block);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// RFC 7677's SCRAM-SHA-256 example, byte for byte.
    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        let sasl = Sasl {
            mechanism: Mechanism::ScramSha256,
            user: "user".into(),
            password: Secret::new("pencil"),
        };
        let (mut s, first) = Scram::start(&sasl, "rOprNGfwEbeRWgbNEkqO".into());
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let last = s.respond(server_first).unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(
            s.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=")
                .is_err()
        );
        assert!(s.verify(b"e=invalid-proof").is_err());
    }

    #[test]
    fn a_server_that_does_not_extend_the_nonce_is_refused() {
        let sasl = Sasl {
            mechanism: Mechanism::ScramSha512,
            user: "a,b=c".into(),
            password: Secret::new("p"),
        };
        let (mut s, first) = Scram::start(&sasl, client_nonce());
        assert!(
            String::from_utf8(first)
                .unwrap()
                .starts_with("n,,n=a=2Cb=3Dc,r=")
        );
        for bad in [
            "r=other,s=c2FsdA==,i=4096",
            &format!("r={},s=c2FsdA==,i=4096", s.nonce),
            &format!("r={}x,s=c2FsdA==,i=0", s.nonce),
            &format!("r={}x,i=4096", s.nonce),
            "e=unknown-user",
        ] {
            assert!(s.respond(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_ne!(client_nonce(), client_nonce());
    }

    #[test]
    fn settings_map_to_tls_and_sasl_and_refuse_what_the_link_cannot_do() {
        let plain = LinkSecurity::from_settings(&[]).unwrap();
        assert_eq!(plain, LinkSecurity::default());
        let s = LinkSecurity::from_settings(&pairs(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "w"),
            ("sasl.password", "secret-pw"),
            ("ssl.ca.location", "/ca.pem"),
            ("ssl.certificate.location", "/c.pem"),
            ("ssl.key.location", "/k.pem"),
            ("ssl.endpoint.identification.algorithm", "none"),
        ]))
        .unwrap();
        let tls = s.tls.clone().unwrap();
        assert_eq!(tls.trust, Trust::File("/ca.pem".into()));
        assert_eq!(tls.verify, Verify::ChainOnly);
        assert!(tls.identity.is_some());
        assert_eq!(s.sasl.as_ref().unwrap().mechanism, Mechanism::ScramSha512);
        assert!(!format!("{s:?}").contains("secret-pw"));
        let probe = LinkSecurity::from_settings(&pairs(&[
            ("security.protocol", "ssl"),
            ("ssl.ca.location", "probe"),
        ]))
        .unwrap();
        assert_eq!(probe.tls.unwrap().trust, Trust::System);
        for (bad, key) in [
            (
                vec![
                    ("security.protocol", "sasl_plaintext"),
                    ("sasl.mechanisms", "OAUTHBEARER"),
                ],
                "sasl.mechanism",
            ),
            (
                vec![
                    ("security.protocol", "sasl_plaintext"),
                    ("sasl.mechanisms", "PLAIN"),
                ],
                "sasl.jaas.config",
            ),
            (
                vec![
                    ("security.protocol", "ssl"),
                    ("ssl.keystore.location", "/k.p12"),
                ],
                "ssl.keystore.location",
            ),
            (
                vec![("security.protocol", "ssl"), ("ssl.key.password", "x")],
                "ssl.key.password",
            ),
        ] {
            let e = LinkSecurity::from_settings(&pairs(&bad))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{e}");
            assert!(!e.contains("/k.p12") || key == "ssl.keystore.location");
        }
    }
}
