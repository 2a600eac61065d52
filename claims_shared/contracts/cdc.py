"""Contract of normalized CDC records: what `cdc_normalizer` publishes on `claims.cdc.<table>.v<N>`.

A `ChangeRecord` is one row change with values in canonical JSON form (see `canonical values` below), its source
position, and a deterministic `event_id` so that replays and duplicates can be recognised downstream.

Canonical values: integers as numbers, decimals as exact decimal strings, floats as numbers, booleans, text as
strings, date `YYYY-MM-DD`, time `HH:MM:SS[.ffffff]`, timestamp without zone `YYYY-MM-DDTHH:MM:SS[.ffffff]`,
timestamptz in UTC with `Z`, intervals as ISO-8601 durations, uuid lowercase, json as parsed JSON, bytea as
base64, arrays as lists, NULL as null. Details fixed by the decoder and the Avro contracts:
- timestamps and times carry `.ffffff` (6 digits) only when the fraction is not zero; nanoseconds are cut to µs;
  `24:00:00` is kept;
- `numeric(p,s)` keeps its scale (`"0.00"`); unconstrained `numeric` is PostgreSQL's `trim_scale(n)::text`
  (Debezium does not carry its display scale); never exponent notation;
- non-finite floats are the strings `"NaN"`, `"Infinity"`, `"-Infinity"` (as PostgreSQL's `to_jsonb`);
- intervals: each component carries its own sign (`P-1DT-2H`), as PostgreSQL's `iso_8601` interval style;
- json integers wider than 64 bits stay exact.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import orjson

CONTRACT_VERSION = 1
OPS = ("r", "c", "u", "d", "t")


def normalized_topic(table: str, version: int = CONTRACT_VERSION) -> str:
    """Output topic of one entity, e.g. `claims.cdc.claims.v1`."""
    return f"claims.cdc.{table}.v{version}"


DEAD_LETTER_TOPIC = "claims.cdc.dead-letter.v1"


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where a change came from: enough to order changes per key and to find them again."""

    lsn: int | None  # PostgreSQL LSN of the change (snapshot reads carry the snapshot's LSN)
    tx_id: int | None
    ts_ms: int  # commit time in the source, epoch milliseconds
    snapshot: bool  # True for snapshot reads (op r), including the last one
    database: str
    schema: str


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    table: str  # without schema
    op: str  # one of OPS
    key: dict[str, Any]  # primary key columns -> canonical values ({} for truncate)
    row: dict[str, Any] | None  # after image, canonical values; None for d and t
    source: SourcePosition
    unchanged: tuple[str, ...] = ()  # columns whose value was not sent (unchanged TOAST): keep the old value
    contract_version: int = CONTRACT_VERSION
    event_id: str = field(default="")

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}, got {self.op!r}")
        if not self.event_id:
            object.__setattr__(self, "event_id", event_id_for(self))

    def to_json_dict(self) -> dict[str, Any]:
        """The replay/JSON form: `{"table","op","key","row","unchanged", ...metadata}`."""
        return {
            "table": self.table,
            "op": self.op,
            "key": self.key,
            "row": self.row,
            "unchanged": list(self.unchanged),
            "event_id": self.event_id,
            "lsn": self.source.lsn,
            "tx_id": self.source.tx_id,
            "source_ts_ms": self.source.ts_ms,
            "snapshot": self.source.snapshot,
            "database": self.source.database,
            "schema": self.source.schema,
            "contract_version": self.contract_version,
        }


def canonical_json(value: Any) -> str:
    """Stable JSON text (sorted keys, no spaces, UTF-8): the same value always gives the same text."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # integers wider than 64 bits (exact json numbers): the slower standard library path
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_id_for(record: ChangeRecord) -> str:
    """Deterministic id: the same change read twice (replay, redelivery, re-run) gets the same id.

    Two changes of one key never share (lsn, op); snapshot reads share the snapshot LSN, so the key is included.
    """
    s = record.source
    basis = f"{s.database}.{s.schema}.{record.table}|{record.op}|{s.lsn}|{s.tx_id}|{canonical_json(record.key)}"
    if record.op == "r":
        # Two snapshots of the same row are two events (values may differ); the row content tells them apart.
        basis += "|" + canonical_json(record.row)
    return hashlib.sha256(basis.encode()).hexdigest()[:32]
