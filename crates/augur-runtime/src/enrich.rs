//! The enrichment stage: a consumer group reads change records (Debezium envelopes or
//! flattened rows, with or without schemas), predicts a price for each row in one batch off the
//! async runtime, and produces the record — same key, the output field added to the payload
//! and to the schema, the model version in a header — to the output topic. Deletes and
//! tombstones pass through. A record that cannot be enriched goes to the dead-letter topic with
//! the reason in Kafka Connect's `__connect.errors.*` headers, and the stage keeps running.
//! Offsets are committed only after every output record of the batch is acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use augur_core::connect::{Field, Schema, SchemaType, Value};
use augur_core::record::Record;
use augur_core::shutdown::Shutdown;
use augur_core::{Error, ErrorKind};
use augur_debezium::json;
use augur_kafka::consumer::{Consumer, ConsumerSettings, Received};
use augur_kafka::producer::{Producer, ProducerSettings};

use crate::predict::{FeatureMap, Predictor};

/// The enrichment stage's settings.
#[derive(Debug, Clone)]
pub struct EnrichConfig {
    /// Input topics.
    pub topics: Vec<String>,
    /// Output topic (default: the last dot-separated part of the first input topic +
    /// `_predicted`, so `car_database.public.car_data` → `car_data_predicted`). May use
    /// `${table}` (the input topic's last part) and `${topic}` to fan out per input topic.
    pub output_topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Consumer group.
    pub group_id: String,
    /// Records per batch at most.
    pub batch_size: usize,
    /// How long a batch waits to fill.
    pub linger: Duration,
    /// Name reported in dead-letter headers.
    pub name: String,
    /// Predict through this remote model server instead of a local model.
    pub remote: Option<crate::remote::RemoteSettings>,
    /// Fill unavailable (TOASTed) values from the rows this sink stored (`augur run`).
    pub stored: Option<crate::stored::StoredSettings>,
    /// See [`Enricher::keep_unpriced`].
    pub keep_unpriced: bool,
}

impl EnrichConfig {
    /// Defaults for `topics`.
    pub fn new(topics: Vec<String>) -> Self {
        let base = topics
            .first()
            .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| "augur".into());
        EnrichConfig {
            output_topic: format!("{base}_predicted"),
            dlq_topic: format!("{base}_predicted.dlq"),
            group_id: "augur-enrich".into(),
            batch_size: 1000,
            linger: Duration::from_millis(5),
            name: "augur-enrich".into(),
            remote: None,
            stored: None,
            keep_unpriced: false,
            topics,
        }
    }
}

/// How records of one schema are enriched.
#[derive(Debug)]
struct Plan {
    /// `Some((before, after, op))` field indexes for a Debezium envelope; `None` for a flat row.
    envelope: Option<(usize, usize, usize)>,
    map: FeatureMap,
    /// The row's fields (the `after` struct's for envelopes).
    row_fields: Vec<Field>,
    /// The output schema (the row struct with the output field).
    out_schema: Schema,
    /// `{"schema":<out_schema>,"payload":`.
    prefix: Vec<u8>,
    /// Where the output field sits in the (output) row struct.
    out_index: usize,
}

/// What became of one input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Produce this record to the output topic.
    Output(Record),
    /// Produce the original record to the dead-letter topic, with this reason.
    Dead(String),
    /// Produce this record (the row without a prediction) to the output topic, and the
    /// original to the dead-letter topic with this reason (`keep_unpriced`).
    Unpriced(Record, String),
}

/// One parsed input record.
#[derive(Debug)]
enum Pending {
    Done(Outcome),
    Schemaful {
        plan: Arc<Plan>,
        value: Value,
        key: Option<Vec<u8>>,
        headers: Vec<(String, Vec<u8>)>,
        topic: String,
    },
    Schemaless {
        map: Arc<FeatureMap>,
        fields: Vec<Field>,
        obj: serde_json::Value,
        row: Vec<Value>,
        key: Option<Vec<u8>>,
        headers: Vec<(String, Vec<u8>)>,
        topic: String,
    },
}

/// A parsed batch, waiting for its predictions.
#[derive(Debug)]
pub struct Prepared {
    pending: Vec<Pending>,
}

impl Prepared {
    fn rows(&self) -> impl Iterator<Item = (&FeatureMap, &[Field], &[Value])> {
        self.pending.iter().filter_map(|p| match p {
            Pending::Schemaful {
                plan,
                value: Value::Struct(m),
                ..
            } => match plan.envelope {
                Some((_, a, _)) => match &m[a] {
                    Value::Struct(after) => {
                        Some((&plan.map, plan.row_fields.as_slice(), after.as_slice()))
                    }
                    _ => None,
                },
                None => Some((&plan.map, plan.row_fields.as_slice(), m.as_slice())),
            },
            Pending::Schemaless {
                map, fields, row, ..
            } => Some((map.as_ref(), fields.as_slice(), row.as_slice())),
            _ => None,
        })
    }

