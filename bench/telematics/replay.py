"""Replay-path benchmark of telematics_scorer: readings/s on one core, side by side with a pure-numpy pass.

Generates ~N readings with the simulator (many vehicles, interleaved by time like a live feed), then measures in
the same process, pinned to one CPU, best of `repeats`:
  replay      - `score_readings` over the prebuilt columnar batch (cleaning, trips, events, scores), as the
                `claimsctl score-trips` CLI calls it (no thinned trip paths: its output has none)
  replay_csv  - the `claimsctl score-trips` path: parse the CSV (pyarrow), score, build the output JSON lines
  numpy       - the bare maths over the same batch: group by vehicle, haversine steps, threshold masks and run
                starts/ends, per-trip sums; no cleaning, no corroboration, no Python objects
Run: python -m bench.telematics.replay [--rows N]. Ends with
BENCH telematics replay_rps=<n> numpy_rps=<n> ratio=<replay/numpy>
(the broker/service rate belongs to the service benchmark).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from services.telematics_scorer.config import G, ScoringConfig
from services.telematics_scorer.readings import ReadingsBatch, path_steps_m
from services.telematics_scorer.replay import read_readings_csv, trip_record, write_readings_csv
from services.telematics_scorer.trips import score_readings

START_MS = 1_772_366_400_000


def simulated_readings(rows: int, vehicles: int = 100, seed: str = "bench") -> list[dict[str, Any]]:
    """At least `rows` readings from the foundation's simulator (time-major, vehicles interleaved)."""
    from claimsctl.simulator.telematics import Fleet, TelematicsConfig

    fleet = Fleet([f"TLM-{i:08d}" for i in range(vehicles)], seed=seed, config=TelematicsConfig())
    out: list[dict[str, Any]] = []
    t = 0
    while len(out) < rows:
        out.extend(fleet.step(START_MS + t * 1000))
        t += 1
    return out[:rows]


def numpy_pass(batch: ReadingsBatch, config: ScoringConfig) -> int:
    """The minimal vectorised maths the scorer has to do; returns the number of threshold runs (kept live)."""
    order = np.argsort(batch.vehicle, kind="stable")
    veh, ts = batch.vehicle[order], batch.ts[order]
    lat, lon, v = batch.lat[order], batch.lon[order], batch.speed_mps[order]
    along, alat = batch.accel_long_mps2[order], batch.accel_lat_mps2[order]
    step = path_steps_m(lat, lon)
    start = np.r_[True, (veh[1:] != veh[:-1]) | (np.diff(ts) > config.trip_gap_s * 1000)]
    first = np.flatnonzero(start)
    distance = np.add.reduceat(np.r_[0.0, np.where(start[1:], 0.0, step)], first)
    max_speed = np.maximum.reduceat(v, first)
    runs = 0
    with np.errstate(invalid="ignore"):
        over_limit = v > batch.speed_limit_mps[order] * 1.1
    for mask in (along <= -config.harsh_braking_g * G, along >= config.harsh_acceleration_g * G,
                 np.abs(alat) >= config.harsh_cornering_g * G, over_limit):
        begins = mask & ~np.r_[False, mask[:-1]]
        runs += int(np.count_nonzero(begins))
    return runs + len(distance) + len(max_speed) * 0


def _best(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_replay(rows: int = 300_000, *, repeats: int = 5, pin_cpu: bool = True) -> dict[str, Any]:
    """Readings/s of the replay path (with and without CSV parsing) and of the numpy pass, on one core."""
    readings = simulated_readings(rows)
    config = ScoringConfig()
    batch = ReadingsBatch.from_records(readings)
    previous = os.sched_getaffinity(0) if pin_cpu and hasattr(os, "sched_setaffinity") else None
    if previous:
        os.sched_setaffinity(0, {min(previous)})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            csv_path = Path(tmp) / "readings.csv"
            write_readings_csv(csv_path, readings)

            def replay_csv() -> bytes:
                parsed, _ = read_readings_csv(csv_path)
                return b"".join(orjson.dumps(trip_record(t)) + b"\n" for t in score_readings(parsed, config, with_paths=False).trips)

            t_replay = _best(lambda: score_readings(batch, config, with_paths=False), repeats)
            t_csv = _best(replay_csv, repeats)
            t_numpy = _best(lambda: numpy_pass(batch, config), repeats)
    finally:
        if previous:
            os.sched_setaffinity(0, previous)
    result = score_readings(batch, config)
    n = len(batch)
    return {
        "readings": n,
        "vehicles": len(batch.vehicle_ids),
        "trips": len(result.trips),
        "events": sum(len(t.events) for t in result.trips),
        "replay_rps": n / t_replay,
        "replay_csv_rps": n / t_csv,
        "numpy_rps": n / t_numpy,
        "ratio": t_numpy / t_replay,
        "seconds": {"replay": t_replay, "replay_csv": t_csv, "numpy": t_numpy},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    r = measure_replay(args.rows, repeats=args.repeats)
    print(f"{r['readings']} readings, {r['vehicles']} vehicles, {r['trips']} trips, {r['events']} events; one core")
    print(f"{'path':<34}{'seconds':>9}{'readings/s':>14}")
    for label, key in (("replay (score_readings)", "replay"), ("replay incl. CSV parse + JSON out", "replay_csv"),
                       ("numpy pass (maths only)", "numpy")):
        seconds = r["seconds"][key]
        print(f"{label:<34}{seconds:>9.3f}{r['readings'] / seconds:>14,.0f}")
    print(f"BENCH telematics replay_rps={r['replay_rps']:.0f} numpy_rps={r['numpy_rps']:.0f} ratio={r['ratio']:.2f}")


if __name__ == "__main__":
    main()
