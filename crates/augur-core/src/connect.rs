//! The Kafka Connect data model: schemas and values, as Kafka Connect's `Schema`, `Struct` and
//! `JsonConverter` define them.
//!
//! Debezium builds its events from these types, the JSON converter prints them, and the JDBC
//! sink maps them to SQL columns. Logical types (`org.apache.kafka.connect.data.Decimal`,
//! `io.debezium.time.MicroTimestamp`, …) ride on a primitive type plus a `name`, `version` and
//! `parameters`, exactly as on the wire.

use std::sync::Arc;

/// The primitive and container types of Kafka Connect (`Schema.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// 8-bit signed integer (`int8`).
    Int8,
    /// 16-bit signed integer (`int16`).
    Int16,
    /// 32-bit signed integer (`int32`).
    Int32,
    /// 64-bit signed integer (`int64`).
    Int64,
    /// IEEE-754 single precision (`float`).
    Float32,
    /// IEEE-754 double precision (`double`).
    Float64,
    /// `boolean`.
    Boolean,
    /// UTF-8 text (`string`).
    String,
    /// Raw bytes (`bytes`), base64 in JSON.
    Bytes,
    /// An ordered list whose elements share the `items` schema (`array`).
    Array,
    /// A map from `keys` to `values` (`map`).
    Map,
    /// A record of named `fields` (`struct`).
    Struct,
}

impl SchemaType {
    /// The name the JSON converter writes in a schema's `type` key.
    pub fn json_name(self) -> &'static str {
        match self {
            SchemaType::Int8 => "int8",
            SchemaType::Int16 => "int16",
            SchemaType::Int32 => "int32",
            SchemaType::Int64 => "int64",
            SchemaType::Float32 => "float",
            SchemaType::Float64 => "double",
            SchemaType::Boolean => "boolean",
            SchemaType::String => "string",
            SchemaType::Bytes => "bytes",
            SchemaType::Array => "array",
            SchemaType::Map => "map",
            SchemaType::Struct => "struct",
        }
    }

    /// The type named `name` in a JSON schema's `type` key.
    pub fn from_json_name(name: &str) -> Option<SchemaType> {
        Some(match name {
            "int8" => SchemaType::Int8,
            "int16" => SchemaType::Int16,
            "int32" => SchemaType::Int32,
            "int64" => SchemaType::Int64,
            "float" => SchemaType::Float32,
            "double" => SchemaType::Float64,
            "boolean" => SchemaType::Boolean,
            "string" => SchemaType::String,
            "bytes" => SchemaType::Bytes,
            "array" => SchemaType::Array,
            "map" => SchemaType::Map,
            "struct" => SchemaType::Struct,
            _ => return None,
        })
    }
}

/// A Kafka Connect schema. Field order of the JSON form is fixed by the converter, not by
/// this struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// The underlying type.
    pub ty: SchemaType,
    /// Whether a value may be null.
    pub optional: bool,
    /// The default value, printed in the schema's `default` key.
    pub default: Option<Value>,
    /// Logical type or record name (`io.debezium.time.Date`, `srv.public.t.Value`, …).
    pub name: Option<String>,
    /// Logical type version.
    pub version: Option<i32>,
    /// Documentation string.
    pub doc: Option<String>,
    /// String parameters, in insertion order (`scale`, `connect.decimal.precision`, `allowed`).
    pub parameters: Vec<(String, String)>,
    /// Struct members, in order.
    pub fields: Vec<Field>,
    /// Array element schema.
    pub items: Option<Box<Schema>>,
    /// Map key schema.
    pub keys: Option<Box<Schema>>,
    /// Map value schema.
    pub values: Option<Box<Schema>>,
}

/// One member of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The member name (`field` in JSON).
    pub name: String,
    /// The member's schema.
    pub schema: Schema,
}

impl Field {
    /// A field named `name` with `schema`.
    pub fn new(name: impl Into<String>, schema: Schema) -> Self {
        Field {
            name: name.into(),
            schema,
        }
    }
}

impl Schema {
    /// A schema of type `ty` with nothing else set (required, no name).
    pub fn new(ty: SchemaType) -> Self {
        Schema {
            ty,
            optional: false,
            default: None,
            name: None,
            version: None,
            doc: None,
            parameters: Vec::new(),
            fields: Vec::new(),
            items: None,
            keys: None,
            values: None,
        }
    }

    /// A struct schema with `fields`.
    pub fn structure(name: Option<String>, fields: Vec<Field>) -> Self {
        Schema {
            name,
            fields,
            ..Schema::new(SchemaType::Struct)
        }
    }

    /// An array schema whose elements follow `items`.
    pub fn array(items: Schema) -> Self {
        Schema {
            items: Some(Box::new(items)),
            ..Schema::new(SchemaType::Array)
        }
    }

    /// A map schema with `keys` and `values` (required).
    pub fn map(keys: Schema, values: Schema) -> Self {
        Schema {
            keys: Some(Box::new(keys)),
            values: Some(Box::new(values)),
            ..Schema::new(SchemaType::Map)
        }
    }

    /// Sets `optional`.
    pub fn optional(mut self, optional: bool) -> Self {
        self.optional = optional;
        self
    }

    /// Sets the logical name and version.
    pub fn named(mut self, name: impl Into<String>, version: Option<i32>) -> Self {
        self.name = Some(name.into());
        self.version = version;
        self
    }

    /// Adds a parameter.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.push((key.into(), value.into()));
        self
    }

    /// Sets the default value.
    pub fn with_default(mut self, default: Value) -> Self {
        self.default = Some(default);
        self
    }

    /// Sets the doc string.
    pub fn with_doc(mut self, doc: impl Into<String>) -> Self {
        self.doc = Some(doc.into());
        self
    }

    /// The parameter named `key`, if set.
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The index of the struct member named `name`.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The struct member named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A Kafka Connect value. Struct values hold their members in schema order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Null.
    Null,
    /// `boolean`.
    Boolean(bool),
    /// `int8`.
    Int8(i8),
    /// `int16`.
    Int16(i16),
    /// `int32` (also `Date`, `Time`, `io.debezium.time.Date`, …).
    Int32(i32),
    /// `int64` (also timestamps and `MicroTime`).
    Int64(i64),
    /// `float`.
    Float32(f32),
    /// `double`.
    Float64(f64),
    /// `string`.
    String(String),
    /// `bytes` (also `Decimal`: the unscaled value, big-endian two's complement).
    Bytes(Vec<u8>),
    /// `array`.
    Array(Vec<Value>),
    /// `map`, in insertion order.
    Map(Vec<(Value, Value)>),
    /// `struct`: the members, in the order of the schema's fields.
    Struct(Vec<Value>),
}

impl Value {
    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as an `f64` when it is numeric (integers and floats).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Int8(v) => Some(f64::from(v)),
            Value::Int16(v) => Some(f64::from(v)),
            Value::Int32(v) => Some(f64::from(v)),
            Value::Int64(v) => Some(v as f64),
            Value::Float32(v) => Some(f64::from(v)),
            Value::Float64(v) => Some(v),
            _ => None,
        }
    }

    /// The value as text when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A schema shared between many events.
pub type SharedSchema = Arc<Schema>;
