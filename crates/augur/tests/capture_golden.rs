//! Golden compatibility: the statements recorded in `tests/fixtures/debezium/events.json`,
//! replayed against augur, give the same events as Debezium 3.6.3, field by field and in field
//! order (except LSNs, txIds, timestamps, row ids and the version string).

use std::time::Duration;

use augur_testkit::TestPg;
use serde_json::Value;

use crate::support::{self, Capture, assert_same_json, golden, raw, redact_event, redact_key};

const DDL: &str = "CREATE TABLE car_data (id SERIAL PRIMARY KEY, model VARCHAR(50), year INTEGER, price INTEGER, \
                   transmission VARCHAR(50), mileage INTEGER, fuelType VARCHAR(50), tax INTEGER, mpg FLOAT, \
                   engineSize FLOAT, suggestedPrice INTEGER)";

fn compare(what: &str, gold: &Value, line: &Value) {
    assert_eq!(line["topic"], gold["topic"], "{what}: topic");
    assert_same_json(
        &format!("{what} key"),
        &redact_key(&raw(gold, "key_raw")),
        &redact_key(&line["key"]),
    );
    assert_same_json(
        &format!("{what} value"),
        &redact_event(&raw(gold, "value_raw")),
        &redact_event(&line["value"]),
    );
}

#[test]
fn events_match_debezium_field_by_field() {
    let pg = TestPg::start();
    let db = pg.named_database("cars");
    pg.sql(&db, DDL);
    pg.sql(
        &db,
        "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES \
         (' Fiesta', 2017, 12000, 'Automatic', 15944, 'Petrol', 150, 57.7, 1), \
         (' Focus', 2018, 14000, 'Manual', 9083, 'Petrol', 150, 57.7, 1), \
         (' Focus', 2017, 13000, 'Manual', 12456, 'Petrol', 150, 57.7, 1)",
    );
    let dir = support::scratch_dir("golden");
    let mut props = support::connector_props(&db, "car_database");
    props.push(("table.include.list".into(), "public.car_data".into()));
    props.push((
        "offset.storage.file.filename".into(),
        dir.join("offsets.json").display().to_string(),
    ));
    let mut cap = Capture::start(&props, &["--stdout"]);
    let gold = golden();

    let snap = cap.wait_lines(3, Duration::from_secs(30));
    for (i, g) in gold["snapshot_reads"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        compare(&format!("snapshot read {i}"), g, &snap[i]);
    }
    cap.wait_stderr("streaming changes", Duration::from_secs(30));

    pg.sql(&db, "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES (' Fiesta', 2017, 12000, 'Automatic', 15944, 'Petrol', 150, 57.7, 1)");
    pg.sql(
        &db,
        "UPDATE car_data SET price = 11500, suggestedPrice = 11800 WHERE id = 4",
    );
    pg.sql(&db, "DELETE FROM car_data WHERE id = 4");
    let lines = cap.wait_lines(7, Duration::from_secs(30));
    compare("insert", &gold["insert"], &lines[3]);
    compare("update", &gold["update"], &lines[4]);
    compare("delete", &gold["delete"], &lines[5]);
    assert_eq!(lines[6]["value"], Value::Null, "tombstone has a null value");
    compare("tombstone", &gold["delete_tombstone"], &lines[6]);

    pg.sql(&db, "ALTER TABLE car_data REPLICA IDENTITY FULL");
    pg.sql(&db, "INSERT INTO car_data (model, year, price, transmission, mileage, fuelType, tax, mpg, engineSize) VALUES (' Focus', 2018, 14000, 'Manual', 9083, 'Petrol', 150, 57.7, 1)");
    pg.sql(
        &db,
        "UPDATE car_data SET price = 13500, suggestedPrice = 13900 WHERE id = 5",
    );
    pg.sql(&db, "DELETE FROM car_data WHERE id = 5");
    let lines = cap.wait_lines(11, Duration::from_secs(30));
    let full = &gold["replica_identity_full"];
    compare("FULL insert", &full["insert"], &lines[7]);
    compare("FULL update", &full["update"], &lines[8]);
    compare("FULL delete", &full["delete"], &lines[9]);
    compare("FULL tombstone", &full["delete_tombstone"], &lines[10]);

    // Streaming events carry real positions: sequence is [last commit LSN, event LSN], the
    // event LSN is source.lsn, and the first element is null until this run saw a commit.
    let seq_of = |i: usize| -> (Vec<Option<String>>, u64) {
        let src = &lines[i]["value"]["payload"]["source"];
        (
            serde_json::from_str(src["sequence"].as_str().unwrap()).unwrap(),
            src["lsn"].as_u64().unwrap(),
        )
    };
    let (first, lsn) = seq_of(3);
    assert_eq!(first[0], None);
    assert_eq!(first[1].as_deref().unwrap(), lsn.to_string());
    let (second, lsn2) = seq_of(4);
    let commit: u64 = second[0]
        .as_deref()
        .expect("commit LSN after the first commit")
        .parse()
        .unwrap();
    assert!(
        commit > lsn && commit <= lsn2,
        "last commit {commit} lies between the two changes {lsn}..{lsn2}"
    );

    let (status, stderr) = cap.stop();
    assert!(status.success(), "clean exit after SIGTERM: {stderr}");
}
