"""Invocation events of the document Lambda, in the shapes AWS sends them (fixtures follow the AWS event docs)."""

from __future__ import annotations

import json

import pytest

from lambdas.document_lambda.events import NotAnObjectEvent, parse_invocation


def s3_record(key: str, *, name: str = "ObjectCreated:Put", version: str | None = "v1") -> dict:
    obj = {"key": key, "size": 1024, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0A1B2C3D4E5F678901"}
    if version:
        obj["versionId"] = version
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1", "eventName": name,
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "landing", "bucket": {"name": "claims-landing"},
                   "object": obj}}


def sqs_record(message_id: str, body: str) -> dict:
    return {"messageId": message_id, "receiptHandle": "rh", "body": body, "attributes": {}, "messageAttributes": {},
            "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-west-1:1:q",
            "awsRegion": "eu-west-1"}


def eventbridge(key: str, detail_type: str = "Object Created") -> dict:
    return {"version": "0", "id": "e-1", "detail-type": detail_type, "source": "aws.s3", "account": "1",
            "time": "2026-03-12T14:00:00Z", "region": "eu-west-1", "resources": ["arn:aws:s3:::claims-landing"],
            "detail": {"version": "0", "bucket": {"name": "claims-landing"},
                       "object": {"key": key, "size": 5, "etag": "abc", "version-id": "v9", "sequencer": "1"},
                       "request-id": "r", "requester": "1", "reason": "PutObject"}}


def test_direct_s3_notification_keys_are_form_decoded() -> None:
    batch = parse_invocation({"Records": [s3_record("incoming/2026/CLM-1/claim+form+%C3%A9%2B1.pdf")]})
    (obj,) = batch.objects_by_message["s3"]
    assert not batch.is_sqs
    assert obj.key == "incoming/2026/CLM-1/claim form é+1.pdf" and obj.version_id == "v1"
    assert obj.bucket == "claims-landing" and obj.etag == "0123456789abcdef0123456789abcdef"


def test_sqs_wrapped_notifications_are_grouped_per_message_and_test_events_ignored() -> None:
    event = {"Records": [
        sqs_record("m1", json.dumps({"Records": [s3_record("incoming/a.jpg"), s3_record("incoming/b.jpg")]})),
        sqs_record("m2", json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "claims-landing"})),
        sqs_record("m3", json.dumps({"Records": [s3_record("incoming/c.jpg", name="ObjectRemoved:Delete")]})),
        sqs_record("m4", "not json at all"),
        sqs_record("m5", json.dumps(eventbridge("incoming/d.png"))),
    ]}
    batch = parse_invocation(event)
    assert batch.is_sqs
    assert [o.key for o in batch.objects_by_message["m1"]] == ["incoming/a.jpg", "incoming/b.jpg"]
    assert batch.objects_by_message["m2"] == [] and batch.objects_by_message["m3"] == []
    assert batch.ignored == 2
    assert "not JSON" in batch.unreadable["m4"] and batch.bodies["m4"] == "not json at all"
    assert [o.key for o in batch.objects_by_message["m5"]] == ["incoming/d.png"]


def test_eventbridge_object_created_tries_the_key_as_given_then_form_decoded() -> None:
    batch = parse_invocation(eventbridge("incoming/x+y%2B.pdf"))
    (obj,) = batch.objects_by_message["eventbridge"]
    assert obj.key_candidates == ("incoming/x+y%2B.pdf", "incoming/x y+.pdf") and obj.version_id == "v9"
    assert parse_invocation(eventbridge("k", "Object Deleted")).objects_by_message["eventbridge"] == []


def test_an_event_of_another_kind_is_refused_with_what_was_expected() -> None:
    with pytest.raises(NotAnObjectEvent, match="S3, SQS or EventBridge"):
        parse_invocation({"detail": "nope"})
