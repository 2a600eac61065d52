"""Decoding Debezium envelopes (JsonConverter with and without schemas) into canonical `ChangeRecord`s."""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest

from claims_shared.contracts.cdc import ChangeRecord
from claims_shared.contracts.columns import (
    ColumnType,
    column_types_from_json,
    dump_column_types,
    load_column_types,
)
from services.cdc_normalizer.decoding import (
    DecodeError,
    DecodeOptions,
    MalformedMessage,
    MissingKey,
    SchemaMismatch,
    Skipped,
    UndecodableValue,
    UnknownColumnTypes,
    clear_caches,
    decode_message,
)
from services.cdc_normalizer.semantic_types import iso_duration_from_micros, interval_text

TOPIC = "claims_db.public.things"
PLACEHOLDER = "__debezium_unavailable_value"


# ---------------------------------------------------------------------------------------------- builders

def f(name: str, type_: str, semantic: str | None = None, *, optional: bool = True, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "optional": optional, "field": name}
    if semantic:
        out["name"] = semantic
    out.update(extra)
    return out


def dec_field(name: str, scale: int) -> dict[str, Any]:
    return f(name, "bytes", "org.apache.kafka.connect.data.Decimal", version=1,
             parameters={"scale": str(scale), "connect.decimal.precision": "38"})


