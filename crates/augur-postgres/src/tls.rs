//! TLS to PostgreSQL with libpq's `sslmode` semantics: the settings, their validation, and the
//! rustls configs the SQL (tokio-postgres) and replication (pgwire-replication) connections use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use augur_core::secret::Secret;
use augur_core::{Error, ErrorKind};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// libpq's `sslmode`. The default is libpq's: `prefer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS only when the server refuses a plain connection.
    Allow,
    /// TLS when the server offers it, plain otherwise; the certificate is not checked.
    #[default]
    Prefer,
    /// TLS or nothing; the certificate is checked only when a root certificate is given.
    Require,
    /// TLS, and the server's certificate must chain to a trusted root.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's spelling.
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn verifies(self) -> bool {
        self >= SslMode::VerifyCa
    }
}

/// Where trusted root certificates come from (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RootCert {
    /// libpq's default: `~/.postgresql/root.crt`, when it exists.
    #[default]
    Default,
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trusted roots.
    System,
}

/// TLS settings of one PostgreSQL connection (libpq's `sslmode`, `sslrootcert`, `sslcert`,
/// `sslkey`, `sslpassword`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgTls {
    /// `sslmode`.
    pub mode: SslMode,
    /// `sslrootcert`.
    pub root_cert: RootCert,
    /// `sslcert`: the client certificate (PEM), for `cert` authentication.
    pub cert: Option<PathBuf>,
    /// `sslkey`: the client certificate's private key (PEM, unencrypted).
    pub key: Option<PathBuf>,
    /// `sslpassword`: accepted for compatibility; encrypted keys are refused (see `load`).
    pub key_password: Option<Secret>,
}

