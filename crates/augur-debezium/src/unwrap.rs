//! Debezium's `ExtractNewRecordState` transform ("unwrap"): replaces the change-event envelope
//! with the flat row, handles deletes and tombstones per `delete.tombstone.handling.mode` (or the
//! pre-3.2 `drop.tombstones` / `delete.handling.mode`), and copies metadata into the row with
//! `add.fields` / into headers with `add.headers`.

use augur_core::connect::{Field, Schema, SchemaType, Value};
use augur_core::event::{ChangeEvent, Op};

/// `delete.tombstone.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteTombstoneHandling {
    /// `tombstone` (default): drop delete events, keep tombstones.
    #[default]
    Tombstone,
    /// `drop`: drop both.
    Drop,
    /// `rewrite`: keep deletes as the flat `before` row with `__deleted: "true"`; drop tombstones.
    Rewrite,
    /// `rewrite-with-tombstone`: like `rewrite`, and keep tombstones.
    RewriteWithTombstone,
    /// `delete-to-tombstone`: turn each delete into a tombstone; drop the original tombstones.
    DeleteToTombstone,
}

impl DeleteTombstoneHandling {
    /// Parses a `delete.tombstone.handling.mode` value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim() {
            "tombstone" => Self::Tombstone,
            "drop" => Self::Drop,
            "rewrite" => Self::Rewrite,
            "rewrite-with-tombstone" => Self::RewriteWithTombstone,
            "delete-to-tombstone" => Self::DeleteToTombstone,
            _ => return None,
        })
    }

    /// The mode the legacy options describe (`delete.handling.mode` = `drop` | `none` |
    /// `rewrite`, `drop.tombstones` = true | false).
    pub fn from_legacy(delete_handling: &str, drop_tombstones: bool) -> Option<Self> {
        Some(match (delete_handling.trim(), drop_tombstones) {
            ("drop", true) => Self::Drop,
            ("drop", false) => Self::Tombstone,
            ("none", true) => Self::DeleteToTombstone,
            ("none", false) => Self::Tombstone,
            ("rewrite", true) => Self::Rewrite,
            ("rewrite", false) => Self::RewriteWithTombstone,
            _ => return None,
        })
    }

    fn rewrites(self) -> bool {
        matches!(self, Self::Rewrite | Self::RewriteWithTombstone)
    }
}

/// One metadata field to copy (`op`, `table`, `source.ts_ms`, …), with its output name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedField {
    /// The path in the envelope: `op`, `ts_ms`, or `source.<name>`.
    pub path: String,
    /// The name it gets in the row (prefix included).
    pub name: String,
}

/// Parses an `add.fields` (or `add.headers`) list: `op,table,source.ts_ms,lsn:my_lsn`. A bare
/// name that is not an envelope field (`op`, `ts_ms`, `ts_us`, `ts_ns`) is looked up in
/// `source`; `source.ts_ms` becomes `<prefix>source_ts_ms`.
pub fn parse_added(list: &str, prefix: &str) -> Result<Vec<AddedField>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (path, rename) = match item.split_once(':') {
            Some((p, r)) => (p.trim(), Some(r.trim())),
            None => (item, None),
        };
        let known_source = [
            "version",
            "connector",
            "name",
            "ts_ms",
            "snapshot",
            "db",
            "sequence",
            "ts_us",
            "ts_ns",
            "schema",
            "table",
            "txId",
            "lsn",
            "xmin",
            "origin",
            "origin_lsn",
        ];
        let (full, default_name) = if let Some(s) = path.strip_prefix("source.") {
            if !known_source.contains(&s) {
                return Err(item.to_string());
            }
            (path.to_string(), format!("source_{s}"))
        } else if matches!(path, "op" | "ts_ms" | "ts_us" | "ts_ns") {
            (path.to_string(), path.to_string())
        } else if matches!(path, "id" | "total_order" | "data_collection_order") {
            (format!("transaction.{path}"), path.to_string())
        } else if known_source.contains(&path) {
            (format!("source.{path}"), path.to_string())
        } else {
            return Err(item.to_string());
        };
        let name = match rename {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => format!("{prefix}{default_name}"),
        };
        out.push(AddedField { path: full, name });
    }
    Ok(out)
}

/// The transform's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnwrapConfig {
    /// How deletes and tombstones are handled.
    pub delete_handling: DeleteTombstoneHandling,
    /// `add.fields`.
    pub add_fields: Vec<AddedField>,
    /// `add.headers`.
    pub add_headers: Vec<AddedField>,
    /// Pass truncate events on as they are (the envelope with `op` `t`) instead of dropping
    /// them: not a Debezium option — `augur run` over Kafka uses it so that truncates (and the
    /// truncate that starts each table's snapshot) reach its sink (`truncate.enabled`).
    pub keep_truncates: bool,
}

