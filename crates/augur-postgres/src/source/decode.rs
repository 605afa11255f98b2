//! Turns decoded pgoutput tuples (and snapshot rows) into [`ChangeEvent`]s: values converted
//! to their Connect form, `before`/`after` shaped by REPLICA IDENTITY as Debezium shapes them,
//! primary-key changes split into delete + create.

use std::sync::Arc;

use augur_core::connect::Value;
use augur_core::event::{ChangeEvent, KeyChange, Op, SourceInfo, TableSchema};
use augur_core::{Error, ErrorKind};

use super::catalog::CapturedTable;
use super::pgoutput::{Datum, OldKind, Tuple};
use super::types::{self, TypeOptions};

/// Converts a tuple to a row aligned with the table's fields. Columns pgoutput sent no value
/// for (nulls in a key-only old tuple) that are required get their fallback, as Debezium does.
pub fn row(
    table: &CapturedTable,
    tuple: &Tuple<'_>,
    opts: &TypeOptions,
) -> Result<Vec<Value>, Error> {
    if tuple.0.len() != table.columns.len() {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "tuple for {} has {} columns but its relation has {}",
                table.schema.qualified_name(),
                tuple.0.len(),
                table.columns.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(table.schema.fields.len());
    for (col, datum) in table.columns.iter().zip(&tuple.0) {
        let Some(field_idx) = col.field else { continue };
        let v = match datum {
            Datum::Null => {
                if table.schema.fields[field_idx].schema.optional {
                    Value::Null
                } else {
                    col.fallback.clone()
                }
            }
            Datum::UnchangedToast => types::unavailable_value(&col.ty, opts),
            Datum::Text(bytes) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| value_error(&table.schema, field_idx, "is not UTF-8"))?;
                match types::convert(&col.ty, col.typmod, text, opts) {
                    // A value Debezium writes as null (a numeric array holding NaN) in a
                    // column that cannot be null: the column's fallback, as for a null.
                    Ok(Value::Null) if !table.schema.fields[field_idx].schema.optional => {
                        col.fallback.clone()
                    }
                    Ok(v) => v,
                    Err(e) => return Err(value_error(&table.schema, field_idx, &e.to_string())),
                }
            }
            Datum::Binary(_) => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "binary pgoutput values are not requested and cannot be decoded",
                ));
            }
        };
        // `column.mask.*` / `column.truncate.*`, after conversion, as Debezium's mappers run.
        out.push(match &col.mapper {
            Some((m, length)) => m.apply(v, *length),
            None => v,
        });
    }
    Ok(out)
}

fn value_error(table: &TableSchema, field: usize, problem: &str) -> Error {
    Error::new(
        ErrorKind::Data,
        format!(
            "column {}.{}: value {problem}",
            table.qualified_name(),
            table.fields[field].name
        ),
    )
}

fn key_of(table: &TableSchema, row: &[Value]) -> Vec<Value> {
    table.key.iter().map(|&i| row[i].clone()).collect()
}

/// Events for an Insert.
pub fn insert(
    table: &CapturedTable,
    new: &Tuple<'_>,
    source: SourceInfo,
    opts: &TypeOptions,
) -> Result<ChangeEvent, Error> {
    Ok(ChangeEvent {
        table: table.schema.clone(),
        op: Op::Create,
        before: None,
        after: Some(row(table, new, opts)?),
        source,
        key_change: None,
    })
}

/// Events for an Update: one update event, or delete + create when the key changed.
pub fn update(
    table: &CapturedTable,
    old: Option<&(OldKind, Tuple<'_>)>,
    new: &Tuple<'_>,
    source: SourceInfo,
    opts: &TypeOptions,
    out: &mut Vec<ChangeEvent>,
) -> Result<(), Error> {
    let after = row(table, new, opts)?;
    let before = match old {
        Some((_, t)) => Some(row(table, t, opts)?),
        None => None,
    };
    let schema = &table.schema;
    if let Some(b) = &before
        && !schema.key.is_empty()
    {
        let (old_key, new_key) = (key_of(schema, b), key_of(schema, &after));
        if old_key != new_key {
            out.push(ChangeEvent {
                table: schema.clone(),
                op: Op::Delete,
                before: Some(b.clone()),
                after: None,
                source,
                key_change: Some(KeyChange::NewKey(new_key)),
            });
            out.push(ChangeEvent {
                table: schema.clone(),
                op: Op::Create,
                before: None,
                after: Some(after),
                source,
                key_change: Some(KeyChange::OldKey(old_key)),
            });
            return Ok(());
        }
    }
    // Under REPLICA IDENTITY DEFAULT/INDEX an unchanged key sends no old tuple, so `before`
    // is null; under FULL it carries the old row.
    let before = match old {
        Some((OldKind::Full, _)) => before,
        _ => None,
    };
    out.push(ChangeEvent {
        table: schema.clone(),
        op: Op::Update,
        before,
        after: Some(after),
        source,
        key_change: None,
    });
    Ok(())
}

/// Events for a Delete.
pub fn delete(
    table: &CapturedTable,
    old: &(OldKind, Tuple<'_>),
    source: SourceInfo,
    opts: &TypeOptions,
) -> Result<ChangeEvent, Error> {
    Ok(ChangeEvent {
        table: table.schema.clone(),
        op: Op::Delete,
        before: Some(row(table, &old.1, opts)?),
        after: None,
        source,
        key_change: None,
    })
}

/// A truncate event for `table`.
pub fn truncate(table: &Arc<TableSchema>, source: SourceInfo) -> ChangeEvent {
    ChangeEvent {
        table: table.clone(),
        op: Op::Truncate,
        before: None,
        after: None,
        source,
        key_change: None,
    }
}
