"""SeaweedFS filer metadata events -> AWS S3 event notifications (pure mapping; no servers)."""

from __future__ import annotations

import base64
import copy
import json
from urllib.parse import unquote_plus

import pytest

from claimsctl.stack.s3_events import Checkpoint, JsonObjectStream, s3_event_from_filer_event, tail_command

BUCKET = "claims-landing"
TS_NS = 1795637200995389819


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def filer_event(
    key: str = "exp/new file.pdf",
    *,
    bucket: str = BUCKET,
    size: int = 3,
    etag: str | None = "f97c5d29941bfb1b2fdab0874906ab82",
    fid: int = 274,
    old: dict | None = None,
    extended: dict | None = None,
    is_directory: bool = False,
    ts_ns: int = TS_NS,
) -> dict:
    """An event shaped like `weed filer.meta.tail` output (protobuf JSON: int64 as strings, bytes as base64)."""
    directory, _, name = f"/buckets/{bucket}/{key}".rpartition("/")
    ext = {"Seaweed-X-Amz-Owner": b64("claims"), "x-seaweedfs-checksum-algorithm": b64("X-Amz-Checksum-Crc32")}
    if etag is not None:
        ext["Seaweed-X-Amz-ETag"] = b64(etag)
    ext.update(extended or {})
    entry = {
        "name": name,
        "isDirectory": is_directory,
        "chunks": [] if is_directory else [
            {"fileId": "", "offset": "0", "size": str(size), "eTag": "+XxdKZQb+xsv2rCHSQargg==",
             "fid": {"volumeId": 7, "fileKey": str(fid), "cookie": 801774890}}
        ],
        "attributes": {"fileSize": str(size), "mtime": "1795637200", "md5": "+XxdKZQb+xsv2rCHSQargg==",
                       "mime": "application/pdf"},
        "extended": ext,
    }
    return {
        "directory": directory,
        "eventNotification": {"oldEntry": old, "newEntry": entry, "deleteChunks": True, "newParentPath": directory},
        "tsNs": str(ts_ns),
        "events": [],
    }


def record_of(message: dict) -> dict:
    assert len(message["Records"]) == 1
    return message["Records"][0]


def test_new_object_becomes_aws_shaped_object_created_put_record():
    record = record_of(s3_event_from_filer_event(filer_event(), bucket=BUCKET, region="eu-west-1"))

    assert record["eventSource"] == "aws:s3"
    assert record["eventVersion"] == "2.1"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["awsRegion"] == "eu-west-1"
    assert record["eventTime"] == "2026-11-25T20:06:40.995Z"
    assert record["s3"]["s3SchemaVersion"] == "1.0"
    assert record["s3"]["bucket"] == {
        "name": BUCKET, "ownerIdentity": {"principalId": "claims"}, "arn": f"arn:aws:s3:::{BUCKET}"
    }
    assert record["s3"]["object"] == {
        "key": "exp/new+file.pdf",
        "size": 3,
        "eTag": "f97c5d29941bfb1b2fdab0874906ab82",
        "sequencer": f"{TS_NS:018X}",
    }


def test_key_is_form_encoded_like_aws_and_round_trips_with_unquote_plus():
    key = "inbox/ünï cödé&=?+%.pdf"
    record = record_of(s3_event_from_filer_event(filer_event(key), bucket=BUCKET))

    encoded = record["s3"]["object"]["key"]
    assert encoded == "inbox/%C3%BCn%C3%AF+c%C3%B6d%C3%A9%26%3D%3F%2B%25.pdf"
    assert unquote_plus(encoded) == key


def test_message_is_json_serialisable_and_deterministic_for_replays():
    first = s3_event_from_filer_event(filer_event(), bucket=BUCKET)
    second = s3_event_from_filer_event(copy.deepcopy(filer_event()), bucket=BUCKET)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_overwrite_with_new_content_is_notified():
    old = filer_event(fid=100)["eventNotification"]["newEntry"]
    event = filer_event(size=7, etag="a6e8b7531f460c2a9eec1a0c181392b9", fid=275, old=old)

    record = record_of(s3_event_from_filer_event(event, bucket=BUCKET))
    assert record["s3"]["object"]["size"] == 7
    assert record["s3"]["object"]["eTag"] == "a6e8b7531f460c2a9eec1a0c181392b9"


