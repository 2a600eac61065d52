"""BatchLoop's health: an idle loop whose broker is gone must say so (consume() alone returns nothing, no error)."""

from __future__ import annotations

import threading

from confluent_kafka import KafkaError, KafkaException

import claims_shared.batch_loop as batch_loop
from claims_shared.batch_loop import BatchLoop


class _Consumer:
    def __init__(self) -> None:
        self.broker_up = True

    def list_topics(self, timeout: float) -> object:
        if not self.broker_up:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata"))
        return object()

    def assignment(self) -> list:
        return []


class _IdleLoop(BatchLoop):
    def __init__(self, stop: threading.Event, script: list[bool]) -> None:
        super().__init__()
        self.consumer = _Consumer()  # type: ignore[assignment]
        self.stop, self.script, self.seen = stop, script, []

    def run_once(self, timeout_s: float = 1.0) -> int:
        if not self.script:
            self.stop.set()
            return 0
        self.consumer.broker_up = self.script.pop(0)
        return 0


def test_idle_loop_reports_unhealthy_while_the_broker_is_unreachable_and_healthy_after(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(batch_loop, "BROKER_PROBE_IDLE_S", 0.0)
    stop = threading.Event()
    health = []
    loop = _IdleLoop(stop, [True, False, False, True])
    loop.run(stop, on_batch=lambda _: health.append(loop.healthy))
    assert health[:4] == [True, False, False, True]
    assert loop.counters["broker_unreachable"] == 2


class _FencedProducer:
    def produce(self, topic: str, value: bytes, key: bytes | None, headers: list, on_delivery) -> None:  # noqa: ANN001
        self.callback = on_delivery

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.callback(KafkaError(KafkaError.PRODUCER_FENCED, "fenced", fatal=True), None)
        return 0


class _ProducingLoop(BatchLoop):
    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.consumer = _Consumer()  # type: ignore[assignment]
        self.made = 0
        self.producer_factory = self._make
        self.producer = self._make()
        self.stop = stop

    def _make(self) -> _FencedProducer:
        self.made += 1
        return _FencedProducer()

    def run_once(self, timeout_s: float = 1.0) -> int:
        if self.made >= 3:
            self.stop.set()
            return 0
        self.produce_acknowledged([("t", b"k", b"v", [])])
        return 1


def test_a_fatally_failed_producer_is_replaced_instead_of_retried_forever(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(threading.Event, "wait", lambda self, timeout=None: self.is_set())
    stop = threading.Event()
    loop = _ProducingLoop(stop)
    loop.run(stop)
    assert loop.made == 3 and loop.counters["producer_renewed"] == 2


class _RewindConsumer:
    """Committed offsets are unreadable while `broker_down_calls` lasts (the broker that failed the batch)."""

    def __init__(self, broker_down_calls: int) -> None:
        self.broker_down_calls = broker_down_calls
        self.seeks: list[tuple[str, int, int]] = []

    def assignment(self) -> list:
        from confluent_kafka import TopicPartition

        return [TopicPartition("claims_db.public.customers", 0)]

    def committed(self, partitions: list, timeout: float) -> list:
        from confluent_kafka import TopicPartition

        if self.broker_down_calls > 0:
            self.broker_down_calls -= 1
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to get committed offsets"))
        return [TopicPartition(tp.topic, tp.partition, 40) for tp in partitions]

    def seek(self, tp) -> None:  # noqa: ANN001
        self.seeks.append((tp.topic, tp.partition, tp.offset))


class _FailingOnceLoop(BatchLoop):
    """First batch fails (its outputs were not acknowledged); every later batch records what it saw."""

    def __init__(self, stop: threading.Event, broker_down_calls: int) -> None:
        super().__init__()
        self.consumer = _RewindConsumer(broker_down_calls)  # type: ignore[assignment]
        self.stop, self.calls = stop, []

    def run_once(self, timeout_s: float = 1.0) -> int:
        self.calls.append(list(self.consumer.seeks))
        if len(self.calls) == 1:
            raise batch_loop.DeliveryFailed("1 outputs unacknowledged; batch not committed")
        self.stop.set()
        return 1


def test_a_failed_batch_is_never_skipped_when_the_committed_offsets_cannot_be_read_at_once(monkeypatch) -> None:  # noqa: ANN001
    # Found by `kill -9 broker`: the rewind after the failed batch could not read the committed offsets (the broker
    # was gone), the loop consumed on from where the failed batch had left the consumer, and the next commit skipped
    # the failed batch's records. Now nothing is consumed before the rewind succeeded.
    monkeypatch.setattr(threading.Event, "wait", lambda self, timeout=None: self.is_set())
    stop = threading.Event()
    loop = _FailingOnceLoop(stop, broker_down_calls=3)
    loop.run(stop)
    assert len(loop.calls) == 2, "consumed again before the rewind"
    assert loop.calls[1] == [("claims_db.public.customers", 0, 40)]
    assert loop.counters["retries"] == 4  # the failed batch, then three failed rewinds


class _SlowAckProducer:
    """The broker acknowledges nothing for `silent_flushes` flush calls (an outage), then everything."""

    def __init__(self, loop: BatchLoop, silent_flushes: int) -> None:
        self.loop, self.silent_flushes = loop, silent_flushes
        self.health_while_waiting: list[bool] = []

    def produce(self, topic: str, value: bytes, key: bytes | None, headers: list, on_delivery) -> None:  # noqa: ANN001
        pass

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        self.health_while_waiting.append(self.loop.healthy)
        if self.silent_flushes > 0:
            self.silent_flushes -= 1
            return 1
        return 0


class _OneBatchLoop(BatchLoop):
    def __init__(self, stop: threading.Event, silent_flushes: int) -> None:
        super().__init__()
        self.consumer = _Consumer()  # type: ignore[assignment]
        self.producer = _SlowAckProducer(self, silent_flushes)  # type: ignore[assignment]
        self.stop, self.batches = stop, 0

    def run_once(self, timeout_s: float = 1.0) -> int:
        if self.batches:
            self.stop.set()
            return 0
        self.produce_acknowledged([("t", b"k", b"v", [])])
        self.batches += 1
        return 1


def test_a_batch_waiting_on_broker_acknowledgements_reports_unhealthy_then_healthy_once_done(monkeypatch) -> None:  # noqa: ANN001
    # Found by the 30 s broker outage fault: the normalizer spent the whole outage inside one flush and
    # `claimsctl status` said healthy throughout.
    monkeypatch.setattr(batch_loop, "ACK_SLOW_S", 0.0)
    stop = threading.Event()
    health: list[bool] = []
    loop = _OneBatchLoop(stop, silent_flushes=3)
    loop.run(stop, on_batch=lambda _: health.append(loop.healthy))
    assert loop.producer.health_while_waiting == [True, False, False, False]
    assert "has not acknowledged 1 outputs" in loop.last_error
    assert health[0] is True  # the batch completed: healthy again
    assert loop.counters["retries"] == 0
