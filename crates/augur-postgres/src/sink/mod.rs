//! The PostgreSQL sink, with Kafka Connect JDBC-sink semantics (both
//! `io.confluent.connect.jdbc.JdbcSinkConnector` and `io.debezium.connector.jdbc.JdbcSinkConnector`):
//! `insert.mode` insert / upsert / update, primary keys, deletes, `auto.create` and additive
//! `auto.evolve`, identifiers always quoted and values always bound. One transaction per batch;
//! the batch is durable when [`PgSink::write`] returns.
//!
//! A batch is first collapsed (`collapse`): per key only its last write counts, a truncate
//! discards what came before it, so the result equals applying every write in order. Rows the
//! target refuses (a constraint, a value its column cannot hold) can be isolated one by one
//! and left out as dead letters instead of failing the batch; error texts never carry values.
//!
//! Layout: [`config`] (typed settings), [`record`] (Kafka records → rows), [`render`] (values
//! → PostgreSQL input text), [`ddl`] (Connect schemas → tables), and the writer here.

mod collapse;
pub mod config;
pub mod ddl;
pub mod render;

use std::collections::HashMap;
use std::sync::Arc;

use augur_core::connect::{Field, Value};
use augur_core::{Error, ErrorKind};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement};

use self::config::{InsertMode, SinkConfig};
use crate::conn::sql_error;
use crate::source::setup::quote_ident;

/// The columns of rows bound for one table: every field with its Connect schema, and which of
/// them form the primary key. Shared by all rows of one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct RowShape {
    /// Columns in order.
    pub fields: Vec<Field>,
    /// Primary-key column names (empty: no key, rows are appended).
    pub pk: Vec<String>,
}

/// What to do with one row.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Insert, upsert or update (per `insert.mode`) a row: values aligned with the shape's fields.
    Row(Vec<Value>),
    /// Delete the row with these primary-key values (aligned with the shape's `pk`).
    Delete(Vec<Value>),
    /// Empty the table (the source table was truncated); the shape is not used.
    Truncate,
}

/// One write for the sink.
#[derive(Debug, Clone)]
pub struct RowWrite {
    /// Target table (unqualified; created in the configured schema).
    pub table: String,
    /// The row shape.
    pub shape: Arc<RowShape>,
    /// The operation.
    pub op: WriteOp,
}

/// A row that could not be processed, recorded in the dead-letter table in the same
/// transaction as the batch it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// `schema.table` the row came from.
    pub source_table: String,
    /// The row's key as JSON (`{"id":7}`).
    pub key: String,
    /// The LSN of the change (with the key, makes a replayed failure a duplicate).
    pub lsn: i64,
    /// Why it failed, as a stable code (`invalid_input`, `sink_refused`, …).
    pub code: String,
    /// Why it failed (names the field; no values).
    pub reason: String,
    /// The row as JSON, for whoever fixes it.
    pub row: String,
    /// The model that was asked.
    pub model: String,
}

/// A table as it exists in the database: column names → `format_type` of each.
#[derive(Debug, Clone, Default)]
struct TableState {
    columns: Vec<(String, String)>,
    primary_key: Vec<String>,
}

impl TableState {
    fn type_of(&self, col: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(c, _)| c == col)
            .map(|(_, t)| t.as_str())
    }
}

/// Writes batches of rows into PostgreSQL.
pub struct PgSink {
    cfg: SinkConfig,
    client: Client,
    tables: HashMap<String, TableState>,
    statements: HashMap<String, Statement>,
}

impl std::fmt::Debug for PgSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSink")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Maps a statement error: a value the column cannot hold or a violated constraint is the row's
/// fault ([`ErrorKind::Data`], so the row can be isolated), other type or schema conflicts are
/// the target's fault (retrying cannot help), a lost connection is transient. Messages of
/// class 22/23 errors can quote row values, so only the condition and the object names are
/// kept, never the server's message or detail.
fn write_error(what: &str, e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if let Some(reason) = row_fault(db) {
            return Error::new(ErrorKind::Data, format!("{what}: {reason}"));
        }
        let kind = match &code[..2] {
            "42" => ErrorKind::DestinationSchema,
            "08" | "57" | "53" | "40" => ErrorKind::Connection,
            _ => ErrorKind::Destination,
        };
        return Error::new(kind, format!("{what}: {}", db.message()));
    }
    Error::new(ErrorKind::Connection, what.to_string()).with_source(e)
}

