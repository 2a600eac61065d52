"""Every PostgreSQL type we capture, through the real PostgreSQL -> Debezium -> broker path, decoded by
`services.cdc_normalizer.decoding` and compared with what PostgreSQL itself renders for the same row.

PostgreSQL is the oracle: the expected canonical value of each column comes from a SQL expression over the row
(`ORACLE`), never from hand-written literals. Tests share one stack and run in file order.

Known limits, documented rather than tested (Debezium cannot represent them): numeric NaN/Infinity, intervals with
months (a month becomes 30.4375 days), multi-dimensional arrays, infinite or BC dates and timestamps, years > 9999,
and `bit varying` (Debezium sends the value's bits with the column's maximum length, so leading zeros are lost).
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterator

import psycopg
import pytest

from claims_shared.contracts.cdc import ChangeRecord
from claims_shared.contracts.columns import column_types_from_json, export_columns
from claims_shared.contracts.topics import raw_cdc_topic
from claims_shared.settings import PlatformSettings
from claimsctl.stack.embedded import EmbeddedStack
from services.cdc_normalizer.decoding import Skipped, decode_message
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

TABLE = "type_matrix"

DDL = """
CREATE TYPE tm_mood AS ENUM ('sad', 'ok', 'happy €');
CREATE TABLE type_matrix (
    id integer PRIMARY KEY,
    n_any numeric, n_fixed numeric(38,10), n_money numeric(12,2), n_int numeric(38,0),
    f_real real, f_double double precision,
    i_small smallint, i_int integer, i_big bigint,
    b boolean,
    t text, vc varchar(20), ch char(5),
    d date, tm time, tm3 time(3), ttz timetz, ts timestamp, ts3 timestamp(3), tstz timestamptz,
    iv interval,
    u uuid, j json, jb jsonb, by bytea,
    a_text text[], a_int int[], a_num numeric[],
    mood tm_mood,
    ip inet, net cidr, mac macaddr,
    bits bit(10),
    big_text text
);
"""

COLUMNS = ("id n_any n_fixed n_money n_int f_real f_double i_small i_int i_big b t vc ch d tm tm3 ttz ts ts3 tstz iv "
           "u j jb by a_text a_int a_num mood ip net mac bits big_text").split()


def _frac(expr: str) -> str:
    # Canonical time/timestamp: `.ffffff` only when the fraction is not zero.
    return f"CASE WHEN extract(microseconds FROM {expr})::bigint % 1000000 = 0 THEN '' ELSE to_char({expr}, '.US') END"


def _ts(expr: str) -> str:
    return f"to_char({expr}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || {_frac(expr)}"


def _time(expr: str) -> str:
    return f"to_char({expr}, 'HH24:MI:SS') || {_frac(expr)}"


# column -> SQL rendering PostgreSQL's own value in the canonical form (NULL stays NULL).
ORACLE: dict[str, str] = {
    "id": "id",
    # Debezium drops an unconstrained numeric's display scale: the canonical form is trim_scale's.
    "n_any": "trim_scale(n_any)::text", "n_fixed": "n_fixed::text", "n_money": "n_money::text", "n_int": "n_int::text",
    "f_real": "f_real::text", "f_double": "f_double::text",  # floats: see FROM_TEXT
    "i_small": "i_small", "i_int": "i_int", "i_big": "i_big",
    "b": "b", "t": "t", "vc": "vc", "ch": "ch",
    "d": "to_char(d, 'YYYY-MM-DD')",
    "tm": _time("tm"), "tm3": _time("tm3"),
    "ttz": f"{_time('(ttz AT TIME ZONE $$UTC$$)::time')} || 'Z'",
    "ts": _ts("ts"), "ts3": _ts("ts3"),
    "tstz": f"{_ts('(tstz AT TIME ZONE $$UTC$$)')} || 'Z'",
    "iv": "justify_hours(iv)::text",  # with intervalstyle = iso_8601
    "u": "u::text", "j": "j", "jb": "jb",
    "by": "replace(encode(by, 'base64'), E'\\n', '')",
    "a_text": "a_text", "a_int": "a_int", "a_num": "a_num::text[]",
    "mood": "mood::text",
    # The types' output functions (to_jsonb uses them): inet hosts print without `/32`, unlike `inet::text`.
    "ip": "to_jsonb(ip) #>> '{}'", "net": "to_jsonb(net) #>> '{}'", "mac": "to_jsonb(mac) #>> '{}'",
    "bits": "bits::text",
    "big_text": "big_text",
}



def _float_from_text(text: str | None) -> float | str | None:
    # Non-finite floats are the strings NaN/Infinity/-Infinity in canonical JSON; others are numbers.
    return text if text is None or text in ("NaN", "Infinity", "-Infinity") else float(text)


# Columns whose SQL text is turned into the canonical Python value here.
FROM_TEXT = {"f_real": _float_from_text, "f_double": _float_from_text}

# Rows inserted before Connect starts arrive as snapshot reads; the others as creates.
SNAPSHOT_ROWS = """
INSERT INTO type_matrix (id) VALUES (1);
INSERT INTO type_matrix VALUES (2, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, '', '', '', '1970-01-01', '00:00:00',
    '00:00:00', '00:00:00+00', '1970-01-01 00:00:00', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '0',
    '00000000-0000-0000-0000-000000000000', '{}', '{}', '', '{}', '{}', '{}', 'sad', '0.0.0.0', '0.0.0.0/0',
    '00:00:00:00:00:00', B'0000000000', '');
