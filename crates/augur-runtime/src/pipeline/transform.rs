//! The embedded pipeline's middle stage: change events → sink writes. Rows to predict are
//! scored in one batch per change batch, on a blocking thread; failures become dead letters.

use std::collections::HashMap;
use std::sync::Arc;

use augur_core::connect::{Field, Value};
use augur_core::event::{ChangeEvent, KeyChange, Op, TableSchema};
use augur_postgres::sink::{DeadLetter, Rejected, RowShape, RowWrite, WriteOp, is_placeholder};

use super::config::OutputMode;
use crate::predict::{FeatureMap, Predictor, RejectCode};
use crate::unchanged::{self, Change, Missing, Touch};

/// How the rows of one source table shape become sink writes.
#[derive(Debug)]
struct Plan {
    map: FeatureMap,
    target: String,
    /// Table mode: all columns + output; column mode: key columns + output.
    shape: Arc<RowShape>,
    /// Key columns' indexes in the source row.
    key: Vec<usize>,
    /// The shape of a delete (table mode).
    delete_shape: Arc<RowShape>,
}

/// The transform's output for one change batch.
#[derive(Debug, Default)]
pub struct Transformed {
    /// Writes for the sink, in event order.
    pub writes: Vec<RowWrite>,
    /// Per write: the source table and the change's LSN, for a dead letter if the target
    /// refuses the row.
    pub origins: Vec<(Arc<TableSchema>, i64)>,
    /// Rows that got no prediction.
    pub dead: Vec<DeadLetter>,
    /// How many rows were predicted.
    pub predicted: u64,
    /// Per written prediction: the write's index, target table, key JSON, price (for live
    /// listeners; empty unless the transform was told someone listens).
    pub written: Vec<(usize, String, String, Option<f64>)>,
}

impl Transformed {
    fn push(&mut self, origin: (&Arc<TableSchema>, i64), plan: &Plan, op: WriteOp) {
        let shape = match op {
            WriteOp::Row(_) | WriteOp::Truncate => plan.shape.clone(),
            WriteOp::Delete(_) => plan.delete_shape.clone(),
        };
        self.writes.push(RowWrite {
            table: plan.target.clone(),
            shape,
            op,
        });
        self.origins.push((origin.0.clone(), origin.1));
    }

    /// The dead letter for a write the target refused.
    pub fn dead_letter(&self, rejected: &Rejected, model: &str) -> Option<DeadLetter> {
        let w = self.writes.get(rejected.index)?;
        let (table, lsn) = self.origins.get(rejected.index)?;
        let (source_table, lsn) = (table.qualified_name(), *lsn);
        let (fields, values): (&[Field], &[Value]) = match &w.op {
            WriteOp::Row(r) => (&w.shape.fields, r),
            WriteOp::Delete(k) => (&w.shape.fields, k),
            WriteOp::Truncate => return None,
        };
        let key: Vec<usize> = w
            .shape
            .pk
            .iter()
            .filter_map(|p| fields.iter().position(|f| &f.name == p))
            .collect();
        Some(DeadLetter {
            source_table,
            key: key_json(fields, &key, values),
            lsn,
            code: RejectCode::SinkRefused.label().to_string(),
            reason: rejected.reason.clone(),
            row: row_json(fields, values),
            model: model.to_string(),
        })
    }
}

/// A row carrying Debezium's "unavailable" placeholder (an unchanged TOASTed value) that no
/// earlier change in its batch can fill: its stored values are read from the output table.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The event's index in the batch.
    pub event: usize,
    /// The table holding the stored row (the output table; in column mode the source table).
    pub table: String,
    /// The key columns.
    pub key_fields: Vec<Field>,
    /// Keys to read the stored row under, first found wins: the row's own key, then (for the
    /// create half of a key change) the key it moved from. A replayed key change finds the row
    /// already under its new key; a first one finds it under the old.
    pub keys: Vec<Vec<Value>>,
    /// The placeholder columns: index in the row, and name.
    pub columns: Vec<(usize, String)>,
}

/// Turns change events into writes for one output mode.
#[derive(Debug)]
pub struct Transform {
    predictor: Predictor,
    output: OutputMode,
    /// Whether [`Transformed::written`] is wanted (someone listens to committed predictions).
    live: bool,
    plans: HashMap<usize, (Arc<TableSchema>, Arc<Plan>)>,
}

fn key_json(fields: &[Field], key: &[usize], row: &[Value]) -> String {
    let mut s = String::from("{");
    for (n, &i) in key.iter().enumerate() {
        if n > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(&fields[i].name).unwrap_or_default());
        s.push(':');
        s.push_str(&value_json(&row[i]));
    }
    s.push('}');
    s
}