    /// The rows to predict, for a local model.
    pub fn local_rows(&self) -> Vec<(&FeatureMap, &[Value])> {
        self.rows().map(|(m, _, r)| (m, r)).collect()
    }

    /// The rows to predict as JSON objects, for a remote model (`Err`: the row cannot be sent).
    pub fn json_rows(
        &self,
        p: &Predictor,
    ) -> Vec<Result<serde_json::Map<String, serde_json::Value>, crate::predict::PredictError>> {
        self.rows()
            .map(|(_, f, r)| crate::predict::row_json(p, f, r))
            .collect()
    }
}

/// A row whose "unavailable" (unchanged TOASTed) text values are to be read from the row the
/// sink stored under its key, once the sink has written everything produced before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The record in the batch.
    pub record: usize,
    /// Its output topic (the sink's table follows from it).
    pub topic: String,
    /// Its record key, then the old key when the change moved the row to a new key.
    pub keys: Vec<Vec<u8>>,
    /// The row's columns holding the placeholder: index and name.
    pub columns: Vec<(usize, String)>,
}

/// What a prepared record does to its output topic's table, for in-batch resolution.
enum Effect<'a> {
    Row(&'a mut Vec<Value>, &'a [Field]),
    Delete { newkey: Option<Vec<u8>> },
    Truncate,
    Nothing,
}

fn header<'h>(headers: &'h [(String, Vec<u8>)], name: &str) -> Option<&'h Vec<u8>> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A key's identity whether it comes as a record key (`{"schema":…,"payload":…}`) or as a
/// key header (the bare payload).
fn key_id(bytes: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(mut o)) if o.len() == 2 && o.contains_key("schema") => o
            .remove("payload")
            .map_or_else(|| bytes.to_vec(), |p| p.to_string().into_bytes()),
        Ok(v) => v.to_string().into_bytes(),
        Err(_) => bytes.to_vec(),
    }
}

/// What a record passed on unchanged does: a tombstone or null payload deletes its key, a
/// Debezium `d` deletes, a `t` truncates.
fn passed_effect<'a>(rec: &Record) -> Effect<'a> {
    let delete = || Effect::Delete {
        newkey: header(&rec.headers, "__debezium.newkey").cloned(),
    };
    let Some(bytes) = &rec.value else {
        return delete();
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Effect::Nothing;
    };
    let payload = if doc.get("schema").is_some() {
        &doc["payload"]
    } else {
        &doc
    };
    match payload.get("op").and_then(|o| o.as_str()) {
        _ if payload.is_null() => delete(),
        Some("d") => delete(),
        Some("t") => Effect::Truncate,
        _ => Effect::Nothing,
    }
}

/// One prepared record as in-batch resolution sees it: key, output topic, headers, effect.
type Touch<'a> = (
    Option<&'a [u8]>,
    &'a str,
    &'a [(String, Vec<u8>)],
    Effect<'a>,
);