"""

STREAMED_ROWS = """
INSERT INTO type_matrix VALUES (3, -123.456000, -1234567890123456789012345678.0123456789, -0.01,
    -99999999999999999999999999999999999999, -1.5, -1e-300, -32768, -2147483648, -9223372036854775808, true,
    'x', 'y', 'z', '1900-01-01', '23:59:59.999999', '12:34:56.789', '23:30:00-05:30', '1900-01-01 00:00:00.000001',
    '1899-12-31 23:59:59.999', '1900-01-01 00:00:00+00', '-1 day -02:03:04.5',
    'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '[1, 2.5, "x"]', '[]', '\\x00ff10', '{a,NULL,"b c"}', '{-1,NULL,2}',
    '{1.5,NULL,-2.25}', 'ok', '192.168.1.5/24', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010101010', 'x');
INSERT INTO type_matrix VALUES (4, 0.00000000000000000001, 123456789012345678901234567.0123456789,
    9999999999.99, 99999999999999999999999999999999999999, 3.4028235e38, 1.7976931348623157e308, 32767,
    2147483647, 9223372036854775807, false, 'unicode €😀 "quoted" \\ back', 'café', 'ab', '0001-01-01',
    '24:00:00', '00:00:00.001', '00:00:00.000001+14', '0001-01-01 00:00:00', '2999-12-31 23:59:59.999',
    '2999-12-31 23:59:59.999999+05:30', '3 days 4 hours 5 minutes 6.000007 seconds',
    gen_random_uuid(), '{"nested": {"a": [1, {"b": null}], "c": "€😀"}, "big": 123456789012345678901234567890}',
    '{"z": 1, "a": {"deep": [true, false, null, 1.25]}, "u": "€😀"}', '\\xdeadbeef',
    '{"€😀","",NULL}', '{}', '{}', 'happy €', '::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', B'0000000001',
    '€😀');
INSERT INTO type_matrix (id, f_real, f_double, n_any, iv, ts, tstz, d)
    VALUES (5, 1.1, 0.1, 1.500, '-00:00:00.000001', '2026-11-20 08:15:00.5', '2026-11-20 08:15:00.5+01', '2026-02-28');
INSERT INTO type_matrix (id, f_real, f_double) VALUES (6, 'NaN', '-Infinity'), (7, '-Infinity', 'Infinity');
"""

# Large, incompressible values: stored out of line (TOAST), so an update that does not touch them sends the
# unavailable-value placeholder instead (the table keeps the default REPLICA IDENTITY).
TOAST_ROW = """
INSERT INTO type_matrix (id, i_int, big_text, a_text, by, jb) SELECT 10, 1,
    (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 600) i),
    (SELECT array_agg(md5(i::text)) FROM generate_series(1, 600) i),
    (SELECT decode(string_agg(md5(i::text), ''), 'hex') FROM generate_series(1, 600) i),
    (SELECT jsonb_agg(md5(i::text)) FROM generate_series(1, 600) i);
