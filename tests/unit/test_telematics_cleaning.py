"""Cleaning and trip segmentation: duplicates, out-of-order, late, GPS glitches, gaps, ignition-off vs traffic stop."""

import random

import numpy as np
import pytest

from services.telematics_scorer.cleaning import DropReason, clean_readings
from services.telematics_scorer.config import InvalidScoringConfig, ScoringConfig
from services.telematics_scorer.readings import InvalidReadingsBatch, ReadingsBatch
from services.telematics_scorer.synthetic import TraceBuilder
from services.telematics_scorer.trips import score_readings


def a_drive(vehicle_id="TLM-A", **kw):
    return TraceBuilder(vehicle_id, **kw).accelerate_to(12.0).cruise(60).stop(20).accelerate_to(12.0).cruise(60)


def test_duplicates_are_dropped_and_counted_keeping_the_first_copy():
    b = a_drive().build()
    first = dict(b[10])
    b.insert(11, dict(first, speed_mps=99.0))  # same vehicle and ts, arrives second
    b.append(dict(b[30]))
    result = clean_readings(ReadingsBatch.from_records(b), ScoringConfig())
    assert result.stats.duplicates == 2 and result.stats.kept == len(b) - 2
    assert 99.0 not in result.batch.speed_mps
    assert sorted(result.dropped_row[result.dropped_reason == DropReason.DUPLICATE].tolist()) == [11, len(b) - 1]


def test_out_of_order_within_grace_is_reordered_and_late_is_dropped():
    readings = a_drive().build()
    shuffled = readings[:50] + readings[55:60] + readings[50:55] + readings[60:]  # 5 s late
    late = shuffled.pop(5)
    shuffled.append(late)  # arrives far behind the newest reading
    clean = clean_readings(ReadingsBatch.from_records(shuffled), ScoringConfig(reorder_grace_s=30))
    assert clean.stats.reordered == 5
    assert clean.stats.late == 1
    assert clean.stats.kept == len(readings) - 1
    assert np.all(np.diff(clean.batch.ts) > 0)
    original = score_readings(ReadingsBatch.from_records(readings)).trips
    reordered = score_readings(ReadingsBatch.from_records(readings[:50] + readings[55:60] + readings[50:55]
                                                          + readings[60:])).trips
    assert reordered == original


def test_interleaved_vehicles_are_separated():
    a, b = a_drive("TLM-A").build(), a_drive("TLM-B", lat=40.0, lon=-3.0).build()
    mixed = [r for pair in zip(a, b) for r in pair]
    trips = score_readings(ReadingsBatch.from_records(mixed)).trips
    assert [t.vehicle_id for t in trips] == ["TLM-A", "TLM-B"]
    assert trips[0] == score_readings(ReadingsBatch.from_records(a)).trips[0]


@pytest.mark.parametrize("where", [0, 40, -1])
def test_gps_glitch_is_dropped_and_distance_unaffected(where):
    readings = a_drive().build()
    glitched = [dict(r) for r in readings]
    idx = where % len(glitched)
    glitched[idx]["lat"] += 0.02  # ~2.2 km jump, then back
    expected = score_readings(ReadingsBatch.from_records([r for i, r in enumerate(readings) if i != idx])).trips
    result = score_readings(ReadingsBatch.from_records(glitched))
    assert result.stats.gps_glitches == 1
    assert result.trips[0].distance_km == pytest.approx(expected[0].distance_km, abs=0.001)


def test_burst_of_glitches_is_dropped_but_a_long_relocation_is_kept():
    readings = a_drive().build()
    burst = [dict(r, lat=r["lat"] + 0.05) if 30 <= i < 33 else dict(r) for i, r in enumerate(readings)]
    assert score_readings(ReadingsBatch.from_records(burst)).stats.gps_glitches == 3
    jumped = [dict(r, lat=r["lat"] + 0.05) if i >= 30 else dict(r) for i, r in enumerate(readings)]
    assert score_readings(ReadingsBatch.from_records(jumped)).stats.gps_glitches == 0


