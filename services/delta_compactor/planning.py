"""Pure merge planning: a batch of normalized CDC changes in, per-table SCD1 and SCD2 rows out. No Spark here.

Input: decoded change records in the `ChangeRecord.to_json_dict()` shape (what `decode_change` returns), each with
the Kafka coordinates it was read from (`ConsumedChange`). Output (`BatchPlan`), per table:

- `current`: the SCD1 batch, one row per primary key: the change with the highest source position wins, so late,
  duplicated or replayed changes never overwrite newer state (the writer also guards against the stored
  `_source_pos`). Deletes are marked (`deleted`), and the columns the winner did not carry (unchanged TOAST) are
  either filled from an earlier change of the same key in this batch (`filled_from` says from which position, so
  the MERGE can still prefer a stored row that is newer than that donor) or listed in `keep_target`, meaning the
  MERGE keeps the target's value.
- `history`: the SCD2 rows of this batch, one per distinct change (duplicates by `event_id` dropped), with
  `valid_from`/`valid_to` (source commit times), `is_current` within the batch, `op`, `event_id` and source
  position. A delete or truncate ends a key's life with a marker row (op `d`/`t`, no values) that is current.
- `truncates`: the batch's truncates. SCD1 rows older than the last one are deleted by the writer, and changes
  older than it do not reach `current`; keys alive at a truncate get a `t` marker in `history` (keys this batch
  does not touch before the first truncate get theirs from the writer, which knows the stored state).

Also: `offsets`, the next Kafka offset per (topic, partition) read, counting every consumed record (rejected ones
too: they go to the dead-letter path, not back to the consumer), and `rejected`, the changes that cannot be
ordered or applied, with the reason.

Source position: a change's place in the source's total order, stored as `_source_pos` DECIMAL(38,0) (comparable
in Spark, Trino, DuckDB): `lsn * 10**19 + phase * 10**18 + tie`. PostgreSQL changes of one row are totally ordered
by LSN (a second writer of a row waits for the first to commit, so its change's LSN is higher); snapshot reads
share the snapshot's LSN but a snapshot reads each row once, and `phase` (0 snapshot read, 1 streamed) puts a read
before a streamed change at the same LSN. `tie`, from the event id, only makes the order total and deterministic
for distinct events that would otherwise compare equal (not expected from PostgreSQL).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from claims_shared.contracts.cdc import OPS, canonical_json

POS_LSN_FACTOR = 10**19
POS_PHASE_FACTOR = 10**18
_MAX_LSN = 2**63 - 1  # the contract's lsn is an Avro long; lsn * 10**19 + ... stays below 10**38
_LIVE_OPS = ("r", "c", "u")
_END_OPS = ("d", "t")


# ------------------------------------------------------------------------------------------------ input


@dataclass(frozen=True, slots=True)
class ConsumedChange:
    """One decoded change and where it was read from (Kafka topic, partition, offset)."""

    topic: str
    partition: int
    offset: int
    change: Mapping[str, Any]  # ChangeRecord.to_json_dict() shape, as returned by decode_change


# ------------------------------------------------------------------------------------------------ output


@dataclass(frozen=True, slots=True)
class CurrentRow:
    """SCD1 source row of one primary key: the newest change of this batch, ready for a position-guarded MERGE."""

    key: dict[str, Any]
    op: str
    deleted: bool
    values: dict[str, Any]  # column -> canonical value (key columns included); {} for a delete
    keep_target: tuple[str, ...]  # columns the MERGE must take from the target row (unchanged, no donor here)
    filled_from: dict[str, int]  # column -> source position of the batch change its value came from
    event_id: str
    source_pos: int
    source_ts_ms: int


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """SCD2 row: one version of one primary key."""

    key: dict[str, Any]
    op: str
    values: dict[str, Any]  # full image as far as this batch knows it ({} for d/t markers)
    unchanged: tuple[str, ...]  # columns the change did not carry (as sent); the writer re-fills them across batches
    event_id: str
    source_pos: int
    valid_from_ms: int
    valid_to_ms: int | None
    is_current: bool


@dataclass(frozen=True, slots=True)
class TruncateMark:
    event_id: str
    source_pos: int
    source_ts_ms: int


@dataclass(frozen=True, slots=True)
class RejectedChange:
    consumed: ConsumedChange
    reason: str


@dataclass(frozen=True, slots=True)
class OffsetMark:
    topic: str
    partition: int
    next_offset: int  # the first offset NOT covered by this batch (what a consumer resumes from)


@dataclass(frozen=True, slots=True)
class TablePlan:
    table: str
    current: tuple[CurrentRow, ...]
    history: tuple[HistoryRow, ...]
    truncates: tuple[TruncateMark, ...] = ()  # in position order
    duplicates: int = 0  # changes dropped because their event_id was already in the batch

    @property
    def truncate(self) -> TruncateMark | None:
        """The batch's last truncate: SCD1 rows older than it are gone."""
        return self.truncates[-1] if self.truncates else None


