//! Kafka Connect records → sink rows, as the JDBC sinks read them: Debezium envelopes natively
//! (`after` for c/u/r, a delete for `d`), flattened rows (ExtractNewRecordState), tombstones
//! (and the schema-only null payloads Debezium 3.x's unwrap makes of deletes) as deletes, and
//! the primary key per `pk.mode`.

use std::collections::HashMap;
use std::sync::Arc;

use augur_core::connect::{Field, Schema, SchemaType, Value};

use augur_postgres::sink::config::{PkMode, SinkConfig};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError(pub String);

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RecordError {}

fn bad(msg: impl Into<String>) -> RecordError {
    RecordError(msg.into())
}

/// A parsed `{"schema","payload"}` document.
fn parse_connect(bytes: &[u8], what: &str) -> Result<Option<(Schema, Value)>, RecordError> {
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("{what} is not JSON: {e}")))?;
    if json.is_null() {
        return Ok(None);
    }
    let obj = json
        .as_object()
        .ok_or_else(|| bad(format!("{what} is not a JSON object")))?;
    let (Some(schema), Some(payload)) = (obj.get("schema"), obj.get("payload")) else {
        return Err(bad(format!(
            "{what} has no schema (written with schemas.enable=false); the JDBC sink needs a schema to map columns"
        )));
    };
    // A null schema or payload is a delete marker (Debezium 3.x's unwrap writes deletes as a
    // schema with a null payload).
    if schema.is_null() || payload.is_null() {
        return Ok(None);
    }
    let schema = augur_debezium::json::parse_schema(schema)
        .map_err(|e| bad(format!("{what} schema: {e}")))?;
    let value = augur_debezium::json::parse_value(&schema, payload)
        .map_err(|e| bad(format!("{what}: {e}")))?;
    Ok(Some((schema, value)))
}

/// Converts records into sink writes, remembering row shapes so rows of one shape share one.
#[derive(Debug, Default)]
pub struct RecordConverter {
    shapes: HashMap<String, Arc<RowShape>>,
}

fn is_envelope(schema: &Schema) -> bool {
    schema.ty == SchemaType::Struct
        && schema.field("op").is_some()
        && schema.field("after").is_some()
        && schema.field("before").is_some()
}

impl RecordConverter {
    /// A converter with no shapes yet.
    pub fn new() -> Self {
        RecordConverter::default()
    }

    fn shape(&mut self, fields: Vec<Field>, pk: Vec<String>) -> Arc<RowShape> {
        let key = format!("{fields:?}{pk:?}");
        self.shapes
            .entry(key)
            .or_insert_with(|| Arc::new(RowShape { fields, pk }))
            .clone()
    }

