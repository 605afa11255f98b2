//! The sink against a real PostgreSQL: auto-create from a Connect schema, upserts reduced per
//! key within a batch, deletes, additive evolution, and clear refusals (missing table, type
//! conflicts, a primary key that does not match).

use std::sync::Arc;

use augur_core::ErrorKind;
use augur_core::connect::{Field, Schema, SchemaType, Value};
use augur_postgres::cluster::PgCluster;
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