@dataclass(frozen=True, slots=True)
class BatchPlan:
    tables: dict[str, TablePlan]
    offsets: tuple[OffsetMark, ...]
    rejected: tuple[RejectedChange, ...] = field(default=())


# ------------------------------------------------------------------------------------------------ positions


def source_pos(change: Mapping[str, Any]) -> int:
    """Total order of a change among the changes of its row (see module docstring); raises `ValueError`."""
    lsn = change.get("lsn")
    if lsn is None or isinstance(lsn, bool) or not isinstance(lsn, int) or not 0 <= lsn <= _MAX_LSN:
        raise ValueError(f"lsn must be an integer in [0, 2**63), got {lsn!r}")
    event_id = change.get("event_id")
    if not event_id:
        raise ValueError("change has no event_id")
    phase = 0 if change.get("op") == "r" else 1
    tie = int(hashlib.sha256(str(event_id).encode()).hexdigest()[:15], 16) % POS_PHASE_FACTOR
    return lsn * POS_LSN_FACTOR + phase * POS_PHASE_FACTOR + tie


def lsn_of(pos: int) -> int:
    """The LSN part of a source position."""
    return pos // POS_LSN_FACTOR


def marker_event_id(truncate_event_id: str, key: Mapping[str, Any]) -> str:
    """Deterministic id of the per-key history row a truncate produces (same truncate, same key: same id)."""
    return hashlib.sha256(f"{truncate_event_id}|{canonical_json(dict(key))}".encode()).hexdigest()[:32]


# ------------------------------------------------------------------------------------------------ planning


@dataclass(frozen=True, slots=True)
class _Change:
    pos: int
    op: str
    key: dict[str, Any]
    row: dict[str, Any] | None
    unchanged: tuple[str, ...]
    event_id: str
    ts_ms: int


def _validate(change: Mapping[str, Any]) -> str | None:
    op = change.get("op")
    if op not in OPS:
        return f"op must be one of {OPS}, got {op!r}"
    if not change.get("table"):
        return "change has no table"
    if op != "t" and not change.get("key"):
        return f"op {op!r} without a primary key"
    if op in _LIVE_OPS and not isinstance(change.get("row"), dict):
        return f"op {op!r} without a row image"
    if not isinstance(change.get("source_ts_ms"), int):
        return "source_ts_ms must be an integer (epoch ms)"
    return None


def plan_batch(consumed: Iterable[ConsumedChange]) -> BatchPlan:
    """Plan one batch: per-table SCD1 rows, SCD2 rows, truncate mark; next offsets; rejected changes."""
    next_offsets: dict[tuple[str, int], int] = {}
    rejected: list[RejectedChange] = []
    by_table: dict[str, list[_Change]] = defaultdict(list)
    for item in consumed:
        tp = (item.topic, item.partition)
        next_offsets[tp] = max(next_offsets.get(tp, 0), item.offset + 1)
        change = item.change
        reason = _validate(change)
        if reason is None:
            try:
                pos = source_pos(change)
            except ValueError as exc:
                reason = f"cannot order the change: {exc}"
        if reason is not None:
            rejected.append(RejectedChange(item, reason))
            continue
        by_table[change["table"]].append(
            _Change(
                pos=pos,
                op=change["op"],
                key=dict(change.get("key") or {}),
                row=dict(change["row"]) if change.get("row") is not None else None,
                unchanged=tuple(change.get("unchanged") or ()),
                event_id=change["event_id"],
                ts_ms=change["source_ts_ms"],
            )
        )
    tables = {table: plan_table(table, changes) for table, changes in sorted(by_table.items())}
    offsets = tuple(OffsetMark(t, p, n) for (t, p), n in sorted(next_offsets.items()))
    return BatchPlan(tables=tables, offsets=offsets, rejected=tuple(rejected))


