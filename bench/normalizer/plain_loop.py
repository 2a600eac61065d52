"""Baseline for the normalizer benchmark: a plain confluent-kafka consume -> orjson decode -> reshape -> produce
loop with the same batch size, delivery wait and commit discipline as the service, and nothing else."""

from __future__ import annotations

import argparse
import json
import time

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output-topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "bench-plain", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "compression.type": "lz4", "batch.num.messages": 10000})
    consumer.subscribe([args.topic])
    done, first = 0, None
    while done < args.count:
        messages = consumer.consume(2000, timeout=1.0)
        if not messages:
            continue
        if first is None:
            first = time.time()
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            if m.error() or not m.value():
                continue
            envelope = orjson.loads(m.value())["payload"]
            after = envelope["after"] or envelope["before"]
            record = {"table": envelope["source"]["table"], "op": envelope["op"], "row": after,
                      "lsn": envelope["source"].get("lsn"), "ts_ms": envelope["source"]["ts_ms"]}
            producer.produce(args.output_topic, orjson.dumps(record), m.key())
            producer.poll(0)
            last[(m.topic(), m.partition())] = m.offset()
            done += 1
        producer.flush(60)
        consumer.commit(offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False)
    elapsed = time.time() - (first or time.time())
    print(json.dumps({"events": done, "seconds": elapsed, "eps": done / elapsed if elapsed else 0.0}))
    consumer.close()


if __name__ == "__main__":
    main()
