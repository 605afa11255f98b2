//! The sink against a real PostgreSQL: auto-create from a Connect schema, upserts reduced per
//! key within a batch, deletes, additive evolution, and clear refusals (missing table, type
//! conflicts, a primary key that does not match).

use std::sync::Arc;

use augur_core::ErrorKind;
use augur_core::connect::{Field, Schema, SchemaType, Value};
use augur_pgcluster::PgCluster;
use augur_postgres::conn::PgConnect;
use augur_postgres::sink::config::{Flavor, InsertMode, PkMode, SinkConfig};
use augur_postgres::sink::{PgSink, RowShape, RowWrite, WriteOp};

fn shape(extra: bool) -> Arc<RowShape> {
    let mut fields = vec![
        Field::new(
            "id",
            Schema::new(SchemaType::Int32).with_default(Value::Int32(0)),
        ),
        Field::new("model", Schema::new(SchemaType::String).optional(true)),
        Field::new("price", Schema::new(SchemaType::Float64).optional(true)),
        Field::new(
            "n",
            Schema::new(SchemaType::Bytes)
                .optional(true)
                .named("org.apache.kafka.connect.data.Decimal", Some(1))
                .param("scale", "2"),
        ),
    ];
    if extra {
        fields.push(Field::new(
            "extra",
            Schema::new(SchemaType::Boolean).optional(true),
        ));
    }
    Arc::new(RowShape {
        fields,
        pk: vec!["id".into()],
    })
}

fn row(s: &Arc<RowShape>, id: i32, model: &str, price: f64) -> RowWrite {
    let mut values = vec![
        Value::Int32(id),
        Value::String(model.into()),
        Value::Float64(price),
        Value::Bytes(vec![0x30, 0x39]),
    ];
    if s.fields.len() == 5 {
        values.push(Value::Boolean(true));
    }
    RowWrite {
        table: "dotted.topic.name".into(),
        shape: s.clone(),
        op: WriteOp::Row(values),
    }
}

fn cfg(cluster: &PgCluster) -> SinkConfig {
    let mut c = SinkConfig::new(PgConnect::from_url(&cluster.url("postgres")).unwrap());
    c.insert_mode = InsertMode::Upsert;
    c.pk_mode = PkMode::RecordValue;
    c.pk_fields = vec!["id".into()];
    c.auto_create = true;
    c.auto_evolve = true;
    c.delete_enabled = true;
    c.flavor = Flavor::Confluent;
    c
}

#[tokio::test]
async fn upserts_deletes_and_evolution() {
    let cluster = PgCluster::start().unwrap();
    let mut sink = PgSink::connect(cfg(&cluster)).await.unwrap();
    let s = shape(false);
    // Two writes of key 1 in one batch: only the last applies; key 2 inserted then deleted.
    sink.write(&[
        row(&s, 1, "a", 1.5),
        row(&s, 2, "b", 2.5),
        row(&s, 1, "a2", 3.5),
        RowWrite {
            table: "dotted.topic.name".into(),
            shape: s.clone(),
            op: WriteOp::Delete(vec![Value::Int32(2)]),
        },
        row(&s, 3, "it's \"quoted\"", 57.7),
    ])
    .await
    .unwrap();
    let out = cluster
        .psql(
            "postgres",
            "SELECT id, model, price, n FROM \"dotted.topic.name\" ORDER BY id",
        )
        .unwrap();
    assert_eq!(out, "1|a2|3.5|123.45\n3|it's \"quoted\"|57.7|123.45\n");
    let ddl = cluster
        .psql("postgres", "SELECT string_agg(column_name || ':' || data_type || ':' || is_nullable, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'dotted.topic.name'")
        .unwrap();
    assert_eq!(
        ddl.trim(),
        "id:integer:NO,model:text:YES,price:double precision:YES,n:numeric:YES"
    );
    // Replaying the same batch converges to the same rows.
    sink.write(&[row(&s, 1, "a2", 3.5), row(&s, 3, "it's \"quoted\"", 57.7)])
        .await
        .unwrap();
    assert_eq!(
        cluster
            .psql("postgres", "SELECT count(*) FROM \"dotted.topic.name\"")
            .unwrap()
            .trim(),
        "2"
    );
    // A new field: the column is added (nullable), old rows keep NULL.
    let s2 = shape(true);
    sink.write(&[row(&s2, 4, "d", 4.5)]).await.unwrap();
    let out = cluster
        .psql(
            "postgres",
            "SELECT id, coalesce(extra::text, 'null') FROM \"dotted.topic.name\" ORDER BY id",
        )
        .unwrap();
    assert_eq!(out, "1|null\n3|null\n4|true\n");
}

