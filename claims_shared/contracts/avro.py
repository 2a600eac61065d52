"""Avro encoding of contract records (fastavro, schemaless body; the schema is named in a message header).

Consumers without a schema registry load the same .avsc from this package; in docker-compose the
schema registry serves it under the topic's subject.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_HEADER = "claims-schema"


@lru_cache(maxsize=None)
def load_schema(name: str) -> Any:
    """Parsed Avro schema `schemas/<name>.avsc`, e.g. `telematics_reading.v1`."""
    return fastavro.parse_schema(json.loads((SCHEMA_DIR / f"{name}.avsc").read_text()))


def encode(name: str, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, load_schema(name), record)
    return buf.getvalue()


def decode(name: str, payload: bytes) -> dict[str, Any]:
    return fastavro.schemaless_reader(io.BytesIO(payload), load_schema(name))  # type: ignore[return-value]
