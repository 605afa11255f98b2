//! Reads what pgoutput does not carry from the system catalogs: nullability, defaults, primary
//! keys, replica identity indexes, and the definitions of user-defined types (enums, domains,
//! arrays). Turns a Relation message into the [`TableSchema`] events carry.

use std::collections::HashMap;
use std::sync::Arc;

use augur_core::connect::{Field, Schema, Value};
use augur_core::event::TableSchema;
use augur_core::{Error, ErrorKind};
use tokio_postgres::Client;

use super::columns::{self, ColumnMapper};
use super::pgoutput::{Relation, RelationColumn};
use super::types::{self, PgType, TypeOptions};
use crate::conn::sql_error;

/// One column as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier.
    pub typmod: i32,
    /// `NOT NULL`.
    pub not_null: bool,
    /// The default expression, as `pg_get_expr` prints it.
    pub default_expr: Option<String>,
}

/// A table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTable {
    /// Table OID.
    pub oid: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Columns in attribute order (dropped columns left out).
    pub columns: Vec<CatalogColumn>,
    /// Primary key column names, in key order.
    pub primary_key: Vec<String>,
    /// `relreplident`: `d`, `n`, `f` or `i`.
    pub replica_identity: char,
    /// Columns of the replica identity index (REPLICA IDENTITY USING INDEX).
    pub replica_index: Vec<String>,
}

/// Loads the catalog description of table `oid`, or `None` if it no longer exists.
pub async fn load_table(client: &Client, oid: u32) -> Result<Option<CatalogTable>, Error> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text, c.relreplident::text \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await
        .map_err(|e| sql_error("reading table metadata", e))?;
    let Some(row) = row else { return Ok(None) };
    let schema: String = row.get(0);
    let name: String = row.get(1);
    let ident: String = row.get(2);
    let cols = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod, a.attnotnull, \
                    pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_attribute a \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| sql_error("reading column metadata", e))?;
    let columns = cols
        .iter()
        .map(|r| CatalogColumn {
            name: r.get(0),
            type_oid: r.get(1),
            typmod: r.get(2),
            not_null: r.get(3),
            default_expr: r.get(4),
        })
        .collect();
    let index_cols = |flag: &'static str| {
        format!(
            "SELECT a.attname::text FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = $1 AND i.{flag} ORDER BY k.ord"
        )
    };
    let pk = client
        .query(&index_cols("indisprimary"), &[&oid])
        .await
        .map_err(|e| sql_error("reading the primary key", e))?;
    let ri = client
        .query(&index_cols("indisreplident"), &[&oid])
        .await
        .map_err(|e| sql_error("reading the replica identity index", e))?;
    Ok(Some(CatalogTable {
        oid,
        schema,
        name,
        columns,
        primary_key: pk.iter().map(|r| r.get(0)).collect(),
        replica_identity: ident.chars().next().unwrap_or('d'),
        replica_index: ri.iter().map(|r| r.get(0)).collect(),
    }))
}

/// Resolves type OIDs to [`PgType`]s, asking the catalog about user-defined types once each.
#[derive(Debug, Default)]
pub struct TypeResolver {
    cache: HashMap<u32, PgType>,
    /// The type modifier a domain carries (`CREATE DOMAIN price AS numeric(10,2)`): its
    /// columns report none themselves.
    domain_typmods: HashMap<u32, i32>,
    /// Declared and measured type names (`column.propagate.source.type`).
    names: HashMap<u32, super::propagate::SourceTypeName>,
    /// Domains resolved, and whether each is `NOT NULL` (itself or through its base domain).
    domains: HashMap<u32, bool>,
}

