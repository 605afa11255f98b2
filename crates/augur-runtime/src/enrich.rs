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
use augur_model::SHIPPED_MODEL;

use crate::capture::config::{ConfigError, ConfigErrors};
use crate::predict::{FeatureMap, OutputType, PredictError, Predictor, RejectCode};
use crate::props::Props;
use crate::remote::{Protocol, RemoteModel, RemoteSettings};
use crate::stored::StoredRows;
use crate::unchanged::{self, Change, Touch};

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
    pub remote: Option<RemoteSettings>,
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
            linger: Duration::ZERO,
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
        /// The output record so far: topic, key and headers.
        out: Record,
    },
    Schemaless {
        map: Arc<FeatureMap>,
        fields: Vec<Field>,
        obj: serde_json::Value,
        row: Vec<Value>,
        /// The output record so far: topic, key and headers.
        out: Record,
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
    ) -> Vec<Result<serde_json::Map<String, serde_json::Value>, PredictError>> {
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
fn passed_touch<'a>(rec: &Record) -> Touch<'a> {
    let delete = || Touch::Delete {
        new_key: header(&rec.headers, "__debezium.newkey").map(|k| key_id(k)),
    };
    let Some(bytes) = &rec.value else {
        return delete();
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Touch::Nothing;
    };
    let payload = if doc.get("schema").is_some() {
        &doc["payload"]
    } else {
        &doc
    };
    match payload.get("op").and_then(|o| o.as_str()) {
        _ if payload.is_null() => delete(),
        Some("d") => delete(),
        Some("t") => Touch::Truncate,
        _ => Touch::Nothing,
    }
}

/// One prepared record as in-batch resolution sees it: key, output topic, headers, touch.
type Effect<'a> = (
    Option<&'a [u8]>,
    &'a str,
    &'a [(String, Vec<u8>)],
    Touch<'a>,
);