impl Prepared {
    fn effects(&mut self) -> Vec<Touch<'_>> {
        self.pending
            .iter_mut()
            .map(|p| match p {
                Pending::Schemaful {
                    plan,
                    value: Value::Struct(m),
                    key,
                    headers,
                    topic,
                } => {
                    let row = match plan.envelope {
                        Some((_, a, _)) => match &mut m[a] {
                            Value::Struct(r) => Some(r),
                            _ => None,
                        },
                        None => Some(m),
                    };
                    let effect = match row {
                        Some(r) => Effect::Row(r, plan.row_fields.as_slice()),
                        None => Effect::Nothing,
                    };
                    (key.as_deref(), topic.as_str(), headers.as_slice(), effect)
                }
                Pending::Done(Outcome::Output(rec)) => (
                    rec.key.as_deref(),
                    rec.topic.as_str(),
                    rec.headers.as_slice(),
                    passed_effect(rec),
                ),
                _ => (None, "", &[][..], Effect::Nothing),
            })
            .collect()
    }

    /// Fills each `placeholder` in a text column from the latest earlier row of the same key
    /// in this batch, and returns the rows still holding one whose key no earlier record of
    /// the batch touched: their values are read from the sink's stored row and put in with
    /// [`Prepared::fill`]; then call this again to carry them on to later records of the key.
    pub fn resolve_in_batch(&mut self, placeholder: &str) -> Vec<Lookup> {
        let holds = |v: &Value| matches!(v, Value::String(s) if s == placeholder);
        let any = self.pending.iter().any(|p| match p {
            Pending::Schemaful { value, .. } => contains(value, &holds),
            _ => false,
        });
        if !any {
            return Vec::new();
        }
        let mut latest: HashMap<(String, Vec<u8>), Vec<Value>> = HashMap::new();
        let mut touched: std::collections::HashSet<(String, Vec<u8>)> = Default::default();
        let mut lookups = Vec::new();
        for (n, (key, topic, headers, effect)) in self.effects().into_iter().enumerate() {
            let Some(key) = key else {
                if matches!(effect, Effect::Truncate) {
                    latest.retain(|(t, _), _| t != topic);
                }
                continue;
            };
            let id = (topic.to_string(), key_id(key));
            match effect {
                Effect::Row(row, fields) => {
                    let earlier = latest.get(&id);
                    let mut missing = Vec::new();
                    for (i, f) in fields.iter().enumerate() {
                        if !holds(&row[i]) {
                            continue;
                        }
                        match earlier.map(|r| &r[i]) {
                            Some(prev) if !holds(prev) => row[i] = prev.clone(),
                            _ if f.schema.ty == SchemaType::String => {
                                missing.push((i, f.name.clone()));
                            }
                            _ => {}
                        }
                    }
                    // The stored row is the state before this batch: only right for a key no
                    // earlier record of the batch touched.
                    if !missing.is_empty() && !touched.contains(&id) {
                        let mut keys = vec![key.to_vec()];
                        keys.extend(header(headers, "__debezium.oldkey").cloned());
                        lookups.push(Lookup {
                            record: n,
                            topic: topic.to_string(),
                            keys,
                            columns: missing,
                        });
                    }
                    latest.insert(id.clone(), row.clone());
                    touched.insert(id);
                }
                Effect::Delete { newkey } => {
                    let row = latest.remove(&id);
                    // The delete half of a key change: the create half finds the row's values
                    // under the new key.
                    if let (Some(new), Some(row)) = (newkey, row) {
                        latest.insert((id.0.clone(), key_id(&new)), row);
                    }
                    touched.insert(id);
                }
                Effect::Truncate => latest.retain(|(t, _), _| t != topic),
                Effect::Nothing => {}
            }
        }
        lookups
    }

    /// Puts the stored text of each lookup's columns into its row (rows not found keep the
    /// placeholder and go to the dead-letter topic as unavailable).
    pub fn fill(&mut self, lookups: &[Lookup], stored: Vec<Option<Vec<Option<String>>>>) {
        let mut effects = self.effects();
        for (l, found) in lookups.iter().zip(stored) {
            let (Some(vals), Some((_, _, _, Effect::Row(row, _)))) =
                (found, effects.get_mut(l.record))
            else {
                continue;
            };
            for ((i, _), v) in l.columns.iter().zip(vals) {
                row[*i] = v.map_or(Value::Null, Value::String);
            }
        }
    }
}

/// Whether `v` (a row or an envelope) holds a value `hit` matches, one level of structs deep.
fn contains(v: &Value, hit: &dyn Fn(&Value) -> bool) -> bool {
    match v {
        Value::Struct(m) => m.iter().any(|x| match x {
            Value::Struct(inner) => inner.iter().any(hit),
            other => hit(other),
        }),
        other => hit(other),
    }
}

/// The pure part of the stage: input records → outcomes. Synchronous; run it off the runtime.
#[derive(Debug)]
pub struct Enricher {
    predictor: Predictor,
    output_topic: String,
    plans: HashMap<String, Arc<Plan>>,
    schemaless: HashMap<String, Arc<FeatureMap>>,
    keep_unpriced: bool,
}

impl Enricher {
    /// An enricher writing to `output_topic`.
    pub fn new(predictor: Predictor, output_topic: impl Into<String>) -> Self {
        Enricher {
            predictor,
            output_topic: output_topic.into(),
            plans: HashMap::new(),
            schemaless: HashMap::new(),
            keep_unpriced: false,
        }
    }

    /// A row the model refuses still goes to the output topic, without a prediction (and to
    /// the dead-letter topic with the reason), so the output table keeps every row of the
    /// source — what `augur run` does on both of its paths.
    pub fn keep_unpriced(mut self, keep: bool) -> Self {
        self.keep_unpriced = keep;
        self
    }

    /// The predictor.
    pub fn predictor(&self) -> &Predictor {
        &self.predictor
    }

