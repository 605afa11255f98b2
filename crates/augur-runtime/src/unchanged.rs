//! Unchanged TOASTed values in a batch, for both enrichment paths: filled from the latest
//! earlier row of the same key, else named for a lookup of the row the sink stored.
//!
//! PostgreSQL leaves a TOASTed column it did not change out of an update's new row; Debezium
//! (and augur's capture) put a placeholder there. A model cannot price a placeholder, so the
//! embedded pipeline (`pipeline::transform`, over `ChangeEvent`s) and the Kafka enrichment
//! (`enrich`, over Connect records) both resolve them with [`resolve`]: each describes its
//! batch as a sequence of [`Change`]s and gets back the rows that still need the stored row.

use std::collections::{HashMap, HashSet};

use augur_core::connect::{Field, SchemaType, Value};

/// What one change of a batch does to the row of its key, as resolution sees it.
#[derive(Debug)]
pub(crate) enum Touch<'a> {
    /// A new row (create, update, snapshot read): its values may hold placeholders.
    Row {
        /// The row's values, filled in place.
        row: &'a mut Vec<Value>,
        /// The row's fields.
        fields: &'a [Field],
    },
    /// The row is deleted. `new_key`: the delete half of a primary-key change, whose create
    /// half follows under this key.
    Delete {
        /// The key the row moves to, when the delete is half of a key change.
        new_key: Option<Vec<u8>>,
    },
    /// Every row of the table is gone.
    Truncate,
    /// Nothing that matters here (a message, a record passed through).
    Nothing,
}

/// One change of a batch: its table, its key's identity (`None`: a table without a key) and
/// what it does.
#[derive(Debug)]
pub(crate) struct Change<'a> {
    /// The table (or output topic) the key belongs to.
    pub(crate) table: &'a str,
    /// The key's identity, compared bytewise.
    pub(crate) key: Option<Vec<u8>>,
    /// What the change does.
    pub(crate) touch: Touch<'a>,
}

/// A row that still holds placeholders in text columns after [`resolve`], and whose key no
/// earlier change of the batch touched: the stored row holds the values it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Missing {
    /// The change's position in the batch.
    pub(crate) change: usize,
    /// The columns holding the placeholder: index and name.
    pub(crate) columns: Vec<(usize, String)>,
}

/// Fills each value `holds` matches from the latest earlier row of the same key in the batch,
/// and returns the rows still holding one in a text column whose key no earlier change of the
/// batch touched (the stored row is the state before the batch: right only for those). Put
/// the stored values in and call this again to carry them on to later changes of the key.
pub(crate) fn resolve<'a>(
    changes: impl IntoIterator<Item = Change<'a>>,
    holds: impl Fn(&Value) -> bool,
) -> Vec<Missing> {
    let mut latest: HashMap<(&str, Vec<u8>), Vec<Value>> = HashMap::new();
    let mut touched: HashSet<(&str, Vec<u8>)> = HashSet::new();
    let mut missing = Vec::new();
    for (n, change) in changes.into_iter().enumerate() {
        let Some(key) = change.key else {
            if matches!(change.touch, Touch::Truncate) {
                latest.retain(|(t, _), _| *t != change.table);
            }
            continue;
        };
        let id = (change.table, key);
        match change.touch {
            Touch::Row { row, fields } => {
                let columns = fill_from(row, fields, latest.get(&id), &holds);
                if !columns.is_empty() && !touched.contains(&id) {
                    missing.push(Missing { change: n, columns });
                }
                latest.insert(id.clone(), row.clone());
                touched.insert(id);
            }
            Touch::Delete { new_key } => {
                // The delete half of a key change: the create half finds the row's values
                // under the new key.
                if let (Some(row), Some(new)) = (latest.remove(&id), new_key) {
                    latest.insert((id.0, new), row);
                }
                touched.insert(id);
            }
            Touch::Truncate => latest.retain(|(t, _), _| *t != id.0),
            Touch::Nothing => {}
        }
    }
    missing
}

/// Fills `row`'s placeholders from `earlier`; returns the text columns left holding one.
fn fill_from(
    row: &mut [Value],
    fields: &[Field],
    earlier: Option<&Vec<Value>>,
    holds: &impl Fn(&Value) -> bool,
) -> Vec<(usize, String)> {
    let mut left = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if !holds(&row[i]) {
            continue;
        }
        match earlier.map(|r| &r[i]) {
            Some(prev) if !holds(prev) => row[i] = prev.clone(),
            _ if f.schema.ty == SchemaType::String => left.push((i, f.name.clone())),
            _ => {}
        }
    }
    left
}

