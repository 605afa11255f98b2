//! Connection settings shared by the SQL connection (tokio-postgres) and the replication
//! connection (pgwire-replication), and the mapping of connection failures to error kinds.

use std::time::Duration;

use augur_core::secret::Secret;
use augur_core::{Error, ErrorKind};

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
        }
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
        let parsed = match url.parse::<tokio_postgres::Config>() {
            Ok(c) => c,
            Err(_) if demands_tls(url) => return Err(tls_refused()),
            // tokio-postgres names the option, never the value: safe to show.
            Err(e) => {
                let why = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
                return Err(bad(why));
            }
        };
        if parsed.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(tls_refused());
        }
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
        Ok(c)
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

    /// Opens a SQL connection, driving it on a background task.
    pub async fn connect_sql(&self) -> Result<tokio_postgres::Client, Error> {
        let (client, conn) = self
            .sql_config()
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| connect_error(self, e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "sql connection ended");
            }
        });
        Ok(client)
    }
}

/// Whether `url` asks for an `sslmode` that needs TLS (`require`, `verify-ca`, `verify-full`).
fn demands_tls(url: &str) -> bool {
    [
        "sslmode=require",
        "sslmode=verify-ca",
        "sslmode=verify-full",
    ]
    .iter()
    .any(|m| url.contains(m))
}

fn tls_refused() -> Error {
    Error::new(
        ErrorKind::Config,
        "augur does not speak TLS to PostgreSQL yet",
    )
    .with_hint("connect without TLS: drop sslmode or use sslmode=disable or prefer")
}

/// Maps a failed SQL connection attempt to an error with a kind and a fix.
pub fn connect_error(c: &PgConnect, e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
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
    fn a_url_that_demands_tls_is_refused() {
        let e = PgConnect::from_url("postgres://u@h/cars?sslmode=require").unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let e = PgConnect::from_url("postgres://u@h/cars?sslmode=verify-full").unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let c = PgConnect::from_url("postgres://u@h/cars?sslmode=disable").unwrap();
        assert_eq!(c.dbname, "cars");
    }
}