    /// Enriches a batch with the local model (synchronous: run it off the async runtime).
    pub fn enrich(&mut self, batch: &[Received]) -> Vec<Outcome> {
        let prepared = self.prepare(batch);
        let predictions = self.predictor.predict(&prepared.local_rows());
        self.finish(prepared, predictions)
    }

    fn plan(&mut self, schema_json: &serde_json::Value) -> Result<Arc<Plan>, String> {
        let key = schema_json.to_string();
        if let Some(p) = self.plans.get(&key) {
            return Ok(p.clone());
        }
        let schema =
            json::parse_schema(schema_json).map_err(|e| format!("the record's schema: {e}"))?;
        if schema.ty != SchemaType::Struct {
            return Err(format!(
                "the record value is a {}, not a row",
                schema.ty.json_name()
            ));
        }
        let envelope = match (
            schema.field_index("before"),
            schema.field_index("after"),
            schema.field_index("op"),
        ) {
            (Some(b), Some(a), Some(o)) => Some((b, a, o)),
            _ => None,
        };
        let row_schema = match envelope {
            Some((_, a, _)) => schema.fields[a].schema.clone(),
            None => schema.clone(),
        };
        let map = self.predictor.feature_map(&row_schema.fields);
        let mut out_row = row_schema.clone();
        out_row.fields = self.predictor.output_fields(&row_schema.fields, &map);
        let out_index = map.output_index.unwrap_or(out_row.fields.len() - 1);
        let out_schema = match envelope {
            Some((b, a, _)) => {
                let mut s = schema.clone();
                s.fields[a].schema = out_row;
                s.fields[b].schema.fields = s.fields[a].schema.fields.clone();
                s
            }
            None => out_row,
        };
        let mut prefix = b"{\"schema\":".to_vec();
        json::write_schema(&mut prefix, &out_schema);
        prefix.extend_from_slice(b",\"payload\":");
        let plan = Arc::new(Plan {
            envelope,
            map,
            row_fields: row_schema.fields.clone(),
            out_schema,
            prefix,
            out_index,
        });
        if self.plans.len() > 1024 {
            self.plans.clear();
        }
        self.plans.insert(key, plan.clone());
        Ok(plan)
    }

    /// Parses a batch and collects the rows to predict.
    pub fn prepare(&mut self, batch: &[Received]) -> Prepared {
        let format = self.output_topic.clone();
        let topic_for = |input: &str| -> String {
            format
                .replace("${table}", input.rsplit('.').next().unwrap_or(input))
                .replace("${topic}", input)
        };
        let mut pending = Vec::with_capacity(batch.len());
        for rec in batch {
            let pass = |rec: &Received| {
                Pending::Done(Outcome::Output(Record {
                    topic: topic_for(&rec.topic),
                    key: rec.key.clone(),
                    value: rec.value.clone(),
                    headers: rec.headers.clone(),
                }))
            };
            let Some(bytes) = &rec.value else {
                pending.push(pass(rec));
                continue;
            };
            let doc: serde_json::Value = match serde_json::from_slice(bytes) {
                Ok(d) => d,
                Err(e) => {
                    pending.push(Pending::Done(Outcome::Dead(format!(
                        "the record value is not JSON: {e}"
                    ))));
                    continue;
                }
            };
            if doc.is_null() {
                pending.push(pass(rec));
                continue;
            }
            let schemaful = doc.get("schema").is_some()
                && doc.get("payload").is_some()
                && doc.as_object().is_some_and(|o| o.len() == 2);
            if schemaful {
                if doc["payload"].is_null() || doc["schema"].is_null() {
                    pending.push(pass(rec));
                    continue;
                }
                let plan = match self.plan(&doc["schema"]) {
                    Ok(p) => p,
                    Err(e) => {
                        pending.push(Pending::Done(Outcome::Dead(e)));
                        continue;
                    }
                };
                // Read with the output schema: the output field (absent in the input) reads as
                // null and is filled in below.
                let value = match json::parse_value(&plan.out_schema, &doc["payload"]) {
                    Ok(v) => v,
                    Err(e) => {
                        pending.push(Pending::Done(Outcome::Dead(format!(
                            "the record's payload: {e}"
                        ))));
                        continue;
                    }
                };
                if let (Some((_, a, o)), Value::Struct(m)) = (plan.envelope, &value) {
                    match m[o].as_str() {
                        Some("c" | "u" | "r") if matches!(m[a], Value::Struct(_)) => {}
                        _ => {
                            pending.push(pass(rec));
                            continue;
                        }
                    }
                }
                pending.push(Pending::Schemaful {
                    plan,
                    value,
                    key: rec.key.clone(),
                    headers: rec.headers.clone(),
                    topic: topic_for(&rec.topic),
                });
            } else {
                let Some(obj) = doc.as_object() else {
                    pending.push(Pending::Done(Outcome::Dead(
                        "the record value is not a JSON object".into(),
                    )));
                    continue;
                };
                let row_obj = if obj.contains_key("op") && obj.contains_key("after") {
                    match (obj["op"].as_str(), obj["after"].as_object()) {
                        (Some("c" | "u" | "r"), Some(a)) => a,
                        _ => {
                            pending.push(pass(rec));
                            continue;
                        }
                    }
                } else {
                    obj
                };
                let fields: Vec<Field> = row_obj
                    .iter()
                    .map(|(k, v)| {
                        let t = match v {
                            serde_json::Value::Number(_) => SchemaType::Float64,
                            serde_json::Value::Bool(_) => SchemaType::Boolean,
                            _ => SchemaType::String,
                        };
                        Field::new(k.clone(), Schema::new(t).optional(true))
                    })
                    .collect();
                let row: Vec<Value> = row_obj
                    .values()
                    .map(|v| match v {
                        serde_json::Value::Number(n) => {
                            n.as_f64().map_or(Value::Null, Value::Float64)
                        }
                        serde_json::Value::String(s) => Value::String(s.clone()),
                        serde_json::Value::Bool(b) => Value::Boolean(*b),
                        _ => Value::Null,
                    })
                    .collect();
                let key = fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                let map = match self.schemaless.get(&key) {
                    Some(m) => m.clone(),
                    None => {
                        let mut m = self.predictor.feature_map(&fields);
                        // Without a schema the output keeps the configured type.
                        m.output_schema = Schema::new(SchemaType::Float64).optional(true);
                        let m = Arc::new(m);
                        self.schemaless.insert(key, m.clone());
                        m
                    }
                };
                pending.push(Pending::Schemaless {
                    map,
                    fields,
                    obj: doc.clone(),
                    row,
                    key: rec.key.clone(),
                    headers: rec.headers.clone(),
                    topic: topic_for(&rec.topic),
                });
            }
        }

        Prepared { pending }
    }