def b64_unscaled(n: int) -> str:
    length = max(1, (n.bit_length() + 8) // 8)
    return base64.b64encode(n.to_bytes(length, "big", signed=True)).decode()


def source(**overrides: Any) -> dict[str, Any]:
    return {"version": "3.6.3.Final", "connector": "postgresql", "name": "claims_db", "ts_ms": 1_700_000_000_000,
            "snapshot": "false", "db": "claims_db", "sequence": "[null,\"100\"]", "schema": "public",
            "table": "things", "txId": 777, "lsn": 123456, "xmin": None, **overrides}


def envelope(fields: list[dict[str, Any]], after: dict[str, Any] | None, *, op: str = "c",
             before: dict[str, Any] | None = None, with_schema: bool = True, **src: Any) -> bytes:
    payload = {"before": before, "after": after, "source": source(**src), "transaction": None, "op": op,
               "ts_ms": 1_700_000_000_500}
    if not with_schema:
        return orjson.dumps(payload)
    row = {"type": "struct", "fields": fields, "optional": True, "name": "claims_db.public.things.Value",
           "field": "after"}
    schema = {"type": "struct", "fields": [
        {**row, "field": "before"}, row,
        {"type": "struct", "fields": [f("lsn", "int64"), f("txId", "int64")], "optional": False,
         "name": "io.debezium.connector.postgresql.Source", "field": "source"},
        f("op", "string", optional=False), f("ts_ms", "int64"),
    ], "optional": False, "name": "claims_db.public.things.Envelope", "version": 2}
    return orjson.dumps({"schema": schema, "payload": payload})


def key_msg(value: dict[str, Any], fields: list[dict[str, Any]] | None = None) -> bytes:
    if fields is None:
        return orjson.dumps(value)
    return orjson.dumps({"schema": {"type": "struct", "fields": fields, "optional": False,
                                    "name": "claims_db.public.things.Key"}, "payload": value})


ID = f("id", "int32", optional=False)


def one(field: dict[str, Any], value: Any, **kw: Any) -> Any:
    """Decode a single column value through a schema'd envelope."""
    record = decode_message(TOPIC, key_msg({"id": 1}, [ID]), envelope([ID, field], {"id": 1, field["field"]: value}, **kw))
    assert isinstance(record, ChangeRecord)
    return record.row[field["field"]]


@pytest.fixture(autouse=True)
def fresh_caches() -> None:
    clear_caches()


# --------------------------------------------------------------------------------------------- decimals

@pytest.mark.parametrize("unscaled, scale, expected", [
    (123450, 2, "1234.50"), (0, 2, "0.00"), (-1, 2, "-0.01"), (-123450, 2, "-1234.50"), (5, 0, "5"),
    (10 ** 38 - 1, 10, "9999999999999999999999999999.9999999999"), (-(10 ** 38 - 1), 0, "-" + "9" * 38),
    (1, 20, "0.00000000000000000001"), (127, 0, "127"), (128, 0, "128"), (-128, 0, "-128"), (-129, 0, "-129"),
])
def test_connect_decimal_is_exact_with_the_schema_scale(unscaled: int, scale: int, expected: str) -> None:
    assert one(dec_field("amount", scale), b64_unscaled(unscaled)) == expected


def test_variable_scale_decimal_keeps_its_own_scale() -> None:
    field = f("n", "struct", "io.debezium.data.VariableScaleDecimal", fields=[f("scale", "int32"), f("value", "bytes")])
    # Debezium drops the display scale of unconstrained numerics: the canonical form is trim_scale's.
    assert one(field, {"scale": 3, "value": b64_unscaled(1500)}) == "1.5"
    assert one(field, {"scale": -2, "value": b64_unscaled(1)}) == "100"
    assert one(field, {"scale": 2, "value": b64_unscaled(0)}) == "0"
    assert one(field, {"scale": 0, "value": b64_unscaled(-7)}) == "-7"
    assert one(field, {"scale": 20, "value": b64_unscaled(1)}) == "0.00000000000000000001"


def test_string_and_double_decimals() -> None:
    # decimal.handling.mode=string: the schema is a plain string, already the canonical decimal text.
    assert one(f("n", "string"), "-1234.50") == "-1234.50"
    # decimal.handling.mode=double: a plain float64, kept as a number.
    assert one(f("n", "double"), 1234.5) == 1234.5


def test_bad_decimal_base64_is_undecodable() -> None:
    with pytest.raises(UndecodableValue) as exc:
        one(dec_field("amount", 2), "not base64!!")
    assert exc.value.column == "amount" and "amount" in exc.value.reason


# ------------------------------------------------------------------------------------------ numbers, text

def test_floats_stay_numbers_and_non_finite_become_strings() -> None:
    assert one(f("x", "float"), 1.1) == 1.1
    assert one(f("x", "double"), 1e-300) == 1e-300
    assert one(f("x", "double"), 3) == 3.0
    for special in ("NaN", "Infinity", "-Infinity"):
        assert one(f("x", "double"), special) == special


def test_integers_booleans_text_pass_through_and_wrong_types_are_undecodable() -> None:
    assert one(f("x", "int64"), -9223372036854775808) == -9223372036854775808
    assert one(f("x", "boolean"), False) is False
    assert one(f("x", "string"), "unicode €😀 \"q\"") == "unicode €😀 \"q\""
    with pytest.raises(UndecodableValue):
        one(f("x", "int32"), "12")
    with pytest.raises(UndecodableValue):
        one(f("x", "boolean"), 1)


def test_nulls_stay_null() -> None:
    assert one(dec_field("x", 2), None) is None
    assert one(f("x", "int64", "io.debezium.time.MicroTimestamp"), None) is None
    assert one(f("x", "array", items=f("", "string")), None) is None


# ----------------------------------------------------------------------------------------- dates, times

@pytest.mark.parametrize("semantic, value, expected", [
    ("io.debezium.time.MicroTimestamp", 0, "1970-01-01T00:00:00"),
    ("io.debezium.time.MicroTimestamp", 1, "1970-01-01T00:00:00.000001"),
    ("io.debezium.time.MicroTimestamp", -1, "1969-12-31T23:59:59.999999"),
    ("io.debezium.time.MicroTimestamp", -2208988800000000, "1900-01-01T00:00:00"),
    ("io.debezium.time.MicroTimestamp", -62135596800000000, "0001-01-01T00:00:00"),
    ("io.debezium.time.MicroTimestamp", 32503679999999999, "2999-12-31T23:59:59.999999"),
    ("io.debezium.time.Timestamp", -1, "1969-12-31T23:59:59.999000"),
    ("org.apache.kafka.connect.data.Timestamp", 1500, "1970-01-01T00:00:01.500000"),
    ("io.debezium.time.NanoTimestamp", -1, "1969-12-31T23:59:59.999999"),
    ("io.debezium.time.NanoTimestamp", 1_000_001_999, "1970-01-01T00:00:01.000001"),
])
def test_epoch_timestamps_render_without_zone(semantic: str, value: int, expected: str) -> None:
    assert one(f("ts", "int64", semantic), value) == expected


@pytest.mark.parametrize("value, expected", [
    ("2026-11-20T08:15:00Z", "2026-11-20T08:15:00Z"),
    ("2026-11-20T08:15:00.000000Z", "2026-11-20T08:15:00Z"),
    ("2026-11-20T08:15:00.5Z", "2026-11-20T08:15:00.500000Z"),
    ("2026-11-20T08:15:00.123456789Z", "2026-11-20T08:15:00.123456Z"),
    ("2026-11-20T01:15:00+02:00", "2026-11-19T23:15:00Z"),
    ("1900-01-01T00:00:00Z", "1900-01-01T00:00:00Z"),
    ("2999-12-31T18:29:59.999999Z", "2999-12-31T18:29:59.999999Z"),
])
def test_zoned_timestamps_become_utc_z(value: str, expected: str) -> None:
    assert one(f("ts", "string", "io.debezium.time.ZonedTimestamp"), value) == expected


def test_dates_and_times() -> None:
    date_field = f("d", "int32", "io.debezium.time.Date")
    assert one(date_field, 0) == "1970-01-01"
    assert one(date_field, -25567) == "1900-01-01"
    assert one(date_field, -719162) == "0001-01-01"
    assert one(date_field, 2932896) == "9999-12-31"
    assert one(f("d", "int32", "org.apache.kafka.connect.data.Date"), 1) == "1970-01-02"
    micro = f("t", "int64", "io.debezium.time.MicroTime")
    assert one(micro, 0) == "00:00:00"
    assert one(micro, 86_399_999_999) == "23:59:59.999999"
    assert one(micro, 86_400_000_000) == "24:00:00"  # PostgreSQL allows 24:00:00
    assert one(f("t", "int32", "io.debezium.time.Time"), 45_296_789) == "12:34:56.789000"
    assert one(f("t", "int64", "io.debezium.time.NanoTime"), 1_000) == "00:00:00.000001"
    zoned = f("t", "string", "io.debezium.time.ZonedTime")
    assert one(zoned, "08:15:00Z") == "08:15:00Z"
    assert one(zoned, "08:15:00.5+02:00") == "06:15:00.500000Z"
    assert one(zoned, "23:30:00-05:30") == "05:00:00Z"


def test_out_of_range_dates_are_undecodable() -> None:
    with pytest.raises(UndecodableValue):
        one(f("d", "int32", "io.debezium.time.Date"), 10 ** 9)
    with pytest.raises(UndecodableValue):
        one(f("t", "int64", "io.debezium.time.MicroTime"), -1)


@pytest.mark.parametrize("micros, expected", [
    (0, "PT0S"), (5_400_000_000, "PT1H30M"), ((3 * 24 + 4) * 3_600_000_000, "P3DT4H"),
    (-(26 * 3_600_000_000 + 184_500_000), "P-1DT-2H-3M-4.5S"), (-1, "PT-0.000001S"), (500_000, "PT0.5S"),
    (86_400_000_000, "P1D"), (61_000_000, "PT1M1S"),
])
def test_micro_durations_become_iso_8601(micros: int, expected: str) -> None:
    assert iso_duration_from_micros(micros) == expected
    assert one(f("iv", "int64", "io.debezium.time.MicroDuration"), micros) == expected


def test_interval_strings_drop_zero_parts() -> None:
    assert interval_text("P1Y2M3DT4H5M6.78S") == "P1Y2M3DT4H5M6.78S"
    assert interval_text("P0Y0M1DT2H0M0S") == "P1DT2H"
    assert interval_text("P0Y0M0DT0H0M0S") == "PT0S"
    assert interval_text("P0Y-1M0DT0H0M-0.5S") == "P-1MT-0.5S"
    assert one(f("iv", "string", "io.debezium.time.Interval"), "P0Y0M3DT4H0M0S") == "P3DT4H"
    with pytest.raises(UndecodableValue):
        one(f("iv", "string", "io.debezium.time.Interval"), "three days")


# -------------------------------------------------------------------------------- json, uuid, bytes, ...

def test_json_is_parsed_and_keeps_big_integers_exact() -> None:
    field = f("j", "string", "io.debezium.data.Json")
    doc = '{"a": [1, {"b": null}], "c": "€😀", "big": 123456789012345678901234567890, "f": 1.25}'
    assert one(field, doc) == json.loads(doc)
    assert one(field, "[]") == [] and one(field, "{}") == {} and one(field, "null") is None
    with pytest.raises(UndecodableValue):
        one(field, "{not json")


def test_uuid_enum_xml_ltree_network_types() -> None:
    assert one(f("u", "string", "io.debezium.data.Uuid"), "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11") == \
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert one(f("e", "string", "io.debezium.data.Enum", parameters={"allowed": "sad,ok"}), "ok") == "ok"
    assert one(f("e", "string", "io.debezium.data.EnumSet", parameters={"allowed": "a,b"}), "a,b") == "a,b"
    assert one(f("x", "string", "io.debezium.data.Xml"), "<a>€</a>") == "<a>€</a>"
    assert one(f("l", "string", "io.debezium.data.Ltree"), "Top.Science") == "Top.Science"
    for value in ("192.168.1.5/24", "2001:db8::/32", "08:00:2b:01:02:03"):
        assert one(f("n", "string"), value) == value


def test_bytes_and_bits() -> None:
    assert one(f("b", "bytes"), base64.b64encode(b"\x00\xff\x10").decode()) == "AP8Q"
    assert one(f("b", "bytes"), "") == ""
    with pytest.raises(UndecodableValue):
        one(f("b", "bytes"), "@@@")
    bits = f("bits", "bytes", "io.debezium.data.Bits", parameters={"length": "10"})
    # Bits are the little-endian bytes of the bit string's value: B'1010101010' = 682 = 0x02AA.
    assert one(bits, base64.b64encode((682).to_bytes(2, "little")).decode()) == "1010101010"
    assert one(bits, base64.b64encode(b"\x01\x00").decode()) == "0000000001"


def test_arrays_recurse_into_their_items() -> None:
    assert one(f("a", "array", items=f("", "string", optional=True)), ["€😀", None, ""]) == ["€😀", None, ""]
    assert one(f("a", "array", items=f("", "int32")), []) == []
    decimals = f("a", "array", items={"type": "bytes", "optional": True,
                                      "name": "org.apache.kafka.connect.data.Decimal", "parameters": {"scale": "2"}})
    assert one(decimals, [b64_unscaled(150), None, b64_unscaled(-225)]) == ["1.50", None, "-2.25"]
    dates = f("a", "array", items=f("", "int32", "io.debezium.time.Date"))
    assert one(dates, [0, -1]) == ["1970-01-01", "1969-12-31"]
    with pytest.raises(UndecodableValue):
        one(f("a", "array", items=f("", "int32")), [1, "2"])


# ---------------------------------------------------------------------------------------- TOAST placeholder

@pytest.mark.parametrize("field, placeholder", [
    (f("big", "string"), PLACEHOLDER),
    (f("big", "string", "io.debezium.data.Json"), PLACEHOLDER),
    (f("big", "bytes"), base64.b64encode(PLACEHOLDER.encode()).decode()),
    (dec_field("big", 2), base64.b64encode(PLACEHOLDER.encode()).decode()),
    (f("big", "array", items=f("", "string")), [PLACEHOLDER]),
    (f("big", "array", items=f("", "bytes")), [base64.b64encode(PLACEHOLDER.encode()).decode()]),
    (f("big", "array", items=f("", "int32")), list(PLACEHOLDER.encode())),
    (f("big", "map", keys=f("", "string"), values=f("", "string")), {PLACEHOLDER: PLACEHOLDER}),
])
def test_unchanged_toast_placeholder_never_reaches_the_row(field: dict[str, Any], placeholder: Any) -> None:
    message = envelope([ID, f("n", "int32"), field], {"id": 1, "n": 2, "big": placeholder}, op="u")
    record = decode_message(TOPIC, key_msg({"id": 1}, [ID]), message)
    assert record.row == {"id": 1, "n": 2}
    assert record.unchanged == ("big",)


def test_custom_placeholder_is_honoured() -> None:
    message = envelope([ID, f("big", "string")], {"id": 1, "big": "<toasted>"}, op="u")
    options = DecodeOptions(unavailable_placeholder="<toasted>")
    record = decode_message(TOPIC, key_msg({"id": 1}, [ID]), message, options=options)
    assert record.unchanged == ("big",) and "big" not in record.row


def test_placeholder_text_in_an_insert_is_data() -> None:
    message = envelope([ID, f("big", "string")], {"id": 1, "big": PLACEHOLDER}, op="c")
    assert decode_message(TOPIC, key_msg({"id": 1}, [ID]), message).row["big"] == PLACEHOLDER


# --------------------------------------------------------------------------------------------------- ops

def test_snapshot_create_update_carry_source_position() -> None:
    fields = [ID, f("name", "string")]
    for op, snapshot, expected in (("r", "true", True), ("r", "last", True), ("r", "first", True),
                                   ("r", "incremental", True), ("c", "false", False), ("u", None, False)):
        record = decode_message(TOPIC, key_msg({"id": 1}, [ID]),
                                envelope(fields, {"id": 1, "name": "a"}, op=op, snapshot=snapshot))
        assert record.op == op and record.source.snapshot is expected
        assert record.key == {"id": 1} and record.row == {"id": 1, "name": "a"}
        assert (record.source.lsn, record.source.tx_id, record.source.ts_ms) == (123456, 777, 1_700_000_000_000)
        assert (record.source.database, record.source.schema, record.table) == ("claims_db", "public", "things")
        assert record.event_id


def test_delete_takes_the_key_from_the_message_or_the_before_image() -> None:
    fields = [ID, f("name", "string")]
    message = envelope(fields, None, op="d", before={"id": 7, "name": None})
    record = decode_message(TOPIC, key_msg({"id": 7}, [ID]), message)
    assert (record.op, record.key, record.row, record.unchanged) == ("d", {"id": 7}, None, ())
    columns = {"things": [ColumnType("id", "integer", pk=True, not_null=True), ColumnType("name", "text")]}
    assert decode_message(TOPIC, None, message, columns).key == {"id": 7}
    with pytest.raises(MissingKey):
        decode_message(TOPIC, None, message)


def test_truncate_has_an_empty_key_and_no_row() -> None:
    record = decode_message(TOPIC, None, envelope([ID], None, op="t"))
    assert (record.op, record.key, record.row) == ("t", {}, None)
    assert decode_message(TOPIC, None, envelope([ID], None, op="t", with_schema=False)).op == "t"


def test_tombstones_heartbeats_schema_changes_and_markers_are_skipped() -> None:
    assert decode_message(TOPIC, key_msg({"id": 1}), None) == Skipped("tombstone", "things")
    assert decode_message(TOPIC, key_msg({"id": 1}), b"") == Skipped("tombstone", "things")
    heartbeat = {"schema": {"type": "struct", "fields": [f("ts_ms", "int64", optional=False)], "optional": False,
                            "name": "io.debezium.connector.common.Heartbeat"}, "payload": {"ts_ms": 1}}
    assert decode_message("__debezium-heartbeat.claims_db", None, orjson.dumps(heartbeat)).kind == "heartbeat"
    assert decode_message(TOPIC, None, orjson.dumps(heartbeat)).kind == "heartbeat"
    assert decode_message(TOPIC, None, b'{"ts_ms": 1}').kind == "heartbeat"
    schema_change = {"source": source(), "databaseName": "claims_db", "ddl": "ALTER TABLE ...", "tableChanges": []}
    assert decode_message(TOPIC, None, orjson.dumps(schema_change)).kind == "schema_change"
    marker = {"status": "BEGIN", "id": "571:53195829", "event_count": None, "ts_ms": 1}
    assert decode_message("claims_db.transaction", None, orjson.dumps(marker)).kind == "transaction_marker"
    message = envelope([ID], None, op="m")
    assert decode_message(TOPIC, None, message).kind == "logical_message"


# ---------------------------------------------------------------------------------------------- schemaless

COLUMNS_DOC = {"things": [
    {"name": "id", "type": "integer", "pk": True, "not_null": True},
    {"name": "amount", "type": "numeric(12,2)", "pk": False, "not_null": False},
    {"name": "n_any", "type": "numeric", "pk": False, "not_null": False},
    {"name": "loss_time", "type": "timestamp with time zone", "pk": False, "not_null": False},
    {"name": "form_time", "type": "timestamp without time zone", "pk": False, "not_null": False},
    {"name": "ts3", "type": "timestamp(3) without time zone", "pk": False, "not_null": False},
    {"name": "d", "type": "date", "pk": False, "not_null": False},
    {"name": "t", "type": "time without time zone", "pk": False, "not_null": False},
    {"name": "tz", "type": "time with time zone", "pk": False, "not_null": False},
    {"name": "iv", "type": "interval", "pk": False, "not_null": False},
    {"name": "u", "type": "uuid", "pk": False, "not_null": False},
    {"name": "details", "type": "jsonb", "pk": False, "not_null": False},
    {"name": "tags", "type": "text[]", "pk": False, "not_null": False},
    {"name": "nums", "type": "integer[]", "pk": False, "not_null": False},
    {"name": "raw", "type": "bytea", "pk": False, "not_null": False},
    {"name": "ok", "type": "boolean", "pk": False, "not_null": False},
    {"name": "lat", "type": "double precision", "pk": False, "not_null": False},
    {"name": "small", "type": "smallint", "pk": False, "not_null": False},
    {"name": "big", "type": "bigint", "pk": False, "not_null": False},
    {"name": "vin", "type": "character(17)", "pk": False, "not_null": False},
    {"name": "status", "type": "claim_status", "pk": False, "not_null": False},
    {"name": "bits", "type": "bit(10)", "pk": False, "not_null": False},
]}

SCHEMALESS_AFTER = {
    "id": 1, "amount": b64_unscaled(123450), "n_any": {"scale": 3, "value": b64_unscaled(1500)},
    "loss_time": "2026-11-20T08:15:00Z", "form_time": -2208988800000000, "ts3": 1500, "d": -1,
    "t": 3_600_000_000, "tz": "10:00:00+02:00", "iv": 5_400_000_000, "u": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
    "details": '{"weather": "rain"}', "tags": ["urgent", None], "nums": [], "raw": "AP8Q", "ok": True,
    "lat": 48.85, "small": -32768, "big": 2 ** 63 - 1, "vin": "1HGCM82633A004352", "status": "fnol",
    "bits": base64.b64encode((682).to_bytes(2, "little")).decode(),
}

SCHEMALESS_EXPECTED = {
    "id": 1, "amount": "1234.50", "n_any": "1.5", "loss_time": "2026-11-20T08:15:00Z",
    "form_time": "1900-01-01T00:00:00", "ts3": "1970-01-01T00:00:01.500000", "d": "1969-12-31", "t": "01:00:00",
    "tz": "08:00:00Z", "iv": "PT1H30M", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "details": {"weather": "rain"},
    "tags": ["urgent", None], "nums": [], "raw": "AP8Q", "ok": True, "lat": 48.85, "small": -32768,
    "big": 2 ** 63 - 1, "vin": "1HGCM82633A004352", "status": "fnol", "bits": "1010101010",
}


def test_schemaless_records_decode_with_exported_column_types() -> None:
    columns = column_types_from_json(COLUMNS_DOC)
    message = envelope([], SCHEMALESS_AFTER, with_schema=False)
    record = decode_message(TOPIC, key_msg({"id": 1}), message, columns)
    assert record.row == SCHEMALESS_EXPECTED and record.key == {"id": 1}
    # No message key: the key comes from the pk columns.
    assert decode_message(TOPIC, None, message, columns).key == {"id": 1}
    # Parsed dicts and text are accepted as well as bytes.
    assert decode_message(TOPIC, {"id": 1}, orjson.loads(message), columns) == record
    assert decode_message(TOPIC, '{"id": 1}', message.decode(), columns) == record


def test_schemaless_string_and_double_decimals() -> None:
    columns = column_types_from_json(COLUMNS_DOC)
    after = {**SCHEMALESS_AFTER, "amount": "-1234.50", "n_any": "1.500"}
    assert decode_message(TOPIC, None, envelope([], after, with_schema=False), columns).row["amount"] == "-1234.50"
    after = {**SCHEMALESS_AFTER, "amount": 1234.5}
    assert decode_message(TOPIC, None, envelope([], after, with_schema=False), columns).row["amount"] == "1234.50"
    options = DecodeOptions(decimal_handling="string")
    int_cols = {"things": [ColumnType("id", "integer", pk=True), ColumnType("n", "numeric(10,0)")]}
    message = envelope([], {"id": 1, "n": "1234"}, with_schema=False)
    assert decode_message(TOPIC, None, message, int_cols, options=options).row["n"] == "1234"


def test_schemaless_toast_placeholder_is_unchanged() -> None:
    columns = column_types_from_json(COLUMNS_DOC)
    after = {**SCHEMALESS_AFTER, "details": PLACEHOLDER, "tags": [PLACEHOLDER]}
    inserted = {**SCHEMALESS_AFTER, "tags": [PLACEHOLDER]}
    record = decode_message(TOPIC, None, envelope([], inserted, with_schema=False), columns)
    assert record.op == "c" and record.row["tags"] == [PLACEHOLDER]  # inserts carry every value: it is data
    record = decode_message(TOPIC, None, envelope([], after, op="u", with_schema=False), columns)
    assert set(record.unchanged) == {"details", "tags"} and not {"details", "tags"} & set(record.row)


def test_unknown_postgres_types_decode_as_text() -> None:
    columns = {"things": [ColumnType("id", "integer", pk=True), ColumnType("geo", "USER-DEFINED enum"),
                          ColumnType("addr", "inet"), ColumnType("x", "some_extension_type")]}
    message = envelope([], {"id": 1, "geo": "a", "addr": "::1", "x": "whatever"}, with_schema=False)
    assert decode_message(TOPIC, None, message, columns).row == {"id": 1, "geo": "a", "addr": "::1", "x": "whatever"}


# ---------------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("value", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"',
                                   b'{"schema": 5, "payload": {}}', b'{"id": 1, "name": "flattened row"}'])
