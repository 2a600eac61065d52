"""Output contracts of the normalizer (`claims.cdc.<table>.v1`): coverage, compatibility guard, exact round trips."""

from __future__ import annotations

import copy
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from claims_shared.contracts.cdc import ChangeRecord, SourcePosition, canonical_json
from claims_shared.contracts.cdc_avro import (
    FINGERPRINT_HEADER,
    CdcEncoder,
    ContractError,
    UnknownContractError,
    confluent_frame,
    confluent_unframe,
    contract_fingerprint,
    contract_json,
    contract_path,
    decode_change,
    encode_change,
    key_fields,
    load_contract,
    pii_columns,
    row_fields,
)
from claims_shared.contracts.compatibility import full_compatibility_problems
from claims_shared.contracts.pii import DEFAULT_PII_POLICY
from claims_shared.contracts.topics import CDC_TABLES

REPO = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).parent / "contract_snapshots" / "cdc"
SCHEMA_SQL = REPO / "infra" / "postgres" / "schema.sql"

# schema.sql spelling -> PostgreSQL's format_type() spelling (what the contracts' `pg_type` and export-columns use)
_TYPE_SPELLING = {
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "time": "time without time zone",
}


def _schema_sql_columns() -> dict[str, list[tuple[str, str, bool]]]:
    """table -> [(column, format_type text, is primary key)] from the CREATE TABLE statements of schema.sql."""
    tables = {}
    for match in re.finditer(r"CREATE TABLE (\w+) \((.*?)\n\);", SCHEMA_SQL.read_text(), re.S):
        columns = []
        for line in match[2].splitlines():
            line = line.strip()
            if not line or line.startswith(("--", "CHECK", "PRIMARY KEY", "UNIQUE", "FOREIGN KEY", "CONSTRAINT")):
                continue
            col = re.match(r"(\w+)\s+(double precision|numeric\(\d+, ?\d+\)|char\(\d+\)|\w+(?:\[\])?)", line)
            assert col, f"cannot parse column line of {match[1]}: {line}"
            pg_type = col[2].lower().replace(", ", ",")
            pg_type = re.sub(r"^char\((\d+)\)$", r"character(\1)", _TYPE_SPELLING.get(pg_type, pg_type))
            columns.append((col[1], pg_type, "PRIMARY KEY" in line))
        tables[match[1]] = columns
    return tables


SQL_COLUMNS = _schema_sql_columns()


def _source(**overrides: Any) -> SourcePosition:
    fields = dict(lsn=24_023_128, tx_id=771, ts_ms=1_772_359_200_123, snapshot=False, database="claims_db",
                  schema="public")
    fields.update(overrides)
    return SourcePosition(**fields)


CLAIM_ROW = {
    "claim_id": "0b6c8a3e-6f1d-4c8e-9a51-3f2d7c1e9b20",
    "claim_number": "CLM-2026-0004567",
    "policy_id": "1b6c8a3e-6f1d-4c8e-9a51-3f2d7c1e9b20",
    "vehicle_id": "2b6c8a3e-6f1d-4c8e-9a51-3f2d7c1e9b20",
    "driver_id": None,
    "status": "assessing",
    "loss_time": "2026-03-01T08:15:30.123456Z",
    "loss_local_time": "2026-03-01T09:15:30",
    "loss_lat": 48.8566,
    "loss_lon": -2.3522,
    "loss_type": "collision",
    "description": "Heurté à l'arrêt — 追突 🚗",
    "reported_at": "2026-03-01T10:00:00Z",
    "claimed_amount": "1234.50",
    "reserve_amount": "-0.01",
    "settled_amount": None,
    "sla_due_at": "2026-03-08T10:00:00Z",
    "third_party_involved": True,
    "injury_count": 0,
    "tags": ["urgent", "glass"],
    "details": {"witnesses": [{"name": "Zoë", "age": 41}], "police_report": None, "speed_kmh": 31.5},
    "row_version": 9_007_199_254_740_993,
    "created_at": "2026-03-01T10:00:00Z",
    "updated_at": "2026-03-01T10:05:00.500000Z",
}