    /// Builds the outcomes from the predictions of [`Prepared::local_rows`] /
    /// [`Prepared::json_rows`] (one per row, in order).
    pub fn finish(
        &self,
        prepared: Prepared,
        predictions: Vec<Result<f64, crate::predict::PredictError>>,
    ) -> Vec<Outcome> {
        let tag = self.predictor.model_tag().to_string();
        let pending = prepared.pending;
        let mut predictions = predictions.into_iter();
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            let model_header = |mut headers: Vec<(String, Vec<u8>)>| {
                headers.push(("__augur.model".to_string(), tag.clone().into_bytes()));
                headers
            };
            match p {
                Pending::Done(o) => out.push(o),
                Pending::Schemaful {
                    plan,
                    mut value,
                    key,
                    headers,
                    topic,
                } => {
                    let pred = predictions.next().expect("one prediction per row");
                    let (v, refused) = match pred {
                        Ok(price) => (self.predictor.output_value(&plan.map, price), None),
                        Err(e) if self.keep_unpriced => (Value::Null, Some(e.message)),
                        Err(e) => {
                            out.push(Outcome::Dead(e.message));
                            continue;
                        }
                    };
                    if let Value::Struct(m) = &mut value {
                        let row = match plan.envelope {
                            Some((_, a, _)) => match &mut m[a] {
                                Value::Struct(r) => Some(r),
                                _ => None,
                            },
                            None => Some(m),
                        };
                        if let Some(r) = row {
                            r[plan.out_index] = v;
                        }
                    }
                    let mut bytes = Vec::with_capacity(plan.prefix.len() + 1024);
                    bytes.extend_from_slice(&plan.prefix);
                    json::write_value(&mut bytes, &plan.out_schema, &value, true);
                    bytes.push(b'}');
                    let rec = Record {
                        topic: topic.clone(),
                        key,
                        value: Some(bytes),
                        headers: model_header(headers),
                    };
                    out.push(match refused {
                        None => Outcome::Output(rec),
                        Some(reason) => Outcome::Unpriced(rec, reason),
                    });
                }
                Pending::Schemaless {
                    map,
                    mut obj,
                    key,
                    headers,
                    topic,
                    ..
                } => {
                    let pred = predictions.next().expect("one prediction per row");
                    let price = match pred {
                        Ok(v) => v,
                        Err(e) => {
                            out.push(Outcome::Dead(e.message));
                            continue;
                        }
                    };
                    let v = self.predictor.output_value(&map, price);
                    let jv = match v {
                        Value::Float64(f) => serde_json::Value::from(f),
                        Value::Int32(i) => serde_json::Value::from(i),
                        Value::Int64(i) => serde_json::Value::from(i),
                        other => serde_json::Value::from(other.as_f64().unwrap_or(price)),
                    };
                    let target = match obj.get_mut("after").filter(|a| a.is_object()) {
                        Some(a) => a,
                        None => &mut obj,
                    };
                    if let Some(o) = target.as_object_mut() {
                        o.insert(self.predictor.output.clone(), jv);
                    }
                    let bytes = serde_json::to_vec(&obj).unwrap_or_default();
                    out.push(Outcome::Output(Record {
                        topic: topic.clone(),
                        key,
                        value: Some(bytes),
                        headers: model_header(headers),
                    }));
                }
            }
        }
        out
    }
}

