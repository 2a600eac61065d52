"""The embedded Connect worker's properties (infra/debezium/connect-worker.properties)."""

from __future__ import annotations

from claimsctl.stack.connect import WORKER_PROPERTIES


def _properties() -> dict[str, str]:
    out = {}
    for line in WORKER_PROPERTIES.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_source_producer_sends_large_compressed_batches_for_a_broker_on_object_storage() -> None:
    # Kafka's 16 KB / 5 ms defaults held Debezium to ~50-300 events/s against the S3-backed broker
    # (tests/faults/test_scale.py): each produce request is an object store write.
    props = _properties()
    assert int(props["producer.batch.size"]) >= 256 * 1024
    assert int(props["producer.linger.ms"]) > 0
    assert props["producer.compression.type"] in {"lz4", "zstd", "snappy", "gzip"}
