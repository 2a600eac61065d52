"""The document Lambda: `lambdas.document_lambda.handler.handler(event, context)`.

For every object an invocation names (events.py: S3, SQS-wrapped S3, EventBridge): read it from S3, run the
document-processing core (`lambdas.document_processor.extract_document`, the same code as
`claimsctl extract-document`), then
- `ok`: write the record as a JSON sidecar `processed/<key>.json`;
- `quarantined`: copy the object to `quarantine/<key>` and write `quarantine/<key>.reason.json`;
and in both cases publish the record on `claims.documents.v1` (keyed by its deterministic document_id, so a
redelivered notification repeats the same id and downstream dedupes).

Failures. A bad object never fails anything: it is quarantined with the reason. What does fail is the platform
around it (S3 or Kafka unreachable, time running out): with SQS the affected messages are reported in
`batchItemFailures` (ReportBatchItemFailures) and come back after the visibility timeout, the others are done;
direct invocations raise, so Lambda's own retry applies. A message body that is no notification at all is written
to `quarantine/_notifications/<message id>.json` and not retried.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdas.document_lambda.events import NotifiedObject, parse_invocation
from lambdas.document_processor import DocumentRecord, ObjectRef, ProcessingLimits, extract_document
from lambdas.document_processor.record import QUARANTINED, document_id_for
from lambdas.document_processor.sniffing import sniff_mime_type

log = logging.getLogger("claims.document_lambda")
log.setLevel(logging.INFO)

PROCESSED_PREFIX = "processed/"
QUARANTINE_PREFIX = "quarantine/"
# Seconds kept free at the end of an invocation to flush Kafka and answer; an object is not started without
# its full time budget plus this margin left (it is retried instead of being cut off half-way).
END_MARGIN_S = 10.0


class PlatformUnavailable(RuntimeError):
    """S3 or Kafka did not do its part; the notification must be retried, the object is not at fault."""


@dataclass
class _Runtime:
    """Clients made once per execution environment (Lambda reuses them across invocations)."""

    settings: Any
    s3: Any
    producer: Any
    limits: ProcessingLimits
    delivery_errors: dict[str, str] = field(default_factory=dict)  # message id -> Kafka error


_runtime: _Runtime | None = None


def _get_runtime() -> _Runtime:
    global _runtime
    if _runtime is None:
        from claims_shared.clients.aws import s3_client
        from claims_shared.clients.kafka import producer
        from claims_shared.settings import get_settings

        os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # tesseract: one thread is faster on Lambda's vCPUs
        settings = get_settings()
        _runtime = _Runtime(settings, s3_client(settings), producer(settings, **{"linger.ms": 5}),
                            ProcessingLimits.from_settings(settings))
    return _runtime


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Process every object of the invocation; for SQS, report the messages to retry."""
    rt = _get_runtime()
    started = time.monotonic()
    remaining_s = (lambda: context.get_remaining_time_in_millis() / 1000.0) if context is not None \
        else (lambda: rt.settings.lambda_timeout_s - (time.monotonic() - started))
    batch = parse_invocation(event)
    outcomes: Counter = Counter()
    failed: set[str] = set()
    rt.delivery_errors.clear()
    for message_id, reason in batch.unreadable.items():
        try:
            _quarantine_notification(rt, message_id, batch.bodies.get(message_id, ""), reason)
            outcomes["unreadable_notifications"] += 1
        except Exception as exc:  # noqa: BLE001 - S3 down: retry the message later
            log.warning("could not quarantine notification %s: %s", message_id, exc)
            failed.add(message_id)
    for message_id, objects in batch.objects_by_message.items():
        for obj in objects:
            if remaining_s() < rt.limits.time_budget_s + END_MARGIN_S:
                log.warning("not enough time left for %s: message %s retried", obj.key, message_id)
                failed.add(message_id)
                break
            try:
                outcomes[process_object(rt, obj, message_id)] += 1
            except Exception as exc:  # noqa: BLE001 - platform trouble: retry this message, go on with others
                log.error("s3://%s/%s: %s: %s (message %s will be retried)", obj.bucket, obj.key,
                          type(exc).__name__, exc, message_id)
                failed.add(message_id)
                outcomes["retried"] += 1
                break
    remaining = rt.producer.flush(max(1.0, remaining_s() - 2.0))
    if remaining:
        failed.update(batch.objects_by_message)  # cannot tell which messages are unacknowledged: retry all
    failed.update(rt.delivery_errors)
    log.info(json.dumps({"msg": "invocation done", "outcomes": outcomes, "failed_messages": len(failed),
                         "ignored": batch.ignored}))
    if batch.is_sqs:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}
    if failed:
        raise PlatformUnavailable(f"{len(failed)} object(s) could not be processed now; Lambda will retry")
    return {"outcomes": dict(outcomes)}


