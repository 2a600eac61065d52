"""Hostile and odd objects: each yields a record (quarantined with a reason saying what is wrong, or processed by
content), never an exception."""

from __future__ import annotations

import io
import random
import zipfile

import pytest
from PIL import Image

from lambdas.document_processor import ObjectRef, ProcessingLimits, document_id, extract_document
from lambdas.document_processor.sniffing import sniff_mime_type
from tests import document_samples as samples


def _quarantined(data: bytes, name: str, limits: ProcessingLimits | None = None) -> str:
    record = extract_document(data, name, limits)
    assert record.status == "quarantined", record
    assert record.reason and record.text == "" and record.fields.claim_number is None
    assert record.size_bytes == len(data) and len(record.sha256) == 64
    return record.reason


def test_zero_byte_object_is_quarantined_as_empty() -> None:
    assert "empty object (0 bytes)" in _quarantined(b"", "claim_form.pdf")


def test_truncated_jpeg_and_png_are_quarantined_as_truncated() -> None:
    photo = samples.photo(1)
    assert "truncated" in _quarantined(photo[: len(photo) * 2 // 3], "damage_1.jpg")
    scan, _ = samples.simulator_scan(11, "PNG")
    assert "truncated" in _quarantined(scan[: len(scan) // 2], "claim_form.png").lower()


def test_decompression_bomb_png_is_refused_before_decoding() -> None:
    bomb = samples.png_bomb()
    assert len(bomb) < 100_000
    reason = _quarantined(bomb, "innocent.png")
    assert "20000x20000" in reason and "CLAIMS_DOCUMENT_MAX_PIXELS" in reason and "decompression bomb" in reason


def test_pixel_limit_is_configurable() -> None:
    photo = samples.photo(2)  # 800x600
    assert "pixel limit" in _quarantined(photo, "p.jpg", ProcessingLimits(max_image_pixels=400 * 300))
    assert extract_document(photo, "p.jpg", ProcessingLimits(max_image_pixels=800 * 600)).status == "ok"


def test_password_protected_pdf_is_quarantined_as_encrypted() -> None:
    body = samples.text_pdf([["Claim number: CLM-2026-0000001"]], owner_password="owner", user_password="secret")
    assert "encrypted with a password" in _quarantined(body, "claim.pdf")


def test_pdf_with_owner_password_only_is_read_with_a_note() -> None:
    body = samples.text_pdf([["Claim number: CLM-2026-0000001, see attached photos"]], owner_password="owner")
    record = extract_document(body, "claim.pdf")
    assert record.status == "ok" and record.fields.claim_number == "CLM-2026-0000001"
    assert any("encrypted without a user password" in note for note in record.notes)


def test_truncated_pdf_is_quarantined() -> None:
    body = samples.text_pdf([["Claim number: CLM-2026-0000001"]])
    assert "PDF cannot be parsed" in _quarantined(body[: len(body) // 2], "claim.pdf")


def test_too_many_pages_is_quarantined_with_the_count() -> None:
    body = samples.text_pdf([[f"page {i} of the claim file, nothing to see"] for i in range(3)])
    reason = _quarantined(body, "bundle.pdf", ProcessingLimits(max_pages=2))
    assert "3 pages" in reason and "CLAIMS_DOCUMENT_MAX_PAGES" in reason


def test_object_over_the_size_limit_is_quarantined_without_parsing() -> None:
    reason = _quarantined(samples.photo(3), "big.jpg", ProcessingLimits(max_object_bytes=1024))
    assert "byte limit" in reason and "CLAIMS_DOCUMENT_MAX_BYTES" in reason


def test_zip_archives_and_unknown_binaries_are_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("claim_form.pdf", samples.text_pdf([["x"]]))
    assert "zip archive" in _quarantined(buf.getvalue(), "documents.zip")
    noise = random.Random(1).randbytes(4096)
    assert "unrecognised content" in _quarantined(noise, "claim_form.pdf")


def test_ocr_that_overruns_its_timeout_is_stopped_and_quarantined() -> None:
    scan, _ = samples.simulator_scan(11, "PNG")
    reason = _quarantined(scan, "slow.png", ProcessingLimits(ocr_timeout_s=0.02))
    assert "CLAIMS_DOCUMENT_OCR_TIMEOUT_S" in reason


def test_an_object_whose_time_budget_is_spent_is_quarantined() -> None:
    ticks = iter([0.0, 100.0, 200.0, 300.0])  # the clock jumps past the budget before OCR starts
    scan, _ = samples.simulator_scan(12, "JPEG")
    record = extract_document(scan, "slow.jpg", ProcessingLimits(time_budget_s=5), clock=lambda: next(ticks))
    assert record.status == "quarantined" and "CLAIMS_DOCUMENT_TIME_BUDGET_S" in record.reason


def test_mislabeled_file_is_processed_by_its_content_with_a_note() -> None:
    photo = samples.photo(4)
    record = extract_document(photo, "claim_form.pdf")
    assert (record.status, record.mime_type) == ("ok", "image/jpeg")
    assert record.exif.gps_lat is not None
    assert record.notes == ("file name says application/pdf but the content is image/jpeg; processed by content",)
    pdf = extract_document(samples.text_pdf([["Claim number: CLM-2026-0000009 and nothing else"]]), "photo.JPG")
    assert (pdf.status, pdf.mime_type, pdf.fields.claim_number) == ("ok", "application/pdf", "CLM-2026-0000009")


@pytest.mark.parametrize("name", ["photo dégâts 1.jpg", "Schadenfoto 2 (copy).JPG", "写真.jpeg", "no_extension",
                                  ".hidden", "a" * 900 + ".jpg", "incoming/2026/03/12/CLM-2026-0000001/IMG 0001.jpg"])
def test_odd_names_do_not_matter(name: str) -> None:
    record = extract_document(samples.photo(5), name)
    assert (record.status, record.mime_type, record.name, record.notes) == ("ok", "image/jpeg", name, ())


def test_document_id_is_stable_across_redelivery_and_changes_with_the_version() -> None:
    photo = samples.photo(6)
    ref = ObjectRef("claims-landing", "incoming/2026/03/12/CLM-2026-0000001/photo dégâts 1.jpg", etag='"abc123"')
    first = extract_document(photo, ref.key, source=ref)
    again = extract_document(photo, ref.key, source=ref)
    assert first.document_id == again.document_id == document_id(ref.bucket, ref.key, "abc123")
    assert first.document_id.startswith("doc_") and len(first.document_id) == 36
    versioned = ObjectRef(ref.bucket, ref.key, version_id="v2", etag='"abc123"')
    assert extract_document(photo, ref.key, source=versioned).document_id == document_id(ref.bucket, ref.key, "v2")
    assert document_id(ref.bucket, ref.key, "v2") != document_id(ref.bucket, ref.key, "v3")
    with pytest.raises(ValueError):
        document_id("b", "k", "")


@pytest.mark.parametrize(("data", "expected"), [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "image/png"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "image/jpeg"),
    (b"II*\x00" + b"\x00" * 16, "image/tiff"),
    (b"MM\x00*" + b"\x00" * 16, "image/tiff"),
    (b"%PDF-1.7\n", "application/pdf"),
    (b"\r\n\r\n%PDF-1.4\n", "application/pdf"),
    (b"PK\x03\x04" + b"\x00" * 16, "application/zip"),
    (b'{"a": 1}\n{"b": 2}\n', "application/x-ndjson"),
    (b"a,b,c\n1,2,3\n4,5,6\n", "text/csv"),
    ("naïve;b\n1;2\n".encode(), "text/csv"),
    ("Dear Sir, my car was hit.\nRegards".encode(), "text/plain"),
    ("\ufeffClaim CLM-2026-0000001".encode(), "text/plain"),
    (b"\x00\x01\x02\x03binary", "application/octet-stream"),
    (b"\xc3\x28 invalid utf-8", "application/octet-stream"),
])
def test_content_sniffing(data: bytes, expected: str) -> None:
    assert sniff_mime_type(data) == expected


def test_tiff_scans_are_supported() -> None:
    body, truth = samples.simulator_scan(11, "PNG")
    buf = io.BytesIO()
    Image.open(io.BytesIO(body)).save(buf, "TIFF", compression="tiff_deflate")
    record = extract_document(buf.getvalue(), "scan.tif")
    assert (record.status, record.mime_type) == ("ok", "image/tiff")
    assert record.fields.claim_number == truth.claim_number


@pytest.mark.parametrize("body", [b"<html><script>alert(1)</script></html>", b"\n  <!DOCTYPE html><p>hi</p>",
                                  b'<?xml version="1.0"?><svg onload="x()"/>'])
def test_markup_is_quarantined_not_processed_as_text(body: bytes) -> None:
    record = extract_document(body, "incoming/2026/03/12/CLM-1/page.txt")
    assert record.status == "quarantined" and record.mime_type == "text/html"
    assert "markup" in record.reason
