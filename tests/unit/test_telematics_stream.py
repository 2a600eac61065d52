"""Streaming trip assembly: open trips held back, closed trips scored, offsets for safe commits."""

from __future__ import annotations

from claims_shared.contracts.telematics import (
    DRIVER_SCORE_SCHEMA,
    EVENT_SCHEMA,
    TRIP_SCHEMA,
    decode_epoch_ms,
    encode_record,
)
from services.telematics_scorer.config import ScoringConfig
from services.telematics_scorer.records import (
    driver_score_record,
    event_records,
    trip_from_record,
    trip_record,
)
from services.telematics_scorer.scoring import update_driver_score
from services.telematics_scorer.stream import TripAssembler
from services.telematics_scorer.synthetic import TraceBuilder
from services.telematics_scorer.trips import score_readings


def two_trips(vehicle: str = "TLM-A") -> tuple[list[dict], int]:
    """A drive with a harsh brake, an ignition-off gap, then the start of a second drive; returns (readings, n1)."""
    b = TraceBuilder(vehicle).accelerate_to(15).cruise(60).brake_to(0, 5.0).stop(10).accelerate_to(12).cruise(30)
    n1 = len(b.readings)
    b.gap(900).accelerate_to(10).cruise(20)
    return b.build(), n1


def feed(assembler: TripAssembler, readings: list[dict], partition: int = 0, start_offset: int = 0,
         batch: int = 50) -> list:
    trips = []
    for i in range(0, len(readings), batch):
        chunk = readings[i:i + batch]
        out = assembler.add(chunk, [(partition, start_offset + i + k) for k in range(len(chunk))])
        trips.extend(out.trips)
    return trips


def test_open_trip_is_held_back_and_closes_when_the_vehicle_returns_after_the_gap() -> None:
    readings, n1 = two_trips()
    assembler = TripAssembler()
    assert feed(assembler, readings[:n1]) == []
    trips = feed(assembler, readings[n1:], start_offset=n1)
    assert len(trips) == 1
    expected = score_readings({k: [r[k] for r in readings[:n1]] for k in readings[0]}).trips
    assert trips == expected
    assert [e.type for e in trips[0].events] == ["harsh_braking"]
    assert assembler.open_trips == 1 and assembler.buffered_readings == len(readings) - n1


def test_silent_vehicle_closes_when_its_partition_clock_moves_past_the_gap() -> None:
    a = TraceBuilder("TLM-A").accelerate_to(10).cruise(30).build()
    b = TraceBuilder("TLM-B", start_ms=a[-1]["ts"] + 400_000).accelerate_to(5).build()
    assembler = TripAssembler()
    assert feed(assembler, a) == []
    # Another partition's clock does not close it ...
    assert feed(assembler, b, partition=1, start_offset=0) == []
    # ... the same partition's does.
    trips = feed(assembler, b, partition=0, start_offset=len(a))
    assert [t.vehicle_id for t in trips] == ["TLM-A"]


def test_commit_point_is_the_lowest_offset_still_held_by_an_open_trip() -> None:
    readings, n1 = two_trips("TLM-A")
    other = TraceBuilder("TLM-B").accelerate_to(8).cruise(5).build()
    assembler = TripAssembler()
    assembler.add(other, [(0, 100 + i) for i in range(len(other))])
    assembler.add(readings[:n1], [(0, 1000 + i) for i in range(n1)])
    assert assembler.min_buffered_offsets() == {0: 100}
    assembler.drop_partitions([0])
    assert assembler.min_buffered_offsets() == {} and assembler.open_trips == 0


def test_readings_of_an_already_published_trip_are_dropped_as_late() -> None:
    readings, n1 = two_trips()
    assembler = TripAssembler()
    trips = feed(assembler, readings)
    assembler.confirm_published()
    # A re-read after a restart starts mid-way through the first trip: that tail must not become a new trip.
    fresh = TripAssembler()
    fresh.seed_scored({"TLM-A": trips[0].end_ms})
    out = fresh.add(readings[n1 // 2:], [(0, i) for i in range(len(readings) - n1 // 2)])
    assert out.trips == [] and out.counters["late_after_close"] == n1 - n1 // 2
    assert fresh.min_buffered_offsets() == {0: n1 - n1 // 2}


def test_buffer_cap_cuts_a_long_trip_so_memory_stays_bounded() -> None:
    readings = TraceBuilder("TLM-A").accelerate_to(10).cruise(300).build()
    assembler = TripAssembler(max_buffered_readings=100)
    out = assembler.add(readings, [(0, i) for i in range(len(readings))])
    assert out.counters["forced_splits"] == len(readings) // 100 - (len(readings) % 100 == 0)
    assert len(out.trips) == out.counters["forced_splits"]
    assert all(t.readings == 100 for t in out.trips)
    assert assembler.buffered_readings <= 100


def test_reset_forgets_open_trips_and_unconfirmed_closings() -> None:
    readings, _ = two_trips()
    assembler = TripAssembler()
    assert len(feed(assembler, readings)) == 1
    assembler.reset()
    assert len(feed(assembler, readings)) == 1   # not treated as late: the first closing was never confirmed


def test_trip_event_and_score_records_round_trip_through_their_contracts() -> None:
    readings, _ = two_trips()
    trip = feed(TripAssembler(), readings)[0]
    body = encode_record(TRIP_SCHEMA, trip_record(trip))
    assert trip_from_record(decode_epoch_ms(TRIP_SCHEMA, body)) == trip
    events = [decode_epoch_ms(EVENT_SCHEMA, encode_record(EVENT_SCHEMA, e)) for e in event_records(trip)]
    assert [e["type"] for e in events] == ["harsh_braking"]
    assert events[0]["event_id"] == f"TLM-A:{trip.start_ms}:harsh_braking:{trip.events[0].start_ms}"
    score = update_driver_score(None, trip, ScoringConfig())
    record = decode_epoch_ms(DRIVER_SCORE_SCHEMA, encode_record(DRIVER_SCORE_SCHEMA, driver_score_record(score, trip.trip_id)))
    assert record["score"] == trip.score and record["last_trip_end_ts"] == trip.end_ms


def test_a_quiet_partition_closes_its_open_trips_on_request_and_commits_past_them() -> None:
    readings = TraceBuilder("TLM-Q").accelerate_to(12).cruise(60).brake_to(0).build()
    assembler = TripAssembler()
    assert feed(assembler, readings, partition=3) == []          # nothing moves partition 3's clock further
    assert assembler.open_partitions() == {3} and assembler.min_buffered_offsets() == {3: 0}
    closed = assembler.close_partitions([3])
    assert [t.vehicle_id for t in closed.trips] == ["TLM-Q"] and closed.counters["closed_idle"] == 1
    assembler.confirm_published()
    assert assembler.open_partitions() == set() and assembler.min_buffered_offsets() == {}
    # The same readings again (re-read after a restart) are recognised as scored.
    assert feed(assembler, readings, partition=3) == [] and assembler.open_trips == 0


def test_scoring_overrides_apply_and_unknown_names_are_rejected_with_the_valid_ones() -> None:
    import pytest

    from services.telematics_scorer.config import InvalidScoringConfig, scoring_config

    assert scoring_config({"harsh_braking_g": 0.4}).harsh_braking_g == 0.4
    with pytest.raises(InvalidScoringConfig, match="harsh_braking_g"):
        scoring_config({"harsh_brake": 0.4})
