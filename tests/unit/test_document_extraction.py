"""extract_document on real bytes with the real tesseract: scanned forms, PDFs, photos. No mocks."""

from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from PIL import Image

from lambdas.document_processor import ProcessingLimits, extract_document
from lambdas.document_processor.images import hamming_distance
from tests import document_samples as samples

FORMS = [("simulator", "PNG"), ("simulator", "JPEG"), *((layout, None) for layout in samples.LAYOUTS)]


@pytest.mark.parametrize(("layout", "fmt"), FORMS, ids=[f"{layout}-{fmt or 'own'}" for layout, fmt in FORMS])
def test_scanned_form_fields_are_read_by_ocr(layout: str, fmt: str | None) -> None:
    if layout == "simulator":
        body, truth = samples.simulator_scan(11 if fmt == "PNG" else 12, fmt)
    else:
        body, truth = samples.layout_scan(layout, 22)
    record = extract_document(body, "claim form.png")
    assert record.status == "ok", record.reason
    assert record.text_source == "ocr" and record.pages == 1
    assert record.ocr_confidence is not None and record.ocr_confidence > 70
    assert (record.width, record.height) == (1240, 1754)
    fields = record.fields
    assert fields.claim_number == truth.claim_number
    assert fields.policy_number == truth.policy_number
    assert fields.vin == truth.vin
    assert fields.loss_date == truth.loss_date
    assert fields.amounts == truth.amounts


def test_multi_page_pdf_with_a_text_layer_is_read_without_ocr() -> None:
    info = samples.simulator_info(31)
    body = samples.text_pdf([
        ["MOTOR CLAIM FORM", "Page 1 of 3: claimant details", "Name: tok_1234"],
        [f"Claim number: {info.claim_number}", f"Policy number: {info.policy_number}", f"VIN: {info.vin}",
         "Date of loss: 12 March 2026", "Amount claimed: EUR 1.234,56"],
        ["Declaration", "I confirm the above is true. Signed 14 March 2026."],
    ])
    record = extract_document(body, "claim.pdf")
    assert record.status == "ok", record.reason
    assert (record.mime_type, record.pages, record.text_source, record.ocr_confidence) == (
        "application/pdf", 3, "text_layer", None)
    assert record.text.count("\f") == 2  # page breaks kept
    assert record.fields.claim_number == info.claim_number and record.fields.vin == info.vin
    assert record.fields.loss_date == date(2026, 3, 12)
    assert [float(a) for a in record.fields.amounts] == [1234.56]


def test_pdf_without_a_text_layer_is_rendered_and_ocred_page_by_page() -> None:
    first, second = samples.form_image(41), samples.form_image(42)
    body = samples.mixed_pdf([], [first, second])
    record = extract_document(body, "scan.pdf")
    assert record.status == "ok", record.reason
    assert (record.pages, record.text_source) == (2, "ocr")
    assert record.ocr_confidence is not None and record.ocr_confidence > 70
    for seed in (41, 42):
        assert samples.simulator_info(seed).claim_number in record.text
    # The first page's claim is the document's.
    assert record.fields.claim_number == samples.simulator_info(41).claim_number


def test_pdf_mixing_text_and_scanned_pages_is_marked_mixed() -> None:
    body = samples.mixed_pdf(["Cover letter for the enclosed claim form, see next page."], [samples.form_image(43)])
    record = extract_document(body, "letter+scan.pdf")
    assert (record.status, record.pages, record.text_source) == ("ok", 2, "mixed")
    assert record.fields.vin == samples.simulator_info(43).vin


def test_photo_exif_time_gps_and_camera_are_parsed_and_no_ocr_runs() -> None:
    body = samples.photo(7, lat=38.7223, lon=-9.1393, taken=datetime(2026, 3, 12, 14, 20, 5))
    record = extract_document(body, "IMG_0001.jpg")
    assert record.status == "ok", record.reason
    assert (record.mime_type, record.width, record.height, record.pages) == ("image/jpeg", 800, 600, 1)
    assert record.text_source == "none" and record.text == "" and record.ocr_confidence is None
    exif = record.exif
    assert exif.captured_at == "2026-03-12T14:20:05"
    assert exif.gps_lat == pytest.approx(38.7223, abs=1e-5)
    assert exif.gps_lon == pytest.approx(-9.1393, abs=1e-5)
    assert exif.camera_make and exif.camera_model
    assert record.phash is not None and len(record.phash) == 16
    int(record.phash, 16)


def test_southern_and_western_positions_are_negative_and_missing_gps_is_none() -> None:
    south_west = extract_document(samples.photo(8, lat=-33.8688, lon=-70.6693), "santiago.jpg")
    assert south_west.exif.gps_lat == pytest.approx(-33.8688, abs=1e-5)
    assert south_west.exif.gps_lon == pytest.approx(-70.6693, abs=1e-5)
    no_gps = extract_document(samples.photo(9, lat=None, lon=None), "indoors.jpg")
    assert (no_gps.exif.gps_lat, no_gps.exif.gps_lon) == (None, None)
    assert no_gps.exif.captured_at is not None


def test_near_duplicate_photos_are_close_in_phash_and_different_photos_far() -> None:
    original = samples.photo(1)
    hash_original = extract_document(original, "a.jpg").phash
    hash_resent = extract_document(samples.near_duplicate(original), "a (1).jpg").phash
    hash_other = extract_document(samples.photo(2), "b.jpg").phash
    hash_third = extract_document(samples.photo(3), "c.jpg").phash
    assert hamming_distance(hash_original, hash_resent) <= 6
    assert hamming_distance(hash_original, hash_other) >= 18
    assert hamming_distance(hash_other, hash_third) >= 18


def test_exif_orientation_is_applied_before_ocr() -> None:
    body, truth = samples.simulator_scan(13, "JPEG")
    turned = Image.open(io.BytesIO(body)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90° clockwise to view": undoes the counter-clockwise ROTATE_90 above
    buf = io.BytesIO()
    turned.save(buf, "JPEG", quality=90, exif=exif)
    record = extract_document(buf.getvalue(), "phone scan.jpg")
    assert record.status == "ok", record.reason
    assert record.fields.claim_number == truth.claim_number
    assert any("orientation" in note for note in record.notes)


def test_text_extracts_are_read_as_text() -> None:
    csv_body = ("invoice_id,claim_number,repair_shop,invoice_date,amount,vat_amount,currency,vin\n"
                "INV-00001-0000,CLM-2026-0000042,Garage Dupont,2026-03-02,1234.50,259.25,EUR,1M8GDM9AXKP042788\n")
    record = extract_document(csv_body.encode(), "repair_invoices.csv")
    assert (record.mime_type, record.text_source, record.pages) == ("text/csv", "plain", None)
    assert record.fields.claim_number == "CLM-2026-0000042"
    assert record.fields.vin == "1M8GDM9AXKP042788"
    jsonl = b'{"claim_number": "CLM-2026-0000043", "amount": "99.90"}\n{"claim_number": "CLM-2026-00'
    assert extract_document(jsonl, "cut.jsonl").mime_type == "application/x-ndjson"


def test_limits_from_settings_match_the_defaults() -> None:
    from claims_shared.settings import PlatformSettings

    assert ProcessingLimits.from_settings(PlatformSettings()) == ProcessingLimits()
    assert ProcessingLimits.from_settings(PlatformSettings(document_max_pages=3)).max_pages == 3
