"""Streaming trip assembly: per-vehicle buffers of readings in, closed trips out (pure; no Kafka).

`score_readings` treats its input as complete, so a live feed must hold back each vehicle's still-open trip.
`TripAssembler` keeps, per (partition, vehicle), the readings of the open trip and closes it when

- a reading of the same vehicle arrives more than `trip_gap_s` after the newest one buffered (ignition off, then on
  again: the buffered readings are one finished trip), or
- the partition's clock (the newest event time seen on that partition) is more than `trip_gap_s` past the vehicle's
  newest reading (the vehicle went silent while others kept reporting), or
- the buffer reaches `max_buffered_readings` (6 h at 1 Hz by default): the trip is cut there so memory stays bounded
  (counted as `forced_splits`; the remainder continues as a new trip).

Clocks are per partition, not global, so a partition that lags behind (catching up after a restart) does not see
every vehicle as silent. A partition that goes completely quiet has no clock to move: the runner closes its open
trips with `close_partitions` once it has received nothing for `idle_partition_close_s` of wall-clock time.

Every buffered reading remembers its source offset: `min_buffered_offsets()` tells the runner how far it may commit
(see runner.py). Readings no newer than a vehicle's last closed trip are dropped (`late_after_close`): they arrive
after the trip they belong to was published, or they are re-read after a restart (the commit point sits before
still-open readings of other vehicles) and were already scored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.telematics_scorer.config import ScoringConfig
from services.telematics_scorer.readings import ReadingsBatch
from services.telematics_scorer.trips import Trip, score_readings

SIX_HOURS_AT_1HZ = 6 * 3600


@dataclass
class _OpenTrip:
    partition: int
    readings: list[Mapping[str, Any]] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)   # source offsets, increasing (one partition)
    last_ts: int = -(2 ** 63)


@dataclass(frozen=True, eq=False)
class AssembledTrips:
    """What one `add` call closed: scored trips (vehicle, start order) and the counters of this call."""

    trips: list[Trip]
    counters: Counter


class _Closing:
    """Readings of closed trips, batched for one `score_readings` call per round. A vehicle closing twice in one
    `add` (a cut at the buffer cap without a time gap) goes to a later round, so its two trips are not merged."""

    def __init__(self) -> None:
        self.rounds: list[list[Mapping[str, Any]]] = []
        self._next_round: dict[str, int] = {}

    def add(self, vehicle: str, readings: list[Mapping[str, Any]]) -> None:
        k = self._next_round.get(vehicle, 0)
        if k == len(self.rounds):
            self.rounds.append([])
        self.rounds[k].extend(readings)
        self._next_round[vehicle] = k + 1


class TripAssembler:
    """Per-vehicle open-trip buffers over a stream of readings; `add` returns the trips that closed."""

    def __init__(self, config: ScoringConfig | None = None, *,
                 max_buffered_readings: int = SIX_HOURS_AT_1HZ) -> None:
        self.config = config or ScoringConfig()
        self.gap_ms = int(self.config.trip_gap_s * 1000)
        self.max_buffered_readings = max_buffered_readings
        self._open: dict[tuple[int, str], _OpenTrip] = {}
        self._clock: dict[int, int] = {}             # partition -> newest event time seen (ms)
        self._closed_until: dict[str, int] = {}      # vehicle -> end of its last published trip (ms)
        self._closed_pending: dict[str, int] = {}    # same, for trips closed but not yet confirmed published

    # -- the stream ------------------------------------------------------------------------------------------
    def add(self, readings: Iterable[Mapping[str, Any]], positions: Iterable[tuple[int, int]]) -> AssembledTrips:
        """Buffer `readings` (contract dicts, `ts` in epoch ms) with their (partition, offset); score what closed."""
        counters: Counter = Counter()
        closing = _Closing()
        touched: set[int] = set()
        for reading, (partition, offset) in zip(readings, positions):
            vehicle, ts = reading["vehicle_id"], reading["ts"]
            counters["assembled"] += 1
            done = max(self._closed_until.get(vehicle, -1), self._closed_pending.get(vehicle, -1))
            if ts <= done:
                counters["late_after_close"] += 1
                continue
            key = (partition, vehicle)
            trip = self._open.get(key)
            if trip is None:
                trip = self._open[key] = _OpenTrip(partition)
            elif ts - trip.last_ts > self.gap_ms:
                self._close(key, closing)      # ignition off, then on again: the buffer is a finished trip
                trip = self._open[key] = _OpenTrip(partition)
            elif len(trip.readings) >= self.max_buffered_readings:
                counters["forced_splits"] += 1
                self._close(key, closing)
                trip = self._open[key] = _OpenTrip(partition)
            trip.readings.append(reading)
            trip.offsets.append(offset)
            trip.last_ts = max(trip.last_ts, ts)
            if ts > self._clock.get(partition, -(2 ** 63)):
                self._clock[partition] = ts
            touched.add(partition)
        for key in [k for k, t in self._open.items() if t.partition in touched
                    and self._clock[t.partition] - t.last_ts > self.gap_ms]:
            self._close(key, closing)          # silent for longer than the gap while its partition moved on
        return AssembledTrips(self._score(closing, counters), counters)

    def close_partitions(self, partitions: Iterable[int]) -> AssembledTrips:
        """Close every open trip of `partitions` (they went quiet: no reading arrived for a long time)."""
        counters: Counter = Counter()
        closing = _Closing()
        wanted = set(partitions)
        for key in [k for k, t in self._open.items() if t.partition in wanted]:
            self._close(key, closing)
            counters["closed_idle"] += 1
        return AssembledTrips(self._score(closing, counters), counters)

    def open_partitions(self) -> set[int]:
        return {t.partition for t in self._open.values()}

    def _score(self, closing: _Closing, counters: Counter) -> list[Trip]:
        trips: list[Trip] = []
        for group in closing.rounds:
            scored = score_readings(ReadingsBatch.from_records(group), self.config)
            trips.extend(scored.trips)
            counters.update({f"cleaning_{k}": v for k, v in scored.stats.__dict__.items() if v})
        counters["trips_closed"] += len(trips)
        return trips

    def _close(self, key: tuple[int, str], into: _Closing) -> None:
        trip = self._open.pop(key)
        vehicle = key[1]
        into.add(vehicle, trip.readings)
        self._closed_pending[vehicle] = max(self._closed_pending.get(vehicle, -1), trip.last_ts)

    # -- what the runner needs for offsets and recovery ---------------------------------------------------------
    def min_buffered_offsets(self) -> dict[int, int]:
        """Per partition, the lowest source offset still held by an open trip (partitions with none are absent)."""
        out: dict[int, int] = {}
        for trip in self._open.values():
            if trip.offsets:
                first = trip.offsets[0]
                if first < out.get(trip.partition, 2 ** 63):
                    out[trip.partition] = first
        return out

    def confirm_published(self) -> None:
        """The trips closed so far are acknowledged downstream: their readings count as scored from now on."""
        for vehicle, end in self._closed_pending.items():
            if end > self._closed_until.get(vehicle, -1):
                self._closed_until[vehicle] = end
        self._closed_pending.clear()

    def seed_scored(self, last_trip_end_ms: Mapping[str, int]) -> None:
        """Known ends of already published trips per vehicle (e.g. read back at start-up): older readings are late."""
        for vehicle, end in last_trip_end_ms.items():
            if end > self._closed_until.get(vehicle, -1):
                self._closed_until[vehicle] = end

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        """Forget open trips of partitions this instance no longer owns (their next owner re-reads them)."""
        gone = set(partitions)
        for key in [k for k, t in self._open.items() if t.partition in gone]:
            del self._open[key]
        for p in gone:
            self._clock.pop(p, None)

    def reset(self) -> None:
        """Forget every open trip and unconfirmed closing (after a failed batch the runner re-reads from its commit)."""
        self._open.clear()
        self._clock.clear()
        self._closed_pending.clear()

    @property
    def buffered_readings(self) -> int:
        return sum(len(t.readings) for t in self._open.values())

    @property
    def open_trips(self) -> int:
        return len(self._open)


def reading_problems(records: list[Mapping[str, Any]], config: ScoringConfig) -> list[str | None]:
    """Per record, why it cannot be scored (a non-finite or physically impossible field), or None when it is fine.

    Vectorised over the batch (`valid_reading_mask`, the same rule the cleaning step applies); only the rejected
    records are looked at one by one to name the field.
    """
    from services.telematics_scorer.cleaning import valid_reading_mask

    if not records:
        return []
    ok = valid_reading_mask(ReadingsBatch.from_records(records), config)
    out: list[str | None] = [None] * len(records)
    for i in (~ok).nonzero()[0].tolist():
        out[i] = _explain(records[i], config)
    return out


def _explain(r: Mapping[str, Any], config: ScoringConfig) -> str:
    import math

    for name in ("lat", "lon", "speed_mps", "heading_deg", "accel_long_mps2", "accel_lat_mps2", "accel_vert_mps2"):
        if not math.isfinite(r[name]):
            return f"{name} is {r[name]!r}, not a finite number"
    if abs(r["lat"]) > 90 or abs(r["lon"]) > 180 or (r["lat"] == 0 and r["lon"] == 0):
        return f"position ({r['lat']}, {r['lon']}) is not a valid fix"
    if not 0 <= r["speed_mps"] <= config.max_valid_speed_mps:
        return f"speed_mps {r['speed_mps']} outside 0..{config.max_valid_speed_mps}"
    return f"an acceleration exceeds ±{config.max_valid_accel_mps2:.0f} m/s² (sensor range)"