def test_malformed_messages(value: bytes) -> None:
    with pytest.raises(MalformedMessage) as exc:
        decode_message(TOPIC, None, value)
    assert exc.value.reason and exc.value.topic == TOPIC


def test_unknown_op_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="unknown op"):
        decode_message(TOPIC, None, envelope([ID], {"id": 1}, op="x"))


def test_schemaless_without_column_types_is_unknown() -> None:
    message = envelope([], {"id": 1}, with_schema=False)
    with pytest.raises(UnknownColumnTypes) as exc:
        decode_message(TOPIC, None, message)
    assert "export-columns" in exc.value.reason and exc.value.table == "things"
    with pytest.raises(UnknownColumnTypes):
        decode_message(TOPIC, None, message, {"other_table": []})


def test_columns_that_differ_from_the_schema_are_a_mismatch() -> None:
    columns = {"things": [ColumnType("id", "integer", pk=True), ColumnType("name", "text")]}
    with pytest.raises(SchemaMismatch) as exc:
        decode_message(TOPIC, None, envelope([], {"id": 1, "name": "a", "added": 5}, with_schema=False), columns)
    assert "added" in exc.value.reason and "export-columns" in exc.value.reason
    with pytest.raises(SchemaMismatch):
        decode_message(TOPIC, None, envelope([ID], {"id": 1, "extra": 2}))


