//! Collapses one batch of writes into what must be applied, so that applying it in any order
//! of its groups gives the same table as applying every write one by one in batch order.
//!
//! Per table: a truncate discards everything before it and is applied first; then each key
//! keeps only its last write (a row or a delete), whatever the shape of the writes before it;
//! rows of a table without a key are appended in order. Surviving writes touch distinct keys,
//! so their groups (by shape, deletes apart from rows; deletes first) can be applied one after
//! another.

use std::collections::HashMap;
use std::sync::Arc;

use augur_core::connect::Value;

use super::{RowShape, RowWrite, WriteOp};

/// The writes of one shape that survive, all rows or all deletes.
#[derive(Debug)]
pub(crate) struct Group<'a> {
    pub(crate) shape: &'a Arc<RowShape>,
    pub(crate) delete: bool,
    /// (index into the batch, values: the row, or the key for a delete).
    pub(crate) items: Vec<(usize, &'a Vec<Value>)>,
}

/// What one table gets from a batch.
#[derive(Debug)]
pub(crate) struct TableWrites<'a> {
    pub(crate) table: &'a str,
    /// Empty the table before anything else; with the shape the truncate carried (a table
    /// that does not exist yet is created from it, so an empty source table has one too).
    pub(crate) truncate: Option<&'a Arc<RowShape>>,
    pub(crate) groups: Vec<Group<'a>>,
}

/// The identity of a key, independent of the shape a write carries it in.
fn key_text(values: &[&Value]) -> String {
    format!("{values:?}")
}

fn pk_positions(shape: &RowShape) -> Vec<usize> {
    shape
        .pk
        .iter()
        .filter_map(|p| shape.fields.iter().position(|f| &f.name == p))
        .collect()
}

/// One table's surviving writes in batch order (`None`: superseded later in the batch).
#[derive(Default)]
struct Pending<'a> {
    truncate: Option<&'a Arc<RowShape>>,
    entries: Vec<Option<(usize, &'a RowWrite)>>,
    last: HashMap<String, usize>,
}

impl<'a> Pending<'a> {
    fn push(&mut self, index: usize, w: &'a RowWrite, pk: &[usize]) {
        let key = match &w.op {
            WriteOp::Truncate => {
                *self = Pending {
                    truncate: Some(&w.shape),
                    ..Pending::default()
                };
                return;
            }
            // Without a key a row can only be appended, and a delete cannot be matched.
            _ if w.shape.pk.is_empty() => {
                if matches!(w.op, WriteOp::Row(_)) {
                    self.entries.push(Some((index, w)));
                }
                return;
            }
            WriteOp::Row(r) => key_text(&pk.iter().map(|&i| &r[i]).collect::<Vec<_>>()),
            WriteOp::Delete(k) => key_text(&k.iter().collect::<Vec<_>>()),
        };
        if let Some(prev) = self.last.insert(key, self.entries.len()) {
            self.entries[prev] = None;
        }
        self.entries.push(Some((index, w)));
    }

    fn into_groups(self) -> (Option<&'a Arc<RowShape>>, Vec<Group<'a>>) {
        let mut groups: Vec<Group<'a>> = Vec::new();
        for (index, w) in self.entries.into_iter().flatten() {
            let (delete, values) = match &w.op {
                WriteOp::Row(r) => (false, r),
                WriteOp::Delete(k) => (true, k),
                WriteOp::Truncate => continue,
            };
            match groups
                .iter_mut()
                .find(|g| g.delete == delete && Arc::ptr_eq(g.shape, &w.shape))
            {
                Some(g) => g.items.push((index, values)),
                None => groups.push(Group {
                    shape: &w.shape,
                    delete,
                    items: vec![(index, values)],
                }),
            }
        }
        // Deletes first: keys are distinct, so the order is free, and removing rows before
        // writing others spares a secondary unique index a conflict that in-order application
        // would also have avoided.
        groups.sort_by_key(|g| !g.delete);
        (self.truncate, groups)
    }
}