/// A bad TLS parameter: its libpq name and what is wrong.
pub type ParamError = (&'static str, String);

impl PgTls {
    /// Reads libpq's parameters through `get` (by libpq name) and checks their combination,
    /// without I/O. `sslrootcert=system` makes `verify-full` the default and refuses weaker
    /// modes, as libpq 16 does.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Result<PgTls, ParamError> {
        let root_cert = match get("sslrootcert").as_deref() {
            None | Some("") => RootCert::Default,
            Some("system") => RootCert::System,
            Some(p) => RootCert::File(PathBuf::from(p)),
        };
        let mode = match get("sslmode") {
            None if root_cert == RootCert::System => SslMode::VerifyFull,
            None => SslMode::Prefer,
            Some(m) => SslMode::parse(&m).ok_or_else(|| {
                let why = format!(
                    "\"{m}\" is not one of disable, allow, prefer, require, verify-ca, verify-full"
                );
                ("sslmode", why)
            })?,
        };
        if root_cert == RootCert::System && mode != SslMode::VerifyFull {
            let why = format!(
                "weak sslmode \"{}\" may not be used with sslrootcert=system (use verify-full)",
                mode.as_str()
            );
            return Err(("sslmode", why));
        }
        let path = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let (cert, key) = (path("sslcert"), path("sslkey"));
        if cert.is_some() != key.is_some() {
            let name = if cert.is_some() { "sslkey" } else { "sslcert" };
            return Err((name, "sslcert and sslkey must be given together".into()));
        }
        let key_password = get("sslpassword").map(Secret::new);
        Ok(PgTls {
            mode,
            root_cert,
            cert,
            key,
            key_password,
        })
    }

    /// Settings that never use TLS.
    pub fn disabled() -> PgTls {
        PgTls {
            mode: SslMode::Disable,
            ..PgTls::default()
        }
    }

    /// The mode in effect: `require` with a root certificate verifies like `verify-ca`
    /// (libpq's rule for a root certificate that exists).
    pub fn effective_mode(&self) -> SslMode {
        if self.mode == SslMode::Require && self.root_path().is_some() {
            SslMode::VerifyCa
        } else {
            self.mode
        }
    }

    /// The root certificate file in use, if any.
    pub(crate) fn root_path(&self) -> Option<PathBuf> {
        match &self.root_cert {
            RootCert::File(p) => Some(p.clone()),
            RootCert::System => Some(system_roots()),
            RootCert::Default => {
                let p = home_file("root.crt")?;
                p.exists().then_some(p)
            }
        }
    }

    /// The rustls config for `mode`, reading the certificate files (errors name the file and
    /// what is wrong with it).
    pub(crate) fn client_config(&self, mode: SslMode) -> Result<ClientConfig, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_config_error(format!("TLS setup failed: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = if mode.verifies() {
            let roots = self.roots()?;
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_config_error(format!("sslrootcert: {e}")))?;
            Arc::new(Verify {
                inner,
                check_name: mode == SslMode::VerifyFull,
            })
        } else {
            Arc::new(NoVerify(provider))
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(load_certs(cert, "sslcert")?, self.load_key(key)?)
                .map_err(|e| tls_config_error(format!("sslcert/sslkey do not match: {e}"))),
            _ => Ok(builder.with_no_client_auth()),
        }
    }

    fn roots(&self) -> Result<RootCertStore, Error> {
        let Some(path) = self.root_path() else {
            let expected = home_file("root.crt")
                .map_or("~/.postgresql/root.crt".into(), |p| p.display().to_string());
            return Err(tls_config_error(format!(
                "sslmode={} needs a root certificate, and \"{expected}\" does not exist",
                self.mode.as_str()
            ))
            .with_hint(
                "give sslrootcert=/path/to/ca.pem, or sslrootcert=system to trust the system's \
                 roots, or a weaker sslmode that does not verify the server",
            ));
        };
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(load_certs(&path, "sslrootcert")?);
        if added == 0 {
            return Err(tls_config_error(format!(
                "sslrootcert \"{}\" holds no usable CA certificate",
                path.display()
            )));
        }
        Ok(roots)
    }

    /// The client key: unencrypted PEM (PKCS#8, PKCS#1, SEC1), or encrypted PKCS#8
    /// (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2) decrypted with `sslpassword`.
    fn load_key(&self, path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
        let text = read_file(path, "sslkey")?;
        let pem = String::from_utf8_lossy(&text);
        let shown = path.display();
        if pem.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(tls_config_error(format!(
                "sslkey \"{shown}\" uses OpenSSL's legacy PEM encryption, which augur does not read"
            ))
            .with_hint("convert it to encrypted PKCS#8: openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key.p8.pem"));
        }
        if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") {
            return self.decrypt_key(path, &text);
        }
        PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
            tls_config_error(format!("sslkey \"{shown}\" holds no PEM private key: {e}"))
        })
    }

    fn decrypt_key(&self, path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
        let shown = path.display();
        let Some(password) = &self.key_password else {
            return Err(tls_config_error(format!(
                "sslkey \"{shown}\" is encrypted and no sslpassword is given"
            )));
        };
        let bad = |why: String| tls_config_error(format!("sslkey \"{shown}\": {why}"));
        let (_, der) = pkcs8::der::pem::decode_vec(pem)
            .map_err(|e| bad(format!("not a PEM encrypted key ({e})")))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| bad(format!("not an encrypted PKCS#8 key ({e})")))?;
        let plain = info
            .decrypt(password.expose().as_bytes())
            .map_err(|_| bad("sslpassword does not decrypt it".into()))?;
        Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
    }

    /// The key file the replication connection reads: `sslkey` itself, or, when it is
    /// encrypted, its decrypted copy in an in-memory file of this process (never on disk).
    fn replication_key(&self, key: &Path) -> Result<PathBuf, Error> {
        let text = read_file(key, "sslkey")?;
        if !String::from_utf8_lossy(&text).contains("BEGIN ENCRYPTED PRIVATE KEY") {
            return Ok(key.to_path_buf());
        }
        let PrivateKeyDer::Pkcs8(der) = self.decrypt_key(key, &text)? else {
            unreachable!("decrypt_key gives PKCS#8");
        };
        let pem = pkcs8::der::pem::encode_string(
            "PRIVATE KEY",
            pkcs8::der::pem::LineEnding::LF,
            der.secret_pkcs8_der(),
        )
        .map_err(|e| tls_config_error(format!("re-encoding sslkey failed: {e}")))?;
        memory_file(key, pem.as_bytes())
    }

    /// The replication connection's TLS settings for `mode` (read by pgwire-replication;
    /// checked here first so errors read the same on both connections).
    pub(crate) fn replication_config(
        &self,
        mode: SslMode,
        host: &str,
    ) -> Result<pgwire_replication::TlsConfig, Error> {
        use pgwire_replication::TlsConfig;
        if mode == SslMode::Disable || mode == SslMode::Allow {
            return Ok(TlsConfig::disabled());
        }
        self.client_config(mode)?;
        let mut t = match mode {
            SslMode::VerifyCa => TlsConfig::verify_ca(self.root_path()),
            SslMode::VerifyFull => TlsConfig::verify_full(self.root_path()).with_sni_hostname(host),
            SslMode::Require => TlsConfig::require(),
            _ => TlsConfig {
                mode: pgwire_replication::SslMode::Prefer,
                ..TlsConfig::disabled()
            },
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            t = t.with_client_cert(cert.clone(), self.replication_key(key)?);
        }
        Ok(t)
    }
}