/// Why the target refused a row (SQLSTATE class 22 or 23), naming the condition, constraint,
/// table and column — never a value. `None` for other errors.
fn row_fault(db: &tokio_postgres::error::DbError) -> Option<String> {
    let code = db.code().code();
    let condition = match code {
        "23505" => "unique violation",
        "23503" => "foreign key violation",
        "23502" => "not-null violation",
        "23514" => "check violation",
        "23P01" => "exclusion violation",
        "22001" => "value too long for the column",
        "22003" => "numeric value out of range",
        "22P02" => "invalid text representation",
        "22007" | "22008" => "invalid date/time value",
        "22012" => "division by zero",
        "22021" => "invalid byte sequence for the encoding",
        c if c.starts_with("23") => "integrity constraint violation",
        c if c.starts_with("22") => "data exception",
        _ => return None,
    };
    let mut out = format!("{condition} (SQLSTATE {code})");
    if let Some(c) = db.constraint() {
        out.push_str(&format!(" on constraint \"{c}\""));
    }
    if let Some(c) = db.column() {
        out.push_str(&format!(" in column \"{c}\""));
    }
    Some(out)
}

/// A write the target refused, left out of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its index in the batch.
    pub index: usize,
    /// Why (no values).
    pub reason: String,
}

/// Turns a refused write into a dead-letter row (`None`: only report it).
pub type DeadLetterOf<'a> = &'a (dyn Fn(&Rejected) -> Option<DeadLetter> + Sync);

/// One batch for [`PgSink::write_batch`].
#[derive(Clone, Copy, Default)]
pub struct Batch<'a> {
    /// The writes, in source order.
    pub writes: &'a [RowWrite],
    /// Rows to record in the dead-letter table in the same transaction.
    pub dead_letters: &'a [DeadLetter],
    /// The dead-letter table (needed when rows are recorded).
    pub dead_letter_table: Option<&'a str>,
    /// Isolate rows the target refuses instead of failing the batch; each becomes what this
    /// returns.
    pub isolate: Option<DeadLetterOf<'a>>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("writes", &self.writes.len())
            .field("dead_letters", &self.dead_letters.len())
            .field("isolate", &self.isolate.is_some())
            .finish()
    }
}

/// Applies every write of a collapsed batch in one statement per group, or one by one behind
/// savepoints to find the rows the target refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Apply {
    Whole,
    RowByRow,
}

