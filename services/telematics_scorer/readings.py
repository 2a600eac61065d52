"""Columnar batches of telematics readings (the `telematics_reading.v1` contract as numpy arrays)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

FLOAT_COLUMNS = ("lat", "lon", "speed_mps", "heading_deg", "accel_long_mps2", "accel_lat_mps2", "accel_vert_mps2",
                 "speed_limit_mps")
COLUMNS = ("vehicle_id", "ts", *FLOAT_COLUMNS)


class InvalidReadingsBatch(ValueError):
    """Columns are missing or of different lengths; the message says which."""


@dataclass(frozen=True, eq=False)
class ReadingsBatch:
    """Readings of one or many vehicles as equal-length arrays.

    `vehicle` holds integer codes into `vehicle_ids`; `ts` is epoch milliseconds (int64); floats are float64 and an
    unknown speed limit is NaN. Row order is arrival order (it matters for out-of-order accounting).
    """

    vehicle_ids: tuple[str, ...]
    vehicle: np.ndarray
    ts: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    speed_mps: np.ndarray
    heading_deg: np.ndarray
    accel_long_mps2: np.ndarray
    accel_lat_mps2: np.ndarray
    accel_vert_mps2: np.ndarray
    speed_limit_mps: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ts)
        for name in ("vehicle", *FLOAT_COLUMNS):
            if len(getattr(self, name)) != n:
                raise InvalidReadingsBatch(f"column {name} has {len(getattr(self, name))} rows, ts has {n}")

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any], *, vehicle_ids: Iterable[str] | None = None) -> ReadingsBatch:
        """Build from a mapping of column name -> array-like (`COLUMNS`).

        `vehicle_id` may be strings, or integer codes when `vehicle_ids` names them. A missing `speed_limit_mps`
        means unknown everywhere; None in it means unknown for that row.
        """
        missing = [c for c in COLUMNS if c not in columns and c != "speed_limit_mps"]
        if missing:
            raise InvalidReadingsBatch(f"missing columns {missing}; expected {list(COLUMNS)}")
        if vehicle_ids is None:
            ids, codes = np.unique(np.asarray(columns["vehicle_id"], dtype=object).astype(str), return_inverse=True)
            vehicle_ids = tuple(str(v) for v in ids)
        else:
            vehicle_ids = tuple(vehicle_ids)
            codes = np.asarray(columns["vehicle_id"])
        n = len(codes)
        limit = columns.get("speed_limit_mps")
        if limit is None:
            limit_arr = np.full(n, np.nan)
        elif isinstance(limit, np.ndarray) and limit.dtype != object:
            limit_arr = limit.astype(np.float64, copy=False)
        else:
            limit_arr = np.array([np.nan if v is None else v for v in limit], dtype=np.float64)
        return cls(
            vehicle_ids=vehicle_ids,
            vehicle=np.asarray(codes, dtype=np.int64),
            ts=np.asarray(columns["ts"], dtype=np.int64),
            speed_limit_mps=limit_arr,
            **{c: np.asarray(columns[c], dtype=np.float64) for c in FLOAT_COLUMNS if c != "speed_limit_mps"},
        )

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> ReadingsBatch:
        """Build from contract-shaped dicts (as decoded from Avro): one pass to columns, then `from_columns`."""
        records = list(records)
        columns = {c: [r[c] for r in records] for c in COLUMNS if c != "speed_limit_mps"}
        columns["speed_limit_mps"] = [r.get("speed_limit_mps") for r in records]
        return cls.from_columns(columns)

    def take(self, index: np.ndarray) -> ReadingsBatch:
        """Rows at `index` (an integer index or boolean mask), same vehicle codes."""
        return ReadingsBatch(self.vehicle_ids, self.vehicle[index], self.ts[index],
                             **{c: getattr(self, c)[index] for c in FLOAT_COLUMNS})


def haversine_m(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in metres between arrays of points given in degrees."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def path_steps_m(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Haversine metres from each point to the next (length n − 1); trigonometry once per point, not per pair."""
    phi = np.radians(lat)
    cos_phi = np.cos(phi)
    h = np.sin(np.diff(phi) * 0.5)
    h *= h
    s = np.sin(np.diff(lon) * (np.pi / 360))
    s *= s
    s *= cos_phi[:-1]
    s *= cos_phi[1:]
    h += s
    np.minimum(h, 1.0, out=h)
    return (2 * 6_371_008.8) * np.arcsin(np.sqrt(h, out=h), out=h)
