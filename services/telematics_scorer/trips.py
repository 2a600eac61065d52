"""Trips from readings: the one entry point `score_readings` used by the replay CLI and the service.

Pipeline: clean (cleaning.py) → split each vehicle's readings into trips at ignition-off gaps (no reading for
`trip_gap_s`; a stop with readings, speed 0, stays inside the trip) → detect events (events.py) → per trip
distance (haversine over consecutive cleaned fixes, GPS jitter while standing excluded), duration, max speed,
events and score (scoring.py). All per-reading work is numpy over the whole batch; Python only touches trips and
events.

`score_readings` treats its input as complete: the last trip of each vehicle ends with the batch. A streaming
caller must hold back readings of a vehicle's still-open trip (newer than now − trip_gap_s) for the next batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.telematics_scorer.cleaning import CleaningStats, CleanReadings, clean_readings
from services.telematics_scorer.config import ScoringConfig
from services.telematics_scorer.events import EventRuns, SafetyEvent, detect_events
from services.telematics_scorer.readings import ReadingsBatch
from services.telematics_scorer.scoring import trip_score


@dataclass(frozen=True)
class Trip:
    """One trip of one vehicle; times epoch ms, positions of the first and last cleaned fix."""

    vehicle_id: str
    start_ms: int
    end_ms: int
    distance_km: float
    duration_s: float
    max_speed_kmh: float
    readings: int
    events: tuple[SafetyEvent, ...]
    score: float
    start_lat: float
    start_lon: float
    end_lat: float
    end_lon: float
    # The trace, thinned to one fix per `path_interval_s` plus the first and last: (epoch ms, lat, lon, speed m/s).
    # Enough to say where the vehicle was at any time of the trip (fraud evidence) without keeping every reading.
    path: tuple[tuple[int, float, float, float], ...] = ()

    @property
    def trip_id(self) -> str:
        return f"{self.vehicle_id}:{self.start_ms}"


@dataclass(frozen=True, eq=False)
class ScoredReadings:
    """What `score_readings` returns: trips in (vehicle, start) order, cleaning counts and the cleaned readings."""

    trips: list[Trip]
    stats: CleaningStats
    cleaned: CleanReadings


def trip_starts(batch: ReadingsBatch, config: ScoringConfig) -> np.ndarray:
    """True at the first reading of each trip in a (vehicle, ts)-sorted batch."""
    start = np.ones(len(batch), bool)
    if len(batch) > 1:
        start[1:] = (batch.vehicle[1:] != batch.vehicle[:-1]) | (np.diff(batch.ts) > config.trip_gap_s * 1000)
    return start


def step_distances_m(cleaned: CleanReadings, trip_start: np.ndarray, config: ScoringConfig) -> np.ndarray:
    """Metres from the previous fix of the same trip to each fix (0 at trip starts and for standing jitter)."""
    batch = cleaned.batch
    d = cleaned.step_m.copy()
    if len(batch) > 1:
        v = batch.speed_mps
        standing = (v[1:] < config.stationary_speed_mps) & (v[:-1] < config.stationary_speed_mps)
        d[1:][standing & (d[1:] < config.stationary_jitter_m)] = 0.0
        d[trip_start] = 0.0
    return d


def score_readings(readings: ReadingsBatch | Mapping[str, Any], config: ScoringConfig | None = None, *,
                   with_paths: bool = True) -> ScoredReadings:
    """Clean `readings` (a batch or a mapping of columns, see ReadingsBatch.from_columns) and return scored trips.

    `with_paths=False` leaves `Trip.path` empty, for callers that do not publish it (the replay CLI's output has no
    path); everything else is identical.
    """
    config = config or ScoringConfig()
    batch = readings if isinstance(readings, ReadingsBatch) else ReadingsBatch.from_columns(readings)
    cleaned = clean_readings(batch, config)
    clean = cleaned.batch
    n = len(clean)
    if n == 0:
        return ScoredReadings([], cleaned.stats, cleaned)
    start = trip_starts(clean, config)
    first = np.flatnonzero(start)
    last = np.r_[first[1:] - 1, n - 1]
    distance_km = np.add.reduceat(step_distances_m(cleaned, start, config), first) / 1000.0
    max_speed_kmh = np.maximum.reduceat(clean.speed_mps, first) * 3.6
    events_by_trip = _events_by_trip(clean, detect_events(clean, start, config), first, clean.ts[last])
    paths = _thinned_paths(clean, start, last, config) if with_paths else [()] * len(first)

    trips = []
    rows = zip(first.tolist(), last.tolist(), clean.vehicle[first].tolist(), clean.ts[first].tolist(),
               clean.ts[last].tolist(), clean.lat[first].tolist(), clean.lon[first].tolist(),
               clean.lat[last].tolist(), clean.lon[last].tolist(), np.round(distance_km, 3).tolist(),
               np.round(max_speed_kmh, 1).tolist())
    for k, (a, b, veh, t0, t1, lat0, lon0, lat1, lon1, dist, vmax) in enumerate(rows):
        events = tuple(sorted(events_by_trip.get(k, ()), key=lambda e: (e.start_ms, e.type)))
        trips.append(Trip(
            vehicle_id=clean.vehicle_ids[veh], start_ms=t0, end_ms=t1, distance_km=dist, duration_s=(t1 - t0) / 1000.0,
            max_speed_kmh=vmax, readings=b - a + 1, events=events, score=trip_score(dist, events, config),
            start_lat=lat0, start_lon=lon0, end_lat=lat1, end_lon=lon1, path=paths[k]))
    return ScoredReadings(trips, cleaned.stats, cleaned)


def _thinned_paths(clean: ReadingsBatch, start: np.ndarray, last: np.ndarray,
                   config: ScoringConfig) -> list[tuple[tuple[int, float, float, float], ...]]:
    """Per trip, its first fix, the first fix of each `path_interval_s` bucket, and its last fix (vectorised)."""
    bucket = clean.ts // int(config.path_interval_s * 1000)
    keep = start.copy()
    keep[1:] |= bucket[1:] != bucket[:-1]
    keep[last] = True
    idx = np.flatnonzero(keep)
    points = list(zip(clean.ts[idx].tolist(), np.round(clean.lat[idx], 6).tolist(),
                      np.round(clean.lon[idx], 6).tolist(), np.round(clean.speed_mps[idx], 2).tolist()))
    bounds = np.searchsorted(idx, np.flatnonzero(start)).tolist() + [len(idx)]
    return [tuple(points[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _events_by_trip(clean: ReadingsBatch, runs: list[EventRuns], trip_first: np.ndarray,
                    trip_end_ms: np.ndarray) -> dict[int, list[SafetyEvent]]:
    out: dict[int, list[SafetyEvent]] = {}
    for r in runs:
        if not len(r):
            continue
        trip_of = np.searchsorted(trip_first, r.first, side="right") - 1
        end_ms = np.minimum(r.end_ms, trip_end_ms[trip_of])  # a run's last interval may reach past the trip
        rows = zip(trip_of.tolist(), clean.ts[r.first].tolist(), end_ms.tolist(), np.round(r.peak, 3).tolist(),
                   np.round(r.severity, 3).tolist(), clean.lat[r.first].tolist(), clean.lon[r.first].tolist())
        for k, start, end, peak, sev, lat, lon in rows:
            out.setdefault(k, []).append(SafetyEvent(r.type, start, end, peak, sev, lat, lon))
    return out
