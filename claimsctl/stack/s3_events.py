"""Landing-bucket notifications for the embedded stack: SeaweedFS filer events -> AWS S3 event messages on SQS.

In production, S3 itself sends these notifications (bucket notification configuration -> SQS); this relay only
stands in for that feature in the embedded stack, because SeaweedFS has no S3 bucket notifications (its API
answers PutBucketNotificationConfiguration as if it were CreateBucket and stores nothing).

How it works: `weed filer.meta.tail` streams the filer's metadata log (one protobuf-JSON object per change) for
`/buckets/<bucket>/`; each change that creates or overwrites an object becomes one AWS-shaped S3 event message
(`{"Records": [...]}`, same fields and key encoding as AWS) sent to the queue. What was handled (the highest
`tsNs` and the changes of the second below it: the log is not strictly ordered, see `SeenEvents`) is kept in a
checkpoint file and the tail resumes from it, so a restarted relay neither loses nor repeats
notifications, except that a crash between "sent" and "checkpoint written" repeats one message (at-least-once,
which is also what S3 promises: consumers must be idempotent).

Limits (embedded stack only): the filer persists its metadata log about once a minute and on a clean stop
(SIGTERM), so after a hard kill of SeaweedFS the changes of its last minute that the relay had not yet read
cannot be replayed. Copies arrive as `ObjectCreated:Put`, folder markers (`key/`) are not notified.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import quote_plus

log = logging.getLogger("claims.s3_events")

BUCKETS_ROOT = "/buckets"
# SeaweedFS keeps in-progress multipart parts and object versions under these names inside the bucket.
_UPLOADS_DIR = ".uploads"
_VERSIONS_SUFFIX = ".versions"
_EXT_ETAG = "Seaweed-X-Amz-ETag"
_EXT_OWNER = "Seaweed-X-Amz-Owner"
_EXT_VERSION_ID = "Seaweed-X-Amz-Version-Id"
_EXT_UPLOAD_ID = "X-Seaweedfs-Upload-Id"


# --------------------------------------------------------------------------------------------------------------
# Pure mapping: one filer metadata event -> one S3 event notification message (or None).
# --------------------------------------------------------------------------------------------------------------


def s3_event_from_filer_event(
    event: Mapping[str, Any],
    *,
    bucket: str,
    region: str = "us-east-1",
    configuration_id: str = "landing-object-created",
    prefix: str = "",
) -> dict[str, Any] | None:
    """Map a `weed filer.meta.tail` JSON event to an AWS S3 `{"Records": [record]}` message.

    Returns None unless the event creates or overwrites an object in `bucket` under `prefix` (the notification's
    filter rule): directories, deletes, multipart temporary parts, and metadata-only updates (tagging, ACL) are not
    object creations.
    """
    notification = event.get("eventNotification") or {}
    new = notification.get("newEntry")
    if not new or new.get("isDirectory"):
        return None
    directory = notification.get("newParentPath") or event.get("directory") or ""
    located = _bucket_and_key(directory, new.get("name") or "")
    if located is None or located[0] != bucket:
        return None
    key = located[1]
    old = notification.get("oldEntry")
    if old and not old.get("isDirectory") and _same_content(old, new):
        return None  # tagging/ACL/metadata change: S3 sends ObjectTagging:* etc., not ObjectCreated

    extended = new.get("extended") or {}
    attributes = new.get("attributes") or {}
    ts_ns = int(event["tsNs"])
    owner = _ext_text(extended, _EXT_OWNER) or "anonymous"
    version_id = _ext_text(extended, _EXT_VERSION_ID)
    if located[2] is not None:  # an object version file: the key is the versions folder without its suffix
        key = located[2]
    if not key.startswith(prefix):
        return None
    event_name = "ObjectCreated:CompleteMultipartUpload" if _EXT_UPLOAD_ID in extended else "ObjectCreated:Put"
    request_id = f"{ts_ns:016X}"[-16:]

    obj: dict[str, Any] = {
        # AWS form-encodes the key (space -> '+', '/' kept); consumers must urllib.parse.unquote_plus it.
        "key": quote_plus(key, safe="/"),
        "size": int(attributes.get("fileSize") or 0),
        "eTag": _etag(new),
    }
    if version_id and version_id != "null":
        obj["versionId"] = version_id
    obj["sequencer"] = f"{ts_ns:018X}"

    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _iso_millis(ts_ns),
        "eventName": event_name,
        "userIdentity": {"principalId": owner},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": f"seaweedfs/{request_id}"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": owner},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }
    return {"Records": [record]}


def _bucket_and_key(directory: str, name: str) -> tuple[str, str, str | None] | None:
    """(bucket, key, versioned_key) for a filer path under /buckets, or None for internal paths."""
    prefix = BUCKETS_ROOT + "/"
    if not directory.startswith(prefix) or not name:
        return None
    parts = directory[len(prefix):].strip("/").split("/")
    bucket, folders = parts[0], [p for p in parts[1:] if p]
    if not bucket or (folders and folders[0] == _UPLOADS_DIR):
        return None
    key = "/".join([*folders, name])
    versioned_key = None
    if folders and folders[-1].endswith(_VERSIONS_SUFFIX):
        versioned_key = "/".join([*folders[:-1], folders[-1][: -len(_VERSIONS_SUFFIX)]])
    return bucket, key, versioned_key


def _same_content(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return _etag(old) == _etag(new) and _chunk_ids(old) == _chunk_ids(new)


def _chunk_ids(entry: Mapping[str, Any]) -> list[Any]:
    return [c.get("fileId") or c.get("fid") for c in entry.get("chunks") or []]


def _ext_text(extended: Mapping[str, str], name: str) -> str | None:
    raw = extended.get(name)
    if not raw:
        return None
    try:  # protobuf JSON carries `bytes` values as base64
        return base64.b64decode(raw).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def _etag(entry: Mapping[str, Any]) -> str:
    """The S3 ETag without quotes: the one the S3 API stored, else the content MD5 in hex."""
    stored = _ext_text(entry.get("extended") or {}, _EXT_ETAG)
    if stored:
        return stored.strip('"')
    md5 = (entry.get("attributes") or {}).get("md5")
    if md5:
        return base64.b64decode(md5).hex()
    chunks = entry.get("chunks") or []
    if len(chunks) == 1 and chunks[0].get("eTag"):
        etag = chunks[0]["eTag"]
        try:
            return base64.b64decode(etag, validate=True).hex()
        except ValueError:
            return etag.strip('"')
    return ""


def _iso_millis(ts_ns: int) -> str:
    moment = datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------------------------------------------
# Stream decoding and checkpointing (pure or file-local; no servers).
# --------------------------------------------------------------------------------------------------------------


class JsonObjectStream:
    """Splits a byte stream of concatenated JSON objects (protojson pretty-prints with random spacing)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = json.JSONDecoder()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()  # a chunk may end inside a multi-byte character

    def feed(self, chunk: bytes | str) -> Iterator[dict[str, Any]]:
        self._buffer += self._utf8.decode(chunk) if isinstance(chunk, bytes) else chunk
        pos = 0
        while True:
            while pos < len(self._buffer) and self._buffer[pos].isspace():
                pos += 1
            if pos >= len(self._buffer):
                break
            try:
                obj, pos = self._decoder.raw_decode(self._buffer, pos)
            except json.JSONDecodeError:
                break  # incomplete object: wait for more bytes
            yield obj
        self._buffer = self._buffer[pos:]


