"""Fraud alerts: one topic, one contract (`fraud_alert.v1`), written by every service that finds a red flag.

Keyed by claim_id so all alerts of a claim are in one partition, in order. The Avro body is schemaless with the
schema named in the `claims-schema` header, like the telematics topics; timestamps are epoch ms.
"""

from __future__ import annotations

import uuid
from typing import Any

from claims_shared.contracts.cdc import canonical_json
from claims_shared.contracts.telematics import decode_epoch_ms, encode_record, schema_headers
from claims_shared.contracts.topics import FRAUD_ALERTS

FRAUD_ALERTS_TOPIC = FRAUD_ALERTS
FRAUD_ALERT_SCHEMA = "fraud_alert.v1"
SEVERITIES = ("low", "medium", "high")

# Fixed namespace: alert ids must be the same on every machine and every run.
_ALERT_NAMESPACE = uuid.UUID("5d1b1f0e-7f4c-4d5e-9c43-2a1d6f0c9b17")


def alert_id(source: str, rule: str, claim_id: str, facts: dict[str, Any]) -> str:
    """Deterministic id of an alert: the same rule on the same claim facts always gives the same id."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{source}|{rule}|{claim_id}|{canonical_json(facts)}"))


def encode_alert(record: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a `fraud_alert.v1` record (timestamps as epoch ms)."""
    if record["severity"] not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {record['severity']!r}")
    return record["claim_id"].encode(), encode_record(FRAUD_ALERT_SCHEMA, record), schema_headers(FRAUD_ALERT_SCHEMA)


def decode_alert(payload: bytes) -> dict[str, Any]:
    """A `fraud_alert.v1` body as a dict, timestamps as epoch ms."""
    return decode_epoch_ms(FRAUD_ALERT_SCHEMA, payload)
