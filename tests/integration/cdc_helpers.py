"""Helpers for CDC tests: write claims with psycopg, read Debezium events from the broker."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import psycopg
from confluent_kafka import Consumer, TopicPartition

from claims_shared.settings import PlatformSettings


@dataclass(frozen=True)
class ChangeEvent:
    op: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    key: dict[str, Any]
    offset: int
    value_schema: dict[str, Any]

    def decimal(self, image: str, column: str) -> Decimal:
        """Decode a Connect Decimal (base64 unscaled bytes; scale in the schema)."""
        row = self.before if image == "before" else self.after
        assert row is not None
        raw = base64.b64decode(row[column])
        scale = int(_field_schema(self.value_schema, image, column)["parameters"]["scale"])
        return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)


def _field_schema(value_schema: dict[str, Any], image: str, column: str) -> dict[str, Any]:
    image_schema = next(f for f in value_schema["fields"] if f["field"] == image)
    return next(f for f in image_schema["fields"] if f["field"] == column)


def insert_claim(settings: PlatformSettings, *, status: str = "fnol", amount: str = "1234.50") -> str:
    """Insert a customer, policy, vehicle and one claim; returns the claim_id."""
    tag = uuid.uuid4().hex[:10]
    with psycopg.connect(settings.pg_dsn) as conn:
        customer = conn.execute(
            "INSERT INTO customers (full_name, date_of_birth, email, national_id) "
            "VALUES ('Test Person', '1980-02-29', %s, %s) RETURNING customer_id",
            (f"{tag}@example.org", f"NID-{tag}"),
        ).fetchone()[0]
        policy = conn.execute(
            "INSERT INTO policies (policy_number, customer_id, product, inception_date, expiry_date, "
            "sum_insured, annual_premium) VALUES (%s, %s, 'motor_comprehensive', '2026-01-01', '2027-01-01', "
            "25000, 612.40) RETURNING policy_id",
            (f"POL-T-{tag}", customer),
        ).fetchone()[0]
        claim = conn.execute(
            "INSERT INTO claims (claim_number, policy_id, status, loss_time, loss_lat, loss_lon, loss_type, "
            "claimed_amount, sla_due_at, details, tags) VALUES (%s, %s, %s, '2026-11-20T08:15:00Z', 48.85, 2.35, "
            "'collision', %s, now() + interval '5 days', '{\"weather\": \"rain\"}', '{urgent}') RETURNING claim_id",
            (f"CLM-T-{tag}", policy, status, Decimal(amount)),
        ).fetchone()[0]
    return str(claim)


def execute(settings: PlatformSettings, sql: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute(sql, params)


def read_events(
    settings: PlatformSettings,
    topic: str,
    *,
    match: Callable[[ChangeEvent], bool],
    until: Callable[[list[ChangeEvent]], bool],
    timeout_s: float = 60.0,
    settle_s: float = 0.0,
) -> list[ChangeEvent]:
    """Read `topic` from the start; collect matching events until `until(events)` holds, then keep reading
    `settle_s` more seconds (to catch duplicates that must not be there). Fails on timeout."""
    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": f"test-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
    })
    try:
        deadline = time.monotonic() + timeout_s
        partitions: list[int] = []
        while not partitions and time.monotonic() < deadline:
            meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
            partitions = list(meta.partitions) if meta and not meta.error else []
            if not partitions:
                time.sleep(0.5)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        events: list[ChangeEvent] = []
        satisfied_at: float | None = None
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() or not msg.value():
                    continue
                event = _parse(msg.key(), msg.value(), msg.offset())
                if event and match(event):
                    events.append(event)
            if satisfied_at is None and until(events):
                satisfied_at = time.monotonic()
            if satisfied_at is not None and time.monotonic() - satisfied_at >= settle_s:
                return events
        raise AssertionError(f"timed out after {timeout_s}s waiting on {topic}; got ops {[e.op for e in events]}")
    finally:
        consumer.close()


def _parse(key: bytes | None, value: bytes, offset: int) -> ChangeEvent | None:
    doc = json.loads(value)
    payload = doc.get("payload")
    if not isinstance(payload, dict) or "op" not in payload:
        return None
    key_payload = json.loads(key)["payload"] if key else {}
    return ChangeEvent(payload["op"], payload.get("before"), payload.get("after"), key_payload, offset, doc["schema"])


def claim_id_of(event: ChangeEvent) -> str | None:
    return event.key.get("claim_id")
