"""Cleaning a batch of readings: invalid values, duplicates, out-of-order and late readings, GPS glitches, gaps.

Everything is vectorised over the whole batch (all vehicles at once); only the rare stretches that still hold an
implausible GPS jump after the vectorised pass are walked in Python. The result is sorted by (vehicle, ts) and
remembers, for every kept and every dropped reading, its row in the input, so a service can dead-letter drops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum

import numpy as np

from services.telematics_scorer.config import ScoringConfig
from services.telematics_scorer.readings import FLOAT_COLUMNS, ReadingsBatch, haversine_m, path_steps_m


class DropReason(IntEnum):
    INVALID = 1       # NaN or out-of-range value (or the (0, 0) "null island" fix)
    DUPLICATE = 2     # same vehicle and ts as a reading that arrived earlier
    LATE = 3          # arrived more than reorder_grace_s behind the newest reading of its vehicle
    GPS_GLITCH = 4    # position inconsistent with the neighbouring fixes


@dataclass
class CleaningStats:
    """Counts of what cleaning did. `received = kept + invalid + duplicates + late + gps_glitches`."""

    received: int = 0
    kept: int = 0
    invalid: int = 0
    duplicates: int = 0
    late: int = 0
    reordered: int = 0       # arrived out of order within the grace period; put back in place and kept
    gps_glitches: int = 0
    gaps: int = 0            # intervals inside a trip longer than max_sample_gap_s (kept; they break event runs)

    def add(self, other: CleaningStats) -> CleaningStats:
        return CleaningStats(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class CleanReadings:
    """Kept readings sorted by (vehicle, ts), with their input rows, and the dropped input rows with reasons.

    `step_m[i]` is the haversine distance from kept reading i − 1 to i (meaningless where the vehicle changes).
    """

    batch: ReadingsBatch
    step_m: np.ndarray
    source_row: np.ndarray
    dropped_row: np.ndarray
    dropped_reason: np.ndarray
    stats: CleaningStats


def valid_reading_mask(batch: ReadingsBatch, config: ScoringConfig) -> np.ndarray:
    """True where every field is finite and physically possible."""
    a_max = config.max_valid_accel_mps2
    with np.errstate(invalid="ignore"):
        ok = (np.abs(batch.lat) <= 90) & (np.abs(batch.lon) <= 180) & ((batch.lat != 0) | (batch.lon != 0))
        ok &= (batch.speed_mps >= 0) & (batch.speed_mps <= config.max_valid_speed_mps)
        ok &= np.isfinite(batch.heading_deg)
        ok &= (np.abs(batch.accel_long_mps2) <= a_max) & (np.abs(batch.accel_lat_mps2) <= a_max)
        ok &= np.abs(batch.accel_vert_mps2) <= a_max
        ok &= (batch.vehicle >= 0) & (batch.vehicle < len(batch.vehicle_ids))
    return ok


def clean_readings(batch: ReadingsBatch, config: ScoringConfig) -> CleanReadings:
    """Drop invalid, duplicate, late and GPS-glitch readings; sort the rest by (vehicle, ts); count everything."""
    n = len(batch)
    stats = CleaningStats(received=n)
    valid = valid_reading_mask(batch, config)
    limit = batch.speed_limit_mps
    if np.any(limit <= 0):  # a non-positive posted limit means "unknown", not a bad reading
        limit = np.where(limit > 0, limit, np.nan)
        batch = ReadingsBatch(**{**batch.__dict__, "speed_limit_mps": limit})
    dropped_rows = [np.flatnonzero(~valid)]
    dropped_reasons = [np.full(len(dropped_rows[0]), DropReason.INVALID, np.uint8)]
    stats.invalid = len(dropped_rows[0])

    # Arrival order within each vehicle (stable sort on the vehicle code only).
    if stats.invalid:
        rows = np.flatnonzero(valid)
        by_vehicle = rows[np.argsort(batch.vehicle[rows], kind="stable")]
    else:
        by_vehicle = np.argsort(batch.vehicle, kind="stable")
    veh, ts = batch.vehicle[by_vehicle], batch.ts[by_vehicle]
    same_vehicle = np.empty(len(veh), bool)
    same_vehicle[:1] = False
    np.equal(veh[1:], veh[:-1], out=same_vehicle[1:])
    if len(ts) < 2 or np.all((ts[1:] > ts[:-1]) | ~same_vehicle[1:]):
        order = by_vehicle  # the common case: each vehicle's readings arrived in time order, no duplicates
        kept = ReadingsBatch(batch.vehicle_ids, veh, ts, **{c: getattr(batch, c)[order] for c in FLOAT_COLUMNS})
    else:
        order, drops, reasons = _deduplicate_and_reorder(by_vehicle, veh, ts, same_vehicle, config, stats)
        dropped_rows.append(drops)
        dropped_reasons.append(reasons)
        kept = batch.take(order)
    glitch_mask, steps, gaps = _gps_glitches(kept, config)
    stats.gaps = gaps
    step_m = np.zeros(len(kept))
    if glitch_mask.any():
        stats.gps_glitches = int(glitch_mask.sum())
        dropped_rows.append(order[glitch_mask])
        dropped_reasons.append(np.full(stats.gps_glitches, DropReason.GPS_GLITCH, np.uint8))
        order = order[~glitch_mask]
        kept = kept.take(~glitch_mask)
        step_m = np.zeros(len(kept))
        step_m[1:] = path_steps_m(kept.lat, kept.lon)
        dt = np.diff(kept.ts)
        same = kept.vehicle[1:] == kept.vehicle[:-1]
        stats.gaps = int(np.count_nonzero(same & (dt > config.max_sample_gap_s * 1000)
                                          & (dt <= config.trip_gap_s * 1000)))
    elif len(kept) > 1:
        step_m[1:] = steps
    stats.kept = len(kept)
    return CleanReadings(kept, step_m, order, np.concatenate(dropped_rows), np.concatenate(dropped_reasons), stats)


def _deduplicate_and_reorder(by_vehicle: np.ndarray, veh: np.ndarray, ts: np.ndarray, same_vehicle: np.ndarray,
                             config: ScoringConfig, stats: CleaningStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (input indices) in (vehicle, ts) order without duplicates and late readings, plus the dropped rows."""
    m = len(by_vehicle)
    # Sorting by (vehicle, ts) keeps arrival order among equal keys, so the first copy to arrive survives.
    order_in_vehicle = np.lexsort((np.arange(m), ts, veh))
    sorted_ts, sorted_veh = ts[order_in_vehicle], veh[order_in_vehicle]
    dup_sorted = np.zeros(m, bool)
    dup_sorted[1:] = (sorted_ts[1:] == sorted_ts[:-1]) & (sorted_veh[1:] == sorted_veh[:-1])
    duplicate = np.empty(m, bool)
    duplicate[order_in_vehicle] = dup_sorted

    # How far behind the newest earlier arrival of its vehicle each reading is (0 if it is the newest).
    shifted = ts - ts.min() + 1
    span = int(shifted.max()) + 1
    if int(veh.max()) * span < 2**62:
        key = veh * span + shifted
        running = np.maximum.accumulate(key) - veh * span
    else:  # astronomically wide batch: per-vehicle loop
        running = np.empty(m, np.int64)
        starts = np.flatnonzero(~same_vehicle)
        for a, b in zip(starts, [*starts[1:], m]):
            running[a:b] = np.maximum.accumulate(shifted[a:b])
    prev_newest = np.zeros(m, np.int64)
    prev_newest[1:] = np.where(same_vehicle[1:], running[:-1], 0)
    behind_ms = prev_newest - shifted
    late = ~duplicate & (behind_ms > config.reorder_grace_s * 1000)
    stats.duplicates = int(duplicate.sum())
    stats.late = int(late.sum())
    stats.reordered = int(np.count_nonzero(~duplicate & ~late & (behind_ms > 0)))

    keep_sorted = ~(duplicate | late)[order_in_vehicle]
    order = by_vehicle[order_in_vehicle[keep_sorted]]
    dup_rows, late_rows = by_vehicle[duplicate], by_vehicle[late]
    reasons = np.concatenate([np.full(len(dup_rows), DropReason.DUPLICATE, np.uint8),
                              np.full(len(late_rows), DropReason.LATE, np.uint8)])
    return order, np.concatenate([dup_rows, late_rows]), reasons


