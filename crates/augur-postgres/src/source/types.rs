//! PostgreSQL types → Kafka Connect schemas and values, following Debezium's PostgreSQL
//! connector (`PostgresValueConverter`) and its `decimal.handling.mode`,
//! `time.precision.mode`, `binary.handling.mode`, `interval.handling.mode` and
//! `include.unknown.datatypes` options.
//!
//! Values arrive in PostgreSQL's text output format (pgoutput and `COPY` print the same text);
//! [`convert`] turns one into its Connect value.

use augur_core::connect::{Field, Schema, SchemaType, Value};
use base64::Engine as _;

use super::text::{self, DateValue, TimestampValue};

/// `decimal.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalHandling {
    /// `precise` (default): `org.apache.kafka.connect.data.Decimal` bytes, or
    /// `io.debezium.data.VariableScaleDecimal` for unconstrained `numeric`.
    #[default]
    Precise,
    /// `double`: a `double`.
    Double,
    /// `string`: the number as text.
    String,
}

/// `time.precision.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimePrecision {
    /// `adaptive` (default): milli- or microsecond Debezium types by column precision.
    #[default]
    Adaptive,
    /// `adaptive_time_microseconds`: like adaptive, but `time` is always `MicroTime`.
    AdaptiveTimeMicroseconds,
    /// `connect`: Kafka Connect's `Date`, `Time` and `Timestamp` logical types (milliseconds).
    Connect,
}

/// `binary.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BinaryHandling {
    /// `bytes` (default).
    #[default]
    Bytes,
    /// `base64`: a base64 string.
    Base64,
    /// `base64-url-safe`: a URL-safe base64 string.
    Base64UrlSafe,
    /// `hex`: a hexadecimal string.
    Hex,
}

/// `interval.handling.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntervalHandling {
    /// `numeric` (default): `io.debezium.time.MicroDuration` microseconds.
    #[default]
    Numeric,
    /// `string`: `io.debezium.time.Interval` ISO-8601 text.
    String,
}

/// The options that shape type mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeOptions {
    /// `decimal.handling.mode`.
    pub decimal: DecimalHandling,
    /// `time.precision.mode`.
    pub time: TimePrecision,
    /// `binary.handling.mode`.
    pub binary: BinaryHandling,
    /// `interval.handling.mode`.
    pub interval: IntervalHandling,
    /// `include.unknown.datatypes`: emit columns of unmapped types as their text bytes instead
    /// of leaving them out.
    pub include_unknown: bool,
    /// `unavailable.value.placeholder`: what an unchanged TOASTed value becomes.
    pub unavailable_placeholder: String,
    /// `money.fraction.digits`.
    pub money_fraction_digits: u32,
    /// Set while values are read by the snapshot: Debezium 3.6 prints `date` ±infinity
    /// differently there (through the JDBC driver) than in the stream.
    pub in_snapshot: bool,
    /// The per-column rules: which columns events carry, masks, truncation, key columns.
    pub columns: super::columns::ColumnRules,
    /// `hstore.handling.mode=map` (default `json`).
    pub hstore_map: bool,
}

impl Default for TypeOptions {
    fn default() -> Self {
        TypeOptions {
            decimal: DecimalHandling::Precise,
            time: TimePrecision::Adaptive,
            binary: BinaryHandling::Bytes,
            interval: IntervalHandling::Numeric,
            include_unknown: false,
            unavailable_placeholder: "__debezium_unavailable_value".into(),
            money_fraction_digits: 2,
            in_snapshot: false,
            columns: super::columns::ColumnRules::default(),
            hstore_map: false,
        }
    }
}

/// A PostgreSQL type, resolved far enough to map it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer` (and `serial`).
    Int4,
    /// `bigint`, `bigserial`, `oid`.
    Int8,
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `numeric`/`decimal`.
    Numeric,
    /// `money`.
    Money,
    /// Character types and other types Debezium maps to plain strings (`text`, `varchar`,
    /// `char`, `name`, `inet`, `cidr`, `macaddr`, ranges, …).
    Text,
    /// `bytea`.
    Bytea,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `time with time zone`.
    TimeTz,
    /// `timestamp`.
    Timestamp,
    /// `timestamp with time zone`.
    TimestampTz,
    /// `interval`.
    Interval,
    /// `uuid`.
    Uuid,
    /// `json`.
    Json,
    /// `jsonb`.
    Jsonb,
    /// `xml`.
    Xml,
    /// `tsvector`.
    Tsvector,
    /// `point`.
    Point,
    /// `bit(n)` and `bit varying(n)` (the length in the type modifier; none: unbounded).
    Bit,
    /// A user-defined enum with its labels in sort order.
    Enum(Vec<String>),
    /// `hstore` (the extension): a JSON document or a map, per `hstore.handling.mode`.
    Hstore,
    /// `ltree` (the extension): a string named `io.debezium.data.Ltree`.
    Ltree,
    /// A one-dimensional array of the element type.
    Array(Box<PgType>),
    /// A type augur does not map (named for messages).
    Unknown(String),
}

/// The built-in types, by OID. User-defined types (enums, domains, arrays of them) are
/// resolved from the catalog.
pub fn builtin(oid: u32) -> Option<PgType> {
    use PgType::*;
    Some(match oid {
        16 => Bool,
        17 => Bytea,
        18 | 19 | 25 | 1042 | 1043 | 650 | 869 | 829 | 774 => Text,
        20 | 26 => Int8,
        21 => Int2,
        23 => Int4,
        114 => Json,
        142 => Xml,
        700 => Float4,
        701 => Float8,
        790 => Money,
        1082 => Date,
        1083 => Time,
        1114 => Timestamp,
        1184 => TimestampTz,
        1186 => Interval,
        1266 => TimeTz,
        1700 => Numeric,
        2950 => Uuid,
        3802 => Jsonb,
        3614 => Tsvector,
        600 => Point,
        1560 | 1562 => Bit,
        1561 => Array(Box::new(Bit)),
        // Ranges print as text; Debezium maps them to strings.
        3904 | 3906 | 3908 | 3910 | 3912 | 3926 => Text,
        1000 => Array(Box::new(Bool)),
        1001 => Array(Box::new(Bytea)),
        1002 | 1009 | 1014 | 1015 | 1040 | 1041 | 651 => Array(Box::new(Text)),
        // Debezium has no mapping for arrays of these and leaves such columns out.
        1003 => Unknown("name[]".into()),
        791 => Unknown("money[]".into()),
        143 => Unknown("xml[]".into()),
        1187 => Unknown("interval[]".into()),
        1017 => Unknown("point[]".into()),
        1563 => Unknown("varbit[]".into()),
        1005 => Array(Box::new(Int2)),
        1007 => Array(Box::new(Int4)),
        1016 | 1028 => Array(Box::new(Int8)),
        1021 => Array(Box::new(Float4)),
        1022 => Array(Box::new(Float8)),
        1231 => Array(Box::new(Numeric)),
        1182 => Array(Box::new(Date)),
        1183 => Array(Box::new(Time)),
        1115 => Array(Box::new(Timestamp)),
        1185 => Array(Box::new(TimestampTz)),
        1270 => Array(Box::new(TimeTz)),
        2951 => Array(Box::new(Uuid)),
        199 => Array(Box::new(Json)),
        3807 => Array(Box::new(Jsonb)),
        _ => return None,
    })
}

