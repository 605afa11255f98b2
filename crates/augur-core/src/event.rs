//! [`ChangeEvent`]: one row change captured from the source, and the batches they travel in.
//!
//! Events carry Kafka Connect values already mapped the way Debezium maps PostgreSQL types, so
//! every later stage (JSON converter, model transform, sink) reads the same representation.

use std::sync::Arc;

use crate::ack::AckToken;
use crate::connect::{Field, Schema, Value};
use crate::lsn::Lsn;

/// A captured table: its identity and the Connect shape of its rows.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// PostgreSQL schema (namespace) name, e.g. `public`.
    pub schema: String,
    /// Table name, e.g. `car_data`.
    pub table: String,
    /// The row's fields in column order, each with its Connect schema (the `Value` struct).
    pub fields: Vec<Field>,
    /// Indexes into `fields` of the key columns; empty for a table without a key (null key).
    pub key: Vec<usize>,
    /// A number that changes whenever the table's shape changes (column added, type changed).
    pub version: u64,
}

impl TableSchema {
    /// `schema.table`, the name Debezium's include lists match against.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// The index of the column named `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The Connect struct schema of a row (without the struct's name).
    pub fn row_fields(&self) -> &[Field] {
        &self.fields
    }

    /// The key fields, in key order.
    pub fn key_fields(&self) -> impl Iterator<Item = &Field> {
        self.key.iter().map(|&i| &self.fields[i])
    }

    /// The key struct schema named `name`, or `None` for a keyless table.
    pub fn key_schema(&self, name: String) -> Option<Schema> {
        if self.key.is_empty() {
            return None;
        }
        // As Debezium builds keys: without column mappers' parameters (source types, masks).
        let fields = self
            .key_fields()
            .cloned()
            .map(|mut f| {
                f.schema
                    .parameters
                    .retain(|(k, _)| !k.starts_with("__debezium.source.column."));
                f
            })
            .collect();
        Some(Schema::structure(Some(name), fields))
    }
}

/// The kind of change, as Debezium's `op` letter says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `c`: a row was inserted.
    Create,
    /// `u`: a row was updated.
    Update,
    /// `d`: a row was deleted.
    Delete,
    /// `r`: a row was read by a snapshot.
    Read,
    /// `t`: the table was truncated.
    Truncate,
}

impl Op {
    /// Debezium's one-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }

    /// The op named by Debezium's one-letter code.
    pub fn from_code(code: &str) -> Option<Op> {
        Some(match code {
            "c" => Op::Create,
            "u" => Op::Update,
            "d" => Op::Delete,
            "r" => Op::Read,
            "t" => Op::Truncate,
            _ => return None,
        })
    }
}

/// Where a row came from in a snapshot, as `source.snapshot` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SnapshotMarker {
    /// A streamed change (`"false"`).
    #[default]
    False,
    /// The first row of the snapshot (`"first"`).
    First,
    /// A row in the middle of the snapshot (`"true"`).
    True,
    /// The last row of the snapshot (`"last"`).
    Last,
    /// The first row of one table within a multi-table snapshot (`"first_in_data_collection"`).
    FirstInDataCollection,
    /// The last row of one table within a multi-table snapshot (`"last_in_data_collection"`).
    LastInDataCollection,
    /// A row of an incremental snapshot chunk (`"incremental"`).
    Incremental,
}

impl SnapshotMarker {
    /// The string Debezium writes in `source.snapshot`.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMarker::False => "false",
            SnapshotMarker::First => "first",
            SnapshotMarker::True => "true",
            SnapshotMarker::Last => "last",
            SnapshotMarker::FirstInDataCollection => "first_in_data_collection",
            SnapshotMarker::LastInDataCollection => "last_in_data_collection",
            SnapshotMarker::Incremental => "incremental",
        }
    }
}

/// The position and timing of a change in the source database (Debezium's `source` block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceInfo {
    /// The LSN of the change itself (`source.lsn`).
    pub lsn: Option<Lsn>,
    /// The end LSN of the last transaction committed before this one (`sequence[0]`).
    pub last_commit_lsn: Option<Lsn>,
    /// The transaction id (`source.txId`).
    pub tx_id: Option<i64>,
    /// Commit time of the transaction, microseconds since the Unix epoch.
    pub commit_time_us: i64,
    /// Snapshot marker.
    pub snapshot: SnapshotMarker,
    /// The LSN of the transaction's commit record (the snapshot LSN for snapshot rows): orders
    /// transactions, so a sink can tell a replayed change from a newer one.
    pub commit_lsn: Option<Lsn>,
}

/// A primary-key change travels as a delete of the old key and a create of the new one; this
/// links the two so the Kafka record gets Debezium's `__debezium.newkey`/`oldkey` headers.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyChange {
    /// On the delete: the key the row moved to.
    NewKey(Vec<Value>),
    /// On the create: the key the row moved from.
    OldKey(Vec<Value>),
}

/// One row change. The only event type that flows forward through augur.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The table and its row shape at the time of the change.
    pub table: Arc<TableSchema>,
    /// The kind of change.
    pub op: Op,
    /// The row before the change, aligned with `table.fields` (content depends on REPLICA
    /// IDENTITY).
    pub before: Option<Vec<Value>>,
    /// The row after the change, aligned with `table.fields`.
    pub after: Option<Vec<Value>>,
    /// Where and when the change happened.
    pub source: SourceInfo,
    /// Set when this event is half of a primary-key change.
    pub key_change: Option<KeyChange>,
}

impl ChangeEvent {
    /// The key values (from `after`, or `before` for deletes); `None` for a keyless table.
    pub fn key_values(&self) -> Option<Vec<Value>> {
        if self.table.key.is_empty() {
            return None;
        }
        let row = self.after.as_ref().or(self.before.as_ref())?;
        Some(self.table.key.iter().map(|&i| row[i].clone()).collect())
    }
}

/// A batch of events that is acknowledged as a whole once it is durable downstream.
#[derive(Debug)]
pub struct ChangeBatch {
    /// The events, in source order.
    pub events: Vec<ChangeEvent>,
    /// Set when this batch is a heartbeat (`heartbeat.interval.ms`): the destination writes a
    /// heartbeat record stamped with this time (milliseconds since the epoch).
    pub heartbeat: Option<i64>,
    /// Resolve this after the batch is durable; dropping it unresolved means "not durable".
    pub ack: AckToken,
}
