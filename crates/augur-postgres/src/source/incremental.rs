//! Incremental snapshots: Debezium's signal table and its watermark windows (the DBLog
//! algorithm), so captured tables are re-read in key-ordered chunks while streaming goes on.
//!
//! A chunk is read between two signal rows augur writes itself: `<chunk>-open`, then the
//! `SELECT`, then `<chunk>-close` (with `insert_delete`, the open row deleted instead). A change
//! to the chunk's table that streams between the two markers removes its key from the chunk —
//! the stream carries that row's newer state — and at the close marker the rest goes out as
//! `op: "r"` events with `source.snapshot = "incremental"`; then the next chunk is read.
//! Progress is saved with the offsets only once durable downstream, as of the commit that
//! emitted it, so a restart re-reads from the last emitted chunk and nothing is skipped.

use std::collections::{HashMap, VecDeque};

use augur_core::event::{ChangeEvent, SnapshotMarker, SourceInfo};
use augur_core::{Error, ErrorKind, Lsn};
use serde_json::{Value as Json, json};
use tokio_postgres::Client;

use super::catalog::{CapturedTable, TypeResolver};
use super::config::{SignalConfig, TableFilter};
use super::pgoutput::{Datum, Relation, Tuple};
use super::setup::{CapturedTableRef, quote_ident};
use super::snapshot::{ReadQuery, TableReader};
use super::types::TypeOptions;
use crate::conn::sql_error;

/// One table queued for an incremental snapshot.
#[derive(Debug, Clone, PartialEq)]
struct Collection {
    /// `schema.table`.
    name: String,
    /// Its `additional-conditions` filter (SQL).
    filter: Option<String>,
    /// `surrogate-key`: the column chunks follow instead of the primary key.
    surrogate_key: Option<String>,
}

/// What survives a restart: the queue and where the front table's reading stands.
#[derive(Debug, Clone, Default, PartialEq)]
struct Progress {
    queue: VecDeque<Collection>,
    /// The chunk key (as text) of the last row emitted from the front table.
    last_key: Option<Vec<String>>,
    /// The front table's largest chunk key when its reading started.
    max_key: Option<Vec<String>>,
    paused: bool,
}

impl Progress {
    /// The saved form (`None` when no snapshot runs).
    fn to_json(&self) -> Option<Json> {
        if self.queue.is_empty() {
            return None;
        }
        let queue: Vec<Json> = self
            .queue
            .iter()
            .map(|c| json!({"name": c.name, "filter": c.filter, "surrogate_key": c.surrogate_key}))
            .collect();
        Some(json!({
            "queue": queue,
            "last_key": self.last_key,
            "max_key": self.max_key,
            "paused": self.paused,
        }))
    }

