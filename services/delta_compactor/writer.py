"""Applies a `BatchPlan` to Delta tables with Spark: SQL `MERGE INTO`, `UPDATE` and DataFrame reads only, so the same
code runs on a Spark cluster with delta-spark and on pysail's Spark Connect server (see ENGINE-NOTES.md).

Every write is idempotent on its own, so a crash anywhere, followed by a replay of the batch from the last recorded
offsets, loses nothing and doubles nothing:
- current (SCD1): `WHEN MATCHED AND s._source_pos > t._source_pos`; deletes are tombstones that keep their position,
  so an older change arriving later cannot resurrect a row; a truncate moves every older row to a tombstone at the
  truncate's position.
- history (SCD2): rows are identified by `_event_id` (inserted only when absent). Keys whose changes all come after
  their stored state (the normal case) are appended in one MERGE that also closes the stored open version, known
  from the current table (`append_history`). For the others (late or replayed changes, truncates) the validity of
  the touched keys' versions (`_valid_to`, `_is_current`) and the values of columns a change did not carry (unchanged TOAST) are
  recomputed over stored + new versions in source-position order, and only rows whose result differs are written.
  A late change therefore slots in between stored versions and closes/re-opens the right ones; if it changes the
  re-filled value of the version the current table holds, that row is corrected too (matched by event id).
- offsets: `_compactor_offsets` (topic, partition, next_offset) only moves forward, and is written after the data.
  pysail ignores Delta's `txnAppId`/`txnVersion`, so the offsets are data, not commit metadata.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from services.delta_compactor.append_tables import PARTITION_COLUMN, AppendTable, table_schema, unique_by_key
from services.delta_compactor.lake_schema import (
    EXTRA_COLUMNS,
    OFFSETS_SCHEMA,
    EntityColumns,
    LakeLayout,
    arrow_table,
    arrow_type,
    entity_columns,
    ms_to_datetime,
)
from services.delta_compactor.planning import BatchPlan, HistoryRow, OffsetMark, TablePlan, marker_event_id

log = logging.getLogger("delta_compactor.writer")


class LakeWriteError(RuntimeError):
    """A Delta write failed. The batch's offsets were not recorded: re-apply the same batch (every step is
    idempotent) once the cause (storage, schema) is fixed."""


@dataclass
class TableReport:
    current_rows: int = 0  # SCD1 source rows offered to the MERGE (one per key)
    history_rows_written: int = 0  # SCD2 rows inserted or re-stitched
    truncated: bool = False
    seconds: dict[str, float] = field(default_factory=dict)  # per step: basis (stored state), current, history


@dataclass
class ApplyReport:
    tables: dict[str, TableReport] = field(default_factory=dict)
    offsets: tuple[OffsetMark, ...] = ()


def _conform(table: Any, schema: T.StructType) -> Any:
    """An Arrow table read back from the server, cast to the exact Arrow types `arrow_table` builds for `schema`."""
    import pyarrow as pa

    target = pa.schema([pa.field(f.name, arrow_type(f.dataType)) for f in schema.fields])
    return table.select(target.names).cast(target)


def _quote_path(path: str) -> str:
    if "`" in path:
        raise ValueError(f"table path must not contain a backtick: {path!r}")
    return f"delta.`{path}`"


def _q(name: str) -> str:
    return f"`{name}`"


def _pos_literal(pos: int) -> str:
    return f"CAST('{pos}' AS DECIMAL(38,0))"


class DeltaLakeWriter:
    """Writes plans to the compactor's tables under `layout`, through `spark` (classic or Spark Connect)."""

    def __init__(self, spark: SparkSession, layout: LakeLayout) -> None:
        self.spark = spark
        self.layout = layout
        self._ready: set[str] = set()

    # ---------------------------------------------------------------------------------------------- public

    def apply(self, plan: BatchPlan) -> ApplyReport:
        """Write every table of the plan (see `apply_table`), then the offsets. Raises LakeWriteError."""
        report = ApplyReport()
        for table, table_plan in plan.tables.items():
            report.tables[table] = self.apply_table(table_plan)
        if plan.offsets:
            try:
                self.record_offsets(plan.offsets)
            except PySparkException as exc:
                raise LakeWriteError(f"recording offsets: {exc}") from exc
            report.offsets = plan.offsets
        log.info("batch applied", extra={"tables": {t: vars(r) for t, r in report.tables.items()}})
        return report

    def apply_table(self, table_plan: TablePlan) -> TableReport:
        """Write one table's part of a plan (current and history, in the order below); tables are independent, so
        callers may write several at once. Raises LakeWriteError."""
        columns = entity_columns(table_plan.table)
        try:
            # Keys whose every change in this batch is newer than their stored state (the normal, in-order case)
            # get their history appended with the stored current row as the only context; the others (late or
            # replayed changes, truncates) are re-stitched over their stored versions.
            seconds: dict[str, float] = {}

            def timed(step: str, write: Any, *args: Any) -> Any:
                t0 = time.monotonic()
                try:
                    return write(*args)
                finally:
                    seconds[step] = round(seconds.get(step, 0.0) + time.monotonic() - t0, 4)

            basis = timed("basis", self._in_order_basis, columns, table_plan)
            in_order: list[HistoryRow] = []
            late: list[HistoryRow] = []
            for r in table_plan.history:
                (in_order if self._key_of(columns, r.key) in basis else late).append(r)
            stitched = replace(table_plan, history=tuple(late))
            history = 0
            if stitched.history and any(r.keep_target or r.filled_from for r in table_plan.current):
                # The SCD1 rows take some values from the target row: the history stitch must correct (refill) the
                # stored current row first.
                history += timed("history", self.merge_history, columns, stitched)
                current = timed("current", self.merge_current, columns, table_plan)
            else:
                # Every SCD1 row either carries all its values or keeps values of a stored row that no late change
                # touches: write the current table first, it is what readers wait for.
                current = timed("current", self.merge_current, columns, table_plan)
                if stitched.history or stitched.truncates:
                    history += timed("history", self.merge_history, columns, stitched)
            history += timed("history", self.append_history, columns, in_order, basis)
            return TableReport(history_rows_written=history, current_rows=current,
                               truncated=table_plan.truncate is not None, seconds=seconds)
        except PySparkException as exc:
            raise LakeWriteError(f"writing {table_plan.table}: {exc}") from exc

    def read_offsets(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> next offset to read, as recorded after the last applied batch ({} if none)."""
        path = self.layout.offsets()
        try:
            rows = self.spark.read.format("delta").load(path).collect()
        except AnalysisException:
            return {}
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    # ---------------------------------------------------------------------------------------------- current (SCD1)

    def merge_current(self, columns: EntityColumns, plan: TablePlan) -> int:
        """Position-guarded MERGE of the plan's SCD1 rows (after the truncate, if any); returns the rows offered."""
        path = self.layout.current(columns.table)
        self._ensure_table(path, columns.current_schema())
        if plan.truncate is not None:
            self._truncate_current(path, columns, plan)
        if not plan.current:
            return 0
        schema = columns.current_schema(with_source_meta=True)
        rows = []
        for r in plan.current:
            typed, extras = columns.split_values(r.key if r.deleted else r.values)
            rows.append({
                **typed,
                EXTRA_COLUMNS: extras,
                "_deleted": r.deleted,
                "_op": r.op,
                "_event_id": r.event_id,
                "_source_pos": Decimal(r.source_pos),
                "_source_ts": ms_to_datetime(r.source_ts_ms),
                "_keep_target": list(r.keep_target),
                "_filled_from": {c: Decimal(p) for c, p in r.filled_from.items()},
            })
        # Columns that may have to keep the target's value (unchanged TOAST): only those get the CASE.
        partial = {c for r in plan.current for c in (*r.keep_target, *r.filled_from)} & set(columns.names)
        stored = [f.name for f in columns.current_schema().fields]
        assignments = []
        for name in stored:
            if name in partial:
                expr = (
                    f"CASE WHEN array_contains(s._keep_target, '{name}') THEN t.{_q(name)} "
                    f"WHEN s._filled_from['{name}'] IS NOT NULL AND NOT t._deleted "
                    f"AND t._source_pos >= s._filled_from['{name}'] THEN t.{_q(name)} "
                    f"ELSE s.{_q(name)} END"
                )
            else:
                expr = f"s.{_q(name)}"
            assignments.append(f"{_q(name)} = {expr}")
        on = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in columns.key_columns)
        with self._view(arrow_table(rows, schema), schema) as view:
            self.spark.sql(
                f"MERGE INTO {_quote_path(path)} AS t USING {view} AS s ON {on} "
                f"WHEN MATCHED AND s._source_pos > t._source_pos THEN UPDATE SET {', '.join(assignments)} "
                f"WHEN NOT MATCHED THEN INSERT ({', '.join(map(_q, stored))}) "
                f"VALUES ({', '.join('s.' + _q(n) for n in stored)})"
            ).collect()
        return len(rows)

    def _truncate_current(self, path: str, columns: EntityColumns, plan: TablePlan) -> None:
        mark = plan.truncate
        assert mark is not None
        types = {f.name: f.dataType.simpleString() for f in columns.current_schema().fields}
        # Typed NULLs: an untyped NULL cannot be cast to array/map columns.
        nulls = ", ".join(
            f"{_q(c)} = CAST(NULL AS {types[c]})" for c in (*columns.data_columns, EXTRA_COLUMNS)
        )
        self.spark.sql(
            f"UPDATE {_quote_path(path)} SET {nulls}, _deleted = true, _op = 't', _event_id = '{mark.event_id}', "
            f"_source_pos = {_pos_literal(mark.source_pos)}, _source_ts = timestamp_millis({mark.source_ts_ms}) "
            f"WHERE _source_pos < {_pos_literal(mark.source_pos)}"
        ).collect()

    # ---------------------------------------------------------------------------------------------- history (SCD2)

    def merge_history(self, columns: EntityColumns, plan: TablePlan) -> int:
        """Insert the plan's new versions and re-stitch the touched keys; returns the history rows written."""
        path = self.layout.history(columns.table)
        schema = columns.history_schema()
        self._ensure_table(path, schema)
        rows = [self.history_record(columns, r) for r in plan.history]
        rows.extend(self._stored_truncate_markers(path, columns, plan))
        if not rows:
            return 0
        keys = list(columns.key_columns)
        names = [f.name for f in schema.fields]
        stored = self.spark.read.format("delta").load(path)
        with self._view(arrow_table(rows, schema), schema) as new_view:
            new = self.spark.table(new_view)
            # One scan of the stored history: the touched keys' versions come to the client and go back up as a
            # local relation, so the stitch, its row count and the MERGE source do not each re-read the table.
            existing_arrow = stored.join(new.select(*keys).distinct(), keys, "left_semi").select(*names).toArrow()
            with self._view(_conform(existing_arrow, schema), schema) as existing_view:
                existing = self.spark.table(existing_view)
                fresh = new.join(existing.select("_event_id"), "_event_id", "left_anti")
                versions = existing.withColumn("_stored", F.lit(True)).unionByName(
                    fresh.withColumn("_stored", F.lit(False))
                )
                unchanged = {c for cols in existing_arrow.column("_unchanged").to_pylist() if cols for c in cols}
                unchanged.update(c for r in rows for c in r["_unchanged"])
                refill = sorted(unchanged & set(columns.names))
                changes_schema = T.StructType([*schema.fields, T.StructField("_stored", T.BooleanType())])
                changes = self._stitch(versions, keys, refill, names).select(*changes_schema.fieldNames())
                changes_arrow = changes.toArrow()
        written = changes_arrow.num_rows
        if not written:
            return 0
        with self._view(_conform(changes_arrow, changes_schema), changes_schema) as changes_view:
            if refill:
                self._refill_current(columns, changes_view, refill)
            sets = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in ("_valid_to", "_is_current", *refill))
            self.spark.sql(
                f"MERGE INTO {_quote_path(path)} AS t USING {changes_view} AS s "
                f"ON t._event_id = s._event_id "
                f"WHEN MATCHED THEN UPDATE SET {sets} "
                f"WHEN NOT MATCHED THEN INSERT ({', '.join(map(_q, names))}) "
                f"VALUES ({', '.join('s.' + _q(n) for n in names)})"
            ).collect()
        return written

    @staticmethod
    def _key_of(columns: EntityColumns, key: dict[str, Any]) -> tuple[Any, ...]:
        """A change's primary key as the typed tuple the tables store (and `toArrow().to_pylist()` returns)."""
        return tuple(None if key.get(k) is None else columns.converters[k](key[k]) for k in columns.key_columns)

    def _in_order_basis(self, columns: EntityColumns, plan: TablePlan) -> dict[tuple[Any, ...], dict[str, Any] | None]:
        """For the keys whose every change in this batch is newer than the stored current row (or that have none):
        key -> that stored row (key columns, `_event_id`, `_source_pos`, `_op`, `_deleted` and the values the batch's
        unchanged columns may need) or None. Other keys (late or replayed changes, a truncate's tombstone) are left
        out. One read of the current table, which is smaller than the history and holds the open history version
        of every key (same event id, same values) because both tables are written from the same batches."""
        if plan.truncates or not plan.history:
            return {}
        path = self.layout.current(columns.table)
        self._ensure_table(path, columns.current_schema())
        keys = columns.key_columns
        first_pos: dict[tuple[Any, ...], int] = {}
        for r in plan.history:
            k = self._key_of(columns, r.key)
            first_pos[k] = min(first_pos.get(k, r.source_pos), r.source_pos)
        needed = {c for r in plan.history for c in r.unchanged} & set(columns.data_columns)
        wanted = {*keys, "_event_id", "_source_pos", "_op", "_deleted", *needed}
        schema = T.StructType([f for f in columns.current_schema().fields if f.name in wanted])
        key_schema = T.StructType([f for f in columns.fields if f.name in keys])
        key_rows = [dict(zip(keys, k)) for k in first_pos]
        probe = self.spark.createDataFrame(arrow_table(key_rows, key_schema), schema=key_schema)
        stored_arrow = (self.spark.read.format("delta").load(path).join(probe, list(keys), "left_semi")
                        .select(*schema.fieldNames()).toArrow())
        maps = {f.name for f in schema.fields if isinstance(f.dataType, T.MapType)}
        stored = {}
        for row in _conform(stored_arrow, schema).to_pylist():
            for name in maps:  # Arrow gives maps as (key, value) pairs; arrow_table takes dicts
                row[name] = None if row[name] is None else dict(row[name])
            stored[tuple(row[k] for k in keys)] = row
        basis: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        for k, pos in first_pos.items():
            row = stored.get(k)
            if row is None:
                basis[k] = None
            elif row["_op"] != "t" and row["_source_pos"] < pos:
                basis[k] = row
        return basis

    def append_history(self, columns: EntityColumns, rows: list[HistoryRow],
                       basis: dict[tuple[Any, ...], dict[str, Any] | None]) -> int:
        """Insert the versions of in-order keys (see `_in_order_basis`) and close each key's stored open version,
        in one MERGE by event id; returns the rows offered.

        No read of the history: the stored open version is the current row in `basis` (its event id, and the value
        of a column this batch's first versions did not carry). Idempotent: a version already stored (a replay
        after a crash between the two tables) is only updated if its validity differs, a closer never inserts."""
        if not rows:
            return 0
        path = self.layout.history(columns.table)
        schema = columns.history_schema()
        self._ensure_table(path, schema)
        keys = columns.key_columns
        refillable = set(columns.data_columns)
        versions_of: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            versions_of[self._key_of(columns, r.key)].append(self.history_record(columns, r))
        records: list[dict[str, Any]] = []
        for k, versions in versions_of.items():
            versions.sort(key=lambda v: v["_source_pos"])
            stored = basis[k]
            for i, version in enumerate(versions):
                for c in set(version["_unchanged"]) & refillable:
                    # As the stitch does: the newest earlier version that carried the column (a d marker carries
                    # NULL); before the batch, that is the stored open version = the stored current row.
                    donor = next((v for v in reversed(versions[:i]) if c not in v["_unchanged"]), None)
                    if donor is not None:
                        version[c] = donor[c]
                    else:
                        version[c] = None if stored is None or stored["_deleted"] else stored[c]
                records.append({**version, "_closer": False})
            if stored is not None:
                records.append({**dict(zip(keys, k)), "_event_id": stored["_event_id"], "_unchanged": [],
                                "_valid_to": versions[0]["_valid_from"], "_is_current": False, "_closer": True})
        names = [f.name for f in schema.fields]
        source_schema = T.StructType([*schema.fields, T.StructField("_closer", T.BooleanType())])
        with self._view(arrow_table(records, source_schema), source_schema) as view:
            self.spark.sql(
                f"MERGE INTO {_quote_path(path)} AS t USING {view} AS s ON t._event_id = s._event_id "
                f"WHEN MATCHED AND NOT (t._valid_to <=> s._valid_to AND t._is_current = s._is_current) "
                f"THEN UPDATE SET _valid_to = s._valid_to, _is_current = s._is_current "
                f"WHEN NOT MATCHED AND NOT s._closer THEN INSERT ({', '.join(map(_q, names))}) "
                f"VALUES ({', '.join('s.' + _q(n) for n in names)})"
            ).collect()
        return len(records)

    def _refill_current(self, columns: EntityColumns, changes_view: str, refill: list[str]) -> None:
        """Give the current table the re-filled TOAST values of the stored version it holds.

        Only a change older than the stored current row (which the SCD1 guard rightly refuses) can change what an
        unchanged column of that row should hold. The row is addressed by its event id (idempotent), and this runs
        before the SCD1 MERGE, whose in-batch fills then compare against the corrected row.
        """
        path = self.layout.current(columns.table)
        self._ensure_table(path, columns.current_schema())
        on = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in columns.key_columns)
        sets = ", ".join(f"{_q(c)} = s.{_q(c)}" for c in refill)
        self.spark.sql(
            f"MERGE INTO {_quote_path(path)} AS t USING "
            f"(SELECT * FROM {changes_view} WHERE _stored AND _op NOT IN ('d', 't')) AS s "
            f"ON {on} AND t._event_id = s._event_id "
            f"WHEN MATCHED THEN UPDATE SET {sets}"
        ).collect()

    @staticmethod
    def _stitch(versions: DataFrame, keys: list[str], refill: list[str], names: list[str]) -> DataFrame:
        """Rows of `versions` whose validity or re-filled values differ from what is stored, plus all new rows
        (columns `names` and `_stored`)."""
        order = Window.partitionBy(*keys).orderBy("_source_pos")
        before = order.rowsBetween(Window.unboundedPreceding, -1)
        stitched = versions
        for c in refill:
            # The newest earlier version that carried the column (a d/t marker carries NULL, ending the chain).
            donor = F.last(
                F.when(~F.array_contains("_unchanged", c), F.struct(F.col(c).alias("v"))), ignorenulls=True
            ).over(before)["v"]
            stitched = stitched.withColumn(f"__new_{c}", F.when(F.array_contains("_unchanged", c), donor)
                                           .otherwise(F.col(c)))
        next_from = F.lead("_valid_from").over(order)
        stitched = stitched.withColumn("__new_valid_to", next_from).withColumn(
            "__new_is_current", F.lead("_event_id").over(order).isNull()
        )
        same = F.col("_valid_to").eqNullSafe(F.col("__new_valid_to")) & (
            F.col("_is_current") == F.col("__new_is_current")
        )
        for c in refill:
            same = same & F.col(c).eqNullSafe(F.col(f"__new_{c}"))
        changed = stitched.where(~F.col("_stored") | ~same)
        out = [F.col("_stored")]
        for n in names:
            if n == "_valid_to":
                out.append(F.col("__new_valid_to").alias(n))
            elif n == "_is_current":
                out.append(F.col("__new_is_current").alias(n))
            elif n in refill:
                out.append(F.col(f"__new_{n}").alias(n))
            else:
                out.append(F.col(n))
        return changed.select(*out)

    def _stored_truncate_markers(self, path: str, columns: EntityColumns, plan: TablePlan) -> list[dict[str, Any]]:
        """`t` markers for keys alive in the stored history at the batch's first truncate that this batch does not
        change before it (the planner marks those it does). Truncates are rare; the keys are collected."""
        if not plan.truncates:
            return []
        first = plan.truncates[0]
        touched_before = {
            tuple(r.key[k] for k in columns.key_columns) for r in plan.history if r.source_pos < first.source_pos
        }
        keys = list(columns.key_columns)
        alive = (
            self.spark.read.format("delta").load(path)
            .where(F.col("_is_current") & ~F.col("_op").isin("d", "t")
                   & (F.col("_source_pos") < F.lit(Decimal(first.source_pos)).cast("decimal(38,0)")))
            .select(*keys)
            .collect()
        )
        markers = []
        for row in alive:
            key_values = tuple(row[k] for k in keys)
            if key_values in touched_before:
                continue
            key = dict(zip(keys, key_values))
            markers.append(self._history_record(
                columns, key, {}, "t", marker_event_id(first.event_id, key), first.source_pos, first.source_ts_ms,
                None, True, (),
            ))
        return markers

    @classmethod
    def history_record(cls, columns: EntityColumns, row: HistoryRow) -> dict[str, Any]:
        """The typed history-table record of a planned SCD2 row (as first planned: no cross-batch refill)."""
        return cls._history_record(columns, row.key, row.values, row.op, row.event_id, row.source_pos,
                                   row.valid_from_ms, row.valid_to_ms, row.is_current, row.unchanged)

    @staticmethod
    def _history_record(columns: EntityColumns, key: dict[str, Any], values: dict[str, Any], op: str,
                        event_id: str, pos: int, valid_from_ms: int, valid_to_ms: int | None, is_current: bool,
                        unchanged: tuple[str, ...]) -> dict[str, Any]:
        typed, extras = columns.split_values({**values, **key} if values else dict(key))
        return {
            **typed,
            EXTRA_COLUMNS: extras,
            "_op": op,
            "_event_id": event_id,
            "_source_pos": Decimal(pos),
            "_valid_from": ms_to_datetime(valid_from_ms),
            "_valid_to": None if valid_to_ms is None else ms_to_datetime(valid_to_ms),
            "_is_current": is_current,
            "_unchanged": list(unchanged),
        }

    # ---------------------------------------------------------------------------------------------- offsets

    def record_offsets(self, offsets: tuple[OffsetMark, ...]) -> None:
        """Move each (topic, partition)'s next offset forward (never back), after the batch's data is written."""
        path = self.layout.offsets()
        self._ensure_table(path, OFFSETS_SCHEMA)
        now = datetime.now(timezone.utc)
        rows = [{"topic": o.topic, "partition": o.partition, "next_offset": o.next_offset, "updated_at": now}
                for o in offsets]
        with self._view(arrow_table(rows, OFFSETS_SCHEMA), OFFSETS_SCHEMA) as view:
            self.spark.sql(
                f"MERGE INTO {_quote_path(path)} AS t USING {view} AS s "
                f"ON t.topic = s.topic AND t.`partition` = s.`partition` "
                f"WHEN MATCHED AND s.next_offset > t.next_offset THEN "
                f"UPDATE SET next_offset = s.next_offset, updated_at = s.updated_at "
                f"WHEN NOT MATCHED THEN INSERT (topic, `partition`, next_offset, updated_at) "
                f"VALUES (s.topic, s.`partition`, s.next_offset, s.updated_at)"
            ).collect()

    # ---------------------------------------------------------------------------------------------- append tables

    def merge_append(self, table: AppendTable, rows: list[dict[str, Any]]) -> int:
        """Insert the rows whose key the append table does not hold yet (a replay adds nothing); returns the rows
        offered. `rows` come from `append_tables.flatten_record`."""
        path = self.layout.append(table.name)
        schema = table_schema(table)
        self._ensure_table(path, schema, partition_by=PARTITION_COLUMN)
        rows = unique_by_key(table, rows)
        if not rows:
            return 0
        names = [f.name for f in schema.fields]
        on = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in table.key)
        try:
            with self._view(arrow_table(rows, schema), schema) as view:
                self.spark.sql(
                    f"MERGE INTO {_quote_path(path)} AS t USING {view} AS s ON {on} "
                    f"WHEN NOT MATCHED THEN INSERT ({', '.join(map(_q, names))}) "
                    f"VALUES ({', '.join('s.' + _q(n) for n in names)})"
                ).collect()
        except PySparkException as exc:
            raise LakeWriteError(f"writing append table {table.name}: {exc}") from exc
        return len(rows)

    # ---------------------------------------------------------------------------------------------- plumbing

    def _ensure_table(self, path: str, schema: T.StructType, *, partition_by: str | None = None) -> None:
        """Create the Delta table at `path` (empty, with `schema`) unless it exists."""
        if path in self._ready:
            return
        try:
            self.spark.read.format("delta").load(path).schema  # noqa: B018 - the probe is the point
        except AnalysisException:
            writer = self.spark.createDataFrame([], schema).write.format("delta").mode("append")
            if partition_by:
                writer = writer.partitionBy(partition_by)
            writer.save(path)
        self._ready.add(path)

    class _TempView:
        def __init__(self, spark: SparkSession, df: DataFrame) -> None:
            self.spark = spark
            self.name = f"_compactor_{uuid.uuid4().hex}"
            df.createOrReplaceTempView(self.name)

        def __enter__(self) -> str:
            return self.name

        def __exit__(self, *exc: object) -> None:
            self.spark.catalog.dropTempView(self.name)

    def _view(self, table: Any, schema: T.StructType) -> "DeltaLakeWriter._TempView":
        return self._TempView(self.spark, self.spark.createDataFrame(table, schema=schema))

    def _view_of(self, df: DataFrame) -> "DeltaLakeWriter._TempView":
        return self._TempView(self.spark, df)
