"""`claimsctl maintain`: compaction, Z-order, VACUUM and checkpoints of the lake's Delta tables, with delta-rs.

pysail (the embedded Spark Connect server) has no OPTIMIZE or VACUUM (LOCAL-STACK.md), so maintenance runs with
delta-rs, one table at a time, holding the lake lock (services/delta_compactor/lake_lock.py): the compactor finishes
its batch in flight and waits until that table is done, so the two never rewrite the same table at once.

Per table:
- Z-order (which also compacts small files) on the main filter columns: current/history tables on their primary key
  (claims: claim_id, status), append tables on vehicle_id / claim_id (documents: fields_claim_number). Current tables
  are not partitioned: they are small next to the streams, every MERGE touches keys spread over the whole table, and
  clustering files by key keeps a MERGE from rewriting every file (LOCAL-STACK: keys clustered in few files rewrote one
  file instead of all). Append tables are partitioned by `_event_date`: queries filter by date, old partitions are
  never rewritten, and Z-order runs within each partition.
- VACUUM with a retention of `CLAIMS_LAKE_VACUUM_RETENTION_HOURS` (default 168 = 7 days, Delta's default): files
  a time-travel reader of the last 7 days needs are kept.
- A checkpoint, then `_last_checkpoint` is checked: Trino fails on a `parts` field for single-part checkpoints
  (trinodb/trino#26148), so such a field is removed (delta-rs 1.6.6 writes none; the check guards upgrades).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from claims_shared.contracts.cdc_avro import key_fields
from claims_shared.contracts.topics import CDC_TABLES
from claims_shared.settings import PlatformSettings
from claimsctl.lake import storage_options
from services.delta_compactor.append_tables import APPEND_TABLES
from services.delta_compactor.lake_lock import LakeLock
from services.delta_compactor.lake_schema import LakeLayout

DEFAULT_RETENTION_HOURS = 168
CURRENT_ZORDER = {"claims": ("claim_id", "status")}


@dataclass(frozen=True)
class MaintainedTable:
    name: str  # e.g. current/claims
    uri: str
    zorder: tuple[str, ...]


def lake_tables(settings: PlatformSettings) -> list[MaintainedTable]:
    """Every table the compactor writes, with its Z-order columns."""
    layout = LakeLayout(settings.lake_root_uri)
    tables = []
    for t in CDC_TABLES:
        keys = tuple(f["name"] for f in key_fields(t))
        tables.append(MaintainedTable(f"current/{t}", layout.current(t), CURRENT_ZORDER.get(t, keys)))
        tables.append(MaintainedTable(f"history/{t}", layout.history(t), keys))
    for a in APPEND_TABLES:
        tables.append(MaintainedTable(f"append/{a.name}", layout.append(a.name), a.zorder))
    tables.append(MaintainedTable("_compactor_offsets", layout.offsets(), ()))
    return tables


def last_checkpoint_without_parts(text: str) -> str | None:
    """`_last_checkpoint` content without a `parts` field when the checkpoint is single-part (None: nothing to fix)."""
    doc = json.loads(text)
    if "parts" in doc and (doc["parts"] is None or int(doc["parts"]) <= 1):
        del doc["parts"]
        return json.dumps(doc, separators=(",", ":"))
    return None


class _LogFiles:
    """Read/write one file of a table's _delta_log, locally or on S3."""

    def __init__(self, settings: PlatformSettings, uri: str) -> None:
        self.settings, self.uri = settings, uri.rstrip("/")

    def _s3(self) -> tuple[Any, str, str]:
        from claims_shared.clients.aws import s3_client

        bucket, _, prefix = self.uri.split("://", 1)[1].partition("/")
        return s3_client(self.settings), bucket, prefix

    def read(self, name: str) -> str | None:
        if "://" not in self.uri or self.uri.startswith("file://"):
            path = Path(self.uri.removeprefix("file://")) / "_delta_log" / name
            return path.read_text() if path.exists() else None
        s3, bucket, prefix = self._s3()
        try:
            return s3.get_object(Bucket=bucket, Key=f"{prefix}/_delta_log/{name}")["Body"].read().decode()
        except s3.exceptions.NoSuchKey:
            return None

    def write(self, name: str, text: str) -> None:
        if "://" not in self.uri or self.uri.startswith("file://"):
            (Path(self.uri.removeprefix("file://")) / "_delta_log" / name).write_text(text)
            return
        s3, bucket, prefix = self._s3()
        s3.put_object(Bucket=bucket, Key=f"{prefix}/_delta_log/{name}", Body=text.encode())


def table_exists(settings: PlatformSettings, uri: str) -> bool:
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(uri, storage_options=storage_options(settings, uri))


def maintain_table(settings: PlatformSettings, table: MaintainedTable, *, retention_hours: int,
                   lock: LakeLock | None) -> dict[str, Any]:
    """Z-order/compact, vacuum and checkpoint one table (holding `lock`); returns figures for the report."""
    from deltalake import DeltaTable

    opts = storage_options(settings, table.uri)
    t0 = time.monotonic()
    with lock.held() if lock else _nothing():
        dt = DeltaTable(table.uri, storage_options=opts)
        before = len(dt.file_uris())
        if table.zorder:
            optimize = dt.optimize.z_order(list(table.zorder))
        else:
            optimize = dt.optimize.compact()
        dt = DeltaTable(table.uri, storage_options=opts)
        vacuumed = dt.vacuum(retention_hours=retention_hours, dry_run=False,
                             enforce_retention_duration=retention_hours >= DEFAULT_RETENTION_HOURS)
        dt.create_checkpoint()
        files = _LogFiles(settings, table.uri)
        text = files.read("_last_checkpoint")
        fixed = last_checkpoint_without_parts(text) if text else None
        if fixed is not None:
            files.write("_last_checkpoint", fixed)
        after = len(DeltaTable(table.uri, storage_options=opts).file_uris())
    return {"table": table.name, "files_before": before, "files_after": after,
            "files_added": optimize.get("numFilesAdded", 0), "files_removed": optimize.get("numFilesRemoved", 0),
            "vacuumed": len(vacuumed), "version": dt.version(), "parts_fixed": fixed is not None,
            "seconds": round(time.monotonic() - t0, 2)}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def maintain_lake(settings: PlatformSettings, *, retention_hours: int, lock: LakeLock | None,
                  only: set[str] | None = None, on_table: Callable[[dict[str, Any]], None] = lambda _: None,
                  ) -> list[dict[str, Any]]:
    """Maintain every existing table (or those named in `only`); returns one result per table."""
    results = []
    for table in lake_tables(settings):
        if only and table.name not in only:
            continue
        if not table_exists(settings, table.uri):
            continue
        result = maintain_table(settings, table, retention_hours=retention_hours, lock=lock)
        on_table(result)
        results.append(result)
    return results
