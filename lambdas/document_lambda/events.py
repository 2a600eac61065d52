"""The event shapes that invoke the document Lambda, reduced to the objects to process (pure).

Accepted, as AWS delivers them:
- an S3 notification `{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}` (direct S3 -> Lambda trigger);
- the same wrapped in SQS `{"Records": [{"eventSource": "aws:sqs", "messageId", "body": "<S3 notification>"}]}`
  (S3 -> SQS -> event source mapping; the deployed topology), including the `s3:TestEvent` S3 sends when the
  notification is configured (ignored), and an EventBridge event delivered through SQS;
- an EventBridge "Object Created" event `{"source": "aws.s3", "detail-type": "Object Created", "detail": {...}}`.

Keys in S3 notifications are form-encoded (`red flower.jpg` -> `red+flower.jpg`, `:` -> `%3A`): always
`unquote_plus`. EventBridge documents its key as the object key; we try it as given first and form-decoded second,
so either way the object is found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class NotifiedObject:
    """One object to process. `key_candidates`: the key to try first, then alternatives (see module doc)."""

    bucket: str
    key_candidates: tuple[str, ...]
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    event_name: str = ""

    @property
    def key(self) -> str:
        return self.key_candidates[0]


@dataclass
class NotificationBatch:
    """What one invocation asks for: per SQS message (or one pseudo-message for direct events) its objects, plus the
    messages whose body is not a notification at all (kept for quarantine, never retried)."""

    is_sqs: bool
    objects_by_message: dict[str, list[NotifiedObject]] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)   # message id -> reason
    bodies: dict[str, str] = field(default_factory=dict)       # message id -> raw body (for quarantine)
    ignored: int = 0                                           # test events, deletes, other event types


class NotAnObjectEvent(ValueError):
    """The event is none of the shapes this function is subscribed to."""


def parse_invocation(event: Mapping[str, Any]) -> NotificationBatch:
    """Split an invocation event into objects per message. Raises NotAnObjectEvent for unknown shapes."""
    if _is_eventbridge(event):
        batch = NotificationBatch(is_sqs=False)
        batch.objects_by_message["eventbridge"] = _eventbridge_objects(event, batch)
        return batch
    records = event.get("Records")
    if not isinstance(records, list):
        raise NotAnObjectEvent("expected an S3, SQS or EventBridge event (no 'Records' list, no 'detail-type')")
    if records and all(r.get("eventSource") == "aws:sqs" for r in records):
        batch = NotificationBatch(is_sqs=True)
        for record in records:
            message_id = str(record.get("messageId") or "")
            body = record.get("body") or ""
            batch.bodies[message_id] = body
            try:
                batch.objects_by_message[message_id] = _objects_in_body(body, batch)
            except (NotAnObjectEvent, ValueError) as exc:
                batch.unreadable[message_id] = str(exc)
        return batch
    batch = NotificationBatch(is_sqs=False)
    batch.objects_by_message["s3"] = _s3_objects(event, batch)
    return batch


def _objects_in_body(body: str, batch: NotificationBatch) -> list[NotifiedObject]:
    try:
        inner = json.loads(body)
    except json.JSONDecodeError as exc:
        raise NotAnObjectEvent(f"SQS message body is not JSON: {exc}") from exc
    if not isinstance(inner, dict):
        raise NotAnObjectEvent("SQS message body is JSON but not an object")
    if inner.get("Event") == "s3:TestEvent":
        batch.ignored += 1
        return []
    if _is_eventbridge(inner):
        return _eventbridge_objects(inner, batch)
    if isinstance(inner.get("Records"), list):
        return _s3_objects(inner, batch)
    raise NotAnObjectEvent("SQS message body is neither an S3 notification nor an EventBridge event")


def _s3_objects(event: Mapping[str, Any], batch: NotificationBatch) -> list[NotifiedObject]:
    out = []
    for record in event["Records"]:
        name = str(record.get("eventName", ""))
        if record.get("eventSource") != "aws:s3" or not name.startswith("ObjectCreated:"):
            batch.ignored += 1
            continue
        s3 = record["s3"]
        obj = s3["object"]
        out.append(NotifiedObject(bucket=s3["bucket"]["name"], key_candidates=(unquote_plus(obj["key"]),),
                             version_id=obj.get("versionId"), etag=_etag(obj.get("eTag")),
                             size=obj.get("size"), event_name=name))
    return out


def _is_eventbridge(event: Mapping[str, Any]) -> bool:
    return event.get("source") == "aws.s3" and "detail-type" in event and isinstance(event.get("detail"), dict)


def _eventbridge_objects(event: Mapping[str, Any], batch: NotificationBatch) -> list[NotifiedObject]:
    if event["detail-type"] != "Object Created":
        batch.ignored += 1
        return []
    detail = event["detail"]
    obj = detail["object"]
    raw = obj["key"]
    candidates = tuple(dict.fromkeys((raw, unquote_plus(raw))))
    return [NotifiedObject(bucket=detail["bucket"]["name"], key_candidates=candidates, version_id=obj.get("version-id"),
                      etag=_etag(obj.get("etag")), size=obj.get("size"), event_name="Object Created")]


def _etag(value: Any) -> str | None:
    return None if value in (None, "") else str(value).strip('"')