/// `/proc/self/fd/N` of an anonymous in-memory file (memfd) holding `content`, one per `key`
/// for the life of the process (the replication client reads it at every connection).
fn memory_file(key: &Path, content: &[u8]) -> Result<PathBuf, Error> {
    use std::collections::HashMap;
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::{Mutex, OnceLock};
    static FILES: OnceLock<Mutex<HashMap<PathBuf, OwnedFd>>> = OnceLock::new();
    let mut files = FILES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Io, "cannot hold the decrypted sslkey in memory").with_source(e)
    };
    // SAFETY: a valid NUL-terminated name; the returned descriptor is checked, then owned.
    let fd = unsafe { libc::memfd_create(c"augur-sslkey".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    std::fs::File::from(fd.try_clone().map_err(io)?)
        .write_all(content)
        .map_err(io)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    files.insert(key.to_path_buf(), fd);
    Ok(path)
}

fn home_file(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(Path::new(&home).join(".postgresql").join(name))
}

/// The system's PEM bundle of trusted roots: `$SSL_CERT_FILE`, else the first that exists of
/// the usual Linux locations.
fn system_roots() -> PathBuf {
    if let Some(f) = std::env::var_os("SSL_CERT_FILE") {
        return PathBuf::from(f);
    }
    let candidates = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ];
    let found = candidates.iter().find(|p| Path::new(p).exists());
    PathBuf::from(found.unwrap_or(&candidates[0]))
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| tls_config_error(format!("cannot read {what} \"{}\": {e}", path.display())))
}

fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let text = read_file(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_config_error(format!("{what} \"{}\" is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls_config_error(format!(
            "{what} \"{}\" holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn tls_config_error(msg: String) -> Error {
    Error::new(ErrorKind::Config, msg)
}

/// Checks the chain to the trusted roots, and the host name when `check_name`.
#[derive(Debug)]
struct Verify {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verify {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        match r {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
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

/// Accepts any certificate (`prefer`, `require` without a root certificate), still checking
/// the handshake's signatures so the session is bound to the key the server showed.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Turns a failed TLS handshake or negotiation (anywhere in `e`'s source chain) into a
/// one-line error naming what failed, or `None` when `e` is not about TLS.
pub(crate) fn describe_tls_failure(
    e: &(dyn std::error::Error + 'static),
    at: &str,
    mode: SslMode,
) -> Option<Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(rustls_failure(r, at));
        }
        // io::Error's `source` skips the error it wraps: look inside.
        if let Some(r) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(rustls_failure(r, at));
        }
        let text = err.to_string();
        if text.contains("server does not support TLS") || text.contains("SSLRequest rejected") {
            return Some(
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "PostgreSQL at {at} does not accept TLS, and sslmode={} demands it",
                        mode.as_str()
                    ),
                )
                .with_hint("turn ssl on in the server, or use sslmode=prefer or disable"),
            );
        }
        if let Some(r) = text.strip_prefix("TLS handshake failed: ") {
            return Some(rustls_text_failure(r, at));
        }
        cur = err.source();
    }
    None
}

fn rustls_failure(e: &rustls::Error, at: &str) -> Error {
    rustls_text_failure(&format!("{e} ({e:?})"), at)
}

