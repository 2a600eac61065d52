"""The original record inside a dead letter (`claims.cdc.dead-letter.v1`, `telematics.dead-letter.v1`).

A dead letter carries the bad record's bytes (base64) so it can be inspected and replayed. Base64 grows a payload
by a third, so the dead letter of a record near the broker's message size limit (1 MB by default) is itself too
large: the broker rejects it, the batch is never committed, and the service retries that batch forever, stuck
behind one poison record (found by the fault suite, tests/faults/test_poison.py). Payloads over
MAX_ORIGINAL_BYTES are therefore cut, and the letter says so and carries the full size and SHA-256, enough to find
the record again at its source topic/partition/offset.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

MAX_ORIGINAL_BYTES = 256 * 1024


def original_fields(key: bytes | None, value: bytes | None) -> dict[str, Any]:
    """`original_key_b64`, `original_value_b64` (cut to MAX_ORIGINAL_BYTES) and, when cut,
    `original_value_truncated`, `original_value_bytes`, `original_value_sha256`."""
    fields: dict[str, Any] = {"original_key_b64": _b64(key[:MAX_ORIGINAL_BYTES] if key else key)}
    if value is not None and len(value) > MAX_ORIGINAL_BYTES:
        fields.update(original_value_b64=_b64(value[:MAX_ORIGINAL_BYTES]), original_value_truncated=True,
                      original_value_bytes=len(value), original_value_sha256=hashlib.sha256(value).hexdigest())
    else:
        fields["original_value_b64"] = _b64(value)
    return fields


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()
