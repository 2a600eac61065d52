"""Telematics topics and their wire formats: Avro bodies named by the `claims-schema` header, keyed by vehicle_id.

Timestamps travel as Avro `timestamp-millis`; the helpers here read them back as epoch milliseconds (ints), which is
what the scorer computes with, by reading with the same schema minus the logical type (identical bytes on the wire).
"""

from __future__ import annotations

import io
import json
from functools import cache
from typing import Any

import fastavro
import orjson

from claims_shared.contracts.avro import SCHEMA_DIR, SCHEMA_HEADER, encode
from claims_shared.contracts.dead_letters import original_fields
from claims_shared.contracts.topics import TELEMATICS_READINGS, TopicSpec

READINGS_TOPIC = TELEMATICS_READINGS
TRIPS_TOPIC = "telematics.trips.v1"
EVENTS_TOPIC = "telematics.events.v1"
DRIVER_SCORES_TOPIC = "telematics.driver-scores.v1"
DEAD_LETTER_TOPIC = "telematics.dead-letter.v1"
# Internal: one message per closed trip, from the batch loop to the Faust agent that owns the driver-score table.
SCORE_UPDATES_TOPIC = "telematics.score-updates.v1"

READING_SCHEMA = "telematics_reading.v1"
TRIP_SCHEMA = "telematics_trip.v1"
EVENT_SCHEMA = "telematics_event.v1"
DRIVER_SCORE_SCHEMA = "telematics_driver_score.v1"

# Keyed by vehicle_id; the score-updates topic and the driver-score table's changelog must be co-partitioned,
# so they share this count.
TELEMATICS_PARTITIONS = 4
OUTPUT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(TRIPS_TOPIC, TELEMATICS_PARTITIONS),
    TopicSpec(EVENTS_TOPIC, TELEMATICS_PARTITIONS),
    TopicSpec(DRIVER_SCORES_TOPIC, TELEMATICS_PARTITIONS),
    TopicSpec(SCORE_UPDATES_TOPIC, TELEMATICS_PARTITIONS),
    TopicSpec(DEAD_LETTER_TOPIC, 1),
)


def schema_headers(schema: str) -> list[tuple[str, bytes]]:
    return [(SCHEMA_HEADER, schema.encode())]


def _strip_logical(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_logical(v) for k, v in node.items() if not (k == "logicalType" and v == "timestamp-millis")}
    if isinstance(node, list):
        return [_strip_logical(v) for v in node]
    return node


@cache
def _epoch_ms_schema(name: str) -> Any:
    return fastavro.parse_schema(_strip_logical(json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())))


def decode_epoch_ms(name: str, payload: bytes) -> dict[str, Any]:
    """Decode a telematics Avro body with timestamps as epoch-ms ints (raises on bytes that are not this schema)."""
    return fastavro.schemaless_reader(io.BytesIO(payload), _epoch_ms_schema(name))  # type: ignore[return-value]


def decode_reading(payload: bytes) -> dict[str, Any]:
    """A `telematics_reading.v1` body as a dict with `ts` in epoch ms; raises on undecodable or trailing bytes."""
    buf = io.BytesIO(payload)
    record = fastavro.schemaless_reader(buf, _epoch_ms_schema(READING_SCHEMA))
    if buf.tell() != len(payload):
        raise ValueError(f"{len(payload) - buf.tell()} trailing bytes after a telematics_reading.v1 record")
    return record  # type: ignore[return-value]


def encode_record(name: str, record: dict[str, Any]) -> bytes:
    """Avro body of `record` (timestamps may be epoch-ms ints)."""
    return encode(name, record)


def dead_letter_value(*, error_class: str, reason: str, topic: str, partition: int, offset: int,
                      key: bytes | None, value: bytes | None) -> bytes:
    """JSON dead-letter body (same shape as claims.cdc.dead-letter.v1): reason, source and original bytes (base64,
    cut when huge: see claims_shared/contracts/dead_letters.py)."""
    return orjson.dumps({
        "error_class": error_class, "reason": reason, "source_topic": topic, "source_partition": partition,
        "source_offset": offset, **original_fields(key, value),
    })
