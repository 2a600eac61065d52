"""object_ingestor extract expansion: simulator invoice extracts in, rows and rejects out (pure, streamed)."""

from __future__ import annotations

import io
import random
from datetime import date, datetime
from decimal import Decimal

import pytest

from claims_shared.contracts.objects import (
    decode_extract_reject,
    decode_extract_row,
    encode_extract_reject,
    encode_extract_row,
)
from claimsctl.simulator.landing import INVOICE_FIELDS as SIMULATOR_FIELDS
from claimsctl.simulator.landing import _InvoiceSource, render_invoice_batch
from services.object_ingestor.extracts import ExtractHeaderError, ExtractSource, expand_extract, iter_lines
from services.object_ingestor.invoices import INVOICE_FIELDS, validate_invoice

CSV = ExtractSource("doc_test", "claims-landing", "incoming/2026/03/02/batches/x.csv", "csv")
JSONL = ExtractSource("doc_test", "claims-landing", "incoming/2026/03/02/batches/x.jsonl", "jsonl")
HEADER = ",".join(INVOICE_FIELDS)
GOOD = "INV-1,CLM-2026-0000001,Garage Dupont,2026-03-01,1234.50,259.25,EUR,VF1RFB00X56789012"


def sources(n: int) -> list[_InvoiceSource]:
    return [_InvoiceSource(f"CLM-2026-{i + 1:07d}", "" if i % 4 == 0 else "VF1RFB00X56789012",
                           Decimal("100.00") + i, date(2026, 3, 1)) for i in range(n)]


def expand(body: bytes, source: ExtractSource = CSV) -> list[tuple[str, dict]]:
    return list(expand_extract(io.BytesIO(body), source))


def test_contract_fields_are_the_simulators() -> None:
    assert INVOICE_FIELDS == SIMULATOR_FIELDS


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_rejected_rows_are_exactly_the_simulators_invalid_rows(seed: int, fmt: str) -> None:
    body, invalid = render_invoice_batch(random.Random(seed), sources(60), fmt=fmt, batch_no=seed,
                                         when=datetime(2026, 3, 2))
    out = expand(body, CSV if fmt == "csv" else JSONL)
    rejects = sum(kind == "reject" for kind, _ in out)
    assert len(out) == 60
    assert sum(kind == "row" for kind, _ in out) == 60 - rejects
    if fmt == "jsonl" and rejects != invalid:
        # The simulator counts a cut-off last line as invalid even when it already held a defect: one row, counted
        # twice. The same seed's CSV (same rows, no cut) shows that row's defect.
        same_rows, _ = render_invoice_batch(random.Random(seed), sources(60), fmt="csv", batch_no=seed,
                                            when=datetime(2026, 3, 2))
        last = expand(same_rows)[-1]
        assert out[-1][1]["reason"].startswith("row: not valid JSON") and last[0] == "reject"
        assert rejects == invalid - 1
    else:
        assert rejects == invalid


def test_every_simulator_defect_is_rejected_with_its_field() -> None:
    defects = {"claim_number": ["", "CLM-0000-0000000"], "amount": ["-125.00", "1.234,5O"],
               "invoice_date": ["2026-02-30"], "vin": ["WVWZZZ1KZ6W00000I"]}
    good = dict(zip(INVOICE_FIELDS, GOOD.split(",")))
    assert validate_invoice(good).valid
    for field, values in defects.items():
        for value in values:
            check = validate_invoice({**good, field: value})
            assert not check.valid and all(e.startswith(f"{field}:") for e in check.errors), (field, value, check)


def test_a_missing_vin_is_valid_and_several_problems_are_all_reported() -> None:
    good = dict(zip(INVOICE_FIELDS, GOOD.split(",")))
    assert validate_invoice({**good, "vin": ""}).values["vin"] is None
    check = validate_invoice({**good, "amount": "-1", "currency": "eur", "invoice_id": ""})
    assert [e.split(":")[0] for e in check.errors] == ["invoice_id", "amount", "currency"]


