"""The stream services' shared hot path: a confluent-kafka batch loop hosted by a Faust app.

Faust's per-message agent path costs ~20x more CPU than a plain batch loop here (LOCAL-STACK.md), so each service
runs a `BatchLoop` subclass (consume -> process -> produce -> wait for acks -> commit) in a worker thread, and Faust
provides lifecycle, `/health` and `/metrics` (`serve_batch_loop`). A subclass implements `run_once`; retries with
backoff, benign consumer errors, acknowledged produce and rewinding after a failed batch live here, once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from typing import Any, Callable, Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

log = logging.getLogger("claims.batch_loop")

# Consumer "errors" that are not failures: the end of a partition, a subscription pattern no topic matches yet.
BENIGN_CONSUMER_ERRORS = (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART)

Output = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers

# With every broker down, librdkafka's consume() returns nothing and raises nothing (it reconnects in the
# background), so an idle loop cannot tell "no input" from "no broker". After this long without input the loop asks
# the broker for metadata, and reports itself unhealthy (/health, `claimsctl status`) while that fails.
BROKER_PROBE_IDLE_S = 5.0
# A batch waits up to ACK_TIMEOUT_S for the broker to acknowledge its outputs (then it is retried). While it waits it
# is not idle, so the probe above does not run: after ACK_SLOW_S without every acknowledgement the loop reports
# itself unhealthy (found by tests/faults: a 30 s broker outage spent inside one flush looked healthy throughout).
ACK_TIMEOUT_S = 60.0
ACK_SLOW_S = 5.0


class RetryableBatchError(RuntimeError):
    """A batch failed for a reason outside the records (a dependency is down or slow); it is not committed and is
    retried with backoff. Raise a subclass from `run_once` for transient trouble with an object store, an API..."""


class DeliveryFailed(RetryableBatchError):
    """The broker did not acknowledge every output of a batch; the batch is not committed and will be retried."""


class BatchLoop:
    """Base of a service's batch loop. Subclasses set `consumer`, `producer` and implement `run_once`."""

    consumer: Consumer
    producer: Producer
    # Makes the producer again after a fatal error (subclasses set it next to `producer`): librdkafka's fatal
    # errors (e.g. PRODUCER_FENCED, which the local broker returned to every idempotent producer after its object
    # store had been away, found by tests/faults) poison the instance for good; only a new one can produce again.
    producer_factory: Callable[[], Producer] | None = None

    def __init__(self) -> None:
        self.counters: Counter = Counter()
        self.healthy = True
        self.last_error = ""
        # Wall-clock bounds of the work done, for throughput figures in /metrics (benchmarks, dashboards).
        self.first_message_at: float | None = None
        self.last_batch_done_at: float | None = None
        self._delivery_errors: list[str] = []
        self._producer_fatal = False

    def run_once(self, timeout_s: float = 1.0) -> int:
        """One batch; returns the number of input messages handled (0 when none arrived)."""
        raise NotImplementedError

    def rewind_to_committed(self) -> None:
        """After a failed batch (not committed): re-read from the committed offsets. Subclasses holding state
        about uncommitted input drop it first, then call this.

        Raises KafkaException when the committed offsets cannot be read (the broker is often what failed the
        batch): the loop must then not consume on from where the failed batch left the consumer, or the next
        batch's commit would skip the failed one's records. `run` retries the rewind before anything else."""
        assignment = self.consumer.assignment()
        if not assignment:
            return
        for tp in self.consumer.committed(assignment, timeout=10):
            if tp.error is not None:
                raise KafkaException(tp.error)
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))

    def run(self, stop: threading.Event, on_batch: Callable[[Counter], None] | None = None) -> None:
        """Process batches until `stop` is set. Broker trouble is retried with backoff, never fatal."""
        backoff = 0.5
        last_probe = time.monotonic()
        rewind_pending = False
        while not stop.is_set():
            try:
                if rewind_pending:  # a failed batch: nothing is consumed before the rewind succeeded
                    self.rewind_to_committed()
                    rewind_pending = False
                handled = self.run_once(timeout_s=0.5)
                now = time.monotonic()
                if handled:
                    self.healthy, backoff, last_probe = True, 0.5, now
                elif now - last_probe >= BROKER_PROBE_IDLE_S:
                    last_probe = now
                    problem = self.broker_problem()
                    if problem:
                        if self.healthy:
                            log.warning("%s", problem)
                        self.healthy, self.last_error = False, problem
                        self.counters["broker_unreachable"] += 1
                    else:
                        self.healthy, backoff = True, 0.5
                if on_batch:
                    on_batch(self.counters)
            except (KafkaException, RetryableBatchError) as exc:
                self.healthy, self.last_error = False, str(exc)
                self.counters["retries"] += 1
                log.warning("batch failed, retrying in %.1fs: %s", backoff, exc)
                if self._producer_fatal and self.producer_factory is not None:
                    log.warning("producer hit a fatal error: replacing it with a new instance")
                    self.producer = self.producer_factory()
                    self._producer_fatal = False
                    self.counters["producer_renewed"] += 1
                rewind_pending = True
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def broker_problem(self, timeout_s: float = 3.0) -> str | None:
        """None when the broker answers a metadata request, else why not (see BROKER_PROBE_IDLE_S)."""
        try:
            self.consumer.list_topics(timeout=timeout_s)
            return None
        except KafkaException as exc:
            return f"broker unreachable (retrying in the background): {exc.args[0] if exc.args else exc}"

    def poll(self, batch_size: int, timeout_s: float) -> list[Message]:
        """Consume up to `batch_size` messages; drops benign error events, raises on real ones."""
        # consume(n, t) waits until n records or all of t: with a trickle of input every batch would wait the
        # whole timeout (latency). Take what is fetched already, else wake on the first record; then top the batch
        # up for at most 20 ms (at high rates it fills at once, so batches stay large).
        messages = self.consumer.consume(batch_size, timeout=0)
        if not messages:
            first = self.consumer.poll(timeout_s)
            messages = [] if first is None else [first]
        if messages and len(messages) < batch_size:
            messages += self.consumer.consume(batch_size - len(messages), timeout=0.02)
        good = []
        for m in messages:
            err = m.error()
            if err is None:
                good.append(m)
            elif err.code() not in BENIGN_CONSUMER_ERRORS:
                raise KafkaException(err)
        if good and self.first_message_at is None:
            self.first_message_at = time.time()
        return good

    def produce_acknowledged(self, outputs: Iterable[Output]) -> None:
        """Produce every output and wait until the broker acknowledged all of them; raises DeliveryFailed if not."""
        self._delivery_errors.clear()
        for topic, key, value, headers in outputs:
            while True:
                try:
                    self.producer.produce(topic, value, key, headers=headers, on_delivery=self._on_delivery)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self.producer.poll(0.1)
        remaining = self._await_acknowledgements()
        if remaining or self._delivery_errors:
            raise DeliveryFailed(
                f"{remaining} outputs unacknowledged, {len(self._delivery_errors)} failed "
                f"({'; '.join(self._delivery_errors[:3])}); batch not committed"
            )

    def _await_acknowledgements(self) -> int:
        """Flush in slices up to ACK_TIMEOUT_S; returns the outputs still unacknowledged. Marks the loop unhealthy
        once the wait passes ACK_SLOW_S (`run` marks it healthy again when a batch completes)."""
        started = time.monotonic()
        remaining = self.producer.flush(min(ACK_SLOW_S, ACK_TIMEOUT_S))
        while remaining and (waited := time.monotonic() - started) < ACK_TIMEOUT_S:
            if waited >= ACK_SLOW_S and self.healthy:
                problem = (f"broker has not acknowledged {remaining} outputs for {waited:.0f}s "
                           f"(waiting up to {ACK_TIMEOUT_S:.0f}s, then the batch is retried)")
                log.warning("%s", problem)
                self.healthy, self.last_error = False, problem
            remaining = self.producer.flush(min(1.0, ACK_TIMEOUT_S - waited))
        return remaining

    def batch_done(self) -> None:
        self.counters["batches"] += 1
        self.last_batch_done_at = time.time()

    def metrics(self) -> dict[str, Any]:
        """Counters plus the wall-clock window they cover."""
        return {**self.counters, "first_message_at": self.first_message_at,
                "last_batch_done_at": self.last_batch_done_at, "healthy": self.healthy}

    def close(self) -> None:
        self.producer.flush(10)
        self.consumer.close()

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._delivery_errors.append(str(err))
            if err.fatal() or err.code() == KafkaError.PRODUCER_FENCED:
                self._producer_fatal = True


