"""Sample records of the append-table streams (trips, events, driver scores, documents, fraud alerts, extract rows),
encoded with their contracts, for the compactor's tests."""

from __future__ import annotations

from typing import Any

from claims_shared.contracts.avro import SCHEMA_HEADER
from claims_shared.contracts.documents import DOCUMENT_RECORD_SCHEMA, encode_document_record
from claims_shared.contracts.fraud import FRAUD_ALERT_SCHEMA
from claims_shared.contracts.objects import EXTRACT_ROW_SCHEMA, encode_extract_row
from claims_shared.contracts.telematics import DRIVER_SCORE_SCHEMA, EVENT_SCHEMA, TRIP_SCHEMA, encode_record

T0 = 1_780_000_000_000  # 2026-05-28T20:26:40Z


def trip(n: int, vehicle: str = "veh-1") -> dict[str, Any]:
    start = T0 + n * 3_600_000
    return {
        "trip_id": f"trip-{n}", "vehicle_id": vehicle, "start_ts": start, "end_ts": start + 600_000,
        "distance_km": 7.5, "duration_s": 600.0, "max_speed_kmh": 88.0, "readings": 600, "score": 91.5,
        "start_lat": 48.85, "start_lon": 2.35, "end_lat": 48.9, "end_lon": 2.4,
        "events": [{"type": "harsh_braking", "start_ts": start + 60_000, "end_ts": start + 62_000, "peak_g": 0.5,
                    "severity": 1.2, "lat": 48.86, "lon": 2.36}],
        "path": [{"ts": start, "lat": 48.85, "lon": 2.35, "speed_mps": 0.0}],
    }


def event(n: int, vehicle: str = "veh-1") -> dict[str, Any]:
    start = T0 + n * 60_000
    return {"event_id": f"evt-{n}", "trip_id": "trip-1", "vehicle_id": vehicle, "type": "harsh_braking",
            "start_ts": start, "end_ts": start + 2000, "peak_g": 0.55, "severity": 1.3, "lat": 48.8, "lon": 2.3}


def driver_score(n: int, vehicle: str = "veh-1") -> dict[str, Any]:
    return {"vehicle_id": vehicle, "score": 88.0, "trips": n, "distance_km": 10.0 * n, "events": 1, "crashes": 0,
            "last_trip_end_ts": T0 + n * 3_600_000, "trip_id": f"trip-{n}"}


def document(n: int) -> dict[str, Any]:
    return {
        "document_id": f"doc_{n:032x}", "sha256": "ab" * 32, "mime_type": "image/jpeg", "size_bytes": 1000 + n,
        "status": "ok", "reason": None, "name": f"incoming/2026/05/28/CLM-2026-0000001/photo{n}.jpg",
        "source": {"bucket": "claims-landing", "key": f"incoming/photo{n}.jpg", "version_id": None, "etag": "e1"},
        "pages": 1, "width": 640, "height": 480,
        "exif": {"captured_at": "2026-05-28T10:00:00", "gps_lat": 48.85, "gps_lon": 2.35, "camera_make": "Canon",
                 "camera_model": "EOS"},
        "phash": "0123456789abcdef", "text": "", "text_source": "none", "ocr_confidence": None,
        "fields": {"claim_number": "CLM-2026-0000001", "policy_number": None, "vin": None,
                   "loss_date": "2026-05-27", "amounts": [1234.5, 10.0]},
        "notes": ["a note"],
    }


def fraud_alert(n: int, claim_id: str = "c-1") -> dict[str, Any]:
    return {"alert_id": f"alert-{n}", "claim_id": claim_id, "claim_number": "CLM-2026-0000001", "rule": "far",
            "severity": "high", "source": "telematics_scorer", "summary": "vehicle far away",
            "evidence_json": "{\"km\":42}", "vehicle_id": "veh-1", "device_id": "dev-1", "loss_time": T0,
            "loss_lat": 48.85, "loss_lon": 2.35, "claim_change_ts": T0, "detected_at": T0 + 1000 * n}


def extract_row(n: int) -> dict[str, Any]:
    from datetime import date
    from decimal import Decimal

    return {"row_id": f"doc_1:{n + 1}", "document_id": "doc_1", "source_bucket": "claims-landing",
            "source_key": "incoming/2026/03/02/batches/invoices.csv", "line_number": n + 1, "format": "csv",
            "record_type": "repair_shop_invoice", "invoice_id": f"INV-00001-{n:04d}", "claim_number": "CLM-2026-0000001",
            "repair_shop": "Garage du Nord", "invoice_date": date(2026, 3, 1), "amount": Decimal("123.40"),
            "vat_amount": Decimal("24.68"), "currency": "EUR", "vin": None}


def encoded(schema: str, record: dict[str, Any]) -> bytes:
    if schema == DOCUMENT_RECORD_SCHEMA:
        return encode_document_record(record)
    if schema == EXTRACT_ROW_SCHEMA:
        return encode_extract_row(record)[1]
    return encode_record(schema, record)


SCHEMAS = {"telematics_trips": TRIP_SCHEMA, "telematics_events": EVENT_SCHEMA,
           "driver_scores": DRIVER_SCORE_SCHEMA, "documents": DOCUMENT_RECORD_SCHEMA,
           "fraud_alerts": FRAUD_ALERT_SCHEMA, "extract_rows": EXTRACT_ROW_SCHEMA}
BUILDERS = {"telematics_trips": trip, "telematics_events": event, "driver_scores": driver_score,
            "documents": document, "fraud_alerts": fraud_alert, "extract_rows": extract_row}


def headers(schema: str) -> list[tuple[str, bytes]]:
    return [(SCHEMA_HEADER, schema.encode())]
