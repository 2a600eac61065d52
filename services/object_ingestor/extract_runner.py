"""Extract loop: document records of CSV / JSON-lines extracts in; their rows and rejects out (logic: extracts.py).

consume document records (consumer group, committed) -> for each extract, stream its object from S3 line by line
(boto3 StreamingBody, 64 KiB reads; never the whole object in memory) -> produce valid rows to
`claims.extract-rows.v1` and rejects to `claims.extract-rejects.v1`, acknowledged in chunks -> commit. A crash
repeats at most the uncommitted batch, and a repeated document yields the same row ids, so sinks dedupe.

The object read is the exact version the record describes (`VersionId`, else `IfMatch` on the ETag), and its
SHA-256 is checked against the record's as it streams. Terminal problems go to `claims.objects.dead-letter.v1`
with the reason: an undecodable document record, an extract record without an S3 source, an object that is gone
or changed, a CSV header without the contract's columns, bytes that differ from the record. Trouble reaching S3
is transient: the batch is retried with backoff (`TransientObjectStoreError`).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import Consumer, Message, TopicPartition

from claims_shared.batch_loop import BatchLoop, Output, RetryableBatchError
from claims_shared.clients.aws import s3_client
from claims_shared.clients.kafka import consumer as make_consumer
from claims_shared.clients.kafka import ensure_topics
from claims_shared.clients.kafka import producer as make_producer
from claims_shared.contracts.documents import DOCUMENTS_TOPIC, decode_document_record
from claims_shared.contracts.objects import (
    EXTRACT_REJECTS_TOPIC,
    EXTRACT_ROWS_TOPIC,
    OBJECTS_DEAD_LETTER_TOPIC,
    OUTPUT_TOPICS,
    dead_letter_value,
    encode_extract_reject,
    encode_extract_row,
)
from claims_shared.settings import PlatformSettings
from services.object_ingestor.extracts import EXTRACT_FORMATS, ExtractHeaderError, ExtractSource, expand_extract

log = logging.getLogger("object_ingestor.extracts")

GROUP_ID = "object-ingestor-extracts"
PRODUCE_CHUNK = 5000
# S3 answers that mean "this object version is not (or no longer) there as recorded": not worth retrying.
TERMINAL_S3_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "PreconditionFailed", "404", "412",
                               "InvalidArgument", "AccessDenied"})


class TransientObjectStoreError(RetryableBatchError):
    """S3 could not be read for a reason that may pass (network, throttling, 5xx); the batch is retried."""


class _ObjectChanged(Exception):
    """The object's bytes are not the ones the document record describes."""


class _HashingReader:
    """Wraps a StreamingBody: passes reads through and hashes what went by."""

    def __init__(self, body: Any) -> None:
        self.body = body
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, amt: int = -1) -> bytes:
        data = self.body.read(amt)
        self.sha256.update(data)
        self.bytes += len(data)
        return data


