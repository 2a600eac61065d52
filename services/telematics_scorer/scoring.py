"""Trip score and rolling driver score.

Trip score (0-100, higher is safer):
    points   = Σ over events  weight(type) × min(severity, severity_cap)
               (speeding: weight_speeding_per_min × severity × max(1, minutes over the limit))
    rate     = 100 × points / max(distance_km, min_exposure_km)        weighted events per 100 km
    score    = 100 × exp(−rate / score_scale)
    if the trip has a crash: score × crash_score_cap / 100              (a crash caps it at crash_score_cap)
Defaults: weights braking 1.0, cornering 0.75, acceleration 0.5, speeding 0.5 per minute; severity = peak /
threshold capped at 3; exposure floor 5 km (a short trip is not judged on a few hundred metres); score_scale 50, so
one threshold-level harsh brake in 10 km (rate 10) scores 82, five score 37. More events or a higher peak (up to
the cap) never raise the score; the crash cap is a multiplication, so it keeps that order among crash trips.

Driver score: a distance-weighted exponential moving average of trip scores,
    w = 1 − 0.5 ** (trip_km / driver_half_life_km);   score = previous + w × (trip_score − previous)
so a trip's influence halves with every `driver_half_life_km` (300 km) driven after it, and a trip of 0 km
changes nothing. The first trip sets the score. A trip that does not end after the last one applied is ignored,
which makes the update idempotent under redelivery (the service gets at-least-once delivery).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from services.telematics_scorer.config import ScoringConfig

if TYPE_CHECKING:
    from services.telematics_scorer.events import SafetyEvent
    from services.telematics_scorer.trips import Trip


def event_points(event: SafetyEvent, config: ScoringConfig) -> float:
    """Penalty points of one event (crashes score through the cap, not through points)."""
    severity = min(event.severity, config.severity_cap)
    if event.type == "speeding":
        minutes = (event.end_ms - event.start_ms) / 60_000
        return config.weight_speeding_per_min * severity * max(1.0, minutes)
    weight = {"harsh_braking": config.weight_harsh_braking, "harsh_acceleration": config.weight_harsh_acceleration,
              "harsh_cornering": config.weight_harsh_cornering}.get(event.type, 0.0)
    return weight * severity


def trip_score(distance_km: float, events: Iterable[SafetyEvent], config: ScoringConfig) -> float:
    """Score 0-100 of a trip of `distance_km` with `events` (formula in the module docstring), 1 decimal."""
    events = list(events)
    points = sum(event_points(e, config) for e in events)
    rate = 100.0 * points / max(distance_km, config.min_exposure_km)
    score = 100.0 * math.exp(-rate / config.score_scale)
    if any(e.type == "crash" for e in events):
        score *= config.crash_score_cap / 100.0
    return round(score, 1)


@dataclass(frozen=True)
class DriverScore:
    """Rolling score of the driver(s) of one vehicle; the value kept per vehicle in the service's table."""

    vehicle_id: str
    score: float
    trips: int
    distance_km: float
    events: int
    crashes: int
    last_trip_end_ms: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> DriverScore:
        return cls(**{k: value[k] for k in cls.__dataclass_fields__})


def update_driver_score(previous: DriverScore | None, trip: Trip,
                        config: ScoringConfig | None = None) -> DriverScore:
    """Fold one finished trip into the vehicle's rolling score (module docstring); idempotent per trip."""
    config = config or ScoringConfig()
    crashes = sum(1 for e in trip.events if e.type == "crash")
    if previous is None:
        return DriverScore(trip.vehicle_id, trip.score, 1, trip.distance_km, len(trip.events), crashes, trip.end_ms)
    if trip.end_ms <= previous.last_trip_end_ms:
        return previous
    weight = 1.0 - 0.5 ** (trip.distance_km / config.driver_half_life_km)
    score = previous.score + weight * (trip.score - previous.score)
    return DriverScore(previous.vehicle_id, round(score, 2), previous.trips + 1,
                       round(previous.distance_km + trip.distance_km, 3), previous.events + len(trip.events),
                       previous.crashes + crashes, trip.end_ms)