#[tokio::test]
async fn refusals_are_clear_and_change_nothing() {
    let cluster = PgCluster::start().unwrap();
    let mut c = cfg(&cluster);
    c.auto_create = false;
    let mut sink = PgSink::connect(c).await.unwrap();
    let s = shape(false);
    let e = sink.write(&[row(&s, 1, "a", 1.0)]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DestinationSchema);
    assert!(
        e.message()
            .contains("does not exist and auto.create is false"),
        "{}",
        e.message()
    );

    // A value its column cannot hold: the whole batch is refused, nothing is half-written,
    // and the error names the condition, never the value.
    cluster
        .psql("postgres", "CREATE TABLE \"dotted.topic.name\" (id int PRIMARY KEY, model int, price float8, n numeric)")
        .unwrap();
    let e = sink
        .write(&[row(&s, 1, "1", 1.0), row(&s, 2, "not a number", 2.0)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data);
    assert!(
        e.full_message().contains("invalid text representation")
            && !e.full_message().contains("not a number"),
        "{}",
        e.full_message()
    );
    assert_eq!(
        cluster
            .psql("postgres", "SELECT count(*) FROM \"dotted.topic.name\"")
            .unwrap()
            .trim(),
        "0"
    );

    // A primary key that is not the one the sink upserts on.
    cluster
        .psql(
            "postgres",
            "CREATE TABLE other (id int, model text PRIMARY KEY, price float8, n numeric)",
        )
        .unwrap();
    let w = RowWrite {
        table: "other".into(),
        ..row(&s, 1, "a", 1.0)
    };
    let e = sink.write(&[w]).await.unwrap_err();
    assert!(
        e.message()
            .contains("has primary key (model) but the sink upserts on (id)"),
        "{}",
        e.message()
    );
}

fn key_shape() -> Arc<RowShape> {
    Arc::new(RowShape {
        fields: vec![Field::new("id", Schema::new(SchemaType::Int32))],
        pk: vec!["id".into()],
    })
}

fn delete(k: &Arc<RowShape>, id: i32) -> RowWrite {
    RowWrite {
        table: "dotted.topic.name".into(),
        shape: k.clone(),
        op: WriteOp::Delete(vec![Value::Int32(id)]),
    }
}

fn table_rows(cluster: &PgCluster) -> String {
    cluster
        .psql(
            "postgres",
            "SELECT id, model FROM \"dotted.topic.name\" ORDER BY id",
        )
        .unwrap()
}

/// Finding 1 of issue 9: deletes travel in a key-only shape, rows in the full shape; a batch
/// holding both for one key must apply them in batch order, not shape by shape.
#[tokio::test]
async fn deletes_and_upserts_of_one_key_in_one_batch_keep_their_order() {
    let cluster = PgCluster::start().unwrap();
    let mut sink = PgSink::connect(cfg(&cluster)).await.unwrap();
    let (s, k) = (shape(false), key_shape());
    sink.write(&[row(&s, 2, "two", 1.0), row(&s, 3, "three", 1.0)])
        .await
        .unwrap();
    // DELETE id=2; UPDATE id=3; DELETE id=3 → both gone.
    sink.write(&[delete(&k, 2), row(&s, 3, "three-b", 2.0), delete(&k, 3)])
        .await
        .unwrap();
    assert_eq!(table_rows(&cluster), "");
    // BEGIN; INSERT 501; DELETE 501; INSERT 501 (other values); COMMIT → 501 with the last values.
    sink.write(&[
        row(&s, 501, "first", 1.0),
        delete(&k, 501),
        row(&s, 501, "second", 2.0),
    ])
    .await
    .unwrap();
    assert_eq!(table_rows(&cluster), "501|second\n");
    // A truncate discards what came before it in the batch and empties the table.
    let truncate = RowWrite {
        table: "dotted.topic.name".into(),
        shape: k.clone(),
        op: WriteOp::Truncate,
    };
    sink.write(&[row(&s, 7, "gone", 1.0), truncate, row(&s, 8, "kept", 1.0)])
        .await
        .unwrap();
    assert_eq!(table_rows(&cluster), "8|kept\n");
}

/// Finding 6 of issue 9: a row the table refuses (a constraint) is isolated and reported, the
/// rest of the batch commits, and the reason names the constraint but no value.
#[tokio::test]
async fn a_constraint_violation_isolates_the_row_and_commits_the_rest() {
    let cluster = PgCluster::start().unwrap();
    cluster
        .psql(
            "postgres",
            "CREATE TABLE \"dotted.topic.name\" (id int PRIMARY KEY, model text CONSTRAINT model_short CHECK (length(model) < 8), \
             price float8, n numeric); CREATE UNIQUE INDEX one_price ON \"dotted.topic.name\" (price)",
        )
        .unwrap();
    let mut sink = PgSink::connect(cfg(&cluster)).await.unwrap();
    let (s, k) = (shape(false), key_shape());
    sink.write(&[row(&s, 1, "keep", 1.0)]).await.unwrap();
    let writes = [
        row(&s, 2, "ok", 2.0),
        row(&s, 3, "far-too-long-secret", 3.0),
        row(&s, 4, "dup", 1.0),
        delete(&k, 1),
        row(&s, 5, "fine", 5.0),
    ];
    // Without isolation the batch fails as a whole and writes nothing.
    let e = sink.write(&writes).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Data);
    assert!(!e.full_message().contains("secret"), "{}", e.full_message());
    assert_eq!(table_rows(&cluster), "1|keep\n");
    // With isolation the two bad rows are reported and the rest commits, in one transaction.
    let report = |_: &augur_postgres::sink::Rejected| None;
    let rejected = sink
        .write_batch(augur_postgres::sink::Batch {
            writes: &writes,
            isolate: Some(&report),
            ..Default::default()
        })
        .await
        .unwrap();
    let idx: Vec<usize> = rejected.iter().map(|r| r.index).collect();
    assert_eq!(idx, [1], "{rejected:?}");
    assert!(
        rejected[0].reason.contains("check violation")
            && rejected[0].reason.contains("model_short")
    );
    for r in &rejected {
        assert!(!r.reason.contains("secret"), "{r:?}");
    }
    // Deletes apply first, so row 4 (price 1.0) does not collide with the deleted row 1.
    assert_eq!(table_rows(&cluster), "2|ok\n4|dup\n5|fine\n");
}