def _implausible_jumps(lat: np.ndarray, lon: np.ndarray, speed: np.ndarray, dt_s: np.ndarray,
                       config: ScoringConfig, dist: np.ndarray | None = None) -> np.ndarray:
    """True for each (point, next point) pair whose distance the elapsed time and reported speeds cannot explain."""
    if dist is None:
        dist = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    tol = config.gps_tolerance_m
    bad = dist > config.max_implied_speed_mps * dt_s + tol
    v = np.maximum(speed[:-1], speed[1:])
    bad |= (dt_s <= config.speed_check_max_dt_s) & (dist > config.speed_check_factor * v * dt_s + tol)
    return bad


def _gps_glitches(batch: ReadingsBatch, config: ScoringConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Mask of the fixes of a (vehicle, ts)-sorted batch to drop as GPS glitches, plus what it computed on the way:
    the step distances and the number of gaps (intervals inside a trip longer than max_sample_gap_s).

    Pass 1 (vectorised): a fix whose every link to a neighbour is implausible (a spike, or a bad first/last fix).
    Pass 2 (Python, only where implausible links remain): from the last good fix, drop up to `glitch_max_burst`
    following fixes that cannot be reached from it; a longer run is a real relocation and is kept.
    """
    m = len(batch)
    glitch = np.zeros(m, bool)
    if m < 2:
        return glitch, np.zeros(0), 0
    lat, lon, speed, veh, ts = batch.lat, batch.lon, batch.speed_mps, batch.vehicle, batch.ts
    dt_s = np.diff(ts) / 1000.0
    linked = (veh[1:] == veh[:-1]) & (dt_s <= config.trip_gap_s)  # across an ignition-off gap anything goes
    gaps = int(np.count_nonzero(linked & (dt_s > config.max_sample_gap_s)))
    steps = path_steps_m(lat, lon)
    bad = _implausible_jumps(lat, lon, speed, dt_s, config, steps) & linked
    if not bad.any():
        return glitch, steps, gaps
    good = linked & ~bad
    bad_left, bad_right = np.r_[False, bad], np.r_[bad, False]
    good_left, good_right = np.r_[False, good], np.r_[good, False]
    glitch = (bad_left | bad_right) & ~good_left & ~good_right
    # Pass 2 on what pass 1 left.
    keep = ~glitch
    idx = np.flatnonzero(keep)
    k_lat, k_lon, k_speed, k_ts, k_veh = lat[idx], lon[idx], speed[idx], ts[idx], veh[idx]
    k_dt = np.diff(k_ts) / 1000.0
    k_linked = (k_veh[1:] == k_veh[:-1]) & (k_dt <= config.trip_gap_s)
    remaining = np.flatnonzero(_implausible_jumps(k_lat, k_lon, k_speed, k_dt, config) & k_linked)
    one = np.zeros(1)
    next_free = 0
    for anchor in remaining:
        if anchor < next_free:
            continue
        burst = []
        j = anchor + 1
        while j < len(idx) and len(burst) <= config.glitch_max_burst and k_veh[j] == k_veh[anchor]:
            dt = (k_ts[j] - k_ts[anchor]) / 1000.0
            if dt > config.trip_gap_s:
                break
            pair_bad = _implausible_jumps(k_lat[[anchor, j]], k_lon[[anchor, j]], k_speed[[anchor, j]],
                                          one + dt, config)[0]
            if not pair_bad:
                break
            burst.append(j)
            j += 1
        if burst and len(burst) <= config.glitch_max_burst:
            glitch[idx[burst]] = True
        next_free = j
    return glitch, steps, gaps