def _claim(op: str = "u", row: dict[str, Any] | None = CLAIM_ROW, **kwargs: Any) -> ChangeRecord:
    return ChangeRecord(table="claims", op=op, key={"claim_id": CLAIM_ROW["claim_id"]}, row=row,
                        source=kwargs.pop("source", _source()), **kwargs)


def _round_trip(record: ChangeRecord) -> dict[str, Any]:
    key, value = encode_change(record)
    assert json.loads(key) == record.key
    return decode_change(record.table, value)


# ---------------------------------------------------------------- (a) coverage of the PostgreSQL schema


def test_schema_sql_parses_into_every_captured_table() -> None:
    assert set(SQL_COLUMNS) == set(CDC_TABLES)


@pytest.mark.parametrize("table", CDC_TABLES)
def test_contract_row_fields_cover_every_postgres_column_with_its_type(table: str) -> None:
    fields = {f["name"]: f for f in row_fields(table)}
    expected = {name: pg_type for name, pg_type, _ in SQL_COLUMNS[table]}
    assert set(fields) == set(expected), (
        f"{contract_path(table).name} and schema.sql disagree: missing {sorted(set(expected) - set(fields))}, "
        f"extra {sorted(set(fields) - set(expected))}"
    )
    for name, pg_type in expected.items():
        assert fields[name]["pg_type"] == pg_type, f"{table}.{name}: contract says {fields[name]['pg_type']}"
        # Every column nullable with a default, so the contract can gain and lose columns compatibly.
        assert fields[name]["type"][0] == "null" and fields[name]["default"] is None, f"{table}.{name}"


@pytest.mark.parametrize("table", CDC_TABLES)
def test_contract_key_is_the_primary_key(table: str) -> None:
    assert [f["name"] for f in key_fields(table)] == [name for name, _, pk in SQL_COLUMNS[table] if pk]


@pytest.mark.parametrize("table", CDC_TABLES)
def test_contract_declares_exactly_the_pii_columns_of_the_default_policy(table: str) -> None:
    assert pii_columns(table) == dict(DEFAULT_PII_POLICY.for_table(table))
    for field in row_fields(table):
        if "pii" in field:
            assert field["type"] == ["null", "string"], f"{table}.{field['name']} carries a token: string"


@pytest.mark.parametrize("table", CDC_TABLES)
def test_contract_parses_and_names_its_record_per_table(table: str) -> None:
    schema = load_contract(table)
    assert schema["name"] == f"claims.cdc.{table}.Change"
    assert "extra_columns" not in {name for name, _, _ in SQL_COLUMNS[table]}


def test_unknown_table_has_no_contract() -> None:
    with pytest.raises(UnknownContractError, match="no output contract"):
        contract_json("no_such_table")


# ---------------------------------------------------------------- (b) compatibility guard against the snapshots


@pytest.mark.parametrize("table", CDC_TABLES)
def test_published_contract_stays_compatible_with_its_snapshot(table: str) -> None:
    snapshot_path = SNAPSHOTS / contract_path(table).name
    assert snapshot_path.is_file(), f"no snapshot of {contract_path(table).name}: copy it to {SNAPSHOTS}"
    old = json.loads(snapshot_path.read_text())
    new = contract_json(table)
    problems = full_compatibility_problems(old, new)
    assert not problems, (
        f"{contract_path(table).name} would break consumers of claims.cdc.{table}.v1:\n  "
        + "\n  ".join(problems)
        + f"\nBump the version instead: add {table}.v2.avsc (new topic claims.cdc.{table}.v2) and keep v1."
    )
    assert new == old, (
        f"{contract_path(table).name} changed compatibly; record the new published revision: "
        f"cp {contract_path(table).relative_to(REPO)} {snapshot_path.relative_to(REPO)}"
    )


