"""object_ingestor's output topics and their wire formats (Avro bodies named by the `claims-schema` header).

- `claims.document-links.v1` (contract `document_link.v1`, key document_id): which claim a document belongs to and
  by which method; the latest record per document is its current link.
- `claims.extract-rows.v1` (contract `extract_row.v1`, key row_id): valid rows of repair-shop invoice extracts.
- `claims.extract-rejects.v1` (contract `extract_reject.v1`, key row_id): rows that break the contract, with every
  reason and the raw line. A separate topic rather than a status flag on the rows topic, so that consumers of
  rows get a contract whose fields are all typed and required, and nobody has to remember to filter.
- `claims.objects.dead-letter.v1` (JSON, same shape as the other dead-letter topics): input the service cannot
  use at all (an undecodable document record, an extract whose object is gone or changed, a CSV without the
  contract's columns), with the reason and the original bytes.

Fraud alerts go to the shared `claims.fraud-alerts.v1` (claims_shared/contracts/fraud.py).
Row ids are `<document_id>:<line_number>`: deterministic, so re-processing a document yields identical ids.
"""

from __future__ import annotations

from typing import Any

from claims_shared.contracts.avro import decode, encode
from claims_shared.contracts.telematics import dead_letter_value, decode_epoch_ms, schema_headers
from claims_shared.contracts.topics import TopicSpec

DOCUMENT_LINKS_TOPIC = "claims.document-links.v1"
EXTRACT_ROWS_TOPIC = "claims.extract-rows.v1"
EXTRACT_REJECTS_TOPIC = "claims.extract-rejects.v1"
OBJECTS_DEAD_LETTER_TOPIC = "claims.objects.dead-letter.v1"

DOCUMENT_LINK_SCHEMA = "document_link.v1"
EXTRACT_ROW_SCHEMA = "extract_row.v1"
EXTRACT_REJECT_SCHEMA = "extract_reject.v1"

OUTPUT_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(DOCUMENT_LINKS_TOPIC, 4),
    TopicSpec(EXTRACT_ROWS_TOPIC, 4),
    TopicSpec(EXTRACT_REJECTS_TOPIC, 4),
    TopicSpec(OBJECTS_DEAD_LETTER_TOPIC, 1),
)

__all__ = [
    "DOCUMENT_LINKS_TOPIC", "EXTRACT_ROWS_TOPIC", "EXTRACT_REJECTS_TOPIC", "OBJECTS_DEAD_LETTER_TOPIC",
    "OUTPUT_TOPICS", "row_id", "encode_extract_row", "decode_extract_row", "encode_extract_reject",
    "decode_extract_reject", "encode_document_link", "decode_document_link", "dead_letter_value", "schema_headers",
]


def row_id(document_id: str, line_number: int) -> str:
    """Deterministic id of an extract row: the same object version and line always give the same id."""
    return f"{document_id}:{line_number}"


def encode_extract_row(row: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of an `extract_row.v1` record (invoice_date a date, amounts Decimals)."""
    return row["row_id"].encode(), encode(EXTRACT_ROW_SCHEMA, row), schema_headers(EXTRACT_ROW_SCHEMA)


def decode_extract_row(payload: bytes) -> dict[str, Any]:
    """An `extract_row.v1` body (invoice_date as datetime.date, amounts as Decimal)."""
    return decode(EXTRACT_ROW_SCHEMA, payload)


def encode_extract_reject(reject: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return reject["row_id"].encode(), encode(EXTRACT_REJECT_SCHEMA, reject), schema_headers(EXTRACT_REJECT_SCHEMA)


def decode_extract_reject(payload: bytes) -> dict[str, Any]:
    return decode(EXTRACT_REJECT_SCHEMA, payload)


def encode_document_link(link: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a `document_link.v1` record (claim_change_ts as epoch ms)."""
    return link["document_id"].encode(), encode(DOCUMENT_LINK_SCHEMA, link), schema_headers(DOCUMENT_LINK_SCHEMA)


def decode_document_link(payload: bytes) -> dict[str, Any]:
    """A `document_link.v1` body, claim_change_ts as epoch ms."""
    return decode_epoch_ms(DOCUMENT_LINK_SCHEMA, payload)