def serve_batch_loop(app: Any, make_loop: Callable[[], BatchLoop],
                     extra_metrics: Callable[[], dict[str, Any]] = dict,
                     *, side_loops: dict[str, Callable[[], BatchLoop]] | None = None) -> None:
    """Run the loop built by `make_loop` (and any `side_loops`) in worker threads of Faust `app`, with `/health`
    and `/metrics` pages. `/metrics` shows the main loop's figures at the top level and each side loop's under its
    name; `/health` is healthy when every loop is.

    On shutdown Faust cancels the tasks; each thread then finishes its batch (outputs acknowledged, offsets
    committed) and exits.
    """
    factories = {"": make_loop, **(side_loops or {})}
    state: dict[str, BatchLoop | None] = {name: None for name in factories}

    def add_task(name: str, factory: Callable[[], BatchLoop]) -> None:
        async def run_batch_loop() -> None:
            stop = threading.Event()

            def work() -> None:
                loop = factory()
                state[name] = loop
                try:
                    loop.run(stop)
                finally:
                    loop.close()

            try:
                await asyncio.get_running_loop().run_in_executor(None, work)
            except asyncio.CancelledError:
                stop.set()
                raise

        run_batch_loop.__name__ = run_batch_loop.__qualname__ = f"run_batch_loop_{name or 'main'}".replace("-", "_")
        app.task(run_batch_loop)

    for name, factory in factories.items():
        add_task(name, factory)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        problems = {name or "main": (loop.last_error if loop else "starting") for name, loop in state.items()
                    if loop is None or not loop.healthy}
        return web.json({"healthy": not problems, "last_error": "; ".join(f"{k}: {v}" for k, v in problems.items())},
                        status=200 if not problems else 503)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        main = state[""]
        side = {name: (loop.metrics() if loop else {}) for name, loop in state.items() if name}
        return web.json({**(main.metrics() if main else {}), **side, **extra_metrics()})