impl Prepared {
    fn effects(&mut self) -> Vec<Effect<'_>> {
        self.pending
            .iter_mut()
            .map(|p| match p {
                Pending::Schemaful {
                    plan,
                    value: Value::Struct(m),
                    out,
                } => {
                    let row = match plan.envelope {
                        Some((_, a, _)) => match &mut m[a] {
                            Value::Struct(r) => Some(r),
                            _ => None,
                        },
                        None => Some(m),
                    };
                    let touch = match row {
                        Some(row) => Touch::Row {
                            row,
                            fields: plan.row_fields.as_slice(),
                        },
                        None => Touch::Nothing,
                    };
                    let (key, headers) = (out.key.as_deref(), out.headers.as_slice());
                    (key, out.topic.as_str(), headers, touch)
                }
                Pending::Done(Outcome::Output(rec)) => (
                    rec.key.as_deref(),
                    rec.topic.as_str(),
                    rec.headers.as_slice(),
                    passed_touch(rec),
                ),
                _ => (None, "", &[][..], Touch::Nothing),
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
        let effects = self.effects();
        let mut keys: Vec<Option<Vec<Vec<u8>>>> = Vec::with_capacity(effects.len());
        let mut topics = Vec::with_capacity(effects.len());
        let changes: Vec<Change<'_>> = effects
            .into_iter()
            .map(|(key, topic, headers, touch)| {
                keys.push(key.map(|k| {
                    let mut ks = vec![k.to_vec()];
                    ks.extend(header(headers, "__debezium.oldkey").cloned());
                    ks
                }));
                topics.push(topic.to_string());
                let key = key.map(key_id);
                Change {
                    table: topic,
                    key,
                    touch,
                }
            })
            .collect();
        unchanged::resolve(changes, holds)
            .into_iter()
            .map(|m| Lookup {
                record: m.change,
                topic: std::mem::take(&mut topics[m.change]),
                keys: keys[m.change].take().unwrap_or_default(),
                columns: m.columns,
            })
            .collect()
    }

    /// Puts the stored text of each lookup's columns into its row (rows not found keep the
    /// placeholder and go to the dead-letter topic as unavailable).
    pub fn fill(&mut self, lookups: &[Lookup], stored: Vec<Option<Vec<Option<String>>>>) {
        let mut effects = self.effects();
        for (l, found) in lookups.iter().zip(stored) {
            let (Some(vals), Some((_, _, _, Touch::Row { row, .. }))) =
                (found, effects.get_mut(l.record))
            else {
                continue;
            };
            unchanged::put_stored(row, &l.columns, vals);
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
    /// Read `{"schema":…,"payload":…}` records without the schema's JSON tree (off only in
    /// the test that compares both ways).
    enveloped_fast_path: bool,
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
            enveloped_fast_path: true,
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
        self.new_plan(key, schema_json)
    }

    /// The plan for a schema given as its raw JSON text (the cache key as it is: a producer
    /// writes one schema the same way every time).
    fn plan_raw(&mut self, raw: &str) -> Result<Arc<Plan>, String> {
        if let Some(p) = self.plans.get(raw) {
            return Ok(p.clone());
        }
        let schema_json: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("the record's schema: {e}"))?;
        self.new_plan(raw.to_string(), &schema_json)
    }

    /// Builds and caches the plan for `schema_json` under `key`.
    fn new_plan(
        &mut self,
        key: String,
        schema_json: &serde_json::Value,
    ) -> Result<Arc<Plan>, String> {
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
        let pending = batch.iter().map(|rec| self.prepare_one(rec)).collect();
        Prepared { pending }
    }

    /// The output topic for records of `input` (`${table}` and `${topic}` filled in).
    fn topic_for(&self, input: &str) -> String {
        self.output_topic
            .replace("${table}", input.rsplit('.').next().unwrap_or(input))
            .replace("${topic}", input)
    }

    /// The record unchanged, to the output topic (tombstones, deletes, non-row changes).
    fn pass(&self, rec: &Received) -> Pending {
        Pending::Done(Outcome::Output(Record {
            topic: self.topic_for(&rec.topic),
            key: rec.key.clone(),
            value: rec.value.clone(),
            headers: rec.headers.clone(),
        }))
    }

    /// The key, headers and output topic of `rec`, for the enriched record.
    fn output_of(&self, rec: &Received) -> Record {
        Record {
            topic: self.topic_for(&rec.topic),
            key: rec.key.clone(),
            value: None,
            headers: rec.headers.clone(),
        }
    }

    /// Parses one record: passed through, dead, or a row to predict.
    fn prepare_one(&mut self, rec: &Received) -> Pending {
        let Some(bytes) = &rec.value else {
            return self.pass(rec);
        };
        if self.enveloped_fast_path
            && let Some(p) = self.prepare_enveloped(rec, bytes)
        {
            return p;
        }
        let doc: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(d) => d,
            Err(e) => return dead(format!("the record value is not JSON: {e}")),
        };
        if doc.is_null() {
            return self.pass(rec);
        }
        let schemaful = doc.get("schema").is_some()
            && doc.get("payload").is_some()
            && doc.as_object().is_some_and(|o| o.len() == 2);
        if schemaful {
            self.prepare_schemaful(rec, &doc)
        } else {
            self.prepare_schemaless(rec, doc)
        }
    }

