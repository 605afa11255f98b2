//! Type fidelity: a table holding every type the issue lists produces Debezium's representation
//! for each (schema fragment and payload), in `precise` and `double` decimal modes, in the
//! snapshot and in the stream. Expected values were measured with Debezium 3.6.3 on this
//! machine (docs/research/debezium-format.md).

use std::time::Duration;

use augur_testkit::TestPg;
use serde_json::Value;

use crate::support::{self, Capture};

const SETUP: &str = "
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN price AS numeric(10,2);
CREATE TABLE all_types (
  id serial PRIMARY KEY,
  c_smallint smallint, c_integer integer, c_bigint bigint, c_real real, c_double double precision,
  c_numeric numeric(10,2), c_numeric_u numeric, c_money money, c_bool boolean,
  c_text text, c_varchar varchar(20), c_char char(5), c_bytea bytea,
  c_date date, c_time time, c_time3 time(3), c_timetz timetz, c_timestamp timestamp, c_timestamp3 timestamp(3),
  c_timestamptz timestamptz, c_timestamptz0 timestamptz(0), c_interval interval,
  c_uuid uuid, c_json json, c_jsonb jsonb, c_enum mood,
  c_int_arr integer[], c_text_arr text[], c_num_arr numeric(5,1)[], c_enum_arr mood[], c_date_arr date[],
  c_default_text text DEFAULT 'x', c_default_int integer NOT NULL DEFAULT 42, c_tsvector tsvector,
  c_domain_num price, c_bit bit(3), c_varbit varbit(10), c_bit1 bit
);";

const ROW: &str = "
INSERT INTO all_types (c_smallint, c_integer, c_bigint, c_real, c_double, c_numeric, c_numeric_u, c_money, c_bool,
  c_text, c_varchar, c_char, c_bytea, c_date, c_time, c_time3, c_timetz, c_timestamp, c_timestamp3,
  c_timestamptz, c_timestamptz0, c_interval, c_uuid, c_json, c_jsonb, c_enum,
  c_int_arr, c_text_arr, c_num_arr, c_enum_arr, c_date_arr, c_default_text, c_tsvector, c_domain_num, c_bit, c_varbit, c_bit1)
VALUES (7, 2017, 9007199254740993, 1.5, 57.7, 12.34, 1.50, 1234.5, true,
  'Petrol \"quoted\"', 'abc', 'ab', '\\x0102ff', '2024-03-01', '12:34:56.789123', '12:34:56.789', '12:34:56.5+02',
  '2018-06-20 15:13:16.945104', '2024-03-01 12:34:56.5', '2024-03-01 12:34:56.5+02', '2024-03-01 12:34:56+00',
  '1 year 2 mons 3 days 04:05:06.78', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": 1, \"b\":[1,2]}',
  '{\"b\":[1,2], \"a\": 1}', 'ok', '{1,NULL,3}', '{\"a\",\"b c\"}', '{1.5,NULL}', '{sad,happy}', '{2024-03-01}',
  NULL, 'fat cat', 12.34, B'101', B'1000000001', B'1');";

