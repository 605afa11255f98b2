//! The initial snapshot: every captured table read with `COPY … TO STDOUT` inside one
//! REPEATABLE READ transaction — the snapshot the slot exported when it was created, so the
//! stream continues exactly where the snapshot ends — and emitted as `op: "r"` events.

use augur_core::event::{ChangeEvent, Op, SnapshotMarker, SourceInfo};
use augur_core::{Error, ErrorKind, Lsn};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio_postgres::Client;

use super::catalog::{self, CapturedTable, TypeResolver};
use super::pgoutput::{Datum, Relation, RelationColumn, ReplicaIdentity, Tuple};
use super::setup::{CapturedTableRef, quote_ident};
use super::types::TypeOptions;
use crate::conn::sql_error;

/// The snapshot transaction's identity.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotPoint {
    /// The LSN the stream continues from.
    pub lsn: Lsn,
    /// The snapshot transaction's id.
    pub tx_id: i64,
    /// When the snapshot started, microseconds since the epoch.
    pub started_us: i64,
}

/// Opens the snapshot transaction on `client`: imports `exported` (the slot's exported
/// snapshot) when given, otherwise takes a fresh one at the current WAL position.
pub async fn begin(client: &Client, exported: Option<(&str, Lsn)>) -> Result<SnapshotPoint, Error> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(|e| sql_error("starting the snapshot transaction", e))?;
    if let Some((name, _)) = exported {
        client
            .batch_execute(&format!(
                "SET TRANSACTION SNAPSHOT '{}'",
                name.replace('\'', "''")
            ))
            .await
            .map_err(|e| {
                // The exporting replication connection is gone (terminated, or the server
                // restarted): a lost connection, retried with a new slot.
                let gone = e.as_db_error().is_some_and(|d| d.code().code() == "22023");
                let err = sql_error("importing the slot's exported snapshot", e);
                if gone {
                    Error::new(ErrorKind::Connection, err.message().to_string())
                } else {
                    err
                }
            })?;
    }
    let row = client
        .query_one(
            "SELECT txid_current(), pg_current_wal_lsn()::text, (extract(epoch from clock_timestamp()) * 1000000)::int8",
            &[],
        )
        .await
        .map_err(|e| sql_error("reading the snapshot position", e))?;
    let current: String = row.get(1);
    let lsn = match exported {
        Some((_, lsn)) => lsn,
        None => current
            .parse()
            .map_err(|_| Error::new(ErrorKind::Protocol, "bad pg_current_wal_lsn()"))?,
    };
    Ok(SnapshotPoint {
        lsn,
        tx_id: row.get(0),
        started_us: row.get(2),
    })
}

/// Ends the snapshot transaction.
pub async fn end(client: &Client) -> Result<(), Error> {
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| sql_error("ending the snapshot transaction", e))
}

/// Builds the captured-table shape of `t` from the catalog alone (no Relation message yet),
/// with the columns pgoutput would publish (generated columns are not published).
pub async fn describe_table(
    client: &Client,
    resolver: &mut TypeResolver,
    t: &CapturedTableRef,
    opts: &TypeOptions,
    version: u64,
) -> Result<(CapturedTable, catalog::SkippedColumns), Error> {
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod FROM pg_attribute a \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
             ORDER BY a.attnum",
            &[&t.oid],
        )
        .await
        .map_err(|e| sql_error("reading columns for the snapshot", e))?;
    let rel = Relation {
        id: t.oid,
        namespace: t.schema.clone(),
        name: t.name.clone(),
        replica_identity: ReplicaIdentity::Default,
        columns: rows
            .iter()
            .map(|r| RelationColumn {
                is_key: false,
                name: r.get(0),
                type_oid: r.get(1),
                type_modifier: r.get(2),
            })
            .collect(),
    };
    catalog::describe(client, resolver, &rel, opts, version).await
}

/// Reads the rows of one table as events (marker `True`; the caller fixes up first/last).
pub struct TableReader {
    stream: std::pin::Pin<Box<tokio_postgres::CopyOutStream>>,
    view: CapturedTable,
    source: SourceInfo,
    carry: Vec<u8>,
    start: usize,
    done: bool,
    /// Rows read so far.
    pub rows: u64,
    /// Trailing raw columns per row ([`ReadQuery::extra`]).
    extra: usize,
    /// The raw text of the last row's trailing columns.
    pub(crate) last_extra: Vec<Option<String>>,
}

/// What a read adds to `SELECT <mapped columns> FROM table`.
#[derive(Debug, Default)]
pub(crate) struct ReadQuery {
    /// Expressions selected after the mapped columns, kept as raw text.
    pub(crate) extra: Vec<String>,
    /// SQL after the table name (` WHERE … ORDER BY … LIMIT …`).
    pub(crate) tail: String,
}

/// The planner's row estimate for `table` (`pg_class.reltuples`; `None` if never analysed),
/// for snapshot progress.
pub(crate) async fn estimate_rows(client: &Client, table: &CapturedTable) -> Option<u64> {
    let name = format!(
        "{}.{}",
        quote_ident(&table.schema.schema),
        quote_ident(&table.schema.table)
    );
    // to_regclass: a name that does not resolve is NULL, not an error that would abort the
    // snapshot's transaction.
    let row = client
        .query_opt(
            "SELECT reltuples::int8 FROM pg_class WHERE oid = to_regclass($1)",
            &[&name],
        )
        .await
        .ok()??;
    u64::try_from(row.get::<_, i64>(0)).ok()
}

