//! Kafka Connect records → sink rows, as the JDBC sinks read them: Debezium envelopes natively
//! (`after` for c/u/r, a delete for `d`), flattened rows (ExtractNewRecordState), tombstones
//! (and the schema-only null payloads Debezium 3.x's unwrap makes of deletes) as deletes, and
//! the primary key per `pk.mode`.

use std::sync::Arc;

use augur_core::connect::{Field, Schema, SchemaType, Value};

use augur_postgres::sink::config::{Flavor, PkMode, SinkConfig};
use augur_postgres::sink::{RowShape, RowWrite, WriteOp};

/// One record as read from Kafka.
#[derive(Debug, Clone, Copy)]
pub struct SinkRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes (`None`: tombstone).
    pub value: Option<&'a [u8]>,
}

/// Why a record cannot be written (it goes to the dead-letter destination, or stops the
/// stage, as configured).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The key or value bytes are not JSON.
    #[error("{what} is not JSON: {reason}")]
    NotJson {
        /// `record key` or `record value`.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// The document is JSON but not an object.
    #[error("{what} is not a JSON object")]
    NotObject {
        /// `record key` or `record value`.
        what: String,
    },
    /// Written with `schemas.enable=false`.
    #[error(
        "{what} has no schema (written with schemas.enable=false); the JDBC sink needs a schema to map columns"
    )]
    NoSchema {
        /// `record key` or `record value`.
        what: String,
    },
    /// The schema part is not a Connect schema.
    #[error("{what} schema: {reason}")]
    BadSchema {
        /// `record key` or `record value`.
        what: String,
        /// Why.
        reason: String,
    },
    /// The payload does not fit its schema.
    #[error("{what}: {reason}")]
    BadPayload {
        /// `record key` or `record value`.
        what: String,
        /// Why.
        reason: String,
    },
    /// The value is a scalar or array, not a row.
    #[error("the record value is a {schema_type}, not a struct the sink can map to columns")]
    NotStruct {
        /// Its Connect schema type.
        schema_type: String,
    },
    /// An envelope's `op` is missing or unknown.
    #[error("unknown change event op {op:?}")]
    UnknownOp {
        /// The `op` found.
        op: Option<String>,
    },
    /// An envelope schema without an `after` field.
    #[error("envelope without after")]
    EnvelopeWithoutAfter,
    /// A create, update or read without an `after` row.
    #[error("change event without an after row")]
    NoAfterRow,
    /// `pk.mode=record_key` and the key is not a struct.
    #[error("pk.mode=record_key needs a struct record key")]
    KeyNotStruct,
    /// A primary-key field is missing from the record key.
    #[error("the record key has no field \"{field}\"")]
    KeyFieldMissing {
        /// The field.
        field: String,
    },
    /// A `pk.fields` entry is missing from the record key.
    #[error("the record key has no field \"{field}\" named in pk.fields")]
    KeyPkFieldMissing {
        /// The field.
        field: String,
    },
    /// `pk.mode=record_value` without `pk.fields`.
    #[error("pk.mode=record_value needs pk.fields")]
    NoPkFields,
    /// A `pk.fields` entry is missing from the record value.
    #[error("the record value has no field \"{field}\" named in pk.fields")]
    ValueFieldMissing {
        /// The field.
        field: String,
    },
    /// A delete, but the primary key does not come from the record.
    #[error("delete.enabled needs pk.mode record_key or record_value to know which row to delete")]
    DeleteNeedsRecordPk,
    /// A delete (tombstone) without a key.
    #[error("a delete (tombstone) without a key cannot be applied")]
    DeleteWithoutKey,
    /// Confluent's sink with deletes off and the key taken from the value (or no key) requires
    /// struct values; a null value (tombstone) fails the task as Confluent's `RecordValidator`
    /// does.
    #[error(
        "the JDBC sink is configured with 'delete.enabled=false' and 'pk.mode={pk_mode}' and \
         therefore requires non-null record values that are structs, but found a record with a \
         null value"
    )]
    NullValue {
        /// `pk.mode` as configured.
        pk_mode: &'static str,
    },
}