    /// The common case, a `{"schema":…,"payload":…}` record, without building the schema's
    /// JSON tree: the schema's raw text finds its plan and only the payload is parsed. `None`
    /// for anything else (the general path then reads and words it).
    fn prepare_enveloped(&mut self, rec: &Received, bytes: &[u8]) -> Option<Pending> {
        use serde_json::value::RawValue;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Enveloped<'a> {
            #[serde(borrow)]
            schema: &'a RawValue,
            #[serde(borrow)]
            payload: &'a RawValue,
        }
        // (A derived struct would also read a two-element array.)
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let doc: Enveloped<'_> = serde_json::from_slice(bytes).ok()?;
        let (schema, payload) = (doc.schema.get(), doc.payload.get());
        if schema == "null" || payload == "null" {
            return Some(self.pass(rec));
        }
        let payload: serde_json::Value = serde_json::from_str(payload).ok()?;
        if payload.is_null() {
            return Some(self.pass(rec));
        }
        let plan = match self.plan_raw(schema) {
            Ok(p) => p,
            Err(e) => return Some(dead(e)),
        };
        Some(self.prepare_payload(rec, plan, &payload))
    }

    /// A record with a schema, read with the output schema: the output field (absent in the
    /// input) reads as null and is filled in by [`Enricher::finish`].
    fn prepare_schemaful(&mut self, rec: &Received, doc: &serde_json::Value) -> Pending {
        if doc["payload"].is_null() || doc["schema"].is_null() {
            return self.pass(rec);
        }
        let plan = match self.plan(&doc["schema"]) {
            Ok(p) => p,
            Err(e) => return dead(e),
        };
        self.prepare_payload(rec, plan, &doc["payload"])
    }

    /// A schemaful record's payload read with `plan`: passed through, dead, or a row to
    /// predict.
    fn prepare_payload(
        &mut self,
        rec: &Received,
        plan: Arc<Plan>,
        payload: &serde_json::Value,
    ) -> Pending {
        let value = match json::parse_value(&plan.out_schema, payload) {
            Ok(v) => v,
            Err(e) => return dead(format!("the record's payload: {e}")),
        };
        if let (Some((_, a, o)), Value::Struct(m)) = (plan.envelope, &value) {
            let row_change = matches!(m[o].as_str(), Some("c" | "u" | "r"));
            if !(row_change && matches!(m[a], Value::Struct(_))) {
                return self.pass(rec);
            }
        }
        Pending::Schemaful {
            plan,
            value,
            out: self.output_of(rec),
        }
    }

    /// A record without a schema: a flat JSON row or an envelope, typed by its values.
    fn prepare_schemaless(&mut self, rec: &Received, doc: serde_json::Value) -> Pending {
        let Some(obj) = doc.as_object() else {
            return dead("the record value is not a JSON object".into());
        };
        let row_obj = if obj.contains_key("op") && obj.contains_key("after") {
            match (obj["op"].as_str(), obj["after"].as_object()) {
                (Some("c" | "u" | "r"), Some(a)) => a,
                _ => return self.pass(rec),
            }
        } else {
            obj
        };
        let (fields, row) = schemaless_row(row_obj);
        let map = self.schemaless_map(&fields);
        Pending::Schemaless {
            map,
            fields,
            obj: doc,
            row,
            out: self.output_of(rec),
        }
    }

    /// The feature map for schemaless rows with these fields (cached by the field names).
    fn schemaless_map(&mut self, fields: &[Field]) -> Arc<FeatureMap> {
        let key = fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(",");
        if let Some(m) = self.schemaless.get(&key) {
            return m.clone();
        }
        let mut m = self.predictor.feature_map(fields);
        // Without a schema the output keeps the configured type.
        m.output_schema = Schema::new(SchemaType::Float64).optional(true);
        let m = Arc::new(m);
        self.schemaless.insert(key, m.clone());
        m
    }

    /// Builds the outcomes from the predictions of [`Prepared::local_rows`] /
    /// [`Prepared::json_rows`] (one per row, in order).
    pub fn finish(
        &self,
        prepared: Prepared,
        predictions: Vec<Result<f64, PredictError>>,
    ) -> Vec<Outcome> {
        let mut predictions = predictions.into_iter();
        let mut next = || predictions.next().expect("one prediction per row");
        prepared
            .pending
            .into_iter()
            .map(|p| match p {
                Pending::Done(o) => o,
                Pending::Schemaful { plan, value, out } => {
                    self.finish_schemaful(&plan, value, next(), out)
                }
                Pending::Schemaless { map, obj, out, .. } => {
                    self.finish_schemaless(&map, obj, next(), out)
                }
            })
            .collect()
    }

    /// Adds the model's tag to the output record's headers.
    fn stamp_model(&self, out: &mut Record) {
        let tag = self.predictor.model_tag().as_bytes().to_vec();
        out.headers.push(("__augur.model".to_string(), tag));
    }

    /// A row with a schema: the prediction written into the row, re-encoded with the output
    /// schema (whose JSON is cached in the plan).
    fn finish_schemaful(
        &self,
        plan: &Plan,
        mut value: Value,
        prediction: Result<f64, PredictError>,
        mut out: Record,
    ) -> Outcome {
        let (v, refused) = match prediction {
            Ok(price) => (self.predictor.output_value(&plan.map, price), None),
            Err(e) if self.keep_unpriced => (Value::Null, Some(e.message)),
            Err(e) => return Outcome::Dead(e.message),
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
        out.value = Some(bytes);
        self.stamp_model(&mut out);
        match refused {
            None => Outcome::Output(out),
            Some(reason) => Outcome::Unpriced(out, reason),
        }
    }

    /// A row without a schema: the prediction added as a member of the row (of `after` in an
    /// envelope).
    fn finish_schemaless(
        &self,
        map: &FeatureMap,
        mut obj: serde_json::Value,
        prediction: Result<f64, PredictError>,
        mut out: Record,
    ) -> Outcome {
        let price = match prediction {
            Ok(v) => v,
            Err(e) => return Outcome::Dead(e.message),
        };
        let jv = match self.predictor.output_value(map, price) {
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
        out.value = Some(serde_json::to_vec(&obj).unwrap_or_default());
        self.stamp_model(&mut out);
        Outcome::Output(out)
    }
}

/// A record that goes to the dead-letter topic with `reason`.
fn dead(reason: String) -> Pending {
    Pending::Done(Outcome::Dead(reason))
}

/// The fields (typed by their JSON values) and the values of a schemaless row.
fn schemaless_row(
    row_obj: &serde_json::Map<String, serde_json::Value>,
) -> (Vec<Field>, Vec<Value>) {
    let fields = row_obj
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
    let row = row_obj
        .values()
        .map(|v| match v {
            serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, Value::Float64),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Bool(b) => Value::Boolean(*b),
            _ => Value::Null,
        })
        .collect();
    (fields, row)
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
    shutdown: Shutdown,
) -> Result<(), Error> {
    let mut stage = EnrichLoop::start(cfg, predictor, consumer, producer, shutdown).await?;
    tracing::info!(topics = %stage.cfg.topics.join(","), output = %stage.cfg.output_topic, "enrichment stage running");
    while let Some(batch) = stage.next_batch().await? {
        if !stage.process(batch).await? {
            break;
        }
    }
    tracing::info!("enrichment stage stopped");
    Ok(())
}