impl TypeResolver {
    /// The declared type name of `oid` and the name its length and scale come from (a
    /// domain's base type, an array's element type).
    pub async fn source_type_name(
        &mut self,
        client: &Client,
        oid: u32,
    ) -> Result<super::propagate::SourceTypeName, Error> {
        if let Some(n) = self.names.get(&oid) {
            return Ok(n.clone());
        }
        let row = client
            .query_one(
                "SELECT t.typname::text, coalesce(b.typname, e.typname, t.typname)::text FROM pg_type t \
                 LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype \
                 LEFT JOIN pg_type e ON t.typcategory = 'A' AND t.typelem <> 0 AND e.oid = t.typelem \
                 WHERE t.oid = $1",
                &[&oid],
            )
            .await
            .map_err(|e| sql_error("reading a type's name", e))?;
        let n = super::propagate::SourceTypeName {
            declared: row.get(0),
            measured: row.get(1),
        };
        self.names.insert(oid, n.clone());
        Ok(n)
    }

    /// Forgets user-defined types (after a Type message says one changed).
    pub fn invalidate(&mut self, oid: u32) {
        self.cache.remove(&oid);
        self.domain_typmods.remove(&oid);
        self.names.remove(&oid);
        self.domains.remove(&oid);
    }

    /// The modifier of a column of type `oid` whose own modifier is `typmod`: a domain's
    /// (resolved before) when the column has none, as Debezium resolves a domain to its base
    /// type with the domain's precision and scale.
    pub fn effective_typmod(&self, oid: u32, typmod: i32) -> i32 {
        match self.domain_typmods.get(&oid) {
            Some(&m) if typmod < 0 => m,
            _ => typmod,
        }
    }

    /// Whether a column of type `oid` is required by its domain (`CREATE DOMAIN … NOT NULL`),
    /// as Debezium marks it (the type must have been resolved).
    pub fn domain_not_null(&self, oid: u32) -> bool {
        self.domains.get(&oid).copied().unwrap_or(false)
    }

    /// The type with `oid`.
    pub async fn resolve(&mut self, client: &Client, oid: u32) -> Result<PgType, Error> {
        if let Some(t) = types::builtin(oid) {
            return Ok(t);
        }
        if let Some(t) = self.cache.get(&oid) {
            return Ok(t.clone());
        }
        let mut chain = Vec::new();
        let t = self.resolve_uncached(client, oid, &mut chain).await?;
        self.cache.insert(oid, t.clone());
        Ok(t)
    }

    async fn resolve_uncached(
        &mut self,
        client: &Client,
        oid: u32,
        chain: &mut Vec<u32>,
    ) -> Result<PgType, Error> {
        if let Some(t) = types::builtin(oid) {
            return Ok(t);
        }
        if chain.contains(&oid) || chain.len() > 8 {
            return Ok(PgType::Unknown(format!("type {oid}")));
        }
        chain.push(oid);
        let row = client
            .query_opt(
                "SELECT t.typtype::text, t.typcategory::text, t.typelem, t.typbasetype, t.typname::text, \
                        CASE WHEN t.typtype = 'e' THEN \
                          (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) END, \
                        t.typtypmod, t.typnotnull \
                 FROM pg_type t WHERE t.oid = $1",
                &[&oid],
            )
            .await
            .map_err(|e| sql_error("reading type metadata", e))?;
        let Some(row) = row else {
            return Ok(PgType::Unknown(format!("type {oid}")));
        };
        let typtype: String = row.get(0);
        let category: String = row.get(1);
        let elem: u32 = row.get(2);
        let base: u32 = row.get(3);
        let name: String = row.get(4);
        let labels: Option<Vec<String>> = row.get(5);
        let typmod: i32 = row.get(6);
        let not_null: bool = row.get(7);
        Ok(match (typtype.as_str(), category.as_str()) {
            ("e", _) => PgType::Enum(labels.unwrap_or_default()),
            ("d", _) => {
                let ty = Box::pin(self.resolve_uncached(client, base, chain)).await?;
                // A domain over a domain: the nearest modifier wins.
                let inner = self.domain_typmods.get(&base).copied();
                match (typmod >= 0).then_some(typmod).or(inner) {
                    Some(m) => self.domain_typmods.insert(oid, m),
                    None => None,
                };
                let base_not_null = self.domains.get(&base).copied().unwrap_or(false);
                self.domains.insert(oid, not_null || base_not_null);
                ty
            }
            (_, "A") if elem != 0 => {
                let inner = Box::pin(self.resolve_uncached(client, elem, chain)).await?;
                match inner {
                    // Debezium 3.6.3 maps no array of a domain (measured).
                    _ if self.domains.contains_key(&elem) => PgType::Unknown(name),
                    PgType::Array(_) | PgType::Unknown(_) => PgType::Unknown(name),
                    t => PgType::Array(Box::new(t)),
                }
            }
            _ if name == "citext" => PgType::Text,
            _ if name == "ltree" => PgType::Ltree,
            _ if name == "hstore" => PgType::Hstore,
            _ => PgType::Unknown(name),
        })
    }
}