class ExtractLoop(BatchLoop):
    def __init__(self, settings: PlatformSettings, *, group_id: str = GROUP_ID, batch_size: int = 50) -> None:
        super().__init__()
        self.settings = settings
        self.batch_size = batch_size
        ensure_topics(settings, OUTPUT_TOPICS)
        self.s3 = s3_client(settings)
        self.producer = make_producer(settings, **{"linger.ms": 10})
        self.consumer: Consumer = make_consumer(settings, group_id)
        self.consumer.subscribe([DOCUMENTS_TOPIC])

    def run_once(self, timeout_s: float = 1.0) -> int:
        messages = self.poll(self.batch_size, timeout_s)
        if not messages:
            return 0
        pending: list[Output] = []
        for m in messages:
            pending = self._handle(m, pending)
        self.produce_acknowledged(pending)
        positions: dict[tuple[str, int], int] = {}
        for m in messages:
            positions[(m.topic(), m.partition())] = m.offset() + 1
        self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
                             asynchronous=False)
        self.counters["in"] += len(messages)
        self.batch_done()
        return len(messages)

    # -- internals -------------------------------------------------------------------------------------------
    def _handle(self, m: Message, pending: list[Output]) -> list[Output]:
        value = m.value()
        try:
            if not value:
                raise ValueError("empty value")
            record = decode_document_record(value)
        except Exception as exc:  # noqa: BLE001 - any decode failure is this record's problem
            pending.append(self._dead_letter(m, "UndecodableDocumentRecord",
                                             f"not a document_record.v1 Avro body: {type(exc).__name__}: {exc}"))
            return pending
        fmt = EXTRACT_FORMATS.get(record.get("mime_type", ""))
        if fmt is None or record.get("status") != "ok":
            self.counters["documents_not_extracts"] += 1
            return pending
        source = record.get("source")
        if not source:
            pending.append(self._dead_letter(m, "ExtractWithoutSource",
                                             "extract record has no S3 source (processed from a local file): "
                                             "there is no object to stream"))
            return pending
        extract = ExtractSource(record["document_id"], source["bucket"], source["key"], fmt)
        request: dict[str, Any] = {"Bucket": source["bucket"], "Key": source["key"]}
        if source.get("version_id"):
            request["VersionId"] = source["version_id"]
        elif source.get("etag"):
            request["IfMatch"] = source["etag"] if source["etag"].startswith('"') else f'"{source["etag"]}"'
        rows = rejects = 0
        try:
            body = self.s3.get_object(**request)["Body"]
            reader = _HashingReader(body)
            try:
                for kind, out in expand_extract(reader, extract):
                    if kind == "row":
                        pending.append((EXTRACT_ROWS_TOPIC, *encode_extract_row(out)))
                        rows += 1
                    else:
                        pending.append((EXTRACT_REJECTS_TOPIC, *encode_extract_reject(out)))
                        rejects += 1
                    if len(pending) >= PRODUCE_CHUNK:
                        self.produce_acknowledged(pending)
                        pending = []
            finally:
                body.close()
            if record.get("sha256") and reader.sha256.hexdigest() != record["sha256"]:
                raise _ObjectChanged(f"object bytes (sha256 {reader.sha256.hexdigest()}) differ from the document "
                                     f"record's ({record['sha256']}): it changed after processing; its rows were "
                                     "published from the bytes read")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in TERMINAL_S3_CODES:
                pending.append(self._dead_letter(m, "ExtractObjectUnavailable",
                                                 f"s3://{source['bucket']}/{source['key']} cannot be read as "
                                                 f"recorded ({code}: {exc})"))
                return pending
            raise TransientObjectStoreError(f"S3 error reading s3://{source['bucket']}/{source['key']}: {exc}") \
                from exc
        except BotoCoreError as exc:
            raise TransientObjectStoreError(f"S3 unreachable reading s3://{source['bucket']}/{source['key']}: "
                                            f"{exc}") from exc
        except ExtractHeaderError as exc:
            pending.append(self._dead_letter(m, "ExtractNotContract", str(exc)))
            return pending
        except _ObjectChanged as exc:
            pending.append(self._dead_letter(m, "ExtractObjectChanged", str(exc)))
        self.counters["extract_documents"] += 1
        self.counters["extract_rows"] += rows
        self.counters["extract_rejects"] += rejects
        self.counters["extract_bytes"] += reader.bytes
        log.info("expanded %s (%s): %d rows, %d rejects", extract.key, extract.document_id, rows, rejects)
        return pending

    def _dead_letter(self, m: Message, error_class: str, reason: str) -> Output:
        log.warning("dead-lettered %s:%s:%s (%s)", m.topic(), m.partition(), m.offset(), reason)
        self.counters["dead_lettered"] += 1
        body = dead_letter_value(error_class=error_class, reason=reason, topic=m.topic(), partition=m.partition(),
                                 offset=m.offset(), key=m.key(), value=m.value())
        return OBJECTS_DEAD_LETTER_TOPIC, f"{m.topic()}:{m.partition()}:{m.offset()}".encode(), body, []