/// A parsed `{"schema","payload"}` document.
fn parse_connect(bytes: &[u8], what: &str) -> Result<Option<(Schema, Value)>, RecordError> {
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| RecordError::NotJson {
            what: what.into(),
            reason: e.to_string(),
        })?;
    if json.is_null() {
        return Ok(None);
    }
    let obj = json
        .as_object()
        .ok_or_else(|| RecordError::NotObject { what: what.into() })?;
    let (Some(schema), Some(payload)) = (obj.get("schema"), obj.get("payload")) else {
        return Err(RecordError::NoSchema { what: what.into() });
    };
    // A null schema or payload is a delete marker (Debezium 3.x's unwrap writes deletes as a
    // schema with a null payload).
    if schema.is_null() || payload.is_null() {
        return Ok(None);
    }
    let schema =
        augur_debezium::json::parse_schema(schema).map_err(|e| RecordError::BadSchema {
            what: what.into(),
            reason: e.to_string(),
        })?;
    let value = augur_debezium::json::parse_value(&schema, payload).map_err(|e| {
        RecordError::BadPayload {
            what: what.into(),
            reason: e.to_string(),
        }
    })?;
    Ok(Some((schema, value)))
}

/// The most row shapes a converter remembers (the oldest is forgotten first).
const MAX_SHAPES: usize = 256;

/// Converts records into sink writes, remembering row shapes so rows of one shape share one.
#[derive(Debug, Default)]
pub struct RecordConverter {
    /// Shapes seen, most recently used first (a topic's rows almost always share one, so the
    /// first comparison hits).
    shapes: Vec<Arc<RowShape>>,
    /// The last key schema.
    key_schema: SchemaMemo,
    /// The last value schema.
    value_schema: SchemaMemo,
}

/// Whether `schema` is a Debezium change-event envelope (`op`, `before`, `after`).
fn is_envelope(schema: &Schema) -> bool {
    schema.ty == SchemaType::Struct
        && schema.field("op").is_some()
        && schema.field("after").is_some()
        && schema.field("before").is_some()
}

/// The schema part of the last record parsed (its JSON text and the parsed schema): the
/// records of a topic almost always carry the same one, so it is parsed once, not per record.
type SchemaMemo = Option<(Box<str>, Schema)>;

/// A `{"schema","payload"}` document as borrowed JSON text.
#[derive(serde::Deserialize)]
struct Parts<'a> {
    #[serde(borrow)]
    schema: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    payload: Option<&'a serde_json::value::RawValue>,
}

/// [`parse_connect`] with the schema parsed only when its text differs from the last one's;
/// anything unusual (a null schema or payload, a missing key, bad JSON) takes the full path,
/// so errors read the same.
fn parse_connect_memo(
    bytes: &[u8],
    what: &str,
    memo: &mut SchemaMemo,
) -> Result<Option<(Schema, Value)>, RecordError> {
    // Only an object (serde would also read `[schema, payload]` into `Parts`).
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let parts = if object {
        serde_json::from_slice::<Parts<'_>>(bytes).ok()
    } else {
        None
    };
    let Some(Parts {
        schema: Some(schema),
        payload: Some(payload),
    }) = parts
    else {
        return parse_connect(bytes, what);
    };
    let schema = match memo {
        Some((text, parsed)) if **text == *schema.get() => parsed.clone(),
        _ => {
            let v: serde_json::Value =
                serde_json::from_str(schema.get()).map_err(|e| RecordError::NotJson {
                    what: what.into(),
                    reason: e.to_string(),
                })?;
            let parsed =
                augur_debezium::json::parse_schema(&v).map_err(|e| RecordError::BadSchema {
                    what: what.into(),
                    reason: e.to_string(),
                })?;
            *memo = Some((schema.get().into(), parsed.clone()));
            parsed
        }
    };
    let payload: serde_json::Value =
        serde_json::from_str(payload.get()).map_err(|e| RecordError::NotJson {
            what: what.into(),
            reason: e.to_string(),
        })?;
    let value = augur_debezium::json::parse_value(&schema, &payload).map_err(|e| {
        RecordError::BadPayload {
            what: what.into(),
            reason: e.to_string(),
        }
    })?;
    Ok(Some((schema, value)))
}

/// The record key as a parsed document (`None` when absent, empty or null).
fn parse_key(
    rec: &SinkRecord<'_>,
    memo: &mut SchemaMemo,
) -> Result<Option<(Schema, Value)>, RecordError> {
    match rec.key {
        Some(k) if !k.is_empty() => parse_connect_memo(k, "the record key", memo),
        _ => Ok(None),
    }
}

