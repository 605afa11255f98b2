//! `--tls-cert` and `--tls-key`: HTTPS for augur's HTTP servers (`serve`, `connect`, `demo`).

use std::path::PathBuf;

use augur_core::{Error, ErrorKind};
use augur_http::ServerTls;

/// TLS flags of an HTTP server.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(
        long,
        env = "AUGUR_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "AUGUR_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The server's TLS config, when both files are given.
    pub(crate) fn load(&self) -> Result<Option<ServerTls>, Error> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => ServerTls::load(c, k).map(Some),
            (None, None) => Ok(None),
            _ => Err(Error::new(
                ErrorKind::Config,
                "--tls-cert and --tls-key go together",
            )),
        }
    }
}

/// A secret from `--…-file` (its first line) or the flag itself; the file wins.
pub(crate) fn secret_from(
    value: Option<&str>,
    file: Option<&PathBuf>,
) -> Result<Option<String>, Error> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).map_err(|e| {
            Error::new(ErrorKind::Config, format!("cannot read {}", f.display())).with_source(e)
        })?;
        let first = text.lines().next().unwrap_or("").trim().to_string();
        if first.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{} is empty", f.display()),
            ));
        }
        return Ok(Some(first));
    }
    Ok(value.map(str::to_string))
}
