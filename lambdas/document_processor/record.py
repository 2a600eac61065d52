"""The document record: what the object stream publishes for one landing object (contract document_record.v1)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

OK = "ok"
QUARANTINED = "quarantined"


@dataclass(frozen=True)
class ObjectRef:
    """Where an object came from. `version_id` (versioned buckets) or else `etag` pins the exact bytes."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id, "etag": self.etag}


def document_id(bucket: str, key: str, version: str) -> str:
    """Deterministic id of one object version: redelivery of the same notification yields the same id.

    `version` is the S3 version id, or the ETag (quotes stripped) when the bucket is not versioned.
    """
    if not version:
        raise ValueError(f"a document id needs the object's version id or ETag (s3://{bucket}/{key})")
    digest = hashlib.sha256("\x1f".join((bucket, key, version.strip('"'))).encode()).hexdigest()
    return f"doc_{digest[:32]}"


def document_id_for(ref: ObjectRef) -> str:
    return document_id(ref.bucket, ref.key, ref.version_id or ref.etag or "")


@dataclass(frozen=True)
class ExifInfo:
    """Camera metadata of a photo. `captured_at` is the camera's local time (EXIF has no zone unless OffsetTime*)."""

    captured_at: str | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    camera_make: str | None = None
    camera_model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"captured_at": self.captured_at, "gps_lat": self.gps_lat, "gps_lon": self.gps_lon,
                "camera_make": self.camera_make, "camera_model": self.camera_model}


@dataclass(frozen=True)
class ExtractedFields:
    """Claim fields found in a document's text (None / empty when not found or not valid)."""

    claim_number: str | None = None
    policy_number: str | None = None
    vin: str | None = None
    loss_date: date | None = None
    amounts: tuple[Decimal, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim_number": self.claim_number,
            "policy_number": self.policy_number,
            "vin": self.vin,
            "loss_date": self.loss_date.isoformat() if self.loss_date else None,
            "amounts": [float(a) for a in self.amounts],
        }


TextSource = Literal["text_layer", "ocr", "mixed", "plain", "none"]


@dataclass(frozen=True)
class DocumentRecord:
    """One processed (or quarantined) object. `to_dict()` is the JSON shape the CLI prints and the Avro codec takes."""

    document_id: str
    sha256: str
    mime_type: str
    size_bytes: int
    status: Literal["ok", "quarantined"] = OK
    reason: str | None = None
    name: str | None = None
    source: ObjectRef | None = None
    pages: int | None = None
    width: int | None = None
    height: int | None = None
    exif: ExifInfo = field(default_factory=ExifInfo)
    phash: str | None = None
    text: str = ""
    text_source: TextSource = "none"
    ocr_confidence: float | None = None
    fields: ExtractedFields = field(default_factory=ExtractedFields)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "sha256": self.sha256,
            "mime_type": self.mime_type,
            "size_bytes": self.size_bytes,
            "status": self.status,
            "reason": self.reason,
            "name": self.name,
            "source": self.source.to_dict() if self.source else None,
            "pages": self.pages,
            "width": self.width,
            "height": self.height,
            "exif": self.exif.to_dict(),
            "phash": self.phash,
            "text": self.text,
            "text_source": self.text_source,
            "ocr_confidence": self.ocr_confidence,
            "fields": self.fields.to_dict(),
            "notes": list(self.notes),
        }
