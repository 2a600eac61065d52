"""Safety events over cleaned, (vehicle, ts)-sorted readings: harsh braking, acceleration, cornering, speeding, crash.

An event is a run of consecutive samples beyond a threshold inside one trip (a gap longer than `max_sample_gap_s`
ends a run). Each sample covers the interval up to the next one (the contract's convention: a reading carries the
acceleration applied during [t, t + dt)), so a run lasts from its first sample to the end of its last interval.

- harsh_braking / harsh_acceleration: accel_long ≤ −threshold / ≥ +threshold for ≥ `min_event_duration_s`, AND the
  speed change across the run is at least `corroboration_ratio` × threshold × duration. A pothole or a knock on the
  device is a spike the vehicle's speed does not follow, so it does not fire, even at 1 Hz where one sample covers
  a whole second; vertical acceleration is never used for these events.
- harsh_cornering: |accel_lat| ≥ threshold with one sign for ≥ `min_event_duration_s`, AND the heading change times
  the mean speed (the lateral acceleration that the path implies) is at least the same fraction.
- speeding: speed > limit × (1 + tolerance_ratio) + tolerance_mps for ≥ `speeding_min_duration_s`; no limit known,
  no speeding.
- crash: resultant horizontal acceleration ≥ `crash_g` (no minimum duration: impacts last milliseconds) and the
  vehicle at ≤ `crash_stop_speed_mps` within `crash_stop_within_s` after it (or, by default, the device silent from
  then on). Harsh braking/acceleration/cornering runs overlapping a crash are folded into it.

`peak_g` is the peak |acceleration| in g for the acceleration events and the crash (resultant horizontal); for
speeding it is the peak speed over the posted limit in km/h (not a g value; the output field name is shared).
`severity` is peak over threshold (≥ 1): for speeding, peak speed over the tolerated speed. Scoring uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.telematics_scorer.config import G, ScoringConfig
from services.telematics_scorer.readings import ReadingsBatch

EVENT_TYPES = ("harsh_braking", "harsh_acceleration", "harsh_cornering", "speeding", "crash")


@dataclass(frozen=True)
class SafetyEvent:
    """One event; times are epoch ms, the position is where it started."""

    type: str
    start_ms: int
    end_ms: int
    peak_g: float
    severity: float
    lat: float
    lon: float


@dataclass(frozen=True, eq=False)
class EventRuns:
    """Events of one type as arrays over the readings: first and last sample index (inclusive), peak, severity."""

    type: str
    first: np.ndarray
    last: np.ndarray
    end_ms: np.ndarray
    peak: np.ndarray
    severity: np.ndarray

    def __len__(self) -> int:
        return len(self.first)

    def select(self, keep: np.ndarray) -> EventRuns:
        return EventRuns(self.type, self.first[keep], self.last[keep], self.end_ms[keep], self.peak[keep],
                         self.severity[keep])


@dataclass(frozen=True, eq=False)
class SampleGrid:
    """Per-sample context shared by all detectors: where runs may not continue, how long each sample covers, and
    the index of the sample after each one in the same trip (itself at the end of a trip)."""

    run_break: np.ndarray
    cover_s: np.ndarray
    next_in_trip: np.ndarray
    trip_last: np.ndarray

    @classmethod
    def build(cls, ts: np.ndarray, trip_start: np.ndarray, config: ScoringConfig) -> SampleGrid:
        n = len(ts)
        idx = np.arange(n)
        dt_s = np.diff(ts) / 1000.0
        gap = dt_s > config.max_sample_gap_s
        run_break = trip_start.copy()
        run_break[1:] |= gap
        linked = ~run_break[1:]  # sample i and i+1 in the same run segment
        cover = np.zeros(n)
        cover[:-1] = np.where(linked, dt_s, 0.0)
        no_next = np.r_[~linked, True]
        cover[1:] = np.where(no_next[1:] & linked, dt_s, cover[1:])  # last sample of a segment: previous interval
        trip_end = np.r_[trip_start[1:], True]
        next_in_trip = np.where(trip_end, idx, idx + 1)
        trip_id = np.cumsum(trip_start) - 1
        trip_last = np.r_[np.flatnonzero(trip_start)[1:] - 1, n - 1][trip_id]
        return cls(run_break, cover, next_in_trip, trip_last)


def threshold_runs(mask: np.ndarray, run_break: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of each run of True in `mask`; a run never continues across a `run_break` sample."""
    prev = np.empty_like(mask)
    prev[0] = False
    np.logical_and(mask[:-1], ~run_break[1:], out=prev[1:])
    nxt = np.empty_like(mask)
    nxt[-1] = False
    np.logical_and(mask[1:], ~run_break[1:], out=nxt[:-1])
    return np.flatnonzero(mask & ~prev), np.flatnonzero(mask & ~nxt)


