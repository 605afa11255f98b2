//! Before capture starts: check that the server can do logical replication for this user and
//! these tables, make sure the publication exists as configured, and read the slot's state.
//! Every refusal is one line saying what is wrong, with the fix as a hint.

use augur_core::{Error, ErrorKind, Lsn};
use tokio_postgres::Client;

use super::config::{PublicationAutocreate, SourceConfig};
use crate::conn::sql_error;

/// A table the source captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedTableRef {
    /// Table OID.
    pub oid: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
}

impl CapturedTableRef {
    /// `"schema"."table"`, quoted for SQL.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// Quotes an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The signal table `signal.data.collection` names; a clear error when it does not exist.
pub async fn signal_table(
    client: &Client,
    sig: &super::config::SignalConfig,
) -> Result<CapturedTableRef, Error> {
    let row = client
        .query_opt(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&sig.schema, &sig.table],
        )
        .await
        .map_err(|e| sql_error("looking up the signal table", e))?;
    let Some(row) = row else {
        return Err(Error::new(
            ErrorKind::SourceSetup,
            format!("the signal table {}.{} (signal.data.collection) does not exist", sig.schema, sig.table),
        )
        .with_hint(format!(
            "create it: CREATE TABLE {} (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))",
            sig.quoted()
        )));
    };
    Ok(CapturedTableRef {
        oid: row.get(0),
        schema: sig.schema.clone(),
        name: sig.table.clone(),
    })
}

/// Checks `wal_level`, the user's REPLICATION privilege and that every table the include list
/// names exists; returns the captured tables in snapshot order: `table.include.list`'s, by
/// name within an entry (by name when there is no include list).
pub async fn preflight(
    client: &Client,
    cfg: &SourceConfig,
) -> Result<Vec<CapturedTableRef>, Error> {
    let wal_level: String = client
        .query_one("SELECT current_setting('wal_level')", &[])
        .await
        .map_err(|e| sql_error("reading wal_level", e))?
        .get(0);
    if wal_level != "logical" {
        return Err(Error::new(
            ErrorKind::SourceSetup,
            format!(
                "wal_level is '{wal_level}' on {}, but logical replication needs 'logical'",
                cfg.connect.display()
            ),
        )
        .with_hint("run ALTER SYSTEM SET wal_level = logical; and restart PostgreSQL"));
    }
    let row = client
        .query_one(
            "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| sql_error("reading the user's privileges", e))?;
    let (replication, superuser): (bool, bool) = (row.get(0), row.get(1));
    if !replication && !superuser {
        return Err(Error::new(
            ErrorKind::SourceSetup,
            format!(
                "user \"{}\" lacks the REPLICATION privilege needed for logical replication",
                cfg.connect.user
            ),
        )
        .with_hint(format!(
            "run ALTER ROLE {} REPLICATION; as a superuser",
            quote_ident(&cfg.connect.user)
        )));
    }
    let rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               AND n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition \
             ORDER BY 2, 3",
            &[],
        )
        .await
        .map_err(|e| sql_error("listing tables", e))?;
    let all: Vec<CapturedTableRef> = rows
        .iter()
        .map(|r| CapturedTableRef {
            oid: r.get(0),
            schema: r.get(1),
            name: r.get(2),
        })
        .collect();
    check_include_entries(&all, cfg)?;
    Ok(snapshot_order(all, cfg))
}

/// Every `table.include.list` entry must name at least one existing table.
fn check_include_entries(all: &[CapturedTableRef], cfg: &SourceConfig) -> Result<(), Error> {
    for pattern in &cfg.tables.table_include {
        if !all
            .iter()
            .any(|t| pattern.is_match(&format!("{}.{}", t.schema, t.name)))
        {
            let shown = pattern
                .as_str()
                .trim_start_matches("^(?:")
                .trim_end_matches(")$");
            return Err(Error::new(
                ErrorKind::SourceSetup,
                format!("table.include.list entry '{shown}' matches no table in database \"{}\"", cfg.connect.dbname),
            )
            .with_hint("create the table first, or fix table.include.list (entries are schema.table regular expressions)"));
        }
    }
    Ok(())
}

/// The captured tables of `all` (sorted by name) in snapshot order: `table.include.list`'s, as
/// Debezium's, by name within an entry.
fn snapshot_order(all: Vec<CapturedTableRef>, cfg: &SourceConfig) -> Vec<CapturedTableRef> {
    let mut captured: Vec<CapturedTableRef> = all
        .into_iter()
        .filter(|t| cfg.tables.includes(&t.schema, &t.name))
        .collect();
    captured.sort_by_key(|t| {
        let full = format!("{}.{}", t.schema, t.name);
        cfg.tables
            .table_include
            .iter()
            .position(|r| r.is_match(&full))
    });
    captured
}