def test_rows_are_typed_and_ids_are_document_and_line() -> None:
    body = f"{HEADER}\n{GOOD}\n\n{GOOD.replace('1234.50', '-1')}\n".encode()
    (k1, row), (k2, reject) = expand(body)
    assert (k1, k2) == ("row", "reject")
    assert row["row_id"] == "doc_test:2" and row["line_number"] == 2
    assert row["amount"] == Decimal("1234.50") and row["invoice_date"] == date(2026, 3, 1)
    assert reject["row_id"] == "doc_test:4" and reject["raw_line"].endswith("-1,259.25,EUR,VF1RFB00X56789012")
    assert decode_extract_row(encode_extract_row(row)[1]) == row
    assert decode_extract_reject(encode_extract_reject(reject)[1]) == reject


def test_reprocessing_gives_identical_records() -> None:
    body, _ = render_invoice_batch(random.Random(3), sources(40), fmt="csv", batch_no=1, when=datetime(2026, 3, 2))
    assert expand(body) == expand(body)


def test_quoted_newlines_semicolons_crlf_and_bom() -> None:
    header = ";".join(INVOICE_FIELDS)
    row = 'INV-1;CLM-2026-0000001;"Garage\nDupont; Paris";2026-03-01;10.00;2.10;EUR;'
    body = ("\ufeff" + header + "\r\n" + row + "\r\n" + row.replace("INV-1", "INV-2") + "\r\n").encode()
    out = expand(body)
    assert [(k, r["line_number"]) for k, r in out] == [("row", 2), ("row", 4)]
    assert out[0][1]["repair_shop"] == "Garage\nDupont; Paris"


def test_csv_without_the_contract_columns_is_refused_as_a_whole() -> None:
    with pytest.raises(ExtractHeaderError, match="claim_number"):
        expand(b"invoice_id,amount\nINV-1,10.00\n")


def test_json_lines_that_are_not_objects_or_cut_off_are_rejected() -> None:
    good = '{"invoice_id":"INV-1","claim_number":"CLM-2026-0000001","repair_shop":"X","invoice_date":"2026-03-01",' \
           '"amount":12.5,"vat_amount":"0","currency":"EUR","vin":null}'
    out = expand(f"{good}\n[1,2]\n{good[:40]}\n".encode(), JSONL)
    assert [k for k, _ in out] == ["row", "reject", "reject"]
    assert out[0][1]["amount"] == Decimal("12.50")
    assert "not an object" in out[1][1]["reason"] and "not valid JSON" in out[2][1]["reason"]


def test_invalid_utf8_is_a_reject_not_a_crash() -> None:
    out = expand(f"{HEADER}\n".encode() + GOOD.replace("Garage Dupont", "Garage ").encode() + b"\xff\xfe\n")
    assert out[0][0] == "reject" and "invalid UTF-8" in out[0][1]["reason"]


def test_an_over_long_line_is_rejected_without_being_kept() -> None:
    body = f"{HEADER}\n".encode() + b"x" * 5000 + b"\n" + GOOD.encode() + b"\n"
    out = list(expand_extract(io.BytesIO(body), CSV, max_line_bytes=1000))
    assert [k for k, _ in out] == ["reject", "row"]
    assert out[0][1]["raw_truncated"] and len(out[0][1]["raw_line"]) == 1000
    assert out[1][1]["line_number"] == 3


class _CountingStream(io.RawIOBase):
    """A 'file' of many lines generated on the fly, recording the largest read asked for."""

    def __init__(self, lines: int) -> None:
        self.remaining = lines
        self.largest_read = 0
        self.header = (HEADER + "\n").encode()

    def read(self, amt: int = -1) -> bytes:
        self.largest_read = max(self.largest_read, amt)
        if self.header:
            out, self.header = self.header, b""
            return out
        if not self.remaining:
            return b""
        n = min(self.remaining, 500)
        self.remaining -= n
        return ((GOOD + "\n") * n).encode()


def test_the_object_is_read_in_bounded_chunks() -> None:
    stream = _CountingStream(20_000)
    rows = sum(1 for kind, _ in expand_extract(stream, CSV) if kind == "row")
    assert rows == 20_000 and 0 < stream.largest_read <= 64 * 1024


def test_iter_lines_numbers_lines_across_chunk_boundaries() -> None:
    data = b"".join(f"line {i}\r\n".encode() for i in range(30_000))
    lines = list(iter_lines(io.BytesIO(data)))
    assert len(lines) == 30_000 and lines[-1].number == 30_000 and lines[12345].data == b"line 12345"