/// The record value as a parsed document (`None` for a tombstone or a null payload).
fn parse_value(
    rec: &SinkRecord<'_>,
    memo: &mut SchemaMemo,
) -> Result<Option<(Schema, Value)>, RecordError> {
    match rec.value {
        Some(v) => parse_connect_memo(v, "the record value", memo),
        None => Ok(None),
    }
}

/// The key's schema and members, when the record key is a struct.
fn key_struct(key: Option<&(Schema, Value)>) -> Option<(&Schema, &[Value])> {
    match key {
        Some((s, Value::Struct(m))) => Some((s, m)),
        _ => None,
    }
}

/// The primary key names: `pk.fields`, or else every field of the key struct.
fn key_pk_names(cfg: &SinkConfig, ks: &Schema) -> Vec<String> {
    if cfg.pk_fields.is_empty() {
        ks.fields.iter().map(|f| f.name.clone()).collect()
    } else {
        cfg.pk_fields.clone()
    }
}

/// Debezium's `source.schema` and `source.table`, when the record carries them.
#[derive(Debug, Default)]
struct SourceNames {
    schema: Option<String>,
    table: Option<String>,
}

/// What a record value asks of the sink.
#[derive(Debug)]
enum ValueAction {
    /// Write a row: its struct schema and member values.
    Row(Schema, Vec<Value>),
    /// Delete the row the key names (a tombstone, a Debezium `d`, a schema-only null payload).
    Delete,
    /// Empty the table (a Debezium `t` with truncates enabled).
    Truncate,
    /// Change nothing (a message, or a truncate with truncates disabled).
    Skip,
}

/// A decoded record value: what it asks for, and the source it names.
#[derive(Debug)]
struct DecodedValue {
    source: SourceNames,
    action: ValueAction,
}

/// Decodes a parsed record value: a Debezium envelope, a flattened struct row, or a delete.
fn decode_value(
    cfg: &SinkConfig,
    value: Option<(Schema, Value)>,
) -> Result<DecodedValue, RecordError> {
    let action = match value {
        None => ValueAction::Delete,
        Some((schema, Value::Struct(members))) if is_envelope(&schema) => {
            return Envelope {
                schema: &schema,
                members: &members,
            }
            .decode(cfg);
        }
        Some((schema, Value::Struct(members))) => ValueAction::Row(schema, members),
        Some((schema, _)) => {
            return Err(RecordError::NotStruct {
                schema_type: schema.ty.json_name().to_string(),
            });
        }
    };
    Ok(DecodedValue {
        source: SourceNames::default(),
        action,
    })
}

/// A Debezium change-event envelope: its schema and struct members.
struct Envelope<'a> {
    schema: &'a Schema,
    members: &'a [Value],
}

impl<'a> Envelope<'a> {
    /// The member named `name`.
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.schema.field_index(name).map(|i| &self.members[i])
    }

    /// The source it names and what its `op` asks for.
    fn decode(&self, cfg: &SinkConfig) -> Result<DecodedValue, RecordError> {
        let source = self.source_names();
        let action = match self.get("op").and_then(Value::as_str) {
            Some("d") => ValueAction::Delete,
            // No row shape: a truncate empties a table, it never creates one.
            Some("t") if cfg.truncate_enabled => ValueAction::Truncate,
            Some("t") | Some("m") => ValueAction::Skip,
            Some("c" | "u" | "r") => self.after_row()?,
            other => {
                return Err(RecordError::UnknownOp {
                    op: other.map(str::to_string),
                });
            }
        };
        Ok(DecodedValue { source, action })
    }

    /// `source.schema` and `source.table`, when the envelope has a `source` struct.
    fn source_names(&self) -> SourceNames {
        let (Some(Value::Struct(src)), Some(src_schema)) =
            (self.get("source"), self.schema.field("source"))
        else {
            return SourceNames::default();
        };
        let s = |n: &str| {
            src_schema
                .schema
                .field_index(n)
                .and_then(|i| src[i].as_str().map(str::to_string))
        };
        SourceNames {
            schema: s("schema"),
            table: s("table"),
        }
    }

    /// The `after` row of a create, update or read.
    fn after_row(&self) -> Result<ValueAction, RecordError> {
        let after_schema = self
            .schema
            .field("after")
            .map(|f| f.schema.clone())
            .ok_or(RecordError::EnvelopeWithoutAfter)?;
        match self.get("after") {
            Some(Value::Struct(a)) => Ok(ValueAction::Row(after_schema, a.clone())),
            _ => Err(RecordError::NoAfterRow),
        }
    }
}

