"""telematics_scorer as deployed: readings on the broker -> service -> trips, events, driver scores, dead letters."""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from datetime import datetime, timezone
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from claims_shared.contracts.avro import SCHEMA_HEADER, encode
from claims_shared.contracts.telematics import (
    DEAD_LETTER_TOPIC,
    DRIVER_SCORE_SCHEMA,
    DRIVER_SCORES_TOPIC,
    EVENT_SCHEMA,
    EVENTS_TOPIC,
    READINGS_TOPIC,
    TRIP_SCHEMA,
    TRIPS_TOPIC,
    decode_epoch_ms,
)
from claims_shared.contracts.fraud import FRAUD_ALERTS_TOPIC, decode_alert
from claims_shared.settings import PlatformSettings
from claimsctl.stack.embedded import EmbeddedStack
from services.telematics_scorer.fraud_evidence import FAR, NO_IMPACT, PARKED
from services.telematics_scorer.scoring import update_driver_score
from services.telematics_scorer.synthetic import START_MS, TraceBuilder
from services.telematics_scorer.trips import score_readings
from tests.integration.cdc_helpers import execute, insert_vehicle_with_claims

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(stack_settings: PlatformSettings) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(stack_settings)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def produce(settings: PlatformSettings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for key, value in messages:
        producer.produce(READINGS_TOPIC, value, key, headers=[(SCHEMA_HEADER, b"telematics_reading.v1")])
    assert producer.flush(30) == 0


def service_diagnosis(stack: EmbeddedStack) -> str:
    """The service's counters and last log lines, for failure messages."""
    service = next(c for c in stack.components if c.name == "telematics-scorer")
    try:
        metrics = json.dumps(service.impl.metrics())
    except OSError as exc:
        metrics = f"(no metrics: {exc})"
    log = service.impl.proc.logfile
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    first_error = next((i for i, line in enumerate(lines) if "[ERROR]" in line or "[CRITICAL]" in line), None)
    lines = lines[first_error:first_error + 40] if first_error is not None else lines[-40:]
    return f"metrics: {metrics}\nlog tail:\n" + "\n".join(lines)


def readings_messages(readings: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    return [(r["vehicle_id"].encode(), encode("telematics_reading.v1", r)) for r in readings]


def read_topic(settings: PlatformSettings, topic: str, *, until: Callable[[list[Any]], bool],
               decode: Callable[[Any], Any], timeout_s: float = 90) -> list[Any]:
    """Decoded messages of `topic` from offset 0 until `until(items)` holds."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        deadline = time.monotonic() + timeout_s
        items: list[Any] = []
        assigned = False
        while time.monotonic() < deadline:
            if not assigned:
                meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
                if meta is None or meta.error or not meta.partitions:
                    time.sleep(0.5)
                    continue
                consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
                assigned = True
            for msg in consumer.consume(500, timeout=0.5):
                if not msg.error() and msg.value():
                    items.append(decode(msg))
            if until(items):
                return items
        raise AssertionError(f"timed out on {topic} with {len(items)} items: {items[-5:]}")
    finally:
        consumer.close()


def avro(schema: str) -> Callable[[Any], dict[str, Any]]:
    return lambda msg: decode_epoch_ms(schema, msg.value())


def vehicle() -> str:
    return f"TLM-IT-{uuid.uuid4().hex[:10]}"


def as_columns(readings: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {k: [r[k] for r in readings] for k in readings[0]}


def test_harsh_brake_and_crash_become_events_of_a_closed_trip(stack: EmbeddedStack) -> None:
    v = vehicle()
    trace = (TraceBuilder(v).accelerate_to(15).cruise(60).brake_to(0, 5.0).stop(5).accelerate_to(15).cruise(30)
             .crash(4.0).cruise(10).gap(900).accelerate_to(5)).build()  # the next trip's start closes the first
    produce(stack.settings, readings_messages(trace))
    trips = read_topic(stack.settings, TRIPS_TOPIC, decode=avro(TRIP_SCHEMA),
                       until=lambda ts: any(t["vehicle_id"] == v for t in ts))
    mine = [t for t in trips if t["vehicle_id"] == v]
    assert len(mine) == 1, "only the first trip is closed; the second is still open"
    trip = mine[0]
    assert trip["trip_id"] == f"{v}:{START_MS}" and trip["start_ts"] == START_MS
    assert [e["type"] for e in trip["events"]] == ["harsh_braking", "crash"]
    assert trip["events"][1]["peak_g"] == pytest.approx(4.0, abs=0.01)
    assert trip["score"] <= 20.0  # a crash caps the trip score
    events = read_topic(stack.settings, EVENTS_TOPIC, decode=avro(EVENT_SCHEMA),
                        until=lambda es: sum(e["vehicle_id"] == v for e in es) >= 2)
    assert sorted(e["type"] for e in events if e["vehicle_id"] == v) == ["crash", "harsh_braking"]
    assert {e["trip_id"] for e in events if e["vehicle_id"] == v} == {trip["trip_id"]}


def test_bad_readings_are_dead_lettered_while_good_ones_flow(stack: EmbeddedStack) -> None:
    v = vehicle()
    nan_reading = TraceBuilder(v).accelerate_to(3).build()[0] | {"speed_mps": math.nan}
    poison = [(v.encode(), b"garbage bytes, not avro"), (v.encode(), encode("telematics_reading.v1", nan_reading))]
    trace = TraceBuilder(v, start_ms=START_MS + 3_600_000).accelerate_to(12).cruise(30).brake_to(0).gap(900) \
        .accelerate_to(5).build()
    produce(stack.settings, poison + readings_messages(trace))
    try:
        dead = read_topic(stack.settings, DEAD_LETTER_TOPIC, decode=lambda m: json.loads(m.value()),
                          until=lambda ds: sum(d["original_key_b64"] == base64.b64encode(v.encode()).decode()
                                               for d in ds) >= 2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{service_diagnosis(stack)}") from exc
    mine = {base64.b64decode(d["original_value_b64"]): d for d in dead
            if d["original_key_b64"] == base64.b64encode(v.encode()).decode()}
    assert mine[poison[0][1]]["error_class"] == "UndecodableReading"
    assert mine[poison[1][1]]["error_class"] == "InvalidReading"
    assert "speed_mps" in mine[poison[1][1]]["reason"]
    assert all(d["source_topic"] == READINGS_TOPIC and d["source_offset"] >= 0 for d in mine.values())
    trips = read_topic(stack.settings, TRIPS_TOPIC, decode=avro(TRIP_SCHEMA),
                       until=lambda ts: any(t["vehicle_id"] == v for t in ts))
    assert [t["start_ts"] for t in trips if t["vehicle_id"] == v] == [trace[0]["ts"]]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def test_claims_that_contradict_the_trace_raise_fraud_alerts_once(stack: EmbeddedStack) -> None:
    """Claims through PostgreSQL -> Debezium -> normalizer, readings through the broker -> trips -> alerts."""
    device = vehicle()
    b = TraceBuilder(device, start_ms=START_MS + 10 * 3_600_000).accelerate_to(12).cruise(300).stop(5)
    b.gap(3600).accelerate_to(14).cruise(900).stop(5)              # trip A
    a_mid = b.now_ms - 450_000
    b.gap(3 * 3600)                                                 # parked 3 h where A ended
    parked_at, parked_pos = b.now_ms - 90 * 60_000, (b.lat, b.lon)
    b.accelerate_to(14).cruise(600)                                 # trip B ends in a crash
    crash_ms, crash_pos = b.now_ms, (b.lat, b.lon)
    b.crash(4.0).cruise(20).gap(2 * 3600).accelerate_to(10).cruise(60)  # the next trip closes B
    trips = score_readings(as_columns(b.build())).trips
    a_pos = next((lat, lon) for ts, lat, lon, _ in trips[1].path if ts >= a_mid)

    vehicle_id, (honest, far, parked) = insert_vehicle_with_claims(stack.settings, device, [
        (iso(crash_ms), *crash_pos, "collision"),                  # matches the crash: no alert
        (iso(a_mid), a_pos[0] + 0.3, a_pos[1], "collision"),       # 33 km from where A was: far + no impact
        (iso(parked_at), *parked_pos, "collision"),                # while parked: parked
    ])
    produce(stack.settings, readings_messages(b.build()))
    expected = {(far, FAR), (far, NO_IMPACT), (parked, PARKED)}
    mine = lambda alerts: [a for a in alerts if a["claim_id"] in (honest, far, parked)]  # noqa: E731
    try:
        alerts = mine(read_topic(stack.settings, FRAUD_ALERTS_TOPIC, decode=lambda m: decode_alert(m.value()),
                                 until=lambda al: len(mine(al)) >= 3, timeout_s=120))
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{service_diagnosis(stack)}") from exc
    assert {(a["claim_id"], a["rule"]) for a in alerts} == expected
    far_alert = next(a for a in alerts if a["rule"] == FAR)
    evidence = json.loads(far_alert["evidence_json"])
    assert 30 < evidence["nearest_km"] < 37 and far_alert["severity"] == "high"
    assert far_alert["vehicle_id"] == vehicle_id and far_alert["device_id"] == device
    assert far_alert["loss_time"] == a_mid

    # A restart re-reads everything; a status change keeps the loss facts: nothing is raised twice.
    service = next(c for c in stack.components if c.name == "telematics-scorer")
    assert service.stop()
    service.start()
    execute(stack.settings, "UPDATE claims SET status = 'assessing' WHERE claim_id IN (%s, %s)", (far, parked))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            fraud = service.impl.metrics().get("fraud_evidence", {})
        except OSError:  # still starting
            fraud = {}
        if fraud.get("caught_up") and fraud.get("claims_assessed", 0) >= 3 and fraud.get("pending_claims") == 0:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"fraud evidence did not catch up after the restart\n{service_diagnosis(stack)}")
    again = mine(read_topic(stack.settings, FRAUD_ALERTS_TOPIC, decode=lambda m: decode_alert(m.value()),
                            until=lambda al: len(mine(al)) >= 3))
    assert sorted(a["alert_id"] for a in again) == sorted(a["alert_id"] for a in alerts)


def test_driver_score_table_is_recovered_after_a_restart(stack: EmbeddedStack) -> None:
    v = vehicle()
    # Later than every other test's readings: a partition whose clock is already ahead (another test's vehicle on
    # the same partition) would rightly close this vehicle's open trip at once.
    b = TraceBuilder(v, start_ms=START_MS + 40 * 3_600_000).accelerate_to(15).cruise(120).brake_to(0, 5.0).stop(5) \
        .accelerate_to(12).cruise(60).brake_to(0)
    b.gap(900).accelerate_to(14).cruise(20)
    first_part = len(b.readings)         # trip 1 closed, trip 2 started (open, held in memory, not committed)
    b.cruise(200).turn(3, 0.5).cruise(30).brake_to(0).gap(900).accelerate_to(5)  # trip 2 ends, trip 3 starts
    trace = b.build()
    trip1, trip2, _open = score_readings(as_columns(trace)).trips
    expected_1 = update_driver_score(None, trip1)
    expected_2 = update_driver_score(expected_1, trip2)
    assert expected_2.score != trip2.score  # so "started from scratch" would be visible

    produce(stack.settings, readings_messages(trace[:first_part]))
    scores = read_topic(stack.settings, DRIVER_SCORES_TOPIC, decode=avro(DRIVER_SCORE_SCHEMA),
                        until=lambda ss: any(s["vehicle_id"] == v for s in ss))
    assert [s["trips"] for s in scores if s["vehicle_id"] == v] == [1]

    service = next(c for c in stack.components if c.name == "telematics-scorer")
    assert service.stop()
    service.start()
    produce(stack.settings, readings_messages(trace[first_part:]))
    try:
        scores = read_topic(stack.settings, DRIVER_SCORES_TOPIC, decode=avro(DRIVER_SCORE_SCHEMA),
                            until=lambda ss: any(s["vehicle_id"] == v and s["trips"] == 2 for s in ss), timeout_s=120)
    except AssertionError as exc:
        trips = read_topic(stack.settings, TRIPS_TOPIC, decode=avro(TRIP_SCHEMA), until=lambda ts: True)
        raise AssertionError(f"{exc}\ntrips of {v}: {[t for t in trips if t['vehicle_id'] == v]}\n"
                             f"{service_diagnosis(stack)}") from exc
    mine = [s for s in scores if s["vehicle_id"] == v]
    latest = mine[-1]
    assert latest["trips"] == 2 and latest["trip_id"] == trip2.trip_id
    assert latest["score"] == pytest.approx(expected_2.score)
    assert latest["distance_km"] == pytest.approx(expected_2.distance_km)
    # Trip 2's first readings were read before the restart and again after it: still one trip, scored once.
    trips = read_topic(stack.settings, TRIPS_TOPIC, decode=avro(TRIP_SCHEMA),
                       until=lambda ts: sum(t["vehicle_id"] == v for t in ts) >= 2)
    assert [(t["trip_id"], t["readings"]) for t in trips if t["vehicle_id"] == v] == \
        [(trip1.trip_id, trip1.readings), (trip2.trip_id, trip2.readings)]