/// A batch read from the input topics, and the changes produced twice that were left out of
/// it (without their payloads; committed with it).
struct Batch {
    records: Vec<Received>,
    repeated: Vec<Received>,
}

/// The enrichment stage's loop: its Kafka clients, the model (local or remote), the stored
/// rows it fills unavailable values from, and what recognizes a change produced twice.
struct EnrichLoop {
    cfg: EnrichConfig,
    consumer: Consumer,
    producer: Arc<Producer>,
    remote: Option<RemoteModel>,
    stored: Option<StoredRows>,
    positions: Option<Positions>,
    /// Lent to the blocking pool while a batch is parsed or predicted.
    enricher: Option<Enricher>,
    shutdown: Shutdown,
}

impl EnrichLoop {
    /// Connects to Kafka (and the remote model), and checks the output topic exists.
    async fn start(
        cfg: EnrichConfig,
        predictor: Predictor,
        consumer: ConsumerSettings,
        producer: ProducerSettings,
        shutdown: Shutdown,
    ) -> Result<EnrichLoop, Error> {
        let producer = Arc::new(Producer::new(producer)?);
        producer.healthcheck(Duration::from_secs(10)).await?;
        let consumer = Consumer::new(consumer)?;
        let remote = match &cfg.remote {
            Some(r) => Some(RemoteModel::connect(r.clone()).await?),
            None => None,
        };
        if !cfg.output_topic.contains("${") {
            producer.ensure_topic(&cfg.output_topic).await?;
        }
        let stored = cfg.stored.clone().map(StoredRows::new).transpose()?;
        let enricher =
            Enricher::new(predictor, cfg.output_topic.clone()).keep_unpriced(cfg.keep_unpriced);
        Ok(EnrichLoop {
            positions: cfg.stored.as_ref().map(|_| Positions::default()),
            cfg,
            consumer,
            producer,
            remote,
            stored,
            enricher: Some(enricher),
            shutdown,
        })
    }

    /// The next batch; `None` at shutdown.
    async fn next_batch(&mut self) -> Result<Option<Batch>, Error> {
        let records = tokio::select! {
            _ = self.shutdown.wait() => return Ok(None),
            b = self.consumer.recv_batch(self.cfg.batch_size, self.cfg.linger) => b?,
        };
        let mut batch = self.leave_out_repeated(records);
        self.complete_key_changes(&mut batch.records).await?;
        Ok(Some(batch))
    }