/// Collapses `writes` per table, tables in first-seen order.
pub(crate) fn collapse(writes: &[RowWrite]) -> Vec<TableWrites<'_>> {
    let mut tables: Vec<(&str, Pending<'_>)> = Vec::new();
    let mut pks: Vec<(*const RowShape, Vec<usize>)> = Vec::new();
    for (index, w) in writes.iter().enumerate() {
        let ptr = Arc::as_ptr(&w.shape);
        let pk = match pks.iter().position(|(p, _)| *p == ptr) {
            Some(i) => i,
            None => {
                pks.push((ptr, pk_positions(&w.shape)));
                pks.len() - 1
            }
        };
        let t = match tables.iter().position(|(t, _)| *t == w.table) {
            Some(t) => t,
            None => {
                tables.push((&w.table, Pending::default()));
                tables.len() - 1
            }
        };
        tables[t].1.push(index, w, &pks[pk].1);
    }
    tables
        .into_iter()
        .map(|(table, p)| {
            let (truncate, groups) = p.into_groups();
            TableWrites {
                table,
                truncate,
                groups,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use augur_core::connect::{Field, Schema, SchemaType};

    use super::*;

    /// A tiny seeded generator (xorshift64*), so a failure names its seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn shape(fields: &[&str], pk: &[&str]) -> Arc<RowShape> {
        Arc::new(RowShape {
            fields: fields
                .iter()
                .map(|f| Field::new(*f, Schema::new(SchemaType::Int32)))
                .collect(),
            pk: pk.iter().map(|p| p.to_string()).collect(),
        })
    }

    type Tables = BTreeMap<String, BTreeMap<i32, i32>>;

    /// The reference: every write applied one by one, in order.
    fn apply_in_order(start: &Tables, writes: &[RowWrite]) -> Tables {
        let mut t = start.clone();
        for w in writes {
            let tab = t.entry(w.table.clone()).or_default();
            match &w.op {
                WriteOp::Truncate => tab.clear(),
                WriteOp::Row(r) => {
                    let (Value::Int32(k), Value::Int32(v)) = (&r[0], r.last().unwrap()) else {
                        unreachable!()
                    };
                    tab.insert(*k, *v);
                }
                WriteOp::Delete(k) => {
                    let Value::Int32(k) = k[0] else {
                        unreachable!()
                    };
                    tab.remove(&k);
                }
            }
        }
        t
    }

    /// The collapsed batch applied group by group, in the order the sink uses (truncate,
    /// then groups as listed — and, to prove order does not matter, also reversed).
    fn apply_collapsed(start: &Tables, writes: &[RowWrite], reverse: bool) -> Tables {
        let mut t = start.clone();
        for tw in collapse(writes) {
            let tab = t.entry(tw.table.to_string()).or_default();
            if tw.truncate.is_some() {
                tab.clear();
            }
            let mut groups: Vec<&Group<'_>> = tw.groups.iter().collect();
            if reverse {
                groups.reverse();
            }
            for g in groups {
                for (_, v) in &g.items {
                    let Value::Int32(k) = v[0] else {
                        unreachable!()
                    };
                    if g.delete {
                        tab.remove(&k);
                    } else {
                        let Value::Int32(x) = v.last().unwrap() else {
                            unreachable!()
                        };
                        tab.insert(k, *x);
                    }
                }
            }
        }
        t
    }

    #[test]
    fn collapsed_batches_equal_writes_applied_one_by_one() {
        let narrow = shape(&["id", "v"], &["id"]);
        let wide = shape(&["id", "x", "v"], &["id"]);
        let key_only = shape(&["id"], &["id"]);
        for seed in 1..=2000u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let n = rng.below(40) as usize;
            let mut writes = Vec::new();
            for _ in 0..n {
                let table = ["a", "b"][rng.below(2) as usize].to_string();
                let id = Value::Int32(rng.below(6) as i32);
                let v = Value::Int32(rng.below(1000) as i32);
                let (shape, op) = match rng.below(10) {
                    0 => (key_only.clone(), WriteOp::Truncate),
                    1..=3 => (key_only.clone(), WriteOp::Delete(vec![id])),
                    4..=6 => (narrow.clone(), WriteOp::Row(vec![id, v])),
                    _ => (wide.clone(), WriteOp::Row(vec![id, Value::Int32(0), v])),
                };
                writes.push(RowWrite { table, shape, op });
            }
            let start: Tables = [("a", 0), ("b", 3)]
                .into_iter()
                .map(|(t, k)| (t.to_string(), (k..k + 4).map(|k| (k, -1)).collect()))
                .collect();
            let expect = apply_in_order(&start, &writes);
            for reverse in [false, true] {
                assert_eq!(
                    apply_collapsed(&start, &writes, reverse),
                    expect,
                    "seed {seed} (reverse {reverse}): {writes:#?}"
                );
            }
            // Each key appears at most once per table after collapsing.
            for tw in collapse(&writes) {
                let mut seen = std::collections::HashSet::new();
                for g in &tw.groups {
                    for (_, v) in &g.items {
                        assert!(seen.insert(format!("{:?}", v[0])), "seed {seed}");
                    }
                }
            }
        }
    }

    #[test]
    fn delete_then_reinsert_in_one_batch_keeps_the_row() {
        let row = shape(&["id", "v"], &["id"]);
        let key = shape(&["id"], &["id"]);
        let w = |shape: &Arc<RowShape>, op| RowWrite {
            table: "t".into(),
            shape: shape.clone(),
            op,
        };
        let writes = vec![
            w(&row, WriteOp::Row(vec![Value::Int32(501), Value::Int32(1)])),
            w(&key, WriteOp::Delete(vec![Value::Int32(501)])),
            w(&row, WriteOp::Row(vec![Value::Int32(501), Value::Int32(2)])),
        ];
        let c = collapse(&writes);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].groups.len(), 1);
        assert!(!c[0].groups[0].delete);
        assert_eq!(c[0].groups[0].items[0].0, 2);
    }

    #[test]
    fn keyless_rows_are_all_appended() {
        let s = shape(&["v"], &[]);
        let writes: Vec<RowWrite> = (0..3)
            .map(|i| RowWrite {
                table: "t".into(),
                shape: s.clone(),
                op: WriteOp::Row(vec![Value::Int32(i)]),
            })
            .collect();
        assert_eq!(collapse(&writes)[0].groups[0].items.len(), 3);
    }
}
