//! The sink's typed configuration (built from Kafka Connect JDBC sink property names by the
//! runtime; validated without I/O).

use crate::conn::PgConnect;

/// Which JDBC sink's conventions to follow where the two differ (column types on
/// auto-create, `${source.*}` placeholders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `io.confluent.connect.jdbc.JdbcSinkConnector`.
    Confluent,
    /// `io.debezium.connector.jdbc.JdbcSinkConnector`.
    Debezium,
}

/// `insert.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    /// Plain `INSERT` (a duplicate key fails the batch).
    Insert,
    /// `INSERT … ON CONFLICT (pk) DO UPDATE`.
    Upsert,
    /// `UPDATE … WHERE pk` (rows that do not exist are not created).
    Update,
}

/// `pk.mode` / `primary.key.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkMode {
    /// No key: rows are appended.
    None,
    /// `__connect_topic`, `__connect_partition`, `__connect_offset`.
    Kafka,
    /// The record key's fields (or a primitive key as `pk.fields[0]`).
    RecordKey,
    /// Fields of the record value.
    RecordValue,
}

/// Everything the sink needs.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// Where to write.
    pub connect: PgConnect,
    /// The schema tables are created in (default `public`).
    pub schema: String,
    /// Confluent or Debezium conventions.
    pub flavor: Flavor,
    /// `insert.mode`.
    pub insert_mode: InsertMode,
    /// `pk.mode` / `primary.key.mode`.
    pub pk_mode: PkMode,
    /// `pk.fields` / `primary.key.fields` (empty: all key fields, or for `record_value` an error).
    pub pk_fields: Vec<String>,
    /// `delete.enabled`.
    pub delete_enabled: bool,
    /// `truncate.enabled` (Debezium's JDBC sink): a truncate change event (`op` `t`) empties
    /// the table its topic maps to.
    pub truncate_enabled: bool,
    /// `auto.create` (Debezium: `schema.evolution=basic`).
    pub auto_create: bool,
    /// `auto.evolve` (Debezium: `schema.evolution=basic`).
    pub auto_evolve: bool,
    /// `table.name.format` / `collection.name.format`, default `${topic}`.
    pub table_format: String,
    /// `batch.size`: records per transaction at most.
    pub batch_size: usize,
    /// In `update` mode, leave rows whose new values equal the current ones untouched (no new
    /// WAL): what writing a prediction back into the captured table needs so it does not
    /// trigger itself forever.
    pub skip_unchanged: bool,
    /// Debezium's `unavailable.value.placeholder` (an unchanged TOASTed value): a column
    /// holding it is left as stored on update and written as NULL on insert, never written
    /// as the placeholder (`None`: no placeholder is recognised).
    pub unavailable_placeholder: Option<String>,
    /// A table in which every table this sink creates is recorded, so that one dropped later
    /// can be told from one never created (`augur run`; `None` for the Connect sinks).
    pub registry_table: Option<String>,
}

impl SinkConfig {
    /// Defaults for a sink writing through `connect`.
    pub fn new(connect: PgConnect) -> Self {
        SinkConfig {
            connect,
            schema: "public".into(),
            flavor: Flavor::Confluent,
            insert_mode: InsertMode::Insert,
            pk_mode: PkMode::None,
            pk_fields: Vec::new(),
            delete_enabled: false,
            truncate_enabled: false,
            auto_create: false,
            auto_evolve: false,
            table_format: "${topic}".into(),
            batch_size: 3000,
            skip_unchanged: false,
            unavailable_placeholder: Some("__debezium_unavailable_value".into()),
            registry_table: None,
        }
    }

    /// The table a record of `topic` goes to: `table.name.format` with `${topic}` (and, for
    /// the Debezium flavour, `${source.schema}` / `${source.table}`) substituted, dots made
    /// safe as underscores (a dotted topic such as `srv.public.cars` would otherwise read as a
    /// schema-qualified name).
    pub fn table_name(
        &self,
        topic: &str,
        source_schema: Option<&str>,
        source_table: Option<&str>,
    ) -> String {
        let mut name = self.table_format.replace("${topic}", topic);
        if let Some(s) = source_schema {
            name = name.replace("${source.schema}", s);
        }
        if let Some(t) = source_table {
            name = name.replace("${source.table}", t);
        }
        name.replace('.', "_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_made_safe() {
        let mut c = SinkConfig::new(PgConnect::new("h", 1, "u", "p", "d"));
        assert_eq!(
            c.table_name("car_data_predicted", None, None),
            "car_data_predicted"
        );
        assert_eq!(
            c.table_name("srv.public.cars", None, None),
            "srv_public_cars"
        );
        c.table_format = "sink_${source.table}".into();
        assert_eq!(
            c.table_name("srv.public.cars", Some("public"), Some("cars")),
            "sink_cars"
        );
    }
}