    /// A change the capture produced twice (after a crash) is applied once: replayed in one
    /// batch with its original, it would feed the wrong values to later changes.
    fn leave_out_repeated(&mut self, records: Vec<Received>) -> Batch {
        let Some(seen) = &mut self.positions else {
            return Batch {
                records,
                repeated: Vec::new(),
            };
        };
        let (first, again): (Vec<Received>, Vec<Received>) =
            records.into_iter().partition(|r| seen.first_time(r));
        let repeated: Vec<Received> = again
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
        Batch {
            records: first,
            repeated,
        }
    }

    /// Both halves of a key change in one batch: the new key's row may need the old key's
    /// stored values, which the delete half removes once written.
    async fn complete_key_changes(&mut self, records: &mut Vec<Received>) -> Result<(), Error> {
        while self.stored.is_some() && splits_key_change(records) {
            let more = self
                .consumer
                .recv_batch(self.cfg.batch_size, self.cfg.linger);
            match tokio::time::timeout(Duration::from_secs(5), more).await {
                Ok(more) => records.extend(more?),
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Enriches, delivers and commits one batch; `false` when shutdown came first.
    async fn process(&mut self, batch: Batch) -> Result<bool, Error> {
        let mut e = self
            .enricher
            .take()
            .expect("enricher is back after each batch");
        let Batch { records, repeated } = batch;
        let (e, mut prepared, mut records) = blocking(move || {
            let p = e.prepare(&records);
            (e, p, records)
        })
        .await?;
        if let Some(s) = &mut self.stored
            && !s.fill(&mut prepared, &mut self.shutdown).await?
        {
            self.enricher = Some(e);
            return Ok(false);
        }
        let (e, outcomes) = match &self.remote {
            None => {
                blocking(move || {
                    let predictions = e.predictor().predict(&prepared.local_rows());
                    let o = e.finish(prepared, predictions);
                    (e, o)
                })
                .await?
            }
            Some(remote) => {
                let predictions = remote_predictions(remote, &prepared, e.predictor()).await?;
                let o = e.finish(prepared, predictions);
                (e, o)
            }
        };
        self.enricher = Some(e);
        self.deliver(&records, outcomes).await?;
        records.extend(repeated);
        self.consumer.commit(&records, false)?;
        Ok(true)
    }

    /// Produces each record's dead letter and output, then waits until Kafka acknowledged all.
    async fn deliver(&self, records: &[Received], outcomes: Vec<Outcome>) -> Result<(), Error> {
        let mut deliveries = Vec::with_capacity(outcomes.len());
        for (rec, outcome) in records.iter().zip(outcomes) {
            let (out, dead) = match outcome {
                Outcome::Output(r) => (Some(r), None),
                Outcome::Dead(reason) => (None, Some(reason)),
                Outcome::Unpriced(r, reason) => (Some(r), Some(reason)),
            };
            if let Some(reason) = dead {
                tracing::warn!(topic = %rec.topic, partition = rec.partition, offset = rec.offset, reason = %reason, "record sent to the dead-letter topic");
                let dlq = &self.cfg.dlq_topic;
                self.producer.ensure_topic(dlq).await?;
                let d = dead_letter(rec, dlq, "TRANSFORMATION", &self.cfg.name, &reason);
                deliveries.push(self.producer.send(&d).await?);
            }
            if let Some(out) = out {
                self.producer.ensure_topic(&out.topic).await?;
                deliveries.push(self.producer.send(&out).await?);
            }
        }
        for d in deliveries {
            Producer::delivered(d).await?;
        }
        Ok(())
    }
}

/// Runs `f` on the blocking pool (parsing and local inference stay off the async runtime).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, "enrichment task panicked").with_source(e))
}

/// The predictions for a prepared batch from a remote model server, one per row in order: a
/// row that cannot be sent keeps its reason, the others are sent in client-side batches.
async fn remote_predictions(
    remote: &RemoteModel,
    prepared: &Prepared,
    predictor: &Predictor,
) -> Result<Vec<Result<f64, PredictError>>, Error> {
    let rows = prepared.json_rows(predictor);
    let sendable: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    let mut answers = remote.predict(&sendable).await?.into_iter();
    Ok(rows
        .into_iter()
        .map(|r| match r {
            Err(e) => Err(e),
            Ok(_) => answers
                .next()
                .unwrap_or_else(|| Err("no answer".into()))
                .map_err(|m| PredictError::new(RejectCode::ModelError, m)),
        })
        .collect())
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
    pub output_type: OutputType,
    /// `feature.mapping`: `modelInput=column,…` for columns named differently.
    pub mapping: HashMap<String, String>,
    /// `predict.url` and friends: a remote model server instead of a local model.
    pub remote: Option<RemoteSettings>,
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
    /// `output.field`, `output.type`, `feature.mapping`, `predict.*`. The consumer group is
    /// `connect-<name>`, as for Kafka Connect sinks.
    pub fn from_props(props: &Props) -> Result<(EnrichConfig, ModelSettings), ConfigErrors> {
        let mut errors = Vec::new();
        let topics = props.subscription().unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        });
        let mut cfg = EnrichConfig::new(topics);
        cfg.read_names(props, &mut errors);
        let output_type = output_type(props, &mut errors);
        let mapping = feature_mapping(props, &mut errors);
        cfg.remote =
            nonempty(props, "predict.url").map(|url| remote_settings(props, url, &mut errors));
        let model = ModelSettings {
            tag: nonempty(props, "model")
                .unwrap_or(SHIPPED_MODEL)
                .to_string(),
            store: nonempty(props, "model.store").map(std::path::PathBuf::from),
            output_field: nonempty(props, "output.field")
                .unwrap_or("suggestedprice")
                .to_string(),
            output_type,
            mapping,
            remote: cfg.remote.clone(),
        };
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok((cfg, model))
    }

