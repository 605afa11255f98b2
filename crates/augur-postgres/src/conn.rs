//! Connection settings shared by the SQL connection (tokio-postgres) and the replication
//! connection (pgwire-replication), and the mapping of connection failures to error kinds.

use std::time::Duration;

use augur_core::secret::Secret;
use augur_core::{Error, ErrorKind};

use crate::tls::{PgTls, SslMode, describe_tls_failure};

/// libpq's TLS parameters, read by augur rather than by tokio-postgres (which knows only
/// `sslmode` disable/prefer/require). `sslsni` is accepted and has no effect (SNI is always
/// sent for host names, never for addresses).
const TLS_PARAMS: [&str; 6] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslsni",
];

/// Where and as whom to connect (`database.hostname`, `.port`, `.user`, `.password`,
/// `.dbname`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConnect {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password.
    pub password: Secret,
    /// Database name.
    pub dbname: String,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// TLS (`sslmode` and its files); libpq's default `prefer`.
    pub tls: PgTls,
}

impl PgConnect {
    /// Settings for `user@host:port/dbname`.
    pub fn new(host: &str, port: u16, user: &str, password: &str, dbname: &str) -> Self {
        PgConnect {
            host: host.to_string(),
            port,
            user: user.to_string(),
            password: Secret::new(password),
            dbname: dbname.to_string(),
            application_name: "augur".into(),
            connect_timeout: Duration::from_secs(10),
            tls: PgTls::default(),
        }
    }

    /// The same settings with `tls`.
    pub fn with_tls(mut self, tls: PgTls) -> Self {
        self.tls = tls;
        self
    }

    /// `url` with its passwords (userinfo, `password=`, `sslpassword=`) replaced by `****`,
    /// for messages.
    pub fn redact_url(url: &str) -> String {
        augur_core::secret::mask_url(url, "****")
    }

