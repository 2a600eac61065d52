"""Content sniffing: the MIME type of an object from its bytes (the file name and declared type are never trusted)."""

from __future__ import annotations

import codecs
import csv
import json

PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
PDF = "application/pdf"
CSV = "text/csv"
JSON_LINES = "application/x-ndjson"
PLAIN_TEXT = "text/plain"
ZIP = "application/zip"
# Markup is not a claim document: an HTML/SVG/XML page can carry scripts, and nothing downstream renders it.
MARKUP = "text/html"
UNKNOWN = "application/octet-stream"

IMAGE_TYPES = frozenset({PNG, JPEG, TIFF})
TEXT_TYPES = frozenset({CSV, JSON_LINES, PLAIN_TEXT})

# What a file name's extension usually claims, to note mislabeled objects.
EXTENSION_TYPES = {
    "png": PNG, "jpg": JPEG, "jpeg": JPEG, "jpe": JPEG, "tif": TIFF, "tiff": TIFF, "pdf": PDF, "csv": CSV,
    "jsonl": JSON_LINES, "ndjson": JSON_LINES, "txt": PLAIN_TEXT, "text": PLAIN_TEXT, "zip": ZIP,
    "html": MARKUP, "htm": MARKUP, "svg": MARKUP, "xml": MARKUP,
}
_MARKUP_STARTS = (b"<!doctype", b"<html", b"<svg", b"<?xml", b"<script", b"<head", b"<body", b"<iframe")

# Text sniffing looks at the head only: decisions stay O(1) in the object size.
_TEXT_HEAD_BYTES = 64 * 1024
_CSV_DELIMITERS = ",;\t|"


def sniff_mime_type(data: bytes) -> str:
    """MIME type of `data` from magic numbers, then text heuristics (JSON lines, CSV, plain text); UNKNOWN otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TIFF
    if data.startswith(b"%PDF-"):
        return PDF
    # Before the lenient PDF rule: a zip storing a PDF uncompressed has "%PDF-" in its first KiB too.
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return ZIP
    # PDF readers accept the header anywhere in the first KiB (some producers prepend junk).
    if b"%PDF-" in data[:1024]:
        return PDF
    if data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower().startswith(_MARKUP_STARTS):
        return MARKUP
    text = _text_head(data)
    if text is None:
        return UNKNOWN
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return PLAIN_TEXT if text else UNKNOWN
    if _looks_like_json_lines(lines):
        return JSON_LINES
    if _looks_like_csv(lines):
        return CSV
    return PLAIN_TEXT


def extension_type(name: str) -> str | None:
    """The MIME type a file name's extension claims, or None when it has no extension we know."""
    stem, dot, ext = name.rpartition(".")
    return EXTENSION_TYPES.get(ext.lower()) if dot and stem else None


def decode_text(data: bytes) -> str:
    """Text of an object sniffed as text (UTF-8, optional BOM)."""
    return data.decode("utf-8-sig", errors="replace")


def _text_head(data: bytes) -> str | None:
    """The first bytes as UTF-8 text, or None when they are not text (invalid UTF-8, NUL or other control bytes)."""
    head = data[:_TEXT_HEAD_BYTES]
    try:
        # Not final: a multi-byte character cut at the head's end is not an error.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=len(head) == len(data))
    except UnicodeDecodeError:
        return None
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f")
    if "\x00" in text or controls > max(2, len(text) // 1000):
        return None
    return text


def _looks_like_json_lines(lines: list[str]) -> bool:
    sample = lines[:50]
    valid = [_is_json_value(line) for line in sample]
    # The last sampled line may be incomplete (an export cut off mid-write, or the end of the sniffed head).
    return all(valid) or (len(valid) > 1 and all(valid[:-1]))


def _is_json_value(line: str) -> bool:
    stripped = line.strip()
    if not stripped.startswith(("{", "[")):
        return False
    try:
        json.loads(stripped)
    except ValueError:
        return False
    return True


def _looks_like_csv(lines: list[str]) -> bool:
    """At least two lines that split into the same number (>= 2) of fields on one delimiter."""
    sample = lines[:20]
    if len(sample) < 2:
        return False
    if len(sample) > 2:
        sample = sample[:-1]  # may be cut off
    for delimiter in _CSV_DELIMITERS:
        if delimiter not in sample[0]:
            continue
        try:
            widths = {len(row) for row in csv.reader(sample, delimiter=delimiter)}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() >= 2:
            return True
    return False