fn value_json(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Boolean(b) => b.to_string(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => match other.as_f64() {
            Some(n) if n.fract() == 0.0 && n.abs() < 9e15 => format!("{}", n as i64),
            Some(n) => n.to_string(),
            None => serde_json::to_string(&format!("{other:?}")).unwrap_or_default(),
        },
    }
}

fn row_json(fields: &[Field], row: &[Value]) -> String {
    let mut s = String::from("{");
    for (i, (f, v)) in fields.iter().zip(row).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(&f.name).unwrap_or_default());
        s.push(':');
        s.push_str(&value_json(v));
    }
    s.push('}');
    s
}

impl Transform {
    /// A transform with `predictor` writing per `output`.
    pub fn new(predictor: Predictor, output: OutputMode) -> Self {
        Transform {
            predictor,
            output,
            live: false,
            plans: HashMap::new(),
        }
    }

    /// Also lists every written prediction in [`Transformed::written`] (for live listeners).
    pub fn with_live_listeners(mut self, live: bool) -> Self {
        self.live = live;
        self
    }

    /// The predictor.
    pub fn predictor(&self) -> &Predictor {
        &self.predictor
    }

    fn plan(&mut self, table: &Arc<TableSchema>) -> Arc<Plan> {
        let id = Arc::as_ptr(table) as usize;
        if let Some((_, p)) = self.plans.get(&id) {
            return p.clone();
        }
        let map = self.predictor.feature_map(&table.fields);
        let pk: Vec<String> = table
            .key
            .iter()
            .map(|&i| table.fields[i].name.clone())
            .collect();
        let key_fields: Vec<Field> = table.key.iter().map(|&i| table.fields[i].clone()).collect();
        let (target, shape) = match &self.output {
            OutputMode::Table(format) => {
                let target = format
                    .replace("${table}", &table.table)
                    .replace("${schema}", &table.schema);
                let fields = self.predictor.output_fields(&table.fields, &map);
                (
                    target,
                    Arc::new(RowShape {
                        fields,
                        pk: pk.clone(),
                    }),
                )
            }
            OutputMode::Column => {
                let mut fields = key_fields.clone();
                fields.push(Field::new(
                    self.predictor.output.clone(),
                    map.output_schema.clone(),
                ));
                (
                    table.table.clone(),
                    Arc::new(RowShape {
                        fields,
                        pk: pk.clone(),
                    }),
                )
            }
        };
        let delete_shape = Arc::new(RowShape {
            fields: key_fields,
            pk,
        });
        let plan = Arc::new(Plan {
            map,
            target,
            shape,
            key: table.key.clone(),
            delete_shape,
        });
        if self.plans.len() > 4096 {
            self.plans.clear();
        }
        self.plans.insert(id, (table.clone(), plan.clone()));
        plan
    }

    /// Fills the "unavailable" placeholders of text columns from the latest earlier row of the
    /// same key in this batch, and returns the rows still holding one whose key no earlier
    /// change in the batch touched: their values are read from the stored row and put in with
    /// [`Transform::fill`]; then call this again to carry them on to later changes of the key.
    pub fn resolve_in_batch(&mut self, events: &mut [ChangeEvent]) -> Vec<Lookup> {
        let Some(p) = self.predictor.placeholders.first().cloned() else {
            return Vec::new();
        };
        let holds = |v: &Value| is_placeholder(v, &p);
        // The common case costs one scan: no placeholder, nothing to do.
        if !events.iter().any(|e| e.after.iter().flatten().any(holds)) {
            return Vec::new();
        }
        let names: Vec<String> = events.iter().map(|e| e.table.qualified_name()).collect();
        let changes = events.iter_mut().zip(&names).map(|(ev, table)| {
            let id = |k: &Vec<Value>| format!("{k:?}").into_bytes();
            let key = ev.key_values().as_ref().map(id);
            let touch = match (ev.op, ev.after.as_mut()) {
                (Op::Create | Op::Update | Op::Read, Some(row)) => Touch::Row {
                    row,
                    fields: &ev.table.fields,
                },
                (Op::Delete, _) => Touch::Delete {
                    new_key: match &ev.key_change {
                        Some(KeyChange::NewKey(new)) => Some(id(new)),
                        _ => None,
                    },
                },
                (Op::Truncate, _) => Touch::Truncate,
                _ => Touch::Nothing,
            };
            Change { table, key, touch }
        });
        let missing = unchanged::resolve(changes, holds);
        missing
            .into_iter()
            .map(|m| self.lookup(&events[m.change], m))
            .collect()
    }

