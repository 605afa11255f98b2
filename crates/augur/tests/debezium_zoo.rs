//! The differential suite against real Debezium: for every case in `fixtures/debezium-zoo`
//! (made by `scripts/debezium-fixtures.py` with Debezium 3.6.3 embedded), the same SQL runs
//! against a fresh `zoo` database while `augur capture` runs with the same connector
//! properties, and every record must equal Debezium's field by field, in field order, and with
//! the same number text (Java's `Double.toString`), once run-specific fields are redacted.

use std::time::{Duration, Instant};

use augur_testkit::TestPg;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::support::{self, Capture};

const T: Duration = Duration::from_secs(60);

/// Fields whose values differ from run to run.
const RUN_SPECIFIC: &[&str] = &[
    "ts_ms", "ts_us", "ts_ns", "txId", "lsn", "sequence", "xmin", "__lsn", "version",
];

/// A record's raw key and value texts.
type RawRecord = (Box<RawValue>, Box<RawValue>);

fn fixture(case: &str) -> (Value, Vec<RawRecord>) {
    let path = augur_testkit::workspace_root()
        .join("crates/augur/tests/fixtures/debezium-zoo")
        .join(format!("{case}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed: Value = serde_json::from_str(&text).unwrap();
    let raw: std::collections::HashMap<String, Box<RawValue>> =
        serde_json::from_str(&text).unwrap();
    // An error fixture (a case Debezium refused) has no records.
    let records: Vec<Box<RawValue>> = raw
        .get("records")
        .map(|r| serde_json::from_str(r.get()).unwrap())
        .unwrap_or_default();
    (
        parsed,
        records.iter().map(|r| key_value_raw(r.get())).collect(),
    )
}

/// The raw `key` and `value` texts of a record (`{"topic","key","value",…}`).
fn key_value_raw(record: &str) -> RawRecord {
    let mut m: std::collections::HashMap<String, Box<RawValue>> =
        serde_json::from_str(record).unwrap();
    (m.remove("key").unwrap(), m.remove("value").unwrap())
}

/// The texts of the number tokens of a JSON document, in order.
fn number_tokens(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '-' | '0'..='9' => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, d)) = chars.peek() {
                    if !matches!(d, '0'..='9' | '.' | 'e' | 'E' | '+' | '-') {
                        break;
                    }
                    end = j + d.len_utf8();
                    chars.next();
                }
                out.push(raw[i..end].to_string());
            }
            _ => {}
        }
    }
    out
}

