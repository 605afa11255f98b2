//! [`Encoder`]: change events → Kafka records in Debezium's envelope, with the schema blocks
//! printed once per table shape and reused for every event.

use std::collections::HashMap;
use std::sync::Arc;

use augur_core::connect::{Field, Schema, SchemaType, Value};
use augur_core::event::{ChangeEvent, KeyChange, Op, SnapshotMarker, TableSchema};

use crate::json::{self, ConverterConfig};
use crate::out::{Headers, RecordOut, RecordRef};
use crate::unwrap::{UnwrapConfig, Unwrapped};
use augur_core::record::Record;

/// How events are shaped and named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeConfig {
    /// `topic.prefix` (alias `database.server.name`): the logical server name.
    pub topic_prefix: String,
    /// `database.dbname`, printed in `source.db`.
    pub database: String,
    /// Printed in `source.version`.
    pub connector_version: String,
    /// Key converter settings (`key.converter.*`).
    pub key_converter: ConverterConfig,
    /// Value converter settings (`value.converter.*`).
    pub value_converter: ConverterConfig,
    /// `tombstones.on.delete`: follow each delete with a null-value record.
    pub tombstones_on_delete: bool,
    /// The `ExtractNewRecordState` transform, when configured.
    pub unwrap: Option<UnwrapConfig>,
    /// `topic.heartbeat.prefix` (default `__debezium-heartbeat`).
    pub heartbeat_topic_prefix: String,
    /// `extended.headers.enabled`: add the `__debezium.context.*` headers to every record.
    pub extended_headers: bool,
    /// This run's id (`__debezium.context.runId`).
    pub run_id: String,
}

impl EnvelopeConfig {
    /// Defaults for a connector with `topic.prefix` = `prefix` on database `database`.
    pub fn new(prefix: impl Into<String>, database: impl Into<String>) -> Self {
        EnvelopeConfig {
            topic_prefix: prefix.into(),
            database: database.into(),
            connector_version: default_version(),
            key_converter: ConverterConfig::default(),
            value_converter: ConverterConfig::default(),
            tombstones_on_delete: true,
            unwrap: None,
            heartbeat_topic_prefix: "__debezium-heartbeat".into(),
            extended_headers: true,
            run_id: new_run_id(),
        }
    }
}

/// A time-ordered (version 7) UUID for `__debezium.context.runId`.
pub fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The `source.version` augur prints: its own name and version.
pub fn default_version() -> String {
    format!("augur-{}", env!("CARGO_PKG_VERSION"))
}

/// The processing time stamped into `ts_ms`/`ts_us`/`ts_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingTime {
    /// Nanoseconds since the Unix epoch.
    pub nanos: i64,
}

impl ProcessingTime {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        ProcessingTime {
            nanos: d.as_nanos() as i64,
        }
    }
}

/// The `source` struct schema of the PostgreSQL connector.
pub fn source_schema() -> Schema {
    let s = |t| Schema::new(t);
    let opt = |t| Schema::new(t).optional(true);
    Schema::structure(
        Some("io.debezium.connector.postgresql.Source".into()),
        vec![
            Field::new("version", s(SchemaType::String)),
            Field::new("connector", s(SchemaType::String)),
            Field::new("name", s(SchemaType::String)),
            Field::new("ts_ms", s(SchemaType::Int64)),
            Field::new(
                "snapshot",
                opt(SchemaType::String)
                    .named("io.debezium.data.Enum", Some(1))
                    .param(
                        "allowed",
                        "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental",
                    )
                    .with_default(Value::String("false".into())),
            ),
            Field::new("db", s(SchemaType::String)),
            Field::new("sequence", opt(SchemaType::String)),
            Field::new("ts_us", opt(SchemaType::Int64)),
            Field::new("ts_ns", opt(SchemaType::Int64)),
            Field::new("schema", s(SchemaType::String)),
            Field::new("table", s(SchemaType::String)),
            Field::new("txId", opt(SchemaType::Int64)),
            Field::new("lsn", opt(SchemaType::Int64)),
            Field::new("xmin", opt(SchemaType::Int64)),
            Field::new("origin", opt(SchemaType::String)),
            Field::new("origin_lsn", opt(SchemaType::Int64)),
        ],
    )
    .named("io.debezium.connector.postgresql.Source", Some(1))
}