/// A row being built: its fields and values, in column order.
struct RowParts {
    fields: Vec<Field>,
    values: Vec<Value>,
}

impl RowParts {
    /// Adds what `pk.mode` needs to the row and returns the primary key names.
    fn add_primary_key(
        &mut self,
        cfg: &SinkConfig,
        rec: &SinkRecord<'_>,
        schema: &Schema,
        key: Option<(&Schema, &[Value])>,
    ) -> Result<Vec<String>, RecordError> {
        match cfg.pk_mode {
            PkMode::None => Ok(Vec::new()),
            PkMode::Kafka => Ok(self.add_kafka_coordinates(rec)),
            PkMode::RecordValue => value_pk(cfg, schema),
            PkMode::RecordKey => self.merge_key_pk(cfg, key),
        }
    }

    /// `pk.mode=kafka`: appends the topic, partition and offset columns.
    fn add_kafka_coordinates(&mut self, rec: &SinkRecord<'_>) -> Vec<String> {
        self.fields.push(Field::new(
            "__connect_topic",
            Schema::new(SchemaType::String),
        ));
        self.fields.push(Field::new(
            "__connect_partition",
            Schema::new(SchemaType::Int32),
        ));
        self.fields.push(Field::new(
            "__connect_offset",
            Schema::new(SchemaType::Int64),
        ));
        self.values.push(Value::String(rec.topic.to_string()));
        self.values.push(Value::Int32(rec.partition));
        self.values.push(Value::Int64(rec.offset));
        vec![
            "__connect_topic".into(),
            "__connect_partition".into(),
            "__connect_offset".into(),
        ]
    }

    /// `pk.mode=record_key`: the key's fields overwrite (or are prepended to) the row's.
    fn merge_key_pk(
        &mut self,
        cfg: &SinkConfig,
        key: Option<(&Schema, &[Value])>,
    ) -> Result<Vec<String>, RecordError> {
        let (ks, kv) = key.ok_or(RecordError::KeyNotStruct)?;
        let names = key_pk_names(cfg, ks);
        for n in &names {
            let ki = ks
                .field_index(n)
                .ok_or_else(|| RecordError::KeyFieldMissing { field: n.clone() })?;
            match self.fields.iter().position(|f| &f.name == n) {
                Some(vi) => self.values[vi] = kv[ki].clone(),
                None => {
                    self.fields.insert(0, ks.fields[ki].clone());
                    self.values.insert(0, kv[ki].clone());
                }
            }
        }
        Ok(names)
    }
}

/// Refuses a null value where Confluent's sink requires struct values: deletes off and
/// `pk.mode` `record_value` or `none` (Debezium's sink skips such tombstones).
fn null_value_check(cfg: &SinkConfig) -> Result<(), RecordError> {
    let pk_mode = match cfg.pk_mode {
        PkMode::RecordValue => "record_value",
        PkMode::None => "none",
        _ => return Ok(()),
    };
    if cfg.flavor == Flavor::Confluent && !cfg.delete_enabled {
        return Err(RecordError::NullValue { pk_mode });
    }
    Ok(())
}

/// `pk.mode=record_value`: `pk.fields`, each of which the value must have.
fn value_pk(cfg: &SinkConfig, schema: &Schema) -> Result<Vec<String>, RecordError> {
    if cfg.pk_fields.is_empty() {
        return Err(RecordError::NoPkFields);
    }
    for n in &cfg.pk_fields {
        if schema.field_index(n).is_none() {
            return Err(RecordError::ValueFieldMissing { field: n.clone() });
        }
    }
    Ok(cfg.pk_fields.clone())
}

impl RecordConverter {
    /// A converter with no shapes yet.
    pub fn new() -> Self {
        RecordConverter::default()
    }

    /// The shared row shape for `fields` and `pk`.
    fn shape(&mut self, fields: Vec<Field>, pk: Vec<String>) -> Arc<RowShape> {
        let hit = self
            .shapes
            .iter()
            .position(|s| s.pk == pk && s.fields == fields);
        let shape = match hit {
            Some(i) => self.shapes.remove(i),
            None => Arc::new(RowShape { fields, pk }),
        };
        self.shapes.insert(0, shape.clone());
        self.shapes.truncate(MAX_SHAPES);
        shape
    }

