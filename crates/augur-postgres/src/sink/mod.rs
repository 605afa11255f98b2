//! The PostgreSQL sink, with Kafka Connect JDBC-sink semantics (both
//! `io.confluent.connect.jdbc.JdbcSinkConnector` and `io.debezium.connector.jdbc.JdbcSinkConnector`):
//! `insert.mode` insert / upsert / update, primary keys, deletes, `auto.create` and additive
//! `auto.evolve`, identifiers always quoted and values always bound. One transaction per batch;
//! the batch is durable when [`PgSink::write`] returns.
//!
//! Layout: [`config`] (typed settings), [`record`] (Kafka records → rows), [`render`] (values
//! → PostgreSQL input text), [`ddl`] (Connect schemas → tables), and the writer here.

pub mod config;
pub mod ddl;
pub mod record;
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

/// Maps a statement error: a type conflict or constraint violation is the target's fault
/// (retrying cannot help), a lost connection is transient.
fn write_error(what: &str, e: tokio_postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let kind = match &code[..2] {
            // data exception, integrity violation, syntax/undefined objects
            "22" | "23" | "42" => ErrorKind::DestinationSchema,
            "08" | "57" | "53" => ErrorKind::Connection,
            _ => ErrorKind::Destination,
        };
        return Error::new(kind, format!("{what}: {}", db.message())).with_source(e);
    }
    Error::new(ErrorKind::Connection, what.to_string()).with_source(e)
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
                let sql = ddl::create_table(&self.qualified(table), shape, self.cfg.flavor)?;
                tracing::info!(table = %table, "creating sink table");
                self.client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| write_error(&format!("cannot create table {table}"), e))?;
                self.load_table(table)
                    .await?
                    .ok_or_else(|| Error::new(ErrorKind::Internal, "created table not found"))?
            }
            Some(mut state) => {
                let missing: Vec<&Field> = shape
                    .fields
                    .iter()
                    .filter(|f| state.type_of(&f.name).is_none())
                    .collect();
                if !missing.is_empty() {
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
                        .with_hint(
                            "add the column, or set auto.evolve=true (schema.evolution=basic)",
                        ));
                    }
                    for f in missing {
                        let sql = ddl::add_column(&self.qualified(table), f, self.cfg.flavor)?;
                        tracing::info!(table = %table, column = %f.name, "adding sink column");
                        self.client.batch_execute(&sql).await.map_err(|e| {
                            write_error(&format!("cannot add column to {table}"), e)
                        })?;
                    }
                    state = self.load_table(table).await?.unwrap_or_default();
                    self.statements
                        .retain(|k, _| !k.starts_with(&format!("{table}\u{0}")));
                }
                state
            }
        };
        self.tables.insert(table.to_string(), state.clone());
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
            "CREATE TABLE IF NOT EXISTS {} (source_table text NOT NULL, key text NOT NULL, lsn bigint NOT NULL, \
             reason text NOT NULL, row_data text, model text, recorded_at timestamptz NOT NULL DEFAULT now(), \
             PRIMARY KEY (source_table, key, lsn))",
            self.qualified(name)
        );
        self.client
            .batch_execute(&sql)
            .await
            .map_err(|e| write_error(&format!("cannot create the dead-letter table {name}"), e))
    }

    /// Applies `writes` in one transaction. Per key only the last write of the batch is applied
    /// (rows in between are superseded), so replays and repeated keys converge. Returns once
    /// the transaction has committed.
    pub async fn write(&mut self, writes: &[RowWrite]) -> Result<(), Error> {
        self.write_with_dead_letters(writes, None).await
    }

    /// Like [`write`](Self::write), also recording `dead` rows in `table` in the same
    /// transaction (a replayed failure is recorded once).
    pub async fn write_with_dead_letters(
        &mut self,
        writes: &[RowWrite],
        dead: Option<(&str, &[DeadLetter])>,
    ) -> Result<(), Error> {
        let dead = dead.filter(|(_, d)| !d.is_empty());
        if writes.is_empty() && dead.is_none() {
            return Ok(());
        }
        // Group by (table, shape), keeping first-seen order, reducing per key.
        let mut groups: Vec<(String, Arc<RowShape>, Vec<&WriteOp>)> = Vec::new();
        for w in writes {
            match groups
                .iter_mut()
                .find(|(t, s, _)| *t == w.table && Arc::ptr_eq(s, &w.shape))
            {
                Some(g) => g.2.push(&w.op),
                None => groups.push((w.table.clone(), w.shape.clone(), vec![&w.op])),
            }
        }
        let mut prepared = Vec::new();
        for (table, shape, ops) in &groups {
            let state = self.ensure_table(table, shape).await?;
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
            prepared.push((table.clone(), shape.clone(), state, reduce(shape, ops)));
        }
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| write_error("cannot begin the sink transaction", e))?;
        let result = async {
            if let Some((table, rows)) = dead {
                let sql = format!(
                    "INSERT INTO {} (source_table, key, lsn, reason, row_data, model) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[], $6::text[]) ON CONFLICT DO NOTHING",
                    self.qualified(table)
                );
                let cols: (Vec<&str>, Vec<&str>, Vec<i64>, Vec<&str>, Vec<&str>, Vec<&str>) = (
                    rows.iter().map(|d| d.source_table.as_str()).collect(),
                    rows.iter().map(|d| d.key.as_str()).collect(),
                    rows.iter().map(|d| d.lsn).collect(),
                    rows.iter().map(|d| d.reason.as_str()).collect(),
                    rows.iter().map(|d| d.row.as_str()).collect(),
                    rows.iter().map(|d| d.model.as_str()).collect(),
                );
                self.client
                    .execute(&sql, &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5])
                    .await
                    .map_err(|e| write_error("cannot record dead letters", e))?;
            }
            for (table, shape, state, (rows, deletes)) in &prepared {
                if !deletes.is_empty() {
                    self.apply_deletes(table, shape, state, deletes).await?;
                }
                if !rows.is_empty() {
                    self.apply_rows(table, shape, state, rows).await?;
                }
            }
            Ok::<(), Error>(())
        }
        .await;
        match result {
            Ok(()) => self
                .client
                .batch_execute("COMMIT")
                .await
                .map_err(|e| write_error("cannot commit the sink transaction", e)),
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    fn columns_text(
        &self,
        shape: &RowShape,
        state: &TableState,
        rows: &[&Vec<Value>],
        cols: &[usize],
    ) -> Result<Vec<Vec<Option<String>>>, Error> {
        let mut out: Vec<Vec<Option<String>>> = cols
            .iter()
            .map(|_| Vec::with_capacity(rows.len()))
            .collect();
        for row in rows {
            for (slot, &ci) in out.iter_mut().zip(cols) {
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
    ) -> Result<(), Error> {
        let cols: Vec<usize> = (0..shape.fields.len()).collect();
        let names: Vec<String> = shape.fields.iter().map(|f| quote_ident(&f.name)).collect();
        let casts: Vec<String> = shape
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| format!("u.c{i}::{}", state.type_of(&f.name).unwrap_or("text")))
            .collect();
        let unnest: Vec<String> = (0..cols.len())
            .map(|i| format!("${}::text[]", i + 1))
            .collect();
        let aliases: Vec<String> = (0..cols.len()).map(|i| format!("c{i}")).collect();
        let qualified = self.qualified(table);
        let pk: Vec<String> = shape.pk.iter().map(|p| quote_ident(p)).collect();
        let mode = self.cfg.insert_mode;
        let skip_unchanged = self.cfg.skip_unchanged;
        let sql = move || match mode {
            InsertMode::Update if !pk.is_empty() => {
                let sets: Vec<String> = shape
                    .fields
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| !shape.pk.contains(&f.name))
                    .map(|(i, f)| format!("{} = {}", quote_ident(&f.name), casts[i]))
                    .collect();
                let mut conds: Vec<String> = shape
                    .pk
                    .iter()
                    .map(|p| {
                        let i = shape.fields.iter().position(|f| &f.name == p).unwrap_or(0);
                        format!("t.{} = {}", quote_ident(p), casts[i])
                    })
                    .collect();
                if skip_unchanged {
                    let changed: Vec<String> = shape
                        .fields
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| !shape.pk.contains(&f.name))
                        .map(|(i, f)| {
                            format!("t.{} IS DISTINCT FROM {}", quote_ident(&f.name), casts[i])
                        })
                        .collect();
                    if !changed.is_empty() {
                        conds.push(format!("({})", changed.join(" OR ")));
                    }
                }
                format!(
                    "UPDATE {qualified} AS t SET {} FROM UNNEST({}) AS u({}) WHERE {}",
                    if sets.is_empty() {
                        format!("{0} = t.{0}", pk[0])
                    } else {
                        sets.join(", ")
                    },
                    unnest.join(", "),
                    aliases.join(", "),
                    conds.join(" AND ")
                )
            }
            InsertMode::Upsert if !pk.is_empty() => {
                let updates: Vec<String> = shape
                    .fields
                    .iter()
                    .filter(|f| !shape.pk.contains(&f.name))
                    .map(|f| format!("{0} = EXCLUDED.{0}", quote_ident(&f.name)))
                    .collect();
                let action = if updates.is_empty() {
                    "NOTHING".to_string()
                } else {
                    format!("UPDATE SET {}", updates.join(", "))
                };
                format!(
                    "INSERT INTO {qualified} ({}) SELECT {} FROM UNNEST({}) AS u({}) ON CONFLICT ({}) DO {action}",
                    names.join(", "),
                    casts.join(", "),
                    unnest.join(", "),
                    aliases.join(", "),
                    pk.join(", ")
                )
            }
            _ => format!(
                "INSERT INTO {qualified} ({}) SELECT {} FROM UNNEST({}) AS u({})",
                names.join(", "),
                casts.join(", "),
                unnest.join(", "),
                aliases.join(", ")
            ),
        };
        let key = format!("{table}\u{0}{:p}\u{0}{mode:?}", shape as *const RowShape);
        let stmt = self.statement(key, sql).await?;
        let data = self.columns_text(shape, state, rows, &cols)?;
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

fn sorted(v: &[String]) -> Vec<&String> {
    let mut s: Vec<&String> = v.iter().collect();
    s.sort();
    s
}

/// Reduces a group's operations to the last one per primary key: upsert rows and delete keys
/// (disjoint). Without a key every row is kept (append).
fn reduce<'a>(shape: &RowShape, ops: &[&'a WriteOp]) -> (Vec<&'a Vec<Value>>, Vec<&'a Vec<Value>>) {
    if shape.pk.is_empty() {
        let rows = ops.iter().filter_map(|o| match o {
            WriteOp::Row(r) => Some(r),
            WriteOp::Delete(_) => None,
        });
        return (rows.collect(), Vec::new());
    }
    let pk_idx: Vec<usize> = shape
        .pk
        .iter()
        .filter_map(|p| shape.fields.iter().position(|f| &f.name == p))
        .collect();
    let mut last: HashMap<String, usize> = HashMap::with_capacity(ops.len());
    let key_of = |op: &WriteOp| -> String {
        match op {
            WriteOp::Row(r) => format!("{:?}", pk_idx.iter().map(|&i| &r[i]).collect::<Vec<_>>()),
            WriteOp::Delete(k) => format!("{:?}", k.iter().collect::<Vec<_>>()),
        }
    };
    for (i, op) in ops.iter().enumerate() {
        last.insert(key_of(op), i);
    }
    let mut rows = Vec::new();
    let mut deletes = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if last.get(&key_of(op)) != Some(&i) {
            continue;
        }
        match op {
            WriteOp::Row(r) => rows.push(r),
            WriteOp::Delete(k) => deletes.push(k),
        }
    }
    (rows, deletes)
}
