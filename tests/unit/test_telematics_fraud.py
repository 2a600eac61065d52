"""Fraud evidence rules: reported loss vs the vehicle's trips (pure; traces built by the physics TraceBuilder)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from claims_shared.contracts.fraud import decode_alert, encode_alert
from claims_shared.contracts.telematics import TRIP_SCHEMA, decode_epoch_ms, encode_record
from services.telematics_scorer.fraud_evidence import (
    FAR,
    NO_IMPACT,
    PARKED,
    FraudEvidenceConfig,
    LossReport,
    TraceTrip,
    assess_loss,
)
from services.telematics_scorer.fraud_matcher import FraudMatcher
from services.telematics_scorer.records import trip_record
from services.telematics_scorer.synthetic import START_MS, TraceBuilder
from services.telematics_scorer.trips import Trip, score_readings

CONFIG = FraudEvidenceConfig()
HOUR = 3_600_000


def trips_of(*builders: TraceBuilder) -> list[Trip]:
    readings = [r for b in builders for r in b.build()]
    return score_readings({k: [r[k] for r in readings] for k in readings[0]}).trips


def trace(trips: list[Trip]) -> list[TraceTrip]:
    """Through the wire contract, as the service sees them."""
    return [TraceTrip.from_record(decode_epoch_ms(TRIP_SCHEMA, encode_record(TRIP_SCHEMA, trip_record(t))))
            for t in trips]


def loss(at_ms: int, lat: float, lon: float, loss_type: str = "collision") -> LossReport:
    return LossReport("c-1", "CLM-1", "veh-1", at_ms, lat, lon, loss_type, at_ms + HOUR)


def crash_day() -> tuple[list[TraceTrip], dict[str, Any]]:
    """Morning drive, parked 3 h, a drive ending in a crash; returns the trips and where/when the crash was."""
    b = TraceBuilder("TLM-1").accelerate_to(15).cruise(600).stop(5)
    b.gap(3 * 3600).accelerate_to(20).cruise(300)
    crash_at = {"ts": b.now_ms, "lat": b.lat, "lon": b.lon}
    b.crash(4.0).cruise(30)
    return trace(trips_of(b)), crash_at


def rules(assessment: Any) -> set[str]:
    return {f.rule for f in assessment.findings}


def test_claim_matching_a_recorded_crash_is_cleared_without_waiting_for_more_trace() -> None:
    trips, crash = crash_day()
    result = assess_loss(loss(crash["ts"], crash["lat"], crash["lon"]), trips, trips[-1].end_ms, CONFIG)
    assert result.decided and result.findings == []
    assert set(result.cleared) == {FAR, PARKED, NO_IMPACT}


def test_claim_20_km_from_the_vehicle_fires_far_from_location_with_evidence() -> None:
    trips, crash = crash_day()
    lat = crash["lat"] + 0.18  # ~20 km north
    result = assess_loss(loss(crash["ts"], lat, crash["lon"]), trips, trips[-1].end_ms + 2 * HOUR, CONFIG)
    assert result.decided and rules(result) == {FAR}
    far = result.findings[0]
    assert far.severity == "high" and 17 < far.evidence["nearest_km"] < 23
    assert far.evidence["trips_in_window"] == [trips[-1].trip_id]


def test_collision_reported_while_the_vehicle_was_parked_fires_parked_not_far() -> None:
    trips, _ = crash_day()
    parked_lat, parked_lon = trips[0].end_point
    at = trips[0].end_ms + 90 * 60_000           # 1.5 h into the 3 h stop, at the parking spot
    result = assess_loss(loss(at, parked_lat, parked_lon), trips, trips[-1].end_ms, CONFIG)
    assert result.decided and rules(result) == {PARKED}
    evidence = result.findings[0].evidence
    assert evidence["parked_km_from_loss"] < 0.1 and evidence["parked_until"] is not None


def test_theft_while_parked_is_not_flagged_as_parked() -> None:
    trips, _ = crash_day()
    at = trips[0].end_ms + 90 * 60_000
    result = assess_loss(loss(at, *trips[0].end_point, loss_type="theft"), trips, trips[-1].end_ms, CONFIG)
    assert result.decided and result.findings == []


def test_collision_while_driving_without_any_impact_fires_no_impact() -> None:
    b = TraceBuilder("TLM-1").accelerate_to(10).cruise(60).stop(5).gap(3600)
    b.accelerate_to(15).cruise(300).brake_to(5, 2.0).cruise(300).stop(5)
    b.gap(3600).accelerate_to(10).cruise(60)
    trips = trace(trips_of(b))
    at = trips[1].start_ms + 400_000
    result = assess_loss(loss(at, *trips[1].position_at(at)), trips, trips[-1].end_ms, CONFIG)
    assert result.decided and rules(result) == {NO_IMPACT}
    assert result.findings[0].evidence["max_speed_kmh_in_window"] > 50


def test_a_strong_harsh_brake_near_the_reported_time_counts_as_impact_but_a_mild_one_does_not() -> None:
    def with_brake(decel_g: float) -> list[TraceTrip]:
        b = TraceBuilder("TLM-1").accelerate_to(10).cruise(60).stop(5).gap(3600).accelerate_to(13).cruise(300).brake_to(0, decel_g * 9.81).stop(5)
        b.gap(3600).accelerate_to(10).cruise(60)
        return trace(trips_of(b))

    for decel_g, expected in ((0.7, set()), (0.4, {NO_IMPACT})):
        trips = with_brake(decel_g)
        assert [e[0] for e in trips[1].events] == ["harsh_braking"], decel_g
        at = trips[1].end_ms - 60_000
        result = assess_loss(loss(at, *trips[1].position_at(at)), trips, trips[-1].end_ms, CONFIG)
        assert result.decided and rules(result) == expected, decel_g


def test_rules_wait_while_a_trip_covering_the_window_may_still_be_open() -> None:
    trips, crash = crash_day()
    far_lat = crash["lat"] + 0.5
    # Only the morning trip is known and nothing says the trace is complete after it.
    at = trips[0].end_ms + 45 * 60_000
    early = assess_loss(loss(at, far_lat, crash["lon"]), trips[:1], trips[0].end_ms, CONFIG)
    assert not early.decided and early.findings == []
    # Once the next trip is published, the 3 h stop is known: parked there, far from the reported place.
    late = assess_loss(loss(at, far_lat, crash["lon"]), trips, trips[-1].end_ms, CONFIG)
    assert late.decided and rules(late) == {FAR, PARKED}


def test_a_gap_during_which_the_vehicle_moved_unobserved_clears_nothing_and_fires_nothing() -> None:
    first = TraceBuilder("TLM-1").accelerate_to(15).cruise(200).stop(5)
    second = TraceBuilder("TLM-1", start_ms=first.now_ms + 2 * HOUR, lat=first.lat + 0.5, lon=first.lon)
    second.accelerate_to(15).cruise(100)
    trips = trace(trips_of(first, second))
    at = trips[0].end_ms + HOUR
    result = assess_loss(loss(at, first.lat + 0.25, first.lon), trips, trips[-1].end_ms, CONFIG)
    assert result.decided and result.findings == [] and result.cleared == []


# -- the matcher: arrival order, repeats, published ids ------------------------------------------------------

def claim_change(claim_id: str, vehicle_id: str, at_ms: int, lat: float, lon: float, *, status: str = "fnol",
                 op: str = "c", loss_type: str = "collision") -> dict[str, Any]:
    iso = datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    return {"op": op, "key": {"claim_id": claim_id}, "unchanged": [], "source_ts_ms": at_ms + HOUR,
            "row": {"claim_id": claim_id, "claim_number": "CLM-" + claim_id, "vehicle_id": vehicle_id,
                    "loss_time": iso, "loss_lat": lat, "loss_lon": lon, "loss_type": loss_type, "status": status}}


def vehicle_change(vehicle_id: str, device: str | None) -> dict[str, Any]:
    return {"op": "c", "key": {"vehicle_id": vehicle_id}, "unchanged": [],
            "row": {"vehicle_id": vehicle_id, "telematics_device_id": device}}


def test_matcher_decides_once_whatever_the_arrival_order_and_never_repeats_an_alert() -> None:
    b = TraceBuilder("TLM-1").accelerate_to(10).cruise(60).stop(5).gap(3600)
    b.accelerate_to(15).cruise(600).stop(5).gap(3 * 3600).accelerate_to(20).cruise(300)
    trips = trips_of(b)
    at = trips[1].start_ms + 300_000
    lat, lon = trips[1].path[20][1] + 0.3, trips[1].path[20][2]  # ~33 km off, while driving: far + no impact

    matcher = FraudMatcher()
    matcher.add_claim_change(claim_change("c1", "veh-1", at, lat, lon))
    assert matcher.collect(now_ms=1) == []            # vehicle unknown yet
    matcher.add_vehicle_change(vehicle_change("veh-1", "TLM-1"))
    assert matcher.collect(now_ms=1) == []            # its trips not read yet
    for t in trips:
        matcher.add_trip(0, trip_record(t))
    decisions = matcher.collect(now_ms=123)
    assert [d.claim_id for d in decisions] == ["c1"]
    assert sorted(a["rule"] for a in decisions[0].alerts) == sorted([FAR, NO_IMPACT])
    alert = decisions[0].alerts[0]
    assert decode_alert(encode_alert(alert)[1])["alert_id"] == alert["alert_id"]
    matcher.confirm(decisions)
    assert matcher.pending == 0 and matcher.counters["alerts"] == 2

    # A status change (same loss facts) and a repeated trip change nothing.
    matcher.add_claim_change(claim_change("c1", "veh-1", at, lat, lon, status="assessing", op="u"))
    matcher.add_trip(0, trip_record(trips[0]))
    assert matcher.collect(now_ms=456) == []

    # A restarted matcher that read the alerts back publishes nothing again for the same facts.
    again = FraudMatcher()
    again.mark_published(a["alert_id"] for a in decisions[0].alerts)
    for t in trips:
        again.add_trip(0, trip_record(t))
    again.add_vehicle_change(vehicle_change("veh-1", "TLM-1"))
    again.add_claim_change(claim_change("c1", "veh-1", at, lat, lon))
    repeat = again.collect(now_ms=789)
    assert [d.claim_id for d in repeat] == ["c1"] and repeat[0].alerts == []

    # Corrected loss facts are a new assessment with new alert ids.
    matcher.add_claim_change(claim_change("c1", "veh-1", at, *trace(trips)[1].position_at(at), op="u"))
    corrected = matcher.collect(now_ms=999)
    assert [a["rule"] for a in corrected[0].alerts] == [NO_IMPACT]
    assert corrected[0].alerts[0]["alert_id"] not in {a["alert_id"] for a in decisions[0].alerts}


def test_matcher_skips_vehicles_without_a_device_and_drops_deleted_claims() -> None:
    matcher = FraudMatcher()
    matcher.add_vehicle_change(vehicle_change("veh-2", None))
    matcher.add_claim_change(claim_change("c2", "veh-2", START_MS, 48.0, 2.0))
    matcher.add_claim_change(claim_change("c3", "veh-9", START_MS, 48.0, 2.0))
    matcher.add_claim_change({"op": "d", "key": {"claim_id": "c3"}, "row": None, "unchanged": [],
                              "source_ts_ms": START_MS})
    decisions = matcher.collect(now_ms=1)
    assert [(d.claim_id, d.outcome, d.alerts) for d in decisions] == [("c2", "without_telematics", [])]
    matcher.confirm(decisions)
    assert matcher.pending == 0
