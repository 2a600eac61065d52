"""Minimal reproduction: what the local broker (Tansu 0.6, log in the S3 store) answers a plain producer while the
object store is away, and whether the producer and the partition are usable again once it is back.

    CLAIMS_TEST_PORT_OFFSET=400 .venv/bin/python -m tests.faults.tansu_outage_repro [--mode pause|stop] [--outage-s 15]

Starts its own SeaweedFS and Tansu (the stack's classes, a temporary state directory, ports 70 above the test
ports). With an idempotent and a plain confluent-kafka producer it produces 20 records before and after the
outage, and one record per producer every 100 ms while the store goes away and comes back. Then it reads the
partition back and prints, per producer and phase, the delivery errors and which records are missing or doubled. `--mode pause` SIGSTOPs SeaweedFS (requests hang), `stop` stops it (the S3 gateway
answers 500 while it shuts down, then the connection is refused).

Findings recorded in README.md (Reliability). The broker answers UNKNOWN_SERVER_ERROR to a produce whose write
to the store fails, or it drops the connection. Neither librdkafka nor the Java producer used by Kafka Connect retries
that error: UnknownServerException is not a RetriableException, so Connect's source task fails. Once the store is
back, the plain producer and a new idempotent one write to the same partition again with no broker restart, and
nothing they had acknowledged is missing. The librdkafka idempotent producer that saw the error is then answered
PRODUCER_FENCED for good.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from claims_shared.settings import PlatformSettings
from claimsctl.stack.broker import EmbeddedBroker
from claimsctl.stack.objectstore import EmbeddedObjectStore
from tests.conftest import shifted_test_ports

REPRO_PORT_SHIFT = 70  # the integration tests use +0, the fault suite +50
TOPIC = "repro.object-store-outage"
PER_PHASE = 20


def repro_settings(state_dir: Path) -> PlatformSettings:
    return PlatformSettings(state_dir=state_dir, **shifted_test_ports(REPRO_PORT_SHIFT))  # type: ignore[arg-type]


class Recorder:
    """Delivery outcome of every record, by producer and phase."""

    def __init__(self) -> None:
        self.errors: dict[tuple[str, str], collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.delivered: dict[tuple[str, str], int] = collections.Counter()
        self.acked: set[str] = set()

    def callback(self, producer: str, phase: str, value: str):  # noqa: ANN201 - librdkafka callback
        def on_delivery(err: KafkaError | None, _msg: object) -> None:
            if err is None:
                self.delivered[(producer, phase)] += 1
                self.acked.add(value)
            else:
                self.errors[(producer, phase)][f"{err.name()} (retriable={err.retriable()}, fatal={err.fatal()})"] += 1
        return on_delivery


def produce_phase(producers: dict[str, Producer], recorder: Recorder, phase: str, sent: list[str]) -> None:
    for name, producer in producers.items():
        for i in range(PER_PHASE):
            value = f"{name}/{phase}/{i}"
            try:
                producer.produce(TOPIC, value.encode(), on_delivery=recorder.callback(name, phase, value))
            except Exception as exc:  # noqa: BLE001 - a fatal producer refuses new records: report it
                recorder.errors[(name, phase)][f"produce() raised {exc}"] += 1
                continue
            sent.append(value)
            producer.poll(0)


def feed(producers: dict[str, Producer], recorder: Recorder, sent: list[str], stop: threading.Event) -> None:
    """One record per producer every 100 ms until `stop`."""
    i = 0
    while not stop.is_set():
        for name, producer in producers.items():
            value = f"{name}/during/{i}"
            try:
                producer.produce(TOPIC, value.encode(), on_delivery=recorder.callback(name, "during", value))
                sent.append(value)
            except Exception as exc:  # noqa: BLE001 - a fatal producer refuses new records: report it
                recorder.errors[(name, "during")][f"produce() raised {exc}"] += 1
            producer.poll(0)
        i += 1
        stop.wait(0.1)


def read_back(bootstrap: str) -> collections.Counter[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"repro-{time.time_ns()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    seen: collections.Counter[str] = collections.Counter()
    idle_until = time.monotonic() + 5
    while time.monotonic() < idle_until:
        for msg in consumer.consume(500, timeout=0.5):
            if msg.error() is None:
                seen[msg.value().decode()] += 1
                idle_until = time.monotonic() + 5
    consumer.close()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("pause", "stop"), default="stop")
    parser.add_argument("--outage-s", type=float, default=15.0)
    parser.add_argument("--keep", action="store_true", help="keep the state directory (logs)")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="tansu-repro-", dir="/tmp"))
    settings = repro_settings(state)
    store, broker = EmbeddedObjectStore(settings), EmbeddedBroker(settings)
    try:
        store.start()
        broker.start()
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        admin.create_topics([NewTopic(TOPIC, num_partitions=1)])[TOPIC].result(30)
        common = {"bootstrap.servers": settings.kafka_bootstrap, "message.timeout.ms": 60_000, "linger.ms": 5}
        producers = {
            "idempotent": Producer({**common, "enable.idempotence": True}),
            "plain": Producer({**common, "enable.idempotence": False, "retries": 0}),
        }
        recorder, sent = Recorder(), []

        produce_phase(producers, recorder, "before", sent)
        for p in producers.values():
            p.flush(30)

        # Records keep coming while the store goes away and comes back, as from Connect under load: some
        # requests are in flight at the moment the store fails.
        print(f"object store away ({args.mode}) for {args.outage_s:.0f} s")
        pid = store.proc.pid()
        assert pid is not None
        stop_feeding = threading.Event()
        feeder = threading.Thread(target=feed, args=(producers, recorder, sent, stop_feeding), daemon=True)
        feeder.start()
        time.sleep(1)
        if args.mode == "pause":
            os.killpg(pid, signal.SIGSTOP)
        else:
            store.stop()
        time.sleep(args.outage_s)
        if args.mode == "pause":
            os.killpg(pid, signal.SIGCONT)
        else:
            store.start()
        print("object store back")
        stop_feeding.set()
        feeder.join()
        for p in producers.values():
            p.flush(90)

        producers["new"] = Producer({**common, "enable.idempotence": True})
        produce_phase(producers, recorder, "after", sent)
        for p in producers.values():
            p.flush(60)

        seen = read_back(settings.kafka_bootstrap)
        print(f"\n{'producer':<11} {'phase':<7} {'sent':>4} {'acked':>5} {'stored':>6} {'doubled':>7}  errors")
        for name in producers:
            for phase in ("before", "during", "after"):
                values = [v for v in sent if v.startswith(f"{name}/{phase}/")]
                if not values:
                    continue
                stored = sum(1 for v in values if seen[v])
                doubled = sum(1 for v in values if seen[v] > 1)
                errors = dict(recorder.errors[(name, phase)]) or "-"
                print(f"{name:<11} {phase:<7} {len(values):>4} {recorder.delivered[(name, phase)]:>5} {stored:>6} "
                      f"{doubled:>7}  {errors}")
        acked_lost = [v for v in sent if v in recorder.acked and not seen[v]]
        print(f"\nacknowledged but not stored: {len(acked_lost)} {acked_lost[:10]}")
        print(f"broker log: {broker.proc.logfile}")
    finally:
        broker.stop()
        store.stop()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"state kept in {state}")


if __name__ == "__main__":
    main()
