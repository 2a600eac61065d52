"""Helpers for CDC tests: write claims with psycopg, read Debezium events from the broker."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import psycopg
from confluent_kafka import Message

from claims_shared.settings import PlatformSettings
from tests.integration.kafka_helpers import read_topic


@dataclass(frozen=True)
class ChangeEvent:
    op: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    key: dict[str, Any]
    offset: int
    value_schema: dict[str, Any]

    def decimal(self, image: str, column: str) -> Decimal:
        """Decode a Connect Decimal (base64 unscaled bytes; scale in the schema)."""
        row = self.before if image == "before" else self.after
        assert row is not None
        raw = base64.b64decode(row[column])
        scale = int(_field_schema(self.value_schema, image, column)["parameters"]["scale"])
        return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)


def _field_schema(value_schema: dict[str, Any], image: str, column: str) -> dict[str, Any]:
    image_schema = next(f for f in value_schema["fields"] if f["field"] == image)
    return next(f for f in image_schema["fields"] if f["field"] == column)


def insert_claim(settings: PlatformSettings, *, status: str = "fnol", amount: str = "1234.50") -> str:
    """Insert a customer, policy, vehicle and one claim; returns the claim_id."""
    tag = uuid.uuid4().hex[:10]
    with psycopg.connect(settings.pg_dsn) as conn:
        customer = conn.execute(
            "INSERT INTO customers (full_name, date_of_birth, email, national_id) "
            "VALUES ('Test Person', '1980-02-29', %s, %s) RETURNING customer_id",
            (f"{tag}@example.org", f"NID-{tag}"),
        ).fetchone()[0]
        policy = conn.execute(
            "INSERT INTO policies (policy_number, customer_id, product, inception_date, expiry_date, "
            "sum_insured, annual_premium) VALUES (%s, %s, 'motor_comprehensive', '2026-01-01', '2027-01-01', "
            "25000, 612.40) RETURNING policy_id",
            (f"POL-T-{tag}", customer),
        ).fetchone()[0]
        claim = conn.execute(
            "INSERT INTO claims (claim_number, policy_id, status, loss_time, loss_lat, loss_lon, loss_type, "
            "claimed_amount, sla_due_at, details, tags) VALUES (%s, %s, %s, '2026-11-20T08:15:00Z', 48.85, 2.35, "
            "'collision', %s, now() + interval '5 days', '{\"weather\": \"rain\"}', '{urgent}') RETURNING claim_id",
            (f"CLM-T-{tag}", policy, status, Decimal(amount)),
        ).fetchone()[0]
    return str(claim)


def execute(settings: PlatformSettings, sql: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(settings.pg_dsn) as conn:
        conn.execute(sql, params)


def read_events(
    settings: PlatformSettings,
    topic: str,
    *,
    match: Callable[[ChangeEvent], bool],
    until: Callable[[list[ChangeEvent]], bool],
    timeout_s: float = 60.0,
    settle_s: float = 0.0,
) -> list[ChangeEvent]:
    """Debezium change events of `topic` that `match`, read from the start until `until(events)` holds."""

    def decode(msg: Message) -> ChangeEvent | None:
        event = _parse(msg.key(), msg.value(), msg.offset())
        return event if event and match(event) else None

    return read_topic(settings, topic, until=until, decode=decode, timeout_s=timeout_s, settle_s=settle_s)


def _parse(key: bytes | None, value: bytes, offset: int) -> ChangeEvent | None:
    doc = json.loads(value)
    payload = doc.get("payload")
    if not isinstance(payload, dict) or "op" not in payload:
        return None
    key_payload = json.loads(key)["payload"] if key else {}
    return ChangeEvent(payload["op"], payload.get("before"), payload.get("after"), key_payload, offset, doc["schema"])


def claim_id_of(event: ChangeEvent) -> str | None:
    return event.key.get("claim_id")


def insert_vehicle_with_claims(settings: PlatformSettings, device_id: str | None,
                               losses: list[tuple[str, float, float, str]]) -> tuple[str, list[str]]:
    """Insert a customer, policy, vehicle (with `device_id` as its black box) and one claim per
    (loss_time ISO, lat, lon, loss_type); returns (vehicle_id, claim_ids)."""
    tag = uuid.uuid4().hex[:10]
    with psycopg.connect(settings.pg_dsn) as conn:
        customer = conn.execute(
            "INSERT INTO customers (full_name, date_of_birth, national_id) VALUES ('Test Driver', '1985-06-01', %s) "
            "RETURNING customer_id", (f"NID-{tag}",)).fetchone()[0]
        policy = conn.execute(
            "INSERT INTO policies (policy_number, customer_id, product, inception_date, expiry_date, "
            "sum_insured, annual_premium) VALUES (%s, %s, 'motor_comprehensive', '2026-01-01', '2027-01-01', "
            "25000, 612.40) RETURNING policy_id", (f"POL-T-{tag}", customer)).fetchone()[0]
        vehicle = conn.execute(
            "INSERT INTO vehicles (policy_id, vin, make, model, model_year, registration, telematics_device_id) "
            "VALUES (%s, %s, 'Renault', 'Clio', 2021, %s, %s) RETURNING vehicle_id",
            (policy, f"VF1T{tag.upper()}XYZ"[:17].ljust(17, "0"), f"REG-{tag}", device_id)).fetchone()[0]
        claims = []
        for i, (loss_time, lat, lon, loss_type) in enumerate(losses):
            claims.append(str(conn.execute(
                "INSERT INTO claims (claim_number, policy_id, vehicle_id, status, loss_time, loss_lat, loss_lon, "
                "loss_type, sla_due_at) VALUES (%s, %s, %s, 'fnol', %s, %s, %s, %s, now() + interval '5 days') "
                "RETURNING claim_id", (f"CLM-T-{tag}-{i}", policy, vehicle, loss_time, lat, lon, loss_type),
            ).fetchone()[0]))
    return str(vehicle), claims