/// The paths of a document's numbers, in document order (object order is kept).
fn number_paths(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Number(_) => out.push(path.to_string()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| number_paths(x, &format!("{path}[{i}]"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| number_paths(x, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

/// `(path, text)` of every number not under a run-specific field.
fn numbers(raw: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(raw).unwrap();
    let mut paths = Vec::new();
    number_paths(&v, "", &mut paths);
    let tokens = number_tokens(raw);
    assert_eq!(paths.len(), tokens.len(), "number scan of {raw}");
    paths
        .into_iter()
        .zip(tokens)
        .filter(|(p, _)| {
            p.starts_with(".schema") || !RUN_SPECIFIC.iter().any(|f| p.split('.').any(|s| s == *f))
        })
        .collect()
}

/// The key or value with run-specific payload values replaced (schemas are left whole).
fn redact(v: &Value) -> Value {
    let mut v = v.clone();
    let with_schema = v.get("schema").is_some() && v.get("payload").is_some();
    match v.get_mut("payload") {
        Some(p) if with_schema => redact_in(p),
        _ => redact_in(&mut v),
    }
    v
}

fn redact_in(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if RUN_SPECIFIC.contains(&k.as_str()) && !x.is_null() && !x.is_object() {
                    *x = Value::from("<run-specific>");
                } else {
                    redact_in(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_in),
        // Debezium prints a Java array's identity (`[Ljava.lang.String;@1b2c3d`, different on
        // every run) for each element of a text[][]; augur writes null, as for int[][].
        Value::String(s) if s.starts_with("[Ljava.lang.") => *v = Value::Null,
        // An incremental snapshot's window signals: random ids, wall-clock times.
        Value::String(s) if s.ends_with("-open") || s.ends_with("-close") => {
            *v = Value::from("<window id>");
        }
        Value::String(s) if s.starts_with("{\"openWindowTimestamp\"") => {
            *v = Value::from("<window times>");
        }
        _ => {}
    }
}

/// Where augur differs from Debezium on purpose: (case prefix, row field, Debezium's value
/// there — `None`: any — and why).
const DELIBERATE: &[(&str, &str, Option<i64>, &str)] = &[
    (
        "odd-",
        "c_name",
        None,
        "Debezium 3.6.3 streams `name` columns as null (its snapshot has the value); augur keeps the value",
    ),
    (
        "time-extremes",
        "c_date",
        Some(1_001_860),
        "Debezium's snapshot reads date '4713-01-01 BC' through the JDBC driver, which drops the era (4713-01-01 AD, day 1001860); its stream and augur give the real day, -2440550",
    ),
];

/// The rows (`before`, `after`) of a value, with or without the converter's schema.
fn rows_of(v: &mut Value) -> Vec<&mut serde_json::Map<String, Value>> {
    let payload = if v.get("schema").is_some() {
        &mut v["payload"]
    } else {
        v
    };
    let Some(p) = payload.as_object_mut() else {
        return Vec::new();
    };
    p.iter_mut()
        .filter(|(k, _)| *k == "before" || *k == "after")
        .filter_map(|(_, r)| r.as_object_mut())
        .collect()
}

/// Blanks the deliberate differences of `case` in Debezium's (`want`) and augur's rows.
fn blank_deliberate(case: &str, want: &mut Value, got: &mut Value) {
    for (_, field, value, _) in DELIBERATE.iter().filter(|(p, ..)| case.starts_with(p)) {
        for (w, g) in rows_of(want).into_iter().zip(rows_of(got)) {
            let applies = match (w.get(*field), value) {
                (Some(_), None) => true,
                (Some(x), Some(v)) => x.as_i64() == Some(*v),
                (None, _) => false,
            };
            if applies {
                w.insert(field.to_string(), Value::from("<deliberate>"));
                g.insert(field.to_string(), Value::from("<deliberate>"));
            }
        }
    }
}

/// Runs case `case` through `augur capture`; the differences from Debezium, if any.
fn differences(case: &str) -> Vec<String> {
    let (fx, want) = fixture(case);
    let pg = TestPg::start();
    let db = pg.named_database("zoo");
    for sql in fx["setup_sql"].as_array().unwrap() {
        pg.sql(&db, sql.as_str().unwrap());
    }
    let snapshot_rows = fx["setup_sql"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.as_str().unwrap().starts_with("INSERT"))
        .count();
    let mut props = support::connector_props(&db, "zoo");
    let offsets = support::scratch_dir(&format!("zoo-{case}")).join("o.json");
    for (k, v) in fx["config"].as_object().unwrap() {
        props.retain(|(key, _)| key != k);
        props.push((k.clone(), v.as_str().unwrap().to_string()));
    }
    props.push((
        "offset.storage.file.filename".into(),
        offsets.display().to_string(),
    ));
    let mut cap = Capture::start(&props, &["--stdout"]);
    cap.wait_lines(snapshot_rows, T);
    cap.wait_stderr("streaming changes", T);
    let waits = fx["stream_wait_records"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (i, sql) in fx["stream_sql"].as_array().unwrap().iter().enumerate() {
        pg.sql(&db, sql.as_str().unwrap());
        // Where Debezium's run waited for records after a statement, so does this one.
        if let Some(n) = waits.get(i).and_then(Value::as_u64) {
            cap.wait_lines(snapshot_rows + n as usize, T);
        }
    }
    cap.wait_lines(want.len(), T);
    // Anything augur sends beyond Debezium's records shows up within a moment.
    let settle = Instant::now() + Duration::from_millis(800);
    while Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got: Vec<String> = cap.lines();
    let mut diffs = Vec::new();
    if got.len() != want.len() {
        diffs.push(format!("{} records, Debezium {}", got.len(), want.len()));
    }
    for (i, (line, (wk, wv))) in got.iter().zip(&want).enumerate() {
        let (gk, gv) = key_value_raw(line);
        for (what, w, g) in [("key", wk, &gk), ("value", wv, &gv)] {
            compare(
                &mut diffs,
                case,
                &format!("record {i} {what}"),
                w.get(),
                g.get(),
            );
        }
    }
    let _ = cap.stop();
    diffs
}

/// Compares one key or value: structure and order, then number text.
fn compare(diffs: &mut Vec<String>, case: &str, what: &str, want: &str, got: &str) {
    let (mut w, mut g): (Value, Value) = (
        serde_json::from_str(want).unwrap(),
        serde_json::from_str(got).unwrap(),
    );
    blank_deliberate(case, &mut w, &mut g);
    let (w, g) = (
        serde_json::to_string(&redact(&w)).unwrap(),
        serde_json::to_string(&redact(&g)).unwrap(),
    );
    if let Some(diff) = support::first_difference(&w, &g) {
        diffs.push(format!("{what} {diff}"));
        return;
    }
    let blanked: Value = serde_json::from_str(&w).unwrap();
    for ((path, wt), (_, gt)) in numbers(want).into_iter().zip(numbers(got)) {
        if wt != gt && !deliberate_at(&blanked, &path) {
            diffs.push(format!("{what} {path}: Debezium writes {wt}, augur {gt}"));
        }
    }
}

/// Whether the redacted, blanked document has a deliberate difference at `path`
/// (`.payload.after.c_date`).
fn deliberate_at(v: &Value, path: &str) -> bool {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        cur = match cur.get(name) {
            Some(c) => c,
            None => return false,
        };
        if let Some(i) = index {
            cur = match cur.get(i) {
                Some(c) => c,
                None => return false,
            };
        }
    }
    cur == "<deliberate>"
}

fn check(case: &str) {
    let diffs = differences(case);
    assert!(
        diffs.is_empty(),
        "{case}: {} differences from Debezium 3.6.3:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

macro_rules! cases {
    ($($name:ident => $case:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check($case);
            }
        )*
    };
}

cases! {
    zoo_default => "zoo-default",
    zoo_decimal_double => "zoo-decimal-double",
    zoo_decimal_string => "zoo-decimal-string",
    zoo_time_adaptive_time_microseconds => "zoo-time-adaptive-time-microseconds",
    zoo_time_connect => "zoo-time-connect",
    zoo_interval_string => "zoo-interval-string",
    zoo_binary_base64 => "zoo-binary-base64",
    zoo_binary_base64_url_safe => "zoo-binary-base64-url-safe",
    zoo_binary_hex => "zoo-binary-hex",
    zoo_schemas_disabled => "zoo-schemas-disabled",
    zoo_propagate_source_type => "zoo-propagate-source-type",
    odd_default => "odd-default",
    odd_unknown_datatypes => "odd-unknown-datatypes",
    ext_hstore_json => "ext-hstore-json",
    ext_hstore_map => "ext-hstore-map",
    small_default => "small-default",
    small_replica_identity_full => "small-replica-identity-full",
    unwrap_default => "unwrap-default",
    unwrap_rewrite => "unwrap-rewrite",
    unwrap_rewrite_with_tombstone => "unwrap-rewrite-with-tombstone",
    unwrap_delete_to_tombstone => "unwrap-delete-to-tombstone",
    unwrap_drop => "unwrap-drop",
    unwrap_add_fields => "unwrap-add-fields",
    markers_one_row_first => "markers-one-row-first",
    markers_one_row_last => "markers-one-row-last",
    time_extremes => "time-extremes",
    time_extremes_connect => "time-extremes-connect",
    toast_unchanged => "toast-unchanged",
    toast_unchanged_hex => "toast-unchanged-hex",
    alter_mid_stream => "alter-mid-stream",
    incremental_signal => "incremental-signal",
    arrays_all => "arrays-all",
    arrays_all_string_modes => "arrays-all-string-modes",
    domains_all => "domains-all",
    domains_all_precise_vs_double => "domains-all-precise-vs-double",
}

/// `domains-enum`: Debezium 3.6.3 fails at start when a database holds a domain over an enum;
/// augur captures the table, the column an enum as its base type is.
#[test]
fn a_domain_over_an_enum_is_captured_where_debezium_fails() {
    let (fx, _) = fixture("domains-enum");
    assert!(
        fx["error"]
            .as_str()
            .is_some_and(|e| e.contains("NullPointerException"))
    );
    let pg = TestPg::start();
    let db = pg.named_database("zoo");
    for sql in fx["setup_sql"].as_array().unwrap() {
        pg.sql(&db, sql.as_str().unwrap());
    }
    let mut props = support::connector_props(&db, "zoo");
    props.push(("table.include.list".into(), "public.doms_enum".into()));
    let offsets = support::scratch_dir("zoo-domains-enum").join("o.json");
    props.push((
        "offset.storage.file.filename".into(),
        offsets.display().to_string(),
    ));
    let mut cap = Capture::start(&props, &["--stdout"]);
    cap.wait_stderr("streaming changes", T);
    pg.sql(&db, fx["stream_sql"][0].as_str().unwrap());
    let lines = cap.wait_lines(2, T);
    let after = |i: usize| lines[i]["value"]["payload"]["after"]["c_mood"].clone();
    assert_eq!(
        (after(0), after(1)),
        (Value::from("happy"), Value::from("sad"))
    );
    let field = &lines[1]["value"]["schema"]["fields"][1]["fields"][1];
    assert_eq!(field["name"], "io.debezium.data.Enum", "{field}");
    let _ = cap.stop();
}
