"""Safety events on scripted traces: injected events fire with the right time and magnitude, distractors do not."""

import pytest

from services.telematics_scorer.config import G, ScoringConfig
from services.telematics_scorer.synthetic import TraceBuilder
from services.telematics_scorer.trips import score_readings

KMH = 1 / 3.6


def events_of(readings, config=None):
    result = score_readings_from(readings, config)
    return [e for t in result.trips for e in t.events]


def score_readings_from(readings, config=None):
    from services.telematics_scorer.readings import ReadingsBatch
    return score_readings(ReadingsBatch.from_records(readings), config or ScoringConfig())


def drive(**kw) -> TraceBuilder:
    return TraceBuilder(**kw).accelerate_to(14.0, 1.5).cruise(30)


def test_harsh_braking_fires_at_injected_time_with_its_peak():
    b = drive()
    t_brake = b.now_ms
    b.brake_to(6.0, 0.6 * G).cruise(20).stop(5)
    events = events_of(b.build())
    assert [e.type for e in events] == ["harsh_braking"]
    assert events[0].start_ms == t_brake
    assert events[0].peak_g == pytest.approx(0.6, abs=0.01)


def test_gentle_braking_does_not_fire():
    b = drive().brake_to(0.0, 0.15 * G).stop(10)
    assert events_of(b.build()) == []


def test_normal_city_stop_at_the_simulators_strongest_normal_decel_does_not_fire():
    b = drive().brake_to(0.0, 3.0).stop(10)  # 0.31 g: the simulator's firmest ordinary stop
    assert events_of(b.build()) == []


@pytest.mark.parametrize("spike", [{"long_g": -0.8}, {"long_g": 0.8}, {"vert_g": 2.0}, {"vert_g": -1.5, "long_g": -0.5},
                                   {"lat_g": 0.9}])
def test_pothole_single_sample_spike_does_not_fire(spike):
    b = drive().spike(**spike).cruise(20)
    assert events_of(b.build()) == []


def test_single_sample_spike_at_10hz_is_too_short_even_with_speed_change():
    b = TraceBuilder(hz=10).accelerate_to(14.0, 1.5).cruise(10)
    b._step(-0.6 * G)  # one 0.1 s sample of real deceleration: shorter than min_event_duration_s
    b.cruise(10)
    assert events_of(b.build()) == []


def test_sustained_braking_at_10hz_fires():
    b = TraceBuilder(hz=10).accelerate_to(14.0, 1.5).cruise(10)
    t = b.now_ms
    b.brake_to(8.0, 0.45 * G).cruise(10)
    (event,) = events_of(b.build())
    assert event.type == "harsh_braking" and event.start_ms == t
    assert event.end_ms - event.start_ms == pytest.approx(6.0 / (0.45 * G) * 1000, abs=150)


def test_harsh_acceleration_fires_from_a_standstill():
    b = TraceBuilder().stop(5)
    t = b.now_ms
    b.accelerate_to(15.0, 0.4 * G).cruise(20)
    (event,) = events_of(b.build())
    assert (event.type, event.start_ms) == ("harsh_acceleration", t)
    assert event.peak_g == pytest.approx(0.4, abs=0.01)


@pytest.mark.parametrize("left", [True, False])
def test_harsh_cornering_fires_either_way_and_normal_turn_does_not(left):
    b = drive().turn(5, 0.25, left=left).cruise(10)
    t = b.now_ms
    b.turn(4, 0.5, left=not left).cruise(10)
    (event,) = events_of(b.build())
    assert (event.type, event.start_ms) == ("harsh_cornering", t)
    assert event.peak_g == pytest.approx(0.5, abs=0.01)
    assert event.end_ms - event.start_ms == 4000


def test_speeding_needs_the_tolerance_and_duration():
    limit = 50 * KMH
    b = TraceBuilder(speed_limit_mps=limit).accelerate_to(limit * 1.05, 1.0).cruise(120)  # 5 % over: no
    b.accelerate_to(limit * 1.30, 1.0).cruise(3).brake_to(limit, 1.0).cruise(10)  # ~7 s over tolerance: too short
    t = b.now_ms
    b.accelerate_to(limit * 1.40, 1.0)
    b.cruise(30).brake_to(limit, 1.0).cruise(10)
    (event,) = events_of(b.build())
    assert event.type == "speeding"
    assert t <= event.start_ms <= t + 10_000
    assert event.peak_g == pytest.approx(20.0, abs=0.1)  # km/h over the limit at the peak
    assert event.end_ms - event.start_ms >= 30_000


def test_no_speeding_where_the_limit_is_unknown():
    b = TraceBuilder(speed_limit_mps=None).accelerate_to(40.0, 1.0).cruise(60)
    assert events_of(b.build()) == []


def test_crash_is_a_multi_g_spike_followed_by_a_stop_and_absorbs_the_braking_reading():
    b = drive()
    t = b.now_ms
    b.crash(6.0).stop(60)
    (event,) = events_of(b.build())
    assert (event.type, event.start_ms) == ("crash", t)
    assert event.peak_g == pytest.approx(6.0, abs=0.01)
    assert event.end_ms - t <= 5000


def test_multi_g_spike_without_a_stop_is_not_a_crash():
    b = drive().spike(long_g=-4.0).cruise(30)
    assert events_of(b.build()) == []


def test_crash_then_silence_counts_as_a_crash():
    b = drive().crash(4.0)
    events = events_of(b.build())
    assert [e.type for e in events] == ["crash"]
    assert events_of(b.build(), ScoringConfig(crash_signal_loss_counts_as_stop=False)) == []


def test_thresholds_are_configurable():
    b = drive().brake_to(6.0, 0.3 * G).cruise(10)
    assert events_of(b.build()) == []
    assert [e.type for e in events_of(b.build(), ScoringConfig(harsh_braking_g=0.25))] == ["harsh_braking"]


def test_simulator_crashes_are_all_detected_and_nothing_else_is_a_crash():
    from claimsctl.simulator.telematics import Fleet, TelematicsConfig

    fleet = Fleet([f"TLM-{i:08d}" for i in range(40)], seed="crash", config=TelematicsConfig(crash_probability=0.001))
    readings = [r for t in range(900) for r in fleet.step(1_772_366_400_000 + t * 1000)]
    truth = {(c.device_id, c.ts_ms) for c in fleet.drain_crashes()}
    assert truth
    found = {(t.vehicle_id, e.start_ms) for t in score_readings_from(readings).trips for e in t.events
             if e.type == "crash"}
    assert found == truth
