//! `augur doctor`: checks everything `augur run` needs — server settings, privileges,
//! publication and slot state, tables and feature columns, the output, the model, the broker —
//! and says how to fix each problem.

use std::time::Duration;

use augur_core::Error;

use super::config::{OutputMode, RunConfig};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Fine.
    Pass,
    /// Works, but worth knowing.
    Warn,
    /// `augur run` would fail.
    Fail,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// The outcome.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// What to do about it (empty when nothing).
    pub fix: String,
}

fn check(name: &str, outcome: Outcome, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        outcome,
        detail: detail.into(),
        fix: fix.into(),
    }
}

fn from_error(name: &str, e: &Error) -> Check {
    check(
        name,
        Outcome::Fail,
        e.full_message(),
        e.hint().unwrap_or("").to_string(),
    )
}

/// Runs every check against `cfg`.
pub async fn run(cfg: &RunConfig) -> Vec<Check> {
    let mut out = Vec::new();
    let src = &cfg.capture.source;
    let client = match src.connect.connect_sql().await {
        Ok(c) => {
            out.push(check(
                "source database",
                Outcome::Pass,
                format!("connected to {}", src.connect.display()),
                "",
            ));
            Some(c)
        }
        Err(e) => {
            out.push(from_error("source database", &e));
            None
        }
    };
    if let Some(client) = &client {
        let setting = |name: &'static str| async move {
            client
                .query_one("SELECT current_setting($1)", &[&name])
                .await
                .ok()
                .map(|r| r.get::<_, String>(0))
        };
        match setting("wal_level").await.as_deref() {
            Some("logical") => out.push(check("wal_level", Outcome::Pass, "logical", "")),
            Some(other) => out.push(check(
                "wal_level",
                Outcome::Fail,
                format!("'{other}'; logical replication needs 'logical'"),
                "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
            )),
            None => out.push(check("wal_level", Outcome::Fail, "cannot read it", "")),
        }
        let slots_max: i64 = setting("max_replication_slots")
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let senders_max: i64 = setting("max_wal_senders")
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let used: i64 = client
            .query_one("SELECT count(*) FROM pg_replication_slots", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        let slot_exists = client
            .query_opt("SELECT active, wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1", &[&src.slot_name])
            .await
            .ok()
            .flatten();
        if slots_max == 0 || (slot_exists.is_none() && used >= slots_max) {
            out.push(check(
                "max_replication_slots",
                Outcome::Fail,
                format!("{used} of {slots_max} in use"),
                "drop unused slots or raise max_replication_slots and restart PostgreSQL",
            ));
        } else {
            out.push(check(
                "max_replication_slots",
                Outcome::Pass,
                format!("{used} of {slots_max} in use"),
                "",
            ));
        }
        if senders_max == 0 {
            out.push(check(
                "max_wal_senders",
                Outcome::Fail,
                "0",
                "set max_wal_senders to at least 1 and restart PostgreSQL",
            ));
        } else {
            out.push(check(
                "max_wal_senders",
                Outcome::Pass,
                senders_max.to_string(),
                "",
            ));
        }
        match client
            .query_one(
                "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
        {
            Ok(true) => out.push(check(
                "REPLICATION privilege",
                Outcome::Pass,
                format!("user \"{}\" has it", src.connect.user),
                "",
            )),
            _ => out.push(check(
                "REPLICATION privilege",
                Outcome::Fail,
                format!("user \"{}\" lacks it", src.connect.user),
                format!("ALTER ROLE \"{}\" REPLICATION;", src.connect.user),
            )),
        }
        match crate::pipeline::doctor_tables(client, cfg).await {
            Ok(checks) => out.extend(checks),
            Err(e) => out.push(from_error("tables", &e)),
        }
        match client
            .query_opt(
                "SELECT puballtables FROM pg_publication WHERE pubname = $1",
                &[&src.publication_name],
            )
            .await
        {
            Ok(Some(_)) => out.push(check(
                "publication",
                Outcome::Pass,
                format!("\"{}\" exists", src.publication_name),
                "",
            )),
            Ok(None) => {
                // CREATE PUBLICATION needs CREATE on the database.
                let may = client
                    .query_one(
                        "SELECT has_database_privilege(current_user, current_database(), 'CREATE')",
                        &[],
                    )
                    .await
                    .map(|r| r.get::<_, bool>(0))
                    .unwrap_or(false);
                out.push(if may {
                    check(
                        "publication",
                        Outcome::Pass,
                        format!("\"{}\" will be created at start", src.publication_name),
                        "",
                    )
                } else {
                    check(
                        "publication",
                        Outcome::Fail,
                        format!(
                            "\"{}\" does not exist, and user \"{}\" may not create it (no CREATE on the database)",
                            src.publication_name, src.connect.user
                        ),
                        format!(
                            "GRANT CREATE ON DATABASE \"{}\" TO \"{}\"; or create the publication as its owner",
                            src.connect.dbname, src.connect.user
                        ),
                    )
                });
            }
            Err(e) => out.push(check("publication", Outcome::Fail, e.to_string(), "")),
        }
        match slot_exists {
            None => out.push(check(
                "replication slot",
                Outcome::Pass,
                format!(
                    "\"{}\" will be created at start (with a snapshot)",
                    src.slot_name
                ),
                "",
            )),
            Some(row) => {
                let active: bool = row.get(0);
                let wal: Option<String> = row.get(1);
                let lag: Option<i64> = row.get(2);
                let lag = lag.unwrap_or(0);
                if wal.as_deref() == Some("lost") {
                    out.push(check(
                        "replication slot",
                        Outcome::Fail,
                        format!("\"{}\" lost WAL it needs", src.slot_name),
                        "drop the slot and start with source.snapshot = \"when_needed\"",
                    ));
                } else if active {
                    out.push(check(
                        "replication slot",
                        Outcome::Warn,
                        format!(
                            "\"{}\" is in use by another session (lag {lag} bytes)",
                            src.slot_name
                        ),
                        "stop the other client, or give this pipeline its own source.slot",
                    ));
                } else {
                    let outcome = if lag > 1 << 30 {
                        Outcome::Warn
                    } else {
                        Outcome::Pass
                    };
                    out.push(check(
                        "replication slot",
                        outcome,
                        format!("\"{}\" exists, lag {lag} bytes", src.slot_name),
                        if outcome == Outcome::Warn {
                            "a large lag: the pipeline will catch up from here once started"
                        } else {
                            ""
                        },
                    ));
                }
            }
        }
    }
    match cfg.model.predictor() {
        Ok(p) => {
            let inputs: Vec<String> = p.input_fields().iter().map(|f| f.name.clone()).collect();
            out.push(check(
                "model",
                Outcome::Pass,
                format!("{} loads (inputs: {})", p.model_tag(), inputs.join(", ")),
                "",
            ));
        }
        Err(e) => out.push(from_error("model", &e)),
    }
    match cfg.sink.connect.connect_sql().await {
        Ok(sink) => {
            out.push(check(
                "output database",
                Outcome::Pass,
                format!("connected to {}", cfg.sink.connect.display()),
                "",
            ));
            if matches!(cfg.output, super::config::OutputMode::Table(_)) {
                out.push(create_in_schema(&sink, cfg).await);
            }
        }
        Err(e) => out.push(from_error("output database", &e)),
    }
    if let Some(b) = &cfg.kafka {
        match augur_kafka::producer::Producer::new(augur_kafka::producer::ProducerSettings::new(b))
        {
            Ok(p) => match p.healthcheck(Duration::from_secs(5)).await {
                Ok(()) => out.push(check(
                    "Kafka",
                    Outcome::Pass,
                    format!("a broker answers at {b}"),
                    "",
                )),
                Err(e) => out.push(from_error("Kafka", &e)),
            },
            Err(e) => out.push(from_error("Kafka", &e)),
        }
    }
    out
}

/// What `augur run` needs on this machine: the metrics listener's address free, and an offsets
/// file it can read (when there is one) and write.
pub fn local(cfg: &RunConfig, offsets: &std::path::Path) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(addr) = cfg.listen {
        out.push(match std::net::TcpListener::bind(addr) {
            Ok(_) => check("http.listen", Outcome::Pass, format!("{addr} is free"), ""),
            Err(e) => check(
                "http.listen",
                Outcome::Fail,
                format!("cannot listen on {addr}: {e}"),
                "stop what listens there, or set http.listen to another address (\"\" turns it off)",
            ),
        });
    }
    out.push(offsets_file(offsets));
    out
}