/// Kafka Connect's dead-letter headers for a record that could not be processed.
pub fn dead_letter(rec: &Received, topic: &str, stage: &str, name: &str, reason: &str) -> Record {
    let mut headers = rec.headers.clone();
    for (k, v) in [
        ("__connect.errors.topic", rec.topic.clone()),
        ("__connect.errors.partition", rec.partition.to_string()),
        ("__connect.errors.offset", rec.offset.to_string()),
        ("__connect.errors.connector.name", name.to_string()),
        ("__connect.errors.task.id", "0".to_string()),
        ("__connect.errors.stage", stage.to_string()),
        (
            "__connect.errors.exception.class.name",
            "augur.DataError".to_string(),
        ),
        ("__connect.errors.exception.message", reason.to_string()),
    ] {
        headers.push((k.to_string(), v.into_bytes()));
    }
    Record {
        topic: topic.to_string(),
        key: rec.key.clone(),
        value: rec.value.clone(),
        headers,
    }
}

/// The highest change position (`__augur.position`, stamped by `augur run`'s capture) seen
/// per input partition: a record at or below it is a change produced twice.
#[derive(Debug, Default)]
struct Positions {
    max: HashMap<(String, i32), Vec<u8>>,
}

impl Positions {
    fn first_time(&mut self, r: &Received) -> bool {
        let header = crate::capture::destination::POSITION_HEADER;
        let Some((_, pos)) = r.headers.iter().find(|(k, _)| k == header) else {
            return true;
        };
        let max = self.max.entry((r.topic.clone(), r.partition)).or_default();
        if !max.is_empty() && pos <= max {
            return false;
        }
        max.clone_from(pos);
        true
    }
}

/// Whether `batch` ends between the delete half of a key change (`__debezium.newkey`) and
/// its create half (`__debezium.oldkey`).
fn splits_key_change(batch: &[Received]) -> bool {
    let has = |r: &Received, h: &str| r.headers.iter().any(|(k, _)| k == h);
    match batch.iter().rposition(|r| has(r, "__debezium.newkey")) {
        Some(i) => !batch[i..].iter().any(|r| has(r, "__debezium.oldkey")),
        None => false,
    }
}