/// How one published column is decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDecoder {
    /// The column's type.
    pub ty: PgType,
    /// Its type modifier.
    pub typmod: i32,
    /// Its index in the event's row, or `None` when the column is left out (unmapped type).
    pub field: Option<usize>,
    /// The value a required (NOT NULL) column gets when pgoutput sends no value for it (the
    /// non-key columns of a key-only old tuple): its default, or its type's zero.
    pub fallback: Value,
    /// A mask or truncation (`column.mask.*`, `column.truncate.*`) and the column's declared
    /// length.
    pub mapper: Option<(ColumnMapper, Option<usize>)>,
}

/// A captured table: the decoders for its published columns and the shape of its events.
#[derive(Debug, Clone)]
pub struct CapturedTable {
    /// Table OID.
    pub oid: u32,
    /// One decoder per column of the Relation message, in order.
    pub columns: Vec<ColumnDecoder>,
    /// The event shape.
    pub schema: Arc<TableSchema>,
    /// The REPLICA IDENTITY the Relation message reported.
    pub replica_identity: super::pgoutput::ReplicaIdentity,
}

/// Names of unmapped columns that were left out, for a warning.
pub type SkippedColumns = Vec<(String, String)>;

/// Builds the captured-table shape for `rel` from the catalog, under `opts`.
pub async fn describe(
    client: &Client,
    resolver: &mut TypeResolver,
    rel: &Relation,
    opts: &TypeOptions,
    version: u64,
) -> Result<(CapturedTable, SkippedColumns), Error> {
    let cat = load_table(client, rel.id).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::SourceSetup,
            format!(
                "table {}.{} disappeared while being captured",
                rel.namespace, rel.name
            ),
        )
    })?;
    let by_name: HashMap<&str, &CatalogColumn> =
        cat.columns.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut described = DescribedColumns::with_capacity(rel.columns.len());
    for rc in &rel.columns {
        let ty = resolver.resolve(client, rc.type_oid).await?;
        let rc = RelationColumn {
            type_modifier: resolver.effective_typmod(rc.type_oid, rc.type_modifier),
            ..rc.clone()
        };
        let mut cat_col = by_name.get(rc.name.as_str()).copied().cloned();
        if resolver.domain_not_null(rc.type_oid)
            && let Some(c) = cat_col.as_mut()
        {
            c.not_null = true;
        }
        let cat_col = cat_col.as_ref();
        let qualified = format!("{}.{}.{}", cat.schema, cat.name, rc.name);
        let source_type = if opts.columns.propagates_any() {
            let n = resolver.source_type_name(client, rc.type_oid).await?;
            let by_type = format!("{}.{}.{}", cat.schema, cat.name, n.declared);
            opts.columns.propagates(&qualified, &by_type).then_some(n)
        } else {
            None
        };
        if opts.columns.carries(&qualified) {
            described.push(&rc, ty, cat_col, opts, &qualified, source_type.as_ref());
        } else {
            described.leave_out(&rc, ty);
        }
    }
    let DescribedColumns {
        fields,
        columns,
        skipped,
    } = described;
    let table_name = format!("{}.{}", cat.schema, cat.name);
    let key = match opts.columns.key_for(&table_name) {
        Some(names) => positions(names, &fields),
        None => key_positions(&cat, &fields),
    };
    let schema = Arc::new(TableSchema {
        schema: cat.schema,
        table: cat.name,
        fields,
        key,
        version,
    });
    Ok((
        CapturedTable {
            oid: rel.id,
            columns,
            schema,
            replica_identity: rel.replica_identity,
        },
        skipped,
    ))
}