def _claims_contract() -> dict[str, Any]:
    return copy.deepcopy(contract_json("claims"))


def _row_of(schema: dict[str, Any]) -> list[dict[str, Any]]:
    field = next(f for f in schema["fields"] if f["name"] == "row")
    return field["type"][1]["fields"]


def test_adding_a_nullable_column_with_default_is_compatible() -> None:
    new = _claims_contract()
    _row_of(new).insert(-1, {"name": "fraud_score", "type": ["null", "double"], "default": None})
    assert full_compatibility_problems(_claims_contract(), new) == []


def test_adding_a_field_without_default_breaks_old_data() -> None:
    new = _claims_contract()
    new["fields"].append({"name": "partition_hint", "type": "int"})
    problems = full_compatibility_problems(_claims_contract(), new)
    assert any(p.startswith("backward: partition_hint") for p in problems), problems


def test_removing_a_field_without_default_breaks_old_consumers() -> None:
    new = _claims_contract()
    new["fields"] = [f for f in new["fields"] if f["name"] != "event_id"]
    problems = full_compatibility_problems(_claims_contract(), new)
    assert any(p.startswith("forward: event_id") for p in problems), problems


def test_changing_a_column_type_is_incompatible_unless_avro_promotes_it() -> None:
    old = _claims_contract()
    promoted = _claims_contract()
    next(f for f in _row_of(promoted) if f["name"] == "injury_count")["type"] = ["null", "long"]
    assert any(p.startswith("forward: row.injury_count") for p in full_compatibility_problems(old, promoted))
    assert not any(p.startswith("backward") for p in full_compatibility_problems(old, promoted))

    changed = _claims_contract()
    next(f for f in _row_of(changed) if f["name"] == "claimed_amount")["type"] = ["null", "double"]
    problems = full_compatibility_problems(old, changed)
    assert any(p.startswith("backward: row.claimed_amount") for p in problems), problems


def test_changing_decimal_scale_or_logical_type_is_incompatible() -> None:
    new = _claims_contract()
    next(f for f in _row_of(new) if f["name"] == "claimed_amount")["type"][1]["scale"] = 3
    assert any("logical type" in p for p in full_compatibility_problems(_claims_contract(), new))
    new = _claims_contract()
    next(f for f in _row_of(new) if f["name"] == "loss_time")["type"][1]["logicalType"] = "timestamp-millis"
    assert any("logical type" in p for p in full_compatibility_problems(_claims_contract(), new))


def test_enum_symbols_removed_or_added_are_incompatible() -> None:
    removed = _claims_contract()
    removed["fields"][1]["type"]["symbols"] = ["r", "c", "u", "d"]
    assert any(p.startswith("backward: op") for p in full_compatibility_problems(_claims_contract(), removed))
    added = _claims_contract()
    added["fields"][1]["type"]["symbols"] = ["r", "c", "u", "d", "t", "m"]
    assert any(p.startswith("forward: op") for p in full_compatibility_problems(_claims_contract(), added))


def test_renaming_a_field_without_default_breaks_unless_aliased() -> None:
    renamed = _claims_contract()
    renamed["fields"][0]["name"] = "id"
    problems = full_compatibility_problems(_claims_contract(), renamed)
    assert any(p.startswith("backward: id") for p in problems)
    assert any(p.startswith("forward: event_id") for p in problems)
    renamed["fields"][0]["aliases"] = ["event_id"]
    assert not any(p.startswith("backward") for p in full_compatibility_problems(_claims_contract(), renamed))


def test_renaming_a_nullable_column_resolves_in_avro_as_drop_plus_add() -> None:
    # Avro calls this compatible (both fields have defaults); the snapshot test still stops it until reviewed.
    renamed = _claims_contract()
    next(f for f in _row_of(renamed) if f["name"] == "description")["name"] = "loss_description"
    assert full_compatibility_problems(_claims_contract(), renamed) == []


