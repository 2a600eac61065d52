"""Normalizer benchmark: the Faust service vs a plain confluent-kafka loop on the same input, one core each.

Starts a private in-memory broker, loads N real-shaped Debezium envelopes (a `claims` change with its Connect
schema, captured from the embedded stack), then runs, each pinned to CPU 0 in its own process:
  plain   - bench/normalizer/plain_loop.py (consume -> orjson decode -> reshape -> produce -> commit)
  service - `python -m services.cdc_normalizer` (full decode, PII, Avro, DLQ, same commit discipline)
and the in-process decode-only cost. Ends with:
BENCH normalizer service_eps=<n> plain_eps=<n> ratio=<service/plain>
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from confluent_kafka import Producer

from bench.service_run import pinned, service_throughput
from claims_shared.contracts.topics import TopicSpec
from claims_shared.clients.kafka import ensure_topics
from claims_shared.settings import PROJECT_ROOT, PlatformSettings
from claimsctl.stack.broker import EmbeddedBroker
from services.cdc_normalizer.app import build_normalizer
from services.cdc_normalizer.pipeline import RawMessage

TEMPLATE = Path(__file__).with_name("claims_envelope.json")
PREFIX = "bench_db"
INPUT_TOPIC = f"{PREFIX}.public.claims"


def envelopes(count: int) -> list[tuple[bytes, bytes]]:
    """`count` distinct claims changes (different keys, amounts, LSNs) in the captured envelope's shape."""
    template = json.loads(TEMPLATE.read_text())
    key_t, value_t = template["key"], template["value"]
    out = []
    base_lsn = int(value_t["payload"]["source"]["lsn"])
    for i in range(count):
        claim_id = f"00000000-0000-4000-8000-{i:012d}"
        key_t["payload"]["claim_id"] = claim_id
        after = value_t["payload"]["after"]
        after["claim_id"] = claim_id
        after["claim_number"] = f"CLM-2026-{i:07d}"
        value_t["payload"]["source"]["lsn"] = base_lsn + i * 64
        value_t["payload"]["op"] = "c" if i % 3 else "u"
        out.append((orjson.dumps(key_t), orjson.dumps(value_t)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--port", type=int, default=29592)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-normalizer-"))
    settings = PlatformSettings(state_dir=state, kafka_bootstrap=f"127.0.0.1:{args.port}", broker_storage="memory",
                                topic_prefix=PREFIX, normalizer_web_port=args.port + 1)
    broker = EmbeddedBroker(settings)
    broker.start()
    try:
        print(f"loading {args.count} envelopes ({len(envelopes(1)[0][1])} bytes each) ...", flush=True)
        ensure_topics(settings, [TopicSpec(INPUT_TOPIC, 1)])
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 20,
                             "compression.type": "lz4", "batch.num.messages": 10000})
        data = envelopes(args.count)
        for key, value in data:
            while True:
                try:
                    producer.produce(INPUT_TOPIC, value, key)
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.flush(120)

        decode_us = decode_only_us(settings, data[:20_000])
        plain = run_plain(settings, args.count)
        service = run_service(settings, args.count)
        ratio = service / plain if plain else 0.0
        print(f"{'path':<22}{'events/s':>12}")
        print(f"{'plain loop':<22}{plain:>12,.0f}")
        print(f"{'normalizer service':<22}{service:>12,.0f}")
        print(f"decode+PII+encode only: {decode_us:.1f} us/event (one core, in process)")
        print(f"BENCH normalizer service_eps={service:.0f} plain_eps={plain:.0f} ratio={ratio:.2f}")
    finally:
        broker.stop()
        shutil.rmtree(state, ignore_errors=True)


def decode_only_us(settings: PlatformSettings, data: list[tuple[bytes, bytes]]) -> float:
    normalizer = build_normalizer(settings)
    messages = [RawMessage(INPUT_TOPIC, 0, i, k, v) for i, (k, v) in enumerate(data)]
    start = time.process_time()
    result = normalizer.process_batch(messages)
    elapsed = time.process_time() - start
    assert result.counters["out"] == len(messages), result.counters
    return elapsed / len(messages) * 1e6


def run_plain(settings: PlatformSettings, count: int) -> float:
    result = subprocess.run(
        pinned([sys.executable, "-m", "bench.normalizer.plain_loop", "--bootstrap", settings.kafka_bootstrap,
                 "--topic", INPUT_TOPIC, "--output-topic", "bench.plain.out", "--count", str(count)]),
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0:
        raise SystemExit(f"plain loop failed:\n{result.stderr[-2000:]}")
    return float(json.loads(result.stdout.strip().splitlines()[-1])["eps"])


def run_service(settings: PlatformSettings, count: int) -> float:
    eps, metrics = service_throughput(settings, "services.cdc_normalizer", settings.normalizer_web_port, count)
    return eps


if __name__ == "__main__":
    main()