/// Precision and scale of a `numeric(p,s)` type modifier; `None` for unconstrained `numeric`.
pub fn numeric_precision_scale(typmod: i32) -> Option<(i32, i32)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let precision = (t >> 16) & 0xffff;
    // PostgreSQL 15 stores the scale as an 11-bit signed number.
    let raw = t & 0x7ff;
    let scale = if raw & 0x400 != 0 { raw - 0x800 } else { raw };
    Some((precision, scale))
}

/// Fractional-second precision of a `time`/`timestamp` type modifier (6 when unset).
pub fn time_precision(typmod: i32) -> i32 {
    if typmod < 0 { 6 } else { typmod }
}

/// The Connect schema of a column of type `ty` (with modifier `typmod`), optional or not, or
/// `None` when the type is unmapped and `include.unknown.datatypes` is off.
pub fn schema_for(ty: &PgType, typmod: i32, opts: &TypeOptions) -> Option<Schema> {
    use PgType::*;
    let s = |t| Schema::new(t);
    Some(match ty {
        Bool => s(SchemaType::Boolean),
        Int2 => s(SchemaType::Int16),
        Int4 => s(SchemaType::Int32),
        Int8 => s(SchemaType::Int64),
        Float4 => s(SchemaType::Float32),
        Float8 => s(SchemaType::Float64),
        Numeric => numeric_schema(typmod, opts),
        Money => money_schema(opts),
        Text => s(SchemaType::String),
        Ltree => s(SchemaType::String).named("io.debezium.data.Ltree", Some(1)),
        Hstore if opts.hstore_map => {
            Schema::map(s(SchemaType::String), s(SchemaType::String).optional(true))
        }
        Hstore => s(SchemaType::String).named("io.debezium.data.Json", Some(1)),
        Bytea => match opts.binary {
            BinaryHandling::Bytes => s(SchemaType::Bytes),
            _ => s(SchemaType::String),
        },
        Date => date_schema(opts),
        Time => time_schema(typmod, opts),
        Timestamp => timestamp_schema(typmod, opts),
        TimestampTz => s(SchemaType::String).named("io.debezium.time.ZonedTimestamp", Some(1)),
        TimeTz => s(SchemaType::String).named("io.debezium.time.ZonedTime", Some(1)),
        Interval => interval_schema(opts),
        Uuid => s(SchemaType::String).named("io.debezium.data.Uuid", Some(1)),
        Json | Jsonb => s(SchemaType::String).named("io.debezium.data.Json", Some(1)),
        Xml => s(SchemaType::String).named("io.debezium.data.Xml", Some(1)),
        Tsvector => s(SchemaType::String).named("io.debezium.data.Tsvector", Some(1)),
        Point => point_schema(),
        Bit => match bit_length(typmod) {
            1 => s(SchemaType::Boolean),
            n => s(SchemaType::Bytes)
                .named("io.debezium.data.Bits", Some(1))
                .param("length", n.to_string()),
        },
        Enum(labels) => s(SchemaType::String)
            .named("io.debezium.data.Enum", Some(1))
            .param("allowed", labels.join(",")),
        // Debezium 3.6.3 types a bit array as its element (and sends null for it, measured).
        Array(elem) if **elem == Bit => schema_for(elem, typmod, opts)?,
        // Enum and tsvector elements are required in Debezium's array schema; others optional.
        Array(elem) => {
            let item = schema_for(elem, typmod, opts)?;
            let optional = !matches!(**elem, Enum(_) | Tsvector);
            Schema::array(item.optional(optional))
        }
        Unknown(_) => {
            if opts.include_unknown {
                s(SchemaType::Bytes)
            } else {
                return None;
            }
        }
    })
}

/// The schema of a `numeric` column under `decimal.handling.mode`.
fn numeric_schema(typmod: i32, opts: &TypeOptions) -> Schema {
    match opts.decimal {
        DecimalHandling::Double => Schema::new(SchemaType::Float64),
        DecimalHandling::String => Schema::new(SchemaType::String),
        DecimalHandling::Precise => match numeric_precision_scale(typmod) {
            Some((p, sc)) => decimal_schema(sc, Some(p)),
            None => variable_scale_decimal_schema(),
        },
    }
}

/// The schema of a `money` column under `decimal.handling.mode`.
fn money_schema(opts: &TypeOptions) -> Schema {
    match opts.decimal {
        DecimalHandling::Double => Schema::new(SchemaType::Float64),
        DecimalHandling::String => Schema::new(SchemaType::String),
        DecimalHandling::Precise => decimal_schema(opts.money_fraction_digits as i32, None),
    }
}

/// The schema of a `date` column under `time.precision.mode`.
fn date_schema(opts: &TypeOptions) -> Schema {
    let s = Schema::new(SchemaType::Int32);
    match opts.time {
        TimePrecision::Connect => s.named("org.apache.kafka.connect.data.Date", Some(1)),
        _ => s.named("io.debezium.time.Date", Some(1)),
    }
}