def _run_peak(values: np.ndarray, mask: np.ndarray, first: np.ndarray) -> np.ndarray:
    if len(first) == 0:
        return np.zeros(0)
    return np.maximum.reduceat(np.where(mask, values, -np.inf), first)


def _runs(kind: str, mask: np.ndarray, magnitude: np.ndarray, threshold: float, grid: SampleGrid,
          ts: np.ndarray, min_duration_s: float) -> tuple[EventRuns, np.ndarray]:
    first, last = threshold_runs(mask, grid.run_break)
    duration = (ts[last] - ts[first]) / 1000.0 + grid.cover_s[last]
    long_enough = duration >= min_duration_s
    peak = _run_peak(magnitude, mask, first)
    end_ms = ts[last] + (grid.cover_s[last] * 1000).astype(np.int64)
    runs = EventRuns(kind, first, last, end_ms, peak, peak / threshold)
    return runs.select(long_enough), duration[long_enough]


def longitudinal_events(batch: ReadingsBatch, grid: SampleGrid, config: ScoringConfig) -> list[EventRuns]:
    """Harsh braking and harsh acceleration, corroborated by the speed change across each run."""
    out = []
    a, v, ts = batch.accel_long_mps2, batch.speed_mps, batch.ts
    for kind, sign, g in (("harsh_braking", -1.0, config.harsh_braking_g),
                          ("harsh_acceleration", 1.0, config.harsh_acceleration_g)):
        thr = g * G
        magnitude = sign * a
        runs, duration = _runs(kind, magnitude >= thr, magnitude, thr, grid, ts, config.min_event_duration_s)
        dv = sign * (v[grid.next_in_trip[runs.last]] - v[runs.first])
        corroborated = dv >= config.corroboration_ratio * thr * duration
        runs = runs.select(corroborated)
        out.append(EventRuns(kind, runs.first, runs.last, runs.end_ms, runs.peak / G, runs.severity))
    return out


def cornering_events(batch: ReadingsBatch, grid: SampleGrid, config: ScoringConfig) -> EventRuns:
    """Harsh cornering (either side), corroborated by the heading change across each run."""
    thr = config.harsh_cornering_g * G
    a, v, ts, heading = batch.accel_lat_mps2, batch.speed_mps, batch.ts, batch.heading_deg
    parts = []
    for sign in (1.0, -1.0):
        magnitude = sign * a
        runs, duration = _runs("harsh_cornering", magnitude >= thr, magnitude, thr, grid, ts,
                               config.min_event_duration_s)
        after = grid.next_in_trip[runs.last]
        turned = sign * _left_turn_rad(heading, runs.first, after)
        v_mean = (v[runs.first] + v[after]) / 2
        implied = turned * v_mean  # rad × m/s = lateral acceleration × duration
        parts.append(runs.select(implied >= config.corroboration_ratio * thr * duration))
    order = np.argsort(np.r_[parts[0].first, parts[1].first], kind="stable")
    cat = {f: np.r_[getattr(parts[0], f), getattr(parts[1], f)][order]
           for f in ("first", "last", "end_ms", "peak", "severity")}
    cat["peak"] = cat["peak"] / G
    return EventRuns("harsh_cornering", **cat)