def test_metadata_only_update_such_as_tagging_is_not_notified():
    old = filer_event()["eventNotification"]["newEntry"]
    event = filer_event(old=old, extended={"X-Amz-Tagging-k": b64("v")})
    assert s3_event_from_filer_event(event, bucket=BUCKET) is None


def test_delete_is_not_notified():
    event = filer_event()
    notification = event["eventNotification"]
    notification["oldEntry"], notification["newEntry"], notification["newParentPath"] = notification["newEntry"], None, ""
    assert s3_event_from_filer_event(event, bucket=BUCKET) is None


def test_directory_is_not_notified():
    assert s3_event_from_filer_event(filer_event("exp/folder", is_directory=True, etag=None), bucket=BUCKET) is None


def test_multipart_upload_parts_are_not_notified():
    part = filer_event(".uploads/a38b1ea0_0ea90862/0001_9c0d988f.part", size=5242880)
    assert s3_event_from_filer_event(part, bucket=BUCKET) is None


def test_completed_multipart_upload_is_notified_with_multipart_etag():
    event = filer_event("exp/multi.bin", size=5243904, etag="16329fb6004d64a4fbc5bbb983fa0528-2",
                        extended={"X-Seaweedfs-Upload-Id": b64("a38b1ea0_0ea90862"),
                                  "X-Seaweedfs-Multipart-Parts-Count": b64("2")})
    record = record_of(s3_event_from_filer_event(event, bucket=BUCKET))
    assert record["eventName"] == "ObjectCreated:CompleteMultipartUpload"
    assert record["s3"]["object"]["eTag"] == "16329fb6004d64a4fbc5bbb983fa0528-2"
    assert record["s3"]["object"]["size"] == 5243904


def test_other_buckets_and_paths_outside_buckets_are_ignored():
    assert s3_event_from_filer_event(filer_event(bucket="claims-lake"), bucket=BUCKET) is None
    outside = filer_event()
    outside["directory"] = outside["eventNotification"]["newParentPath"] = "/topics/.system/log"
    assert s3_event_from_filer_event(outside, bucket=BUCKET) is None


def test_etag_falls_back_to_content_md5_when_s3_etag_is_missing():
    record = record_of(s3_event_from_filer_event(filer_event(etag=None), bucket=BUCKET))
    assert record["s3"]["object"]["eTag"] == base64.b64decode("+XxdKZQb+xsv2rCHSQargg==").hex()


def test_version_id_is_included_only_when_the_object_has_one():
    plain = record_of(s3_event_from_filer_event(filer_event(), bucket=BUCKET))
    assert "versionId" not in plain["s3"]["object"]

    versioned = filer_event("docs/a.pdf.versions/v_0123", extended={"Seaweed-X-Amz-Version-Id": b64("0123")})
    obj = record_of(s3_event_from_filer_event(versioned, bucket=BUCKET))["s3"]["object"]
    assert obj["versionId"] == "0123"
    assert obj["key"] == "docs/a.pdf"


def test_sequencer_increases_with_event_time():
    earlier = record_of(s3_event_from_filer_event(filer_event(ts_ns=TS_NS), bucket=BUCKET))
    later = record_of(s3_event_from_filer_event(filer_event(ts_ns=TS_NS + 1), bucket=BUCKET))
    assert later["s3"]["object"]["sequencer"] > earlier["s3"]["object"]["sequencer"]


def test_json_object_stream_splits_pretty_printed_objects_across_chunk_boundaries():
    text = json.dumps(filer_event(), indent=2) + "\n" + json.dumps(filer_event(ts_ns=TS_NS + 1), indent=3) + "\n"
    stream = JsonObjectStream()
    out = []
    for i in range(0, len(text), 97):
        out.extend(stream.feed(text[i:i + 97].encode()))
    assert [e["tsNs"] for e in out] == [str(TS_NS), str(TS_NS + 1)]