    /// The write for `rec` under `cfg`, or `None` when the record changes nothing (a tombstone
    /// with deletes disabled, a truncate with truncates disabled, a message).
    pub fn convert(
        &mut self,
        cfg: &SinkConfig,
        rec: &SinkRecord<'_>,
    ) -> Result<Option<RowWrite>, RecordError> {
        let key = parse_key(rec, &mut self.key_schema)?;
        let value = parse_value(rec, &mut self.value_schema)?;
        let value_is_null = value.is_none();
        let DecodedValue { source, action } = decode_value(cfg, value)?;
        let table = || cfg.table_name(rec.topic, source.schema.as_deref(), source.table.as_deref());
        match action {
            ValueAction::Skip => Ok(None),
            ValueAction::Truncate => Ok(Some(RowWrite {
                table: table(),
                shape: self.shape(Vec::new(), Vec::new()),
                op: WriteOp::Truncate,
            })),
            ValueAction::Delete if value_is_null => {
                null_value_check(cfg)?;
                self.delete_write(cfg, table(), key.as_ref())
            }
            ValueAction::Delete => self.delete_write(cfg, table(), key.as_ref()),
            ValueAction::Row(schema, members) => {
                let table = table();
                let mut row = RowParts {
                    fields: schema.fields.clone(),
                    values: members,
                };
                let pk = row.add_primary_key(cfg, rec, &schema, key_struct(key.as_ref()))?;
                let shape = self.shape(row.fields, pk);
                Ok(Some(RowWrite {
                    table,
                    shape,
                    op: WriteOp::Row(row.values),
                }))
            }
        }
    }

    /// The delete of the row the record key names (`None` with deletes disabled).
    fn delete_write(
        &mut self,
        cfg: &SinkConfig,
        table: String,
        key: Option<&(Schema, Value)>,
    ) -> Result<Option<RowWrite>, RecordError> {
        if !cfg.delete_enabled {
            return Ok(None);
        }
        let (ks, kv) = match (cfg.pk_mode, key_struct(key), key) {
            (PkMode::RecordKey | PkMode::RecordValue, Some(k), _) => k,
            (PkMode::RecordKey | PkMode::RecordValue, None, Some((s, v)))
                if s.ty != SchemaType::Struct =>
            {
                return Ok(Some(self.scalar_key_delete(cfg, table, s, v)));
            }
            (PkMode::None | PkMode::Kafka, _, _) => {
                return Err(RecordError::DeleteNeedsRecordPk);
            }
            _ => return Err(RecordError::DeleteWithoutKey),
        };
        self.struct_key_delete(cfg, table, ks, kv).map(Some)
    }

    /// A delete keyed by a scalar record key, as the single column `pk.fields` (or `id`) names.
    fn scalar_key_delete(
        &mut self,
        cfg: &SinkConfig,
        table: String,
        key_schema: &Schema,
        key: &Value,
    ) -> RowWrite {
        let name = cfg
            .pk_fields
            .first()
            .cloned()
            .unwrap_or_else(|| "id".into());
        let fields = vec![Field::new(name.clone(), key_schema.clone())];
        let shape = self.shape(fields, vec![name]);
        RowWrite {
            table,
            shape,
            op: WriteOp::Delete(vec![key.clone()]),
        }
    }