/// Puts stored text values into a row's columns (`None`: SQL NULL).
pub(crate) fn put_stored(
    row: &mut [Value],
    columns: &[(usize, String)],
    stored: Vec<Option<String>>,
) {
    for ((i, _), v) in columns.iter().zip(stored) {
        row[*i] = v.map_or(Value::Null, Value::String);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use augur_core::connect::Schema;

    const P: &str = "__debezium_unavailable_value";

    fn fields() -> Vec<Field> {
        vec![
            Field::new("id", Schema::new(SchemaType::Int32)),
            Field::new("notes", Schema::new(SchemaType::String)),
            Field::new("blob", Schema::new(SchemaType::Bytes)),
        ]
    }

    fn row(id: i32, notes: &str) -> Vec<Value> {
        vec![Value::Int32(id), Value::String(notes.into()), Value::Null]
    }

    enum Step {
        Upsert(i32, &'static str),
        Delete(i32, Option<i32>),
        Truncate,
    }

    /// Runs `steps` on table `t` (key = the id) and returns the rows afterwards and what is
    /// missing.
    fn run(steps: &[Step]) -> (Vec<Vec<Value>>, Vec<Missing>) {
        let f = fields();
        let mut rows: Vec<Vec<Value>> = steps
            .iter()
            .map(|s| match s {
                Step::Upsert(id, notes) => row(*id, notes),
                _ => Vec::new(),
            })
            .collect();
        let changes: Vec<Change<'_>> = steps
            .iter()
            .zip(rows.iter_mut())
            .map(|(s, r)| {
                let (key, touch) = match s {
                    Step::Upsert(id, _) => (Some(*id), Touch::Row { row: r, fields: &f }),
                    Step::Delete(id, new) => (
                        Some(*id),
                        Touch::Delete {
                            new_key: new.map(|n| n.to_string().into_bytes()),
                        },
                    ),
                    Step::Truncate => (None, Touch::Truncate),
                };
                Change {
                    table: "t",
                    key: key.map(|k| k.to_string().into_bytes()),
                    touch,
                }
            })
            .collect();
        let missing = resolve(changes, |v| matches!(v, Value::String(s) if s == P));
        (rows, missing)
    }

    #[test]
    fn a_placeholder_takes_the_latest_earlier_value_of_its_key() {
        let (rows, missing) = run(&[Step::Upsert(1, "a"), Step::Upsert(1, P), Step::Upsert(2, P)]);
        assert_eq!(rows[1], row(1, "a"));
        let want = vec![Missing {
            change: 2,
            columns: vec![(1, "notes".into())],
        }];
        assert_eq!(missing, want, "key 2 was not touched earlier: look it up");
    }

    #[test]
    fn a_key_touched_earlier_is_never_looked_up() {
        // Deleted, then a row with a placeholder: the stored row is stale; no lookup.
        let (rows, missing) = run(&[Step::Delete(1, None), Step::Upsert(1, P)]);
        assert_eq!(rows[1], row(1, P));
        assert!(missing.is_empty());
    }

    #[test]
    fn a_key_change_carries_the_row_to_the_new_key_and_a_truncate_forgets_it() {
        let steps = [
            Step::Upsert(1, "a"),
            Step::Delete(1, Some(2)),
            Step::Upsert(2, P),
            Step::Truncate,
            Step::Upsert(2, P),
        ];
        let (rows, missing) = run(&steps);
        assert_eq!(rows[2], row(2, "a"));
        assert_eq!(rows[4], row(2, P), "the truncate emptied the table");
        assert!(missing.is_empty(), "key 2 was touched before the truncate");
    }

    #[test]
    fn a_placeholder_in_a_non_text_column_is_left_alone() {
        let f = fields();
        let mut r = vec![
            Value::Int32(1),
            Value::String("x".into()),
            Value::String(P.into()),
        ];
        let changes = vec![Change {
            table: "t",
            key: Some(b"1".to_vec()),
            touch: Touch::Row {
                row: &mut r,
                fields: &f,
            },
        }];
        let missing = resolve(changes, |v| matches!(v, Value::String(s) if s == P));
        assert!(missing.is_empty());
    }
}