def process_object(rt: _Runtime, obj: NotifiedObject, message_id: str) -> str:
    """Process one notified object; returns its outcome. Raises only for platform problems (retry)."""
    from botocore.exceptions import ClientError

    head = None
    for key in obj.key_candidates:
        try:
            head = rt.s3.head_object(Bucket=obj.bucket, Key=key, **({"VersionId": obj.version_id}
                                                                     if obj.version_id else {}))
            break
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NoSuchVersion"):
                raise
    if head is None:
        log.info("s3://%s/%s is gone (deleted after its notification): nothing to do", obj.bucket, obj.key)
        return "gone"
    if not key.startswith(rt.settings.landing_incoming_prefix):
        return "outside_incoming_prefix"  # our own sidecars, or a misconfigured notification filter
    ref = ObjectRef(bucket=obj.bucket, key=key, version_id=head.get("VersionId") or obj.version_id,
                    etag=str(head.get("ETag", "")).strip('"') or obj.etag)
    size = int(head["ContentLength"])
    if size > rt.limits.max_object_bytes:
        record = _too_large(rt, ref, size)
    else:
        body = rt.s3.get_object(Bucket=obj.bucket, Key=key,
                                **({"VersionId": ref.version_id} if ref.version_id else {}))["Body"].read()
        record = extract_document(body, key, rt.limits, source=ref)
    _write_outputs(rt, record, ref)
    _publish(rt, record, message_id)
    return record.status


def _too_large(rt: _Runtime, ref: ObjectRef, size: int) -> DocumentRecord:
    """Quarantine record of an object over the size limit, without downloading it (its first bytes name its type)."""
    head = rt.s3.get_object(Bucket=ref.bucket, Key=ref.key, Range="bytes=0-8191",
                            **({"VersionId": ref.version_id} if ref.version_id else {}))["Body"].read()
    limit_mb = rt.limits.max_object_bytes / 1024 / 1024
    return DocumentRecord(
        document_id=document_id_for(ref), sha256="", mime_type=sniff_mime_type(head), size_bytes=size,
        status=QUARANTINED, name=ref.key, source=ref,
        reason=f"object is {size / 1024 / 1024:.1f} MiB, over the {limit_mb:.0f} MiB limit "
               "(CLAIMS_DOCUMENT_MAX_BYTES); not read, sha256 not computed")


def _write_outputs(rt: _Runtime, record: DocumentRecord, ref: ObjectRef) -> None:
    body = json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True).encode()
    relative = ref.key[len(rt.settings.landing_incoming_prefix):]
    if record.status == QUARANTINED:
        rt.s3.copy_object(Bucket=ref.bucket, Key=f"{QUARANTINE_PREFIX}{relative}",
                          CopySource={"Bucket": ref.bucket, "Key": ref.key,
                                      **({"VersionId": ref.version_id} if ref.version_id else {})})
        rt.s3.put_object(Bucket=ref.bucket, Key=f"{QUARANTINE_PREFIX}{relative}.reason.json", Body=body,
                         ContentType="application/json")
    else:
        rt.s3.put_object(Bucket=ref.bucket, Key=f"{PROCESSED_PREFIX}{relative}.json", Body=body,
                         ContentType="application/json")


def _publish(rt: _Runtime, record: DocumentRecord, message_id: str) -> None:
    from claims_shared.contracts.documents import (
        DOCUMENTS_TOPIC,
        encode_document_record,
        message_key,
        schema_headers,
    )

    record_dict = record.to_dict()

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            rt.delivery_errors[message_id] = str(err)

    while True:
        try:
            rt.producer.produce(DOCUMENTS_TOPIC, encode_document_record(record_dict), message_key(record_dict),
                                headers=schema_headers(), on_delivery=on_delivery)
            return
        except BufferError:
            rt.producer.poll(0.1)


def _quarantine_notification(rt: _Runtime, message_id: str, body: str, reason: str) -> None:
    rt.s3.put_object(
        Bucket=rt.settings.landing_bucket, Key=f"{QUARANTINE_PREFIX}_notifications/{message_id}.json",
        Body=json.dumps({"message_id": message_id, "reason": reason, "body": body}).encode(),
        ContentType="application/json")
