"""What is on the broker: topics with message counts, consumer groups with lag, and exact per-op counts."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from claims_shared.settings import PlatformSettings


@dataclass(frozen=True)
class TopicCount:
    topic: str
    partitions: int
    messages: int  # end offset - start offset, summed over partitions


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - self.committed, 0)


def _consumer(settings: PlatformSettings) -> Consumer:
    return Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": "claimsctl-inspect",
        "enable.auto.commit": False,
        "socket.timeout.ms": 5000,
    })


def topic_counts(settings: PlatformSettings, include_internal: bool = False) -> list[TopicCount]:
    """Message counts from watermarks. On the local broker the end offset is approximate (LOCAL-STACK.md)."""
    consumer = _consumer(settings)
    try:
        meta = consumer.list_topics(timeout=5)
        out = []
        for name, topic in sorted(meta.topics.items()):
            if name.startswith("__") and not include_internal:
                continue
            total = 0
            for pid in topic.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, pid), timeout=5)
                total += max(high - low, 0)
            out.append(TopicCount(name, len(topic.partitions), total))
        return out
    finally:
        consumer.close()


def group_lags(settings: PlatformSettings) -> list[GroupLag]:
    """Committed offsets per consumer group and topic, against the end offsets."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    listing = admin.list_consumer_groups(request_timeout=5).result()
    groups = [g.group_id for g in listing.valid if g.group_id != "claimsctl-inspect"]
    if not groups:
        return []
    consumer = _consumer(settings)
    out: list[GroupLag] = []
    try:
        for group in groups:
            futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
            result = futures[group].result()
            per_topic: dict[str, list[int]] = {}
            for tp in result.topic_partitions or []:
                if tp.offset < 0:
                    continue
                _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
                committed_end = per_topic.setdefault(tp.topic, [0, 0])
                committed_end[0] += tp.offset
                committed_end[1] += high
            out.extend(GroupLag(group, t, c, e) for t, (c, e) in sorted(per_topic.items()))
    finally:
        consumer.close()
    return out


@dataclass
class OpCounts:
    """Exact counts of Debezium change events per topic and op, read from the start of each topic."""

    by_topic: dict[str, Counter] = field(default_factory=dict)

    def total(self, topic: str) -> int:
        return sum(self.by_topic.get(topic, Counter()).values())


def count_change_events(settings: PlatformSettings, topics: list[str], idle_s: float = 3.0) -> OpCounts:
    """Read `topics` from offset 0 until nothing new arrives for `idle_s` and count events by `op`.

    Reads to idleness rather than to the reported end offset, because the local broker misreports it.
    Tombstones (null values) are counted as op `tombstone` where the client delivers them.
    """
    consumer = _consumer(settings)
    counts = OpCounts()
    assigned: set[str] = set()
    try:
        last = time.monotonic()
        next_metadata = 0.0
        while time.monotonic() - last < idle_s:
            if time.monotonic() >= next_metadata and len(assigned) < len(topics):
                # Topics can appear while we read (a service creates its output topic on first use).
                meta = consumer.list_topics(timeout=5)
                new = [t for t in topics if t in meta.topics and t not in assigned]
                if new:
                    consumer.incremental_assign(
                        [TopicPartition(t, p, 0) for t in new for p in meta.topics[t].partitions]
                    )
                    assigned.update(new)
                    last = time.monotonic()
                next_metadata = time.monotonic() + 1.0
            if not assigned:
                time.sleep(0.2)
                continue
            batch = consumer.consume(1000, timeout=0.5)
            if not batch:
                continue
            last = time.monotonic()
            for msg in batch:
                if msg.error():
                    continue
                op = _op_of(msg.value())
                counts.by_topic.setdefault(msg.topic(), Counter())[op] += 1
        return counts
    finally:
        consumer.close()


def _op_of(value: bytes | None) -> str:
    if not value:
        return "tombstone"
    try:
        doc = json.loads(value)
    except ValueError:
        return "unparseable"
    payload = doc.get("payload", doc) if isinstance(doc, dict) else None
    if isinstance(payload, dict) and "op" in payload:
        return str(payload["op"])
    return "other"