/// What the transform makes of one change event.
#[derive(Debug, Clone, PartialEq)]
pub enum Unwrapped {
    /// Drop the event.
    Drop,
    /// A null Kafka value (a real tombstone), as `delete-to-tombstone` makes of a delete.
    Tombstone,
    /// A null payload that keeps its (optional) value schema: what the default `tombstone`
    /// mode makes of a delete in Debezium 3.6 (`{"schema":…,"payload":null}` on the wire).
    NullPayload(Schema),
    /// A flat row: its schema and value.
    Row(Schema, Value),
}

/// The Connect schema of an added metadata field (all optional).
fn added_schema(path: &str) -> Schema {
    let t = match path {
        "op" | "transaction.id" | "source.version" | "source.connector" | "source.name"
        | "source.snapshot" | "source.db" | "source.sequence" | "source.schema"
        | "source.table" | "source.origin" => SchemaType::String,
        _ => SchemaType::Int64,
    };
    Schema::new(t).optional(true)
}

impl UnwrapConfig {
    /// Whether Debezium's own tombstone after a delete is passed through (only in
    /// `rewrite-with-tombstone`; the other modes drop or replace it).
    pub fn keeps_tombstones(&self) -> bool {
        matches!(
            self.delete_handling,
            DeleteTombstoneHandling::RewriteWithTombstone
        )
    }

    /// The flat value schema for rows of `row_schema` (`<prefix>.<schema>.<table>.Value`,
    /// required): the columns, then `__deleted` in rewrite modes, then the added fields.
    pub fn value_schema(&self, row_schema: &Schema) -> Schema {
        let mut s = row_schema.clone().optional(false);
        if self.delete_handling.rewrites() {
            s.fields.push(Field::new(
                "__deleted",
                Schema::new(SchemaType::String).optional(true),
            ));
        }
        for f in &self.add_fields {
            s.fields
                .push(Field::new(f.name.clone(), added_schema(&f.path)));
        }
        s
    }

    /// Applies the transform to `ev`; `meta` looks up `op`, `ts_ms` or `source.*` values.
    pub fn apply(
        &self,
        ev: &ChangeEvent,
        row_schema: &Schema,
        meta: &dyn Fn(&str) -> Value,
    ) -> Unwrapped {
        let (row, deleted) = match ev.op {
            Op::Delete => match self.delete_handling {
                // The row's own schema: Debezium adds neither `add.fields` nor `__deleted`
                // to the schema of a delete it writes as a null payload.
                DeleteTombstoneHandling::Tombstone => {
                    return Unwrapped::NullPayload(row_schema.clone().optional(true));
                }
                DeleteTombstoneHandling::Drop => return Unwrapped::Drop,
                DeleteTombstoneHandling::DeleteToTombstone => return Unwrapped::Tombstone,
                DeleteTombstoneHandling::Rewrite
                | DeleteTombstoneHandling::RewriteWithTombstone => (ev.before.as_ref(), true),
            },
            Op::Truncate => return Unwrapped::Drop,
            _ => (ev.after.as_ref(), false),
        };
        let Some(row) = row else {
            return Unwrapped::Drop;
        };
        let mut values = row.clone();
        if self.delete_handling.rewrites() {
            values.push(Value::String(if deleted { "true" } else { "false" }.into()));
        }
        for f in &self.add_fields {
            values.push(meta(&f.path));
        }
        Unwrapped::Row(self.value_schema(row_schema), Value::Struct(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_options_map_to_modes() {
        assert_eq!(
            DeleteTombstoneHandling::from_legacy("drop", true),
            Some(DeleteTombstoneHandling::Drop)
        );
        assert_eq!(
            DeleteTombstoneHandling::from_legacy("rewrite", false),
            Some(DeleteTombstoneHandling::RewriteWithTombstone)
        );
        assert_eq!(DeleteTombstoneHandling::from_legacy("bogus", false), None);
    }

    #[test]
    fn added_fields_are_named_like_debezium() {
        let f = parse_added("op,table,source.ts_ms,lsn:pos", "__").unwrap();
        let names: Vec<_> = f.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["__op", "__table", "__source_ts_ms", "pos"]);
        assert_eq!(f[1].path, "source.table");
        assert!(parse_added("nonsense", "__").is_err());
    }
}