# How far out of order the filer's metadata log may deliver events (and the tail's replay overlap on restart).
REORDER_WINDOW_NS = 1_000_000_000


@dataclass
class SeenEvents:
    """Which filer events were handled, for a log whose `tsNs` are NOT monotonic.

    Concurrent writes reach the metadata log slightly out of order: an event can carry a `tsNs` below one delivered
    before it (seen: 0.7 ms, three uploads of one claim at once). Skipping "everything at or below the last tsNs"
    silently lost those notifications. Kept instead: the highest tsNs handled, and the identities of the events
    handled within REORDER_WINDOW_NS below it; an event is new unless it is one of those or older than the window.
    """

    high: int | None = None
    recent: dict[str, int] = field(default_factory=dict)  # identity -> tsNs

    @staticmethod
    def identity(event: Mapping[str, Any]) -> str:
        notification = event.get("eventNotification") or {}
        entry = notification.get("newEntry") or notification.get("oldEntry") or {}
        directory = notification.get("newParentPath") or event.get("directory") or ""
        return f"{int(event.get('tsNs') or 0)}|{directory}|{entry.get('name') or ''}"

    def is_new(self, event: Mapping[str, Any]) -> bool:
        if self.high is None:
            return True
        ts_ns = int(event.get("tsNs") or 0)
        return ts_ns > self.high - REORDER_WINDOW_NS and self.identity(event) not in self.recent

    def mark(self, event: Mapping[str, Any]) -> None:
        ts_ns = int(event.get("tsNs") or 0)
        self.high = ts_ns if self.high is None else max(self.high, ts_ns)
        self.recent[self.identity(event)] = ts_ns
        floor = self.high - REORDER_WINDOW_NS
        for ident in [i for i, ts in self.recent.items() if ts <= floor]:
            del self.recent[ident]


@dataclass
class Checkpoint:
    """The handled filer events (`SeenEvents`: highest tsNs + the recent ones), kept in one small file."""

    path: Path

    def load(self) -> int | None:
        seen = self.load_seen()
        return seen.high

    def load_seen(self) -> SeenEvents:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return SeenEvents()
        return SeenEvents(int(doc["ts_ns"]), {str(k): int(v) for k, v in (doc.get("recent") or {}).items()})

    def save(self, ts_ns: int) -> None:
        self.save_seen(SeenEvents(ts_ns))

    def save_seen(self, seen: SeenEvents) -> None:
        assert seen.high is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ts_ns": seen.high, "at": _iso_millis(seen.high), "recent": seen.recent}))
        os.replace(tmp, self.path)


