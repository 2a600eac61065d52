"""The compactor loop: Kafka (normalized CDC topics + the other streams) -> Delta tables, in batches.

One cycle (`CompactorJob.run_once`):
1. consume: every partition of the topics is *assigned* (no group rebalancing), starting at the next offsets recorded
   in the lake's `_compactor_offsets` table (else at the beginning); the broker's end offsets are never used (the
   local broker reports them wrongly, LOCAL-STACK.md). A batch closes `compactor_trigger_s` after its first record
   or at `compactor_max_batch` records.
2. decode: CDC values with `decode_change`, other streams with their contracts (`append_tables`); what does not decode
   or cannot be applied (planner rejects) goes to `claims.lake.dead-letter.v1` with the reason and the original
   bytes, acknowledged by the broker before anything is recorded as done.
3. write, holding the lake lock (`lake_lock.py`) when one is configured: CDC plan (SCD2 history, SCD1 current) and
   append tables, then the offsets of every record of the batch, last. Every write is idempotent, so a crash at any
   point followed by a restart (which re-reads from the recorded offsets) loses nothing and doubles nothing.
4. the same offsets are committed to the consumer group `delta-compactor`, for lag figures only (`claimsctl status`).

A failed cycle is retried from the last recorded positions with backoff; the Spark session is rebuilt on the way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from confluent_kafka import OFFSET_BEGINNING, KafkaException, Message, TopicPartition

from claims_shared.batch_loop import BENIGN_CONSUMER_ERRORS, DeliveryFailed
from claims_shared.clients import kafka
from claims_shared.contracts.cdc import normalized_topic
from claims_shared.contracts.cdc_avro import decode_change
from claims_shared.contracts.telematics import dead_letter_value
from claims_shared.contracts.topics import CDC_TABLES, LAKE_DEAD_LETTER, OWNED_TOPICS
from claims_shared.settings import PlatformSettings
from services.delta_compactor.append_tables import (
    APPEND_BY_TOPIC,
    APPEND_TABLES,
    AppendRecordError,
    decode_append_record,
    flatten_record,
)
from services.delta_compactor.lake_lock import LakeLock
from services.delta_compactor.lake_schema import LakeLayout
from services.delta_compactor.planning import ConsumedChange, OffsetMark, plan_batch
from services.delta_compactor.writer import DeltaLakeWriter

log = logging.getLogger("delta_compactor")

GROUP_ID = "delta-compactor"


def consumer_group(settings: PlatformSettings) -> str:
    """The consumer group the job commits its offsets to (lag figures only; positions live in the lake). One per lake
    root, so a backfill into another root (`CLAIMS_LAKE_ROOT`) does not move the live job's lag figures."""
    if not settings.lake_root:
        return GROUP_ID
    return f"{GROUP_ID}-{hashlib.sha256(settings.lake_root_uri.encode()).hexdigest()[:10]}"


CDC_TOPICS = {normalized_topic(t): t for t in CDC_TABLES}
APPEND_BY_NAME = {t.name: t for t in APPEND_TABLES}


@dataclass
class BatchReport:
    records: int = 0
    cdc_changes: int = 0
    append_rows: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    seconds: float = 0.0
    tables: tuple[str, ...] = ()
    table_seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DeadLetter:
    message: Message
    error_class: str
    reason: str


