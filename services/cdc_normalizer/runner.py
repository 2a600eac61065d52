"""The normalizer's hot path: a confluent-kafka batch loop (consume -> normalize -> produce -> flush -> commit).

Faust's per-message agent path costs ~20x more CPU than this loop on our machines (LOCAL-STACK.md), so the Faust
app (app.py) only provides lifecycle, web and metrics, and runs this loop in a worker thread.

Delivery: offsets are committed only after every output of the batch is acknowledged by the broker, so a crash
repeats at most the last batch and loses nothing; repeated records carry the same deterministic event ids.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from claims_shared.clients.kafka import consumer as make_consumer
from claims_shared.clients.kafka import ensure_topics
from claims_shared.clients.kafka import producer as make_producer
from claims_shared.contracts.cdc import DEAD_LETTER_TOPIC
from claims_shared.contracts.topics import TopicSpec
from claims_shared.settings import PlatformSettings
from services.cdc_normalizer.pipeline import Normalizer, OutputMessage, RawMessage

log = logging.getLogger("cdc_normalizer")

GROUP_ID = "cdc-normalizer"
# Output topics keep per-key order: records are keyed by primary key.
OUTPUT_PARTITIONS = 4


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge every output of a batch; the batch is not committed and will be retried."""


def raw_topic_pattern(prefix: str) -> str:
    """Regex subscription to Debezium's table topics `<prefix>.<schema>.<table>` (new tables are picked up)."""
    return rf"^{re.escape(prefix)}\.[^.]+\.[^.]+$"


class NormalizerRunner:
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
        self.settings = settings
        self.normalizer = normalizer
        self.batch_size = batch_size
        self.counters: Counter = Counter()
        self.healthy = True
        self.last_error = ""
        self._known_topics: set[str] = set()
        self._delivery_errors: list[str] = []
        # Wall-clock bounds of the work done, for throughput figures in /metrics (benchmarks, dashboards).
        self.first_message_at: float | None = None
        self.last_batch_done_at: float | None = None
        # Regex subscriptions only see new topics on a metadata refresh (librdkafka default: 5 min).
        overrides = {"topic.metadata.refresh.interval.ms": 5000, **(consumer_overrides or {})}
        self.consumer: Consumer = make_consumer(settings, group_id, **overrides)
        self.producer: Producer = make_producer(settings, **{"linger.ms": 5, "batch.num.messages": 10000})
        self.consumer.subscribe(topics or [raw_topic_pattern(settings.topic_prefix)])

    def run(self, stop: threading.Event, on_batch: Callable[[Counter], None] | None = None) -> None:
        """Process batches until `stop` is set. Broker trouble is retried with backoff, never fatal."""
        backoff = 0.5
        while not stop.is_set():
            try:
                self.run_once(timeout_s=0.5)
                self.healthy, backoff = True, 0.5
                if on_batch:
                    on_batch(self.counters)
            except (KafkaException, DeliveryFailed) as exc:
                self.healthy, self.last_error = False, str(exc)
                self.counters["retries"] += 1
                log.warning("batch failed, retrying in %.1fs: %s", backoff, exc)
                self._rewind_to_committed()
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def run_once(self, timeout_s: float = 1.0) -> int:
        """One batch; returns the number of input messages handled (0 when none arrived)."""
        messages = self.consumer.consume(self.batch_size, timeout=timeout_s)
        if not messages:
            return 0
        raw: list[RawMessage] = []
        for m in messages:
            err = m.error()
            if err is not None:
                # Not failures: the end of a partition, or a subscription pattern no topic matches yet.
                if err.code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    raise KafkaException(err)
                continue
            raw.append(RawMessage(m.topic(), m.partition(), m.offset(), m.key(), m.value()))
        if not raw:
            return 0
        if self.first_message_at is None:
            self.first_message_at = time.time()
        result = self.normalizer.process_batch(raw)
        self._produce(result.outputs + result.dead_letters)
        self._commit(messages)
        self.counters.update(result.counters)
        self.counters["batches"] += 1
        self.last_batch_done_at = time.time()
        return len(raw)

    def metrics(self) -> dict[str, float | int | str | None]:
        """Counters plus the wall-clock window they cover."""
        return {**self.counters, "first_message_at": self.first_message_at,
                "last_batch_done_at": self.last_batch_done_at, "healthy": self.healthy}

    def close(self) -> None:
        self.producer.flush(10)
        self.consumer.close()

    # -- internals -----------------------------------------------------------------------------------------
    def _produce(self, outputs: list[OutputMessage]) -> None:
        self._ensure_output_topics({o.topic for o in outputs})
        self._delivery_errors.clear()
        for out in outputs:
            while True:
                try:
                    self.producer.produce(out.topic, out.value, out.key, headers=out.headers,
                                          on_delivery=self._on_delivery)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self.producer.poll(0.1)
        remaining = self.producer.flush(60)
        if remaining or self._delivery_errors:
            raise DeliveryFailed(
                f"{remaining} outputs unacknowledged, {len(self._delivery_errors)} failed "
                f"({'; '.join(self._delivery_errors[:3])}); batch not committed"
            )

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(str(err))

    def _commit(self, messages: list[Message]) -> None:
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            if m.error() is None:
                last[(m.topic(), m.partition())] = max(last.get((m.topic(), m.partition()), -1), m.offset())
        if last:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False
            )

    def _rewind_to_committed(self) -> None:
        """After a failed batch, re-read from the last committed offsets (the batch was not committed)."""
        try:
            assignment = self.consumer.assignment()
            if not assignment:
                return
            for tp in self.consumer.committed(assignment, timeout=10):
                self.consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))
        except KafkaException as exc:
            log.warning("could not rewind to committed offsets: %s", exc)

    def _ensure_output_topics(self, topics: set[str]) -> None:
        new = topics - self._known_topics
        if not new:
            return
        specs = [TopicSpec(t, 1 if t == DEAD_LETTER_TOPIC else OUTPUT_PARTITIONS) for t in new]
        ensure_topics(self.settings, specs)
        self._known_topics |= new


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False
