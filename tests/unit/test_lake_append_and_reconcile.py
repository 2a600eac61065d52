"""Pure parts of the lakehouse: append-table column rules, reconciliation normal form, checkpoint fix, lake lock."""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from datetime import date, datetime, time as dtime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from claims_shared.contracts.pii import PiiTokenizer
from claims_shared.settings import PlatformSettings
from claimsctl.lake.maintenance import lake_tables, last_checkpoint_without_parts
from claimsctl.lake.reconcile import (
    compare_rows,
    lake_normal_row,
    postgres_normal_row,
    table_columns,
)
from services.delta_compactor.append_tables import (
    APPEND_BY_TOPIC,
    APPEND_TABLES,
    AppendRecordError,
    decode_append_record,
    flatten_record,
    table_schema,
    unique_by_key,
)
from services.delta_compactor.lake_lock import LakeLock, LakeLockTimeout
from services.delta_compactor.lake_schema import LakeLayout
from tests.lake_records import BUILDERS, SCHEMAS, T0, encoded


def _table(name: str):  # noqa: ANN202
    return next(t for t in APPEND_TABLES if t.name == name)


def _row(name: str, n: int = 1, kafka_ts_ms: int | None = None) -> dict:
    table = _table(name)
    record = decode_append_record(table, encoded(SCHEMAS[name], BUILDERS[name](n)))
    return flatten_record(table, record, topic=table.topic, partition=2, offset=40 + n, kafka_ts_ms=kafka_ts_ms,
                          today=lambda: date(2030, 1, 1))


def test_append_tables_live_under_append_and_cover_every_stream_topic() -> None:
    assert LakeLayout("s3://lake/").append("documents") == "s3://lake/append/documents"
    assert set(APPEND_BY_TOPIC) == {"telematics.trips.v1", "telematics.events.v1", "telematics.driver-scores.v1",
                                    "claims.documents.v1", "claims.fraud-alerts.v1", "claims.extract-rows.v1"}
    assert _table("driver_scores").key == ("vehicle_id", "trip_id")


def test_nested_records_are_flattened_and_arrays_become_json_text() -> None:
    names = [f.name for f in table_schema(_table("documents")).fields]
    for column in ("source_bucket", "exif_gps_lat", "fields_claim_number", "fields_loss_date", "fields_amounts_json",
                   "notes_json"):
        assert column in names
    assert "fields" not in names and "exif" not in names
    assert names[-4:] == ["_kafka_topic", "_kafka_partition", "_kafka_offset", "_event_date"]
    types = {f.name: f.dataType.simpleString() for f in table_schema(_table("documents")).fields}
    assert types["fields_loss_date"] == "date" and types["_event_date"] == "date"
    row = _row("documents", kafka_ts_ms=T0)
    assert row["fields_loss_date"] == date(2026, 5, 27)
    assert json.loads(row["fields_amounts_json"]) == [1234.5, 10.0]
    assert json.loads(row["notes_json"]) == ["a note"]


def test_timestamps_are_utc_and_the_event_date_comes_from_the_main_timestamp() -> None:
    row = _row("telematics_trips", 1)
    assert row["start_ts"] == datetime(2026, 5, 28, 21, 26, 40, tzinfo=timezone.utc)
    assert row["_event_date"] == date(2026, 5, 28)
    assert (row["_kafka_topic"], row["_kafka_partition"], row["_kafka_offset"]) == ("telematics.trips.v1", 2, 41)
    events = json.loads(row["events_json"])
    assert events[0]["start_ts"] == "2026-05-28T21:27:40Z"
    types = {f.name: f.dataType.simpleString() for f in table_schema(_table("telematics_trips")).fields}
    assert types["start_ts"] == "timestamp" and types["events_json"] == "string"


def test_without_a_main_timestamp_the_event_date_is_the_kafka_ingestion_date_else_today() -> None:
    assert _row("documents", kafka_ts_ms=T0)["_event_date"] == date(2026, 5, 28)
    assert _row("documents", kafka_ts_ms=None)["_event_date"] == date(2030, 1, 1)


def test_undecodable_or_keyless_records_are_errors_for_the_dead_letter_topic() -> None:
    with pytest.raises(AppendRecordError):
        decode_append_record(_table("telematics_events"), b"\x02garbage")
    with pytest.raises(AppendRecordError):
        decode_append_record(_table("telematics_events"), b"")
    table = _table("fraud_alerts")
    record = decode_append_record(table, encoded(SCHEMAS["fraud_alerts"], {**BUILDERS["fraud_alerts"](1),
                                                                           "alert_id": ""}))
    with pytest.raises(AppendRecordError, match="alert_id"):
        flatten_record(table, record, topic=table.topic, partition=0, offset=0, kafka_ts_ms=None)


def test_a_merge_source_keeps_the_first_row_of_each_key() -> None:
    rows = [_row("telematics_events", 1), _row("telematics_events", 2), _row("telematics_events", 1)]
    unique = unique_by_key(_table("telematics_events"), rows)
    assert [r["event_id"] for r in unique] == ["evt-1", "evt-2"] and unique[0] is rows[0]


# ------------------------------------------------------------------------------------------------ reconcile


