"""`claimsctl reconcile`: every PostgreSQL source table against its current Delta table, row by row.

Both sides are brought to one normal form per column of the table's contract, then hashed per row:
- PostgreSQL rows are read with psycopg; PII columns are first put in canonical form and protected with the same
  `PiiTokenizer` (claims_shared.contracts.pii) the normalizer uses, so they compare with the lake's tokens;
- Delta rows are read with delta-rs (no Spark), tombstones (`_deleted`) excluded;
- normal form: decimals with their scale, timestamps with zone in UTC ISO, dates/times ISO, json as canonical JSON
  text, uuids as text, arrays element-wise, floats by repr.

The result lists, per table, keys missing from the lake, extra keys in the lake, and keys whose rows differ (with the
differing columns). Compare a quiet database (or use `--wait`): rows changing during the read show as differences.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable

from claims_shared.contracts.cdc import canonical_json
from claims_shared.contracts.cdc_avro import key_fields, row_fields
from claims_shared.contracts.pii import PiiTokenizer
from claims_shared.contracts.topics import CDC_TABLES
from claims_shared.settings import PlatformSettings
from claimsctl.lake import storage_options
from services.delta_compactor.lake_schema import LakeLayout

Row = dict[str, Any]


# ------------------------------------------------------------------------------------------------ normal form (pure)


def normal_form(value: Any) -> Any:
    """A JSON-able, type-independent form of one value, equal on both sides when the values are equal."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return f"dec:{value}"
    if isinstance(value, float):
        return f"flt:{value!r}"
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return "tstz:" + value.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
        return "ts:" + value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dtime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "hex:" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [normal_form(v) for v in value]
    return value


@dataclass(frozen=True)
class TableColumns:
    table: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    json_columns: frozenset[str]
    pii: dict[str, str]


def table_columns(table: str) -> TableColumns:
    fields = row_fields(table)
    return TableColumns(
        table=table,
        keys=tuple(f["name"] for f in key_fields(table)),
        columns=tuple(f["name"] for f in fields),
        json_columns=frozenset(f["name"] for f in fields if f.get("pg_type") in ("json", "jsonb")),
        pii={f["name"]: f["pii"] for f in fields if f.get("pii")},
    )


def _canonical_for_pii(value: Any) -> Any:
    """A PostgreSQL value in the canonical form the normalizer tokenizes (text, ISO date, ...)."""
    if isinstance(value, (date, datetime, dtime)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def postgres_normal_row(cols: TableColumns, row: Row, tokenizer: PiiTokenizer) -> Row:
    """Normal form of a PostgreSQL row (psycopg types): json re-encoded canonically, PII protected."""
    values = {c: row.get(c) for c in cols.columns}
    for c in cols.json_columns:
        if values[c] is not None:
            values[c] = canonical_json(values[c])
    if cols.pii:
        values = tokenizer.protect_row(cols.table, {c: _canonical_for_pii(v) if c in cols.pii else v
                                                    for c, v in values.items()})
    return {c: normal_form(values[c]) for c in cols.columns}


def lake_normal_row(cols: TableColumns, row: Row) -> Row:
    """Normal form of a current-table row as delta-rs returns it (json columns already canonical text)."""
    return {c: normal_form(row.get(c)) for c in cols.columns}


def row_hash(normal: Row, columns: Iterable[str]) -> str:
    return hashlib.sha256(canonical_json([normal[c] for c in columns]).encode()).hexdigest()


@dataclass
class TableDiff:
    table: str
    pg_rows: int = 0
    lake_rows: int = 0
    missing: list[Any] = field(default_factory=list)  # keys in PostgreSQL, not in the lake
    extra: list[Any] = field(default_factory=list)  # keys in the lake, not in PostgreSQL
    different: list[tuple[Any, list[str]]] = field(default_factory=list)  # key, differing columns

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.different) and self.pg_rows == self.lake_rows


def compare_rows(cols: TableColumns, pg: list[Row], lake: list[Row]) -> TableDiff:
    """Compare normal-form rows of both sides (pure)."""
    def by_key(rows: list[Row]) -> dict[str, Row]:
        return {canonical_json([r[k] for k in cols.keys]): r for r in rows}

    pg_keys, lake_keys = by_key(pg), by_key(lake)
    diff = TableDiff(cols.table, pg_rows=len(pg), lake_rows=len(lake))
    diff.missing = sorted(k for k in pg_keys if k not in lake_keys)
    diff.extra = sorted(k for k in lake_keys if k not in pg_keys)
    for key in sorted(pg_keys.keys() & lake_keys.keys()):
        a, b = pg_keys[key], lake_keys[key]
        if row_hash(a, cols.columns) != row_hash(b, cols.columns):
            diff.different.append((key, [c for c in cols.columns if canonical_json(a[c]) != canonical_json(b[c])]))
    return diff


# ------------------------------------------------------------------------------------------------ I/O


def read_postgres(settings: PlatformSettings, cols: TableColumns) -> list[Row]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(settings.pg_dsn, row_factory=dict_row) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return list(conn.execute(f'SELECT * FROM public."{cols.table}"'))


def read_lake_current(settings: PlatformSettings, cols: TableColumns) -> list[Row] | None:
    """Live rows of current/<table> (None when the table does not exist yet)."""
    from deltalake import DeltaTable

    uri = LakeLayout(settings.lake_root_uri).current(cols.table)
    opts = storage_options(settings, uri)
    if not DeltaTable.is_deltatable(uri, storage_options=opts):
        return None
    data = DeltaTable(uri, storage_options=opts).to_pyarrow_table(columns=[*cols.columns, "_deleted"])
    return [r for r in data.to_pylist() if not r["_deleted"]]


def reconcile(settings: PlatformSettings, tables: Iterable[str] = CDC_TABLES) -> list[TableDiff]:
    tokenizer = PiiTokenizer.from_settings(settings)
    diffs = []
    for table in tables:
        cols = table_columns(table)
        pg = [postgres_normal_row(cols, r, tokenizer) for r in read_postgres(settings, cols)]
        lake_rows = read_lake_current(settings, cols)
        lake = [lake_normal_row(cols, r) for r in (lake_rows or [])]
        diffs.append(compare_rows(cols, pg, lake))
    return diffs


def reconcile_until_equal(settings: PlatformSettings, wait_s: float,
                          on_attempt: Callable[[list[TableDiff]], None] = lambda _: None) -> list[TableDiff]:
    """Reconcile; while different and `wait_s` not spent, try again (the compactor may still be catching up)."""
    deadline = time.monotonic() + wait_s
    while True:
        diffs = reconcile(settings)
        on_attempt(diffs)
        if all(d.equal for d in diffs) or time.monotonic() >= deadline:
            return diffs
        time.sleep(1.0)


def diffs_as_json(diffs: list[TableDiff], limit: int = 20) -> str:
    return json.dumps([{
        "table": d.table, "pg_rows": d.pg_rows, "lake_rows": d.lake_rows, "equal": d.equal,
        "missing": d.missing[:limit], "extra": d.extra[:limit],
        "different": [{"key": k, "columns": c} for k, c in d.different[:limit]],
    } for d in diffs], indent=2)