/// The `transaction` block schema (`event.block`), null unless transaction metadata is on.
pub fn transaction_schema() -> Schema {
    Schema::structure(
        Some("event.block".into()),
        vec![
            Field::new("id", Schema::new(SchemaType::String)),
            Field::new("total_order", Schema::new(SchemaType::Int64)),
            Field::new("data_collection_order", Schema::new(SchemaType::Int64)),
        ],
    )
    .named("event.block", Some(1))
    .optional(true)
}

/// The value struct schema `<prefix>.<schema>.<table>.Value` of a table's rows.
pub fn row_schema(prefix: &str, table: &TableSchema) -> Schema {
    Schema::structure(
        Some(format!("{prefix}.{}.{}.Value", table.schema, table.table)),
        table.fields.clone(),
    )
    .optional(true)
}

/// The envelope schema `<prefix>.<schema>.<table>.Envelope`, version 2.
pub fn envelope_schema(prefix: &str, table: &TableSchema) -> Schema {
    let row = row_schema(prefix, table);
    let opt = |t| Schema::new(t).optional(true);
    Schema::structure(
        None,
        vec![
            Field::new("before", row.clone()),
            Field::new("after", row),
            Field::new("source", source_schema()),
            Field::new("transaction", transaction_schema()),
            Field::new("op", Schema::new(SchemaType::String)),
            Field::new("ts_ms", opt(SchemaType::Int64)),
            Field::new("ts_us", opt(SchemaType::Int64)),
            Field::new("ts_ns", opt(SchemaType::Int64)),
        ],
    )
    .named(
        format!("{prefix}.{}.{}.Envelope", table.schema, table.table),
        Some(2),
    )
}

/// Everything about one table shape that does not change from event to event.
#[derive(Debug)]
struct TableCodec {
    /// Keeps the table alive so its address, the cache key, is not reused.
    table: Arc<TableSchema>,
    topic: String,
    key_schema: Option<Schema>,
    /// `{"schema":<key schema>,"payload":` (or empty without schemas).
    key_prefix: Vec<u8>,
    /// `{"schema":<envelope schema>,"payload":` (or empty without schemas).
    value_prefix: Vec<u8>,
    /// The row struct schema (`…Value`).
    row_schema: Schema,
    /// `"<field>":` of each row field, then of each key field (see [`field_names`]).
    row_names: Vec<Vec<u8>>,
    key_names: Vec<Vec<u8>>,
    /// With the unwrap transform: `{"schema":<flat schema>,"payload":` (or empty).
    flat_prefix: Vec<u8>,
    /// The `source` block's constant head: `{"version":…,"connector":…,"name":…,"ts_ms":`.
    source_head: Vec<u8>,
    /// `,"db":…` printed after the snapshot marker.
    source_db: Vec<u8>,
    /// `,"schema":…,"table":…` printed after `ts_ns`.
    source_table: Vec<u8>,
}

/// Turns change events into Kafka records, byte-compatible with Debezium's JSON converter.
#[derive(Debug)]
pub struct Encoder {
    cfg: EnvelopeConfig,
    codecs: HashMap<usize, Arc<TableCodec>>,
    /// The `__debezium.context.*` headers (as the worker's default `SimpleHeaderConverter`
    /// prints them), when `extended.headers.enabled`.
    fixed_headers: Vec<(String, Vec<u8>)>,
    scratch: Scratch,
}