/// The event fields, column decoders and left-out columns of a table, gathered column by
/// column.
struct DescribedColumns {
    fields: Vec<Field>,
    columns: Vec<ColumnDecoder>,
    skipped: SkippedColumns,
}

impl DescribedColumns {
    /// Room for `n` columns.
    fn with_capacity(n: usize) -> Self {
        DescribedColumns {
            fields: Vec::with_capacity(n),
            columns: Vec::with_capacity(n),
            skipped: Vec::new(),
        }
    }

    /// Adds published column `rc` of type `ty` (catalog entry `cat_col`): a field and its
    /// decoder when the type maps, otherwise a left-out column.
    fn push(
        &mut self,
        rc: &RelationColumn,
        ty: PgType,
        cat_col: Option<&CatalogColumn>,
        opts: &TypeOptions,
        qualified: &str,
        source_type: Option<&super::propagate::SourceTypeName>,
    ) {
        let not_null = cat_col.is_some_and(|c| c.not_null);
        let default_expr = cat_col.and_then(|c| c.default_expr.as_deref());
        match types::schema_for(&ty, rc.type_modifier, opts) {
            Some(mut schema) => {
                schema.optional = !not_null;
                let mapper = text_mapper(&schema, &ty, rc.type_modifier, opts, qualified);
                if let Some((m, _)) = &mapper {
                    schema = m.alter_schema(schema);
                }
                if let Some(n) = source_type {
                    let p = super::propagate::parameters(
                        n,
                        rc.type_modifier,
                        opts.in_snapshot,
                        &rc.name,
                    );
                    schema.parameters.extend(p);
                }
                if let Some(d) = default_expr
                    .and_then(|e| default_value(e, &ty, rc.type_modifier, &schema, opts))
                {
                    schema.default = Some(d);
                }
                let fallback = schema
                    .default
                    .clone()
                    .unwrap_or_else(|| types::zero_value(&ty, rc.type_modifier, &schema, opts));
                self.columns.push(ColumnDecoder {
                    ty,
                    typmod: rc.type_modifier,
                    field: Some(self.fields.len()),
                    fallback,
                    mapper,
                });
                self.fields.push(Field::new(rc.name.clone(), schema));
            }
            None => {
                let type_name = match &ty {
                    PgType::Unknown(n) => n.clone(),
                    other => format!("{other:?}"),
                };
                self.skipped.push((rc.name.clone(), type_name));
                self.leave_out(rc, ty);
            }
        }
    }

    /// Adds a column events do not carry (unmapped, or not in `column.include.list`).
    fn leave_out(&mut self, rc: &RelationColumn, ty: PgType) {
        self.columns.push(ColumnDecoder {
            ty,
            typmod: rc.type_modifier,
            field: None,
            fallback: Value::Null,
            mapper: None,
        });
    }
}

/// The mask or truncation of a text column, with its declared length (`varchar(n)`,
/// `char(n)`; `None` when unbounded).
fn text_mapper(
    schema: &Schema,
    ty: &PgType,
    typmod: i32,
    opts: &TypeOptions,
    qualified: &str,
) -> Option<(ColumnMapper, Option<usize>)> {
    if *ty != PgType::Text || !columns::is_text(schema) || opts.columns.mappers.is_empty() {
        return None;
    }
    let length = (typmod >= 4).then(|| (typmod - 4) as usize);
    opts.columns
        .mapper_for(qualified, length)
        .map(|m| (m, length))
}