def test_json_object_stream_keeps_multibyte_characters_split_between_chunks():
    raw = (json.dumps(filer_event("ü.pdf"), ensure_ascii=False) + "\n").encode()
    cut = raw.index("ü".encode()) + 1  # in the middle of the two UTF-8 bytes
    stream = JsonObjectStream()
    out = list(stream.feed(raw[:cut])) + list(stream.feed(raw[cut:]))
    assert out[0]["eventNotification"]["newEntry"]["name"] == "ü.pdf"


def test_tail_resumes_one_second_before_the_checkpoint_and_from_the_start_without_one():
    now = 2_000_000_000_000_000_000
    resumed = tail_command("weed", "127.0.0.1:18888", BUCKET, since_ns=now - 5_000_000_000, now_ns=now)
    assert "-timeAgo=6000000000ns" in resumed
    assert "-pathPrefix=/buckets/claims-landing/" in resumed
    assert f"-timeAgo={now}ns" in tail_command("weed", "127.0.0.1:18888", BUCKET, since_ns=None, now_ns=now)


def test_checkpoint_round_trips_and_is_absent_at_first(tmp_path):
    checkpoint = Checkpoint(tmp_path / "s3-events" / "checkpoint.json")
    assert checkpoint.load() is None
    checkpoint.save(TS_NS)
    assert checkpoint.load() == TS_NS


@pytest.mark.parametrize("key", ["a", "deep/er/key with spaces.pdf"])
def test_bucket_arn_and_name_match_the_bucket(key):
    record = record_of(s3_event_from_filer_event(filer_event(key), bucket=BUCKET))
    assert record["s3"]["bucket"]["arn"].endswith(":::" + record["s3"]["bucket"]["name"])


def test_only_keys_under_the_notification_prefix_are_notified() -> None:
    inside = s3_event_from_filer_event(filer_event("incoming/a.pdf"), bucket=BUCKET, prefix="incoming/")
    outside = s3_event_from_filer_event(filer_event("processed/a.pdf.json"), bucket=BUCKET, prefix="incoming/")
    assert inside is not None and outside is None


def _filer_event(ts_ns: int, name: str) -> dict:
    return {"tsNs": str(ts_ns), "eventNotification": {"newParentPath": "/buckets/claims-landing/incoming/c",
                                                      "newEntry": {"name": name}}}


def test_event_delivered_after_a_newer_one_is_still_new() -> None:
    # Seen in the fault suite: three concurrent uploads, the filer's log delivered tsNs ...761, ...760, ...787.
    from claimsctl.stack.s3_events import SeenEvents

    seen = SeenEvents()
    order = [_filer_event(TS_NS + 761, "a.jpg"), _filer_event(TS_NS + 760, "b.jpg"), _filer_event(TS_NS + 787, "c.png")]
    handled = []
    for event in order:
        if seen.is_new(event):
            handled.append(event["eventNotification"]["newEntry"]["name"])
            seen.mark(event)
    assert handled == ["a.jpg", "b.jpg", "c.png"]
    assert not any(seen.is_new(e) for e in order)  # the tail's replay overlap after a restart repeats nothing


def test_seen_events_survive_a_restart_through_the_checkpoint(tmp_path) -> None:  # noqa: ANN001
    from claimsctl.stack.s3_events import REORDER_WINDOW_NS, SeenEvents

    checkpoint = Checkpoint(tmp_path / "checkpoint.json")
    seen = SeenEvents()
    for event in (_filer_event(TS_NS, "a"), _filer_event(TS_NS + 5, "b")):
        seen.mark(event)
    checkpoint.save_seen(seen)
    again = checkpoint.load_seen()
    assert checkpoint.load() == TS_NS + 5
    assert not again.is_new(_filer_event(TS_NS, "a")) and again.is_new(_filer_event(TS_NS + 1, "late"))
    assert not again.is_new(_filer_event(TS_NS + 5 - REORDER_WINDOW_NS, "too old"))
