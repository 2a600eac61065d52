"""Offline replay I/O: readings CSV -> ReadingsBatch (columnar, via pyarrow) and Trip -> output JSON line.

CSV header: vehicle_id,ts,lat,lon,speed_mps,heading_deg,accel_long_mps2,accel_lat_mps2,accel_vert_mps2,
speed_limit_mps (ts ISO-8601 UTC; speed_limit_mps may be empty). Rows that cannot be parsed (wrong number of
fields, a non-number, a bad timestamp, an empty required field) are skipped and counted; value-range checks are
the cleaning step's job (counted there as `invalid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from services.telematics_scorer.readings import COLUMNS, FLOAT_COLUMNS, ReadingsBatch
from services.telematics_scorer.trips import Trip

_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_ISO_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$"
_UTC_MS = pa.timestamp("ms", tz="UTC")


class ReadingsCsvError(ValueError):
    """The CSV cannot be read at all (missing columns); the message says what is expected."""


@dataclass
class CsvStats:
    rows: int = 0
    malformed: int = 0   # wrong field count, unparseable number or timestamp, empty required field


def read_readings_csv(path: str | Path) -> tuple[ReadingsBatch, CsvStats]:
    """Parse the readings CSV column by column; returns the parsed batch (file order) and what was skipped."""
    stats = CsvStats()

    def skip_row(_row: Any) -> str:
        stats.malformed += 1
        return "skip"

    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(invalid_row_handler=skip_row),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in COLUMNS},
                                             strings_can_be_null=True, include_columns=list(COLUMNS)),
    ) if _has_columns(path) else None
    if table is None:
        raise ReadingsCsvError(f"{path}: header must name the columns {','.join(COLUMNS)}")
    stats.rows = table.num_rows + stats.malformed
    ok = pc.invert(pc.is_null(table["vehicle_id"])).to_numpy(zero_copy_only=False)
    ts, ts_ok = _timestamps_ms(table["ts"])
    ok &= ts_ok
    floats = {}
    for name in FLOAT_COLUMNS:
        values, parsed = _floats(table[name])
        floats[name] = values
        ok &= parsed | (name == "speed_limit_mps")  # an empty or bad limit means "unknown"
    stats.malformed += int(np.count_nonzero(~ok))
    vehicle = table["vehicle_id"].combine_chunks()
    if not ok.all():
        vehicle = vehicle.filter(pa.array(ok))
        ts = ts[ok]
        floats = {k: v[ok] for k, v in floats.items()}
    encoded = pc.dictionary_encode(vehicle)
    batch = ReadingsBatch.from_columns(
        {"vehicle_id": encoded.indices.to_numpy(zero_copy_only=False), "ts": ts, **floats},
        vehicle_ids=[str(v) for v in encoded.dictionary.to_pylist()])
    return batch, stats


def _has_columns(path: str | Path) -> bool:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = [h.strip().strip("\"") for h in f.readline().split(",")]
    return all(c in header for c in COLUMNS)


def _floats(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """float64 values (NaN where empty or unparseable) and a mask of rows that parsed."""
    column = column.combine_chunks()
    try:
        values = pc.cast(column, pa.float64())
    except pa.ArrowInvalid:
        good = pc.fill_null(pc.match_substring_regex(column, _NUMBER), False)
        values = pc.cast(pc.if_else(good, column, pa.scalar(None, pa.string())), pa.float64())
    arr = values.to_numpy(zero_copy_only=False)  # nulls become NaN
    return arr.astype(np.float64, copy=False), ~np.isnan(arr)


def _timestamps_ms(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ms and a parsed mask; the vectorised cast handles ISO-8601 with a zone, the rest goes row by row."""
    column = column.combine_chunks()
    try:
        cast = pc.cast(column, _UTC_MS)
        ok = pc.invert(pc.is_null(cast)).to_numpy(zero_copy_only=False)
        return pc.fill_null(cast.cast(pa.int64()), 0).to_numpy(), ok
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    # Some rows are off: cast the well-formed ones vectorised, parse the others one by one.
    zoned = pc.fill_null(pc.match_substring_regex(column, _ISO_ZONED), False)
    cast = pc.cast(pc.if_else(zoned, column, pa.scalar(None, pa.string())), _UTC_MS)
    ok = pc.invert(pc.is_null(cast)).to_numpy(zero_copy_only=False).copy()
    out = pc.fill_null(cast.cast(pa.int64()), 0).to_numpy().copy()
    texts = column.to_pylist()
    for i in np.flatnonzero(~ok):
        text = texts[i]
        if text is None:
            continue
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # the contract says UTC
        out[i], ok[i] = int(moment.timestamp() * 1000), True
    return out, ok


def iso_ms(ts_ms: int) -> str:
    """Epoch ms as ISO-8601 UTC with millisecond precision and a Z."""
    return str(np.datetime64(ts_ms, "ms")) + "Z"


def trip_record(trip: Trip) -> dict[str, Any]:
    """The replay output line of a trip (issue #4's shape)."""
    return {
        "vehicle_id": trip.vehicle_id, "start": iso_ms(trip.start_ms), "end": iso_ms(trip.end_ms),
        "distance_km": trip.distance_km, "duration_s": trip.duration_s, "max_speed_kmh": trip.max_speed_kmh,
        "events": [{"type": e.type, "start": iso_ms(e.start_ms), "end": iso_ms(e.end_ms), "peak_g": e.peak_g}
                   for e in trip.events],
        "score": trip.score,
    }


def write_readings_csv(path: str | Path, readings: list[dict[str, Any]]) -> None:
    """Write contract-shaped readings as the replay CSV (tests, benchmarks, exports)."""
    columns = {c: [r[c] for r in readings] for c in COLUMNS}
    columns["ts"] = [iso_ms(t) for t in columns["ts"]]
    table = pa.table({c: pa.array(v) for c, v in columns.items()})
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
