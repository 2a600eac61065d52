"""confluent-kafka client factories with settings that behave well on real Kafka and on the local broker."""

from __future__ import annotations

from typing import Any

from typing import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
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