def plan_table(table: str, changes: list[_Change]) -> TablePlan:
    """SCD1 and SCD2 rows of one table from its valid changes (any order, duplicates allowed)."""
    unique: dict[str, _Change] = {}
    for change in changes:
        unique.setdefault(change.event_id, change)
    duplicates = len(changes) - len(unique)
    ordered = sorted(unique.values(), key=lambda c: c.pos)
    truncates = [c for c in ordered if c.op == "t"]
    per_key: dict[str, list[_Change]] = defaultdict(list)
    for change in ordered:
        if change.op != "t":
            per_key[canonical_json(change.key)].append(change)

    current: list[CurrentRow] = []
    history: list[HistoryRow] = []
    last_truncate = truncates[-1] if truncates else None
    for key_text in sorted(per_key):
        versions = per_key[key_text]
        history.extend(_history_of_key(versions, truncates))
        # Changes older than the last truncate were wiped by it: the writer deletes what they would have written.
        alive = [c for c in versions if last_truncate is None or c.pos > last_truncate.pos]
        if alive:
            current.append(_current_of_key(alive))
    marks = tuple(TruncateMark(t.event_id, t.pos, t.ts_ms) for t in truncates)
    return TablePlan(table, tuple(current), tuple(history), marks, duplicates)


def _donor_value(earlier: list[_Change], column: str) -> tuple[bool, Any, int]:
    """(found, value, position) of `column` in the newest earlier change that carried it, stopping at a delete."""
    for change in reversed(earlier):
        if change.op in _END_OPS or change.row is None:
            return False, None, 0
        if column in change.row and column not in change.unchanged:
            return True, change.row[column], change.pos
    return False, None, 0


def _current_of_key(versions: list[_Change]) -> CurrentRow:
    winner = versions[-1]
    if winner.op == "d":
        return CurrentRow(
            key=winner.key, op="d", deleted=True, values={}, keep_target=(), filled_from={},
            event_id=winner.event_id, source_pos=winner.pos, source_ts_ms=winner.ts_ms,
        )
    values = dict(winner.row or {})
    keep_target: list[str] = []
    filled_from: dict[str, int] = {}
    for column in winner.unchanged:
        found, value, pos = _donor_value(versions[:-1], column)
        if found:
            values[column] = value
            filled_from[column] = pos
        else:
            values.pop(column, None)
            keep_target.append(column)
    for name, value in winner.key.items():
        values.setdefault(name, value)
    return CurrentRow(
        key=winner.key, op=winner.op, deleted=False, values=values, keep_target=tuple(keep_target),
        filled_from=filled_from, event_id=winner.event_id, source_pos=winner.pos, source_ts_ms=winner.ts_ms,
    )


def _history_of_key(versions: list[_Change], truncates: list[_Change]) -> list[HistoryRow]:
    """Versions of one key in position order, truncate markers included, with in-batch validity and fills."""
    timeline: list[_Change] = []
    pending = list(truncates)
    for change in versions:
        while pending and pending[0].pos < change.pos:
            _add_truncate_marker(timeline, pending.pop(0), versions[0].key)
        timeline.append(change)
    for truncate in pending:
        _add_truncate_marker(timeline, truncate, versions[0].key)

    rows: list[HistoryRow] = []
    for i, change in enumerate(timeline):
        values: dict[str, Any] = {}
        if change.op in _LIVE_OPS:
            values = dict(change.row or {})
            for column in change.unchanged:
                found, value, _ = _donor_value(timeline[:i], column)
                if found:
                    values[column] = value
                else:
                    values.pop(column, None)
        nxt = timeline[i + 1] if i + 1 < len(timeline) else None
        rows.append(
            HistoryRow(
                key=change.key, op=change.op, values=values, unchanged=change.unchanged, event_id=change.event_id,
                source_pos=change.pos, valid_from_ms=change.ts_ms, valid_to_ms=nxt.ts_ms if nxt else None,
                is_current=nxt is None,
            )
        )
    return rows


def _add_truncate_marker(timeline: list[_Change], truncate: _Change, key: dict[str, Any]) -> None:
    # Only a key that is alive at the truncate gets a marker; earlier history of the batch ends there.
    if timeline and timeline[-1].op in _LIVE_OPS:
        timeline.append(
            _Change(
                pos=truncate.pos, op="t", key=key, row=None, unchanged=(),
                event_id=marker_event_id(truncate.event_id, key), ts_ms=truncate.ts_ms,
            )
        )