    /// `name` (and the consumer group it implies), the output and dead-letter topics,
    /// `batch.size`.
    fn read_names(&mut self, props: &Props, errors: &mut Vec<ConfigError>) {
        if let Some(n) = nonempty(props, "name") {
            self.name = n.to_string();
            self.group_id = format!("connect-{n}");
        }
        if let Some(t) = nonempty(props, "output.topic") {
            self.dlq_topic = format!("{t}.dlq");
            self.output_topic = t.to_string();
        }
        if let Some(t) = nonempty(props, "errors.deadletterqueue.topic.name") {
            self.dlq_topic = t.to_string();
        }
        if let Some(b) = nonempty(props, "batch.size") {
            match b.parse::<usize>() {
                Ok(n) if n > 0 => self.batch_size = n,
                _ => errors.push(invalid("batch.size", format!("Invalid value {b} for configuration batch.size: expected a positive integer"))),
            }
        }
    }
}

/// A property's value, when set and not empty.
fn nonempty<'p>(props: &'p Props, key: &str) -> Option<&'p str> {
    props.get(key).filter(|v| !v.is_empty())
}

/// A configuration error of `key`.
fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError {
        key: key.into(),
        message,
    }
}

/// `output.type` (default `double`).
fn output_type(props: &Props, errors: &mut Vec<ConfigError>) -> OutputType {
    let Some(t) = nonempty(props, "output.type") else {
        return OutputType::Double;
    };
    OutputType::parse(t).unwrap_or_else(|| {
        errors.push(invalid("output.type", format!("Invalid value {t} for configuration output.type: must be one of double, float, int32, int64")));
        OutputType::Double
    })
}

/// `feature.mapping`: `input=column` pairs, the inputs lowercased.
fn feature_mapping(props: &Props, errors: &mut Vec<ConfigError>) -> HashMap<String, String> {
    let mut mapping = HashMap::new();
    let Some(m) = nonempty(props, "feature.mapping") else {
        return mapping;
    };
    for pair in m.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) => {
                mapping.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
            None => errors.push(invalid("feature.mapping", format!("Invalid value {m} for configuration feature.mapping: expected input=column pairs"))),
        }
    }
    mapping
}