impl Encoder {
    /// A new encoder.
    pub fn new(cfg: EnvelopeConfig) -> Self {
        let fixed_headers = if cfg.extended_headers {
            vec![
                (
                    "__debezium.context.connectorLogicalName".into(),
                    cfg.topic_prefix.clone().into_bytes(),
                ),
                ("__debezium.context.taskId".into(), b"0".to_vec()),
                (
                    "__debezium.context.connectorName".into(),
                    b"postgresql".to_vec(),
                ),
                (
                    "__debezium.context.runId".into(),
                    cfg.run_id.clone().into_bytes(),
                ),
            ]
        } else {
            Vec::new()
        };
        Encoder {
            cfg,
            codecs: HashMap::new(),
            fixed_headers,
            scratch: Scratch::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EnvelopeConfig {
        &self.cfg
    }

    /// The topic of `table`: `<prefix>.<schema>.<table>`.
    pub fn topic(&self, table: &TableSchema) -> String {
        format!("{}.{}.{}", self.cfg.topic_prefix, table.schema, table.table)
    }

    fn codec(&mut self, table: &Arc<TableSchema>) -> Arc<TableCodec> {
        let id = Arc::as_ptr(table) as usize;
        if let Some(c) = self.codecs.get(&id) {
            return c.clone();
        }
        if self.codecs.len() > 4096 {
            self.codecs.clear();
        }
        let prefix = &self.cfg.topic_prefix;
        let key_schema = table.key_schema(format!("{prefix}.{}.{}.Key", table.schema, table.table));
        let mut key_prefix = Vec::new();
        if self.cfg.key_converter.schemas_enable
            && let Some(ks) = &key_schema
        {
            key_prefix.extend_from_slice(b"{\"schema\":");
            json::write_schema(&mut key_prefix, ks);
            key_prefix.extend_from_slice(b",\"payload\":");
        }
        let mut value_prefix = Vec::new();
        if self.cfg.value_converter.schemas_enable {
            value_prefix.extend_from_slice(b"{\"schema\":");
            json::write_schema(&mut value_prefix, &envelope_schema(prefix, table));
            value_prefix.extend_from_slice(b",\"payload\":");
        }
        let row = row_schema(prefix, table);
        let mut flat_prefix = Vec::new();
        if let Some(u) = &self.cfg.unwrap
            && self.cfg.value_converter.schemas_enable
        {
            flat_prefix.extend_from_slice(b"{\"schema\":");
            json::write_schema(&mut flat_prefix, &u.value_schema(&row));
            flat_prefix.extend_from_slice(b",\"payload\":");
        }
        let mut source_head = Vec::new();
        source_head.extend_from_slice(b"{\"version\":");
        json::write_str(&mut source_head, &self.cfg.connector_version);
        source_head.extend_from_slice(b",\"connector\":\"postgresql\",\"name\":");
        json::write_str(&mut source_head, prefix);
        source_head.extend_from_slice(b",\"ts_ms\":");
        let mut source_db = b",\"db\":".to_vec();
        json::write_str(&mut source_db, &self.cfg.database);
        let mut source_table = b",\"schema\":".to_vec();
        json::write_str(&mut source_table, &table.schema);
        source_table.extend_from_slice(b",\"table\":");
        json::write_str(&mut source_table, &table.table);
        let codec = Arc::new(TableCodec {
            table: table.clone(),
            row_names: field_names(&table.fields),
            key_names: key_schema
                .as_ref()
                .map_or_else(Vec::new, |k| field_names(&k.fields)),
            topic: self.topic(table),
            key_schema,
            key_prefix,
            value_prefix,
            row_schema: row,
            flat_prefix,
            source_head,
            source_db,
            source_table,
        });
        self.codecs.insert(id, codec.clone());
        codec
    }

    /// Encodes `ev` into `out`: the change record, then (for deletes with
    /// `tombstones.on.delete`) its tombstone.
    pub fn encode(&mut self, ev: &ChangeEvent, now: ProcessingTime, out: &mut Vec<Record>) {
        self.encode_to(ev, now, out);
    }

    /// [`Encoder::encode`], handing each record to `out` borrowed: the bytes are built in
    /// buffers the encoder reuses, so nothing is allocated per record unless `out` keeps it.
    pub fn encode_to(&mut self, ev: &ChangeEvent, now: ProcessingTime, out: &mut dyn RecordOut) {
        let codec = self.codec(&ev.table);
        let mut s = std::mem::take(&mut self.scratch);
        self.encode_with(&codec, ev, now, &mut s, out);
        self.scratch = s;
    }

    fn encode_with(
        &self,
        codec: &TableCodec,
        ev: &ChangeEvent,
        now: ProcessingTime,
        s: &mut Scratch,
        out: &mut dyn RecordOut,
    ) {
        let has_key = self.encode_key(codec, ev, &mut s.key);
        let first = self.key_change(codec, ev, &mut s.first);
        if let Some(u) = &self.cfg.unwrap
            && !(ev.op == Op::Truncate && u.keep_truncates)
        {
            self.encode_unwrapped(u, codec, ev, now, has_key, first, s, out);
            return;
        }
        self.encode_value(codec, ev, now, &mut s.value);
        let record = RecordRef {
            topic: &codec.topic,
            key: has_key.then_some(s.key.as_slice()),
            value: Some(&s.value),
            headers: Headers {
                first: first.map(|name| (name, s.first.as_slice())),
                fixed: &self.fixed_headers,
                added: &[],
            },
        };
        out.record(record);
        if ev.op == Op::Delete && self.cfg.tombstones_on_delete {
            // The tombstone carries the delete's headers (including `__debezium.newkey`).
            out.record(RecordRef {
                value: None,
                ..record
            });
        }
    }

    /// The key-change header of `ev` (`__debezium.newkey`/`oldkey`): its name, with the key
    /// written into `buf`.
    fn key_change(
        &self,
        codec: &TableCodec,
        ev: &ChangeEvent,
        buf: &mut Vec<u8>,
    ) -> Option<&'static str> {
        let (name, key) = match &ev.key_change {
            Some(KeyChange::NewKey(k)) => ("__debezium.newkey", k),
            Some(KeyChange::OldKey(k)) => ("__debezium.oldkey", k),
            None => return None,
        };
        buf.clear();
        self.key_bytes(codec, key, buf);
        Some(name)
    }

    #[allow(clippy::too_many_arguments)]
    fn encode_unwrapped(
        &self,
        u: &UnwrapConfig,
        codec: &TableCodec,
        ev: &ChangeEvent,
        now: ProcessingTime,
        has_key: bool,
        first: Option<&'static str>,
        s: &mut Scratch,
        out: &mut dyn RecordOut,
    ) {
        let meta = |path: &str| -> Value { self.meta_value(ev, path, now) };
        s.added.clear();
        s.added.extend(u.add_headers.iter().map(|h| {
            let mut b = Vec::new();
            let v = meta(&h.path);
            let schema = match &v {
                Value::String(_) => Schema::new(SchemaType::String).optional(true),
                _ => Schema::new(SchemaType::Int64).optional(true),
            };
            json::write_value(&mut b, &schema, &v, false);
            (h.name.clone(), b)
        }));
        let value = match u.apply(ev, &codec.row_schema, &meta) {
            Unwrapped::Drop => None,
            Unwrapped::Tombstone => Some(None),
            Unwrapped::NullPayload(schema) => {
                s.value.clear();
                if self.cfg.value_converter.schemas_enable {
                    s.value.extend_from_slice(b"{\"schema\":");
                    json::write_schema(&mut s.value, &schema);
                    s.value.extend_from_slice(b",\"payload\":null}");
                } else {
                    s.value.extend_from_slice(b"null");
                }
                Some(Some(()))
            }
            Unwrapped::Row(schema, value) => {
                s.value.clear();
                s.value.extend_from_slice(&codec.flat_prefix);
                let rnd = self.cfg.value_converter.replace_null_with_default;
                json::write_value(&mut s.value, &schema, &value, rnd);
                if !codec.flat_prefix.is_empty() {
                    s.value.push(b'}');
                }
                Some(Some(()))
            }
        };
        let record = RecordRef {
            topic: &codec.topic,
            key: has_key.then_some(s.key.as_slice()),
            value: None,
            headers: Headers {
                first: first.map(|name| (name, s.first.as_slice())),
                fixed: &self.fixed_headers,
                added: &s.added,
            },
        };
        if let Some(v) = value {
            out.record(RecordRef {
                value: v.map(|()| s.value.as_slice()),
                ..record
            });
        }
        if ev.op == Op::Delete && self.cfg.tombstones_on_delete && u.keeps_tombstones() {
            out.record(record);
        }
    }

    /// The value of an envelope path (`op`, `ts_ms`, `source.<field>`) for `add.fields`.
    fn meta_value(&self, ev: &ChangeEvent, path: &str, now: ProcessingTime) -> Value {
        let s = &ev.source;
        match path {
            "op" => Value::String(ev.op.code().into()),
            "ts_ms" => Value::Int64(now.nanos / 1_000_000),
            "ts_us" => Value::Int64(now.nanos / 1_000),
            "ts_ns" => Value::Int64(now.nanos),
            "source.version" => Value::String(self.cfg.connector_version.clone()),
            "source.connector" => Value::String("postgresql".into()),
            "source.name" => Value::String(self.cfg.topic_prefix.clone()),
            "source.ts_ms" => Value::Int64(s.commit_time_us.div_euclid(1000)),
            "source.ts_us" => Value::Int64(s.commit_time_us),
            "source.ts_ns" => Value::Int64(s.commit_time_us * 1000),
            "source.snapshot" => Value::String(s.snapshot.as_str().into()),
            "source.db" => Value::String(self.cfg.database.clone()),
            "source.sequence" => match s.lsn {
                Some(l) => Value::String(format!(
                    "[{},\"{}\"]",
                    s.last_commit_lsn
                        .map_or("null".to_string(), |c| format!("\"{}\"", c.as_u64())),
                    l.as_u64()
                )),
                None => Value::Null,
            },
            "source.schema" => Value::String(ev.table.schema.clone()),
            "source.table" => Value::String(ev.table.table.clone()),
            "source.txId" if s.snapshot == SnapshotMarker::Incremental => Value::Null,
            "source.lsn" if s.snapshot == SnapshotMarker::Incremental => Value::Null,
            "source.txId" => s.tx_id.map_or(Value::Null, Value::Int64),
            "source.lsn" => s
                .lsn
                .map_or(Value::Null, |l| Value::Int64(l.as_u64() as i64)),
            "source.xmin" | "source.origin_lsn" | "source.origin" => Value::Null,
            _ => Value::Null,
        }
    }

    /// The heartbeat record (`heartbeat.interval.ms`): topic `<heartbeat prefix>.<topic prefix>`,
    /// key `{serverName}`, value `{ts_ms}`.
    pub fn heartbeat(&self, ts_ms: i64) -> Record {
        let prefix = &self.cfg.topic_prefix;
        let key_schema = Schema::structure(
            None,
            vec![Field::new("serverName", Schema::new(SchemaType::String))],
        )
        .named("io.debezium.connector.common.ServerNameKey", Some(1));
        let value_schema = Schema::structure(
            None,
            vec![Field::new("ts_ms", Schema::new(SchemaType::Int64))],
        )
        .named("io.debezium.connector.common.Heartbeat", Some(1));
        let wrap = |schema: &Schema, value: &Value, conv: ConverterConfig| {
            let mut out = Vec::new();
            if conv.schemas_enable {
                out.extend_from_slice(b"{\"schema\":");
                json::write_schema(&mut out, schema);
                out.extend_from_slice(b",\"payload\":");
            }
            json::write_value(&mut out, schema, value, false);
            if conv.schemas_enable {
                out.push(b'}');
            }
            out
        };
        Record {
            topic: format!("{}.{prefix}", self.cfg.heartbeat_topic_prefix),
            key: Some(wrap(
                &key_schema,
                &Value::Struct(vec![Value::String(prefix.clone())]),
                self.cfg.key_converter,
            )),
            value: Some(wrap(
                &value_schema,
                &Value::Struct(vec![Value::Int64(ts_ms)]),
                self.cfg.value_converter,
            )),
            headers: Vec::new(),
        }
    }

    fn key_bytes(&self, codec: &TableCodec, key: &[Value], out: &mut Vec<u8>) {
        if let Some(ks) = &codec.key_schema {
            json::write_value(
                out,
                ks,
                &Value::Struct(key.to_vec()),
                self.cfg.key_converter.replace_null_with_default,
            );
        }
    }

    /// Writes the record key of `ev` into `out`; false when it has none.
    fn encode_key(&self, codec: &TableCodec, ev: &ChangeEvent, out: &mut Vec<u8>) -> bool {
        out.clear();
        if ev.op == Op::Truncate {
            return false;
        }
        let (Some(ks), Some(row)) = (&codec.key_schema, ev.after.as_ref().or(ev.before.as_ref()))
        else {
            return false;
        };
        out.extend_from_slice(&codec.key_prefix);
        out.push(b'{');
        let rnd = self.cfg.key_converter.replace_null_with_default;
        for ((&i, f), name) in ev.table.key.iter().zip(&ks.fields).zip(&codec.key_names) {
            out.extend_from_slice(name);
            json::write_value(out, &f.schema, &row[i], rnd);
        }
        out.push(b'}');
        if !codec.key_prefix.is_empty() {
            out.push(b'}');
        }
        true
    }

    fn write_row(&self, out: &mut Vec<u8>, codec: &TableCodec, row: Option<&Vec<Value>>) {
        let Some(row) = row else {
            out.extend_from_slice(b"null");
            return;
        };
        let rnd = self.cfg.value_converter.replace_null_with_default;
        out.push(b'{');
        for ((f, v), name) in codec.table.fields.iter().zip(row).zip(&codec.row_names) {
            out.extend_from_slice(name);
            json::write_value(out, &f.schema, v, rnd);
        }
        out.push(b'}');
    }

    fn encode_value(
        &self,
        codec: &TableCodec,
        ev: &ChangeEvent,
        now: ProcessingTime,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.extend_from_slice(&codec.value_prefix);
        out.extend_from_slice(b"{\"before\":");
        self.write_row(out, codec, ev.before.as_ref());
        out.extend_from_slice(b",\"after\":");
        self.write_row(out, codec, ev.after.as_ref());
        out.extend_from_slice(b",\"source\":");
        self.write_source(out, codec, ev);
        out.extend_from_slice(b",\"transaction\":null,\"op\":\"");
        out.extend_from_slice(ev.op.code().as_bytes());
        let ns = now.nanos;
        out.extend_from_slice(b"\",\"ts_ms\":");
        write_int(out, ns / 1_000_000);
        out.extend_from_slice(b",\"ts_us\":");
        write_int(out, ns / 1_000);
        out.extend_from_slice(b",\"ts_ns\":");
        write_int(out, ns);
        out.push(b'}');
        if !codec.value_prefix.is_empty() {
            out.push(b'}');
        }
    }

    fn write_source(&self, out: &mut Vec<u8>, codec: &TableCodec, ev: &ChangeEvent) {
        let s = &ev.source;
        let us = s.commit_time_us;
        out.extend_from_slice(&codec.source_head);
        write_int(out, us.div_euclid(1000));
        out.extend_from_slice(b",\"snapshot\":\"");
        out.extend_from_slice(s.snapshot.as_str().as_bytes());
        out.push(b'"');
        out.extend_from_slice(&codec.source_db);
        out.extend_from_slice(b",\"sequence\":");
        match s.lsn {
            // `["<last commit>","<lsn>"]` as a JSON string: digits need no escaping.
            Some(lsn) => {
                out.extend_from_slice(b"\"[");
                match s.last_commit_lsn {
                    Some(c) => {
                        out.extend_from_slice(b"\\\"");
                        write_int(out, c.as_u64());
                        out.extend_from_slice(b"\\\"");
                    }
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b",\\\"");
                write_int(out, lsn.as_u64());
                out.extend_from_slice(b"\\\"]\"");
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"ts_us\":");
        write_int(out, us);
        out.extend_from_slice(b",\"ts_ns\":");
        write_int(out, us * 1000);
        out.extend_from_slice(&codec.source_table);
        // An incremental snapshot row has no transaction and no LSN of its own (its sequence
        // is the close signal's), as Debezium writes it.
        let incremental = s.snapshot == SnapshotMarker::Incremental;
        out.extend_from_slice(b",\"txId\":");
        match s.tx_id.filter(|_| !incremental) {
            Some(t) => write_int(out, t),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"lsn\":");
        match s.lsn.filter(|_| !incremental) {
            Some(l) => write_int(out, l.as_u64()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"xmin\":null,\"origin\":null,\"origin_lsn\":null}");
    }
}

/// Appends an integer in decimal.
fn write_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// The buffers one event is encoded into, kept between events.
#[derive(Debug, Default)]
struct Scratch {
    key: Vec<u8>,
    value: Vec<u8>,
    /// The key-change header's value.
    first: Vec<u8>,
    /// The transform's added headers.
    added: Vec<(String, Vec<u8>)>,
}

/// `"<name>":` for each field (`,"<name>":` after the first), escaped once.
fn field_names(fields: &[Field]) -> Vec<Vec<u8>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut b = Vec::with_capacity(f.name.len() + 4);
            if i > 0 {
                b.push(b',');
            }
            json::write_str(&mut b, &f.name);
            b.push(b':');
            b
        })
        .collect()
}
