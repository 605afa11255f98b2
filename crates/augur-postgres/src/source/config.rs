//! The source's typed configuration. Built from Debezium property names by the runtime; holds
//! only values that passed validation, and validating needs no I/O.

use std::time::Duration;

use crate::conn::PgConnect;

use super::types::TypeOptions;

/// `snapshot.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// `initial`: snapshot when no completed snapshot is recorded, then stream.
    #[default]
    Initial,
    /// `no_data` (alias `never`): never snapshot; stream from the slot.
    NoData,
    /// `initial_only`: snapshot, then stop without streaming.
    InitialOnly,
    /// `always`: snapshot on every start, then stream.
    Always,
    /// `when_needed`: snapshot when no offsets exist or the slot's WAL is gone.
    WhenNeeded,
}

impl SnapshotMode {
    /// Parses a `snapshot.mode` value (Debezium names plus the pre-2.6 `never`).
    pub fn parse(s: &str) -> Option<SnapshotMode> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "initial" => SnapshotMode::Initial,
            "no_data" | "never" => SnapshotMode::NoData,
            "initial_only" => SnapshotMode::InitialOnly,
            "always" => SnapshotMode::Always,
            "when_needed" => SnapshotMode::WhenNeeded,
            _ => return None,
        })
    }

    /// The accepted spellings, for error messages.
    pub const VALUES: &'static str = "initial, no_data (never), initial_only, always, when_needed";
}

/// `publication.autocreate.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicationAutocreate {
    /// `all_tables` (default): `CREATE PUBLICATION … FOR ALL TABLES`.
    #[default]
    AllTables,
    /// `filtered`: `FOR TABLE` the included tables, kept in sync on every start.
    Filtered,
    /// `disabled`: the publication must exist.
    Disabled,
    /// `no_tables`: a publication without tables.
    NoTables,
}

impl PublicationAutocreate {
    /// Parses a `publication.autocreate.mode` value.
    pub fn parse(s: &str) -> Option<PublicationAutocreate> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "all_tables" => PublicationAutocreate::AllTables,
            "filtered" => PublicationAutocreate::Filtered,
            "disabled" => PublicationAutocreate::Disabled,
            "no_tables" => PublicationAutocreate::NoTables,
            _ => return None,
        })
    }
}

/// Operations left out of the stream (`skipped.operations`: letters `c`, `u`, `d`, `t`, or
/// `none`). Default: truncates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedOperations {
    /// Skip inserts.
    pub create: bool,
    /// Skip updates.
    pub update: bool,
    /// Skip deletes.
    pub delete: bool,
    /// Skip truncates.
    pub truncate: bool,
}

impl Default for SkippedOperations {
    fn default() -> Self {
        SkippedOperations {
            create: false,
            update: false,
            delete: false,
            truncate: true,
        }
    }
}

impl SkippedOperations {
    /// Parses a `skipped.operations` value; returns the offending item on error.
    pub fn parse(s: &str) -> Result<SkippedOperations, String> {
        let mut out = SkippedOperations {
            create: false,
            update: false,
            delete: false,
            truncate: false,
        };
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "c" => out.create = true,
                "u" => out.update = true,
                "d" => out.delete = true,
                "t" => out.truncate = true,
                "none" => {}
                other => return Err(other.to_string()),
            }
        }
        Ok(out)
    }
}

/// Which tables are captured: Debezium's include/exclude lists of regular expressions, matched
/// against the whole `schema.table` (or `schema`) name.
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    /// `schema.include.list`.
    pub schema_include: Vec<regex_lite::Regex>,
    /// `schema.exclude.list`.
    pub schema_exclude: Vec<regex_lite::Regex>,
    /// `table.include.list`.
    pub table_include: Vec<regex_lite::Regex>,
    /// `table.exclude.list`.
    pub table_exclude: Vec<regex_lite::Regex>,
}

/// Compiles a comma-separated list of regular expressions, each anchored to match a whole
/// name. Returns the offending pattern on error.
pub fn compile_list(list: &str) -> Result<Vec<regex_lite::Regex>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| regex_lite::Regex::new(&format!("^(?:{p})$")).map_err(|e| format!("{p}: {e}")))
        .collect()
}

impl TableFilter {
    /// Whether table `schema.table` is captured. System schemas never are.
    pub fn includes(&self, schema: &str, table: &str) -> bool {
        if matches!(schema, "pg_catalog" | "information_schema") || schema.starts_with("pg_toast") {
            return false;
        }
        if !self.schema_include.is_empty()
            && !self.schema_include.iter().any(|r| r.is_match(schema))
        {
            return false;
        }
        if self.schema_exclude.iter().any(|r| r.is_match(schema)) {
            return false;
        }
        let full = format!("{schema}.{table}");
        if !self.table_include.is_empty() && !self.table_include.iter().any(|r| r.is_match(&full)) {
            return false;
        }
        !self.table_exclude.iter().any(|r| r.is_match(&full))
    }
}

