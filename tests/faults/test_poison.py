"""Poison inputs, per input, while the simulator runs: each bad record lands in its dead-letter topic (or the
landing quarantine) with its reason, the good records keep flowing, and the counts reconcile
(in = out + dead-lettered)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer

from claims_shared.clients.aws import s3_client
from claims_shared.contracts.avro import SCHEMA_HEADER, encode
from claims_shared.contracts.telematics import READINGS_TOPIC
from tests.faults.conftest import FaultStack, RecordRow
from tests.faults.ledger import POISON_VEHICLE_PREFIX
from tests.faults.load import Load
from tests.faults.scenario import assert_nothing_lost_or_doubled
from tests.document_samples import png_bomb

pytestmark = [pytest.mark.faults, pytest.mark.integration]

HUGE = 900 * 1024  # under the producer's default 1 MB message limit, far over any real change or reading


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def by_original(letters: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Dead letters by the SHA-256 of the record they carry (huge records are cut in the letter, which then says
    its full size and hash: claims_shared/contracts/dead_letters.py)."""
    out = {}
    for d in letters:
        digest = d.get("original_value_sha256") or _sha(base64.b64decode(d["original_value_b64"] or ""))
        out[digest] = d
    return out


def _produce(fs: FaultStack, messages: list[tuple[str, bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": fs.settings.kafka_bootstrap, "message.max.bytes": 2 * 1024 * 1024})
    for topic, key, value in messages:
        producer.produce(topic, value, key, headers=[(SCHEMA_HEADER, b"telematics_reading.v1")]
                         if topic == READINGS_TOPIC else None)
    assert producer.flush(30) == 0


def _under_load(fs: FaultStack, seed: int, inject: Any, *, files: bool = False) -> tuple[dict, dict, Load]:
    before = fs.snapshot()
    load = Load(fs.settings, 15.0, seed=seed, files=files).start()
    time.sleep(3)
    inject()
    load.join()
    return before, fs.settle(before), load


@pytest.mark.ci_subset
def test_poison_on_raw_cdc_topics_is_dead_lettered_and_good_changes_flow(fault_stack: FaultStack,
                                                                         record_row: RecordRow) -> None:
    fs = fault_stack
    prefix = fs.settings.topic_prefix
    claims_topic = f"{prefix}.public.claims"
    key = b'{"payload": {"claim_id": "00000000-0000-0000-0000-000000000000"}}'
    poison = {
        "not JSON": (claims_topic, key, b"this is not json {"),
        "invalid UTF-8": (claims_topic, key, b'{"payload": {"op": "c", "after": {"x": "\xff\xfe"}}}'),
        "wrong schema": (claims_topic, key, b'{"payload": {"op": "c", "after": 42}}'),
        "unknown op": (claims_topic, key, b'{"schema": null, "payload": {"op": "z", "after": {}, "source": {}}}'),
        "unknown table": (f"{prefix}.public.no_such_table_{uuid.uuid4().hex[:6]}", b'{"payload": {"id": 1}}',
                          json.dumps({"payload": {"op": "c", "before": None, "after": {"id": 1},
                                                  "source": {"lsn": 1, "txId": 1, "ts_ms": 0, "db": "claims_db",
                                                             "schema": "public", "table": "no_such_table"}}}).encode()),
        "huge message": (claims_topic, key, b'{"payload": "' + b"x" * HUGE + b'"}'),
        "JSON array": (claims_topic, key, b"[1, 2, 3]"),
    }
    t0 = time.monotonic()
    dead_before = len(fs.cdc.dead_letters)
    unparseable_before = fs.cdc.raw_unparseable
    before, after, load = _under_load(fs, 501, lambda: _produce(fs, list(poison.values())))
    letters = by_original(fs.cdc.dead_letters[dead_before:])
    missing = [name for name, (_, _, value) in poison.items() if _sha(value) not in letters]
    row = record_row("poison: raw CDC topics", before, after, recovery_s=None, wall_s=time.monotonic() - t0,
                     detail=f"{len(poison)} poison, {len(poison) - len(missing)} dead-lettered")
    assert not missing, f"not dead-lettered: {missing}"
    for name, (_, _, value) in poison.items():
        assert letters[_sha(value)]["reason"] and letters[_sha(value)]["error_class"], name
    assert_nothing_lost_or_doubled(fs, row)
    # in = out + dead-lettered: every raw message (change events and the unparseable poison) is either a
    # normalized record or a dead letter.
    delta = after["cdc"].minus(before["cdc"])
    raw_in = delta.in_ + fs.cdc.raw_unparseable - unparseable_before
    assert delta.dead_lettered == len(poison)
    assert raw_in == delta.out + delta.dead_lettered, (raw_in, delta)


def _reading(vehicle: str, **overrides: Any) -> dict[str, Any]:
    r = {"vehicle_id": vehicle, "ts": int(time.time() * 1000), "lat": 48.85, "lon": 2.35, "speed_mps": 12.0,
         "heading_deg": 90.0, "accel_long_mps2": 0.1, "accel_lat_mps2": 0.0, "accel_vert_mps2": 9.81,
         "speed_limit_mps": 13.9}
    r.update(overrides)
    return r


@pytest.mark.ci_subset
def test_poison_readings_are_dead_lettered_and_good_readings_flow(fault_stack: FaultStack,
                                                                  record_row: RecordRow) -> None:
    fs = fault_stack
    v = f"{POISON_VEHICLE_PREFIX}{uuid.uuid4().hex[:6]}"
    good = encode("telematics_reading.v1", _reading(v + "\u00e9"))
    bad_utf8 = good.replace("\u00e9".encode(), b"\xff\xfe", 1)
    poison = {
        "not Avro": b"definitely not avro",
        "empty-ish": b"\x00",
        "truncated Avro": encode("telematics_reading.v1", _reading(v))[:10],
        "trailing bytes": encode("telematics_reading.v1", _reading(v)) + b"\x00\x01",
        "invalid UTF-8 vehicle id": bad_utf8,
        "huge message": b"\x02" * HUGE,
        "NaN latitude": encode("telematics_reading.v1", _reading(v, lat=float("nan"))),
        "infinite speed": encode("telematics_reading.v1", _reading(v, speed_mps=float("inf"))),
        "speed out of range": encode("telematics_reading.v1", _reading(v, speed_mps=500.0)),
        "latitude out of range": encode("telematics_reading.v1", _reading(v, lat=200.0)),
        "null island": encode("telematics_reading.v1", _reading(v, lat=0.0, lon=0.0)),
        "acceleration out of range": encode("telematics_reading.v1", _reading(v, accel_long_mps2=900.0)),
    }
    t0 = time.monotonic()
    dead_before = len(fs.telematics.dead_letters)
    before, after, _ = _under_load(
        fs, 502, lambda: _produce(fs, [(READINGS_TOPIC, v.encode(), value) for value in poison.values()]))
    letters = by_original(fs.telematics.dead_letters[dead_before:])
    missing = [name for name, value in poison.items() if _sha(value) not in letters]
    row = record_row("poison: telematics readings", before, after, recovery_s=None, wall_s=time.monotonic() - t0,
                     detail=f"{len(poison)} poison, {len(poison) - len(missing)} dead-lettered")
    assert not missing, f"not dead-lettered: {missing}"
    for name, value in poison.items():
        assert letters[_sha(value)]["reason"], name
    assert_nothing_lost_or_doubled(fs, row)
    delta = after["readings"].minus(before["readings"])
    assert delta.dead_lettered == len(poison)
    assert delta.in_ == delta.out + delta.dead_lettered + delta.open + delta.lost, delta


def test_hostile_landing_files_are_quarantined_with_reason_and_good_files_flow(fault_stack: FaultStack,
                                                                               record_row: RecordRow) -> None:
    fs = fault_stack
    base = f"{fs.settings.landing_incoming_prefix}_fault-hostile/{uuid.uuid4().hex[:8]}/"
    hostile = {
        "empty.pdf": b"",
        "garbage.pdf": b"%PDF-1.7\n" + bytes(range(256)) * 40,
        "truncated.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 50,
        "bomb.png": png_bomb(),
        "too large.tif": b"II*\x00" + b"\x00" * (fs.settings.document_max_bytes + 1024),
        "program.jpg": b"\x7fELF\x02\x01\x01" + b"\x00" * 4000,
        "archive.pdf": b"PK\x03\x04" + b"\x00" * 2000,
        "page.html": b"<html><script>alert(1)</script></html>",
        "weird name (1) + \u00e9 %2F.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
    }
    s3 = s3_client(fs.settings)
    t0 = time.monotonic()

    def upload() -> None:
        for name, body in hostile.items():
            s3.put_object(Bucket=fs.settings.landing_bucket, Key=base + name, Body=body)

    before, after, _ = _under_load(fs, 503, upload, files=True)
    by_key = {(d.get("source") or {}).get("key"): d for d in fs.documents.records.values()}
    found = {name: by_key.get(base + name) for name in hostile}
    not_quarantined = {n: (d or {}).get("status") for n, d in found.items() if not d or d["status"] != "quarantined"}
    row = record_row("poison: hostile landing files", before, after, recovery_s=None, wall_s=time.monotonic() - t0,
                     detail=f"{len(hostile)} hostile, {len(hostile) - len(not_quarantined)} quarantined")
    assert not not_quarantined, f"hostile files not quarantined: {not_quarantined}"
    for name, record in found.items():
        assert record["reason"], name
        relative = (base + name)[len(fs.settings.landing_incoming_prefix):]  # quarantine/ mirrors incoming/
        reason = json.loads(s3.get_object(Bucket=fs.settings.landing_bucket,
                                          Key=f"quarantine/{relative}.reason.json")["Body"].read())
        assert reason, name
    assert_nothing_lost_or_doubled(fs, row)
