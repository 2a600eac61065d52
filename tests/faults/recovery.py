"""Recovery time: how long after a fault ends new input flows through every path again.

A canary per input, written after the fault ended (retried while its dependency is still away):
- CDC: an UPDATE of an adjuster row (PostgreSQL clock); recovered when a normalized record with a source time at
  or after it is on the topics;
- readings: an invalid reading from a canary vehicle; recovered when the scorer dead-lettered it;
- files: a small text object under `incoming/_fault-canary/`; recovered when its document record is published;
- lake (only where a test asks for it): the CDC canary's UPDATE; recovered when `current/adjusters` in the lake
  holds a change with a source time at or after it.
The time includes draining any backlog the fault built up, which is what a user waits for.
"""

from __future__ import annotations

import time
import uuid

import psycopg
from confluent_kafka import Producer

from claims_shared.clients.aws import s3_client
from claims_shared.contracts.avro import SCHEMA_HEADER, encode
from claims_shared.contracts.telematics import READINGS_TOPIC
from tests.faults.conftest import FaultStack
from tests.faults.lake_probe import probe
from tests.faults.ledger import CANARY_VEHICLE_PREFIX

PATHS = ("cdc", "readings", "files")


def _cdc_canary(fs: FaultStack) -> int | None:
    try:
        with psycopg.connect(fs.settings.pg_dsn, connect_timeout=3) as conn:
            conn.execute("UPDATE adjusters SET max_open_claims = max_open_claims "
                         "WHERE adjuster_id = (SELECT min(adjuster_id) FROM adjusters)")
            # floor, not ::bigint's rounding: the source time of the commit (truncated to ms) must not be below it.
            return int(conn.execute("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint")
                       .fetchone()[0])
    except psycopg.Error:
        return None


def _reading_canary(fs: FaultStack) -> str | None:
    vehicle = f"{CANARY_VEHICLE_PREFIX}{uuid.uuid4().hex[:8]}"
    reading = {"vehicle_id": vehicle, "ts": int(time.time() * 1000), "lat": 48.85, "lon": 2.35, "speed_mps": -1.0,
               "heading_deg": 0.0, "accel_long_mps2": 0.0, "accel_lat_mps2": 0.0, "accel_vert_mps2": 9.81,
               "speed_limit_mps": None}
    producer = Producer({"bootstrap.servers": fs.settings.kafka_bootstrap, "message.timeout.ms": 5000})
    producer.produce(READINGS_TOPIC, encode("telematics_reading.v1", reading), vehicle.encode(),
                     headers=[(SCHEMA_HEADER, b"telematics_reading.v1")])
    return vehicle if producer.flush(6) == 0 else None


def _file_canary(fs: FaultStack) -> str | None:
    fs.canaries += 1
    key = f"{fs.settings.landing_incoming_prefix}_fault-canary/{uuid.uuid4().hex}.txt"
    try:
        s3_client(fs.settings).put_object(Bucket=fs.settings.landing_bucket, Key=key, Body=b"fault canary\n")
        return key
    except Exception:  # noqa: BLE001 - object store still away
        return None


def wait_recovered(fs: FaultStack, since: float, *, paths: tuple[str, ...] = PATHS, timeout_s: float = 300) -> float:
    """Seconds from `since` (time.monotonic()) until every path in `paths` carried a canary written now."""
    deadline = time.monotonic() + timeout_s
    pending = {p: None for p in paths}
    while pending and time.monotonic() < deadline:
        for path, token in list(pending.items()):
            if token is None:
                pending[path] = {"cdc": _cdc_canary, "readings": _reading_canary, "files": _file_canary,
                                 "lake": _cdc_canary}[path](fs)
                continue
            if path == "cdc":
                fs.cdc.normalized.catch_up(idle_s=0.3, max_s=3)
                if fs.cdc.latest_source_ts_ms >= token:
                    del pending[path]
            elif path == "lake":
                try:
                    newest = probe(fs.settings, "canary") or 0
                except RuntimeError:  # the lake unreadable for now (object store away): not recovered yet
                    newest = 0
                if newest >= token:
                    del pending[path]
            elif path == "readings":
                fs.telematics.tails[2].catch_up(idle_s=0.3, max_s=3)
                if token in fs.telematics.canaries_dead_lettered:
                    del pending[path]
            else:
                fs.documents.tail.catch_up(idle_s=0.3, max_s=3)
                if any((d.get("source") or {}).get("key") == token for d in fs.documents.records.values()):
                    del pending[path]
        time.sleep(0.5)
    if pending:
        raise AssertionError(f"not recovered after {timeout_s:.0f}s: no canary through {sorted(pending)}")
    return time.monotonic() - since