def tail_command(weed: str, filer: str, bucket: str, since_ns: int | None, now_ns: int) -> list[str]:
    """`weed filer.meta.tail` argv replaying from `since_ns` (everything when None; 1 s overlap, deduped by ts)."""
    start = 0 if since_ns is None else max(0, since_ns - 1_000_000_000)
    ago_ns = max(1, now_ns - start)
    return [
        weed, "filer.meta.tail",
        f"-filer={filer}",
        f"-pathPrefix={BUCKETS_ROOT}/{bucket}/",
        f"-timeAgo={ago_ns}ns",
    ]


# --------------------------------------------------------------------------------------------------------------
# The relay process.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelayConfig:
    weed: str
    filer: str  # host:port of the filer HTTP port (gRPC is +10000)
    bucket: str
    queue_url: str
    checkpoint: Path
    status_file: Path
    region: str = "us-east-1"
    # Notification filter rule, as on the production bucket: only keys under this prefix are notified.
    prefix: str = ""


def run_relay(
    config: RelayConfig,
    send: Callable[[str], None],
    stop: threading.Event,
    source_ready: Callable[[], bool] = lambda: True,
    replay_since_ns: int | None = None,
) -> None:
    """Relay until `stop` is set; (re)starts the tail from the checkpoint whenever it ends or sending fails."""
    checkpoint = Checkpoint(config.checkpoint)
    # A replay re-sends everything after replay_since_ns: as if events up to it had been handled, none after.
    seen = checkpoint.load_seen() if replay_since_ns is None else SeenEvents(replay_since_ns + REORDER_WINDOW_NS)
    backoff = 0.5
    while not stop.is_set():
        if not source_ready():
            # Reading the metadata log before the volume server has registered silently skips log files.
            stop.wait(1.0)
            continue
        last = seen.high
        argv = tail_command(config.weed, config.filer, config.bucket, last, time.time_ns())
        log.info(json.dumps({"msg": "tail starting", "since_ns": last, "argv": argv}))
        # Same process group as the relay: stopping the relay's group also stops the tail.
        tail = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        config.status_file.write_text(json.dumps({"state": "tailing", "pid": os.getpid(), "since_ns": last}))
        assert tail.stdout is not None
        watcher = threading.Thread(target=_stop_on_event, args=(stop, tail), daemon=True)
        watcher.start()
        stream = JsonObjectStream()
        try:
            while True:
                chunk = os.read(tail.stdout.fileno(), 65536)
                if not chunk:
                    break
                for event in stream.feed(chunk):
                    ts_ns = int(event.get("tsNs") or 0)
                    if not seen.is_new(event):
                        continue
                    message = s3_event_from_filer_event(event, bucket=config.bucket, region=config.region,
                                                        prefix=config.prefix)
                    if message is not None:
                        send(json.dumps(message, separators=(",", ":")))
                        obj = message["Records"][0]["s3"]["object"]
                        log.info(json.dumps({"msg": "notified", "key": obj["key"], "size": obj["size"], "ts_ns": ts_ns}))
                    seen.mark(event)
                    checkpoint.save_seen(seen)
                backoff = 0.5
        except Exception as exc:  # queue unreachable etc.: restart the tail from the checkpoint after a pause
            log.warning(json.dumps({"msg": "relay error, restarting from checkpoint", "error": repr(exc)}))
        finally:
            _terminate(tail)
        if not stop.is_set():
            stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)


def _stop_on_event(stop: threading.Event, proc: subprocess.Popen[bytes]) -> None:
    while proc.poll() is None:
        if stop.wait(0.5):
            _terminate(proc)
            return


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    from claims_shared.clients.aws import sqs_client
    from claims_shared.settings import get_settings
    from claimsctl.stack.objectstore import SeaweedPorts, seaweed_ready, weed_binary

    settings = get_settings()
    ports = SeaweedPorts.from_settings(settings)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay-since-ns", type=int, default=None,
                        help="ignore the checkpoint and re-send notifications for changes after this tsNs (0 = all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    state = settings.state_dir / "s3-events"
    state.mkdir(parents=True, exist_ok=True)
    sqs = sqs_client(settings)
    queue_url = sqs.get_queue_url(QueueName=settings.landing_queue)["QueueUrl"]
    config = RelayConfig(
        weed=str(weed_binary()),
        filer=f"127.0.0.1:{ports.filer}",
        bucket=settings.landing_bucket,
        queue_url=queue_url,
        checkpoint=state / "checkpoint.json",
        status_file=state / "status.json",
        region=settings.s3_region,
        prefix=settings.landing_incoming_prefix,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    data_dir = settings.state_dir / "seaweed" / "data"
    run_relay(
        config,
        send=lambda body: sqs.send_message(QueueUrl=queue_url, MessageBody=body),
        stop=stop,
        source_ready=lambda: seaweed_ready(ports, data_dir),
        replay_since_ns=args.replay_since_ns,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