/// The offsets file: an existing one must be readable offsets, and its folder writable.
fn offsets_file(path: &std::path::Path) -> Check {
    use augur_postgres::source::offset::{FileOffsetStore, OffsetStore};
    let name = "offsets file";
    let fix = "pass --offsets with a writable path (or set AUGUR_HOME)";
    if path.exists()
        && let Err(e) = FileOffsetStore::new(path).load()
    {
        return check(
            name,
            Outcome::Fail,
            e.full_message(),
            "move the file away or fix it",
        );
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let probe = dir.join(format!(".augur-doctor-{}", std::process::id()));
    let writable = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&probe, b""));
    let _ = std::fs::remove_file(&probe);
    match writable {
        Ok(()) => check(
            name,
            Outcome::Pass,
            format!("{} is writable", path.display()),
            "",
        ),
        Err(e) => check(
            name,
            Outcome::Fail,
            format!("cannot write in {}: {e}", dir.display()),
            fix,
        ),
    }
}

/// Whether the sink's user may create its tables (the predicted table, the dead-letter and
/// registry tables) in the sink's schema.
async fn create_in_schema(sink: &tokio_postgres::Client, cfg: &RunConfig) -> Check {
    let schema = &cfg.sink.schema;
    let may = sink
        .query_one(
            "SELECT has_schema_privilege(current_user, $1, 'CREATE')",
            &[schema],
        )
        .await
        .map(|r| r.get::<_, bool>(0));
    match may {
        Ok(true) => check(
            "CREATE on the output schema",
            Outcome::Pass,
            format!(
                "user \"{}\" may create tables in \"{schema}\"",
                cfg.sink.connect.user
            ),
            "",
        ),
        Ok(false) => check(
            "CREATE on the output schema",
            Outcome::Fail,
            format!(
                "user \"{}\" may not create tables in \"{schema}\" (the predicted and dead-letter tables)",
                cfg.sink.connect.user
            ),
            format!(
                "GRANT CREATE ON SCHEMA \"{schema}\" TO \"{}\";",
                cfg.sink.connect.user
            ),
        ),
        Err(e) => check(
            "CREATE on the output schema",
            Outcome::Fail,
            format!("cannot check it: {e}"),
            "",
        ),
    }
}

/// Whether `cfg` sends predictions into the source table.
pub fn writes_back(cfg: &RunConfig) -> bool {
    cfg.output == OutputMode::Column
}