    /// A delete keyed by the primary key fields of a struct record key.
    fn struct_key_delete(
        &mut self,
        cfg: &SinkConfig,
        table: String,
        ks: &Schema,
        kv: &[Value],
    ) -> Result<RowWrite, RecordError> {
        let names = key_pk_names(cfg, ks);
        let mut fields = Vec::new();
        let mut values = Vec::new();
        for n in &names {
            let i = ks
                .field_index(n)
                .ok_or_else(|| RecordError::KeyPkFieldMissing { field: n.clone() })?;
            fields.push(ks.fields[i].clone());
            values.push(kv[i].clone());
        }
        let shape = self.shape(fields, names);
        Ok(RowWrite {
            table,
            shape,
            op: WriteOp::Delete(values),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_postgres::conn::PgConnect;
    use augur_postgres::sink::config::InsertMode;

    fn cfg() -> SinkConfig {
        let mut c = SinkConfig::new(PgConnect::new("h", 1, "u", "p", "d"));
        c.insert_mode = InsertMode::Upsert;
        c.pk_mode = PkMode::RecordValue;
        c.pk_fields = vec!["id".into()];
        c.delete_enabled = true;
        c
    }

    const KEY: &str = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false,"name":"k"},"payload":{"id":7}}"#;
    const FLAT: &str = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"model"},{"type":"double","optional":true,"field":"suggestedprice"}],"optional":false,"name":"v"},"payload":{"id":7,"model":" Focus","suggestedprice":12345.5}}"#;

    #[test]
    fn a_remembered_schema_gives_what_a_fresh_parse_gives_and_follows_changes() {
        let c = cfg();
        let mut warm = RecordConverter::new();
        let rec = |v: &'static str| SinkRecord {
            topic: "car_data_predicted",
            partition: 0,
            offset: 1,
            key: Some(KEY.as_bytes()),
            value: Some(v.as_bytes()),
        };
        let wider: &'static str = Box::leak(
            FLAT.replace(
                r#"{"type":"double","optional":true,"field":"suggestedprice"}]"#,
                r#"{"type":"double","optional":true,"field":"suggestedprice"},{"type":"int32","optional":true,"field":"year"}]"#,
            )
            .replace(r#""suggestedprice":12345.5}"#, r#""suggestedprice":12345.5,"year":2019}"#)
            .into_boxed_str(),
        );
        let spaced: &'static str = Box::leak(format!("  \n{FLAT}").into_boxed_str());
        for v in [FLAT, FLAT, wider, wider, FLAT, spaced] {
            let got = warm.convert(&c, &rec(v)).unwrap().unwrap();
            let fresh = RecordConverter::new()
                .convert(&c, &rec(v))
                .unwrap()
                .unwrap();
            assert_eq!(got.op, fresh.op, "{v}");
            assert_eq!(got.shape.fields, fresh.shape.fields, "{v}");
        }
        let w = warm.convert(&c, &rec(wider)).unwrap().unwrap();
        assert_eq!(w.shape.fields.len(), 4);
    }

    #[test]
    fn flat_rows_tombstones_and_errors() {
        let c = cfg();
        let mut conv = RecordConverter::new();
        let rec = SinkRecord {
            topic: "car_data_predicted",
            partition: 0,
            offset: 1,
            key: Some(KEY.as_bytes()),
            value: Some(FLAT.as_bytes()),
        };
        let w = conv.convert(&c, &rec).unwrap().unwrap();
        assert_eq!(w.table, "car_data_predicted");
        assert_eq!(w.shape.pk, vec!["id".to_string()]);
        assert_eq!(
            w.op,
            WriteOp::Row(vec![
                Value::Int32(7),
                Value::String(" Focus".into()),
                Value::Float64(12345.5)
            ])
        );
        let tomb = SinkRecord { value: None, ..rec };
        assert_eq!(
            conv.convert(&c, &tomb).unwrap().unwrap().op,
            WriteOp::Delete(vec![Value::Int32(7)])
        );
        let null_payload = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":true,"name":"v"},"payload":null}"#;
        let rec2 = SinkRecord {
            value: Some(null_payload.as_bytes()),
            ..rec
        };
        assert!(matches!(
            conv.convert(&c, &rec2).unwrap().unwrap().op,
            WriteOp::Delete(_)
        ));
        let schemaless = SinkRecord {
            value: Some(br#"{"id":7}"#),
            ..rec
        };
        assert!(
            conv.convert(&c, &schemaless)
                .unwrap_err()
                .to_string()
                .contains("no schema")
        );
        let not_json = SinkRecord {
            value: Some(b"\x00garbage"),
            ..rec
        };
        assert!(
            conv.convert(&c, &not_json)
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
    }

    /// A record on `car_data_predicted` with the given key and value.
    fn rec<'a>(key: Option<&'a str>, value: Option<&'a str>) -> SinkRecord<'a> {
        SinkRecord {
            topic: "car_data_predicted",
            partition: 2,
            offset: 41,
            key: key.map(str::as_bytes),
            value: value.map(str::as_bytes),
        }
    }

    /// The error `convert` gives for `r` under `c`.
    fn refusal(c: &SinkConfig, r: &SinkRecord<'_>) -> String {
        RecordConverter::new()
            .convert(c, r)
            .unwrap_err()
            .to_string()
    }

    /// A Debezium envelope with op `op` and an `after` payload (JSON) `after`.
    fn envelope(op: &str, after: &str) -> String {
        let row = r#"{"type":"struct","optional":true,"name":"v","fields":[{"type":"int32","optional":false,"field":"id"}]}"#;
        let src = r#"{"type":"struct","optional":false,"name":"s","fields":[{"type":"string","optional":false,"field":"schema"},{"type":"string","optional":false,"field":"table"}]}"#;
        let before = row.replacen('{', r#"{"field":"before","#, 1);
        let after_s = row.replacen('{', r#"{"field":"after","#, 1);
        let src = src.replacen('{', r#"{"field":"source","#, 1);
        format!(
            r#"{{"schema":{{"type":"struct","optional":false,"name":"e","fields":[{before},{after_s},{src},{{"type":"string","optional":false,"field":"op"}}]}},"payload":{{"before":null,"after":{after},"source":{{"schema":"public","table":"cars"}},"op":"{op}"}}}}"#
        )
    }

    #[test]
    fn hostile_bytes_are_refused_with_what_and_why() {
        let c = cfg();
        let cases = [
            (
                Some("{\"schema\":"),
                Some(FLAT),
                "the record key is not JSON",
            ),
            (
                Some(KEY),
                Some("{\"schema\":{"),
                "the record value is not JSON",
            ),
            (
                Some(KEY),
                Some("[1,2]"),
                "the record value is not a JSON object",
            ),
            (
                Some(KEY),
                Some("42"),
                "the record value is not a JSON object",
            ),
            (
                Some("\"k\""),
                Some(FLAT),
                "the record key is not a JSON object",
            ),
            (Some(KEY), Some(r#"{"schema":{}}"#), "no schema"),
            (Some(KEY), Some(r#"{"payload":{"id":1}}"#), "no schema"),
            (
                Some(KEY),
                Some(r#"{"schema":{"type":"bogus"},"payload":1}"#),
                "the record value schema: ",
            ),
            (
                Some(KEY),
                Some(r#"{"schema":"int32","payload":1}"#),
                "the record value schema: ",
            ),
        ];
        for (key, value, want) in cases {
            let e = refusal(&c, &rec(key, value));
            assert!(e.contains(want), "{key:?}/{value:?}: {e}");
        }
    }

    #[test]
    fn values_of_the_wrong_type_are_refused() {
        let c = cfg();
        let wrong_member = FLAT.replace(r#""id":7,"model""#, r#""id":"seven","model""#);
        let e = refusal(&c, &rec(Some(KEY), Some(&wrong_member)));
        assert!(e.starts_with("the record value: "), "{e}");
        let scalar = r#"{"schema":{"type":"string","optional":false},"payload":"x"}"#;
        assert_eq!(
            refusal(&c, &rec(Some(KEY), Some(scalar))),
            "the record value is a string, not a struct the sink can map to columns"
        );
    }

    #[test]
    fn nulls_are_deletes_and_deletes_need_a_key() {
        let c = cfg();
        let mut conv = RecordConverter::new();
        for value in [None, Some("null")] {
            let w = conv.convert(&c, &rec(Some(KEY), value)).unwrap().unwrap();
            assert_eq!(w.op, WriteOp::Delete(vec![Value::Int32(7)]), "{value:?}");
        }
        let null_schema = r#"{"schema":null,"payload":{"id":7}}"#;
        let w = conv.convert(&c, &rec(Some(KEY), Some(null_schema)));
        assert!(matches!(w.unwrap().unwrap().op, WriteOp::Delete(_)));
        for key in [None, Some(""), Some("null")] {
            assert_eq!(
                refusal(&c, &rec(key, None)),
                "a delete (tombstone) without a key cannot be applied",
                "{key:?}"
            );
        }
        let mut kafka = cfg();
        kafka.pk_mode = PkMode::Kafka;
        assert!(refusal(&kafka, &rec(Some(KEY), None)).starts_with("delete.enabled needs pk.mode"));
        let mut off = cfg();
        off.delete_enabled = false;
        let null_refused = |c: &SinkConfig, mode| {
            format!(
                "the JDBC sink is configured with 'delete.enabled=false' and 'pk.mode={mode}' \
                 and therefore requires non-null record values that are structs, but found a \
                 record with a null value"
            ) == refusal(c, &rec(Some(KEY), None))
        };
        assert!(null_refused(&off, "record_value"));
        off.pk_mode = PkMode::None;
        assert!(null_refused(&off, "none"));
        for mode in [PkMode::RecordKey, PkMode::Kafka] {
            off.pk_mode = mode;
            assert!(matches!(
                conv.convert(&off, &rec(Some(KEY), None)),
                Ok(None)
            ));
        }
        off.pk_mode = PkMode::RecordValue;
        off.flavor = Flavor::Debezium;
        assert!(matches!(
            conv.convert(&off, &rec(Some(KEY), None)),
            Ok(None)
        ));
        let mut other_pk = cfg();
        other_pk.pk_fields = vec!["nope".into()];
        assert_eq!(
            refusal(&other_pk, &rec(Some(KEY), None)),
            "the record key has no field \"nope\" named in pk.fields"
        );
    }

    #[test]
    fn a_scalar_key_deletes_by_the_named_column() {
        let c = cfg();
        let key = r#"{"schema":{"type":"int64","optional":false},"payload":9}"#;
        let w = RecordConverter::new()
            .convert(&c, &rec(Some(key), None))
            .unwrap()
            .unwrap();
        assert_eq!(w.shape.pk, vec!["id".to_string()]);
        assert_eq!(w.op, WriteOp::Delete(vec![Value::Int64(9)]));
    }

    #[test]
    fn primary_keys_per_pk_mode() {
        let mut conv = RecordConverter::new();
        let mut c = cfg();
        c.pk_fields = vec!["nope".into()];
        assert_eq!(
            refusal(&c, &rec(Some(KEY), Some(FLAT))),
            "the record value has no field \"nope\" named in pk.fields"
        );
        c.pk_fields.clear();
        assert_eq!(
            refusal(&c, &rec(Some(KEY), Some(FLAT))),
            "pk.mode=record_value needs pk.fields"
        );
        c.pk_mode = PkMode::RecordKey;
        assert_eq!(
            refusal(&c, &rec(None, Some(FLAT))),
            "pk.mode=record_key needs a struct record key"
        );
        c.pk_fields = vec!["nope".into()];
        assert_eq!(
            refusal(&c, &rec(Some(KEY), Some(FLAT))),
            "the record key has no field \"nope\""
        );
        c.pk_mode = PkMode::Kafka;
        let w = conv.convert(&c, &rec(None, Some(FLAT))).unwrap().unwrap();
        assert_eq!(w.shape.pk.len(), 3);
        let WriteOp::Row(values) = w.op else {
            panic!("not a row: {:?}", w.op)
        };
        assert_eq!(
            values[3..],
            [
                Value::String("car_data_predicted".into()),
                Value::Int32(2),
                Value::Int64(41)
            ]
        );
    }

    #[test]
    fn envelopes_by_op() {
        let mut c = cfg();
        c.table_format = "${source.schema}_${source.table}".into();
        let mut conv = RecordConverter::new();
        let w = conv
            .convert(&c, &rec(Some(KEY), Some(&envelope("u", r#"{"id":7}"#))))
            .unwrap()
            .unwrap();
        assert_eq!(w.table, "public_cars");
        assert_eq!(w.op, WriteOp::Row(vec![Value::Int32(7)]));
        let d = conv.convert(&c, &rec(Some(KEY), Some(&envelope("d", "null"))));
        assert_eq!(
            d.unwrap().unwrap().op,
            WriteOp::Delete(vec![Value::Int32(7)])
        );
        for op in ["t", "m"] {
            let r = conv.convert(&c, &rec(Some(KEY), Some(&envelope(op, "null"))));
            assert!(matches!(r, Ok(None)), "{op}");
        }
        c.truncate_enabled = true;
        let t = conv.convert(&c, &rec(None, Some(&envelope("t", "null"))));
        let t = t.unwrap().unwrap();
        assert_eq!(
            (t.table.as_str(), &t.op),
            ("public_cars", &WriteOp::Truncate)
        );
        assert_eq!(
            refusal(&c, &rec(Some(KEY), Some(&envelope("c", "null")))),
            "change event without an after row"
        );
        assert_eq!(
            refusal(&c, &rec(Some(KEY), Some(&envelope("x", "null")))),
            "unknown change event op Some(\"x\")"
        );
    }
}