def test_every_decode_error_is_a_decode_error_with_a_reason() -> None:
    for cls in (MalformedMessage, UnknownColumnTypes, SchemaMismatch, UndecodableValue, MissingKey):
        assert issubclass(cls, DecodeError)
        assert cls("why and what to do").reason == "why and what to do"


# ----------------------------------------------------------------------------------------------- caching

def test_cached_and_uncached_decoding_agree_and_schema_changes_are_picked_up() -> None:
    fields = [ID, dec_field("amount", 2)]
    message = envelope(fields, {"id": 1, "amount": b64_unscaled(5)})
    uncached = decode_message(TOPIC, key_msg({"id": 1}, [ID]), message, options=DecodeOptions(cache_schemas=False))
    first = decode_message(TOPIC, key_msg({"id": 1}, [ID]), message)
    second = decode_message(TOPIC, key_msg({"id": 1}, [ID]), message)
    assert uncached == first == second and first.row["amount"] == "0.05"
    # Same table, a column added: a new schema text, decoded with the new column.
    wider = envelope([*fields, f("note", "string")], {"id": 1, "amount": b64_unscaled(5), "note": "n"})
    assert decode_message(TOPIC, key_msg({"id": 1}, [ID]), wider).row == {"id": 1, "amount": "0.05", "note": "n"}