/// Makes sure the publication exists as `publication.autocreate.mode` says.
pub async fn ensure_publication(
    client: &Client,
    cfg: &SourceConfig,
    tables: &[CapturedTableRef],
) -> Result<(), Error> {
    let name = &cfg.publication_name;
    let existing = client
        .query_opt(
            "SELECT puballtables FROM pg_publication WHERE pubname = $1",
            &[name],
        )
        .await
        .map_err(|e| sql_error("reading publications", e))?;
    match (cfg.publication_autocreate, existing) {
        (PublicationAutocreate::Disabled, None) => Err(Error::new(
            ErrorKind::SourceSetup,
            format!(
                "publication \"{name}\" does not exist and publication.autocreate.mode is disabled"
            ),
        )
        .with_hint(format!(
            "run CREATE PUBLICATION {} FOR TABLE <tables>;",
            quote_ident(name)
        ))),
        (PublicationAutocreate::Disabled, Some(_)) => Ok(()),
        (PublicationAutocreate::AllTables, None) => {
            tracing::info!(publication = %name, "creating publication for all tables");
            let sql = format!("CREATE PUBLICATION {} FOR ALL TABLES", quote_ident(name));
            create_publication(client, name, &sql).await
        }
        (PublicationAutocreate::AllTables, Some(_)) => Ok(()),
        (PublicationAutocreate::NoTables, None) => {
            let sql = format!("CREATE PUBLICATION {}", quote_ident(name));
            create_publication(client, name, &sql).await
        }
        (PublicationAutocreate::NoTables, Some(_)) => Ok(()),
        (PublicationAutocreate::Filtered, None) => {
            create_filtered_publication(client, name, tables).await
        }
        (PublicationAutocreate::Filtered, Some(row)) => {
            update_filtered_publication(client, name, tables, row.get(0)).await
        }
    }
}

/// Runs `sql`, which creates or alters publication `name`, hinting at the fix when the user
/// lacks the privilege.
async fn create_publication(client: &Client, name: &str, sql: &str) -> Result<(), Error> {
    let r = client.batch_execute(sql).await;
    // Another client (a second worker racing for the same connector) created it at the same
    // moment: the catalog's unique index refuses the second CREATE. Use theirs.
    if let Err(e) = &r
        && e.as_db_error()
            .is_some_and(|d| matches!(d.code().code(), "23505" | "42710"))
    {
        tracing::info!(publication = %name, "the publication was created by another client meanwhile; using it");
        return Ok(());
    }
    r.map_err(|e| {
        let denied = e.as_db_error().is_some_and(|d| d.code().code() == "42501");
        let err = sql_error(&format!("cannot create publication \"{name}\""), e);
        if denied {
            err.with_hint(format!(
                "create it as a superuser (CREATE PUBLICATION {} FOR ALL TABLES) or use publication.autocreate.mode=filtered as the tables' owner",
                quote_ident(name)
            ))
        } else {
            err
        }
    })
}

/// The captured tables, quoted and comma-separated for `FOR TABLE`/`SET TABLE`.
fn publication_table_list(tables: &[CapturedTableRef]) -> String {
    tables
        .iter()
        .map(CapturedTableRef::quoted)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates publication `name` for exactly the captured tables (refusing an empty one).
async fn create_filtered_publication(
    client: &Client,
    name: &str,
    tables: &[CapturedTableRef],
) -> Result<(), Error> {
    if tables.is_empty() {
        return Err(Error::new(
            ErrorKind::SourceSetup,
            "no table matches the include lists, so a filtered publication would be empty",
        )
        .with_hint("set table.include.list to existing tables"));
    }
    tracing::info!(publication = %name, tables = tables.len(), "creating filtered publication");
    let sql = format!(
        "CREATE PUBLICATION {} FOR TABLE {}",
        quote_ident(name),
        publication_table_list(tables)
    );
    create_publication(client, name, &sql).await
}

/// Sets the tables of the existing publication `name` to the captured ones when they differ
/// (unless it is `FOR ALL TABLES`, `all`, or no table is captured).
async fn update_filtered_publication(
    client: &Client,
    name: &str,
    tables: &[CapturedTableRef],
    all: bool,
) -> Result<(), Error> {
    let current = client
        .query("SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2", &[&name])
        .await
        .map_err(|e| sql_error("reading publication tables", e))?;
    let current: Vec<(String, String)> = current.iter().map(|r| (r.get(0), r.get(1))).collect();
    let wanted: Vec<(String, String)> = tables
        .iter()
        .map(|t| (t.schema.clone(), t.name.clone()))
        .collect();
    if !all && current != wanted && !tables.is_empty() {
        tracing::info!(publication = %name, tables = tables.len(), "updating filtered publication");
        let sql = format!(
            "ALTER PUBLICATION {} SET TABLE {}",
            quote_ident(name),
            publication_table_list(tables)
        );
        create_publication(client, name, &sql).await?;
    }
    Ok(())
}

/// A replication slot's state (`pg_replication_slots`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    /// A session is streaming from it.
    pub active: bool,
    /// That session's backend PID.
    pub active_pid: Option<i32>,
    /// Output plugin.
    pub plugin: Option<String>,
    /// Database.
    pub database: Option<String>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// Where the consumer confirmed.
    pub confirmed_flush: Option<Lsn>,
}

