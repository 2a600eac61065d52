"""Telematics benchmark: replay path and numpy pass in process, and the service end to end through a broker.

- replay_rps / numpy_rps: bench/telematics/replay.py's `measure_replay` (one core, same batch, same run).
- service_rps: a private in-memory broker, N simulated readings (Avro, keyed by vehicle) loaded into
  `telematics.readings.v1`, then `python -m services.telematics_scorer` pinned to CPU 0; the rate is readings
  consumed over the wall-clock window of the service's own batches (from its /metrics).
Ends with: BENCH telematics replay_rps=<n> numpy_rps=<n> ratio=<replay/numpy> service_rps=<n>
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from confluent_kafka import Producer

from bench.telematics.replay import measure_replay, simulated_readings
from bench.service_run import service_throughput
from claims_shared.clients.kafka import ensure_topics
from claims_shared.contracts.avro import SCHEMA_HEADER, encode
from claims_shared.contracts.topics import TELEMATICS_READINGS, TopicSpec
from claims_shared.settings import PlatformSettings
from claimsctl.stack.broker import EmbeddedBroker


def load_readings(settings: PlatformSettings, count: int) -> None:
    ensure_topics(settings, [TopicSpec(TELEMATICS_READINGS, 4)])
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20,
                         "compression.type": "lz4", "batch.num.messages": 10000})
    headers = [(SCHEMA_HEADER, b"telematics_reading.v1")]
    for r in simulated_readings(count):
        value = encode("telematics_reading.v1", r)
        while True:
            try:
                producer.produce(TELEMATICS_READINGS, value, r["vehicle_id"].encode(), headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush(120)


def run_service(settings: PlatformSettings, count: int) -> tuple[float, dict]:
    eps, metrics = service_throughput(settings, "services.telematics_scorer", settings.scorer_web_port, count)
    return eps, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="readings for the replay/numpy measurement")
    parser.add_argument("--service-rows", type=int, default=200_000, help="readings through the broker")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--port", type=int, default=29692)
    args = parser.parse_args()

    r = measure_replay(args.rows, repeats=args.repeats)
    print(f"replay: {r['readings']} readings, {r['vehicles']} vehicles, {r['trips']} trips, {r['events']} events")
    state = Path(tempfile.mkdtemp(prefix="bench-telematics-"))
    settings = PlatformSettings(state_dir=state, kafka_bootstrap=f"127.0.0.1:{args.port}", broker_storage="memory",
                                scorer_web_port=args.port + 1)
    broker = EmbeddedBroker(settings)
    broker.start()
    try:
        print(f"loading {args.service_rows} readings into a private broker ...", flush=True)
        load_readings(settings, args.service_rows)
        service_rps, metrics = run_service(settings, args.service_rows)
    finally:
        broker.stop()
        shutil.rmtree(state, ignore_errors=True)
    print(f"{'path':<34}{'readings/s':>14}")
    for label, value in (("replay (score_readings)", r["replay_rps"]), ("replay incl. CSV + JSON", r["replay_csv_rps"]),
                         ("numpy pass (maths only)", r["numpy_rps"]), ("service through the broker", service_rps)):
        print(f"{label:<34}{value:>14,.0f}")
    print(f"service: {metrics.get('trips', 0)} trips, {metrics.get('events', 0)} events, "
          f"{metrics.get('dead_lettered', 0)} dead-lettered, {metrics.get('open_trips', 0)} trips still open")
    print(f"BENCH telematics replay_rps={r['replay_rps']:.0f} numpy_rps={r['numpy_rps']:.0f} "
          f"ratio={r['ratio']:.2f} service_rps={service_rps:.0f}")


if __name__ == "__main__":
    main()