# ------------------------------------------------------------------------------------------ column types

def test_column_types_round_trip_through_json(tmp_path) -> None:  # noqa: ANN001
    columns = column_types_from_json(COLUMNS_DOC)
    path = tmp_path / "columns.json"
    text = dump_column_types(columns, path)
    assert json.loads(text) == COLUMNS_DOC
    assert load_column_types(path) == columns
    assert columns["things"][0] == ColumnType("id", "integer", pk=True, not_null=True)


def test_dead_letter_of_a_huge_message_stays_under_the_broker_limit_and_says_it_was_cut() -> None:
    # A dead letter over ~1 MB is rejected by the broker, and the normalizer then retried its batch forever.
    import hashlib

    from services.cdc_normalizer.pipeline import RawMessage, dead_letter

    value = b"x" * (900 * 1024)
    letter = dead_letter(RawMessage("claims_db.public.claims", 0, 7, b"k", value), "MalformedMessage", "not JSON")
    body = json.loads(letter.value)
    assert len(letter.value) < 512 * 1024
    assert body["original_value_truncated"] is True and body["original_value_bytes"] == len(value)
    assert body["original_value_sha256"] == hashlib.sha256(value).hexdigest()
    small = json.loads(dead_letter(RawMessage("t", 0, 1, None, b"{}"), "X", "y").value)
    assert "original_value_truncated" not in small and small["original_value_b64"] == "e30="