    /// Parses a libpq connection string — a `postgres://user:password@host:port/dbname?…`
    /// URL or `host=… user=…` pairs — with tokio-postgres's parser (libpq's rules: percent
    /// decoding, unknown parameters refused). Unset parts default to user and database
    /// `postgres` on `localhost:5432`.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = |why: String| {
            Error::new(ErrorKind::Config, format!("invalid PostgreSQL URL: {why}"))
                .with_hint("use postgres://user:password@host:port/dbname")
        };
        if !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
            && !url.contains('=')
        {
            return Err(bad("expected postgres:// or postgresql://".into()));
        }
        let (rest, tls_params) = split_tls_params(url);
        let parsed = match rest.parse::<tokio_postgres::Config>() {
            Ok(c) => c,
            // tokio-postgres names the option, never the value: safe to show.
            Err(e) => {
                let why = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
                return Err(bad(why));
            }
        };
        let tls = PgTls::from_params(|k| {
            tls_params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        })
        .map_err(|(k, why)| bad(format!("{k}: {why}")))?;
        let host = match parsed.get_hosts() {
            [] => "localhost".to_string(),
            [tokio_postgres::config::Host::Tcp(h)] => h.clone(),
            [_] => {
                return Err(bad(
                    "Unix-domain sockets are not supported: give a host name".into(),
                ));
            }
            _ => return Err(bad("several hosts are not supported: give one".into())),
        };
        let port = match parsed.get_ports() {
            [] => 5432,
            [p] => *p,
            _ => return Err(bad("several ports are not supported: give one".into())),
        };
        let password = parsed
            .get_password()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let mut c = PgConnect::new(
            &host,
            port,
            parsed.get_user().unwrap_or("postgres"),
            &password,
            parsed.get_dbname().unwrap_or("postgres"),
        );
        if let Some(name) = parsed.get_application_name() {
            c.application_name = name.to_string();
        }
        if let Some(t) = parsed.get_connect_timeout() {
            c.connect_timeout = *t;
        }
        Ok(c.with_tls(tls))
    }

    /// The same server, another database.
    pub fn with_dbname(&self, dbname: &str) -> Self {
        PgConnect {
            dbname: dbname.to_string(),
            ..self.clone()
        }
    }

    /// `host:port/dbname` for messages (never the password).
    pub fn display(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.dbname)
    }

    /// Settings for a tokio-postgres SQL connection.
    pub fn sql_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(self.password.expose())
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            .options("-c datestyle=ISO,MDY -c timezone=UTC -c intervalstyle=iso_8601 -c bytea_output=hex -c extra_float_digits=1");
        c
    }

    /// Opens a SQL connection, driving it on a background task. TLS as `sslmode` says;
    /// `allow` tries plain first and TLS when the server refuses it.
    pub async fn connect_sql(&self) -> Result<tokio_postgres::Client, Error> {
        let mode = self.tls.effective_mode();
        let first = if mode == SslMode::Allow {
            SslMode::Disable
        } else {
            mode
        };
        match self.open_sql(first).await? {
            Err((_, e)) if mode == SslMode::Allow && refuses_plain(&e) => {
                self.open_sql(SslMode::Require).await?
            }
            other => other,
        }
        .map_err(|(mode, e)| connect_error(self, mode, e))
    }

    /// The mode a connection ends up in: for `allow`, `disable` when the server takes a plain
    /// connection and `require` when it refuses one (found by trying); else the mode itself.
    pub async fn settled_mode(&self) -> Result<SslMode, Error> {
        let mode = self.tls.effective_mode();
        if mode != SslMode::Allow {
            return Ok(mode);
        }
        Ok(match self.open_sql(SslMode::Disable).await? {
            Err((_, e)) if refuses_plain(&e) => SslMode::Require,
            _ => SslMode::Disable,
        })
    }

    /// One connection attempt in `mode` (its certificate files read first: a bad file is the
    /// outer error).
    async fn open_sql(&self, mode: SslMode) -> Result<SqlAttempt, Error> {
        use tokio_postgres::config::SslMode as TpMode;
        let mut config = self.sql_config();
        if mode == SslMode::Disable {
            config.ssl_mode(TpMode::Disable);
            return Ok(match config.connect(tokio_postgres::NoTls).await {
                Ok((client, conn)) => Ok(drive(client, conn)),
                Err(e) => Err((mode, e)),
            });
        }
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.tls.client_config(mode)?);
        config.ssl_mode(if mode == SslMode::Prefer {
            TpMode::Prefer
        } else {
            TpMode::Require
        });
        Ok(match config.connect(tls).await {
            Ok((client, conn)) => Ok(drive(client, conn)),
            Err(e) => Err((mode, e)),
        })
    }
}

type SqlAttempt = Result<tokio_postgres::Client, (SslMode, tokio_postgres::Error)>;

/// Runs `conn` (the socket side of `client`) on a background task.
fn drive<C>(client: tokio_postgres::Client, conn: C) -> tokio_postgres::Client
where
    C: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "sql connection ended");
        }
    });
    client
}

/// `url` without libpq's TLS parameters, and those parameters (values percent-decoded from a
/// URL; unquoted from `key='value'` pairs).
fn split_tls_params(url: &str) -> (String, Vec<(String, String)>) {
    if url.contains("://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_string(), Vec::new());
        };
        let (mut keep, mut tls) = (Vec::new(), Vec::new());
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if TLS_PARAMS.contains(&k) {
                let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
                tls.push((k.to_string(), v.into_owned()));
            } else {
                keep.push(pair);
            }
        }
        let rest = match keep.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", keep.join("&")),
        };
        return (rest, tls);
    }
    let (mut keep, mut tls) = (Vec::new(), Vec::new());
    for (k, v, raw) in kv_pairs(url) {
        if TLS_PARAMS.contains(&k.as_str()) {
            tls.push((k, v));
        } else {
            keep.push(raw);
        }
    }
    (keep.join(" "), tls)
}