/// A snapshot progress line every few seconds: rows, rows/s and, with an estimate, the ETA.
pub(crate) struct Progress {
    started: std::time::Instant,
    next: std::time::Instant,
    estimate: Option<u64>,
}

impl Progress {
    pub(crate) fn new(estimate: Option<u64>) -> Self {
        let now = std::time::Instant::now();
        Progress {
            started: now,
            next: now + std::time::Duration::from_secs(5),
            estimate,
        }
    }

    /// Logs progress for `table` at `rows` when a line is due.
    pub(crate) fn tick(&mut self, table: &str, rows: u64) {
        if !rows.is_multiple_of(1024) {
            return;
        }
        let now = std::time::Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + std::time::Duration::from_secs(5);
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-3);
        let rate = rows as f64 / secs;
        match self.estimate.filter(|e| *e > rows && rate > 0.0) {
            Some(e) => {
                let eta = ((e - rows) as f64 / rate).round() as u64;
                tracing::info!(table = %table, rows, rows_per_s = rate.round() as u64, estimated_rows = e, eta_s = eta, "snapshot in progress");
            }
            None => {
                tracing::info!(table = %table, rows, rows_per_s = rate.round() as u64, "snapshot in progress");
            }
        }
    }
}

impl TableReader {
    /// Starts `COPY (SELECT <mapped columns> FROM table) TO STDOUT` for `table`; `None` when the
    /// table has no mapped column.
    pub async fn open(
        client: &Client,
        table: &CapturedTable,
        point: SnapshotPoint,
    ) -> Result<Option<TableReader>, Error> {
        let source = SourceInfo {
            lsn: Some(point.lsn),
            last_commit_lsn: None,
            tx_id: Some(point.tx_id),
            commit_time_us: point.started_us,
            snapshot: SnapshotMarker::True,
            commit_lsn: Some(point.lsn),
        };
        Self::open_query(client, table, source, &ReadQuery::default()).await
    }

    /// As [`open`](Self::open), with `query`'s condition, order, limit and trailing raw
    /// columns (kept as text in [`last_extra`](Self::last_extra), never decoded).
    pub(crate) async fn open_query(
        client: &Client,
        table: &CapturedTable,
        source: SourceInfo,
        query: &ReadQuery,
    ) -> Result<Option<TableReader>, Error> {
        let schema = &table.schema;
        let mut cols: Vec<String> = table
            .columns
            .iter()
            .filter_map(|c| c.field.map(|f| quote_ident(&schema.fields[f].name)))
            .collect();
        if cols.is_empty() {
            return Ok(None);
        }
        // Unmapped columns are not selected; decode with a view of the mapped columns only.
        let mapped: Vec<_> = table
            .columns
            .iter()
            .filter(|c| c.field.is_some())
            .cloned()
            .collect();
        let view = CapturedTable {
            columns: mapped,
            ..table.clone()
        };
        cols.extend(query.extra.iter().cloned());
        let sql = format!(
            "COPY (SELECT {} FROM {}.{}{}) TO STDOUT",
            cols.join(", "),
            quote_ident(&schema.schema),
            quote_ident(&schema.table),
            query.tail
        );
        let stream = client.copy_out(&sql).await.map_err(|e| {
            sql_error(
                &format!("reading {} for the snapshot", schema.qualified_name()),
                e,
            )
        })?;
        Ok(Some(TableReader {
            stream: Box::pin(stream),
            view,
            source,
            carry: Vec::new(),
            start: 0,
            done: false,
            rows: 0,
            extra: query.extra.len(),
            last_extra: Vec::new(),
        }))
    }

    /// The next row, or `None` at the end of the table.
    pub async fn next(&mut self, opts: &TypeOptions) -> Result<Option<ChangeEvent>, Error> {
        loop {
            if let Some(nl) = self.carry[self.start..].iter().position(|&b| b == b'\n') {
                let line = &self.carry[self.start..self.start + nl];
                let fields = super::text::split_copy_line(line)
                    .filter(|f| f.len() >= self.extra)
                    .ok_or_else(|| Error::new(ErrorKind::Protocol, "malformed COPY line"))?;
                let (decoded, raw) = fields.split_at(fields.len() - self.extra);
                self.last_extra = raw
                    .iter()
                    .map(|f| f.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()))
                    .collect();
                let datums: Vec<Datum<'_>> = decoded
                    .iter()
                    .map(|f| match f {
                        None => Datum::Null,
                        Some(v) => Datum::Text(v),
                    })
                    .collect();
                let after = super::decode::row(&self.view, &Tuple(datums), opts)?;
                self.start += nl + 1;
                self.rows += 1;
                let table = self.view.schema.clone();
                return Ok(Some(ChangeEvent {
                    table,
                    op: Op::Read,
                    before: None,
                    after: Some(after),
                    source: self.source,
                    key_change: None,
                }));
            }
            if self.done {
                return Ok(None);
            }
            self.carry.drain(..self.start);
            self.start = 0;
            match self.stream.next().await {
                Some(chunk) => {
                    let chunk: Bytes = chunk.map_err(|e| {
                        sql_error(
                            &format!(
                                "reading {} for the snapshot",
                                self.view.schema.qualified_name()
                            ),
                            e,
                        )
                    })?;
                    self.carry.extend_from_slice(&chunk);
                }
                None => self.done = true,
            }
        }
    }
}