/// Sink tasks on several workers (or one worker's several tasks) auto-create the same table at
/// the same moment: PostgreSQL lets only one CREATE win (the others fail in its catalog even with
/// IF NOT EXISTS); every sink then uses the table, and every row lands. Repeated, with the
/// second shape forcing the losers to amend it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_racing_to_create_one_table_all_write() {
    let cluster = PgCluster::start().unwrap();
    for round in 0..10 {
        let _ = cluster.psql("postgres", "DROP TABLE IF EXISTS \"dotted.topic.name\"");
        let mut sinks = Vec::new();
        for _ in 0..6 {
            sinks.push(PgSink::connect(cfg(&cluster)).await.unwrap());
        }
        let writers = sinks.into_iter().enumerate().map(|(i, mut sink)| {
            tokio::spawn(async move {
                let s = shape(i % 2 == 1);
                let id = (round * 100 + i) as i32;
                sink.write(&[row(&s, id, "racer", i as f64)]).await
            })
        });
        for w in writers.collect::<Vec<_>>() {
            let r = w.await.unwrap();
            assert!(
                r.is_ok(),
                "round {round}: {:?}",
                r.err().map(|e| e.full_message())
            );
        }
        let n = cluster
            .psql("postgres", "SELECT count(*) FROM \"dotted.topic.name\"")
            .unwrap();
        assert_eq!(n.trim(), "6", "round {round}");
    }
}