"""
TOASTED = {"big_text", "a_text", "by", "jb"}


@pytest.fixture(scope="module")
def stack(stack_settings: PlatformSettings) -> Iterator[EmbeddedStack]:
    """The stack, with `type_matrix` created and two rows written before Connect's first start (snapshot reads)."""
    stack = EmbeddedStack(stack_settings)
    connect_at = [c.name for c in stack.components].index("connect")
    try:
        for component in stack.components[:connect_at]:
            component.start()
        with psycopg.connect(stack_settings.pg_dsn) as conn:
            conn.execute(DDL)
            conn.execute(SNAPSHOT_ROWS)
        for component in stack.components[connect_at:]:
            component.start()
        yield stack
    finally:
        stack.down()


def sql(settings: PlatformSettings, statement: str) -> None:
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute(statement)


def oracle_rows(settings: PlatformSettings) -> dict[int, dict[str, Any]]:
    """PostgreSQL's canonical rendering of every current row, keyed by id."""
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute("SET intervalstyle = iso_8601")
        cols = [c for c in COLUMNS if c in ORACLE] + [c for c in _extra_columns(conn)]
        exprs = ", ".join(f"{ORACLE.get(c, f'{c}::text')} AS {c}" for c in cols)
        cur = conn.execute(f"SELECT {exprs} FROM type_matrix")
        names = [d.name for d in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
        return {row["id"]: {c: FROM_TEXT[c](v) if c in FROM_TEXT else v for c, v in row.items()} for row in rows}


def _extra_columns(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'type_matrix'::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum").fetchall()
    return [r[0] for r in rows if r[0] not in ORACLE]


def read_raw(settings: PlatformSettings, until: Callable[[list[tuple[bytes | None, bytes]]], bool],
             timeout_s: float = 90.0) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of every non-tombstone message of the table's topic, from the start, once `until` holds."""
    return read_topic(settings, raw_cdc_topic(settings.topic_prefix, TABLE), until=until,
                      decode=lambda msg: (msg.key(), msg.value()), timeout_s=timeout_s)


def decoded(settings: PlatformSettings, until: Callable[[list[ChangeRecord]], bool]) -> list[ChangeRecord]:
    topic = raw_cdc_topic(settings.topic_prefix, TABLE)

    def records(messages: list[tuple[bytes | None, bytes]]) -> list[ChangeRecord]:
        out = [decode_message(topic, k, v) for k, v in messages]
        return [r for r in out if isinstance(r, ChangeRecord)]

    return records(read_raw(settings, lambda msgs: until(records(msgs))))


def assert_matches_postgres(record: ChangeRecord, expected: dict[str, Any]) -> None:
    assert record.row is not None
    assert set(record.row) | set(record.unchanged) == set(expected), "columns differ from PostgreSQL's"
    mismatches = {c: (record.row[c], expected[c]) for c in record.row if not _same(c, record.row[c], expected[c])}
    assert not mismatches, f"row {record.key}: decoded != PostgreSQL: {mismatches}"


def _same(column: str, decoded: Any, expected: Any) -> bool:
    if column == "f_real" and isinstance(decoded, float) and isinstance(expected, float):
        # Java 17 prints some float4 values with more digits than PostgreSQL's shortest form; same float4 value.
        return struct.pack("<f", decoded) == struct.pack("<f", expected)
    return decoded == expected


def test_every_type_decodes_to_what_postgres_returns(stack: EmbeddedStack) -> None:
    s = stack.settings
    sql(s, STREAMED_ROWS)
    records = decoded(s, lambda rs: {r.key.get("id") for r in rs} >= {1, 2, 3, 4, 5, 6, 7})
    expected = oracle_rows(s)
    by_id = {r.key["id"]: r for r in records if r.op in ("r", "c")}
    assert [by_id[i].op for i in (1, 2, 3, 4, 5)] == ["r", "r", "c", "c", "c"]
    assert by_id[1].source.snapshot and not by_id[3].source.snapshot
    for row_id in (1, 2, 3, 4, 5, 6, 7):
        assert by_id[row_id].key == {"id": row_id}
        assert_matches_postgres(by_id[row_id], expected[row_id])
        assert by_id[row_id].unchanged == ()


def test_schemaless_records_decode_the_same_with_exported_column_types(stack: EmbeddedStack) -> None:
    """Strip the inline schemas (as a schemaless JsonConverter would send) and decode with `export-columns`."""
    import orjson

    s = stack.settings
    topic = raw_cdc_topic(s.topic_prefix, TABLE)
    columns = column_types_from_json(export_columns(s.pg_dsn))
    assert [c.name for c in columns[TABLE]] == COLUMNS and [c.name for c in columns[TABLE] if c.pk] == ["id"]
    messages = read_raw(s, lambda msgs: len(msgs) >= 5)
    for key, value in messages[:5]:
        with_schema = decode_message(topic, key, value)
        schemaless_value = orjson.dumps(orjson.loads(value)["payload"])
        schemaless_key = orjson.dumps(orjson.loads(key)["payload"])
        assert isinstance(with_schema, ChangeRecord)
        assert decode_message(topic, schemaless_key, schemaless_value, columns) == with_schema
        assert decode_message(topic, None, schemaless_value, columns).key == with_schema.key


def test_update_leaves_unchanged_toasted_columns_out_of_the_row(stack: EmbeddedStack) -> None:
    s = stack.settings
    sql(s, TOAST_ROW)
    sql(s, "UPDATE type_matrix SET i_int = 2 WHERE id = 10")
    records = decoded(s, lambda rs: any(r.op == "u" and r.key == {"id": 10} for r in rs))
    update = next(r for r in records if r.op == "u" and r.key == {"id": 10})
    assert set(update.unchanged) == TOASTED
    assert not TOASTED & set(update.row)
    assert update.row["i_int"] == 2
    assert_matches_postgres(update, oracle_rows(s)[10])
    create = next(r for r in records if r.op == "c" and r.key == {"id": 10})
    assert create.unchanged == () and len(create.row["big_text"]) == 600 * 32
    assert_matches_postgres(create, {**oracle_rows(s)[10], "i_int": 1})


def test_delete_carries_the_key_and_no_row(stack: EmbeddedStack) -> None:
    s = stack.settings
    sql(s, "DELETE FROM type_matrix WHERE id = 3")
    records = decoded(s, lambda rs: any(r.op == "d" for r in rs))
    delete = next(r for r in records if r.op == "d")
    assert delete.key == {"id": 3} and delete.row is None and delete.unchanged == ()
    assert delete.source.lsn and delete.source.tx_id and not delete.source.snapshot
    assert delete.source.database == s.pg_db and delete.source.schema == "public"


def test_added_column_decodes_without_restart(stack: EmbeddedStack) -> None:
    s = stack.settings
    sql(s, "ALTER TABLE type_matrix ADD COLUMN added_amount numeric(10,3)")
    sql(s, "INSERT INTO type_matrix (id, added_amount, t) VALUES (20, -1.5, 'after alter')")
    records = decoded(s, lambda rs: any(r.key == {"id": 20} for r in rs))
    create = next(r for r in records if r.key == {"id": 20})
    assert create.row["added_amount"] == "-1.500"
    assert_matches_postgres(create, oracle_rows(s)[20])


def test_truncate_arrives_with_empty_key_and_no_row(stack: EmbeddedStack) -> None:
    s = stack.settings
    sql(s, "TRUNCATE type_matrix")
    records = decoded(s, lambda rs: any(r.op == "t" for r in rs))
    truncate = next(r for r in records if r.op == "t")
    assert truncate.key == {} and truncate.row is None and truncate.table == TABLE
    assert isinstance(decode_message(raw_cdc_topic(s.topic_prefix, TABLE), None, None), Skipped)