/// The schema of a `time` column under `time.precision.mode` and its fractional precision.
fn time_schema(typmod: i32, opts: &TypeOptions) -> Schema {
    let s = |t| Schema::new(t);
    match opts.time {
        TimePrecision::Connect => {
            s(SchemaType::Int32).named("org.apache.kafka.connect.data.Time", Some(1))
        }
        TimePrecision::Adaptive if time_precision(typmod) <= 3 => {
            s(SchemaType::Int32).named("io.debezium.time.Time", Some(1))
        }
        _ => s(SchemaType::Int64).named("io.debezium.time.MicroTime", Some(1)),
    }
}

/// The schema of a `timestamp` column under `time.precision.mode` and its fractional precision.
fn timestamp_schema(typmod: i32, opts: &TypeOptions) -> Schema {
    let s = Schema::new(SchemaType::Int64);
    match opts.time {
        TimePrecision::Connect => s.named("org.apache.kafka.connect.data.Timestamp", Some(1)),
        _ if time_precision(typmod) <= 3 => s.named("io.debezium.time.Timestamp", Some(1)),
        _ => s.named("io.debezium.time.MicroTimestamp", Some(1)),
    }
}

/// The schema of an `interval` column under `interval.handling.mode`.
fn interval_schema(opts: &TypeOptions) -> Schema {
    match opts.interval {
        IntervalHandling::Numeric => {
            Schema::new(SchemaType::Int64).named("io.debezium.time.MicroDuration", Some(1))
        }
        IntervalHandling::String => {
            Schema::new(SchemaType::String).named("io.debezium.time.Interval", Some(1))
        }
    }
}

/// `org.apache.kafka.connect.data.Decimal` with `scale` (and Debezium's
/// `connect.decimal.precision` when the column has one).
pub fn decimal_schema(scale: i32, precision: Option<i32>) -> Schema {
    let mut s = Schema::new(SchemaType::Bytes)
        .named("org.apache.kafka.connect.data.Decimal", Some(1))
        .param("scale", scale.to_string());
    if let Some(p) = precision {
        s = s.param("connect.decimal.precision", p.to_string());
    }
    s
}

/// `io.debezium.data.geometry.Point`: `x`, `y`, the WKB bytes and an SRID.
pub fn point_schema() -> Schema {
    Schema::structure(
        Some("io.debezium.data.geometry.Point".into()),
        vec![
            Field::new("x", Schema::new(SchemaType::Float64)),
            Field::new("y", Schema::new(SchemaType::Float64)),
            Field::new("wkb", Schema::new(SchemaType::Bytes).optional(true)),
            Field::new("srid", Schema::new(SchemaType::Int32).optional(true)),
        ],
    )
    .named("io.debezium.data.geometry.Point", Some(1))
    .with_doc("Geometry (POINT)")
}

/// `io.debezium.data.VariableScaleDecimal`: a struct of `scale` and the unscaled `value`.
pub fn variable_scale_decimal_schema() -> Schema {
    Schema::structure(
        Some("io.debezium.data.VariableScaleDecimal".into()),
        vec![
            Field::new("scale", Schema::new(SchemaType::Int32)),
            Field::new("value", Schema::new(SchemaType::Bytes)),
        ],
    )
    .named("io.debezium.data.VariableScaleDecimal", Some(1))
    .with_doc("Variable scaled decimal")
}

/// Why a value could not be converted (never contains the value itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The text is not the text output of the column's type.
    #[error("cannot parse {type_name} text output")]
    Unparsable {
        /// The SQL type the text should be the output of, e.g. `timestamptz`.
        type_name: &'static str,
    },
}

fn bad(type_name: &'static str) -> ConvertError {
    ConvertError::Unparsable { type_name }
}

/// Converts one value from PostgreSQL text output to its Connect value under `schema` (which
/// [`schema_for`] made for the same type and options).
pub fn convert(
    ty: &PgType,
    typmod: i32,
    text: &str,
    opts: &TypeOptions,
) -> Result<Value, ConvertError> {
    use PgType::*;
    Ok(match ty {
        Bool => match text {
            "t" => Value::Boolean(true),
            "f" => Value::Boolean(false),
            _ => return Err(bad("boolean")),
        },
        Int2 => Value::Int16(text.parse().map_err(|_| bad("smallint"))?),
        Int4 => Value::Int32(text.parse().map_err(|_| bad("integer"))?),
        Int8 => Value::Int64(text.parse().map_err(|_| bad("bigint"))?),
        Float4 => Value::Float32(parse_float(text).ok_or_else(|| bad("real"))? as f32),
        Float8 => Value::Float64(parse_float(text).ok_or_else(|| bad("double precision"))?),
        Numeric => convert_numeric(text, numeric_precision_scale(typmod).map(|(_, s)| s), opts)?,
        Money => convert_money(text, opts)?,
        Text | Ltree => Value::String(text.to_string()),
        Hstore => super::hstore::value(text, opts.hstore_map).ok_or_else(|| bad("hstore"))?,
        Bytea => {
            let bytes = text::parse_bytea_hex(text).ok_or_else(|| bad("bytea"))?;
            binary_value(bytes, opts.binary)
        }
        Date => convert_date(text, opts)?,
        Time => convert_time(text, typmod, opts)?,
        Timestamp => convert_timestamp(text, typmod, opts)?,
        TimestampTz => convert_timestamptz(text, typmod)?,
        TimeTz => convert_timetz(text)?,
        Interval => convert_interval(text, opts)?,
        Uuid | Json | Jsonb | Xml | Tsvector | Enum(_) => Value::String(text.to_string()),
        Point => convert_point(text)?,
        Bit => convert_bits(text, typmod)?,
        Array(elem) if **elem == Bit => Value::Null,
        Array(elem) => convert_array(elem, typmod, text, opts)?,
        Unknown(name) => Value::Bytes(unknown_text(name, text).into_bytes()),
    })
}

/// A `money` value: the digits, point and sign of its text (parentheses meaning negative).
fn convert_money(text: &str, opts: &TypeOptions) -> Result<Value, ConvertError> {
    let cleaned: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    let cleaned = if text.contains('(') {
        format!("-{cleaned}")
    } else {
        cleaned
    };
    convert_numeric(&cleaned, Some(opts.money_fraction_digits as i32), opts)
}