/// (column, schema fragment without the `field` key, payload) for `precise` mode.
fn expected_precise() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        // Bit strings: io.debezium.data.Bits, little-endian bytes; bit(1) a boolean.
        (
            "c_bit",
            r#"{"type":"bytes","optional":true,"name":"io.debezium.data.Bits","version":1,"parameters":{"length":"3"}}"#,
            r#""BQ==""#,
        ),
        (
            "c_varbit",
            r#"{"type":"bytes","optional":true,"name":"io.debezium.data.Bits","version":1,"parameters":{"length":"10"}}"#,
            r#""AQI=""#,
        ),
        ("c_bit1", r#"{"type":"boolean","optional":true}"#, "true"),
        // A domain over numeric(p,s) is its base type with the domain's precision and scale.
        (
            "c_domain_num",
            r#"{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"}}"#,
            r#""BNI=""#,
        ),
        ("c_smallint", r#"{"type":"int16","optional":true}"#, "7"),
        ("c_integer", r#"{"type":"int32","optional":true}"#, "2017"),
        (
            "c_bigint",
            r#"{"type":"int64","optional":true}"#,
            "9007199254740993",
        ),
        ("c_real", r#"{"type":"float","optional":true}"#, "1.5"),
        ("c_double", r#"{"type":"double","optional":true}"#, "57.7"),
        (
            "c_numeric",
            r#"{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"10"}}"#,
            r#""BNI=""#,
        ),
        (
            "c_numeric_u",
            r#"{"type":"struct","fields":[{"type":"int32","optional":false,"field":"scale"},{"type":"bytes","optional":false,"field":"value"}],"optional":true,"name":"io.debezium.data.VariableScaleDecimal","version":1,"doc":"Variable scaled decimal"}"#,
            r#"{"scale":1,"value":"Dw=="}"#,
        ),
        (
            "c_money",
            r#"{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}}"#,
            r#""AeI6""#,
        ),
        ("c_bool", r#"{"type":"boolean","optional":true}"#, "true"),
        (
            "c_text",
            r#"{"type":"string","optional":true}"#,
            r#""Petrol \"quoted\"""#,
        ),
        (
            "c_varchar",
            r#"{"type":"string","optional":true}"#,
            r#""abc""#,
        ),
        (
            "c_char",
            r#"{"type":"string","optional":true}"#,
            r#""ab   ""#,
        ),
        (
            "c_bytea",
            r#"{"type":"bytes","optional":true}"#,
            r#""AQL/""#,
        ),
        (
            "c_date",
            r#"{"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1}"#,
            "19783",
        ),
        (
            "c_time",
            r#"{"type":"int64","optional":true,"name":"io.debezium.time.MicroTime","version":1}"#,
            "45296789123",
        ),
        (
            "c_time3",
            r#"{"type":"int32","optional":true,"name":"io.debezium.time.Time","version":1}"#,
            "45296789",
        ),
        (
            "c_timetz",
            r#"{"type":"string","optional":true,"name":"io.debezium.time.ZonedTime","version":1}"#,
            r#""10:34:56.5Z""#,
        ),
        (
            "c_timestamp",
            r#"{"type":"int64","optional":true,"name":"io.debezium.time.MicroTimestamp","version":1}"#,
            "1529507596945104",
        ),
        (
            "c_timestamp3",
            r#"{"type":"int64","optional":true,"name":"io.debezium.time.Timestamp","version":1}"#,
            "1709296496500",
        ),
        (
            "c_timestamptz",
            r#"{"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","version":1}"#,
            r#""2024-03-01T10:34:56.500000Z""#,
        ),
        (
            "c_timestamptz0",
            r#"{"type":"string","optional":true,"name":"io.debezium.time.ZonedTimestamp","version":1}"#,
            r#""2024-03-01T12:34:56Z""#,
        ),
        (
            "c_interval",
            r#"{"type":"int64","optional":true,"name":"io.debezium.time.MicroDuration","version":1}"#,
            "37091106780000",
        ),
        (
            "c_uuid",
            r#"{"type":"string","optional":true,"name":"io.debezium.data.Uuid","version":1}"#,
            r#""a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11""#,
        ),
        (
            "c_json",
            r#"{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1}"#,
            r#""{\"a\": 1, \"b\":[1,2]}""#,
        ),
        (
            "c_jsonb",
            r#"{"type":"string","optional":true,"name":"io.debezium.data.Json","version":1}"#,
            r#""{\"a\": 1, \"b\": [1, 2]}""#,
        ),
        (
            "c_enum",
            r#"{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"sad,ok,happy"}}"#,
            r#""ok""#,
        ),
        (
            "c_int_arr",
            r#"{"type":"array","items":{"type":"int32","optional":true},"optional":true}"#,
            "[1,null,3]",
        ),
        (
            "c_text_arr",
            r#"{"type":"array","items":{"type":"string","optional":true},"optional":true}"#,
            r#"["a","b c"]"#,
        ),
        (
            "c_num_arr",
            r#"{"type":"array","items":{"type":"bytes","optional":true,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"1","connect.decimal.precision":"5"}},"optional":true}"#,
            r#"["Dw==",null]"#,
        ),
        (
            "c_enum_arr",
            r#"{"type":"array","items":{"type":"string","optional":false,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"sad,ok,happy"}},"optional":true}"#,
            r#"["sad","happy"]"#,
        ),
        (
            "c_date_arr",
            r#"{"type":"array","items":{"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1},"optional":true}"#,
            "[19783]",
        ),
        // A NULL in a column with a default prints the default (replace.null.with.default).
        (
            "c_default_text",
            r#"{"type":"string","optional":true,"default":"x"}"#,
            r#""x""#,
        ),
        (
            "c_default_int",
            r#"{"type":"int32","optional":false,"default":42}"#,
            "42",
        ),
        (
            "c_tsvector",
            r#"{"type":"string","optional":true,"name":"io.debezium.data.Tsvector","version":1}"#,
            r#""'cat' 'fat'""#,
        ),
    ]
}

/// The columns that differ in `double` mode.
fn expected_double_overrides() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("c_numeric", r#"{"type":"double","optional":true}"#, "12.34"),
        (
            "c_domain_num",
            r#"{"type":"double","optional":true}"#,
            "12.34",
        ),
        ("c_numeric_u", r#"{"type":"double","optional":true}"#, "1.5"),
        ("c_money", r#"{"type":"double","optional":true}"#, "1234.5"),
        (
            "c_num_arr",
            r#"{"type":"array","items":{"type":"double","optional":true},"optional":true}"#,
            "[1.5,null]",
        ),
    ]
}

fn check(event: &Value, expected: &[(&str, &str, &str)], what: &str) {
    let fields = event["value"]["schema"]["fields"][1]["fields"]
        .as_array()
        .expect("after fields");
    let after = &event["value"]["payload"]["after"];
    for (col, schema, payload) in expected {
        let f = fields
            .iter()
            .find(|f| f["field"] == *col)
            .unwrap_or_else(|| panic!("{what}: no field {col}"));
        let mut f = f.clone();
        f.as_object_mut().unwrap().shift_remove("field");
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            *schema,
            "{what}: schema of {col}"
        );
        assert_eq!(
            serde_json::to_string(&after[*col]).unwrap(),
            *payload,
            "{what}: value of {col}"
        );
    }
}

fn run(decimal_mode: &str, expected: Vec<(&'static str, &'static str, &'static str)>) {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(&db, SETUP);
    pg.sql(&db, ROW);
    let dir = support::scratch_dir("types");
    let mut props = support::connector_props(&db, "srv");
    props.push(("decimal.handling.mode".into(), decimal_mode.into()));
    props.push((
        "offset.storage.file.filename".into(),
        dir.join("o.json").display().to_string(),
    ));
    let mut cap = Capture::start(&props, &["--stdout"]);
    let snap = cap.wait_lines(1, Duration::from_secs(30));
    check(&snap[0], &expected, &format!("{decimal_mode} snapshot"));
    cap.wait_stderr("streaming changes", Duration::from_secs(30));
    pg.sql(&db, ROW);
    let lines = cap.wait_lines(2, Duration::from_secs(30));
    assert_eq!(lines[1]["value"]["payload"]["op"], "c");
    check(&lines[1], &expected, &format!("{decimal_mode} stream"));
    // Both events have the same schema block.
    assert_eq!(lines[0]["value"]["schema"], lines[1]["value"]["schema"]);
    let (status, stderr) = cap.stop();
    assert!(status.success(), "{stderr}");
}

#[test]
fn every_type_maps_like_debezium_in_precise_mode() {
    run("precise", expected_precise());
}

#[test]
fn every_type_maps_like_debezium_in_double_mode() {
    let mut exp = expected_precise();
    for o in expected_double_overrides() {
        let slot = exp.iter_mut().find(|e| e.0 == o.0).unwrap();
        *slot = o;
    }
    run("double", exp);
}

#[test]
fn special_values_and_unmapped_types() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE s (id int PRIMARY KEY, n numeric(10,2), u numeric, f double precision, d date, ts timestamp, \
         tz timestamptz, l pg_lsn, big text, na numeric[], e text); \
         ALTER TABLE s ALTER COLUMN big SET STORAGE EXTERNAL;",
    );
    let dir = support::scratch_dir("special");
    let mut props = support::connector_props(&db, "srv");
    props.push((
        "offset.storage.file.filename".into(),
        dir.join("o.json").display().to_string(),
    ));
    props.push(("decimal.handling.mode".into(), "string".into()));
    let mut cap = Capture::start(&props, &["--stdout"]);
    cap.wait_stderr("streaming changes", Duration::from_secs(30));
    // An unmapped type is left out (with a warning), never a crash.
    pg.sql(
        &db,
        "INSERT INTO s VALUES (1, 'NaN', 'Infinity', 'NaN', 'infinity', '-infinity', 'infinity', '16/B374D848', repeat('x', 10000), '{1.5,NaN}', 'car 😀')",
    );
    let lines = cap.wait_lines(1, Duration::from_secs(30));
    let after = &lines[0]["value"]["payload"]["after"];
    // A numeric array holding NaN is null as a whole, as Debezium writes it; text beyond the
    // BMP arrives intact (written as surrogate escapes, as Jackson writes it).
    assert!(after["na"].is_null(), "{}", after["na"]);
    assert_eq!(after["e"], "car 😀");
    let raw = cap.lines();
    assert!(raw[0].contains(r"car \uD83D\uDE00"), "{}", raw[0]);
    assert_eq!(after["n"], "NAN");
    assert_eq!(after["u"], "POSITIVE_INFINITY");
    assert_eq!(after["f"], "NaN");
    assert_eq!(after["d"], -2147472692);
    assert_eq!(after["ts"], -9223372036832400000i64);
    assert_eq!(after["tz"], "infinity");
    assert!(
        after.get("l").is_none(),
        "pg_lsn has no mapping and is left out"
    );
    assert!(cap.stderr().contains("column type has no mapping"));
    // An UPDATE that leaves a TOASTed value alone shows the placeholder.
    pg.sql(&db, "UPDATE s SET f = 1 WHERE id = 1");
    let lines = cap.wait_lines(2, Duration::from_secs(30));
    let big = lines[1]["value"]["payload"]["after"]["big"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        big == "__debezium_unavailable_value",
        "unchanged TOAST value should be the placeholder, got {} bytes",
        big.len()
    );
    assert_eq!(lines[1]["value"]["payload"]["after"]["f"], 1.0);
    let (status, stderr) = cap.stop();
    assert!(status.success(), "{stderr}");
}

#[test]
fn a_multi_dimensional_array_never_stops_the_capture() {
    let pg = TestPg::start();
    let db = pg.database();
    pg.sql(
        &db,
        "CREATE TABLE m (id int PRIMARY KEY, a int[] NOT NULL, t text[]); \
         INSERT INTO m VALUES (1, '{{1,2},{3,4}}', '{{\"a}\",b},{c,d},{e,f}}');",
    );
    let dir = support::scratch_dir("multidim");
    let mut props = support::connector_props(&db, "srv");
    props.push((
        "offset.storage.file.filename".into(),
        dir.join("o.json").display().to_string(),
    ));
    let mut cap = Capture::start(&props, &["--stdout"]);
    let snap = cap.wait_lines(1, Duration::from_secs(30));
    let after = &snap[0]["value"]["payload"]["after"];
    assert_eq!(after["a"], serde_json::json!([null, null]), "snapshot");
    assert_eq!(
        after["t"],
        serde_json::json!([null, null, null]),
        "snapshot"
    );
    cap.wait_stderr("streaming changes", Duration::from_secs(30));
    pg.sql(
        &db,
        "INSERT INTO m VALUES (2, '[0:1][0:0]={{5},{6}}', NULL); INSERT INTO m VALUES (3, '{7,8}', '{x}');",
    );
    let lines = cap.wait_lines(3, Duration::from_secs(30));
    assert_eq!(
        lines[1]["value"]["payload"]["after"]["a"],
        serde_json::json!([null, null])
    );
    let third = &lines[2]["value"]["payload"]["after"];
    assert_eq!(third["a"], serde_json::json!([7, 8]), "the stream goes on");
    assert_eq!(third["t"], serde_json::json!(["x"]));
    let (status, stderr) = cap.stop();
    assert!(status.success(), "{stderr}");
}
