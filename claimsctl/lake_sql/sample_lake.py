"""A small claims lake with known facts, written with delta-rs in the documented layouts (current/, history/,
append/; columns from `tables.py`). For the tests, the notebooks' test and trying the views without a stack
(`claimsctl lake sample DIR`).

Times are relative to when it is written (the SLA view compares with now). Facts (`SampleFacts`):
- CLM-2026-0000001: document, a trip and a crash within an hour of the loss, a telematics fraud alert, SLA overdue.
- CLM-2026-0000002: loss 8 days after policy inception, claimed above the vehicle's value, a photo showing another
  VIN; SLA on track.
- CLM-2026-0000003: closed and paid (not in the SLA view).
- CLM-2026-0000004: deleted in version 1 of the current tables (a tombstone), live in version 0.
Current tables: version 0 is the first load; version 1 of `current/claims` moves claim 1 from fnol to assessing
and deletes claim 4. `SampleFacts.between_versions` is a time between the two commits.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from claimsctl.lake_sql.tables import CDC_TABLES, LakeTable


@dataclass(frozen=True)
class SampleFacts:
    root: str
    now: datetime
    between_versions: datetime
    claim_with_everything: str = "CLM-2026-0000001"
    claim_soon_after_inception: str = "CLM-2026-0000002"
    claim_closed: str = "CLM-2026-0000003"
    claim_deleted: str = "CLM-2026-0000004"
    device: str = "dev-0001"


def _uuid(kind: str, n: int) -> str:
    prefix = {"customer": "c", "policy": "b", "vehicle": "a", "driver": "d", "claim": "e", "payment": "f"}[kind]
    return f"{prefix * 8}-0000-4000-8000-{n:012d}"


def write_sample_lake(root: str | Path) -> SampleFacts:
    """Write the sample lake under `root` (a local directory, created) and return its facts."""
    from deltalake import write_deltalake

    root = str(Path(root).resolve())
    now = datetime.now(timezone.utc).replace(microsecond=0)
    day = timedelta(days=1)
    loss1 = now - 3 * day
    loss2 = now - 2 * day
    pos = iter(range(1000, 100000, 10))

    def meta(op: str = "c", ts: datetime | None = None) -> dict[str, Any]:
        n = next(pos)
        return {"_deleted": op == "d", "_op": op, "_event_id": f"{n:032x}", "_source_pos": Decimal(n),
                "_source_ts": ts or now - 5 * day}

    customers = [
        {"customer_id": _uuid("customer", i), "full_name": f"tok_name_{i}", "date_of_birth": f"tok_dob_{i}",
         "email": f"tok_email_{i}", "phone": f"tok_phone_{i}", "national_id": f"tok_nid_{i}",
         "address": '{"city":"Lyon"}', "marketing_opt_in": False, "created_at": now - 500 * day,
         "updated_at": now - 500 * day, **meta()}
        for i in (1, 2)
    ]
    policies = [
        {"policy_id": _uuid("policy", 1), "policy_number": "POL-2025-0000001", "customer_id": _uuid("customer", 1),
         "product": "motor_comprehensive", "inception_date": (now - 400 * day).date(),
         "expiry_date": (now + 330 * day).date(), "sum_insured": Decimal("30000.00"),
         "annual_premium": Decimal("640.00"), "excess_amount": Decimal("250.00"), "currency": "EUR",
         "status": "active", "cover_options": ["glass"], "created_at": now - 400 * day,
         "updated_at": now - 400 * day, **meta()},
        {"policy_id": _uuid("policy", 2), "policy_number": "POL-2026-0000002", "customer_id": _uuid("customer", 2),
         "product": "motor_tpft", "inception_date": (loss2 - 8 * day).date(), "expiry_date": (now + 355 * day).date(),
         "sum_insured": Decimal("9000.00"), "annual_premium": Decimal("410.00"), "excess_amount": Decimal("300.00"),
         "currency": "EUR", "status": "active", "cover_options": [], "created_at": now - 10 * day,
         "updated_at": now - 10 * day, **meta()},
    ]
    vehicles = [
        {"vehicle_id": _uuid("vehicle", 1), "policy_id": _uuid("policy", 1), "vin": "WVWZZZ1JZXW000001",
         "make": "Volkswagen", "model": "Golf", "model_year": 2019, "registration": "AB-123-CD",
         "market_value": Decimal("15000.00"), "telematics_device_id": "dev-0001", "created_at": now - 400 * day,
         **meta()},
        {"vehicle_id": _uuid("vehicle", 2), "policy_id": _uuid("policy", 2), "vin": "VF1RFB00012345678",
         "make": "Renault", "model": "Clio", "model_year": 2015, "registration": "EF-456-GH",
         "market_value": Decimal("8000.00"), "telematics_device_id": None, "created_at": now - 10 * day, **meta()},
    ]
    drivers = [
        {"driver_id": _uuid("driver", i), "policy_id": _uuid("policy", i), "customer_id": _uuid("customer", i),
         "full_name": f"tok_name_{i}", "date_of_birth": f"tok_dob_{i}", "licence_number": f"tok_lic_{i}",
         "licence_issued": date(2010, 1, 1), "is_main_driver": True, "created_at": now - 400 * day, **meta()}
        for i in (1, 2)
    ]
    adjusters = [
        {"adjuster_id": 1, "full_name": "Ada Martin", "email": "ada@example.com", "region": "north",
         "skills": ["motor"], "max_open_claims": 40, "shift_start": "08:00:00", "active": True, **meta()},
        {"adjuster_id": 2, "full_name": "Noor Haddad", "email": "noor@example.com", "region": "south",
         "skills": ["motor", "injury"], "max_open_claims": 30, "shift_start": "09:00:00", "active": True, **meta()},
    ]

    def claim(n: int, status: str, loss: datetime, policy: int, vehicle: int, *, sla_due: datetime,
              claimed: str, **extra: Any) -> dict[str, Any]:
        row = {"claim_id": _uuid("claim", n), "claim_number": f"CLM-2026-{n:07d}", "policy_id": _uuid("policy", policy),
               "vehicle_id": _uuid("vehicle", vehicle), "driver_id": _uuid("driver", policy), "status": status,
               "loss_time": loss, "loss_local_time": loss.replace(tzinfo=None) + timedelta(hours=1),
               "loss_lat": 45.76, "loss_lon": 4.84, "loss_type": "collision", "description": f"sample claim {n}",
               "reported_at": loss + timedelta(hours=2), "claimed_amount": Decimal(claimed),
               "reserve_amount": Decimal("1000.00"), "settled_amount": None, "sla_due_at": sla_due,
               "third_party_involved": False, "injury_count": 0, "tags": ["motor"], "details": "{}", "row_version": 1,
               "created_at": loss + timedelta(hours=2), "updated_at": loss + timedelta(hours=2)}
        row.update(extra)
        return row

    claims_v0 = [
        claim(1, "fnol", loss1, 1, 1, sla_due=now - day, claimed="2500.00"),
        claim(2, "fnol", loss2, 2, 2, sla_due=now + 5 * day, claimed="9000.00"),
        claim(3, "closed", now - 60 * day, 1, 1, sla_due=now - 30 * day, claimed="1200.00",
              settled_amount=Decimal("1200.00")),
        claim(4, "draft", now - 20 * day, 1, 1, sla_due=now + 2 * day, claimed="300.00"),
    ]
    claims_v0 = [{**c, **meta(ts=c["created_at"])} for c in claims_v0]
    claim1_v1 = {**claims_v0[0], "status": "assessing", "row_version": 2, "updated_at": now - day,
                 **meta("u", ts=now - day)}
    claim4_tombstone = {**{k: None for k in claims_v0[3]}, "claim_id": claims_v0[3]["claim_id"], **meta("d", ts=now - day)}
    claims_v1 = [claim1_v1, claims_v0[1], claims_v0[2], claim4_tombstone]

    payments = [{"payment_id": _uuid("payment", 1), "claim_id": _uuid("claim", 3), "amount": Decimal("1200.00"),
                 "currency": "EUR", "payee": "repairer", "method": "bank_transfer", "reference": "PAY-1",
                 "paid_at": now - 40 * day, "value_date": (now - 40 * day).date(), **meta()}]
    assignments = [
        {"assignment_id": 1, "claim_id": _uuid("claim", 1), "adjuster_id": 1, "role": "lead",
         "assigned_at": loss1 + timedelta(hours=3), "unassigned_at": None, **meta()},
        {"assignment_id": 2, "claim_id": _uuid("claim", 2), "adjuster_id": 1, "role": "lead",
         "assigned_at": loss2 + timedelta(hours=3), "unassigned_at": loss2 + timedelta(hours=20), **meta()},
        {"assignment_id": 3, "claim_id": _uuid("claim", 2), "adjuster_id": 2, "role": "lead",
         "assigned_at": loss2 + timedelta(hours=20), "unassigned_at": None, **meta()},
    ]
    current = {"customers": customers, "policies": policies, "vehicles": vehicles, "drivers": drivers,
               "adjusters": adjusters, "claims": claims_v0, "claim_payments": payments,
               "adjuster_assignments": assignments}
    assert set(current) == set(CDC_TABLES)

    def write(table: LakeTable, rows: list[dict[str, Any]], mode: str = "error") -> None:
        write_deltalake(table.location(root), _arrow(rows, table.arrow_schema()), mode=mode)

    for name, rows in current.items():
        write(LakeTable("current", name), rows)
        history_rows = [_history_row(r, valid_to=None) for r in rows]
        if name == "claims":
            history_rows = [_history_row(claims_v0[0], valid_to=now - day), _history_row(claim1_v1, valid_to=None),
                            *history_rows[1:3], _history_row(claims_v0[3], valid_to=now - day),
                            _history_row(claim4_tombstone, valid_to=None)]
        write(LakeTable("history", name), history_rows)

    # Delta commit timestamps are milliseconds of wall clock: leave a visible gap around the "between" instant.
    time.sleep(0.05)
    between = datetime.now(timezone.utc)
    time.sleep(0.05)
    write(LakeTable("current", "claims"), claims_v1, mode="overwrite")

    _write_append(root, now, loss1, loss2)
    return SampleFacts(root=root, now=now, between_versions=between)


def _history_row(row: dict[str, Any], valid_to: datetime | None) -> dict[str, Any]:
    kept = {k: v for k, v in row.items() if k not in ("_deleted", "_source_ts")}
    return {**kept, "_valid_from": row["_source_ts"], "_valid_to": valid_to, "_is_current": valid_to is None,
            "_unchanged": []}


def _kafka(topic: str, offset: int, when: datetime) -> dict[str, Any]:
    return {"_kafka_topic": topic, "_kafka_partition": 0, "_kafka_offset": offset, "_event_date": when.date()}


def _write_append(root: str, now: datetime, loss1: datetime, loss2: datetime) -> None:
    from deltalake import write_deltalake

    minute = timedelta(minutes=1)
    dev = "dev-0001"
    near_start = loss1 - 30 * minute
    near_trip = {"trip_id": f"{dev}:{int(near_start.timestamp() * 1000)}", "vehicle_id": dev, "start_ts": near_start,
                 "end_ts": loss1 + 2 * minute, "distance_km": 21.4, "duration_s": 1920.0, "max_speed_kmh": 92.0,
                 "readings": 1920, "score": 61.5, "start_lat": 45.70, "start_lon": 4.80, "end_lat": 45.76,
                 "end_lon": 4.84, "events_json": json.dumps([{"type": "crash"}]), "path_json": "[]"}
    far_start = loss1 - 2 * timedelta(days=1)
    far_trip = {**near_trip, "trip_id": f"{dev}:{int(far_start.timestamp() * 1000)}", "start_ts": far_start,
                "end_ts": far_start + 20 * minute, "distance_km": 8.0, "events_json": "[]"}
    trips = [
        {**far_trip, **_kafka("telematics.trips.v1", 10, far_start)},
        {**near_trip, **_kafka("telematics.trips.v1", 11, near_start)},
        {**near_trip, **_kafka("telematics.trips.v1", 12, near_start)},  # redelivered: same trip_id
    ]
    events = [
        {"event_id": f"{near_trip['trip_id']}:harsh_braking", "trip_id": near_trip["trip_id"], "vehicle_id": dev,
         "type": "harsh_braking", "start_ts": loss1 - minute, "end_ts": loss1 - minute + timedelta(seconds=3),
         "peak_g": 0.62, "severity": 0.7, "lat": 45.759, "lon": 4.839, **_kafka("telematics.events.v1", 5, loss1)},
        {"event_id": f"{near_trip['trip_id']}:crash", "trip_id": near_trip["trip_id"], "vehicle_id": dev,
         "type": "crash", "start_ts": loss1, "end_ts": loss1 + timedelta(seconds=1), "peak_g": 4.1, "severity": 1.0,
         "lat": 45.76, "lon": 4.84, **_kafka("telematics.events.v1", 6, loss1)},
        {"event_id": f"{far_trip['trip_id']}:speeding", "trip_id": far_trip["trip_id"], "vehicle_id": dev,
         "type": "speeding", "start_ts": far_start + 5 * minute, "end_ts": far_start + 6 * minute, "peak_g": 0.1,
         "severity": 0.3, "lat": 45.7, "lon": 4.8, **_kafka("telematics.events.v1", 4, far_start)},
    ]
    scores = [
        {"vehicle_id": dev, "score": 80.0, "trips": 1, "distance_km": 8.0, "events": 1, "crashes": 0,
         "last_trip_end_ts": far_trip["end_ts"], "trip_id": far_trip["trip_id"],
         **_kafka("telematics.driver-scores.v1", 1, far_start)},
        {"vehicle_id": dev, "score": 71.2, "trips": 2, "distance_km": 29.4, "events": 3, "crashes": 1,
         "last_trip_end_ts": near_trip["end_ts"], "trip_id": near_trip["trip_id"],
         **_kafka("telematics.driver-scores.v1", 2, near_start)},
    ]
    documents = [
        {"document_id": "doc_" + "1" * 32, "sha256": "ab" * 32, "mime_type": "application/pdf", "size_bytes": 48211,
         "status": "ok", "reason": None, "name": "incoming/claim-form-0000001.pdf", "source_bucket": "claims-landing",
         "source_key": "incoming/claim-form-0000001.pdf", "source_version_id": None, "source_etag": "e1",
         "pages": 1, "width": None, "height": None, "exif_captured_at": None, "exif_gps_lat": None,
         "exif_gps_lon": None, "exif_camera_make": None, "exif_camera_model": None, "phash": None,
         "text": "Claim CLM-2026-0000001 ...", "text_source": "text_layer", "ocr_confidence": None,
         "fields_claim_number": "CLM-2026-0000001", "fields_policy_number": "POL-2025-0000001",
         "fields_vin": "WVWZZZ1JZXW000001", "fields_loss_date": loss1.date(), "fields_amounts_json": '["2500.00"]',
         "notes_json": "[]", **_kafka("claims.documents.v1", 3, loss1)},
        {"document_id": "doc_" + "2" * 32, "sha256": "cd" * 32, "mime_type": "image/jpeg", "size_bytes": 512000,
         "status": "ok", "reason": None, "name": "incoming/photo-0000002.jpg", "source_bucket": "claims-landing",
         "source_key": "incoming/photo-0000002.jpg", "source_version_id": None, "source_etag": "e2", "pages": 1,
         "width": 1600, "height": 1200, "exif_captured_at": loss2.replace(tzinfo=None).isoformat(),
         "exif_gps_lat": 45.1, "exif_gps_lon": 5.2, "exif_camera_make": "Canon", "exif_camera_model": "EOS",
         "phash": "f0f0f0f0f0f0f0f0", "text": "VIN 1HGCM82633A004352", "text_source": "ocr", "ocr_confidence": 88.0,
         "fields_claim_number": "CLM-2026-0000002", "fields_policy_number": None, "fields_vin": "1HGCM82633A004352",
         "fields_loss_date": None, "fields_amounts_json": "[]", "notes_json": "[]",
         **_kafka("claims.documents.v1", 4, loss2)},
    ]
    alerts = [
        {"alert_id": "5b6f1c1e-0000-5000-8000-000000000001", "claim_id": _uuid("claim", 1),
         "claim_number": "CLM-2026-0000001", "rule": "telematics_far_from_loss_location", "severity": "high",
         "source": "telematics_scorer", "summary": "Vehicle was 38 km from the reported loss location",
         "evidence_json": '{"distance_km":38.2}', "vehicle_id": _uuid("vehicle", 1), "device_id": dev,
         "loss_time": loss1, "loss_lat": 45.76, "loss_lon": 4.84, "claim_change_ts": loss1 + timedelta(hours=2),
         "detected_at": loss1 + timedelta(hours=2, seconds=3), **_kafka("claims.fraud-alerts.v1", 0, loss1)},
    ]
    for name, rows in (("telematics_trips", trips), ("telematics_events", events), ("driver_scores", scores),
                       ("documents", documents), ("fraud_alerts", alerts)):
        table = LakeTable("append", name)
        write_deltalake(table.location(root), _arrow(rows, table.arrow_schema()), partition_by=["_event_date"])


def _arrow(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    unknown = {k for r in rows for k in r} - set(schema.names)
    if unknown:
        raise ValueError(f"columns not in the table's schema: {sorted(unknown)}")
    columns = {}
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_map(f.type):
            values = [None if v is None else list(v.items()) for v in values]
        columns[f.name] = pa.array(values, type=f.type)
    return pa.table(columns, schema=schema)
