//! Connect schemas → PostgreSQL tables: `CREATE TABLE` for `auto.create` and
//! `ALTER TABLE … ADD COLUMN` for `auto.evolve` (never drop or retype a column). Column types
//! follow the sink flavour's documented mapping.

use augur_core::connect::{Field, Schema, SchemaType, Value};
use augur_core::{Error, ErrorKind};

use super::RowShape;
use super::config::Flavor;
use super::render;
use crate::source::setup::{quote_ident, quote_literal};

/// The column type for a field of `schema` under `flavor`.
pub fn column_type(schema: &Schema, flavor: Flavor) -> Result<String, Error> {
    let name = schema.name.as_deref().unwrap_or("");
    // Logical types both sinks know.
    match name {
        "org.apache.kafka.connect.data.Decimal" => {
            let scale = schema.parameter("scale").unwrap_or("0");
            return Ok(
                match (flavor, schema.parameter("connect.decimal.precision")) {
                    (Flavor::Debezium, Some(p)) => format!("numeric({p},{scale})"),
                    _ => "numeric".into(),
                },
            );
        }
        "org.apache.kafka.connect.data.Date" => return Ok("date".into()),
        "org.apache.kafka.connect.data.Time" => return Ok("time".into()),
        "org.apache.kafka.connect.data.Timestamp" => return Ok("timestamp".into()),
        _ => {}
    }
    if flavor == Flavor::Debezium {
        let mapped = match name {
            "io.debezium.time.Date" => Some("date"),
            "io.debezium.time.Time"
            | "io.debezium.time.MicroTime"
            | "io.debezium.time.NanoTime" => Some("time"),
            "io.debezium.time.Timestamp"
            | "io.debezium.time.MicroTimestamp"
            | "io.debezium.time.NanoTimestamp" => Some("timestamp"),
            "io.debezium.time.ZonedTimestamp" => Some("timestamptz"),
            "io.debezium.time.ZonedTime" => Some("timetz"),
            "io.debezium.time.MicroDuration" => Some("interval"),
            "io.debezium.data.Json" => Some("jsonb"),
            "io.debezium.data.Uuid" => Some("uuid"),
            "io.debezium.data.VariableScaleDecimal" => Some("double precision"),
            "io.debezium.data.Enum" | "io.debezium.data.Xml" => Some("text"),
            _ => None,
        };
        if let Some(t) = mapped {
            return Ok(t.into());
        }
    } else if name == "io.debezium.data.VariableScaleDecimal" {
        return Ok("numeric".into());
    }
    Ok(match schema.ty {
        SchemaType::Int8 | SchemaType::Int16 => "smallint".into(),
        SchemaType::Int32 => "integer".into(),
        SchemaType::Int64 => "bigint".into(),
        SchemaType::Float32 => "real".into(),
        SchemaType::Float64 => "double precision".into(),
        SchemaType::Boolean => "boolean".into(),
        SchemaType::String => match flavor {
            Flavor::Confluent => "text".into(),
            Flavor::Debezium => "varchar".into(),
        },
        SchemaType::Bytes => "bytea".into(),
        SchemaType::Array => {
            let items = schema.items.as_deref().ok_or_else(|| {
                Error::new(ErrorKind::DestinationSchema, "array schema without items")
            })?;
            format!("{}[]", column_type(items, flavor)?)
        }
        SchemaType::Map | SchemaType::Struct => "text".into(),
    })
}

fn column_def(f: &Field, flavor: Flavor, in_key: bool) -> Result<String, Error> {
    let ty = column_type(&f.schema, flavor)?;
    let mut def = format!("{} {ty}", quote_ident(&f.name));
    if let Some(d) = &f.schema.default
        && !matches!(d, Value::Struct(_) | Value::Map(_) | Value::Array(_))
        && let Ok(Some(text)) = render::render(&f.schema, d, &ty)
    {
        def.push_str(&format!(" DEFAULT {}::{ty}", quote_literal(&text)));
    }
    if !f.schema.optional || in_key {
        def.push_str(" NOT NULL");
    }
    Ok(def)
}

/// `CREATE TABLE IF NOT EXISTS` for `shape`, with its primary key.
pub fn create_table(qualified: &str, shape: &RowShape, flavor: Flavor) -> Result<String, Error> {
    let mut cols = Vec::with_capacity(shape.fields.len() + 1);
    for f in &shape.fields {
        cols.push(column_def(f, flavor, shape.pk.contains(&f.name))?);
    }
    if !shape.pk.is_empty() {
        cols.push(format!(
            "PRIMARY KEY ({})",
            shape
                .pk
                .iter()
                .map(|p| quote_ident(p))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(format!(
        "CREATE TABLE IF NOT EXISTS {qualified} ({})",
        cols.join(", ")
    ))
}

/// `ALTER TABLE … ADD COLUMN IF NOT EXISTS` for a new field; always nullable, as both sinks add
/// columns.
pub fn add_column(qualified: &str, f: &Field, flavor: Flavor) -> Result<String, Error> {
    let ty = column_type(&f.schema, flavor)?;
    Ok(format!(
        "ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS {} {ty}",
        quote_ident(&f.name)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_table_quotes_and_maps_types() {
        let shape = RowShape {
            fields: vec![
                Field::new(
                    "id",
                    Schema::new(SchemaType::Int32).with_default(Value::Int32(0)),
                ),
                Field::new("model", Schema::new(SchemaType::String).optional(true)),
                Field::new("mpg", Schema::new(SchemaType::Float64).optional(true)),
                Field::new("we\"ird", Schema::new(SchemaType::Boolean).optional(true)),
            ],
            pk: vec!["id".into()],
        };
        let sql = create_table("\"public\".\"t\"", &shape, Flavor::Confluent).unwrap();
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS \"public\".\"t\" (\"id\" integer DEFAULT '0'::integer NOT NULL, \"model\" text, \
             \"mpg\" double precision, \"we\"\"ird\" boolean, PRIMARY KEY (\"id\"))"
        );
        let date = Schema::new(SchemaType::Int32).named("io.debezium.time.Date", Some(1));
        assert_eq!(column_type(&date, Flavor::Confluent).unwrap(), "integer");
        assert_eq!(column_type(&date, Flavor::Debezium).unwrap(), "date");
    }
}