/// libpq's `key = value` pairs: `(key, value, the pair as written)`. A value is a run of
/// non-blanks or a single-quoted string with `\'` and `\\` escapes.
fn kv_pairs(s: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    let skip_blank = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while it.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_blank(&mut chars);
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        skip_blank(&mut chars);
        chars.next_if(|(_, c)| *c == '=');
        skip_blank(&mut chars);
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, c)| c)),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                value.push(c);
            }
        }
        let end = chars.peek().map_or(s.len(), |&(i, _)| i);
        out.push((key, value, s[start..end].trim_end().to_string()));
    }
    out
}

/// Whether the server refused a plain connection because its `pg_hba.conf` admits this
/// client only over TLS (`hostssl`).
fn refuses_plain(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code().code() == "28000" && db.message().contains("no encryption"))
}

/// Maps a failed SQL connection attempt (made in `mode`) to an error with a kind and a fix.
pub fn connect_error(c: &PgConnect, mode: SslMode, e: tokio_postgres::Error) -> Error {
    if let Some(tls) = describe_tls_failure(&e, &c.display(), mode) {
        return tls;
    }
    if let Some(db) = e.as_db_error() {
        if let Some(auth) = auth_refusal(c, db.code().code(), db.message()) {
            return auth;
        }
        let code = db.code().code();
        return match code {
            // invalid_password, invalid_authorization_specification
            "28P01" | "28000" => Error::new(
                ErrorKind::Auth,
                format!(
                    "password authentication failed for user \"{}\" at {}",
                    c.user,
                    c.display()
                ),
            )
            .with_hint("check database.user and database.password"),
            // invalid_catalog_name
            "3D000" => Error::new(
                ErrorKind::Config,
                format!(
                    "database \"{}\" does not exist at {}:{}",
                    c.dbname, c.host, c.port
                ),
            )
            .with_hint("check database.dbname"),
            _ => Error::new(
                ErrorKind::Connection,
                format!(
                    "cannot connect to PostgreSQL at {}: {}",
                    c.display(),
                    db.message()
                ),
            ),
        };
    }
    Error::new(
        ErrorKind::Connection,
        format!("cannot connect to PostgreSQL at {}", c.display()),
    )
    .with_source(e)
    .with_hint("check that the server is running and database.hostname/database.port are right")
}

/// The server's refusals that are about TLS or `pg_hba.conf` rather than the password
/// (SQLSTATE 28000), for both connections: `message` is the server's text.
pub(crate) fn auth_refusal(c: &PgConnect, code: &str, message: &str) -> Option<Error> {
    if code != "28000" {
        return None;
    }
    let at = c.display();
    let (msg, hint) = if message.contains("no encryption") {
        (
            format!(
                "PostgreSQL at {at} accepts user \"{}\" only over TLS (pg_hba.conf has no entry for unencrypted connections)",
                c.user
            ),
            "set sslmode=require (or verify-ca/verify-full with sslrootcert)",
        )
    } else if message.contains("certificate") {
        (
            format!("PostgreSQL at {at} refused the client certificate: {message}"),
            "give sslcert/sslkey of a certificate signed by the server's ssl_ca_file, whose CN is the user name",
        )
    } else if message.contains("pg_hba.conf") {
        (
            format!("PostgreSQL at {at} refused the connection: {message}"),
            "add a pg_hba.conf entry for this user, database and address",
        )
    } else {
        return None;
    };
    Some(Error::new(ErrorKind::Auth, msg).with_hint(hint))
}

