"""Trip score bounds and monotonicity; the rolling driver score."""

import dataclasses

import pytest

from services.telematics_scorer.config import G, ScoringConfig
from services.telematics_scorer.events import SafetyEvent
from services.telematics_scorer.readings import ReadingsBatch
from services.telematics_scorer.scoring import DriverScore, trip_score, update_driver_score
from services.telematics_scorer.synthetic import TraceBuilder
from services.telematics_scorer.trips import Trip, score_readings

CFG = ScoringConfig()


def ev(kind="harsh_braking", severity=1.2, start=0, end=2000):
    return SafetyEvent(kind, start, end, 0.4, severity, 0.0, 0.0)


def test_clean_trip_scores_100_and_scores_stay_in_bounds():
    assert trip_score(20.0, [], CFG) == 100.0
    assert 0.0 <= trip_score(0.1, [ev(severity=3.0)] * 500 + [ev("crash", 4.0)], CFG) <= 100.0


def test_more_events_lower_the_score():
    scores = [trip_score(20.0, [ev()] * n, CFG) for n in range(8)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)


def test_severer_events_lower_the_score():
    scores = [trip_score(20.0, [ev(severity=s)], CFG) for s in (1.0, 1.5, 2.0, 2.5)]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4


def test_same_events_over_more_distance_score_higher():
    assert trip_score(40.0, [ev()] * 3, CFG) > trip_score(10.0, [ev()] * 3, CFG)


def test_crash_caps_the_score_and_keeps_the_order():
    assert trip_score(20.0, [ev("crash", 2.0)], CFG) == CFG.crash_score_cap
    assert trip_score(20.0, [ev("crash", 2.0), ev()], CFG) < trip_score(20.0, [ev("crash", 2.0)], CFG)


def test_harsh_events_in_a_real_trace_lower_its_score():
    def trip(brakes):
        b = TraceBuilder().accelerate_to(14.0).cruise(300)
        for _ in range(brakes):
            b.brake_to(6.0, 0.5 * G).cruise(5).accelerate_to(14.0).cruise(60)
        return score_readings(ReadingsBatch.from_records(b.stop(5).build())).trips[0].score

    scores = [trip(n) for n in range(4)]
    assert scores[0] == 100.0 and scores == sorted(scores, reverse=True) and len(set(scores)) == 4


def a_trip(score, km=30.0, end=1, events=()):
    return Trip("TLM-A", end - 1000, end, km, 1.0, 50.0, 2, tuple(events), score, 0, 0, 0, 0)


def test_first_trip_sets_the_driver_score():
    assert update_driver_score(None, a_trip(80.0)).score == 80.0


def test_driver_score_is_a_distance_weighted_moving_average():
    base = update_driver_score(None, a_trip(100.0, end=1))
    short = update_driver_score(base, a_trip(0.0, km=3.0, end=2))
    long = update_driver_score(base, a_trip(0.0, km=300.0, end=2))
    assert 95 < short.score < 100
    assert long.score == pytest.approx(50.0)  # one half-life of distance
    assert long.trips == 2 and long.distance_km == 330.0


def test_driver_score_update_is_idempotent_under_redelivery():
    s1 = update_driver_score(None, a_trip(90.0, end=10))
    s2 = update_driver_score(s1, a_trip(40.0, end=20, events=[ev("crash")]))
    assert update_driver_score(s2, a_trip(40.0, end=20, events=[ev("crash")])) == s2
    assert update_driver_score(s2, a_trip(40.0, end=10)) == s2
    assert s2.crashes == 1


def test_driver_score_round_trips_through_a_dict():
    s = update_driver_score(None, a_trip(75.0))
    assert DriverScore.from_dict(s.to_dict()) == s
    assert set(s.to_dict()) == {f.name for f in dataclasses.fields(DriverScore)}
