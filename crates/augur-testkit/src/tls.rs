//! Certificates made at test time (rcgen): a CA, server certificates for chosen names, and
//! client certificates for chosen common names, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, as PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// Its unencrypted PKCS#8 private key.
    pub key: String,
}

impl Pem {
    /// The key encrypted with `password` (PKCS#8, PBES2: PBKDF2-SHA256 and AES-256-CBC), as
    /// `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it.
    pub fn encrypted_key(&self, password: &str) -> String {
        use pkcs8::der::pem::LineEnding;
        let (_, der) = pkcs8::der::pem::decode_vec(self.key.as_bytes()).expect("PEM key");
        let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).expect("PKCS#8 key");
        let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(
            4096,
            b"augur-test-salt",
            b"augur-test-iv-16",
        )
        .expect("PBES2 parameters");
        let encrypted = info.encrypt_with_params(params, password).expect("encrypt");
        encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .expect("PEM")
            .to_string()
    }

    /// Writes `<name>.crt` and `<name>.key` into `dir` and returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, &self.cert).expect("write certificate");
        std::fs::write(&k, &self.key).expect("write key");
        (c, k)
    }
}

/// A test certificate authority.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestCa {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = p.self_signed(&key).expect("self-signed CA");
        TestCa { cert, key }
    }

    /// The CA certificate (PEM), for a trust store.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate to `dir/<name>` and returns its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, self.cert_pem()).expect("write CA");
        p
    }

    /// A server certificate valid for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Pem {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names).expect("server params");
        p.distinguished_name
            .push(DnType::CommonName, "augur test server");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(p)
    }

    /// A client certificate whose common name is `cn` (PostgreSQL's `cert` method maps it to
    /// the user name).
    pub fn client(&self, cn: &str) -> Pem {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("client params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(p)
    }

    fn sign(&self, p: CertificateParams) -> Pem {
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign");
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A rustls server config with `server`'s certificate; with `client_ca`, clients must show a
/// certificate it signed (mutual TLS).
pub(crate) fn server_config(
    server: &Pem,
    client_ca: Option<&TestCa>,
) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(server.cert.as_bytes())
            .collect::<Result<_, _>>()
            .expect("server certificate");
    let key = PrivateKeyDer::from_pem_slice(server.key.as_bytes()).expect("server key");
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let ca_der = CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).expect("CA");
            roots.add(ca_der).expect("CA root");
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .expect("client verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    std::sync::Arc::new(
        builder
            .with_single_cert(certs, key)
            .expect("certificate and key"),
    )
}