class StateFromTopicsLoop(BatchLoop):
    """A batch loop whose state is its input topics: every partition of `input_topics` is assigned from the
    beginning (no group, no commits), so a restart rebuilds the state by reading them again. `caught_up` turns true
    once every partition reached its end once: decisions that need the whole picture wait for it. Topics that
    appear later are picked up every `refresh_s`. Subclasses set `consumer` (with `enable.partition.eof`),
    `input_topics` and `batch_size`, and read with `poll_inputs`.
    """

    input_topics: tuple[str, ...]
    batch_size: int
    refresh_s = 5.0

    def __init__(self) -> None:
        super().__init__()
        self._assigned: set[tuple[str, int]] = set()
        self._not_yet_at_end: set[tuple[str, int]] = set()
        self._next_refresh = 0.0

    @property
    def caught_up(self) -> bool:
        return bool(self._assigned) and not self._not_yet_at_end

    def rewind_to_committed(self) -> None:
        """Nothing to rewind: applied inputs stay applied; subclasses keep undecided work pending."""

    def poll_inputs(self, timeout_s: float) -> list[Message]:
        """Assign new partitions when due, then consume up to `batch_size` records (end-of-partition noted)."""
        if time.monotonic() >= self._next_refresh:
            self._assign_new_partitions()
        if not self._assigned:
            time.sleep(min(timeout_s, 0.5))
            return []
        good = []
        for m in self.consumer.consume(self.batch_size, timeout=timeout_s):
            err = m.error()
            if err is None:
                good.append(m)
            elif err.code() == KafkaError._PARTITION_EOF:
                self._not_yet_at_end.discard((m.topic(), m.partition()))
            elif err.code() not in BENIGN_CONSUMER_ERRORS:
                raise KafkaException(err)
        if good and self.first_message_at is None:
            self.first_message_at = time.time()
        return good

    def _assign_new_partitions(self) -> None:
        self._next_refresh = time.monotonic() + self.refresh_s
        metadata = self.consumer.list_topics(timeout=10)
        new = []
        for topic in self.input_topics:
            meta = metadata.topics.get(topic)
            if meta is None or meta.error is not None:
                continue
            new += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions
                    if (topic, p) not in self._assigned]
        if new:
            self.consumer.incremental_assign(new)
            for tp in new:
                self._assigned.add((tp.topic, tp.partition))
                self._not_yet_at_end.add((tp.topic, tp.partition))
