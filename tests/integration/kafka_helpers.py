"""Reading topics in integration tests: from offset 0, until a condition holds, failing clearly on timeout."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, TypeVar

from confluent_kafka import Consumer, Message, TopicPartition

from claims_shared.settings import PlatformSettings

T = TypeVar("T")


def read_topic(
    settings: PlatformSettings,
    topic: str,
    *,
    until: Callable[[list[T]], bool],
    decode: Callable[[Message], T | None],
    timeout_s: float = 60.0,
    settle_s: float = 0.0,
) -> list[T]:
    """Every non-tombstone message of `topic` (all partitions, from the start), decoded; `decode` may return None
    to drop a message. Returns once `until(items)` holds and `settle_s` more seconds passed (to catch extras that
    must not be there). Waits for the topic to exist; raises AssertionError on timeout."""
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + timeout_s
        items: list[Any] = []
        assigned = False
        satisfied_at: float | None = None
        while time.monotonic() < deadline:
            if not assigned:
                meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
                if meta is None or meta.error or not meta.partitions:
                    time.sleep(0.5)
                    continue
                consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
                assigned = True
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() or not msg.value():
                    continue
                item = decode(msg)
                if item is not None:
                    items.append(item)
            if satisfied_at is None and until(items):
                satisfied_at = time.monotonic()
            if satisfied_at is not None and time.monotonic() - satisfied_at >= settle_s:
                return items
        raise AssertionError(f"timed out after {timeout_s:.0f}s on {topic} with {len(items)} items")
    finally:
        consumer.close()