def _left_turn_rad(heading_deg: np.ndarray, first: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Total left turn (radians, heading decreasing) from sample `first` to sample `after` of each run, summing
    wrapped sample-to-sample steps so turns beyond 180° (roundabouts) add up. Only run samples are touched."""
    if len(first) == 0:
        return np.zeros(0)
    lengths = after - first
    idx = np.repeat(first - np.r_[0, np.cumsum(lengths)[:-1]], lengths) + np.arange(lengths.sum())
    step = (heading_deg[idx + 1] - heading_deg[idx] + 540.0) % 360.0 - 180.0
    sums = np.add.reduceat(np.r_[-np.radians(step), 0.0], np.r_[0, np.cumsum(lengths)[:-1]])[: len(first)]
    return np.where(lengths > 0, sums, 0.0)


def speeding_events(batch: ReadingsBatch, grid: SampleGrid, config: ScoringConfig) -> EventRuns:
    """Speed above the tolerated speed for the posted limit, sustained."""
    tolerated = batch.speed_limit_mps * (1 + config.speeding_tolerance_ratio) + config.speeding_tolerance_mps
    with np.errstate(invalid="ignore"):
        over = batch.speed_mps > tolerated  # NaN limit compares False
    ratio = np.where(over, batch.speed_mps / np.where(over, tolerated, 1.0), 0.0)
    runs, _ = _runs("speeding", over, ratio, 1.0, grid, batch.ts, config.speeding_min_duration_s)
    kmh_over = np.where(over, (batch.speed_mps - np.nan_to_num(batch.speed_limit_mps)) * 3.6, 0.0)
    return EventRuns("speeding", runs.first, runs.last, runs.end_ms, _run_peak(kmh_over, over, runs.first),
                     runs.severity)


def crash_events(batch: ReadingsBatch, grid: SampleGrid, config: ScoringConfig) -> EventRuns:
    """Multi-g horizontal spike followed by a stop within `crash_stop_within_s`."""
    thr = config.crash_g * G
    along, alat = batch.accel_long_mps2, batch.accel_lat_mps2
    empty = EventRuns("crash", *(np.zeros(0, np.int64),) * 3, np.zeros(0), np.zeros(0))
    # Cheap screen first (either axis alone at ≥ thr/√2 is necessary for the resultant to reach thr); the exact
    # resultant is computed only at the few candidate samples.
    screen = thr / np.sqrt(2.0)
    candidates = np.flatnonzero((np.abs(along) >= screen) | (np.abs(alat) >= screen))
    if not len(candidates):
        return empty
    magnitude = np.hypot(along[candidates], alat[candidates])
    hits = candidates[magnitude >= thr]
    if not len(hits):
        return empty
    spike = np.zeros(len(along), bool)
    spike[hits] = True
    first, last = threshold_runs(spike, grid.run_break)
    # Peak per run over the hit samples only (runs are consecutive hits, so reduceat over the hits works).
    peak = np.maximum.reduceat(magnitude[magnitude >= thr], np.searchsorted(hits, first))
    n = len(batch.ts)
    stopped_at = np.r_[np.flatnonzero(batch.speed_mps <= config.crash_stop_speed_mps), n]
    stop_at = stopped_at[np.searchsorted(stopped_at, last + 1)]  # first stopped sample after the spike (n if none)
    trip_last = grid.trip_last[last]
    window_ms = config.crash_stop_within_s * 1000
    in_trip = stop_at <= trip_last
    stop_idx = np.where(in_trip, stop_at, trip_last)
    stops = in_trip & (last < trip_last) & (batch.ts[stop_idx] - batch.ts[last] <= window_ms)
    if config.crash_signal_loss_counts_as_stop:
        silent = ~in_trip & (batch.ts[trip_last] - batch.ts[last] <= window_ms)
        stops |= silent
    # The event spans from the spike to the stop (its `last` is the stop sample).
    return EventRuns("crash", first[stops], stop_idx[stops], batch.ts[stop_idx[stops]], peak[stops] / G,
                     peak[stops] / thr)


def detect_events(batch: ReadingsBatch, trip_start: np.ndarray, config: ScoringConfig) -> list[EventRuns]:
    """All event types over cleaned sorted readings; `trip_start` marks each trip's first sample."""
    if len(batch) == 0:
        return []
    grid = SampleGrid.build(batch.ts, trip_start, config)
    crashes = crash_events(batch, grid, config)
    runs = [*longitudinal_events(batch, grid, config), cornering_events(batch, grid, config)]
    if len(crashes):
        # A crash's own spike would also read as harsh braking/cornering: fold overlapping runs into the crash.
        runs = [r.select(~_overlaps(r.first, r.last, crashes.first, crashes.last)) for r in runs]
    return [*runs, speeding_events(batch, grid, config), crashes]


def _overlaps(first: np.ndarray, last: np.ndarray, other_first: np.ndarray, other_last: np.ndarray) -> np.ndarray:
    out = np.zeros(len(first), bool)
    for a, b in zip(other_first, other_last):
        out |= (first <= b) & (last >= a)
    return out
