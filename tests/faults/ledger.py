"""What went in and what came out, read from the topics, PostgreSQL and the landing bucket.

Everything here reads the real outputs and compares them with the real inputs; nothing asks a service what it did.
Each ledger keeps consumers open for the whole session (`TopicTail`) and is cumulative: a fault test takes a
`snapshot()` before and after and reports the difference (see `Tally.minus`).

Definitions (the README of this directory explains them at length):
- lost: an input whose effect never reached its output (CDC: the topic folded by key disagrees with PostgreSQL;
  readings: a valid reading in no closed trip; landing files: an object with no document record);
- duplicated: one input represented twice under DIFFERENT ids (a real double downstream);
- repeats: the same id delivered again (at-least-once delivery with idempotent sinks: allowed, reported apart).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import re
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
from datetime import date, datetime, time as dtime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable
from uuid import UUID

import orjson
import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from claims_shared.clients.aws import s3_client
from claims_shared.contracts.cdc import DEAD_LETTER_TOPIC as CDC_DEAD_LETTER_TOPIC
from claims_shared.contracts.cdc_avro import decode_change
from claims_shared.contracts.documents import DOCUMENTS_TOPIC, decode_document_record
from claims_shared.contracts.fraud import FRAUD_ALERTS_TOPIC, decode_alert
from claims_shared.contracts.pii import DEFAULT_PII_POLICY
from claims_shared.contracts.telematics import DEAD_LETTER_TOPIC as TELEMATICS_DEAD_LETTER_TOPIC
from claims_shared.contracts.objects import DOCUMENT_LINKS_TOPIC, decode_document_link
from claims_shared.contracts.telematics import READINGS_TOPIC, TRIP_SCHEMA, TRIPS_TOPIC, decode_epoch_ms, decode_reading
from claims_shared.contracts.topics import CDC_TABLES, LAKE_DEAD_LETTER
from claims_shared.settings import PlatformSettings
from services.delta_compactor.append_tables import APPEND_BY_TOPIC, decode_append_record
from services.delta_compactor.job import CompactorJob
from services.object_ingestor.extracts import EXTRACT_FORMATS
from services.object_ingestor.invoices import normalise_claim_number
from services.object_ingestor.linking import claim_number_from_key
from services.telematics_scorer.config import ScoringConfig
from services.telematics_scorer.stream import reading_problems
from tests.faults.lake_probe import key_text, probe

# Readings and files the suite injects to time recovery or to poison an input carry these markers, so the ledgers
# can tell them from the simulator's load.
CANARY_VEHICLE_PREFIX = "FAULT-CANARY-"
POISON_VEHICLE_PREFIX = "FAULT-POISON-"


@dataclass
class Tally:
    """Cumulative counts of one input stream. `in_ = out + dead_lettered + open + lost` when nothing is doubled."""

    in_: int = 0
    out: int = 0
    dead_lettered: int = 0
    lost: int = 0
    duplicated: int = 0
    repeats: int = 0
    open: int = 0  # readings of trips still open (allowed); 0 once the scorer closed its idle trips

    def minus(self, before: Tally) -> Tally:
        """What happened between two snapshots (losses already present before are not counted twice)."""
        return Tally(**{f.name: max(getattr(self, f.name) - getattr(before, f.name), 0)
                        if f.name not in ("open",) else getattr(self, f.name) for f in fields(self)})

    def plus(self, other: Tally) -> Tally:
        return Tally(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


class TopicTail:
    """A consumer that stays assigned (from offset 0) to every topic matching `pattern`, across calls.

    `catch_up` reads until nothing new arrived for `idle_s`: the local broker misreports end offsets
    (LOCAL-STACK.md), so "read to idleness" is the only honest end. librdkafka skips tombstones; none of the
    ledgers needs them (deletes carry op "d").
    """

    def __init__(self, settings: PlatformSettings, pattern: str, on_message: Callable[[Message], None]) -> None:
        self.settings = settings
        self.pattern = re.compile(pattern)
        self.on_message = on_message
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                                  "group.id": f"fault-ledger-{uuid.uuid4().hex}", "enable.auto.commit": False,
                                  "fetch.message.max.bytes": 8 * 1024 * 1024})
        self.assigned: set[tuple[str, int]] = set()

    def _refresh(self) -> None:
        meta = self.consumer.list_topics(timeout=10)
        new = [TopicPartition(name, p, OFFSET_BEGINNING) for name, t in meta.topics.items()
               if self.pattern.fullmatch(name) and not t.error for p in t.partitions
               if (name, p) not in self.assigned]
        if new:
            self.consumer.incremental_assign(new)
            self.assigned.update((tp.topic, tp.partition) for tp in new)

    def catch_up(self, idle_s: float = 2.0, max_s: float = 180.0) -> int:
        """Consume until idle; returns the number of messages seen."""
        seen = 0
        deadline = time.monotonic() + max_s
        idle_since = time.monotonic()
        next_refresh = 0.0
        while time.monotonic() < deadline and time.monotonic() - idle_since < idle_s:
            if time.monotonic() >= next_refresh:
                try:
                    self._refresh()
                except Exception:  # noqa: BLE001 - broker briefly away: keep trying until max_s
                    pass
                next_refresh = time.monotonic() + 1.0
            if not self.assigned:
                time.sleep(0.2)
                continue
            batch = self.consumer.consume(2000, timeout=0.3)
            for m in batch:
                if m.error() is None and m.value():
                    self.on_message(m)
                    seen += 1
            if batch:
                idle_since = time.monotonic()
        return seen

    def close(self) -> None:
        self.consumer.close()


# -- CDC -------------------------------------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A value read by psycopg in the normalized contract's canonical form (claims_shared/contracts/cdc.py)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        text = value.strftime("%Y-%m-%dT%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "")
        return text + ("Z" if value.tzinfo is not None else "")
    if isinstance(value, dtime):
        return value.strftime("%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


@dataclass
class _Folded:
    position: tuple[int, int]
    row: dict[str, Any] | None


class CdcLedger:
    """Raw Debezium topics in, `claims.cdc.<table>.v1` out, folded by key and compared with PostgreSQL."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        prefix = re.escape(settings.topic_prefix)
        self.raw_ops: Counter = Counter()       # op -> raw change events (tombstones are skipped by the client)
        self.raw_unparseable = 0
        self.by_event: dict[str, tuple[str, int]] = {}   # event_id -> (content digest, copies)
        self.by_change: dict[tuple, set[str]] = defaultdict(set)  # (table, key, op, lsn) -> event ids (non-r)
        self.conflicts = 0                     # an event id seen with different contents
        self.state: dict[str, dict[str, _Folded]] = {t: {} for t in CDC_TABLES}
        self.dead_letters: list[dict[str, Any]] = []
        self.records: dict[str, dict[str, Any]] = {}  # event_id -> decoded record (for the replay comparison)
        self.raw = TopicTail(settings, rf"{prefix}\.public\.[^.]+", self._on_raw)
        tables = "|".join(map(re.escape, CDC_TABLES))
        self.normalized = TopicTail(settings, rf"claims\.cdc\.({tables})\.v1", self._on_normalized)
        self.dead = TopicTail(settings, re.escape(CDC_DEAD_LETTER_TOPIC), self._on_dead)
        self.raw_messages: list[tuple[str, int, int, bytes | None, bytes]] = []
        self.latest_source_ts_ms = 0

    def _on_raw(self, m: Message) -> None:
        self.raw_messages.append((m.topic(), m.partition(), m.offset(), m.key(), m.value()))
        try:
            doc = orjson.loads(m.value())
            op = doc["payload"]["op"]
        except Exception:  # noqa: BLE001 - poison the suite injected, or a schema change event
            self.raw_unparseable += 1
            return
        self.raw_ops[op] += 1

    def _on_normalized(self, m: Message) -> None:
        table = m.topic().split(".")[2]
        record = decode_change(table, m.value())
        self.latest_source_ts_ms = max(self.latest_source_ts_ms, record["source_ts_ms"] or 0)
        digest = hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()
        eid = record["event_id"]
        seen = self.by_event.get(eid)
        if seen is None:
            self.by_event[eid] = (digest, 1)
            self.records[eid] = record
        else:
            self.conflicts += seen[0] != digest
            self.by_event[eid] = (seen[0], seen[1] + 1)
            return
        key = orjson.dumps(record["key"], option=orjson.OPT_SORT_KEYS).decode()
        if record["op"] != "r":
            self.by_change[(table, key, record["op"], record["lsn"])].add(eid)
        if record["op"] == "t":
            self.state[table].clear()
            return
        position = (record["lsn"] or 0, record["source_ts_ms"] or 0)
        current = self.state[table].get(key)
        if current is not None and current.position > position:
            return
        row = record["row"]
        if row is not None and record.get("unchanged") and current is not None and current.row is not None:
            row = {**row, **{c: current.row.get(c) for c in record["unchanged"]}}
        self.state[table][key] = _Folded(position, row)

    def _on_dead(self, m: Message) -> None:
        self.dead_letters.append(orjson.loads(m.value()))

    def catch_up(self, idle_s: float = 2.0) -> None:
        for tail in (self.raw, self.normalized, self.dead):
            tail.catch_up(idle_s)

    def postgres_rows(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every current row of the captured tables, canonical, keyed like the topic's keys."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        with psycopg.connect(self.settings.pg_dsn) as conn:
            for table in CDC_TABLES:
                pk = [r[0] for r in conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
                    "ORDER BY a.attnum", (table,))]
                cur = conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
                names = [d.name for d in cur.description]
                rows = {}
                for values in cur:
                    row = {n: canonical(v) for n, v in zip(names, values)}
                    key = orjson.dumps({c: row[c] for c in pk}, option=orjson.OPT_SORT_KEYS).decode()
                    rows[key] = row
                out[table] = rows
        return out

    def differences(self) -> list[str]:
        """Where the folded topic disagrees with PostgreSQL (non-PII columns; PII leaves the normalizer as tokens)."""
        problems = []
        for table, rows in self.postgres_rows().items():
            pii = set(DEFAULT_PII_POLICY.columns.get(table, {}))
            folded = {k: f.row for k, f in self.state[table].items() if f.row is not None}
            for key in rows.keys() - folded.keys():
                problems.append(f"{table} {key}: in PostgreSQL, missing from the topic")
            for key in folded.keys() - rows.keys():
                problems.append(f"{table} {key}: on the topic, deleted or never in PostgreSQL")
            for key in rows.keys() & folded.keys():
                expected, got = rows[key], folded[key]
                bad = [c for c in expected if c not in pii and c in got and got[c] != expected[c]
                       and not _same_float(got[c], expected[c])]
                if bad:
                    problems.append(f"{table} {key}: differs in {bad[:3]} "
                                    f"(topic {[got[c] for c in bad[:3]]}, PostgreSQL {[expected[c] for c in bad[:3]]})")
        return problems

    def tally(self) -> Tally:
        raw_changes = sum(self.raw_ops.values())
        duplicated = self.conflicts + sum(len(ids) - 1 for ids in self.by_change.values() if len(ids) > 1)
        return Tally(in_=raw_changes, out=len(self.by_event), dead_lettered=len(self.dead_letters),
                     lost=len(self.differences()), duplicated=duplicated,
                     repeats=sum(copies - 1 for _, copies in self.by_event.values()))

    def close(self) -> None:
        for tail in (self.raw, self.normalized, self.dead):
            tail.close()


