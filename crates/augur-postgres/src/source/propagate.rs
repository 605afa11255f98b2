//! `column.propagate.source.type` and `datatype.propagate.source.type`: a column's source type
//! name, length, scale and name as `__debezium.source.column.*` schema parameters, with the
//! length and scale the PostgreSQL JDBC driver reports (Debezium takes them from it).

/// The parameter names, in Debezium's order.
const TYPE: &str = "__debezium.source.column.type";
const LENGTH: &str = "__debezium.source.column.length";
const SCALE: &str = "__debezium.source.column.scale";
const NAME: &str = "__debezium.source.column.name";

/// pgjdbc's "unknown length" (`Integer.MAX_VALUE`).
const UNKNOWN_LENGTH: i64 = 2_147_483_647;

/// A column's declared type name (a domain's or enum's own name, `_int4` for `int4[]`) and the
/// name of the type its length and scale come from (a domain's base, an array's element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTypeName {
    /// `pg_type.typname` of the column's type.
    pub declared: String,
    /// `pg_type.typname` of the base or element type (the declared one otherwise).
    pub measured: String,
}

/// The parameters for column `column` of type `ty` with modifier `typmod` (the domain's when
/// the column has none). The snapshot reports an unconstrained `numeric` as length 0 without a
/// scale (the driver's column metadata); the stream as 131089 and scale 0 (its type defaults).
pub fn parameters(
    ty: &SourceTypeName,
    typmod: i32,
    in_snapshot: bool,
    column: &str,
) -> Vec<(String, String)> {
    let mut p = vec![(TYPE.to_string(), ty.declared.to_uppercase())];
    // Array columns report their element's type defaults in the snapshot too (measured).
    let numeric_any = ty.measured == "numeric" && typmod < 0 && !ty.declared.starts_with('_');
    if numeric_any && in_snapshot {
        p.push((LENGTH.into(), "0".into()));
    } else {
        p.push((LENGTH.into(), length(&ty.measured, typmod).to_string()));
        p.push((SCALE.into(), scale(&ty.measured, typmod).to_string()));
    }
    p.push((NAME.into(), column.to_string()));
    p
}

/// The seconds digits of a time type's display (pgjdbc: the fraction plus its point).
fn seconds_size(typmod: i32) -> i64 {
    match typmod {
        m if m < 0 => 7,
        0 => 0,
        m => i64::from(m) + 1,
    }
}

/// pgjdbc's `TypeInfoCache.getPrecision`.
fn length(name: &str, typmod: i32) -> i64 {
    let m = i64::from(typmod);
    match name {
        "int2" => 5,
        "int4" | "oid" => 10,
        "int8" => 19,
        "float4" => 8,
        "float8" => 17,
        "bool" => 1,
        "numeric" if typmod < 0 => 131_089,
        "numeric" => ((m - 4) >> 16) & 0xffff,
        "bpchar" | "varchar" if typmod >= 4 => m - 4,
        "bit" | "varbit" if typmod >= 0 => m,
        "date" => 13,
        "time" => 8 + seconds_size(typmod),
        "timetz" => 8 + seconds_size(typmod) + 6,
        "timestamp" => 22 + seconds_size(typmod),
        "timestamptz" => 22 + seconds_size(typmod) + 6,
        "interval" => 49,
        _ => UNKNOWN_LENGTH,
    }
}

/// pgjdbc's `TypeInfoCache.getScale`.
fn scale(name: &str, typmod: i32) -> i64 {
    let m = i64::from(typmod);
    match name {
        "float4" => 8,
        "float8" => 17,
        "numeric" if typmod < 0 => 0,
        "numeric" => (m - 4) & 0xffff,
        "time" | "timetz" | "timestamp" | "timestamptz" | "interval" if typmod < 0 => 6,
        "time" | "timetz" | "timestamp" | "timestamptz" => m,
        "interval" => m & 0xffff,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(declared: &str, measured: &str, typmod: i32, snapshot: bool) -> Vec<String> {
        let ty = SourceTypeName {
            declared: declared.into(),
            measured: measured.into(),
        };
        parameters(&ty, typmod, snapshot, "c")
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn lengths_and_scales_are_the_drivers() {
        assert_eq!(params("int4", "int4", -1, false), ["INT4", "10", "0", "c"]);
        assert_eq!(
            params("numeric", "numeric", (10 << 16) + 3 + 4, true),
            ["NUMERIC", "10", "3", "c"]
        );
        assert_eq!(
            params("numeric", "numeric", -1, true),
            ["NUMERIC", "0", "c"]
        );
        assert_eq!(
            params("numeric", "numeric", -1, false),
            ["NUMERIC", "131089", "0", "c"]
        );
        assert_eq!(
            params("varchar", "varchar", 24, false),
            ["VARCHAR", "20", "0", "c"]
        );
        assert_eq!(
            params("timestamp", "timestamp", 3, false),
            ["TIMESTAMP", "26", "3", "c"]
        );
        assert_eq!(
            params("timestamptz", "timestamptz", -1, false),
            ["TIMESTAMPTZ", "35", "6", "c"]
        );
        assert_eq!(
            params("timetz", "timetz", -1, false),
            ["TIMETZ", "21", "6", "c"]
        );
        assert_eq!(
            params("dom_numeric", "numeric", (8 << 16) + 2 + 4, false),
            ["DOM_NUMERIC", "8", "2", "c"]
        );
        assert_eq!(
            params("_int4", "int4", -1, false),
            ["_INT4", "10", "0", "c"]
        );
        assert_eq!(
            params("_numeric", "numeric", -1, true),
            ["_NUMERIC", "131089", "0", "c"]
        );
        assert_eq!(
            params("mood", "mood", -1, false),
            ["MOOD", "2147483647", "0", "c"]
        );
        assert_eq!(
            params("varbit", "varbit", -1, false),
            ["VARBIT", "2147483647", "0", "c"]
        );
        assert_eq!(
            params("float4", "float4", -1, false),
            ["FLOAT4", "8", "8", "c"]
        );
    }
}