    /// The write for `rec` under `cfg`, or `None` when the record changes nothing (a tombstone
    /// with deletes disabled, a truncate with truncates disabled, a message).
    pub fn convert(
        &mut self,
        cfg: &SinkConfig,
        rec: &SinkRecord<'_>,
    ) -> Result<Option<RowWrite>, RecordError> {
        let key = match rec.key {
            Some(k) if !k.is_empty() => parse_connect(k, "the record key")?,
            _ => None,
        };
        let value = match rec.value {
            Some(v) => parse_connect(v, "the record value")?,
            None => None,
        };
        let (mut source_schema, mut source_table) = (None, None);
        // The row (schema + struct value), or None for a delete.
        let row: Option<(Schema, Vec<Value>)> = match value {
            None => None,
            Some((schema, Value::Struct(members))) if is_envelope(&schema) => {
                let get = |name: &str| schema.field_index(name).map(|i| &members[i]);
                if let (Some(Value::Struct(src)), Some(src_schema)) =
                    (get("source"), schema.field("source"))
                {
                    let s = |n: &str| {
                        src_schema
                            .schema
                            .field_index(n)
                            .and_then(|i| src[i].as_str().map(str::to_string))
                    };
                    source_schema = s("schema");
                    source_table = s("table");
                }
                match get("op").and_then(Value::as_str) {
                    Some("d") => None,
                    Some("t") if cfg.truncate_enabled => {
                        // No row shape: a truncate empties a table, it never creates one.
                        let table = cfg.table_name(
                            rec.topic,
                            source_schema.as_deref(),
                            source_table.as_deref(),
                        );
                        return Ok(Some(RowWrite {
                            table,
                            shape: self.shape(Vec::new(), Vec::new()),
                            op: WriteOp::Truncate,
                        }));
                    }
                    Some("t") | Some("m") => return Ok(None),
                    Some("c" | "u" | "r") => {
                        let after_schema = schema
                            .field("after")
                            .map(|f| f.schema.clone())
                            .ok_or_else(|| bad("envelope without after"))?;
                        match get("after") {
                            Some(Value::Struct(a)) => Some((after_schema, a.clone())),
                            _ => return Err(bad("change event without an after row")),
                        }
                    }
                    other => return Err(bad(format!("unknown change event op {other:?}"))),
                }
            }
            Some((schema, Value::Struct(members))) => Some((schema, members)),
            Some((schema, _)) => {
                return Err(bad(format!(
                    "the record value is a {}, not a struct the sink can map to columns",
                    schema.ty.json_name()
                )));
            }
        };
        let table = cfg.table_name(rec.topic, source_schema.as_deref(), source_table.as_deref());
        let key_struct: Option<(&Schema, &Vec<Value>)> = match &key {
            Some((s, Value::Struct(m))) => Some((s, m)),
            _ => None,
        };

        match row {
            None => {
                // Delete: a tombstone, a Debezium `d`, or a schema-only null payload.
                if !cfg.delete_enabled {
                    return Ok(None);
                }
                let (ks, kv) = match (cfg.pk_mode, key_struct, &key) {
                    (PkMode::RecordKey | PkMode::RecordValue, Some((s, m)), _) => (s, m),
                    (PkMode::RecordKey | PkMode::RecordValue, None, Some((s, v)))
                        if s.ty != SchemaType::Struct =>
                    {
                        let name = cfg
                            .pk_fields
                            .first()
                            .cloned()
                            .unwrap_or_else(|| "id".into());
                        let fields = vec![Field::new(name.clone(), s.clone())];
                        let shape = self.shape(fields, vec![name]);
                        return Ok(Some(RowWrite {
                            table,
                            shape,
                            op: WriteOp::Delete(vec![v.clone()]),
                        }));
                    }
                    (PkMode::None | PkMode::Kafka, _, _) => {
                        return Err(bad(
                            "delete.enabled needs pk.mode record_key or record_value to know which row to delete",
                        ));
                    }
                    _ => return Err(bad("a delete (tombstone) without a key cannot be applied")),
                };
                let names: Vec<String> = if cfg.pk_fields.is_empty() {
                    ks.fields.iter().map(|f| f.name.clone()).collect()
                } else {
                    cfg.pk_fields.clone()
                };
                let mut fields = Vec::new();
                let mut values = Vec::new();
                for n in &names {
                    let i = ks.field_index(n).ok_or_else(|| {
                        bad(format!(
                            "the record key has no field \"{n}\" named in pk.fields"
                        ))
                    })?;
                    fields.push(ks.fields[i].clone());
                    values.push(kv[i].clone());
                }
                let shape = self.shape(fields, names);
                Ok(Some(RowWrite {
                    table,
                    shape,
                    op: WriteOp::Delete(values),
                }))
            }
            Some((schema, members)) => {
                let mut fields = schema.fields.clone();
                let mut values = members;
                let pk: Vec<String> = match cfg.pk_mode {
                    PkMode::None => Vec::new(),
                    PkMode::Kafka => {
                        fields.push(Field::new(
                            "__connect_topic",
                            Schema::new(SchemaType::String),
                        ));
                        fields.push(Field::new(
                            "__connect_partition",
                            Schema::new(SchemaType::Int32),
                        ));
                        fields.push(Field::new(
                            "__connect_offset",
                            Schema::new(SchemaType::Int64),
                        ));
                        values.push(Value::String(rec.topic.to_string()));
                        values.push(Value::Int32(rec.partition));
                        values.push(Value::Int64(rec.offset));
                        vec![
                            "__connect_topic".into(),
                            "__connect_partition".into(),
                            "__connect_offset".into(),
                        ]
                    }
                    PkMode::RecordValue => {
                        if cfg.pk_fields.is_empty() {
                            return Err(bad("pk.mode=record_value needs pk.fields"));
                        }
                        for n in &cfg.pk_fields {
                            if schema.field_index(n).is_none() {
                                return Err(bad(format!(
                                    "the record value has no field \"{n}\" named in pk.fields"
                                )));
                            }
                        }
                        cfg.pk_fields.clone()
                    }
                    PkMode::RecordKey => {
                        let (ks, kv) = key_struct
                            .ok_or_else(|| bad("pk.mode=record_key needs a struct record key"))?;
                        let names: Vec<String> = if cfg.pk_fields.is_empty() {
                            ks.fields.iter().map(|f| f.name.clone()).collect()
                        } else {
                            cfg.pk_fields.clone()
                        };
                        for n in &names {
                            let ki = ks.field_index(n).ok_or_else(|| {
                                bad(format!("the record key has no field \"{n}\""))
                            })?;
                            match fields.iter().position(|f| &f.name == n) {
                                Some(vi) => values[vi] = kv[ki].clone(),
                                None => {
                                    fields.insert(0, ks.fields[ki].clone());
                                    values.insert(0, kv[ki].clone());
                                }
                            }
                        }
                        names
                    }
                };
                let shape = self.shape(fields, pk);
                Ok(Some(RowWrite {
                    table,
                    shape,
                    op: WriteOp::Row(values),
                }))
            }
        }
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
                .0
                .contains("no schema")
        );
        let not_json = SinkRecord {
            value: Some(b"\x00garbage"),
            ..rec
        };
        assert!(
            conv.convert(&c, &not_json)
                .unwrap_err()
                .0
                .contains("not JSON")
        );
    }
}