    /// Reads [`to_json`](Self::to_json)'s form; anything else is no snapshot.
    fn from_json(v: &Json) -> Progress {
        let text = |v: &Json| v.as_str().map(str::to_string);
        let keys = |v: Option<&Json>| {
            v.and_then(Json::as_array)
                .map(|a| a.iter().filter_map(text).collect::<Vec<_>>())
        };
        let queue = v["queue"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        Some(Collection {
                            name: text(&c["name"])?,
                            filter: text(&c["filter"]),
                            surrogate_key: text(&c["surrogate_key"]),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Progress {
            queue,
            last_key: keys(v.get("last_key")),
            max_key: keys(v.get("max_key")),
            paused: v["paused"].as_bool().unwrap_or(false),
        }
    }
}

/// The chunk between its open and close markers: its rows by event key, in key order.
#[derive(Debug)]
struct Window {
    id: String,
    /// The open marker has streamed by: changes now supersede chunk rows.
    open: bool,
    /// The table the rows are from.
    table: String,
    rows: Vec<Option<ChangeEvent>>,
    index: HashMap<String, usize>,
}

impl Window {
    fn new(id: String) -> Self {
        Window {
            id,
            open: false,
            table: String::new(),
            rows: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn push(&mut self, ev: ChangeEvent) {
        self.index.insert(key_of(&ev), self.rows.len());
        self.rows.push(Some(ev));
    }

    fn remove(&mut self, ev: &ChangeEvent) {
        if let Some(i) = self.index.remove(&key_of(ev)) {
            self.rows[i] = None;
        }
    }
}

/// An event's key as a map key (the record key's values).
fn key_of(ev: &ChangeEvent) -> String {
    format!("{:?}", ev.key_values())
}

/// What reading a chunk needs from the stream loop.
pub(super) struct Db<'c> {
    pub(super) client: &'c Client,
    pub(super) resolver: &'c mut TypeResolver,
    pub(super) opts: &'c TypeOptions,
    pub(super) filter: &'c TableFilter,
    /// The stream's tables by relation id (their latest shape).
    pub(super) tables: &'c HashMap<u32, Option<CapturedTable>>,
    /// The stream's schema version counter.
    pub(super) version: &'c mut u64,
}

/// A signal row: `id`, `type`, `data`, the signal table's first three columns.
#[derive(Debug)]
struct Signal {
    id: String,
    kind: String,
    data: Json,
}

impl Signal {
    fn parse(t: &Tuple<'_>) -> Option<Signal> {
        let text = |i: usize| match t.0.get(i) {
            Some(Datum::Text(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        let data = text(2).unwrap_or_default();
        Some(Signal {
            id: text(0)?,
            kind: text(1)?,
            data: serde_json::from_str(&data).unwrap_or(Json::Null),
        })
    }
}

/// The incremental snapshot machinery of one streaming session.
#[derive(Debug)]
pub(super) struct Incremental {
    cfg: SignalConfig,
    progress: Progress,
    window: Option<Window>,
    /// The key of the last row read into the window (the new `last_key` once emitted).
    read_key: Option<Vec<String>>,
    /// Progress to record at the current transaction's commit.
    pending: Option<Progress>,
    /// Recorded progress by commit end LSN, oldest first, until durable.
    checkpoints: VecDeque<(Lsn, Progress)>,
    /// Signals in transactions that committed before this were handled before a restart.
    handled_until: Option<Lsn>,
    /// The signal table's relation id, once its Relation message arrived.
    signal_rel: Option<u32>,
    /// When the current window opened (`Instant` text), for its close signal's data.
    opened_at: String,
}

impl Incremental {
    /// The machinery for `cfg`, resuming `saved` progress that was durable at `handled_until`.
    pub(super) fn new(cfg: SignalConfig, saved: Option<&Json>, handled_until: Option<Lsn>) -> Self {
        Incremental {
            cfg,
            progress: saved.map(Progress::from_json).unwrap_or_default(),
            window: None,
            read_key: None,
            pending: None,
            checkpoints: VecDeque::new(),
            handled_until,
            signal_rel: None,
            opened_at: String::new(),
        }
    }

    /// Notes the signal table's relation id.
    pub(super) fn on_relation(&mut self, rel: &Relation) {
        if rel.namespace == self.cfg.schema && rel.name == self.cfg.table {
            self.signal_rel = Some(rel.id);
        }
    }

    /// Whether `relation` is the signal table.
    pub(super) fn is_signal(&self, relation: u32) -> bool {
        self.signal_rel == Some(relation)
    }

    /// A streamed change: while a window is open, it supersedes the chunk's row of its key.
    pub(super) fn dedupe(&mut self, ev: &ChangeEvent) {
        if let Some(w) = self.window.as_mut().filter(|w| w.open)
            && ev.table.qualified_name() == w.table
        {
            w.remove(ev);
        }
    }

    /// The transaction ended at `end`: progress changed in it is recorded as of `end`.
    pub(super) fn on_commit(&mut self, end: Lsn) {
        if let Some(p) = self.pending.take() {
            self.checkpoints.push_back((end, p));
        }
    }

    /// Everything up to `p` is durable: the progress to save, if it changed.
    pub(super) fn durable(&mut self, p: Lsn) -> Option<Option<Json>> {
        let mut latest = None;
        while self.checkpoints.front().is_some_and(|(l, _)| *l <= p) {
            latest = self.checkpoints.pop_front().map(|(_, s)| s);
        }
        latest.map(|s| s.to_json())
    }

    /// On start: a snapshot that was running goes on with a new chunk.
    pub(super) async fn resume(&mut self, db: &mut Db<'_>) -> Result<(), Error> {
        if !self.progress.queue.is_empty() {
            tracing::info!(
                tables = self.progress.queue.len(),
                "incremental snapshot in progress; reading the next chunk"
            );
        }
        self.read_chunk(db).await
    }

    /// A row inserted into the signal table at `info`.
    pub(super) async fn on_insert(
        &mut self,
        db: &mut Db<'_>,
        row: &Tuple<'_>,
        info: SourceInfo,
        out: &mut Vec<ChangeEvent>,
    ) -> Result<(), Error> {
        let Some(signal) = Signal::parse(row) else {
            tracing::warn!("a signal row without an id or a type was ignored");
            return Ok(());
        };
        match signal.kind.as_str() {
            "snapshot-window-open" => self.on_open(&signal.id),
            "snapshot-window-close" => {
                if let Some(id) = signal.id.strip_suffix("-close") {
                    self.on_close(db, id, info, out).await?;
                }
            }
            _ if self.handled(info) => {}
            _ => self.on_command(db, &signal).await?,
        }
        Ok(())
    }

    /// A row deleted from the signal table: with `insert_delete`, the close of its window.
    pub(super) async fn on_delete(
        &mut self,
        db: &mut Db<'_>,
        old: &Tuple<'_>,
        info: SourceInfo,
        out: &mut Vec<ChangeEvent>,
    ) -> Result<(), Error> {
        let id = match old.0.first() {
            Some(Datum::Text(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => return Ok(()),
        };
        match id.strip_suffix("-open") {
            Some(chunk) if self.cfg.insert_delete => self.on_close(db, chunk, info, out).await,
            _ => Ok(()),
        }
    }

    /// Whether a signal at `info` was handled before a restart.
    fn handled(&self, info: SourceInfo) -> bool {
        matches!((info.commit_lsn, self.handled_until), (Some(c), Some(h)) if c < h)
    }

    fn on_open(&mut self, id: &str) {
        if let Some(w) = self.window.as_mut()
            && id.strip_suffix("-open") == Some(w.id.as_str())
        {
            w.open = true;
        }
    }

    /// The close marker of chunk `id`: its remaining rows go out, then the next chunk is read.
    async fn on_close(
        &mut self,
        db: &mut Db<'_>,
        id: &str,
        info: SourceInfo,
        out: &mut Vec<ChangeEvent>,
    ) -> Result<(), Error> {
        if self.window.as_ref().is_none_or(|w| w.id != id) {
            return Ok(());
        }
        let Some(w) = self.window.take() else {
            return Ok(());
        };
        let source = SourceInfo {
            commit_time_us: now_us(),
            snapshot: SnapshotMarker::Incremental,
            ..info
        };
        let before = out.len();
        out.extend(w.rows.into_iter().flatten().map(|mut ev| {
            ev.source = source;
            ev
        }));
        tracing::debug!(rows = out.len() - before, table = %w.table, "incremental snapshot chunk emitted");
        if let Some(k) = self.read_key.take() {
            self.progress.last_key = Some(k);
        }
        self.pending = Some(self.progress.clone());
        self.read_chunk(db).await
    }

    /// `execute-snapshot`, `stop-snapshot`, `pause-snapshot`, `resume-snapshot`, `log`.
    async fn on_command(&mut self, db: &mut Db<'_>, s: &Signal) -> Result<(), Error> {
        tracing::info!(signal = %s.kind, id = ?s.id, "signal received");
        let idle = self.progress.queue.is_empty();
        match s.kind.as_str() {
            "execute-snapshot" => {
                if !incremental_type(&s.data) {
                    tracing::warn!(
                        "only incremental snapshots can be signalled (type \"blocking\" is not implemented); signal ignored"
                    );
                    return Ok(());
                }
                let added = resolve(db, &s.data).await?;
                tracing::info!(tables = added.len(), "incremental snapshot requested");
                self.progress.queue.extend(added);
            }
            "stop-snapshot" => self.stop(&s.data),
            "pause-snapshot" => self.progress.paused = true,
            "resume-snapshot" => self.progress.paused = false,
            "log" => {
                tracing::info!(message = ?s.data["message"].as_str().unwrap_or(""), "log signal");
                return Ok(());
            }
            other => {
                tracing::warn!(signal = ?other, "unknown signal type ignored");
                return Ok(());
            }
        }
        self.pending = Some(self.progress.clone());
        if idle {
            tracing::info!("incremental snapshot started");
        }
        self.read_chunk(db).await
    }

    /// `stop-snapshot`: the named tables (all when none is named) leave the queue.
    fn stop(&mut self, data: &Json) {
        let names = patterns(&data["data-collections"]);
        let front = self.progress.queue.front().map(|c| c.name.clone());
        self.progress
            .queue
            .retain(|c| !names.is_empty() && !names.iter().any(|r| r.is_match(&c.name)));
        if self.progress.queue.front().map(|c| &c.name) != front.as_ref() {
            self.restart_table();
        }
        tracing::info!(
            remaining = self.progress.queue.len(),
            "incremental snapshot stopped for the named tables"
        );
    }

    /// The front table changed: its reading starts over (a window of the old one is dropped).
    fn restart_table(&mut self) {
        self.window = None;
        self.read_key = None;
        self.progress.last_key = None;
        self.progress.max_key = None;
    }

    /// Opens a window, reads the next chunk of the front table (moving past finished, empty or
    /// unreadable tables) into it, and closes the window.
    async fn read_chunk(&mut self, db: &mut Db<'_>) -> Result<(), Error> {
        if self.progress.queue.is_empty() || self.progress.paused || self.window.is_some() {
            return Ok(());
        }
        let id = uuid::Uuid::now_v7().to_string();
        let mut window = Window::new(id.clone());
        if let Err(e) = self
            .marker(db.client, &format!("{id}-open"), "snapshot-window-open")
            .await
        {
            return self.give_up(e);
        }
        while let Some(coll) = self.progress.queue.front().cloned() {
            match self.read_table_chunk(db, &coll, &mut window).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) if e.kind() == ErrorKind::Connection => return Err(e),
                Err(e) => {
                    tracing::error!(table = %coll.name, error = %e.full_message(), "incremental snapshot of the table stopped")
                }
            }
            self.progress.queue.pop_front();
            self.restart_table();
            if self.progress.queue.is_empty() {
                tracing::info!("incremental snapshot completed");
            }
        }
        self.window = Some(window);
        let closed = if self.cfg.insert_delete {
            self.delete_marker(db.client, &format!("{id}-open")).await
        } else {
            let close = format!("{id}-close");
            self.marker(db.client, &close, "snapshot-window-close")
                .await
        };
        closed.or_else(|e| self.give_up(e))
    }

    /// A signal table that cannot be written stops the snapshot (a lost connection is retried).
    fn give_up(&mut self, e: Error) -> Result<(), Error> {
        if e.kind() == ErrorKind::Connection {
            return Err(e);
        }
        tracing::error!(error = %e.full_message(), "cannot write to the signal table; incremental snapshot stopped");
        self.progress = Progress::default();
        self.pending = Some(Progress::default());
        self.restart_table();
        Ok(())
    }

    /// Reads one chunk of `coll` into `window`: `false` when the table has no rows left (or
    /// cannot be read incrementally).
    async fn read_table_chunk(
        &mut self,
        db: &mut Db<'_>,
        coll: &Collection,
        window: &mut Window,
    ) -> Result<bool, Error> {
        let Some(table_ref) = lookup(db, &coll.name).await? else {
            tracing::warn!(table = %coll.name, "table not found or not captured; skipped");
            return Ok(false);
        };
        let keys = chunk_key(db.client, &table_ref, coll).await?;
        if keys.is_empty() {
            tracing::warn!(table = %coll.name, "incremental snapshot skipped: the table has no primary key (name a surrogate-key)");
            return Ok(false);
        }
        if self.progress.max_key.is_none() {
            self.progress.max_key = max_key(db.client, &table_ref, &keys, coll).await?;
        }
        let Some(max) = self.progress.max_key.clone() else {
            return Ok(false);
        };
        let table = describe(db, &table_ref).await?;
        let query = ReadQuery {
            extra: keys.iter().map(|k| quote_ident(k)).collect(),
            tail: chunk_tail(
                &keys,
                coll,
                self.progress.last_key.as_deref(),
                &max,
                self.cfg.chunk_size,
            ),
        };
        let Some(mut reader) =
            TableReader::open_query(db.client, &table, SourceInfo::default(), &query).await?
        else {
            return Ok(false);
        };
        window.table = table.schema.qualified_name();
        while let Some(ev) = reader.next(db.opts).await? {
            window.push(ev);
        }
        if reader.rows == 0 {
            return Ok(false);
        }
        let key: Option<Vec<String>> = reader.last_extra.iter().cloned().collect();
        self.read_key = Some(key.ok_or_else(|| {
            Error::new(
                ErrorKind::SourceSetup,
                "a chunk key column holds NULL; chunks need a non-null key",
            )
        })?);
        Ok(true)
    }

    /// Inserts signal row `id` of type `kind` (committed at once), its data the window's
    /// times as Debezium writes them.
    async fn marker(&mut self, client: &Client, id: &str, kind: &str) -> Result<(), Error> {
        let sql = format!("INSERT INTO {} VALUES ($1, $2, $3)", self.cfg.quoted());
        let now = instant_text();
        let data = if kind == "snapshot-window-open" {
            self.opened_at = now.clone();
            format!("{{\"openWindowTimestamp\": \"{now}\"}}")
        } else {
            format!(
                "{{\"openWindowTimestamp\": \"{}\", \"closeWindowTimestamp\": \"{now}\"}}",
                self.opened_at
            )
        };
        client
            .execute(&sql, &[&id, &kind, &data])
            .await
            .map(drop)
            .map_err(|e| sql_error(&format!("writing the {kind} signal"), e))
    }

    /// Deletes signal row `id` (the `insert_delete` close).
    async fn delete_marker(&self, client: &Client, id: &str) -> Result<(), Error> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.cfg.quoted());
        client
            .execute(&sql, &[&id])
            .await
            .map(drop)
            .map_err(|e| sql_error("deleting the window's open signal", e))
    }
}

/// Whether an `execute-snapshot` asks for an incremental snapshot (the default).
fn incremental_type(data: &Json) -> bool {
    data["type"]
        .as_str()
        .is_none_or(|t| t.eq_ignore_ascii_case("incremental"))
}

/// The whole-name patterns of a `data-collections` list.
fn patterns(v: &Json) -> Vec<regex_lite::Regex> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .filter_map(|p| regex_lite::Regex::new(&format!("^(?:{})$", p.trim())).ok())
        .collect()
}

/// The captured tables an `execute-snapshot` names, with their conditions and surrogate key.
async fn resolve(db: &Db<'_>, data: &Json) -> Result<Vec<Collection>, Error> {
    let rows = db
        .client
        .query(
            "SELECT n.nspname::text, c.relname::text FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p') ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(|e| sql_error("listing tables for an incremental snapshot", e))?;
    let names = patterns(&data["data-collections"]);
    let filter_of = |name: &str| {
        let conds = data["additional-conditions"]
            .as_array()
            .into_iter()
            .flatten();
        conds
            .filter(|c| c["data-collection"].as_str().map(str::trim) == Some(name))
            .find_map(|c| c["filter"].as_str().map(str::to_string))
            .or_else(|| data["additional-condition"].as_str().map(str::to_string))
            .filter(|f| !f.trim().is_empty())
    };
    let surrogate = data["surrogate-key"].as_str().filter(|s| !s.is_empty());
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        .filter(|(s, t)| db.filter.includes(s, t))
        .map(|(s, t)| format!("{s}.{t}"))
        .filter(|n| names.iter().any(|r| r.is_match(n)))
        .map(|name| Collection {
            filter: filter_of(&name),
            surrogate_key: surrogate.map(str::to_string),
            name,
        })
        .collect())
}

/// The captured table named `schema.table`.
async fn lookup(db: &Db<'_>, name: &str) -> Result<Option<CapturedTableRef>, Error> {
    let Some((schema, table)) = name.split_once('.') else {
        return Ok(None);
    };
    if !db.filter.includes(schema, table) {
        return Ok(None);
    }
    let row = db
        .client
        .query_opt(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await
        .map_err(|e| sql_error("looking up a table for an incremental snapshot", e))?;
    Ok(row.map(|r| CapturedTableRef {
        oid: r.get(0),
        schema: schema.to_string(),
        name: table.to_string(),
    }))
}

/// The stream's shape of the table, or the catalog's when no change of it streamed yet.
async fn describe(db: &mut Db<'_>, t: &CapturedTableRef) -> Result<CapturedTable, Error> {
    if let Some(Some(known)) = db.tables.get(&t.oid) {
        return Ok(known.clone());
    }
    *db.version += 1;
    let (table, _) =
        super::snapshot::describe_table(db.client, db.resolver, t, db.opts, *db.version).await?;
    Ok(table)
}

/// The columns chunks follow: the surrogate key, else the primary key.
async fn chunk_key(
    client: &Client,
    t: &CapturedTableRef,
    coll: &Collection,
) -> Result<Vec<String>, Error> {
    if let Some(k) = &coll.surrogate_key {
        return Ok(vec![k.clone()]);
    }
    let rows = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
            &[&t.oid],
        )
        .await
        .map_err(|e| sql_error("reading the primary key for an incremental snapshot", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The largest chunk key of the table (under its filter); `None` for no rows.
async fn max_key(
    client: &Client,
    t: &CapturedTableRef,
    keys: &[String],
    coll: &Collection,
) -> Result<Option<Vec<String>>, Error> {
    // Aliased: `ORDER BY "id"` would otherwise sort the text output column, not the key.
    let cols: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{}::text AS augur_key_{i}", quote_ident(k)))
        .collect();
    let order: Vec<String> = keys
        .iter()
        .map(|k| format!("{} DESC", quote_ident(k)))
        .collect();
    let filter = coll
        .filter
        .as_ref()
        .map(|f| format!(" WHERE ({f})"))
        .unwrap_or_default();
    let sql = format!(
        "SELECT {} FROM {}{filter} ORDER BY {} LIMIT 1",
        cols.join(", "),
        t.quoted(),
        order.join(", ")
    );
    let row = client
        .query_opt(&sql, &[])
        .await
        .map_err(|e| sql_error(&format!("reading the largest key of {}", coll.name), e))?;
    Ok(row.and_then(|r| {
        (0..keys.len())
            .map(|i| r.get::<_, Option<String>>(i))
            .collect()
    }))
}

/// ` WHERE <filter> AND (keys) > (last) AND (keys) <= (max) ORDER BY keys LIMIT n`.
fn chunk_tail(
    keys: &[String],
    coll: &Collection,
    last: Option<&[String]>,
    max: &[String],
    n: usize,
) -> String {
    let cols: Vec<String> = keys.iter().map(|k| quote_ident(k)).collect();
    let cols = cols.join(", ");
    let row = |v: &[String]| v.iter().map(|s| literal(s)).collect::<Vec<_>>().join(", ");
    let mut conds = Vec::new();
    if let Some(f) = &coll.filter {
        conds.push(format!("({f})"));
    }
    if let Some(l) = last {
        conds.push(format!("({cols}) > ({})", row(l)));
    }
    conds.push(format!("({cols}) <= ({})", row(max)));
    format!(" WHERE {} ORDER BY {cols} LIMIT {n}", conds.join(" AND "))
}

/// A SQL string literal of unknown type (PostgreSQL gives it the compared column's type).
fn literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

/// The current time as Java's `Instant.toString` prints it (UTC, nanoseconds).
fn instant_text() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = super::text::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll(filter: Option<&str>) -> Collection {
        Collection {
            name: "public.t".into(),
            filter: filter.map(str::to_string),
            surrogate_key: None,
        }
    }

    #[test]
    fn chunk_queries_follow_the_key_from_the_last_row_to_the_maximum() {
        let keys = vec!["a".to_string(), "B".to_string()];
        let first = chunk_tail(&keys, &coll(None), None, &["9".into(), "z".into()], 100);
        assert_eq!(
            first,
            " WHERE (\"a\", \"B\") <= ('9', 'z') ORDER BY \"a\", \"B\" LIMIT 100"
        );
        let last = ["3".to_string(), "o'k\\".to_string()];
        let next = chunk_tail(
            &keys,
            &coll(Some("x > 1")),
            Some(&last),
            &["9".into(), "z".into()],
            5,
        );
        assert_eq!(
            next,
            " WHERE (x > 1) AND (\"a\", \"B\") > ('3', E'o''k\\\\') AND (\"a\", \"B\") <= ('9', 'z') ORDER BY \"a\", \"B\" LIMIT 5"
        );
    }

    #[test]
    fn progress_survives_its_saved_form() {
        let p = Progress {
            queue: [coll(Some("id > 5")), coll(None)].into_iter().collect(),
            last_key: Some(vec!["42".into()]),
            max_key: Some(vec!["99".into()]),
            paused: true,
        };
        let saved = p.to_json().unwrap();
        assert_eq!(Progress::from_json(&saved), p);
        assert_eq!(Progress::default().to_json(), None);
        assert_eq!(Progress::from_json(&json!("junk")), Progress::default());
    }

    #[test]
    fn checkpoints_become_durable_in_commit_order() {
        let cfg = SignalConfig {
            schema: "public".into(),
            table: "signals".into(),
            chunk_size: 10,
            insert_delete: false,
        };
        let mut inc = Incremental::new(cfg, None, None);
        inc.progress.queue.push_back(coll(None));
        inc.pending = Some(inc.progress.clone());
        inc.on_commit(Lsn(100));
        inc.progress.last_key = Some(vec!["7".into()]);
        inc.pending = Some(inc.progress.clone());
        inc.on_commit(Lsn(200));
        assert_eq!(inc.durable(Lsn(99)), None);
        let at_150 = inc.durable(Lsn(150)).unwrap().unwrap();
        assert!(at_150["last_key"].is_null());
        let at_200 = inc.durable(Lsn(200)).unwrap().unwrap();
        assert_eq!(at_200["last_key"], json!(["7"]));
        assert_eq!(inc.durable(Lsn(300)), None);
    }

    #[test]
    fn signals_before_the_saved_position_are_not_handled_twice() {
        let cfg = SignalConfig {
            schema: "public".into(),
            table: "signals".into(),
            chunk_size: 10,
            insert_delete: false,
        };
        let inc = Incremental::new(cfg, None, Some(Lsn(500)));
        let at = |c| SourceInfo {
            commit_lsn: Some(Lsn(c)),
            ..SourceInfo::default()
        };
        assert!(inc.handled(at(499)));
        assert!(!inc.handled(at(500)));
        assert!(incremental_type(&json!({})));
        assert!(incremental_type(&json!({"type": "INCREMENTAL"})));
        assert!(!incremental_type(&json!({"type": "blocking"})));
        let p = patterns(&json!(["public\\.t.*", "x"]));
        assert!(p[0].is_match("public.t2") && !p[0].is_match("other.public.t"));
    }
}