# ---------------------------------------------------------------- (c) exact round trips


def test_claims_record_round_trips_to_its_json_form() -> None:
    record = _claim()
    assert _round_trip(record) == record.to_json_dict()


def test_nulls_round_trip_as_nulls() -> None:
    row = {name: None for name in CLAIM_ROW}
    row["claim_id"] = CLAIM_ROW["claim_id"]
    record = _claim(row=row, source=_source(lsn=None, tx_id=None))
    decoded = _round_trip(record)
    assert decoded == record.to_json_dict()
    assert decoded["row"]["settled_amount"] is None and decoded["lsn"] is None


@pytest.mark.parametrize(
    "amount",
    ["0.00", "-0.01", "-1234567890.12", "9999999999.99", "-9999999999.99", "0.10", "128.00", "-128.00", "1.28"],
)
def test_decimals_round_trip_exactly(amount: str) -> None:
    row = dict(CLAIM_ROW, claimed_amount=amount, reserve_amount=amount, settled_amount=amount)
    decoded = _round_trip(_claim(row=row))["row"]
    assert decoded["claimed_amount"] == decoded["reserve_amount"] == decoded["settled_amount"] == amount


def test_decimal_with_more_digits_than_the_column_is_rejected_not_rounded() -> None:
    with pytest.raises(ContractError, match="without rounding"):
        encode_change(_claim(row=dict(CLAIM_ROW, claimed_amount="1.005")))
    with pytest.raises(ContractError, match="too many digits"):
        encode_change(_claim(row=dict(CLAIM_ROW, claimed_amount="10000000000.00")))


def test_decimal_with_trailing_zeros_beyond_the_scale_is_accepted() -> None:
    decoded = _round_trip(_claim(row=dict(CLAIM_ROW, claimed_amount="12.5000")))
    assert decoded["row"]["claimed_amount"] == "12.50"