class CompactorJob:
    """Reads the lake's input topics and writes them to Delta through a Spark session (see module docstring)."""

    def __init__(self, settings: PlatformSettings, spark_factory: Callable[[], Any], *,  # factory: a NEW session
                 from_beginning: bool = False, lock: LakeLock | None = None, status_file: Path | None = None) -> None:
        self.settings = settings
        self.spark_factory = spark_factory
        self.layout = LakeLayout(settings.lake_root_uri)
        self.writer = DeltaLakeWriter(spark_factory(), self.layout)
        self.from_beginning = from_beginning
        self.lock = lock
        self.status_file = status_file
        self.consumer = kafka.consumer(settings, consumer_group(settings),
                                       **{"fetch.wait.max.ms": 50, "enable.partition.eof": False})
        self.producer = kafka.producer(settings)
        self.positions: dict[tuple[str, int], int] = {}  # next offset to read per partition (recorded in the lake)
        self.counters: Counter = Counter()
        self.healthy = True
        self.last_error = ""
        self.last_batch: BatchReport | None = None
        self.last_batch_at: float | None = None
        self._stored: dict[tuple[str, int], int] | None = None
        self._last_refresh = 0.0
        self._delivery_errors: list[str] = []
        self._started_at = time.time()
        self._local = threading.local()
        self._generation = 0  # bumped on recovery: every thread then opens a new session
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.compactor_parallel_tables),
                                        thread_name_prefix="compactor-table")

    # ---------------------------------------------------------------------------------------------- topics

    @staticmethod
    def topics() -> list[str]:
        return [*CDC_TOPICS, *(t.topic for t in APPEND_TABLES)]

    def refresh_assignment(self) -> None:
        """Assign partitions not assigned yet (topics appear as traffic starts), at their recorded positions."""
        if self._stored is None:
            self._stored = {} if self.from_beginning else self.writer.read_offsets()
            log.info(json.dumps({"event": "start_positions", "recorded": len(self._stored),
                                 "from_beginning": self.from_beginning}))
        meta = self.consumer.list_topics(timeout=10)
        added = False
        for topic in self.topics():
            t = meta.topics.get(topic)
            if t is None or t.error is not None:
                continue
            for p in t.partitions:
                if (topic, p) not in self.positions:
                    self.positions[(topic, p)] = self._stored.get((topic, p), OFFSET_BEGINNING)
                    added = True
        if added:
            self._assign_all()
        self._last_refresh = time.monotonic()

    def _assign_all(self) -> None:
        self.consumer.assign([TopicPartition(t, p, off) for (t, p), off in sorted(self.positions.items())])

    # ---------------------------------------------------------------------------------------------- one cycle

    def poll_batch(self, wait_s: float) -> list[Message]:
        """Up to `compactor_max_batch` records: wait up to `wait_s` for the first, then `compactor_trigger_s` more."""
        limit = self.settings.compactor_max_batch
        # poll() returns as soon as one record is there; consume(n, t) would wait for n records or all of t.
        first = self.consumer.poll(wait_s)
        if first is None:
            return []
        out = self._keep([first])
        deadline = time.monotonic() + self.settings.compactor_trigger_s
        while len(out) < limit and (left := deadline - time.monotonic()) > 0:
            out.extend(self._consume(limit - len(out), left))
        return out

    def _consume(self, n: int, timeout_s: float) -> list[Message]:
        return self._keep(self.consumer.consume(n, timeout=timeout_s))

    @staticmethod
    def _keep(messages: list[Message]) -> list[Message]:
        """The records of `messages`; benign consumer events dropped, real errors raised."""
        good = []
        for m in messages:
            err = m.error()
            if err is None:
                good.append(m)
            elif err.code() not in BENIGN_CONSUMER_ERRORS:
                raise KafkaException(err)
        return good

    def run_once(self, wait_s: float = 0.5) -> BatchReport:
        """One cycle: consume, decode, dead-letter, write, record offsets. Returns what it did (records=0: idle)."""
        if time.monotonic() - self._last_refresh > 10 or self._stored is None:
            self.refresh_assignment()
        messages = self.poll_batch(wait_s)
        if not messages:
            return BatchReport()
        return self.process(messages)

    def process(self, messages: list[Message]) -> BatchReport:
        started = time.monotonic()
        changes: list[ConsumedChange] = []
        appends: dict[str, list[dict[str, Any]]] = defaultdict(list)
        dead: list[DeadLetter] = []
        next_offsets: dict[tuple[str, int], int] = {}
        for m in messages:
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            next_offsets[(topic, partition)] = max(next_offsets.get((topic, partition), 0), offset + 1)
            if topic in CDC_TOPICS:
                try:
                    if not m.value():
                        raise ValueError("empty message value")
                    changes.append(ConsumedChange(topic, partition, offset, decode_change(CDC_TOPICS[topic], m.value())))
                except Exception as exc:  # any decoding failure is the record's, not the job's
                    dead.append(DeadLetter(m, type(exc).__name__, f"cannot decode: {exc}"))
            else:
                table = APPEND_BY_TOPIC[topic]
                try:
                    record = decode_append_record(table, m.value())
                    ts_type, ts_ms = m.timestamp()
                    appends[table.name].append(flatten_record(
                        table, record, topic=topic, partition=partition, offset=offset,
                        kafka_ts_ms=ts_ms if ts_type else None))
                except AppendRecordError as exc:
                    dead.append(DeadLetter(m, type(exc).__name__, str(exc)))
        plan = plan_batch(changes)
        if plan.rejected:
            by_position = {(m.topic(), m.partition(), m.offset()): m for m in messages}
            for rejected in plan.rejected:
                c = rejected.consumed
                dead.append(DeadLetter(by_position[(c.topic, c.partition, c.offset)], "RejectedChange",
                                       rejected.reason))
        self.dead_letter(dead)

        offsets = tuple(OffsetMark(t, p, n) for (t, p), n in sorted(next_offsets.items()))
        report = BatchReport(records=len(messages), cdc_changes=len(changes) - len(plan.rejected),
                             dead_lettered=len(dead), tables=tuple(plan.tables))
        with self.lock.held() if self.lock else nullcontext():
            # Tables are independent: written concurrently (each write is mostly waiting on the Spark server and
            # the object store). Offsets last, for every record of the batch (CDC, appends, dead letters).
            timings: dict[str, float] = {}

            def timed(name: str, write: Callable[[DeltaLakeWriter], Any]) -> Any:
                t0 = time.monotonic()
                try:
                    return write(self._thread_writer())
                finally:
                    timings[name] = round(time.monotonic() - t0, 3)

            futures = {name: self._pool.submit(timed, name, lambda w, tp=table_plan: w.apply_table(tp))
                       for name, table_plan in plan.tables.items()}
            append_futures = {
                name: self._pool.submit(timed, name, lambda w, n=name, r=rows: w.merge_append(APPEND_BY_NAME[n], r))
                for name, rows in sorted(appends.items())
            }
            errors = []
            for future in (*futures.values(), *append_futures.values()):
                try:
                    future.result()
                except Exception as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
            report.append_rows = {name: f.result() for name, f in append_futures.items()}
            steps = {name: f.result().seconds for name, f in futures.items()}
            t0 = time.monotonic()
            self.writer.record_offsets(offsets)
            timings["_offsets"] = round(time.monotonic() - t0, 3)
        report.table_seconds = timings
        for mark in offsets:
            self.positions[(mark.topic, mark.partition)] = mark.next_offset
        self._commit_for_lag(offsets)
        report.seconds = time.monotonic() - started
        self.counters.update(records=report.records, cdc_changes=report.cdc_changes,
                             append_rows=sum(report.append_rows.values()), dead_lettered=report.dead_lettered,
                             batches=1)
        self.last_batch, self.last_batch_at = report, time.time()
        log.info(json.dumps({"service": "delta_compactor", "event": "batch", "records": report.records,
                             "cdc_changes": report.cdc_changes, "tables": list(report.tables),
                             "append_rows": report.append_rows, "dead_lettered": report.dead_lettered,
                             "seconds": round(report.seconds, 3), "table_seconds": report.table_seconds,
                             "table_steps": steps}))
        return report

    def _thread_writer(self) -> DeltaLakeWriter:
        """This worker thread's writer, on its own Spark session: pysail runs one session's requests one after the
        other, so concurrent tables need separate sessions (measured: 8 tables ~2.2 s on one session, ~1.2 s on
        one session each)."""
        local = self._local
        if getattr(local, "generation", None) != self._generation:
            local.writer = DeltaLakeWriter(self.spark_factory(), self.layout)
            local.generation = self._generation
        return local.writer

    def dead_letter(self, dead: list[DeadLetter]) -> None:
        """Produce the dead letters and wait for the broker's acknowledgement; raises DeliveryFailed."""
        if not dead:
            return
        self._delivery_errors.clear()
        for d in dead:
            m = d.message
            value = dead_letter_value(error_class=d.error_class, reason=d.reason, topic=m.topic(),
                                      partition=m.partition(), offset=m.offset(), key=m.key(), value=m.value())
            self.producer.produce(LAKE_DEAD_LETTER, value, m.key(), on_delivery=self._on_delivery)
            log.warning(json.dumps({"service": "delta_compactor", "event": "dead_letter", "topic": m.topic(),
                                    "partition": m.partition(), "offset": m.offset(), "reason": d.reason[:300]}))
        remaining = self.producer.flush(60)
        if remaining or self._delivery_errors:
            raise DeliveryFailed(f"{remaining} dead letters unacknowledged ({'; '.join(self._delivery_errors[:3])})")

    def _on_delivery(self, err: Any, _msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(str(err))

    def _commit_for_lag(self, offsets: tuple[OffsetMark, ...]) -> None:
        try:
            self.consumer.commit(offsets=[TopicPartition(o.topic, o.partition, o.next_offset) for o in offsets],
                                 asynchronous=True)
        except KafkaException as exc:  # informational only: positions live in the lake
            log.debug("group commit failed: %s", exc)

    # ---------------------------------------------------------------------------------------------- loop

    def start(self) -> None:
        kafka.ensure_topics(self.settings, [t for t in OWNED_TOPICS if t.name == LAKE_DEAD_LETTER])
        self.refresh_assignment()
        self.write_status()

    def run(self, stop: threading.Event, *, once: bool = False, idle_exit_s: float = 3.0,
            on_batch: Callable[["CompactorJob", BatchReport], None] | None = None) -> None:
        """Cycles until `stop` is set (or, with `once`, until no record arrived for `idle_exit_s`)."""
        backoff = 0.5
        idle_since = time.monotonic()
        last_status = 0.0
        while not stop.is_set():
            try:
                report = self.run_once()
                self.healthy, backoff = True, 0.5
            except Exception as exc:  # storage, broker or Spark trouble: retry the batch from the recorded positions
                self.healthy, self.last_error = False, f"{type(exc).__name__}: {exc}"[:2000]
                self.counters["retries"] += 1
                log.warning(json.dumps({"service": "delta_compactor", "event": "batch_failed",
                                        "retry_in_s": backoff, "error": self.last_error}))
                self.write_status()
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                self._recover()
                continue
            if report.records:
                idle_since = time.monotonic()
                if on_batch:
                    on_batch(self, report)
            elif once and time.monotonic() - idle_since > idle_exit_s:
                break
            if report.records or time.monotonic() - last_status > 2:
                self.write_status()
                last_status = time.monotonic()
        self.write_status()

    def _recover(self) -> None:
        try:
            self._generation += 1
            self.writer = DeltaLakeWriter(self.spark_factory(), self.layout)
            self._assign_all()
        except Exception as exc:
            log.warning("recovery failed (will retry): %s", exc)

    def status(self) -> dict[str, Any]:
        last = self.last_batch
        return {
            "pid": os.getpid(), "started_at": self._started_at, "healthy": self.healthy, "last_error": self.last_error,
            **{k: self.counters.get(k, 0) for k in ("batches", "records", "cdc_changes", "append_rows",
                                                      "dead_lettered", "retries")},
            "assigned_partitions": len(self.positions),
            "last_batch_at": self.last_batch_at,
            "last_batch": None if last is None else {"records": last.records, "seconds": round(last.seconds, 3)},
            "updated_at": datetime.now(timezone.utc).isoformat(),
        }

    def write_status(self) -> None:
        if self.status_file is None:
            return
        tmp = self.status_file.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(self.status()))
        os.replace(tmp, self.status_file)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        try:
            self.producer.flush(10)
        finally:
            self.consumer.close()