/// `predict.url` and `predict.protocol`, `predict.model`, `predict.timeout.ms`,
/// `predict.retries`, `predict.batch.size`: a remote model server.
fn remote_settings(props: &Props, url: &str, errors: &mut Vec<ConfigError>) -> RemoteSettings {
    let protocol = Protocol::parse(nonempty(props, "predict.protocol").unwrap_or("bentoml"))
        .unwrap_or_else(|| {
            errors.push(invalid(
                "predict.protocol",
                "Invalid value for configuration predict.protocol: must be bentoml or oip".into(),
            ));
            Protocol::BentoMl
        });
    let mut r = RemoteSettings::new(url, protocol);
    if !url.starts_with("http://") {
        errors.push(invalid(
            "predict.url",
            format!("Invalid value {url} for configuration predict.url: expected http://host:port"),
        ));
    }
    if let Some(m) = nonempty(props, "predict.model") {
        r.model = m.to_string();
    }
    let mut num = |k: &str| match nonempty(props, k).map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => {
            errors.push(invalid(
                k,
                format!("Invalid value for configuration {k}: expected a number"),
            ));
            None
        }
    };
    if let Some(ms) = num("predict.timeout.ms") {
        r.timeout = Duration::from_millis(ms.max(1));
    }
    if let Some(n) = num("predict.retries") {
        r.retries = n as u32;
    }
    if let Some(n) = num("predict.batch.size") {
        r.max_batch = (n as usize).max(1);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROW_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"model"},{"type":"int32","optional":true,"field":"year"},{"type":"string","optional":true,"field":"transmission"},{"type":"int32","optional":true,"field":"mileage"},{"type":"string","optional":true,"field":"fueltype"},{"type":"int32","optional":true,"field":"tax"},{"type":"double","optional":true,"field":"mpg"},{"type":"double","optional":true,"field":"enginesize"}],"optional":true,"name":"srv.public.cars.Value"}"#;
    const ROW: &str = r#"{"id":1,"model":" Focus","year":2018,"transmission":"Manual","mileage":12000,"fueltype":"Petrol","tax":150,"mpg":57.7,"enginesize":1.0}"#;

    fn received(offset: i64, value: Option<String>) -> Received {
        Received {
            topic: "srv.public.cars".into(),
            partition: 0,
            offset,
            key: Some(br#"{"id":1}"#.to_vec()),
            value: value.map(String::into_bytes),
            headers: vec![("h".into(), b"v".to_vec())],
        }
    }

    fn envelope(op: &str, before: &str, after: &str) -> String {
        format!(
            r#"{{"schema":{{"type":"struct","fields":[{{"field":"before",{b}}},{{"field":"after",{b}}},{{"type":"string","optional":false,"field":"op"}}],"optional":false,"name":"srv.public.cars.Envelope"}},"payload":{{"before":{before},"after":{after},"op":"{op}"}}}}"#,
            b = &ROW_SCHEMA[1..ROW_SCHEMA.len() - 1],
        )
    }

    /// Each outcome as JSON: what goes where, with the record's value parsed.
    fn show(outcomes: &[Outcome]) -> serde_json::Value {
        let record = |r: &Record| {
            let value = r.value.as_ref().map(|v| {
                serde_json::from_slice::<serde_json::Value>(v)
                    .unwrap_or_else(|_| String::from_utf8_lossy(v).into())
            });
            let headers: Vec<String> = r
                .headers
                .iter()
                .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
                .collect();
            serde_json::json!({"topic": r.topic, "value": value, "headers": headers})
        };
        outcomes
            .iter()
            .map(|o| match o {
                Outcome::Output(r) => serde_json::json!({"output": record(r)}),
                Outcome::Dead(reason) => serde_json::json!({"dead": reason}),
                Outcome::Unpriced(r, reason) => {
                    serde_json::json!({"unpriced": record(r), "reason": reason})
                }
            })
            .collect()
    }

    fn enricher() -> Enricher {
        let model = Arc::new(augur_model::load_shipped().expect("the shipped model"));
        Enricher::new(
            Predictor::new(model, "suggestedprice"),
            "${table}_predicted",
        )
    }

    #[test]
    fn every_kind_of_record_becomes_what_the_sink_expects() {
        let bad_year = ROW.replace("2018", "\"soon\"");
        let batch = vec![
            received(0, Some(envelope("c", "null", ROW))),
            received(1, Some(envelope("u", ROW, &ROW.replace("12000", "80000")))),
            received(2, Some(envelope("d", ROW, "null"))),
            received(3, None),
            received(
                4,
                Some(format!(r#"{{"schema":{ROW_SCHEMA},"payload":{ROW}}}"#)),
            ),
            received(5, Some(ROW.to_string())),
            received(
                6,
                Some(r#"{"op":"c","after":{"model":" Kuga","year":2019,"mileage":5000}}"#.into()),
            ),
            received(7, Some("not json".into())),
            received(8, Some("[1,2]".into())),
            received(
                9,
                Some(format!(r#"{{"schema":{ROW_SCHEMA},"payload":{bad_year}}}"#)),
            ),
        ];
        insta::assert_json_snapshot!(show(&enricher().enrich(&batch)));
    }

    /// Records with a schema, as producers write them and as they should not: the fast path
    /// that skips the schema's JSON tree gives the same outcome as the general path for each,
    /// also when it declines (arrays, repeated or extra keys, nulls, odd spacing).
    #[test]
    fn the_enveloped_fast_path_reads_every_record_as_the_general_path_does() {
        let env = |op: &str, before: &str, after: &str| envelope(op, before, after);
        let flat =
            |schema: &str, payload: &str| format!(r#"{{"schema":{schema},"payload":{payload}}}"#);
        let quoted = ROW.replace(" Fiesta", r#" Fi\"es\u0074a\\"#);
        let mut values = vec![
            env("c", "null", ROW),
            env("u", ROW, &ROW.replace("12000", "80000")),
            env("d", ROW, "null"),
            env("r", "null", &quoted),
            env("t", "null", "null"),
            flat(ROW_SCHEMA, ROW),
            flat(ROW_SCHEMA, &ROW.replace("2018", "\"soon\"")),
            flat(ROW_SCHEMA, &ROW.replace("2018", "2018.5")),
            flat(ROW_SCHEMA, "null"),
            flat("null", ROW),
            flat("null", "null"),
            flat("\"a string\"", ROW),
            flat(ROW_SCHEMA, "[1,2]"),
            flat(ROW_SCHEMA, "7"),
            flat(&ROW_SCHEMA.replace("int32", "int64"), ROW),
            format!(r#"{{"payload":{ROW},"schema":{ROW_SCHEMA}}}"#),
            format!(r#"  {{ "schema" : {ROW_SCHEMA} ,"payload":   {ROW} }} "#),
            format!(r#"{{"schema":{ROW_SCHEMA},"payload":{ROW},"payload":{ROW}}}"#),
            format!(r#"{{"schema":{ROW_SCHEMA},"payload":{ROW},"extra":1}}"#),
            format!(r#"{{"schema":{ROW_SCHEMA}}}"#),
            format!(r#"[{ROW_SCHEMA},{ROW}]"#),
            format!(r#"{{"schema":{ROW_SCHEMA},"payload":{ROW}"#),
            "{}".into(),
            "null".into(),
        ];
        // Every prefix of one record: truncated input.
        let whole = flat(ROW_SCHEMA, ROW);
        values.extend((1..whole.len()).step_by(37).map(|n| whole[..n].to_string()));
        let batch: Vec<Received> = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| received(i as i64, Some(v)))
            .collect();
        let fast = show(&enricher().keep_unpriced(true).enrich(&batch));
        let mut general = enricher().keep_unpriced(true);
        general.enveloped_fast_path = false;
        let general = show(&general.enrich(&batch));
        let (f, g) = (fast.as_array().unwrap(), general.as_array().unwrap());
        assert_eq!(f.len(), g.len());
        for (i, (f, g)) in f.iter().zip(g).enumerate() {
            assert_eq!(
                f,
                g,
                "record {i}: {}",
                batch[i]
                    .value
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v))
                    .unwrap_or_default()
            );
        }
    }

    #[test]
    fn a_refused_row_is_kept_unpriced_when_asked() {
        let no_year = ROW.replace("2018", "null");
        let batch = vec![received(0, Some(envelope("c", "null", &no_year)))];
        let outcomes = enricher().keep_unpriced(true).enrich(&batch);
        insta::assert_json_snapshot!(show(&outcomes));
    }
}