@pytest.mark.parametrize(
    ("loss_time", "loss_local_time"),
    [
        ("1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999"),
        ("1900-01-01T00:00:00Z", "1900-01-01T00:00:00"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00"),
        ("2026-06-30T12:00:00.000001Z", "2026-06-30T12:00:00.000001"),
    ],
)
def test_timestamps_round_trip_including_pre_1970_and_far_future(loss_time: str, loss_local_time: str) -> None:
    record = _claim(row=dict(CLAIM_ROW, loss_time=loss_time, loss_local_time=loss_local_time))
    assert _round_trip(record) == record.to_json_dict()


def test_timestamptz_with_offset_is_stored_as_the_same_instant_in_utc() -> None:
    decoded = _round_trip(_claim(row=dict(CLAIM_ROW, loss_time="2026-03-01T09:15:30+01:00")))
    assert decoded["row"]["loss_time"] == "2026-03-01T08:15:30Z"


def test_dates_and_times_round_trip() -> None:
    customer = {
        "customer_id": "9e3f1c2a-0000-4000-8000-000000000001",
        "full_name": "tok_0123456789abcdef0123456789abcdef",
        "date_of_birth": "tok_fedcba9876543210fedcba9876543210",
        "email": None, "phone": None, "national_id": "tok_00000000000000000000000000000000",
        "address": {}, "marketing_opt_in": False,
        "created_at": "1955-11-05T06:00:00Z", "updated_at": "1955-11-05T06:00:00Z",
    }
    record = ChangeRecord("customers", "r", {"customer_id": customer["customer_id"]}, customer,
                          _source(snapshot=True))
    assert _round_trip(record) == record.to_json_dict()
    for shift in ["00:00:00", "08:00:00", "23:59:59.999999", "24:00:00", "07:30:00.5"]:
        adjuster = {"adjuster_id": 7, "full_name": "Ana", "email": "ana@example.com", "region": "north",
                    "skills": [], "max_open_claims": 40, "shift_start": shift, "active": True}
        decoded = _round_trip(ChangeRecord("adjusters", "c", {"adjuster_id": 7}, adjuster, _source()))
        expected = "07:30:00.500000" if shift == "07:30:00.5" else shift
        assert decoded["row"]["shift_start"] == expected


def test_policy_dates_before_1970_round_trip() -> None:
    policy = {
        "policy_id": "5a000000-0000-4000-8000-000000000005", "policy_number": "POL-1969-0000001",
        "customer_id": "9e3f1c2a-0000-4000-8000-000000000001", "product": "motor_tpft",
        "inception_date": "1969-07-20", "expiry_date": "0001-01-01", "sum_insured": "123456789012.34",
        "annual_premium": "0.00", "excess_amount": "-5.00", "currency": "EUR", "status": "active",
        "cover_options": [], "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    }
    record = ChangeRecord("policies", "u", {"policy_id": policy["policy_id"]}, policy, _source())
    assert _round_trip(record) == record.to_json_dict()


def test_empty_arrays_arrays_with_null_and_unicode_round_trip() -> None:
    for tags in ([], [None], ["", "ünïcödé", "😀", None]):
        record = _claim(row=dict(CLAIM_ROW, tags=tags, description="\u0000 nul and \u2028 separator"))
        assert _round_trip(record) == record.to_json_dict()


def test_json_column_round_trips_as_parsed_json() -> None:
    for details in ({}, [], "just a string", 42, None, {"deep": {"er": [1, {"x": [True, None, -0.5]}]}}):
        record = _claim(row=dict(CLAIM_ROW, details=details))
        assert _round_trip(record)["row"]["details"] == details


def test_columns_added_in_postgres_travel_in_extra_columns_and_round_trip() -> None:
    row = dict(CLAIM_ROW, fraud_score="0.87", reviewed=True, notes=None, metadata={"b": 1, "a": [1, "x"]})
    record = _claim(row=row)
    _, value = encode_change(record)
    raw = fastavro.schemaless_reader(io.BytesIO(value), load_contract("claims"))
    assert raw["row"]["extra_columns"] == {
        "fraud_score": '"0.87"', "reviewed": "true", "notes": "null", "metadata": '{"a":[1,"x"],"b":1}',
    }
    assert _round_trip(record) == record.to_json_dict()


def test_unchanged_toast_columns_are_absent_from_the_decoded_row() -> None:
    row = {k: v for k, v in CLAIM_ROW.items() if k not in ("details", "description")}
    record = _claim(row=row, unchanged=("description", "details"))
    decoded = _round_trip(record)
    assert decoded == record.to_json_dict()
    assert "details" not in decoded["row"] and decoded["unchanged"] == ["description", "details"]


def test_delete_and_truncate_round_trip() -> None:
    delete = _claim(op="d", row=None)
    assert _round_trip(delete) == delete.to_json_dict()
    truncate = ChangeRecord("claims", "t", {}, None, _source(lsn=99))
    key, value = encode_change(truncate)
    assert key == b"{}"
    assert decode_change("claims", value) == truncate.to_json_dict()


def test_value_alone_identifies_a_deleted_row() -> None:
    _, value = encode_change(_claim(op="d", row=None))
    assert decode_change("claims", value)["key"] == {"claim_id": CLAIM_ROW["claim_id"]}


def test_key_bytes_are_canonical_json_whatever_the_key_order() -> None:
    record = ChangeRecord("adjuster_assignments", "c", {"assignment_id": 2**40}, None, _source())
    assert encode_change(record)[0] == b'{"assignment_id":1099511627776}'
    assert encode_change(_claim())[0] == canonical_json({"claim_id": CLAIM_ROW["claim_id"]}).encode()


def test_key_with_columns_other_than_the_primary_key_is_a_contract_error() -> None:
    record = ChangeRecord("claims", "u", {"claim_number": "CLM-1"}, CLAIM_ROW, _source())
    with pytest.raises(ContractError, match="new contract version"):
        encode_change(record)


def test_value_of_the_wrong_type_is_a_contract_error_naming_the_column() -> None:
    with pytest.raises(ContractError, match=r"claims\.injury_count"):
        encode_change(_claim(row=dict(CLAIM_ROW, injury_count="two")))
    with pytest.raises(ContractError, match=r"claims\.loss_time"):
        encode_change(_claim(row=dict(CLAIM_ROW, loss_time="yesterday")))
    with pytest.raises(ContractError, match=r"claims\.loss_local_time"):
        encode_change(_claim(row=dict(CLAIM_ROW, loss_local_time="2026-03-01T09:15:30Z")))


@pytest.mark.parametrize("table", CDC_TABLES)
def test_every_table_round_trips_a_row_of_nulls(table: str) -> None:
    key = {f["name"]: _sample_key_value(f) for f in key_fields(table)}
    row = {f["name"]: None for f in row_fields(table)} | key
    record = ChangeRecord(table, "c", key, row, _source())
    assert _round_trip(record) == record.to_json_dict()


def _sample_key_value(field: dict[str, Any]) -> Any:
    return "00000000-0000-4000-8000-000000000000" if field["pg_type"] == "uuid" else 42


# ---------------------------------------------------------------- decoding with standard tools, wire formats


def test_body_decodes_with_plain_fastavro_and_the_shipped_avsc() -> None:
    """The documented way without a registry: fastavro + the .avsc, logical types included."""
    record = _claim()
    _, value = encode_change(record)
    schema = fastavro.parse_schema(json.loads(contract_path("claims").read_text()))
    datum = fastavro.schemaless_reader(io.BytesIO(value), schema)
    row = datum["row"]
    assert row["claimed_amount"] == Decimal("1234.50") and row["reserve_amount"] == Decimal("-0.01")
    assert row["loss_time"].isoformat() == "2026-03-01T08:15:30.123456+00:00"
    assert row["loss_local_time"].isoformat() == "2026-03-01T09:15:30"
    assert str(row["claim_id"]) == CLAIM_ROW["claim_id"]
    assert datum["key"] == {"claim_id": row["claim_id"]}
    assert datum["op"] == "u" and datum["event_id"] == record.event_id


def test_default_encoder_names_the_contract_in_headers() -> None:
    key, value, headers = CdcEncoder()(_claim())
    assert dict(headers) == {
        "claims-schema": b"cdc/claims.v1",
        FINGERPRINT_HEADER: contract_fingerprint("claims").encode(),
    }
    assert value[0] != 0, "a schemaless body must never look like a Confluent frame"
    assert decode_change("claims", value) == _claim().to_json_dict()


def test_confluent_frame_round_trips() -> None:
    framed = confluent_frame(258, b"body")
    assert framed == b"\x00\x00\x00\x01\x02body"
    assert confluent_unframe(framed) == (258, b"body")
    with pytest.raises(ValueError, match="magic byte"):
        confluent_unframe(b"\x01\x00\x00\x00\x01body")


class _FakeRegistry:
    def __init__(self) -> None:
        self.registered: list[tuple[str, str]] = []

    def register(self, subject: str, schema: str) -> int:
        self.registered.append((subject, schema))
        return 7


def test_encoder_with_registry_frames_values_and_registers_each_subject_once() -> None:
    registry = _FakeRegistry()
    encoder = CdcEncoder(registry)  # type: ignore[arg-type]
    for _ in range(3):
        key, value, _ = encoder(_claim())
    assert [s for s, _ in registry.registered] == ["claims.cdc.claims.v1-value"]
    assert json.loads(registry.registered[0][1]) == contract_json("claims")
    schema_id, body = confluent_unframe(value)
    assert schema_id == 7
    assert decode_change("claims", value) == decode_change("claims", body) == _claim().to_json_dict()