/// Runs the stage until shutdown. Fails (without committing) if Kafka refuses output; replays
/// then resume from the last committed offsets.
pub async fn run(
    cfg: EnrichConfig,
    predictor: Predictor,
    consumer: ConsumerSettings,
    producer: ProducerSettings,
    mut shutdown: Shutdown,
) -> Result<(), Error> {
    let producer = Arc::new(Producer::new(producer)?);
    producer.healthcheck(Duration::from_secs(10)).await?;
    let consumer = Consumer::new(consumer)?;
    let remote = match &cfg.remote {
        Some(r) => Some(crate::remote::RemoteModel::connect(r.clone()).await?),
        None => None,
    };
    if !cfg.output_topic.contains("${") {
        producer.ensure_topic(&cfg.output_topic).await?;
    }
    let mut stored = match &cfg.stored {
        Some(s) => Some(crate::stored::StoredRows::new(s.clone())?),
        None => None,
    };
    let mut positions = cfg.stored.as_ref().map(|_| Positions::default());
    let mut enricher =
        Some(Enricher::new(predictor, cfg.output_topic.clone()).keep_unpriced(cfg.keep_unpriced));
    tracing::info!(topics = %cfg.topics.join(","), output = %cfg.output_topic, "enrichment stage running");
    loop {
        let mut batch = tokio::select! {
            _ = shutdown.wait() => break,
            b = consumer.recv_batch(cfg.batch_size, cfg.linger) => b?,
        };
        // A change the capture produced twice (after a crash) is applied once: replayed in
        // one batch with its original, it would feed the wrong values to later changes.
        let mut repeated = Vec::new();
        if let Some(seen) = &mut positions {
            let (first, again): (Vec<Received>, Vec<Received>) =
                batch.into_iter().partition(|r| seen.first_time(r));
            batch = first;
            // Committed with the batch, without their payloads.
            repeated = again
                .into_iter()
                .map(|r| Received {
                    key: None,
                    value: None,
                    headers: Vec::new(),
                    ..r
                })
                .collect();
            if !repeated.is_empty() {
                tracing::info!(changes = repeated.len(), "left out changes produced twice");
            }
        }
        // Both halves of a key change in one batch: the new key's row may need the old
        // key's stored values, which the delete half removes once written.
        while stored.is_some() && splits_key_change(&batch) {
            match tokio::time::timeout(
                Duration::from_secs(5),
                consumer.recv_batch(cfg.batch_size, cfg.linger),
            )
            .await
            {
                Ok(more) => batch.extend(more?),
                Err(_) => break,
            }
        }
        let mut e = enricher.take().expect("enricher is back after each batch");
        let (e, mut prepared, batch) = tokio::task::spawn_blocking(move || {
            let p = e.prepare(&batch);
            (e, p, batch)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "enrichment task panicked").with_source(e))?;
        if let Some(s) = &mut stored
            && !s.fill(&mut prepared, &mut shutdown).await?
        {
            break;
        }
        let (e, outcomes, mut batch) = match &remote {
            None => tokio::task::spawn_blocking(move || {
                let predictions = e.predictor().predict(&prepared.local_rows());
                let o = e.finish(prepared, predictions);
                (e, o, batch)
            })
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Internal, "enrichment task panicked").with_source(e)
            })?,
            Some(remote) => {
                let rows = prepared.json_rows(e.predictor());
                let sendable: Vec<serde_json::Map<String, serde_json::Value>> = rows
                    .iter()
                    .filter_map(|r| r.as_ref().ok().cloned())
                    .collect();
                let mut answers = remote.predict(&sendable).await?.into_iter();
                let predictions = rows
                    .into_iter()
                    .map(|r| match r {
                        Err(e) => Err(e),
                        Ok(_) => answers
                            .next()
                            .unwrap_or_else(|| Err("no answer".into()))
                            .map_err(|m| {
                                crate::predict::PredictError::new(
                                    crate::predict::RejectCode::ModelError,
                                    m,
                                )
                            }),
                    })
                    .collect();
                let o = e.finish(prepared, predictions);
                (e, o, batch)
            }
        };
        enricher = Some(e);
        let mut deliveries = Vec::with_capacity(outcomes.len());
        for (rec, outcome) in batch.iter().zip(outcomes) {
            let (out, dead) = match outcome {
                Outcome::Output(r) => (Some(r), None),
                Outcome::Dead(reason) => (None, Some(reason)),
                Outcome::Unpriced(r, reason) => (Some(r), Some(reason)),
            };
            if let Some(reason) = dead {
                tracing::warn!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, reason = %reason, "record sent to the dead-letter topic");
                producer.ensure_topic(&cfg.dlq_topic).await?;
                let d = dead_letter(rec, &cfg.dlq_topic, "TRANSFORMATION", &cfg.name, &reason);
                deliveries.push(producer.send(&d).await?);
            }
            if let Some(out) = out {
                producer.ensure_topic(&out.topic).await?;
                deliveries.push(producer.send(&out).await?);
            }
        }
        for d in deliveries {
            Producer::delivered(d).await?;
        }
        batch.extend(repeated);
        consumer.commit(&batch, false)?;
    }
    tracing::info!("enrichment stage stopped");
    Ok(())
}

/// The connector class name the Connect API uses for the enrichment stage.
pub const ENRICH_CONNECTOR: &str = "io.augur.connect.EnrichConnector";

/// The enrichment stage's model settings, read alongside [`EnrichConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSettings {
    /// `model`: the model tag (default `ford-price:latest`).
    pub tag: String,
    /// `model.store`: the model store (default: the user's store, then the shipped models).
    pub store: Option<std::path::PathBuf>,
    /// `output.field` (default `suggestedprice`).
    pub output_field: String,
    /// `output.type` (default `double`).
    pub output_type: crate::predict::OutputType,
    /// `feature.mapping`: `modelInput=column,…` for columns named differently.
    pub mapping: HashMap<String, String>,
    /// `predict.url` and friends: a remote model server instead of a local model.
    pub remote: Option<crate::remote::RemoteSettings>,
}