def _same_float(a: Any, b: Any) -> bool:
    return isinstance(a, float) and isinstance(b, float) and abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)


# -- telematics ------------------------------------------------------------------------------------------------


class TelematicsLedger:
    """Readings in, closed trips out: every valid reading must lie in exactly one trip (by trip_id)."""

    def __init__(self, settings: PlatformSettings, config: ScoringConfig | None = None) -> None:
        self.config = config or ScoringConfig()
        self.readings: dict[str, set[int]] = defaultdict(set)  # vehicle -> ts of valid readings
        self.reading_copies = 0
        self.invalid = 0
        self.undecodable = 0
        self._pending: list[dict[str, Any]] = []
        self.trips: dict[str, tuple[str, int, int]] = {}  # trip_id -> (vehicle, start, end)
        self.trip_copies: Counter = Counter()
        self.dead_letters: list[dict[str, Any]] = []
        self.alerts: dict[str, dict[str, Any]] = {}
        self.alert_copies: Counter = Counter()
        self.canaries_dead_lettered: set[str] = set()
        self.tails = [
            TopicTail(settings, re.escape(READINGS_TOPIC), self._on_reading),
            TopicTail(settings, re.escape(TRIPS_TOPIC), self._on_trip),
            TopicTail(settings, re.escape(TELEMATICS_DEAD_LETTER_TOPIC), self._on_dead),
            TopicTail(settings, re.escape(FRAUD_ALERTS_TOPIC), self._on_alert),
        ]

    def _on_reading(self, m: Message) -> None:
        try:
            r = decode_reading(m.value())
        except Exception:  # noqa: BLE001 - poison; the dead-letter topic must have it
            self.undecodable += 1
            return
        if r["vehicle_id"].startswith((CANARY_VEHICLE_PREFIX, POISON_VEHICLE_PREFIX)):
            self.invalid += r["vehicle_id"].startswith(POISON_VEHICLE_PREFIX)
            return
        self._pending.append(r)

    def _on_trip(self, m: Message) -> None:
        t = decode_epoch_ms(TRIP_SCHEMA, m.value())
        self.trips[t["trip_id"]] = (t["vehicle_id"], t["start_ts"], t["end_ts"])
        self.trip_copies[t["trip_id"]] += 1

    def _on_dead(self, m: Message) -> None:
        letter = orjson.loads(m.value())
        if m.key() and CANARY_VEHICLE_PREFIX.encode() in base64.b64decode(letter.get("original_key_b64") or ""):
            self.canaries_dead_lettered.add(base64.b64decode(letter["original_key_b64"]).decode())
            return
        self.dead_letters.append(letter)

    def _on_alert(self, m: Message) -> None:
        a = decode_alert(m.value())
        self.alerts[a["alert_id"]] = a
        self.alert_copies[a["alert_id"]] += 1

    def catch_up(self, idle_s: float = 2.0) -> None:
        for tail in self.tails:
            tail.catch_up(idle_s)
        if self._pending:
            for r, problem in zip(self._pending, reading_problems(self._pending, self.config)):
                if problem is not None:
                    self.invalid += 1
                elif r["ts"] in self.readings[r["vehicle_id"]]:
                    self.reading_copies += 1
                else:
                    self.readings[r["vehicle_id"]].add(r["ts"])
            self._pending.clear()

    def coverage(self) -> tuple[int, int, int, int]:
        """(valid readings, in exactly one trip, in no trip, in two or more trips with different ids)."""
        by_vehicle: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for vehicle, start, end in self.trips.values():
            by_vehicle[vehicle].append((start, end))
        total = one = none = many = 0
        for vehicle, stamps in self.readings.items():
            spans = sorted(by_vehicle.get(vehicle, []))
            starts = [s for s, _ in spans]
            for ts in stamps:
                total += 1
                covering = sum(1 for s, e in spans[:bisect.bisect_right(starts, ts)] if e >= ts)
                if covering == 1:
                    one += 1
                elif covering == 0:
                    none += 1
                else:
                    many += 1
        return total, one, none, many

    def duplicated_alerts(self) -> int:
        """One finding (claim, rule, and the photos it is about, if any) under different alert ids."""
        per_finding = Counter(alert_finding(a) for a in self.alerts.values())
        return sum(n - 1 for n in per_finding.values() if n > 1)

    def tally(self, *, open_trips: int) -> Tally:
        total, one, none, many = self.coverage()
        # With open trips left, uncovered readings may be waiting in one: they are "open", not lost.
        lost, still_open = (0, none) if open_trips else (none, 0)
        return Tally(in_=total + self.invalid + self.undecodable, out=one, dead_lettered=len(self.dead_letters), lost=lost,
                     duplicated=many + self.duplicated_alerts(), open=still_open,
                     repeats=sum(n - 1 for n in self.trip_copies.values()) + sum(
                         n - 1 for n in self.alert_copies.values()))

    def close(self) -> None:
        for tail in self.tails:
            tail.close()