/// Maps a SQL error during setup or capture to an error (server text stays in the cause).
pub fn sql_error(what: &str, e: tokio_postgres::Error) -> Error {
    // Shutdown, restart, a terminated backend, too many connections: the connection went away.
    let kind = match e.as_db_error().map(|db| &db.code().code()[..2]) {
        _ if e.is_closed() => ErrorKind::Connection,
        None | Some("08" | "53" | "57") => ErrorKind::Connection,
        Some("28") => ErrorKind::Auth,
        Some(_) => ErrorKind::SourceSetup,
    };
    let msg = match e.as_db_error() {
        Some(db) => format!("{what}: {}", db.message()),
        None => what.to_string(),
    };
    Error::new(kind, msg).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let c = PgConnect::from_url("postgres://u:p%40ss@127.0.0.1:5433/cars").unwrap();
        assert_eq!(
            (
                c.host.as_str(),
                c.port,
                c.user.as_str(),
                c.password.expose(),
                c.dbname.as_str()
            ),
            ("127.0.0.1", 5433, "u", "p@ss", "cars")
        );
        assert!(PgConnect::from_url("mysql://x").is_err());
        assert!(!format!("{c:?}").contains("p@ss"));
        let c =
            PgConnect::from_url("postgresql://db/?application_name=me&connect_timeout=3").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str(), c.dbname.as_str()),
            ("db", 5432, "postgres", "postgres")
        );
        assert_eq!(c.application_name, "me");
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
        let c = PgConnect::from_url("host=h port=6543 user=u password=secret dbname=d").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.password.expose()),
            ("h", 6543, "secret")
        );
    }

    #[test]
    fn a_bad_url_names_what_is_wrong_and_never_the_password() {
        for (url, says) in [
            ("postgres://u:hunter2@h:99999/d", "port"),
            ("postgres://u:hunter2@h/d?bogus=1", "bogus"),
            ("postgres://u:hunter2@h1,h2/d", "several hosts"),
            ("postgres://u:hunter2@%2Ftmp/d", "Unix-domain"),
        ] {
            let e = PgConnect::from_url(url).unwrap_err().full_message();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn tls_parameters_are_read_from_urls_and_key_value_strings() {
        use crate::tls::RootCert;
        let c = PgConnect::from_url(
            "postgres://u:pw@h/cars?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(c.tls.mode, SslMode::VerifyFull);
        assert_eq!(c.tls.root_cert, RootCert::File("/etc/ca.pem".into()));
        assert_eq!(
            (c.dbname.as_str(), c.application_name.as_str()),
            ("cars", "x")
        );
        let c = PgConnect::from_url(
            "host=h sslmode = require sslcert='/a b/c.pem' sslkey=/k.pem sslpassword='it\\'s' dbname=d",
        )
        .unwrap();
        assert_eq!(c.tls.mode, SslMode::Require);
        assert_eq!(
            c.tls.cert.as_deref(),
            Some(std::path::Path::new("/a b/c.pem"))
        );
        assert_eq!(c.tls.key_password.as_ref().unwrap().expose(), "it's");
        assert_eq!(c.dbname, "d");
        assert_eq!(
            PgConnect::from_url("postgres://h/d").unwrap().tls.mode,
            SslMode::Prefer
        );
        let e = PgConnect::from_url("postgres://u:hunter2@h/d?sslmode=bogus").unwrap_err();
        assert!(e.to_string().contains("sslmode"), "{e}");
        assert!(!e.full_message().contains("hunter2"));
        let e =
            PgConnect::from_url("postgres://h/d?sslrootcert=system&sslmode=prefer").unwrap_err();
        assert!(e.to_string().contains("weak sslmode"), "{e}");
    }

    #[test]
    fn a_refusal_about_tls_says_so() {
        let c = PgConnect::new("db", 5432, "u", "p", "cars");
        let e = auth_refusal(
            &c,
            "28000",
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"u\", database \"cars\", no encryption",
        )
        .unwrap();
        assert!(e.to_string().contains("only over TLS"), "{e}");
        assert!(e.hint().unwrap().contains("sslmode=require"));
        let e = auth_refusal(
            &c,
            "28000",
            "certificate authentication failed for user \"u\"",
        );
        assert!(e.unwrap().to_string().contains("client certificate"));
        assert!(auth_refusal(&c, "28P01", "password authentication failed").is_none());
    }
}
