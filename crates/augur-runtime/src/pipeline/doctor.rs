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
    match src.connect.connect_sql().await {
        Ok(client) => {
            let at = format!("connected to {}", src.connect.display());
            out.push(check("source database", Outcome::Pass, at, ""));
            source_checks(&client, cfg, &mut out).await;
        }
        Err(e) => out.push(from_error("source database", &e)),
    }
    out.push(model_check(cfg));
    match cfg.sink.connect.connect_sql().await {
        Ok(sink) => {
            let at = format!("connected to {}", cfg.sink.connect.display());
            out.push(check("output database", Outcome::Pass, at, ""));
            if matches!(cfg.output, super::config::OutputMode::Table(_)) {
                out.push(create_in_schema(&sink, cfg).await);
            }
        }
        Err(e) => out.push(from_error("output database", &e)),
    }
    if let Some(b) = &cfg.kafka {
        out.push(kafka_check(b, &cfg.kafka_client).await);
    }
    out
}

/// What the source server and user must allow, in the order a start needs it.
async fn source_checks(client: &tokio_postgres::Client, cfg: &RunConfig, out: &mut Vec<Check>) {
    let src = &cfg.capture.source;
    out.push(wal_level(client).await);
    let slot = client
        .query_opt("SELECT active, wal_status, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 FROM pg_replication_slots WHERE slot_name = $1", &[&src.slot_name])
        .await
        .ok()
        .flatten();
    out.extend(limits(client, slot.is_some()).await);
    out.push(replication_privilege(client, &src.connect.user).await);
    match tables(client, cfg).await {
        Ok(checks) => out.extend(checks),
        Err(e) => out.push(from_error("tables", &e)),
    }
    out.push(publication(client, cfg).await);
    out.push(slot_check(slot, &src.slot_name));
}

async fn setting(client: &tokio_postgres::Client, name: &str) -> Option<String> {
    client
        .query_one("SELECT current_setting($1)", &[&name])
        .await
        .ok()
        .map(|r| r.get::<_, String>(0))
}

async fn wal_level(client: &tokio_postgres::Client) -> Check {
    match setting(client, "wal_level").await.as_deref() {
        Some("logical") => check("wal_level", Outcome::Pass, "logical", ""),
        Some(other) => check(
            "wal_level",
            Outcome::Fail,
            format!("'{other}'; logical replication needs 'logical'"),
            "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
        ),
        None => check("wal_level", Outcome::Fail, "cannot read it", ""),
    }
}

/// Room for one more slot (unless ours exists) and at least one WAL sender.
async fn limits(client: &tokio_postgres::Client, slot_exists: bool) -> [Check; 2] {
    let number = |v: Option<String>| v.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let slots_max = number(setting(client, "max_replication_slots").await);
    let senders_max = number(setting(client, "max_wal_senders").await);
    let used: i64 = client
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0);
    let in_use = format!("{used} of {slots_max} in use");
    let slots = if slots_max == 0 || (!slot_exists && used >= slots_max) {
        let fix = "drop unused slots or raise max_replication_slots and restart PostgreSQL";
        check("max_replication_slots", Outcome::Fail, in_use, fix)
    } else {
        check("max_replication_slots", Outcome::Pass, in_use, "")
    };
    let senders = if senders_max == 0 {
        let fix = "set max_wal_senders to at least 1 and restart PostgreSQL";
        check("max_wal_senders", Outcome::Fail, "0", fix)
    } else {
        check(
            "max_wal_senders",
            Outcome::Pass,
            senders_max.to_string(),
            "",
        )
    };
    [slots, senders]
}