impl PgSink {
    /// Connects the sink.
    pub async fn connect(cfg: SinkConfig) -> Result<PgSink, Error> {
        let client = cfg.connect.connect_sql().await?;
        Ok(PgSink {
            cfg,
            client,
            tables: HashMap::new(),
            statements: HashMap::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SinkConfig {
        &self.cfg
    }

    /// The SQL client (for callers that write their own rows in the same database, such as
    /// the dead-letter table).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote_ident(&self.cfg.schema), quote_ident(table))
    }

    async fn load_table(&self, table: &str) -> Result<Option<TableState>, Error> {
        let rows = self
            .client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                 JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&self.cfg.schema, &table],
            )
            .await
            .map_err(|e| sql_error("reading the sink table", e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let pk = self
            .client
            .query(
                "SELECT a.attname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY k.ord",
                &[&self.cfg.schema, &table],
            )
            .await
            .map_err(|e| sql_error("reading the sink table's key", e))?;
        Ok(Some(TableState {
            columns: rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            primary_key: pk.iter().map(|r| r.get(0)).collect(),
        }))
    }

    /// Makes sure `table` exists with every column of `shape` (creating or evolving it when
    /// allowed), and returns its state.
    async fn ensure_table(&mut self, table: &str, shape: &RowShape) -> Result<TableState, Error> {
        let known = match self.tables.get(table) {
            Some(t) => Some(t.clone()),
            None => self.load_table(table).await?,
        };
        let state = match known {
            None => {
                if !self.cfg.auto_create {
                    return Err(Error::new(
                        ErrorKind::DestinationSchema,
                        format!("table {} does not exist and auto.create is false", self.qualified(table)),
                    )
                    .with_hint("create the table, or set auto.create=true (schema.evolution=basic for the Debezium sink)"));
                }
                let mut sql = ddl::create_table(&self.qualified(table), shape, self.cfg.flavor)?;
                if let Some(reg) = &self.cfg.registry_table {
                    sql.push_str(&format!(
                        "; CREATE TABLE IF NOT EXISTS {0} (table_name text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now()); \
                         INSERT INTO {0} (table_name) VALUES ({1}) ON CONFLICT DO NOTHING",
                        self.qualified(reg),
                        quote_literal(table)
                    ));
                }
                tracing::info!(table = %table, "creating sink table");
                match self.client.batch_execute(&sql).await {
                    // IF NOT EXISTS: the table may be another task's, with fewer columns.
                    Ok(()) => {
                        let state = self.load_table(table).await?.ok_or_else(|| {
                            Error::new(ErrorKind::Internal, "created table not found")
                        })?;
                        self.evolve(table, shape, state).await?
                    }
                    // Another task (here or on another worker) created it meanwhile — two
                    // concurrent CREATE TABLEs race in the catalog even with IF NOT EXISTS. As
                    // Kafka Connect's JDBC sink does: look again, and use (and amend) it.
                    Err(e) => match self.load_table(table).await? {
                        Some(state) => {
                            tracing::info!(table = %table, "sink table was created concurrently; using it");
                            self.evolve(table, shape, state).await?
                        }
                        None => {
                            return Err(write_error(&format!("cannot create table {table}"), e));
                        }
                    },
                }
            }
            Some(state) => self.evolve(table, shape, state).await?,
        };
        self.tables.insert(table.to_string(), state.clone());
        Ok(state)
    }

    /// Adds the columns of `shape` that `table` lacks (when allowed); returns its new state.
    async fn evolve(
        &mut self,
        table: &str,
        shape: &RowShape,
        mut state: TableState,
    ) -> Result<TableState, Error> {
        let missing: Vec<&Field> = shape
            .fields
            .iter()
            .filter(|f| state.type_of(&f.name).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(state);
        }
        if !self.cfg.auto_evolve {
            return Err(Error::new(
                ErrorKind::DestinationSchema,
                format!(
                    "table {} has no column {} and auto.evolve is false",
                    self.qualified(table),
                    missing
                        .iter()
                        .map(|f| quote_ident(&f.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_hint("add the column, or set auto.evolve=true (schema.evolution=basic)"));
        }
        for f in missing {
            let sql = ddl::add_column(&self.qualified(table), f, self.cfg.flavor)?;
            tracing::info!(table = %table, column = %f.name, "adding sink column");
            self.client
                .batch_execute(&sql)
                .await
                .map_err(|e| write_error(&format!("cannot add column to {table}"), e))?;
        }
        state = self.load_table(table).await?.unwrap_or_default();
        self.statements
            .retain(|k, _| !k.starts_with(&format!("{table}\u{0}")));
        Ok(state)
    }

    async fn statement(
        &mut self,
        key: String,
        sql: impl FnOnce() -> String,
    ) -> Result<Statement, Error> {
        if let Some(s) = self.statements.get(&key) {
            return Ok(s.clone());
        }
        let text = sql();
        let stmt = self
            .client
            .prepare(&text)
            .await
            .map_err(|e| write_error("cannot prepare the sink statement", e))?;
        self.statements.insert(key, stmt.clone());
        Ok(stmt)
    }

    /// Creates the dead-letter table `name` if it does not exist.
    pub async fn ensure_dead_letter_table(&mut self, name: &str) -> Result<(), Error> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {0} (source_table text NOT NULL, key text NOT NULL, lsn bigint NOT NULL, \
             reason text NOT NULL, row_data text, model text, recorded_at timestamptz NOT NULL DEFAULT now(), \
             reason_code text, PRIMARY KEY (source_table, key, lsn)); \
             ALTER TABLE {0} ADD COLUMN IF NOT EXISTS reason_code text",
            self.qualified(name)
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| write_error(&format!("cannot create the dead-letter table {name}"), e))
    }

    /// Applies `writes` in one transaction: per key only the last write of the batch counts
    /// (rows in between are superseded), so replays and repeated keys converge. Returns once
    /// the transaction has committed.
    pub async fn write(&mut self, writes: &[RowWrite]) -> Result<(), Error> {
        self.write_batch(Batch {
            writes,
            ..Batch::default()
        })
        .await
        .map(drop)
    }

    /// Like [`write`](Self::write), also recording `dead` rows in `table` in the same
    /// transaction (a replayed failure is recorded once).
    pub async fn write_with_dead_letters(
        &mut self,
        writes: &[RowWrite],
        dead: Option<(&str, &[DeadLetter])>,
    ) -> Result<(), Error> {
        self.write_batch(Batch {
            writes,
            dead_letters: dead.map_or(&[], |d| d.1),
            dead_letter_table: dead.map(|d| d.0),
            isolate: None,
        })
        .await
        .map(drop)
    }

    /// Writes one batch in one transaction and returns the writes the target refused (only
    /// with [`Batch::isolate`]; their dead letters are committed with the rest).
    pub async fn write_batch(&mut self, batch: Batch<'_>) -> Result<Vec<Rejected>, Error> {
        if batch.writes.is_empty() && batch.dead_letters.is_empty() {
            return Ok(Vec::new());
        }
        let plan = collapse::collapse(batch.writes);
        let mut states = Vec::with_capacity(plan.len());
        for tw in &plan {
            states.push(self.prepare_table(tw).await?);
        }
        match self.transaction(&batch, &plan, &states, Apply::Whole).await {
            Err(e) if e.kind() == ErrorKind::Data && batch.isolate.is_some() => {
                tracing::warn!(error = %e, "the target refused a row; isolating the batch's rows");
                self.transaction(&batch, &plan, &states, Apply::RowByRow)
                    .await
            }
            other => other,
        }
    }

    /// Creates or evolves `tw`'s table for its rows and checks its key; `None` when the table
    /// does not exist and nothing creates it (only deletes or a truncate for it).
    async fn prepare_table(
        &mut self,
        tw: &collapse::TableWrites<'_>,
    ) -> Result<Option<TableState>, Error> {
        let mut state = None;
        for g in tw.groups.iter().filter(|g| !g.delete) {
            let s = self.ensure_table(tw.table, g.shape).await?;
            self.check_key(tw.table, g.shape, &s)?;
            state = Some(s);
        }
        if state.is_none() {
            state = match self.tables.get(tw.table) {
                Some(t) => Some(t.clone()),
                None => self.load_table(tw.table).await?,
            };
        }
        if let (None, Some(shape)) = (&state, tw.truncate)
            && self.cfg.auto_create
            && !shape.fields.is_empty()
        {
            state = Some(self.ensure_table(tw.table, shape).await?);
        }
        Ok(state)
    }

    fn check_key(&self, table: &str, shape: &RowShape, state: &TableState) -> Result<(), Error> {
        if self.cfg.insert_mode == InsertMode::Upsert
            && !shape.pk.is_empty()
            && !state.primary_key.is_empty()
            && sorted(&state.primary_key) != sorted(&shape.pk)
        {
            return Err(Error::new(
                ErrorKind::DestinationSchema,
                format!(
                    "table {} has primary key ({}) but the sink upserts on ({})",
                    self.qualified(table),
                    state.primary_key.join(", "),
                    shape.pk.join(", ")
                ),
            )
            .with_hint("set pk.fields to the table's primary key columns"));
        }
        Ok(())
    }

    async fn transaction(
        &mut self,
        batch: &Batch<'_>,
        plan: &[collapse::TableWrites<'_>],
        states: &[Option<TableState>],
        how: Apply,
    ) -> Result<Vec<Rejected>, Error> {
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| write_error("cannot begin the sink transaction", e))?;
        let result = async {
            let rejected = self.apply_plan(plan, states, how).await?;
            let isolated: Vec<DeadLetter> = match batch.isolate {
                Some(f) => rejected.iter().filter_map(f).collect(),
                None => Vec::new(),
            };
            if let Some(table) = batch.dead_letter_table {
                for rows in [batch.dead_letters, &isolated[..]] {
                    if !rows.is_empty() {
                        self.record_dead_letters(table, rows).await?;
                    }
                }
            }
            Ok::<_, Error>(rejected)
        }
        .await;
        match result {
            Ok(rejected) => {
                self.client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| write_error("cannot commit the sink transaction", e))?;
                Ok(rejected)
            }
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn apply_plan(
        &mut self,
        plan: &[collapse::TableWrites<'_>],
        states: &[Option<TableState>],
        how: Apply,
    ) -> Result<Vec<Rejected>, Error> {
        let mut rejected = Vec::new();
        for (tw, state) in plan.iter().zip(states) {
            let Some(state) = state else { continue };
            if tw.truncate.is_some() {
                let sql = format!("TRUNCATE TABLE {}", self.qualified(tw.table));
                self.client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| write_error(&format!("cannot truncate {}", tw.table), e))?;
            }
            for g in &tw.groups {
                if how == Apply::Whole {
                    let values: Vec<&Vec<Value>> = g.items.iter().map(|(_, v)| *v).collect();
                    self.apply_group(tw.table, g, state, &values).await?;
                    continue;
                }
                for &(index, v) in &g.items {
                    if let Some(reason) = self.apply_one(tw.table, g, state, v).await? {
                        rejected.push(Rejected { index, reason });
                    }
                }
            }
        }
        Ok(rejected)
    }

    async fn apply_group(
        &mut self,
        table: &str,
        g: &collapse::Group<'_>,
        state: &TableState,
        values: &[&Vec<Value>],
    ) -> Result<(), Error> {
        if g.delete {
            return self.apply_deletes(table, g.shape, state, values).await;
        }
        // Rows holding the "unavailable" placeholder go in statements that leave those
        // columns as stored, one statement per set of such columns.
        let masks: Vec<Vec<bool>> = values.iter().map(|r| self.unavailable(r)).collect();
        let mut distinct: Vec<&Vec<bool>> = Vec::new();
        for m in &masks {
            if !distinct.contains(&m) {
                distinct.push(m);
            }
        }
        for mask in distinct {
            let same: Vec<&Vec<Value>> = values
                .iter()
                .zip(&masks)
                .filter(|(_, m)| *m == mask)
                .map(|(v, _)| *v)
                .collect();
            self.apply_rows(table, g.shape, state, &same, mask).await?;
        }
        Ok(())
    }

    /// Which values of `row` are Debezium's "unavailable" placeholder.
    fn unavailable(&self, row: &[Value]) -> Vec<bool> {
        let Some(p) = self.cfg.unavailable_placeholder.as_deref() else {
            return vec![false; row.len()];
        };
        row.iter().map(|v| is_placeholder(v, p)).collect()
    }

    /// Applies one row behind a savepoint; `Some(reason)` when the target refused it.
    async fn apply_one(
        &mut self,
        table: &str,
        g: &collapse::Group<'_>,
        state: &TableState,
        v: &Vec<Value>,
    ) -> Result<Option<String>, Error> {
        self.client
            .batch_execute("SAVEPOINT augur_row")
            .await
            .map_err(|e| write_error("cannot set a savepoint", e))?;
        match self.apply_group(table, g, state, &[v]).await {
            Ok(()) => {
                self.client
                    .batch_execute("RELEASE SAVEPOINT augur_row")
                    .await
                    .map_err(|e| write_error("cannot release a savepoint", e))?;
                Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::Data => {
                self.client
                    .batch_execute("ROLLBACK TO SAVEPOINT augur_row")
                    .await
                    .map_err(|e| write_error("cannot roll back to a savepoint", e))?;
                Ok(Some(e.message().to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// The stored text of `columns` for each of `keys` (values of `key_fields`, the table's
    /// key) in `table`: `None` for a key with no row (or no such table). Used to fill in what
    /// a change carries as the "unavailable" placeholder.
    pub async fn stored_text(
        &mut self,
        table: &str,
        key_fields: &[Field],
        keys: &[Vec<Value>],
        columns: &[String],
    ) -> Result<Vec<Option<Vec<Option<String>>>>, Error> {
        let mut out = vec![None; keys.len()];
        let Some(state) = self.load_table(table).await? else {
            return Ok(out);
        };
        if keys.is_empty() || key_fields.is_empty() {
            return Ok(out);
        }
        let conds: Vec<String> = key_fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let ty = state.type_of(&f.name).unwrap_or("text");
                format!("t.{} = k.k{i}::{ty}", quote_ident(&f.name))
            })
            .collect();
        let cols: Vec<String> = columns
            .iter()
            .map(|c| format!("t.{}::text", quote_ident(c)))
            .collect();
        let sql = format!(
            "SELECT k.ord::int8{} FROM UNNEST({}) WITH ORDINALITY AS k({}, ord) JOIN {} AS t ON {}",
            cols.iter().map(|c| format!(", {c}")).collect::<String>(),
            (1..=key_fields.len())
                .map(|i| format!("${i}::text[]"))
                .collect::<Vec<_>>()
                .join(", "),
            (0..key_fields.len())
                .map(|i| format!("k{i}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.qualified(table),
            conds.join(" AND ")
        );
        let mut params: Vec<Vec<Option<String>>> = vec![Vec::new(); key_fields.len()];
        for k in keys {
            for (i, f) in key_fields.iter().enumerate() {
                let target = state.type_of(&f.name).unwrap_or("text");
                let v = render::render(&f.schema, &k[i], target).map_err(|p| {
                    Error::new(ErrorKind::Data, format!("key column \"{}\": {p}", f.name))
                })?;
                params[i].push(v);
            }
        }
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        let rows = self
            .client
            .query(&sql, &refs)
            .await
            .map_err(|e| write_error(&format!("cannot read stored rows of {table}"), e))?;
        for r in rows {
            let ord: i64 = r.get(0);
            let vals: Vec<Option<String>> = (1..=columns.len()).map(|i| r.get(i)).collect();
            if let Some(slot) = usize::try_from(ord - 1).ok().and_then(|i| out.get_mut(i)) {
                *slot = Some(vals);
            }
        }
        Ok(out)
    }

    async fn record_dead_letters(&self, table: &str, rows: &[DeadLetter]) -> Result<(), Error> {
        let sql = format!(
            "INSERT INTO {} (source_table, key, lsn, reason, row_data, model, reason_code) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[]) \
             ON CONFLICT DO NOTHING",
            self.qualified(table)
        );
        let text = |f: fn(&DeadLetter) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
        let lsns: Vec<i64> = rows.iter().map(|d| d.lsn).collect();
        let (tables, keys, reasons) = (
            text(|d| &d.source_table),
            text(|d| &d.key),
            text(|d| &d.reason),
        );
        let (data, models, codes) = (text(|d| &d.row), text(|d| &d.model), text(|d| &d.code));
        self.client
            .execute(
                &sql,
                &[&tables, &keys, &lsns, &reasons, &data, &models, &codes],
            )
            .await
            .map_err(|e| write_error("cannot record dead letters", e))?;
        Ok(())
    }

    fn columns_text(
        &self,
        shape: &RowShape,
        state: &TableState,
        rows: &[&Vec<Value>],
        cols: &[usize],
        unavailable: &[bool],
    ) -> Result<Vec<Vec<Option<String>>>, Error> {
        let mut out: Vec<Vec<Option<String>>> = cols
            .iter()
            .map(|_| Vec::with_capacity(rows.len()))
            .collect();
        for row in rows {
            for (slot, &ci) in out.iter_mut().zip(cols) {
                if unavailable.get(ci).copied().unwrap_or(false) {
                    slot.push(None);
                    continue;
                }
                let f = &shape.fields[ci];
                let target = state.type_of(&f.name).unwrap_or("text");
                let v = render::render(&f.schema, &row[ci], target).map_err(|p| {
                    Error::new(ErrorKind::Data, format!("column \"{}\": {p}", f.name))
                })?;
                slot.push(v);
            }
        }
        Ok(out)
    }

    async fn apply_rows(
        &mut self,
        table: &str,
        shape: &RowShape,
        state: &TableState,
        rows: &[&Vec<Value>],
        unavailable: &[bool],
    ) -> Result<(), Error> {
        let cols: Vec<usize> = (0..shape.fields.len()).collect();
        let parts = RowsSql::new(shape, state, self.qualified(table), unavailable);
        let mode = self.cfg.insert_mode;
        let skip_unchanged = self.cfg.skip_unchanged;
        let key = format!(
            "{table}\u{0}{:p}\u{0}{mode:?}\u{0}{unavailable:?}",
            shape as *const RowShape
        );
        let stmt = self
            .statement(key, || parts.sql(mode, skip_unchanged))
            .await?;
        let mut data = self.columns_text(shape, state, rows, &cols, unavailable)?;
        for (i, col) in data.iter_mut().enumerate() {
            if !parts.kept(i) {
                col.iter_mut().for_each(|v| *v = None);
            }
        }
        let params: Vec<&(dyn ToSql + Sync)> =
            data.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        self.client
            .execute(&stmt, &params)
            .await
            .map_err(|e| write_error(&format!("cannot write rows into {table}"), e))?;
        Ok(())
    }

    async fn apply_deletes(
        &mut self,
        table: &str,
        shape: &RowShape,
        state: &TableState,
        keys: &[&Vec<Value>],
    ) -> Result<(), Error> {
        if shape.pk.is_empty() {
            return Ok(());
        }
        let pk_fields: Vec<&Field> = shape
            .pk
            .iter()
            .filter_map(|p| shape.fields.iter().find(|f| &f.name == p))
            .collect();
        let qualified = self.qualified(table);
        let conds: Vec<String> = pk_fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                format!(
                    "t.{} = u.k{i}::{}",
                    quote_ident(&f.name),
                    state.type_of(&f.name).unwrap_or("text")
                )
            })
            .collect();
        let unnest: Vec<String> = (0..pk_fields.len())
            .map(|i| format!("${}::text[]", i + 1))
            .collect();
        let aliases: Vec<String> = (0..pk_fields.len()).map(|i| format!("k{i}")).collect();
        let sql = move || {
            format!(
                "DELETE FROM {qualified} AS t USING UNNEST({}) AS u({}) WHERE {}",
                unnest.join(", "),
                aliases.join(", "),
                conds.join(" AND ")
            )
        };
        let key = format!("{table}\u{0}{:p}\u{0}delete", shape as *const RowShape);
        let stmt = self.statement(key, sql).await?;
        let mut data: Vec<Vec<Option<String>>> = pk_fields
            .iter()
            .map(|_| Vec::with_capacity(keys.len()))
            .collect();
        for k in keys {
            for (i, f) in pk_fields.iter().enumerate() {
                let target = state.type_of(&f.name).unwrap_or("text");
                data[i].push(render::render(&f.schema, &k[i], target).map_err(|p| {
                    Error::new(ErrorKind::Data, format!("key column \"{}\": {p}", f.name))
                })?);
            }
        }
        let params: Vec<&(dyn ToSql + Sync)> =
            data.iter().map(|c| c as &(dyn ToSql + Sync)).collect();
        self.client
            .execute(&stmt, &params)
            .await
            .map_err(|e| write_error(&format!("cannot delete rows from {table}"), e))?;
        Ok(())
    }
}

/// A SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The pieces of the statement that writes rows of one shape: the target table and the
/// quoted, cast and aliased `UNNEST` columns.
struct RowsSql<'a> {
    shape: &'a RowShape,
    unavailable: &'a [bool],
    qualified: String,
    names: Vec<String>,
    casts: Vec<String>,
    unnest: Vec<String>,
    aliases: Vec<String>,
    pk: Vec<String>,
}

impl<'a> RowsSql<'a> {
    /// Quotes, casts and aliases the columns of `shape` as they exist in `state`.
    fn new(
        shape: &'a RowShape,
        state: &TableState,
        qualified: String,
        unavailable: &'a [bool],
    ) -> Self {
        let n = shape.fields.len();
        let casts = shape
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| format!("u.c{i}::{}", state.type_of(&f.name).unwrap_or("text")))
            .collect();
        RowsSql {
            shape,
            unavailable,
            qualified,
            names: shape.fields.iter().map(|f| quote_ident(&f.name)).collect(),
            casts,
            unnest: (0..n).map(|i| format!("${}::text[]", i + 1)).collect(),
            aliases: (0..n).map(|i| format!("c{i}")).collect(),
            pk: shape.pk.iter().map(|p| quote_ident(p)).collect(),
        }
    }

    /// Whether column `i` is written (its value is not an unavailable TOASTed one).
    fn kept(&self, i: usize) -> bool {
        !self.unavailable.get(i).copied().unwrap_or(false)
    }

    /// The written non-key columns, with their positions.
    fn updatable(&self) -> impl Iterator<Item = (usize, &'a Field)> + '_ {
        self.shape
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| !self.shape.pk.contains(&f.name) && self.kept(*i))
    }

    /// The statement for `insert.mode` (without a key, every mode appends).
    fn sql(&self, mode: InsertMode, skip_unchanged: bool) -> String {
        match mode {
            InsertMode::Update if !self.pk.is_empty() => self.update_sql(skip_unchanged),
            InsertMode::Upsert if !self.pk.is_empty() => self.upsert_sql(),
            _ => format!(
                "INSERT INTO {} ({}) SELECT {} FROM UNNEST({}) AS u({})",
                self.qualified,
                self.names.join(", "),
                self.casts.join(", "),
                self.unnest.join(", "),
                self.aliases.join(", ")
            ),
        }
    }

    /// `UPDATE … FROM UNNEST(…) WHERE pk` (and, with `skip_unchanged`, some column differs).
    fn update_sql(&self, skip_unchanged: bool) -> String {
        let casts = &self.casts;
        let sets: Vec<String> = self
            .updatable()
            .map(|(i, f)| format!("{} = {}", quote_ident(&f.name), casts[i]))
            .collect();
        let fields = &self.shape.fields;
        let mut conds: Vec<String> = self
            .shape
            .pk
            .iter()
            .map(|p| {
                let i = fields.iter().position(|f| &f.name == p).unwrap_or(0);
                format!("t.{} = {}", quote_ident(p), casts[i])
            })
            .collect();
        if skip_unchanged {
            let changed: Vec<String> = self
                .updatable()
                .map(|(i, f)| format!("t.{} IS DISTINCT FROM {}", quote_ident(&f.name), casts[i]))
                .collect();
            if !changed.is_empty() {
                conds.push(format!("({})", changed.join(" OR ")));
            }
        }
        format!(
            "UPDATE {} AS t SET {} FROM UNNEST({}) AS u({}) WHERE {}",
            self.qualified,
            if sets.is_empty() {
                format!("{0} = t.{0}", self.pk[0])
            } else {
                sets.join(", ")
            },
            self.unnest.join(", "),
            self.aliases.join(", "),
            conds.join(" AND ")
        )
    }

    /// `INSERT … SELECT … FROM UNNEST(…) ON CONFLICT (pk) DO UPDATE` (or `DO NOTHING`).
    fn upsert_sql(&self) -> String {
        let updates: Vec<String> = self
            .updatable()
            .map(|(_, f)| format!("{0} = EXCLUDED.{0}", quote_ident(&f.name)))
            .collect();
        let action = if updates.is_empty() {
            "NOTHING".to_string()
        } else {
            format!("UPDATE SET {}", updates.join(", "))
        };
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM UNNEST({}) AS u({}) ON CONFLICT ({}) DO {action}",
            self.qualified,
            self.names.join(", "),
            self.casts.join(", "),
            self.unnest.join(", "),
            self.aliases.join(", "),
            self.pk.join(", ")
        )
    }
}

/// The tables this sink created (recorded in [`SinkConfig::registry_table`]) that no longer
/// exist.
pub async fn dropped_tables(sink: &PgSink) -> Result<Vec<String>, Error> {
    let Some(reg) = &sink.cfg.registry_table else {
        return Ok(Vec::new());
    };
    let sql = format!(
        "SELECT r.table_name FROM {} r WHERE to_regclass(quote_ident($1) || '.' || quote_ident(r.table_name)) IS NULL ORDER BY 1",
        sink.qualified(reg)
    );
    let exists = sink
        .client
        .query_one(
            "SELECT to_regclass(quote_ident($1) || '.' || quote_ident($2)) IS NOT NULL",
            &[&sink.cfg.schema, reg],
        )
        .await
        .map_err(|e| write_error("cannot look for the sink's table registry", e))?
        .get::<_, bool>(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = sink
        .client
        .query(&sql, &[&sink.cfg.schema])
        .await
        .map_err(|e| write_error("cannot read the sink's table registry", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether `v` is Debezium's placeholder `p` for an unchanged TOASTed value: the text, its
/// bytes (`bytea`), or a one-element text array.
pub fn is_placeholder(v: &Value, p: &str) -> bool {
    match v {
        Value::String(s) => s == p,
        Value::Bytes(b) => b == p.as_bytes(),
        Value::Array(a) => matches!(a.as_slice(), [Value::String(s)] if s == p),
        _ => false,
    }
}

fn sorted(v: &[String]) -> Vec<&String> {
    let mut s: Vec<&String> = v.iter().collect();
    s.sort();
    s
}