/// The text Debezium sends for a type it does not map (`include.unknown.datatypes`): the
/// JDBC driver's. Its geometric types print every coordinate as a Java double (`(1.0,1.0)`
/// for PostgreSQL's `(1,1)`); other types print the server's text.
fn unknown_text(name: &str, text: &str) -> String {
    if !matches!(
        name,
        "box" | "circle" | "line" | "lseg" | "path" | "polygon"
    ) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
        out.push_str(&rest[..start]);
        let len = rest[start..]
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(rest.len() - start);
        let token = &rest[start..start + len];
        match token.parse::<f64>() {
            Ok(v) => out.push_str(&augur_core::java::java_double(v)),
            Err(_) => out.push_str(token),
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// A `date` value as days since the epoch.
fn convert_date(text: &str, opts: &TypeOptions) -> Result<Value, ConvertError> {
    convert_date_via(text, opts.in_snapshot)
}

/// A `date` value; `driver`: read through the JDBC driver (the snapshot, and array elements
/// everywhere), whose ±infinity sentinels differ from the stream's.
fn convert_date_via(text: &str, driver: bool) -> Result<Value, ConvertError> {
    // ±infinity: the day numbers Debezium 3.6.3 prints (measured; the snapshot goes through
    // the JDBC driver's sentinel dates, the stream through its own constants).
    Ok(match text::parse_date(text).ok_or_else(|| bad("date"))? {
        DateValue::Days(d) => Value::Int32(clamp_i32(d)),
        DateValue::PosInfinity if driver => Value::Int32(-622_191_234),
        DateValue::NegInfinity if driver => Value::Int32(-625_821_272),
        DateValue::PosInfinity => Value::Int32(-2_147_472_692),
        DateValue::NegInfinity => Value::Int32(-2_147_472_691),
    })
}

/// A `time` value in milli- or microseconds since midnight, as [`time_schema`] says.
fn convert_time(text: &str, typmod: i32, opts: &TypeOptions) -> Result<Value, ConvertError> {
    let micros = text::parse_time_micros(text).ok_or_else(|| bad("time"))?;
    Ok(match opts.time {
        TimePrecision::Adaptive if time_precision(typmod) <= 3 => {
            Value::Int32((micros / 1000) as i32)
        }
        TimePrecision::Connect => Value::Int32((micros / 1000) as i32),
        _ => Value::Int64(micros),
    })
}

/// A `timestamp` value in milli- or microseconds since the epoch, as [`timestamp_schema`] says.
fn convert_timestamp(text: &str, typmod: i32, opts: &TypeOptions) -> Result<Value, ConvertError> {
    let micros = match text::parse_timestamp(text).ok_or_else(|| bad("timestamp"))? {
        TimestampValue::Micros(m) => m,
        // pgJDBC's sentinels for ±infinity, as Debezium passes them on.
        TimestampValue::PosInfinity => 9_223_372_036_825_200_000,
        TimestampValue::NegInfinity => -9_223_372_036_832_400_000,
    };
    let millis_mode = opts.time == TimePrecision::Connect || time_precision(typmod) <= 3;
    Ok(Value::Int64(if millis_mode {
        micros.div_euclid(1000) as i64
    } else {
        java_epoch_micros(micros)
    }))
}

/// Microseconds since the epoch as Debezium computes them (`Conversions.toEpochMicros`:
/// `TimeUnit.SECONDS.toMicros(seconds) + nanos / 1000`): exact within `i64`; beyond it (the
/// last ~29 years PostgreSQL's `timestamp` allows) the seconds saturate and the sum wraps, as
/// Java's `long` arithmetic does.
fn java_epoch_micros(micros: i128) -> i64 {
    let (secs, frac) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let whole =
        i64::try_from(secs * 1_000_000).unwrap_or(if secs > 0 { i64::MAX } else { i64::MIN });
    whole.wrapping_add(frac as i64)
}

/// A `timestamptz` value as a zoned timestamp string (or `infinity`/`-infinity`).
fn convert_timestamptz(text: &str, typmod: i32) -> Result<Value, ConvertError> {
    Ok(
        match text::parse_timestamp(text).ok_or_else(|| bad("timestamptz"))? {
            TimestampValue::Micros(m) => {
                Value::String(text::format_zoned_timestamp(m, time_precision(typmod)))
            }
            TimestampValue::PosInfinity => Value::String("infinity".into()),
            TimestampValue::NegInfinity => Value::String("-infinity".into()),
        },
    )
}

/// A `timetz` value as the UTC time of day followed by `Z`.
fn convert_timetz(text: &str) -> Result<Value, ConvertError> {
    let (time, offset) = text::split_offset(text).ok_or_else(|| bad("timetz"))?;
    let micros = text::parse_time_micros(time).ok_or_else(|| bad("timetz"))?;
    let utc = (micros - offset * 1_000_000).rem_euclid(86_400_000_000);
    let mut s = String::with_capacity(20);
    text::push_time_trimmed(&mut s, utc);
    s.push('Z');
    Ok(Value::String(s))
}

/// An `interval` value as its text or as microseconds, under `interval.handling.mode`.
fn convert_interval(text: &str, opts: &TypeOptions) -> Result<Value, ConvertError> {
    let (months, days, micros) = text::parse_iso_interval(text).ok_or_else(|| bad("interval"))?;
    Ok(match opts.interval {
        IntervalHandling::String => Value::String(debezium_interval_text(months, days, micros)),
        IntervalHandling::Numeric => {
            // Debezium's MicroDuration counts a month as 365.25 / 12 days.
            let month_micros = 30.4375f64 * 86_400_000_000f64;
            let total = (months as f64 * month_micros) as i64 + days * 86_400_000_000 + micros;
            Value::Int64(total)
        }
    })
}

/// `interval.handling.mode=string` as Debezium writes it (`Interval.toIsoString`): every
/// component, `P{y}Y{m}M{d}DT{h}H{m}M{s}S`, each signed as PostgreSQL splits the interval
/// (years and months from the months, hours, minutes and seconds from the time, truncated
/// toward zero). Seconds are pgjdbc's `wholeSeconds + micros / 1e6` as a double, through
/// `BigDecimal.valueOf` (the double's shortest digits), cut to 9 decimals, trailing zeros
/// stripped: `P0Y1M0DT0H0M0S`, `P1Y2M3DT4H5M6.78S`.
fn debezium_interval_text(months: i64, days: i64, micros: i64) -> String {
    let (hours, rest) = (micros / 3_600_000_000, micros % 3_600_000_000);
    let (minutes, rest) = (rest / 60_000_000, rest % 60_000_000);
    let seconds = (rest / 1_000_000) as f64 + (rest % 1_000_000) as f64 / 1e6;
    let mut secs = if seconds == 0.0 {
        "0".to_string()
    } else {
        format!("{seconds}")
    };
    if let Some(dot) = secs.find('.') {
        secs.truncate((dot + 10).min(secs.len()));
        let kept = secs.trim_end_matches('0').trim_end_matches('.').len();
        secs.truncate(kept);
    }
    format!(
        "P{}Y{}M{days}DT{hours}H{minutes}M{secs}S",
        months / 12,
        months % 12
    )
}

/// The length Debezium gives a `bit`/`varbit` column: its modifier, or `Integer.MAX_VALUE`
/// for an unbounded `varbit` (pgjdbc's display size of an unknown length).
fn bit_length(typmod: i32) -> i32 {
    if typmod < 0 { i32::MAX } else { typmod }
}

/// A bit string as Debezium writes it: a boolean for length 1, else `io.debezium.data.Bits`
/// bytes — the string's last character is bit 0, in little-endian bytes as Java's
/// `BitSet.toByteArray` gives them (no trailing zero bytes: `'101'` → `[0x05]`).
fn convert_bits(text: &str, typmod: i32) -> Result<Value, ConvertError> {
    if text.bytes().any(|b| b != b'0' && b != b'1') {
        return Err(bad("bit string"));
    }
    if bit_length(typmod) == 1 {
        return Ok(Value::Boolean(text.contains('1')));
    }
    let mut bytes = vec![0u8; text.len().div_ceil(8)];
    for (i, b) in text.bytes().rev().enumerate() {
        if b == b'1' {
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    bytes.truncate(used);
    Ok(Value::Bytes(bytes))
}

/// A `point` value as the [`point_schema`] struct: `x`, `y`, its WKB and no SRID.
fn convert_point(text: &str) -> Result<Value, ConvertError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| bad("point"))?;
    let (x, y) = inner.split_once(',').ok_or_else(|| bad("point"))?;
    let x: f64 = parse_float(x.trim()).ok_or_else(|| bad("point"))?;
    let y: f64 = parse_float(y.trim()).ok_or_else(|| bad("point"))?;
    let mut wkb = vec![1u8, 1, 0, 0, 0];
    wkb.extend_from_slice(&x.to_le_bytes());
    wkb.extend_from_slice(&y.to_le_bytes());
    Ok(Value::Struct(vec![
        Value::Float64(x),
        Value::Float64(y),
        Value::Bytes(wkb),
        Value::Null,
    ]))
}

/// An array value, each element converted as type `elem` (nulls kept).
fn convert_array(
    elem: &PgType,
    typmod: i32,
    text: &str,
    opts: &TypeOptions,
) -> Result<Value, ConvertError> {
    let Some(items) = text::parse_array(text) else {
        // Debezium hands each top-level element of a multi-dimensional array to the element
        // converter, which cannot take an array and writes null: one null per element. The
        // capture goes on instead of stopping on the value.
        let n = text::nested_array_len(text).ok_or_else(|| bad("array"))?;
        warn_multi_dimensional();
        return Ok(Value::Array(vec![Value::Null; n]));
    };
    // A special value has no BigDecimal: Debezium writes null for the whole array.
    let special = |s: &String| matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity");
    if *elem == PgType::Numeric && items.iter().flatten().any(special) {
        return Ok(Value::Null);
    }
    // A null among required elements (enums, tsvectors) makes Debezium write null for all.
    if matches!(elem, PgType::Enum(_) | PgType::Tsvector) && items.iter().any(Option::is_none) {
        return Ok(Value::Null);
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(match item {
            None => Value::Null,
            Some(s) => convert_element(elem, typmod, &s, opts)?,
        });
    }
    Ok(Value::Array(out))
}

/// An array element. Debezium reads elements through the JDBC driver in the stream too, with
/// what that costs (measured): a date's ±infinity is the driver's sentinel, a time keeps
/// milliseconds only, a time with time zone whole seconds only.
fn convert_element(
    elem: &PgType,
    typmod: i32,
    text: &str,
    opts: &TypeOptions,
) -> Result<Value, ConvertError> {
    match elem {
        PgType::Date => convert_date_via(text, true),
        PgType::Time => Ok(match convert_time(text, typmod, opts)? {
            Value::Int64(us) => Value::Int64(us / 1000 * 1000),
            other => other,
        }),
        PgType::TimeTz => {
            let whole = match text.find('.') {
                Some(dot) => {
                    let zone = text[dot..]
                        .find(['+', '-', 'Z'])
                        .map_or(text.len(), |i| dot + i);
                    format!("{}{}", &text[..dot], &text[zone..])
                }
                None => text.to_string(),
            };
            convert_timetz(&whole)
        }
        _ => convert(elem, typmod, text, opts),
    }
}

/// Says once per process that multi-dimensional arrays arrive as nulls (never the value).
fn warn_multi_dimensional() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "a multi-dimensional array value is captured as one null per top-level element, as Debezium writes it"
        );
    }
}

