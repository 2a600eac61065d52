"""Document records (`claims.documents.v1`): Avro bodies named by the `claims-schema` header, keyed by document_id.

The codec takes and returns the JSON shape of `DocumentRecord.to_dict()` (lambdas/document_processor/record.py):
`loss_date` as an ISO date string and `amounts` as numbers; on the wire they are an Avro date and decimals(18, 2).
"""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from typing import Any

from claims_shared.contracts.avro import SCHEMA_HEADER, decode, encode
from claims_shared.contracts.topics import DOCUMENT_RECORDS

DOCUMENTS_TOPIC = DOCUMENT_RECORDS
DOCUMENT_RECORD_SCHEMA = "document_record.v1"
_CENT = Decimal("0.01")


def schema_headers() -> list[tuple[str, bytes]]:
    return [(SCHEMA_HEADER, DOCUMENT_RECORD_SCHEMA.encode())]


def message_key(record: dict[str, Any]) -> bytes:
    return str(record["document_id"]).encode()


def encode_document_record(record: dict[str, Any]) -> bytes:
    """Avro body of a document record given as `DocumentRecord.to_dict()`; raises ValueError if it does not fit."""
    wire = copy.deepcopy(record)
    fields = wire.get("fields") or {}
    if fields.get("loss_date"):
        fields["loss_date"] = date.fromisoformat(fields["loss_date"])
    fields["amounts"] = [Decimal(str(a)).quantize(_CENT) for a in fields.get("amounts", [])]
    wire["fields"] = fields
    return encode(DOCUMENT_RECORD_SCHEMA, wire)


def decode_document_record(payload: bytes) -> dict[str, Any]:
    """A `document_record.v1` body back in the `DocumentRecord.to_dict()` shape."""
    record = decode(DOCUMENT_RECORD_SCHEMA, payload)
    fields = record["fields"]
    if isinstance(fields.get("loss_date"), date):
        fields["loss_date"] = fields["loss_date"].isoformat()
    fields["amounts"] = [float(a) for a in fields["amounts"]]
    return record