/// The state of slot `name`, or `None` if it does not exist.
pub async fn slot_state(client: &Client, name: &str) -> Result<Option<SlotState>, Error> {
    let row = client
        .query_opt(
            "SELECT active, active_pid, plugin::text, database::text, wal_status, confirmed_flush_lsn::text \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&name],
        )
        .await
        .map_err(|e| sql_error("reading replication slots", e))?;
    Ok(row.map(|r| SlotState {
        active: r.get(0),
        active_pid: r.get(1),
        plugin: r.get(2),
        database: r.get(3),
        wal_status: r.get(4),
        confirmed_flush: r.get::<_, Option<String>>(5).and_then(|s| s.parse().ok()),
    }))
}

/// Checks that slot `name` can be used by this source: right plugin and database, and not held
/// by another session (waiting `slot.retry.delay.ms` up to `slot.max.retries` times, since a
/// just-killed predecessor's walsender may take a moment to exit).
pub async fn check_slot(client: &Client, cfg: &SourceConfig) -> Result<Option<SlotState>, Error> {
    let mut attempt = 0;
    loop {
        let Some(state) = slot_state(client, &cfg.slot_name).await? else {
            return Ok(None);
        };
        if state.plugin.as_deref() != Some("pgoutput") {
            return Err(Error::new(
                ErrorKind::SourceSetup,
                format!("replication slot \"{}\" uses plugin {:?}, not pgoutput", cfg.slot_name, state.plugin.unwrap_or_default()),
            )
            .with_hint("choose another slot.name, or drop the slot with SELECT pg_drop_replication_slot('<name>')"));
        }
        if state.database.as_deref() != Some(cfg.connect.dbname.as_str()) {
            return Err(Error::new(
                ErrorKind::SourceSetup,
                format!(
                    "replication slot \"{}\" belongs to database {:?}, not \"{}\"",
                    cfg.slot_name,
                    state.database.unwrap_or_default(),
                    cfg.connect.dbname
                ),
            )
            .with_hint("choose another slot.name"));
        }
        if !state.active {
            return Ok(Some(state));
        }
        // A connection holds the slot: fatal at start (with the fix below), retried after a
        // reconnect (the walsender of the connection just lost may not have exited yet).
        if attempt >= cfg.slot_max_retries && !cfg.slot_standby {
            return Err(Error::new(
                ErrorKind::Connection,
                format!(
                    "replication slot \"{}\" is active for PID {}: another client is streaming from it",
                    cfg.slot_name,
                    state.active_pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())
                ),
            )
            .with_hint("stop the other connector, or give this one its own slot.name (one slot per connector)"));
        }
        attempt += 1;
        if !cfg.slot_standby {
            tracing::info!(slot = %cfg.slot_name, attempt, "slot in use, waiting for it to be released");
        } else if attempt == 1 {
            tracing::info!(slot = %cfg.slot_name, pid = state.active_pid.unwrap_or_default(), "standing by: another process streams from the slot; taking over when it is released");
        }
        tokio::time::sleep(cfg.slot_retry_delay).await;
    }
}

/// Drops slot `name` if it exists and is not in use.
/// Drops slot `name` once no walsender uses it (the one of a run that just failed may take a
/// moment to exit); a slot still in use after `wait` is a lost connection to retry.
pub async fn drop_slot_when_idle(
    client: &Client,
    name: &str,
    wait: std::time::Duration,
) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let active: Option<bool> = client
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&name],
            )
            .await
            .map_err(|e| sql_error(&format!("cannot look at replication slot \"{name}\""), e))?
            .map(|r| r.get(0));
        match active {
            None => return Ok(()),
            Some(false) => return drop_slot(client, name).await,
            Some(true) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Some(true) => {
                return Err(Error::new(
                    ErrorKind::Connection,
                    format!("replication slot \"{name}\" is still in use by an earlier connection"),
                ));
            }
        }
    }
}

/// Drops slot `name` if it exists and is not in use.
pub async fn drop_slot(client: &Client, name: &str) -> Result<(), Error> {
    client
        .execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
            &[&name],
        )
        .await
        .map_err(|e| sql_error(&format!("cannot drop replication slot \"{name}\""), e))?;
    Ok(())
}
