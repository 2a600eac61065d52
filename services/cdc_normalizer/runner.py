"""The normalizer's hot path: a confluent-kafka batch loop (consume -> normalize -> produce -> flush -> commit).

Faust's per-message agent path costs ~20x more CPU than this loop on our machines (LOCAL-STACK.md), so the Faust
app (app.py) only provides lifecycle, web and metrics, and runs this loop in a worker thread.

Delivery: offsets are committed only after every output of the batch is acknowledged by the broker, so a crash
repeats at most the last batch and loses nothing; repeated records carry the same deterministic event ids.
"""

from __future__ import annotations

import logging
import re

from confluent_kafka import Consumer, Message, TopicPartition

from claims_shared.batch_loop import BatchLoop
from claims_shared.clients.kafka import consumer as make_consumer
from claims_shared.clients.kafka import ensure_topics
from claims_shared.clients.kafka import producer as make_producer
from claims_shared.contracts.cdc import DEAD_LETTER_TOPIC
from claims_shared.contracts.topics import TopicSpec
from claims_shared.settings import PlatformSettings
from services.cdc_normalizer.pipeline import Normalizer, RawMessage

log = logging.getLogger("cdc_normalizer")

GROUP_ID = "cdc-normalizer"
# Output topics keep per-key order: records are keyed by primary key.
OUTPUT_PARTITIONS = 4


def raw_topic_pattern(prefix: str) -> str:
    """Regex subscription to Debezium's table topics `<prefix>.<schema>.<table>` (new tables are picked up)."""
    return rf"^{re.escape(prefix)}\.[^.]+\.[^.]+$"


class NormalizerRunner(BatchLoop):
    def __init__(
        self,
        settings: PlatformSettings,
        normalizer: Normalizer,
        *,
        group_id: str = GROUP_ID,
        batch_size: int = 2000,
        topics: list[str] | None = None,
        consumer_overrides: dict | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.normalizer = normalizer
        self.batch_size = batch_size
        self._known_topics: set[str] = set()
        # Regex subscriptions only see new topics on a metadata refresh (librdkafka default: 5 min).
        overrides = {"topic.metadata.refresh.interval.ms": 5000, **(consumer_overrides or {})}
        self.consumer: Consumer = make_consumer(settings, group_id, **overrides)
        self.producer_factory = lambda: make_producer(settings, **{"linger.ms": 5, "batch.num.messages": 10000})
        self.producer = self.producer_factory()
        self.consumer.subscribe(topics or [raw_topic_pattern(settings.topic_prefix)])

    def run_once(self, timeout_s: float = 1.0) -> int:
        """One batch; returns the number of input messages handled (0 when none arrived)."""
        messages = self.poll(self.batch_size, timeout_s)
        if not messages:
            return 0
        raw = [RawMessage(m.topic(), m.partition(), m.offset(), m.key(), m.value()) for m in messages]
        result = self.normalizer.process_batch(raw)
        outputs = result.outputs + result.dead_letters
        self._ensure_output_topics({o.topic for o in outputs})
        self.produce_acknowledged((o.topic, o.key, o.value, o.headers) for o in outputs)
        self._commit(messages)
        self.counters.update(result.counters)
        self.batch_done()
        return len(raw)

    # -- internals -----------------------------------------------------------------------------------------
    def _commit(self, messages: list[Message]) -> None:
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            last[(m.topic(), m.partition())] = max(last.get((m.topic(), m.partition()), -1), m.offset())
        if last:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False
            )

    def _ensure_output_topics(self, topics: set[str]) -> None:
        new = topics - self._known_topics
        if not new:
            return
        specs = [TopicSpec(t, 1 if t == DEAD_LETTER_TOPIC else OUTPUT_PARTITIONS) for t in new]
        ensure_topics(self.settings, specs)
        self._known_topics |= new