impl ModelSettings {
    /// Loads the model and builds the predictor.
    pub fn predictor(&self) -> Result<Predictor, Error> {
        let mut p = match &self.remote {
            Some(r) => Predictor::remote(format!("remote:{}", r.url), self.output_field.clone()),
            None => Predictor::new(
                crate::models::load(&self.tag, self.store.as_deref())?,
                self.output_field.clone(),
            ),
        };
        p.output_type = self.output_type;
        p.mapping = self.mapping.clone();
        Ok(p)
    }
}

impl EnrichConfig {
    /// Reads an enrichment connector config: `topics` (or `topics.regex`), `output.topic`,
    /// `errors.deadletterqueue.topic.name`, `batch.size`, `model`, `model.store`,
    /// `output.field`, `output.type`, `feature.mapping`. The consumer group is
    /// `connect-<name>`, as for Kafka Connect sinks.
    pub fn from_props(
        props: &crate::props::Props,
    ) -> Result<(EnrichConfig, ModelSettings), crate::capture::config::ConfigErrors> {
        use crate::capture::config::{ConfigError, ConfigErrors};
        let mut errors = Vec::new();
        let get = |k: &str| props.get(k).filter(|v| !v.is_empty());
        let topics = props.subscription().unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let mut cfg = EnrichConfig::new(topics);
        if let Some(n) = get("name") {
            cfg.name = n.to_string();
            cfg.group_id = format!("connect-{n}");
        }
        if let Some(t) = get("output.topic") {
            cfg.dlq_topic = format!("{t}.dlq");
            cfg.output_topic = t.to_string();
        }
        if let Some(t) = get("errors.deadletterqueue.topic.name") {
            cfg.dlq_topic = t.to_string();
        }
        if let Some(b) = get("batch.size") {
            match b.parse::<usize>() {
                Ok(n) if n > 0 => cfg.batch_size = n,
                _ => errors.push(ConfigError { key: "batch.size".into(), message: format!("Invalid value {b} for configuration batch.size: expected a positive integer") }),
            }
        }
        let output_type = match get("output.type") {
            None => crate::predict::OutputType::Double,
            Some(t) => match crate::predict::OutputType::parse(t) {
                Some(o) => o,
                None => {
                    errors.push(ConfigError { key: "output.type".into(), message: format!("Invalid value {t} for configuration output.type: must be one of double, float, int32, int64") });
                    crate::predict::OutputType::Double
                }
            },
        };
        let mut mapping = HashMap::new();
        if let Some(m) = get("feature.mapping") {
            for pair in m.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match pair.split_once('=') {
                    Some((k, v)) => {
                        mapping.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                    None => errors.push(ConfigError { key: "feature.mapping".into(), message: format!("Invalid value {m} for configuration feature.mapping: expected input=column pairs") }),
                }
            }
        }
        let remote = match get("predict.url") {
            None => None,
            Some(url) => {
                let protocol = match crate::remote::Protocol::parse(
                    get("predict.protocol").unwrap_or("bentoml"),
                ) {
                    Some(p) => p,
                    None => {
                        errors.push(ConfigError {
                            key: "predict.protocol".into(),
                            message: "Invalid value for configuration predict.protocol: must be bentoml or oip".into(),
                        });
                        crate::remote::Protocol::BentoMl
                    }
                };
                let mut r = crate::remote::RemoteSettings::new(url, protocol);
                if !url.starts_with("http://") {
                    errors.push(ConfigError { key: "predict.url".into(), message: format!("Invalid value {url} for configuration predict.url: expected http://host:port") });
                }
                if let Some(m) = get("predict.model") {
                    r.model = m.to_string();
                }
                let num =
                    |k: &str, errors: &mut Vec<ConfigError>| match get(k).map(str::parse::<u64>) {
                        None => None,
                        Some(Ok(n)) => Some(n),
                        Some(Err(_)) => {
                            errors.push(ConfigError {
                                key: k.into(),
                                message: format!(
                                    "Invalid value for configuration {k}: expected a number"
                                ),
                            });
                            None
                        }
                    };
                if let Some(ms) = num("predict.timeout.ms", &mut errors) {
                    r.timeout = Duration::from_millis(ms.max(1));
                }
                if let Some(n) = num("predict.retries", &mut errors) {
                    r.retries = n as u32;
                }
                if let Some(n) = num("predict.batch.size", &mut errors) {
                    r.max_batch = (n as usize).max(1);
                }
                Some(r)
            }
        };
        cfg.remote = remote.clone();
        let model = ModelSettings {
            tag: get("model").unwrap_or("ford-price:latest").to_string(),
            store: get("model.store").map(std::path::PathBuf::from),
            output_field: get("output.field").unwrap_or("suggestedprice").to_string(),
            output_type,
            mapping,
            remote,
        };
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok((cfg, model))
    }
}
