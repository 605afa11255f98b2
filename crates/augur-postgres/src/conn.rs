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

    /// `url` with its password replaced by `****`, for messages.
    pub fn redact_url(url: &str) -> String {
        let Some((scheme, rest)) = url.split_once("://") else {
            return match url.rsplit_once('@') {
                Some((_, host)) => format!("****@{host}"),
                None => url.to_string(),
            };
        };
        match rest.rsplit_once('@') {
            Some((auth, host)) => match auth.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:****@{host}"),
                None => url.to_string(),
            },
            None => url.to_string(),
        }
    }

    /// Parses a `postgres://user:password@host:port/dbname` URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let bad = || {
            Error::new(ErrorKind::Config, "invalid PostgreSQL URL")
                .with_hint("use postgres://user:password@host:port/dbname")
        };
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(bad)?;
        let (auth, hostpart) = rest.rsplit_once('@').unwrap_or(("", rest));
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, "postgres"));
        let (db, query) = db.split_once('?').unwrap_or((db, ""));
        let tls_demanded = query.split('&').any(|kv| {
            matches!(
                kv,
                "sslmode=require" | "sslmode=verify-ca" | "sslmode=verify-full"
            )
        });
        if tls_demanded {
            return Err(Error::new(
                ErrorKind::Config,
                "augur does not speak TLS to PostgreSQL yet",
            )
            .with_hint("connect without TLS: drop sslmode or use sslmode=disable or prefer"));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (hostport, 5432),
        };
        let user = if user.is_empty() { "postgres" } else { user };
        Ok(PgConnect::new(
            &percent_decode(host),
            port,
            &percent_decode(user),
            &percent_decode(password),
            &percent_decode(db),
        ))
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

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
    }

    #[test]
    fn a_url_that_demands_tls_is_refused() {
        let e = PgConnect::from_url("postgres://u@h/cars?sslmode=require").unwrap_err();
        assert!(e.to_string().contains("TLS"), "{e}");
        let c = PgConnect::from_url("postgres://u@h/cars?sslmode=disable").unwrap();
        assert_eq!(c.dbname, "cars");
    }
}