def alert_finding(alert: dict[str, Any]) -> tuple[Any, ...]:
    """What one alert is about: its claim and rule, plus the photo(s) for object_ingestor's photo rules, which raise
    one alert per photo (two photos of one claim taken far from the loss are two findings, not a double)."""
    try:
        evidence = orjson.loads(alert.get("evidence_json") or "{}")
    except orjson.JSONDecodeError:
        evidence = {}
    evidence = evidence if isinstance(evidence, dict) else {}
    return (alert["claim_id"], alert.get("rule"), evidence.get("document_id"), evidence.get("other_document_id"))


# -- documents -------------------------------------------------------------------------------------------------


class DocumentLedger:
    """Landing objects under `incoming/` in, one document record each on claims.documents.v1 out; and
    object_ingestor's links on claims.document-links.v1: each document whose key names a claim of PostgreSQL must
    end up linked (its latest link record names a claim), and a link is never published twice in a row unchanged."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.records: dict[str, dict[str, Any]] = {}
        self.copies: Counter = Counter()
        self.links: dict[str, tuple[str | None, str]] = {}  # document_id -> latest (claim_id, method)
        self.link_records = 0
        self.link_repeats = 0  # a link record equal to the document's previous one (the service promises none)
        self.link_repeat_ids: list[str] = []
        self.tail = TopicTail(settings, re.escape(DOCUMENTS_TOPIC), self._on_document)
        self.links_tail = TopicTail(settings, re.escape(DOCUMENT_LINKS_TOPIC), self._on_link)

    def _on_document(self, m: Message) -> None:
        d = decode_document_record(m.value())
        self.records[d["document_id"]] = d
        self.copies[d["document_id"]] += 1

    def _on_link(self, m: Message) -> None:
        link = decode_document_link(m.value())
        current = (link["claim_id"], link["method"])
        self.link_records += 1
        if self.links.get(link["document_id"]) == current:
            self.link_repeats += 1
            self.link_repeat_ids.append(link["document_id"])
        self.links[link["document_id"]] = current

    def catch_up(self, idle_s: float = 2.0) -> None:
        self.tail.catch_up(idle_s)
        self.links_tail.catch_up(idle_s)

    def landing_objects(self) -> dict[str, str]:
        """key -> ETag (quotes stripped) of every object under the incoming prefix."""
        s3 = s3_client(self.settings)
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.settings.landing_bucket,
                                                                 Prefix=self.settings.landing_incoming_prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["ETag"].strip('"')
        return out

    def per_object(self) -> dict[str, set[str]]:
        """key -> the document ids published for its current version."""
        objects = self.landing_objects()
        ids: dict[str, set[str]] = {k: set() for k in objects}
        for doc_id, d in self.records.items():
            source = d.get("source") or {}
            key = source.get("key")
            etag = (source.get("etag") or "").strip('"')
            if key in ids and (not etag or etag == objects[key]):
                ids[key].add(doc_id)
        return ids

    def tally(self) -> Tally:
        ids = self.per_object()
        quarantined = sum(1 for d in self.records.values() if d["status"] == "quarantined")
        counted = {i for s in ids.values() for i in s}
        return Tally(in_=len(ids), out=len(counted), dead_lettered=quarantined,
                     lost=sum(1 for s in ids.values() if not s),
                     duplicated=sum(len(s) - 1 for s in ids.values() if len(s) > 1),
                     repeats=sum(self.copies[i] - 1 for i in counted))

    def unlinked(self) -> list[str]:
        """Documents that must be linked and are not: not an extract, their key names a claim number that PostgreSQL
        has now, and their latest link is missing or names no claim. (A document may rightly link to another claim
        than its key's, by its content: any claim counts.)"""
        with psycopg.connect(self.settings.pg_dsn) as conn:
            numbers = {normalise_claim_number(n) for (n,) in conn.execute("SELECT claim_number FROM claims")}
        out = []
        for doc_id, d in self.records.items():
            key_number = claim_number_from_key((d.get("source") or {}).get("key"),
                                               self.settings.landing_incoming_prefix)
            if d.get("mime_type") in EXTRACT_FORMATS or key_number not in numbers:
                continue
            if (self.links.get(doc_id) or (None, ""))[0] is None:
                out.append(doc_id)
        return sorted(out)

    def links_tally(self) -> Tally:
        """in: documents that must be linked (see `unlinked`) plus those linked anyway; out: linked documents."""
        must = self.unlinked()
        linked = sum(1 for claim_id, _ in self.links.values() if claim_id is not None)
        return Tally(in_=linked + len(must), out=linked, lost=len(must), repeats=self.link_repeats)

    def close(self) -> None:
        self.tail.close()
        self.links_tail.close()


# -- the lake ----------------------------------------------------------------------------------------------------


class LakeLedger:
    """The compactor's input topics in, the Delta lake out, judged like `claimsctl reconcile` judges it.

    - CDC: every key ever seen on `claims.cdc.<table>.v1` is one input; the lake's current tables are compared with
      PostgreSQL by `claimsctl reconcile`'s own function (claimsctl/lake/reconcile.py): each key missing from the
      lake, extra in it, or different is one loss.
    - append tables (trips, events, driver scores, documents, fraud alerts, extract rows): each distinct key on the
      topic is one input; a key the table does not hold is lost; a table holding more rows than distinct keys
      holds a double (duplicated).
    Before counting, `catch_up` reads the topics to idleness and waits until the compactor's recorded offsets (its
    `_compactor_offsets` table) reached every record read, so a slow compactor is never counted as a lossy one.
    """

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.ends: dict[str, int] = {}  # "topic:partition" -> next offset after the last record read
        self.cdc_keys: set[tuple[str, bytes | None]] = set()
        self.append_keys: dict[str, set[str]] = defaultdict(set)  # table -> JSON keys read on its topic
        self.undecodable = 0
        self.dead_letters = 0
        self.caught_up = True
        self.unreadable = ""
        self.last_state: dict[str, Any] = {}
        self._fresh: dict[str, Any] | None = None
        topics = "|".join(map(re.escape, CompactorJob.topics()))
        self.tail = TopicTail(settings, f"({topics})", self._on_message)
        self.dead = TopicTail(settings, re.escape(LAKE_DEAD_LETTER), self._on_dead)

    def _on_message(self, m: Message) -> None:
        tp = f"{m.topic()}:{m.partition()}"
        self.ends[tp] = max(self.ends.get(tp, 0), m.offset() + 1)
        table = APPEND_BY_TOPIC.get(m.topic())
        if table is None:
            self.cdc_keys.add((m.topic(), m.key()))
            return
        try:
            record = decode_append_record(table, m.value())
        except Exception:  # noqa: BLE001 - the compactor dead-letters it
            self.undecodable += 1
            return
        self.append_keys[table.name].add(key_text([record[k] for k in table.key]))

    def _on_dead(self, m: Message) -> None:
        self.dead_letters += 1

    def lagging(self, offsets: dict[str, int]) -> dict[str, int]:
        """Partitions whose recorded position is behind the records read: "topic:partition" -> records behind."""
        return {tp: end - offsets.get(tp, 0) for tp, end in self.ends.items() if offsets.get(tp, 0) < end}

    def catch_up(self, idle_s: float = 2.0, wait_s: float = 180.0) -> None:
        """Read the topics to idleness, then wait (polling the lake's offsets) until the compactor has them all."""
        self.tail.catch_up(idle_s)
        self.dead.catch_up(idle_s)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                # `state` holds the offsets too: once caught up, `tally` uses it (one child process per snapshot).
                self._fresh = probe(self.settings, "state")
                behind = self.lagging(self._fresh["offsets"])
            except RuntimeError as exc:  # the lake unreadable for now (object store away): behind, as far as we know
                behind, self.unreadable = {"lake unreadable": 0}, str(exc)[:300]
            self.caught_up = not behind
            if not behind or time.monotonic() > deadline:
                return
            time.sleep(1.0)

    def tally(self) -> Tally:
        state = self._fresh if self._fresh is not None and self.caught_up else probe(self.settings, "state")
        self.last_state, self._fresh = state, None
        cdc_lost = sum(d["missing"] + d["extra"] + d["different"] for d in state["reconcile"])
        cdc_in = len(self.cdc_keys)
        append_in = append_lost = duplicated = 0
        for name, seen in self.append_keys.items():
            held = state["append"].get(name, {"rows": 0, "keys": []})
            keys = set(held["keys"])
            append_in += len(seen)
            append_lost += len(seen - keys)
            duplicated += held["rows"] - len(keys)
        return Tally(in_=cdc_in + append_in + self.undecodable,
                     out=max(cdc_in - cdc_lost, 0) + append_in - append_lost,
                     dead_lettered=self.dead_letters, lost=cdc_lost + append_lost, duplicated=duplicated)

    def problems(self) -> list[str]:
        """What the last `tally` found wrong (for a failing test's message)."""
        out = [f"reconcile {d['table']}: {d['missing']} missing, {d['extra']} extra, {d['different']} different "
               f"{d['examples']}" for d in self.last_state.get("reconcile", []) if not d["equal"]]
        for name, seen in self.append_keys.items():
            held = self.last_state.get("append", {}).get(name, {"rows": 0, "keys": []})
            keys = set(held["keys"])
            if seen - keys or held["rows"] != len(keys):
                out.append(f"append/{name}: {len(seen - keys)} keys missing (e.g. {sorted(seen - keys)[:2]}), "
                           f"{held['rows'] - len(keys)} doubled rows")
        if not self.caught_up:
            out.append(f"the compactor had not caught up: {self.lagging(self.last_state.get('offsets', {}))} "
                       f"{self.unreadable}")
        return out

    def close(self) -> None:
        self.tail.close()
        self.dead.close()


def missing_keys(ledger: DocumentLedger) -> list[str]:
    return sorted(k for k, ids in ledger.per_object().items() if not ids)


def flatten(items: Iterable[Iterable[Any]]) -> list[Any]:
    return [x for it in items for x in it]