/// The same for rustls's message as text (pgwire-replication passes it on as a string). A
/// refused certificate is fatal (as a refused password is); other handshake failures retry.
fn rustls_text_failure(text: &str, at: &str) -> Error {
    let refused = |msg: String, hint: &str| Error::new(ErrorKind::Auth, msg).with_hint(hint);
    if text.contains("NotValidForName") || text.contains("not valid for name") {
        refused(
            format!("the certificate of PostgreSQL at {at} does not name the host connected to"),
            "connect by a name the certificate lists, or use sslmode=verify-ca",
        )
    } else if text.contains("UnknownIssuer") {
        refused(
            format!("the certificate of PostgreSQL at {at} is not signed by a CA in sslrootcert"),
            "give sslrootcert the CA that signed the server's certificate",
        )
    } else if text.contains("invalid peer certificate") {
        let first = text.split(" (").next().unwrap_or(text);
        refused(
            format!("the certificate of PostgreSQL at {at} was refused: {first}"),
            "check the server's certificate and sslrootcert",
        )
    } else {
        let first = text.split(" (").next().unwrap_or(text);
        Error::new(
            ErrorKind::Connection,
            format!("TLS handshake with PostgreSQL at {at} failed: {first}"),
        )
        .with_hint("check the server's TLS settings, and sslcert/sslkey")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Result<PgTls, ParamError> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PgTls::from_params(|k| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_and_modes_follow_libpq() {
        assert_eq!(params(&[]).unwrap().mode, SslMode::Prefer);
        let t = params(&[("sslrootcert", "system")]).unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        let e = params(&[("sslrootcert", "system"), ("sslmode", "require")]).unwrap_err();
        assert!(e.1.contains("weak sslmode"), "{e:?}");
        let e = params(&[("sslmode", "verify_full")]).unwrap_err();
        assert_eq!(e.0, "sslmode");
        let t = params(&[("sslmode", "require"), ("sslrootcert", "/ca.pem")]).unwrap();
        assert_eq!(t.effective_mode(), SslMode::VerifyCa);
        let e = params(&[("sslcert", "/c.pem")]).unwrap_err();
        assert_eq!(e.0, "sslkey");
        for m in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            assert_eq!(SslMode::parse(m).unwrap().as_str(), m);
        }
    }

    #[test]
    fn unreadable_or_wrong_files_are_named() {
        let t = params(&[
            ("sslmode", "verify-full"),
            ("sslrootcert", "/nonexistent/ca.pem"),
        ])
        .unwrap();
        let e = t
            .client_config(SslMode::VerifyFull)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = std::env::temp_dir().join(format!("augur-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let t = PgTls {
            mode: SslMode::VerifyCa,
            root_cert: RootCert::File(junk.clone()),
            ..PgTls::default()
        };
        let e = t.client_config(SslMode::VerifyCa).unwrap_err().to_string();
        assert!(e.contains("junk.pem"), "{e}");
        let key = dir.join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = t.load_key(&key).unwrap_err().to_string();
        assert!(e.contains("encrypted"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_encrypted_pkcs8_key_is_read_with_sslpassword() {
        use pkcs8::der::pem::LineEnding;
        let dir = std::env::temp_dir().join(format!("augur-enc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // An EC P-256 key (PKCS#8 DER), encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC).
        let der = rcgen::KeyPair::generate().unwrap().serialize_der();
        let info = pkcs8::PrivateKeyInfo::try_from(&der[..]).unwrap();
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            2048,
            b"saltsalt",
            b"0123456789abcdef",
        )
        .unwrap();
        let encrypted = info.encrypt_with_params(params, "s3cret").unwrap();
        let key = dir.join("key.pem");
        std::fs::write(
            &key,
            encrypted
                .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
                .unwrap(),
        )
        .unwrap();
        let mut t = PgTls {
            key: Some(key.clone()),
            cert: Some(key.clone()),
            ..PgTls::default()
        };
        let e = t.load_key(&key).unwrap_err().to_string();
        assert!(e.contains("no sslpassword"), "{e}");
        t.key_password = Some(Secret::new("wrong"));
        let e = t.load_key(&key).unwrap_err().to_string();
        assert!(
            e.contains("does not decrypt") && !e.contains("wrong"),
            "{e}"
        );
        t.key_password = Some(Secret::new("s3cret"));
        let PrivateKeyDer::Pkcs8(got) = t.load_key(&key).unwrap() else {
            panic!("PKCS#8")
        };
        assert_eq!(got.secret_pkcs8_der(), &der[..]);
        let copy = t.replication_key(&key).unwrap();
        assert!(copy.starts_with("/proc/self/fd/"), "{copy:?}");
        let reread = PrivateKeyDer::from_pem_file(&copy).unwrap();
        assert_eq!(reread.secret_der(), &der[..]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_root_certificate_for_a_verifying_mode_says_what_to_do() {
        let t = PgTls {
            mode: SslMode::VerifyFull,
            ..PgTls::default()
        };
        // Only where HOME has no ~/.postgresql/root.crt (libpq's default root certificate).
        if t.root_path().is_none() {
            let e = t.client_config(SslMode::VerifyFull).unwrap_err();
            assert!(e.hint().unwrap().contains("sslrootcert=system"), "{e}");
        }
    }
}
