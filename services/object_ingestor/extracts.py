"""Extract expansion (pure): the lines of a CSV or JSON-lines extract in, one row or reject record per row out.

Input is any file-like object with `read(n)` (a boto3 StreamingBody in the service, BytesIO in tests): it is read
in chunks and never held whole, and a single line is never kept beyond `max_line_bytes` (a file without newlines
cannot exhaust memory; the over-long line is rejected and skipped to its end).

Rows are numbered by the object's line where they start (1-based; a CSV header is line 1; blank lines are neither
rows nor rejects), and their id is `<document_id>:<line>`, so re-processing the same object version yields
identical ids. CSV records may span lines inside quotes; the delimiter is the one of `, ; TAB |` that splits the
header into the most fields (the same candidates the document processor's sniffing accepts).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO, Protocol

from claims_shared.contracts.objects import row_id
from services.object_ingestor.invoices import INVOICE_FIELDS, OPTIONAL_FIELDS, RECORD_TYPE, validate_invoice

CSV_MIME = "text/csv"
JSON_LINES_MIME = "application/x-ndjson"
EXTRACT_FORMATS = {CSV_MIME: "csv", JSON_LINES_MIME: "jsonl"}
CSV_DELIMITERS = ",;\t|"
MAX_LINE_BYTES = 1024 * 1024
RAW_KEEP_CHARS = 4000  # raw line kept in a reject (Kafka messages stay small)
_CHUNK = 64 * 1024


class Readable(Protocol):
    def read(self, amt: int = ..., /) -> bytes: ...


class ExtractHeaderError(ValueError):
    """The extract as a whole does not fit the contract (e.g. a CSV header without its columns): dead-letter the
    document with this message; no row can be validated."""


@dataclass(frozen=True)
class ExtractSource:
    document_id: str
    bucket: str
    key: str
    format: str  # csv | jsonl


@dataclass(frozen=True)
class Line:
    number: int          # 1-based line number of the (first) line
    data: bytes          # without the line ending; cut at max_line_bytes when too_long
    too_long: bool = False


def iter_lines(stream: Readable | BinaryIO, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Line]:
    """Lines of `stream` (split on LF, a trailing CR dropped), read in 64 KiB chunks. A UTF-8 BOM is dropped."""
    pending = bytearray()
    number = 1
    skipping = False  # inside an over-long line: discard up to its newline
    first = True
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        if first:
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            first = False
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            piece = chunk[start:] if nl < 0 else chunk[start:nl]
            if not skipping:
                pending += piece
                if len(pending) > max_line_bytes:
                    yield Line(number, bytes(pending[:max_line_bytes]), too_long=True)
                    pending.clear()
                    skipping = True
            if nl < 0:
                break
            if not skipping:
                yield Line(number, bytes(pending.removesuffix(b"\r")))
            pending.clear()
            skipping = False
            number += 1
            start = nl + 1
    if pending and not skipping:
        yield Line(number, bytes(pending.removesuffix(b"\r")))


def expand_extract(stream: Readable | BinaryIO, source: ExtractSource, *,
                   max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[str, dict[str, Any]]]:
    """("row", extract_row.v1 record) or ("reject", extract_reject.v1 record) per row of the extract, in order.
    Raises ExtractHeaderError when the extract cannot be read as the contract at all."""
    lines = iter_lines(stream, max_line_bytes=max_line_bytes)
    if source.format == "csv":
        yield from _expand_csv(lines, source, max_line_bytes)
    elif source.format == "jsonl":
        yield from _expand_json_lines(lines, source)
    else:
        raise ExtractHeaderError(f"unknown extract format {source.format!r} (expected csv or jsonl)")


def _expand_json_lines(lines: Iterator[Line], source: ExtractSource) -> Iterator[tuple[str, dict[str, Any]]]:
    for line in lines:
        text = line.data.decode("utf-8", errors="replace")
        if not text.strip():
            continue
        if line.too_long:
            yield _reject(source, line.number, text, [f"row: line longer than {len(line.data)} bytes"], True)
            continue
        try:
            value = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            yield _reject(source, line.number, text, [f"row: not valid JSON ({exc})"])
            continue
        if not isinstance(value, dict):
            yield _reject(source, line.number, text, [f"row: a JSON {type(value).__name__}, not an object"])
            continue
        yield _checked(source, line.number, text, value, ["row: invalid UTF-8"] if _bad_utf8(line.data) else [])


def _expand_csv(lines: Iterator[Line], source: ExtractSource,
                max_line_bytes: int) -> Iterator[tuple[str, dict[str, Any]]]:
    header: list[str] | None = None
    delimiter = ","
    record: list[str] = []
    record_start = 0
    record_bytes = 0
    record_bad_utf8 = False
    for line in lines:
        text = line.data.decode("utf-8", errors="replace")
        if header is None:
            if not text.strip():
                continue
            delimiter = max(CSV_DELIMITERS, key=lambda d: len(next(csv.reader([text], delimiter=d))))
            header = [h.strip().lower() for h in next(csv.reader([text], delimiter=delimiter))]
            missing = [f for f in INVOICE_FIELDS if f not in header and f not in OPTIONAL_FIELDS]
            if missing:
                raise ExtractHeaderError(
                    f"CSV header {header} lacks the invoice contract's columns {missing} (expected "
                    f"{list(INVOICE_FIELDS)}); no row can be checked")
            continue
        if line.too_long:
            if record:  # the record this line continued is lost with it
                yield _reject(source, record_start, "\n".join(record), ["row: unterminated quoted field"], True)
                record = []
            yield _reject(source, line.number, text, [f"row: line longer than {len(line.data)} bytes"], True)
            continue
        if not record:
            if not text.strip():
                continue
            record_start, record_bytes, record_bad_utf8 = line.number, 0, False
        record.append(text)
        record_bad_utf8 = record_bad_utf8 or _bad_utf8(line.data)
        record_bytes += len(line.data) + 1
        joined = "\n".join(record)
        if joined.count('"') % 2 and record_bytes <= max_line_bytes:
            continue  # a quoted field goes on on the next line
        record = []
        yield _csv_row(source, record_start, joined, header, delimiter, record_bad_utf8)
    if record:
        yield _reject(source, record_start, "\n".join(record), ["row: unterminated quoted field at end of file"])


def _csv_row(source: ExtractSource, number: int, text: str, header: list[str], delimiter: str,
             bad_utf8: bool) -> tuple[str, dict[str, Any]]:
    try:
        values = next(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error as exc:
        return _reject(source, number, text, [f"row: not parseable as CSV ({exc})"])
    if len(values) != len(header):
        return _reject(source, number, text, [f"row: {len(values)} fields, the header has {len(header)}"])
    return _checked(source, number, text, dict(zip(header, values)), ["row: invalid UTF-8"] if bad_utf8 else [])


def _checked(source: ExtractSource, number: int, text: str, values: dict[str, Any],
             errors: list[str]) -> tuple[str, dict[str, Any]]:
    check = validate_invoice(values)
    if check.values is None or errors:
        return _reject(source, number, text, errors + list(check.errors))
    return "row", {"row_id": row_id(source.document_id, number), "document_id": source.document_id,
                   "source_bucket": source.bucket, "source_key": source.key, "line_number": number,
                   "format": source.format, "record_type": RECORD_TYPE, **check.values}


def _reject(source: ExtractSource, number: int, text: str, errors: list[str],
            truncated: bool = False) -> tuple[str, dict[str, Any]]:
    cut = len(text) > RAW_KEEP_CHARS
    return "reject", {"row_id": row_id(source.document_id, number), "document_id": source.document_id,
                      "source_bucket": source.bucket, "source_key": source.key, "line_number": number,
                      "format": source.format, "record_type": RECORD_TYPE, "reason": "; ".join(errors),
                      "errors": errors, "raw_line": text[:RAW_KEEP_CHARS], "raw_truncated": truncated or cut}


def _bad_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
