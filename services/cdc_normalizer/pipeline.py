"""Pure batch step of the normalizer: raw Debezium messages in, normalized records and dead letters out.

No I/O here: the runner (runner.py) consumes, calls `Normalizer.process_batch`, produces and commits; the replay
CLI (`claimsctl normalize`) calls `Normalizer.normalize` line by line. Both therefore run the same code.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from claims_shared.contracts.cdc import DEAD_LETTER_TOPIC, ChangeRecord, canonical_json, normalized_topic
from claims_shared.contracts.columns import ColumnTypes
from claims_shared.contracts.dead_letters import original_fields
from services.cdc_normalizer.decoding import DecodeError, Skipped, decode_message
from services.cdc_normalizer.pii import PiiTokenizer


@dataclass(frozen=True, slots=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class OutputMessage:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class BatchResult:
    outputs: list[OutputMessage] = field(default_factory=list)
    dead_letters: list[OutputMessage] = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)


Encoder = Callable[[ChangeRecord], tuple[bytes, bytes, list[tuple[str, bytes]]]]


class Normalizer:
    """Decode -> tokenize PII -> encode, for one message or a batch. Never raises on bad input."""

    def __init__(self, tokenizer: PiiTokenizer, encoder: Encoder, columns: ColumnTypes | None = None) -> None:
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.columns = columns

    def normalize(self, message: RawMessage) -> ChangeRecord | Skipped:
        """One message to its normalized record (PII tokenized) or a Skipped marker; raises DecodeError."""
        decoded = decode_message(message.topic, message.key, message.value, self.columns)
        if isinstance(decoded, Skipped):
            return decoded
        return self.tokenizer.apply(decoded)

    def process_batch(self, messages: list[RawMessage]) -> BatchResult:
        result = BatchResult()
        counters = result.counters
        for message in messages:
            counters["in"] += 1
            try:
                record = self.normalize(message)
                if isinstance(record, Skipped):
                    counters[f"skipped_{record.kind}"] += 1
                    continue
                key, value, headers = self.encoder(record)
            except DecodeError as exc:
                counters["dead_lettered"] += 1
                result.dead_letters.append(dead_letter(message, type(exc).__name__, exc.reason))
                continue
            except Exception as exc:  # a bug must not stop the stream either; the DLQ keeps the evidence
                counters["dead_lettered"] += 1
                result.dead_letters.append(dead_letter(message, type(exc).__name__, f"unexpected error: {exc}"))
                continue
            counters["out"] += 1
            result.outputs.append(OutputMessage(normalized_topic(record.table), key, value, headers))
        return result


def dead_letter(message: RawMessage, error_class: str, reason: str) -> OutputMessage:
    """Dead-letter record: the reason, where it came from, and the original bytes (base64) to replay it later."""
    body = {
        "error_class": error_class,
        "reason": reason,
        "source_topic": message.topic,
        "source_partition": message.partition,
        "source_offset": message.offset,
        # Cut when huge: a dead letter over the broker's size limit would block the partition (dead_letters.py).
        **original_fields(message.key, message.value),
    }
    return OutputMessage(
        DEAD_LETTER_TOPIC,
        f"{message.topic}:{message.partition}:{message.offset}".encode(),
        json.dumps(body, sort_keys=True).encode(),
        [("error-class", error_class.encode()), ("source-topic", message.topic.encode())],
    )


def replay_line(normalizer: Normalizer, doc: dict[str, Any]) -> dict[str, Any] | None:
    """One line of the replay CLI: `{"topic","partition","offset","key","value"}` -> output dict, None for a tombstone.

    Lines that are not row changes keep their place in the output: `{"op": null, "skipped": kind}` or
    `{"op": null, "error": {...}}`, so output line N always answers input line N (tombstones excepted).
    """
    value = doc.get("value")
    if value is None:
        return None
    message = RawMessage(
        topic=str(doc.get("topic", "")),
        partition=int(doc.get("partition", 0)),
        offset=int(doc.get("offset", -1)),
        key=_as_bytes(doc.get("key")),
        value=_as_bytes(value),
    )
    try:
        record = normalizer.normalize(message)
    except DecodeError as exc:
        return {"table": None, "op": None, "error": {"class": type(exc).__name__, "reason": exc.reason},
                "topic": message.topic, "partition": message.partition, "offset": message.offset}
    if isinstance(record, Skipped):
        return {"table": record.table, "op": None, "skipped": record.kind}
    return record.to_json_dict()


def _as_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode()
    return canonical_json(value).encode()