def test_jump_inconsistent_with_reported_speed_is_a_glitch():
    readings = a_drive().build()
    readings[40] = dict(readings[40], lon=readings[40]["lon"] + 0.0015)  # ~110 m sideways at 12 m/s: < 70 m/s
    assert score_readings(ReadingsBatch.from_records(readings)).stats.gps_glitches == 1


def test_invalid_values_are_dropped_and_counted():
    readings = a_drive().build()
    readings[3]["lat"] = float("nan")
    readings[4]["lon"] = 200.0
    readings[5]["speed_mps"] = -1.0
    readings[6]["lat"], readings[6]["lon"] = 0.0, 0.0
    readings[7]["accel_vert_mps2"] = float("inf")
    result = clean_readings(ReadingsBatch.from_records(readings), ScoringConfig())
    assert result.stats.invalid == 5
    assert sorted(result.dropped_row.tolist()) == [3, 4, 5, 6, 7]


def test_ignition_off_gap_splits_the_trip_but_a_traffic_stop_with_readings_does_not():
    b = TraceBuilder().accelerate_to(12.0).cruise(60).stop(240).accelerate_to(12.0).cruise(60).stop(2)
    b.gap(400).accelerate_to(12.0).cruise(30).stop(2)
    trips = score_readings(ReadingsBatch.from_records(b.build())).trips
    assert len(trips) == 2
    assert trips[0].duration_s > 240 + 120
    assert trips[1].start_ms - trips[0].end_ms == 401_000


def test_short_gap_inside_a_trip_is_counted_not_split():
    b = TraceBuilder().accelerate_to(12.0).cruise(30).stop(2).gap(60).accelerate_to(12.0).cruise(30)
    result = score_readings(ReadingsBatch.from_records(b.build()))
    assert len(result.trips) == 1 and result.stats.gaps == 1


def test_trip_distance_duration_and_max_speed():
    b = TraceBuilder(heading_deg=0.0).accelerate_to(20.0, 2.0).cruise(100).brake_to(0.0, 2.0).stop(5)
    (trip,) = score_readings(ReadingsBatch.from_records(b.build())).trips
    assert trip.distance_km == pytest.approx((100 + 100 + 2000) / 1000, abs=0.01)  # 10 s ramps of 100 m each
    assert trip.max_speed_kmh == pytest.approx(72.0)
    assert trip.duration_s == len(b.readings) - 1


def test_standing_gps_jitter_adds_no_distance():
    b = TraceBuilder().accelerate_to(10.0).cruise(20).stop(120)
    readings = b.build()
    rng = random.Random(1)
    jittered = [dict(r, lat=r["lat"] + rng.uniform(-5e-5, 5e-5)) if r["speed_mps"] == 0 else r for r in readings]
    clean = score_readings(ReadingsBatch.from_records(readings)).trips[0].distance_km
    assert score_readings(ReadingsBatch.from_records(jittered)).trips[0].distance_km == pytest.approx(clean, abs=0.01)


def test_every_received_reading_is_kept_or_dropped_with_a_reason():
    readings = a_drive().build()
    readings += [dict(readings[3]), dict(readings[10], lat=float("nan"))]
    result = clean_readings(ReadingsBatch.from_records(readings), ScoringConfig())
    assert len(result.source_row) + len(result.dropped_row) == len(readings)
    assert sorted([*result.source_row.tolist(), *result.dropped_row.tolist()]) == list(range(len(readings)))


def test_bad_batches_and_configs_are_refused_with_a_reason():
    with pytest.raises(InvalidReadingsBatch, match="missing columns"):
        ReadingsBatch.from_columns({"vehicle_id": ["a"], "ts": [1]})
    with pytest.raises(InvalidScoringConfig, match="trip_gap_s"):
        ScoringConfig(trip_gap_s=0)


def test_empty_batch_gives_no_trips():
    result = score_readings({c: [] for c in ("vehicle_id", "ts", "lat", "lon", "speed_mps", "heading_deg",
                                             "accel_long_mps2", "accel_lat_mps2", "accel_vert_mps2")})
    assert result.trips == [] and result.stats.received == 0