    /// The stored-row lookup for a change still missing values.
    fn lookup(&mut self, ev: &ChangeEvent, m: Missing) -> Lookup {
        let plan = self.plan(&ev.table);
        let mut keys = vec![ev.key_values().unwrap_or_default()];
        if let Some(KeyChange::OldKey(old)) = &ev.key_change {
            keys.push(old.clone());
        }
        Lookup {
            event: m.change,
            table: plan.target.clone(),
            key_fields: ev.table.key_fields().cloned().collect(),
            keys,
            columns: m.columns,
        }
    }

    /// Puts the stored text of each lookup's columns into its event (rows not found keep
    /// the placeholder and get no price).
    pub fn fill(
        events: &mut [ChangeEvent],
        lookups: &[Lookup],
        stored: Vec<Option<Vec<Option<String>>>>,
    ) {
        for (l, found) in lookups.iter().zip(stored) {
            let (Some(vals), Some(after)) = (found, events[l.event].after.as_mut()) else {
                continue;
            };
            unchanged::put_stored(after, &l.columns, vals);
        }
    }

    /// Transforms one batch of events (synchronous: run it on a blocking thread).
    pub fn apply(&mut self, events: Vec<ChangeEvent>) -> Transformed {
        let mut out = Transformed::default();
        let plans: Vec<Arc<Plan>> = events.iter().map(|e| self.plan(&e.table)).collect();
        let to_predict: Vec<(&FeatureMap, &[Value])> = events
            .iter()
            .zip(&plans)
            .filter_map(|(e, p)| match (e.op, &e.after) {
                (Op::Create | Op::Update | Op::Read, Some(after)) => {
                    Some((&p.map, after.as_slice()))
                }
                _ => None,
            })
            .collect();
        let mut predictions = self.predictor.predict(&to_predict).into_iter();
        drop(to_predict);
        // The rows move into the writes: nothing of a change is copied but its key.
        for (ev, plan) in events.into_iter().zip(&plans) {
            let lsn = ev.source.lsn.map_or(0, |l| l.as_u64() as i64);
            let origin = (&ev.table, lsn);
            match (ev.op, ev.after) {
                (Op::Create | Op::Update | Op::Read, Some(after)) => {
                    let prediction = predictions.next().expect("one result per row");
                    self.priced(&mut out, origin, plan, after, prediction);
                }
                (Op::Delete, _) => {
                    if matches!(self.output, OutputMode::Table(_))
                        && !plan.key.is_empty()
                        && let Some(before) = &ev.before
                    {
                        let k: Vec<Value> = plan.key.iter().map(|&i| before[i].clone()).collect();
                        out.push(origin, plan, WriteOp::Delete(k));
                    }
                }
                // The predictions of a truncated table go with it.
                (Op::Truncate, _) if matches!(self.output, OutputMode::Table(_)) => {
                    out.push(origin, plan, WriteOp::Truncate);
                }
                _ => {}
            }
        }
        out
    }

    /// The write (or dead letter) for one row and its prediction.
    fn priced(
        &self,
        out: &mut Transformed,
        origin: (&Arc<TableSchema>, i64),
        plan: &Plan,
        after: Vec<Value>,
        prediction: Result<f64, crate::predict::PredictError>,
    ) {
        let fields = &origin.0.fields;
        let (value, price) = match prediction {
            Ok(p) => {
                out.predicted += 1;
                (self.predictor.output_value(&plan.map, p), Some(p))
            }
            Err(e) => {
                out.dead.push(DeadLetter {
                    source_table: origin.0.qualified_name(),
                    key: key_json(fields, &plan.key, &after),
                    lsn: origin.1,
                    code: e.code.label().to_string(),
                    reason: e.message,
                    row: row_json(fields, &after),
                    model: self.predictor.model_tag().to_string(),
                });
                (Value::Null, None)
            }
        };
        let key = self.live.then(|| key_json(fields, &plan.key, &after));
        let values = match &self.output {
            OutputMode::Table(_) => {
                let mut v = after;
                match plan.map.output_index {
                    Some(i) => v[i] = value,
                    None => v.push(value),
                }
                v
            }
            OutputMode::Column => {
                if price.is_none() {
                    // No prediction: leave the source row alone.
                    return;
                }
                let mut v: Vec<Value> = plan.key.iter().map(|&i| after[i].clone()).collect();
                v.push(value);
                v
            }
        };
        if let Some(key) = key {
            out.written
                .push((out.writes.len(), plan.target.clone(), key, price));
        }
        out.push(origin, plan, WriteOp::Row(values));
    }
}