async fn replication_privilege(client: &tokio_postgres::Client, user: &str) -> Check {
    let has = client
        .query_one(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map(|r| r.get::<_, bool>(0));
    match has {
        Ok(true) => check(
            "REPLICATION privilege",
            Outcome::Pass,
            format!("user \"{user}\" has it"),
            "",
        ),
        _ => check(
            "REPLICATION privilege",
            Outcome::Fail,
            format!("user \"{user}\" lacks it"),
            format!("ALTER ROLE \"{user}\" REPLICATION;"),
        ),
    }
}

/// The publication exists, or the user may create it (CREATE on the database).
async fn publication(client: &tokio_postgres::Client, cfg: &RunConfig) -> Check {
    let src = &cfg.capture.source;
    let name = &src.publication_name;
    let found = client
        .query_opt(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[name],
        )
        .await;
    match found {
        Ok(Some(_)) => check(
            "publication",
            Outcome::Pass,
            format!("\"{name}\" exists"),
            "",
        ),
        Ok(None) => {
            let may = client
                .query_one(
                    "SELECT has_database_privilege(current_user, current_database(), 'CREATE')",
                    &[],
                )
                .await
                .map(|r| r.get::<_, bool>(0))
                .unwrap_or(false);
            if may {
                let detail = format!("\"{name}\" will be created at start");
                return check("publication", Outcome::Pass, detail, "");
            }
            let user = &src.connect.user;
            check(
                "publication",
                Outcome::Fail,
                format!(
                    "\"{name}\" does not exist, and user \"{user}\" may not create it (no CREATE on the database)"
                ),
                format!(
                    "GRANT CREATE ON DATABASE \"{}\" TO \"{user}\"; or create the publication as its owner",
                    src.connect.dbname
                ),
            )
        }
        Err(e) => check("publication", Outcome::Fail, e.to_string(), ""),
    }
}

/// The slot's state: absent (created at start), lost WAL, in use elsewhere, or its lag.
fn slot_check(row: Option<tokio_postgres::Row>, slot: &str) -> Check {
    let Some(row) = row else {
        let detail = format!("\"{slot}\" will be created at start (with a snapshot)");
        return check("replication slot", Outcome::Pass, detail, "");
    };
    let active: bool = row.get(0);
    let wal: Option<String> = row.get(1);
    let lag = row.get::<_, Option<i64>>(2).unwrap_or(0);
    if wal.as_deref() == Some("lost") {
        return check(
            "replication slot",
            Outcome::Fail,
            format!("\"{slot}\" lost WAL it needs"),
            "drop the slot and start with source.snapshot = \"when_needed\"",
        );
    }
    if active {
        return check(
            "replication slot",
            Outcome::Warn,
            format!("\"{slot}\" is in use by another session (lag {lag} bytes)"),
            "stop the other client, or give this pipeline its own source.slot",
        );
    }
    let detail = format!("\"{slot}\" exists, lag {lag} bytes");
    if lag > 1 << 30 {
        let fix = "a large lag: the pipeline will catch up from here once started";
        check("replication slot", Outcome::Warn, detail, fix)
    } else {
        check("replication slot", Outcome::Pass, detail, "")
    }
}

fn model_check(cfg: &RunConfig) -> Check {
    match cfg.model.predictor() {
        Ok(p) => {
            let inputs: Vec<String> = p.input_fields().iter().map(|f| f.name.clone()).collect();
            let detail = format!("{} loads (inputs: {})", p.model_tag(), inputs.join(", "));
            check("model", Outcome::Pass, detail, "")
        }
        Err(e) => from_error("model", &e),
    }
}

async fn kafka_check(bootstrap: &str, client: &augur_kafka::security::ClientSettings) -> Check {
    let mut settings = augur_kafka::producer::ProducerSettings::new(bootstrap);
    settings.overrides = client.for_producer();
    let answered = match augur_kafka::producer::Producer::new(settings) {
        Ok(p) => p.healthcheck(Duration::from_secs(5)).await,
        Err(e) => Err(e),
    };
    match answered {
        Ok(()) => check(
            "Kafka",
            Outcome::Pass,
            format!("a broker answers at {bootstrap}"),
            "",
        ),
        Err(e) => from_error("Kafka", &e),
    }
}

/// Each captured table: a primary key, a column for every model input, and the write-back
/// column when predictions go into the source table.
async fn tables(client: &tokio_postgres::Client, cfg: &RunConfig) -> Result<Vec<Check>, Error> {
    let rows = client
        .query(
            "SELECT n.nspname::text, c.relname::text, \
                    array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
                    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|e| augur_postgres::conn::sql_error("listing tables", e))?;
    let model = cfg.model.predictor().ok();
    let mut out = Vec::new();
    let mut found = 0;
    for r in rows {
        let (schema, table): (String, String) = (r.get(0), r.get(1));
        if cfg.capture.source.tables.includes(&schema, &table) {
            found += 1;
            let cols: Vec<String> = r.get(2);
            let qualified = format!("{schema}.{table}");
            out.extend(table_checks(
                cfg,
                model.as_ref(),
                &qualified,
                &cols,
                r.get(3),
            ));
        }
    }
    if found == 0 {
        out.push(check(
            "tables",
            Outcome::Fail,
            "no table matches source.tables",
            "create the table, or fix source.tables (schema.table regular expressions)",
        ));
    }
    Ok(out)
}

fn table_checks(
    cfg: &RunConfig,
    model: Option<&crate::predict::Predictor>,
    qualified: &str,
    cols: &[String],
    has_pk: bool,
) -> Vec<Check> {
    let name = format!("table {qualified}");
    let mut out = Vec::new();
    if !has_pk {
        out.push(check(
            &name,
            Outcome::Warn,
            "has no primary key: predictions are appended, deletes cannot follow",
            format!("ALTER TABLE {qualified} ADD PRIMARY KEY (…);"),
        ));
    }
    if let Some(p) = model {
        out.push(model_inputs(p, &name, cols));
    }
    let column = &cfg.model.output_field;
    if writes_back(cfg) && !cols.iter().any(|c| c.eq_ignore_ascii_case(column)) {
        out.push(check(
            &name,
            Outcome::Fail,
            format!("no column \"{column}\" to write predictions into"),
            format!("ALTER TABLE {qualified} ADD COLUMN {column} double precision;"),
        ));
    }
    out
}

/// Every model input finds a column (by name, or through `model.mapping`).
fn model_inputs(p: &crate::predict::Predictor, name: &str, cols: &[String]) -> Check {
    use augur_core::connect::{Field, Schema, SchemaType};
    let fields: Vec<Field> = cols
        .iter()
        .map(|c| Field::new(c.clone(), Schema::new(SchemaType::String)))
        .collect();
    let map = p.feature_map(&fields);
    let missing: Vec<String> = p
        .input_fields()
        .iter()
        .zip(&map.inputs)
        .filter(|(_, i)| i.is_none())
        .map(|(f, _)| f.name.clone())
        .collect();
    if missing.is_empty() {
        let detail = format!("{} columns, all model inputs present", cols.len());
        return check(name, Outcome::Pass, detail, "");
    }
    check(
        name,
        Outcome::Fail,
        format!("no column for model input(s) {}", missing.join(", ")),
        "add the columns, or map them with model.mapping = \"input=column,…\"",
    )
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
    use augur_core::offset::FileOffsetStore;
    let name = "offsets file";
    let fix = "pass --offsets with a writable path (or set AUGUR_HOME)";
    if path.exists()
        && let Err(e) = FileOffsetStore::new(path).load_blocking()
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
