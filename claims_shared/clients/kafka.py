"""confluent-kafka client factories with settings that behave well on real Kafka and on the local broker."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from claims_shared.contracts.topics import TopicSpec
from claims_shared.settings import PlatformSettings


def producer(settings: PlatformSettings, **overrides: Any) -> Producer:
    """Idempotent producer (no duplicates on retry), batched for throughput."""
    config = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 10,
        "compression.type": "lz4",
    }
    config.update(overrides)
    return Producer(config)


def consumer(settings: PlatformSettings, group_id: str, **overrides: Any) -> Consumer:
    """Consumer that commits only what the caller says is done (no auto commit)."""
    config = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # Faster group joins; the default 45 s session makes rebalances slow on every broker.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1500,
    }
    config.update(overrides)
    return Consumer(config)


def admin(settings: PlatformSettings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


def ensure_topics(settings: PlatformSettings, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Existing topics are left as they are."""
    client = admin(settings)
    existing = set(client.list_topics(timeout=timeout_s).topics)
    missing = [s for s in specs if s.name not in existing]
    if not missing:
        return []
    futures = client.create_topics(
        [NewTopic(s.name, num_partitions=s.partitions, replication_factor=-1, config=s.config) for s in missing],
        request_timeout=timeout_s,
    )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return [s.name for s in missing]


def read_topic_to_idleness(settings: PlatformSettings, topic: str, on_message: Callable[[Message], None], *,
                           idle_s: float = 1.5, max_s: float = 60.0) -> None:
    """Call `on_message` for every record of `topic` from the beginning (skipping empty values), until no record
    arrived for `idle_s` (or `max_s` passed). For recovering state a service published itself.

    Read to idleness, not to the reported end offset, which the local broker gets wrong (LOCAL-STACK.md).
    """
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"recover-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error or not meta.partitions:
            return
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
        deadline, idle_since = time.monotonic() + max_s, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - idle_since < idle_s:
            batch = consumer.consume(1000, timeout=0.3)
            for m in batch:
                if m.error() is None and m.value():
                    on_message(m)
            if batch:
                idle_since = time.monotonic()
    finally:
        consumer.close()