/// The positions in `fields` of the columns named `names` (those present).
fn positions(names: &[String], fields: &[Field]) -> Vec<usize> {
    names
        .iter()
        .filter_map(|k| fields.iter().position(|f: &Field| &f.name == k))
        .collect()
}

/// The positions in `fields` of the table's key: its primary key, or else its replica
/// identity index.
fn key_positions(cat: &CatalogTable, fields: &[Field]) -> Vec<usize> {
    let key_names: &[String] = if !cat.primary_key.is_empty() {
        &cat.primary_key
    } else {
        &cat.replica_index
    };
    positions(key_names, fields)
}

/// The schema default Debezium derives from a column default expression: literals become
/// values of the column's type, functions (`nextval`, `now()`) become the type's zero, and
/// anything it cannot evaluate is left out.
pub fn default_value(
    expr: &str,
    ty: &PgType,
    typmod: i32,
    schema: &Schema,
    opts: &TypeOptions,
) -> Option<Value> {
    let e = expr.trim();
    if e.eq_ignore_ascii_case("null") || e.starts_with("NULL::") {
        return None;
    }
    // Debezium has no default mapper for these types.
    if matches!(
        ty,
        PgType::Bytea | PgType::Enum(_) | PgType::Array(_) | PgType::Point | PgType::Unknown(_)
    ) {
        return None;
    }
    let is_call = e.contains('(') && !e.starts_with('\'') && !e.starts_with("('");
    let special = [
        "CURRENT_TIMESTAMP",
        "CURRENT_DATE",
        "CURRENT_TIME",
        "LOCALTIMESTAMP",
        "LOCALTIME",
    ];
    if is_call || special.iter().any(|k| e.eq_ignore_ascii_case(k)) {
        // A function call: nextval(…), now(), gen_random_uuid(), …
        return Some(types::zero_value(ty, typmod, schema, opts));
    }
    // Strip casts: '42'::integer, ('x'::text), (-1)
    let mut lit = e;
    while let Some(inner) = lit.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        lit = inner;
    }
    if let Some(idx) = lit.find("::") {
        lit = &lit[..idx];
    }
    while let Some(inner) = lit.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        lit = inner;
    }
    let text = if let Some(q) = lit.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        q.replace("''", "'")
    } else {
        lit.to_string()
    };
    let text = match (ty, text.as_str()) {
        (PgType::Bool, "true") => "t".to_string(),
        (PgType::Bool, "false") => "f".to_string(),
        _ => text,
    };
    types::convert(ty, typmod, &text, opts).ok()
}

#[cfg(test)]
mod tests {
    use augur_core::connect::SchemaType;

    use super::*;

    #[test]
    fn defaults_follow_debezium() {
        let opts = TypeOptions::default();
        let int = Schema::new(SchemaType::Int32);
        assert_eq!(
            default_value(
                "nextval('t_id_seq'::regclass)",
                &PgType::Int4,
                -1,
                &int,
                &opts
            ),
            Some(Value::Int32(0))
        );
        assert_eq!(
            default_value("42", &PgType::Int4, -1, &int, &opts),
            Some(Value::Int32(42))
        );
        assert_eq!(
            default_value("'-7'::integer", &PgType::Int4, -1, &int, &opts),
            Some(Value::Int32(-7))
        );
        let s = Schema::new(SchemaType::String);
        assert_eq!(
            default_value("'it''s'::character varying", &PgType::Text, -1, &s, &opts),
            Some(Value::String("it's".into()))
        );
        let b = Schema::new(SchemaType::Boolean);
        assert_eq!(
            default_value("true", &PgType::Bool, -1, &b, &opts),
            Some(Value::Boolean(true))
        );
        assert_eq!(
            default_value("NULL::text", &PgType::Text, -1, &s, &opts),
            None
        );
    }
}
