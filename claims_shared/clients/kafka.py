"""confluent-kafka client factories with settings that behave well on real Kafka and on the local broker."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

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
