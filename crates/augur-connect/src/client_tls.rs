//! TLS for the worker's own client connections — the group link to the broker and REST
//! requests forwarded to an HTTPS leader: trusted CAs, an optional client certificate, and how
//! strictly the server's certificate is checked. Errors name files, never key material.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use augur_core::{Error, ErrorKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// Where the system keeps its CA bundle, in the order librdkafka's `probe` looks.
const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
];

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    /// The system's CA bundle.
    System,
    /// A PEM file, or a directory of PEM files.
    File(PathBuf),
    /// PEM text given inline.
    Pem(String),
}

/// A client certificate and its key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// PEM files (they may be one file holding both).
    Files { cert: PathBuf, key: PathBuf },
    /// PEM text given inline.
    Pem { cert: String, key: String },
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Files { cert, key } => f
                .debug_struct("Files")
                .field("cert", cert)
                .field("key", key)
                .finish(),
            Identity::Pem { .. } => f.write_str("Pem(..)"),
        }
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Chain and host name (the default, as `ssl.endpoint.identification.algorithm=https`).
    Full,
    /// The chain only (`ssl.endpoint.identification.algorithm=` empty or `none`).
    ChainOnly,
    /// Nothing (`enable.ssl.certificate.verification=false`).
    Nothing,
}

/// Everything a TLS client needs, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub(crate) trust: Trust,
    pub(crate) identity: Option<Identity>,
    pub(crate) verify: Verify,
}

fn config_error(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// Every certificate in the PEM file `path` (none is an error).
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| config_error(format!("cannot read {}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| config_error(format!("{} is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn trusted(trust: &Trust) -> Result<rustls::RootCertStore, Error> {
    let certs = match trust {
        Trust::Pem(text) => CertificateDer::pem_slice_iter(text.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| config_error(format!("the inline CA certificates are not PEM: {e}")))?,
        Trust::File(p) if p.is_dir() => {
            let entries = std::fs::read_dir(p)
                .map_err(|e| config_error(format!("cannot read {}: {e}", p.display())))?;
            // A directory of CA files: whatever is PEM counts, anything else is skipped.
            entries
                .flatten()
                .filter_map(|e| read_certs(&e.path()).ok())
                .flatten()
                .collect()
        }
        Trust::File(p) => read_certs(p)?,
        Trust::System => {
            let found = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file());
            let path = found.ok_or_else(|| {
                config_error(
                    "no system CA bundle found: set ssl.truststore.location (PEM) or ssl.ca.location"
                        .into(),
                )
            })?;
            read_certs(path)?
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(config_error(
            "no usable CA certificate among the trusted ones".into(),
        ));
    }
    Ok(roots)
}

fn identity(
    id: &Identity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    match id {
        Identity::Files { cert, key } => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                config_error(format!(
                    "{} holds no usable PEM private key ({e}); an encrypted key is not supported here",
                    key.display()
                ))
            })?;
            Ok((chain, key))
        }
        Identity::Pem { cert, key } => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| config_error(format!("the inline certificate is not PEM: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|_| config_error("the inline private key is not PEM".into()))?;
            Ok((chain, key))
        }
    }
}

impl TlsSettings {
    /// Reads the files and builds the client config (`alpn`: protocols to offer).
    pub(crate) fn load(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = Arc::new(trusted(&self.trust)?);
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(format!("TLS setup failed: {e}")))?;
        let builder = match self.verify {
            Verify::Full => builder.with_root_certificates(roots),
            Verify::ChainOnly | Verify::Nothing => {
                let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    roots,
                    provider.clone(),
                )
                .build()
                .map_err(|e| config_error(format!("TLS setup failed: {e}")))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Lenient {
                        inner,
                        nothing: self.verify == Verify::Nothing,
                    }))
            }
        };
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => {
                let (chain, key) = identity(id)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    config_error(format!(
                        "the client key does not match its certificate: {e}"
                    ))
                })?
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// The server name to check a certificate against: the host part of `host:port` (an IP
/// address, a bracketed IPv6 address or a DNS name).
pub(crate) fn server_name(addr: &str) -> Result<ServerName<'static>, Error> {
    let host = match addr.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|_| config_error(format!("{host} is not a host name or address")))
}

/// A verifier that checks the chain but not the name, or nothing at all.
#[derive(Debug)]
struct Lenient {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    nothing: bool,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.nothing {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host_part() {
        assert_eq!(
            server_name("broker.example:9093").unwrap(),
            ServerName::try_from("broker.example").unwrap()
        );
        assert_eq!(
            server_name("127.0.0.1:9093").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            server_name("[::1]:9093").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert!(server_name("bad host:1").is_err());
    }

    #[test]
    fn missing_or_empty_files_are_named() {
        let dir = std::env::temp_dir().join(format!("augur-client-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for trust in [
            Trust::File(dir.join("absent.pem")),
            Trust::File(empty.clone()),
        ] {
            let s = TlsSettings {
                trust,
                identity: None,
                verify: Verify::Full,
            };
            let e = s.load(&[]).unwrap_err().to_string();
            assert!(e.contains(dir.to_str().unwrap()), "{e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