def _customer_pg(**over) -> dict:  # noqa: ANN003
    row = {"customer_id": uuid.UUID("00000000-0000-0000-0000-000000000001"), "full_name": "Ada Lovelace",
           "date_of_birth": date(1980, 2, 3), "email": "ada@example.com", "phone": "+33612345678",
           "national_id": "X1", "address": {"city": "Paris", "zip": "75001"}, "marketing_opt_in": True,
           "created_at": datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc),
           "updated_at": datetime(2026, 1, 2, 10, 0, tzinfo=timezone.utc)}
    row.update(over)
    return row


def test_postgres_rows_are_tokenized_like_the_normalizer_and_match_the_lake() -> None:
    tokenizer = PiiTokenizer(b"k")
    cols = table_columns("customers")
    pg = postgres_normal_row(cols, _customer_pg(), tokenizer)
    lake = lake_normal_row(cols, {
        "customer_id": "00000000-0000-0000-0000-000000000001", "full_name": tokenizer.token("Ada Lovelace"),
        "date_of_birth": tokenizer.token("1980-02-03"), "email": tokenizer.token("ada@example.com"),
        "phone": tokenizer.token("+33612345678"), "national_id": tokenizer.token("X1"),
        "address": '{"city":"Paris","zip":"75001"}', "marketing_opt_in": True,
        "created_at": datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc),
        "updated_at": datetime(2026, 1, 2, 10, 0, tzinfo=timezone.utc),
    })
    assert compare_rows(cols, [pg], [lake]).equal


def test_differences_name_missing_extra_and_differing_columns() -> None:
    tokenizer = PiiTokenizer(b"k")
    cols = table_columns("customers")
    a = postgres_normal_row(cols, _customer_pg(), tokenizer)
    b = postgres_normal_row(cols, _customer_pg(customer_id=uuid.UUID(int=2)), tokenizer)
    changed = postgres_normal_row(cols, _customer_pg(email="new@example.com", marketing_opt_in=False), tokenizer)
    extra = postgres_normal_row(cols, _customer_pg(customer_id=uuid.UUID(int=3)), tokenizer)
    diff = compare_rows(cols, [a, b], [changed, extra])
    assert not diff.equal
    assert diff.missing == ['["00000000-0000-0000-0000-000000000002"]']
    assert diff.extra == ['["00000000-0000-0000-0000-000000000003"]']
    assert diff.different == [('["00000000-0000-0000-0000-000000000001"]', ["email", "marketing_opt_in"])]


def test_normal_form_keeps_decimal_scale_time_text_and_timestamp_kinds_apart() -> None:
    cols = table_columns("adjusters")
    tokenizer = PiiTokenizer(b"k")
    pg = postgres_normal_row(cols, {"adjuster_id": 1, "full_name": "A", "email": "a@x", "region": "N",
                                    "skills": ["motor"], "max_open_claims": 3, "shift_start": dtime(8, 30),
                                    "active": True}, tokenizer)
    lake = lake_normal_row(cols, {"adjuster_id": 1, "full_name": "A", "email": "a@x", "region": "N",
                                  "skills": ["motor"], "max_open_claims": 3, "shift_start": "08:30:00",
                                  "active": True})
    assert compare_rows(cols, [pg], [lake]).equal
    claims = table_columns("claims")
    base = {c: None for c in claims.columns}
    one = postgres_normal_row(claims, {**base, "claim_id": "c", "claimed_amount": Decimal("10.50")}, tokenizer)
    two = lake_normal_row(claims, {**base, "claim_id": "c", "claimed_amount": Decimal("10.5")})
    assert compare_rows(claims, [one], [two]).different == [('["c"]', ["claimed_amount"])]


# ------------------------------------------------------------------------------------------------ maintenance


def test_single_part_checkpoints_lose_a_parts_field_for_trino() -> None:
    assert last_checkpoint_without_parts('{"version":10,"size":6}') is None
    assert json.loads(last_checkpoint_without_parts('{"version":10,"size":6,"parts":1}')) == {"version": 10, "size": 6}
    assert json.loads(last_checkpoint_without_parts('{"version":10,"parts":null}')) == {"version": 10}
    assert last_checkpoint_without_parts('{"version":10,"parts":3}') is None


def test_every_table_is_maintained_with_its_filter_columns() -> None:
    tables = {t.name: t for t in lake_tables(PlatformSettings(lake_root="/lake"))}
    assert tables["current/claims"].zorder == ("claim_id", "status")
    assert tables["current/claims"].uri == "/lake/current/claims"
    assert tables["history/policies"].zorder == ("policy_id",)
    assert tables["append/telematics_trips"].zorder == ("vehicle_id",)
    assert tables["append/fraud_alerts"].zorder == ("claim_id",)
    assert "_compactor_offsets" in tables and len(tables) == 8 * 2 + len(APPEND_TABLES) + 1


def test_lake_root_defaults_to_the_lake_bucket() -> None:
    assert PlatformSettings(lake_bucket="b").lake_root_uri == "s3://b"
    assert PlatformSettings(lake_root="/tmp/x/").lake_root_uri == "/tmp/x"


def _hold(path: str, seconds: float, ready) -> None:  # noqa: ANN001
    with LakeLock(Path(path)).held():
        ready.set()
        time.sleep(seconds)


def test_the_lake_lock_excludes_another_process_until_released(tmp_path: Path) -> None:
    path = tmp_path / "lake.lock"
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(path), 1.5, ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(LakeLockTimeout):
            with LakeLock(path).held(timeout_s=0.2):
                pass
        started = time.monotonic()
        with LakeLock(path).held(timeout_s=30):
            assert time.monotonic() - started > 0.3
    finally:
        holder.join(30)