/// What an unchanged TOASTed value of this type becomes, as Debezium 3.6.3 prints it
/// (measured): the placeholder as a string for text-like types, its bytes for `bytea`, a
/// one-element array for string arrays, the placeholder's byte values for integer and date
/// arrays, a name-based UUID for `uuid[]`, and null where Debezium has no placeholder
/// (`numeric`, `numeric[]`, `timestamptz[]`, …).
pub fn unavailable_value(ty: &PgType, opts: &TypeOptions) -> Value {
    let p = &opts.unavailable_placeholder;
    let bytes: Vec<u8> = match p.strip_prefix("hex:") {
        Some(h) => {
            text::parse_bytea_hex(&format!("\\x{h}")).unwrap_or_else(|| p.as_bytes().to_vec())
        }
        None => p.as_bytes().to_vec(),
    };
    match ty {
        // In hex mode Debezium writes the placeholder text itself, not its hex.
        PgType::Bytea if opts.binary == BinaryHandling::Hex => Value::String(p.clone()),
        PgType::Bytea => binary_value(bytes, opts.binary),
        PgType::Unknown(_) => Value::Bytes(bytes),
        PgType::Text
        | PgType::Json
        | PgType::Jsonb
        | PgType::Xml
        | PgType::Enum(_)
        | PgType::Uuid
        | PgType::Tsvector
        | PgType::Ltree => Value::String(p.clone()),
        PgType::Hstore if !opts.hstore_map => Value::String(p.clone()),
        PgType::Array(elem) => match &**elem {
            PgType::Text | PgType::Json | PgType::Jsonb | PgType::Enum(_) => {
                Value::Array(vec![Value::String(p.clone())])
            }
            PgType::Int2 => {
                Value::Array(bytes.iter().map(|b| Value::Int16(i16::from(*b))).collect())
            }
            PgType::Int4 | PgType::Date => {
                Value::Array(bytes.iter().map(|b| Value::Int32(i32::from(*b))).collect())
            }
            PgType::Int8 => {
                Value::Array(bytes.iter().map(|b| Value::Int64(i64::from(*b))).collect())
            }
            PgType::Uuid => Value::Array(vec![Value::String(name_uuid(&bytes))]),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// Java's `UUID.nameUUIDFromBytes`: an MD5-based (version 3) UUID.
fn name_uuid(bytes: &[u8]) -> String {
    let mut d = md5::compute(bytes).0;
    d[6] = (d[6] & 0x0f) | 0x30;
    d[8] = (d[8] & 0x3f) | 0x80;
    let h: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The placeholder value Debezium gives a column whose default is a function call (`now()`,
/// `nextval(…)`), and a required column with no value: its type's zero.
pub fn zero_value(ty: &PgType, typmod: i32, schema: &Schema, opts: &TypeOptions) -> Value {
    match (ty, schema.ty) {
        (PgType::TimestampTz, SchemaType::String) => {
            Value::String(text::format_zoned_timestamp(0, time_precision(typmod)))
        }
        (PgType::TimeTz, SchemaType::String) => Value::String("00:00Z".into()),
        (PgType::Uuid, SchemaType::String) => {
            Value::String("00000000-0000-0000-0000-000000000000".into())
        }
        (PgType::Json | PgType::Jsonb, SchemaType::String) => Value::String("{}".into()),
        _ => {
            let _ = opts;
            structural_zero(schema)
        }
    }
}

/// The zero of a Connect schema (0, 0.0, false, "", empty bytes, empty array).
pub fn structural_zero(schema: &Schema) -> Value {
    match schema.ty {
        SchemaType::Int8 => Value::Int8(0),
        SchemaType::Int16 => Value::Int16(0),
        SchemaType::Int32 => Value::Int32(0),
        SchemaType::Int64 => Value::Int64(0),
        SchemaType::Float32 => Value::Float32(0.0),
        SchemaType::Float64 => Value::Float64(0.0),
        SchemaType::Boolean => Value::Boolean(false),
        SchemaType::String => Value::String(String::new()),
        SchemaType::Bytes => Value::Bytes(if schema.parameter("scale").is_some() {
            vec![0]
        } else {
            Vec::new()
        }),
        SchemaType::Array => Value::Array(Vec::new()),
        SchemaType::Map => Value::Map(Vec::new()),
        SchemaType::Struct => Value::Struct(
            schema
                .fields
                .iter()
                .map(|f| structural_zero(&f.schema))
                .collect(),
        ),
    }
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn binary_value(bytes: Vec<u8>, mode: BinaryHandling) -> Value {
    match mode {
        BinaryHandling::Bytes => Value::Bytes(bytes),
        BinaryHandling::Base64 => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        BinaryHandling::Base64UrlSafe => {
            Value::String(base64::engine::general_purpose::URL_SAFE.encode(bytes))
        }
        BinaryHandling::Hex => Value::String(bytes.iter().map(|b| format!("{b:02x}")).collect()),
    }
}

fn convert_numeric(
    text: &str,
    fixed_scale: Option<i32>,
    opts: &TypeOptions,
) -> Result<Value, ConvertError> {
    match opts.decimal {
        DecimalHandling::Double => Ok(Value::Float64(match text {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => text.parse().map_err(|_| bad("numeric"))?,
        })),
        DecimalHandling::String => Ok(Value::String(match text {
            "NaN" => "NAN".to_string(),
            "Infinity" => "POSITIVE_INFINITY".to_string(),
            "-Infinity" => "NEGATIVE_INFINITY".to_string(),
            _ => match fixed_scale {
                // Rescaled to the column scale, as BigDecimal prints it.
                Some(s) if s > 0 => rescale_text(text, s),
                _ => text.to_string(),
            },
        })),
        DecimalHandling::Precise => {
            // A Decimal cannot hold NaN or infinities: Debezium emits null for them.
            if matches!(text, "NaN" | "Infinity" | "-Infinity") {
                return Ok(Value::Null);
            }
            let (unscaled, scale) = unscaled_decimal(text).ok_or_else(|| bad("numeric"))?;
            match fixed_scale {
                Some(s) => {
                    let bytes = rescale(text, scale, s).ok_or_else(|| bad("numeric"))?;
                    Ok(Value::Bytes(bytes))
                }
                None => {
                    // VariableScaleDecimal strips trailing zeros (never below scale 0).
                    let _ = (unscaled, scale);
                    let (neg, digits) = match text.strip_prefix('-') {
                        Some(d) => (true, d),
                        None => (false, text),
                    };
                    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
                    let frac = frac.trim_end_matches('0');
                    let all = [whole, frac].concat();
                    Ok(Value::Struct(vec![
                        Value::Int32(frac.len() as i32),
                        Value::Bytes(twos_complement(neg, &all)),
                    ]))
                }
            }
        }
    }
}

/// Splits decimal text into the unscaled value as big-endian two's-complement bytes (Java's
/// `BigInteger.toByteArray`) and the scale.
pub fn unscaled_decimal(text: &str) -> Option<(Vec<u8>, i32)> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let all: String = [whole, frac].concat();
    if !all.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((twos_complement(neg, &all), frac.len() as i32))
}

fn rescale_text(text: &str, scale: i32) -> String {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut f = frac.to_string();
    while (f.len() as i32) < scale {
        f.push('0');
    }
    f.truncate(scale as usize);
    format!("{whole}.{f}")
}

fn rescale(text: &str, have: i32, want: i32) -> Option<Vec<u8>> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut all: String = [whole, frac].concat();
    if want >= have {
        all.extend(std::iter::repeat_n('0', (want - have) as usize));
    } else {
        // Text output of numeric(p,s) has exactly s digits; a longer scale would mean the
        // column changed. Truncate toward zero like BigDecimal.setScale(ROUND_DOWN) would not
        // lose integer digits.
        all.truncate(all.len() - (have - want) as usize);
    }
    Some(twos_complement(neg, &all))
}

fn twos_complement(neg: bool, decimal_digits: &str) -> Vec<u8> {
    // Magnitude in base 256, little-endian while building.
    let mut mag: Vec<u8> = Vec::with_capacity(decimal_digits.len() / 2 + 1);
    for d in decimal_digits.bytes() {
        let mut carry = u32::from(d - b'0');
        for byte in mag.iter_mut() {
            let v = u32::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    while mag.last() == Some(&0) {
        mag.pop();
    }
    if mag.is_empty() {
        return vec![0];
    }
    mag.reverse(); // big-endian
    if !neg {
        if mag[0] & 0x80 != 0 {
            mag.insert(0, 0);
        }
        return mag;
    }
    // Negate: invert and add one.
    let mut out: Vec<u8> = mag.iter().map(|b| !b).collect();
    for byte in out.iter_mut().rev() {
        let (v, overflow) = byte.overflowing_add(1);
        *byte = v;
        if !overflow {
            break;
        }
    }
    if out[0] & 0x80 == 0 {
        out.insert(0, 0xff);
    }
    // Minimal form: drop redundant leading 0xff bytes.
    while out.len() > 1 && out[0] == 0xff && out[1] & 0x80 != 0 {
        out.remove(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &Value) -> String {
        match v {
            Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
            other => panic!("not bytes: {other:?}"),
        }
    }

    #[test]
    fn geometric_types_print_as_the_jdbc_driver_prints_them() {
        assert_eq!(unknown_text("box", "(1,1),(0,0)"), "(1.0,1.0),(0.0,0.0)");
        assert_eq!(unknown_text("circle", "<(0,0),2>"), "<(0.0,0.0),2.0>");
        assert_eq!(unknown_text("line", "{1,-1,0}"), "{1.0,-1.0,0.0}");
        assert_eq!(
            unknown_text("path", "[(0.5,1e+20),(-2.25,1e-05)]"),
            "[(0.5,1.0E20),(-2.25,1.0E-5)]"
        );
        assert_eq!(unknown_text("pg_lsn", "16/B374D848"), "16/B374D848");
    }

    #[test]
    fn a_numeric_array_holding_nan_is_null_in_every_decimal_mode() {
        let numeric_arr = PgType::Array(Box::new(PgType::Numeric));
        for mode in [
            DecimalHandling::Precise,
            DecimalHandling::Double,
            DecimalHandling::String,
        ] {
            let opts = TypeOptions {
                decimal: mode,
                ..TypeOptions::default()
            };
            for text in ["{1.5,NaN}", "{Infinity}", "{-Infinity,NULL}"] {
                let v = convert(&numeric_arr, -1, text, &opts).unwrap();
                assert_eq!(v, Value::Null, "{text} {mode:?}");
            }
            let v = convert(&numeric_arr, -1, "{1.5,NULL}", &opts).unwrap();
            assert!(matches!(v, Value::Array(ref a) if a.len() == 2), "{v:?}");
        }
    }

    #[test]
    fn an_unchanged_bytea_in_hex_mode_is_the_placeholder_text() {
        let opts = TypeOptions {
            binary: BinaryHandling::Hex,
            ..TypeOptions::default()
        };
        let v = unavailable_value(&PgType::Bytea, &opts);
        assert_eq!(v, Value::String(opts.unavailable_placeholder.clone()));
    }

    #[test]
    fn bit_strings_are_debeziums_bits() {
        let o = TypeOptions::default();
        let bits = |text: &str, typmod: i32| convert(&PgType::Bit, typmod, text, &o).unwrap();
        assert_eq!(bits("101", 3), Value::Bytes(vec![0x05]));
        assert_eq!(bits("000", 3), Value::Bytes(vec![]));
        assert_eq!(bits("1000000001", 10), Value::Bytes(vec![0x01, 0x02]));
        assert_eq!(bits("0000000100000000", 16), Value::Bytes(vec![0x00, 0x01]));
        assert_eq!(bits("1", 1), Value::Boolean(true));
        assert_eq!(bits("0", 1), Value::Boolean(false));
        assert_eq!(bits("11", -1), Value::Bytes(vec![0x03]));
        assert!(convert(&PgType::Bit, 3, "1x1", &o).is_err());
        let schema = schema_for(&PgType::Bit, 3, &o).unwrap();
        assert_eq!(schema.name.as_deref(), Some("io.debezium.data.Bits"));
        assert_eq!(schema.parameter("length"), Some("3"));
        let unbounded = schema_for(&PgType::Bit, -1, &o).unwrap();
        assert_eq!(unbounded.parameter("length"), Some("2147483647"));
        assert_eq!(
            schema_for(&PgType::Bit, 1, &o).unwrap().ty,
            SchemaType::Boolean
        );
    }

    #[test]
    fn timestamps_at_postgresqls_maximum_keep_their_year() {
        let o = TypeOptions::default();
        let tz = convert(
            &PgType::TimestampTz,
            -1,
            "294276-12-31 23:59:59.999999+00",
            &o,
        );
        assert_eq!(
            tz.unwrap(),
            Value::String("+294276-12-31T23:59:59.999999Z".into())
        );
        let ms = convert(&PgType::Timestamp, 3, "294276-12-31 23:59:59.999", &o);
        assert_eq!(ms.unwrap(), Value::Int64(9_224_318_015_999_999));
        // Beyond i64 microseconds: Debezium's saturating seconds plus the wrapping fraction.
        let us = convert(&PgType::Timestamp, -1, "294276-12-31 23:59:59.999999", &o);
        assert_eq!(us.unwrap(), Value::Int64(i64::MAX.wrapping_add(999_999)));
        let d = convert(&PgType::Date, -1, "5874897-12-31", &o);
        assert!(matches!(d, Ok(Value::Int32(n)) if n > 0), "{d:?}");
    }

    #[test]
    fn intervals_in_string_mode_write_every_component_as_debezium_does() {
        let cases = [
            ("P1M", "P0Y1M0DT0H0M0S"),
            ("P1Y2M3DT4H5M6.78S", "P1Y2M3DT4H5M6.78S"),
            ("PT0S", "P0Y0M0DT0H0M0S"),
            ("P-1Y-2M3DT-4H-5M-6.5S", "P-1Y-2M3DT-4H-5M-6.5S"),
            ("PT20.999999S", "P0Y0M0DT0H0M20.999999S"),
            ("PT0.000001S", "P0Y0M0DT0H0M0.000001S"),
            ("PT-0.5S", "P0Y0M0DT0H0M-0.5S"),
            ("P100Y", "P100Y0M0DT0H0M0S"),
            ("PT27H", "P0Y0M0DT27H0M0S"),
        ];
        let opts = TypeOptions {
            interval: IntervalHandling::String,
            ..TypeOptions::default()
        };
        for (pg, want) in cases {
            let v = convert(&PgType::Interval, -1, pg, &opts).unwrap();
            assert_eq!(v, Value::String(want.into()), "{pg}");
        }
    }

    #[test]
    fn decimals_match_java_biginteger_bytes() {
        assert_eq!(twos_complement(false, "0"), vec![0]);
        assert_eq!(twos_complement(false, "127"), vec![0x7f]);
        assert_eq!(twos_complement(false, "128"), vec![0x00, 0x80]);
        assert_eq!(twos_complement(true, "1"), vec![0xff]);
        assert_eq!(twos_complement(true, "128"), vec![0x80]);
        assert_eq!(twos_complement(true, "129"), vec![0xff, 0x7f]);
        assert_eq!(twos_complement(false, "1234567"), vec![0x12, 0xd6, 0x87]);
        let opts = TypeOptions::default();
        // numeric(10,2) 12345.67 → unscaled 1234567 → "EtaH".
        let v = convert(&PgType::Numeric, (10 << 16 | 2) + 4, "12345.67", &opts).unwrap();
        assert_eq!(b64(&v), "EtaH");
        let v = convert(&PgType::Numeric, -1, "-1.50", &opts).unwrap();
        assert_eq!(
            v,
            Value::Struct(vec![Value::Int32(1), Value::Bytes(vec![0xf1])])
        );
        // Measured Debezium output: 1.50 → {scale 1, "Dw=="}, -123.45 → {2, "z8c="}, 100 → {0, "ZA=="}.
        let v = convert(&PgType::Numeric, -1, "1.50", &opts).unwrap();
        assert_eq!(
            v,
            Value::Struct(vec![Value::Int32(1), Value::Bytes(vec![0x0f])])
        );
        let v = convert(&PgType::Numeric, -1, "-123.45", &opts).unwrap();
        assert_eq!(
            v,
            Value::Struct(vec![Value::Int32(2), Value::Bytes(vec![0xcf, 0xc7])])
        );
        let v = convert(&PgType::Numeric, -1, "100", &opts).unwrap();
        assert_eq!(
            v,
            Value::Struct(vec![Value::Int32(0), Value::Bytes(vec![0x64])])
        );
        assert_eq!(
            name_uuid(b"__debezium_unavailable_value"),
            "b68a35a7-17ad-35b3-af2a-ae46edb4545a"
        );
    }

    #[test]
    fn schemas_follow_time_precision_mode() {
        let mut opts = TypeOptions::default();
        let t = schema_for(&PgType::Timestamp, 3, &opts).unwrap();
        assert_eq!(t.name.as_deref(), Some("io.debezium.time.Timestamp"));
        let t = schema_for(&PgType::Timestamp, -1, &opts).unwrap();
        assert_eq!(t.name.as_deref(), Some("io.debezium.time.MicroTimestamp"));
        opts.time = TimePrecision::Connect;
        let t = schema_for(&PgType::Timestamp, -1, &opts).unwrap();
        assert_eq!(
            t.name.as_deref(),
            Some("org.apache.kafka.connect.data.Timestamp")
        );
        assert_eq!(
            convert(&PgType::Timestamp, -1, "1970-01-01 00:00:01.999999", &opts).unwrap(),
            Value::Int64(1999)
        );
    }

    #[test]
    fn unknown_types_are_left_out_unless_asked_for() {
        let mut opts = TypeOptions::default();
        assert!(schema_for(&PgType::Unknown("tsvector".into()), -1, &opts).is_none());
        opts.include_unknown = true;
        assert_eq!(
            schema_for(&PgType::Unknown("tsvector".into()), -1, &opts)
                .unwrap()
                .ty,
            SchemaType::Bytes
        );
    }

    #[test]
    fn bad_text_is_an_error_not_a_panic() {
        let opts = TypeOptions::default();
        for (ty, txt) in [
            (PgType::Int4, "x"),
            (PgType::Bool, "maybe"),
            (PgType::Date, "2024-99-01"),
            (PgType::Numeric, "1.2.3"),
            (PgType::Array(Box::new(PgType::Int4)), "{1,"),
            (PgType::Bytea, "zz"),
        ] {
            assert!(convert(&ty, -1, txt, &opts).is_err(), "{ty:?} {txt}");
        }
    }

    #[test]
    fn errors_name_the_type_not_the_value() {
        let opts = TypeOptions::default();
        let e = convert(&PgType::TimestampTz, -1, "secret-ish", &opts).unwrap_err();
        assert_eq!(
            e,
            ConvertError::Unparsable {
                type_name: "timestamptz"
            }
        );
        assert_eq!(e.to_string(), "cannot parse timestamptz text output");
        let e = convert(&PgType::Array(Box::new(PgType::Int8)), -1, "{1,x}", &opts).unwrap_err();
        assert_eq!(e.to_string(), "cannot parse bigint text output");
    }
}