/// Everything the PostgreSQL source needs.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Where to connect.
    pub connect: PgConnect,
    /// `slot.name` (default `debezium`).
    pub slot_name: String,
    /// `publication.name` (default `dbz_publication`).
    pub publication_name: String,
    /// `publication.autocreate.mode`.
    pub publication_autocreate: PublicationAutocreate,
    /// `snapshot.mode`.
    pub snapshot_mode: SnapshotMode,
    /// Which tables are captured.
    pub tables: TableFilter,
    /// Type mapping options.
    pub types: TypeOptions,
    /// `skipped.operations`.
    pub skipped: SkippedOperations,
    /// `heartbeat.interval.ms` (`None`: off, Debezium's default 0).
    pub heartbeat_interval: Option<Duration>,
    /// `status.update.interval.ms`: how often the confirmed position is reported.
    pub status_interval: Duration,
    /// `max.batch.size`: events per batch.
    pub max_batch_size: usize,
    /// `max.queue.size`: events that may wait between the source and the destination.
    pub max_queue_size: usize,
    /// `slot.max.retries`: attempts to acquire a slot that is in use.
    pub slot_max_retries: u32,
    /// `slot.retry.delay.ms`.
    pub slot_retry_delay: Duration,
    /// Stand by while another client streams from the slot, however long, and take over
    /// when it is released (`augur run` over Kafka, where several processes share one
    /// pipeline); off: give up after `slot_max_retries`.
    pub slot_standby: bool,
    /// `slot.drop.on.stop`: drop the slot on a clean stop (for tests).
    pub slot_drop_on_stop: bool,
    /// `errors.max.retries`: reconnect attempts after a lost connection (`None`: no limit,
    /// Debezium's `-1`; `Some(0)`: fail at once).
    pub max_retries: Option<u32>,
    /// `retriable.restart.connector.wait.ms`: the longest wait between reconnect attempts
    /// (attempts start after 200 ms and double up to this).
    pub retry_wait: Duration,
    /// Emit a truncate event for each table before its snapshot rows, so a destination that
    /// mirrors the table drops rows a redone snapshot no longer has (`augur run`; not a
    /// Debezium property: Debezium never does this).
    pub snapshot_truncates: bool,
    /// Incremental snapshots through a signal table (`signal.data.collection`); `None`: off.
    pub signals: Option<SignalConfig>,
    /// Stream the signal table's own rows as change events, as Debezium does (`augur run`
    /// leaves them out: they are not listings).
    pub emit_signal_rows: bool,
}

/// Debezium's source signalling channel and incremental snapshot settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalConfig {
    /// `signal.data.collection`: the signal table's schema.
    pub schema: String,
    /// The signal table's name.
    pub table: String,
    /// `incremental.snapshot.chunk.size` (default 1024): rows per chunk.
    pub chunk_size: usize,
    /// `incremental.snapshot.watermarking.strategy=insert_delete`: a window closes by deleting
    /// its open signal instead of inserting a close signal (`insert_insert`, the default).
    pub insert_delete: bool,
}

impl SignalConfig {
    /// `"schema"."table"`, quoted for SQL.
    pub fn quoted(&self) -> String {
        format!(
            "{}.{}",
            super::setup::quote_ident(&self.schema),
            super::setup::quote_ident(&self.table)
        )
    }
}

impl SourceConfig {
    /// Defaults for a source connecting with `connect`.
    pub fn new(connect: PgConnect) -> Self {
        SourceConfig {
            connect,
            slot_name: "debezium".into(),
            publication_name: "dbz_publication".into(),
            publication_autocreate: PublicationAutocreate::AllTables,
            snapshot_mode: SnapshotMode::Initial,
            tables: TableFilter::default(),
            types: TypeOptions::default(),
            skipped: SkippedOperations::default(),
            heartbeat_interval: None,
            status_interval: Duration::from_secs(10),
            max_batch_size: 2048,
            max_queue_size: 8192,
            slot_max_retries: 6,
            slot_retry_delay: Duration::from_secs(10),
            slot_standby: false,
            slot_drop_on_stop: false,
            max_retries: None,
            retry_wait: Duration::from_secs(10),
            snapshot_truncates: false,
            signals: None,
            emit_signal_rows: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_whole_names() {
        let f = TableFilter {
            table_include: compile_list("public.car_data, inventory\\..*").unwrap(),
            ..Default::default()
        };
        assert!(f.includes("public", "car_data"));
        assert!(!f.includes("public", "car_data_predicted"));
        assert!(f.includes("inventory", "x"));
        assert!(!f.includes("pg_catalog", "pg_class"));
        assert!(compile_list("(").is_err());
        assert!(SkippedOperations::parse("t,d").unwrap().delete);
        assert!(SkippedOperations::parse("x").is_err());
        assert_eq!(SnapshotMode::parse("never"), Some(SnapshotMode::NoData));
    }
}
