"""Claim fields from document text: ids with OCR look-alikes, VIN check-digit correction, dates, amounts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from claimsctl.simulator.entities import generate_vin, is_valid_vin as simulator_is_valid_vin
from lambdas.document_processor.fields import (
    correct_vin,
    extract_fields,
    find_amounts,
    find_claim_number,
    find_loss_date,
    find_policy_number,
    find_vin,
    is_valid_vin,
    parse_amount,
    parse_date,
    vin_check_digit,
)

VALID_VIN = "1M8GDM9AXKP042788"  # the textbook example (check digit X)


def test_check_digit_agrees_with_the_simulator_on_generated_vins() -> None:
    import random

    rng = random.Random(5)
    for seq in range(200):
        vin = generate_vin(rng, rng.choice(("WVW", "WBA", "VF1", "1M8")), 2000 + seq % 25, seq)
        assert simulator_is_valid_vin(vin) and is_valid_vin(vin) and vin_check_digit(vin) == vin[8]


@pytest.mark.parametrize(("raw", "expected"), [
    (VALID_VIN, VALID_VIN),
    ("1M8GDM9AXKP04278B", None),          # B/8 is not a confusion we guess: invalid stays invalid
    ("1M8GDM9AXKPO42788", VALID_VIN),     # O is never in a VIN: it is a 0
    ("IM8GDM9AXKP042788", VALID_VIN),     # I is never in a VIN: it is a 1
    ("lm8gdm9axkp042788", VALID_VIN),     # lower case from OCR, l read for 1
    ("1M8GDM9AXKP042788".replace("0", "Q"), VALID_VIN),  # Q is never in a VIN: first reading 0
])
def test_correct_vin(raw: str, expected: str | None) -> None:
    assert correct_vin(raw) == expected


def _with(vin: str, position: int, char: str) -> str:
    return vin[:position] + char + vin[position + 1:]


def test_s_and_5_confusions_are_resolved_by_the_check_digit() -> None:
    vin = "WVWZZZ1KZ5W000013"
    vin = _with(vin, 8, vin_check_digit(vin))
    assert is_valid_vin(vin)
    misread = _with(vin, 9, "S")  # the 5 at position 10 read as S
    assert not is_valid_vin(misread)
    assert correct_vin(misread) == vin


def test_l_for_1_and_q_for_9_are_tried_when_the_check_digit_fails() -> None:
    assert correct_vin("VFLNB6Z71HA877278") == "VF1NB6Z71HA877278"
    assert correct_vin("ZFAQTBOP2KA707547") == "ZFA9TB0P2KA707547"


def test_ambiguous_or_wrong_length_readings_are_not_guessed() -> None:
    assert correct_vin("WVWZZZ1KZ6W00000I") is None  # the simulator's deliberately invalid VIN
    assert correct_vin(VALID_VIN[:-1]) is None
    assert correct_vin(VALID_VIN + "1") is None
    assert correct_vin("1M8GDM9A*KP042788") is None


def test_find_vin_after_a_label_tolerates_spaces_and_confusions() -> None:
    assert find_vin("Vehicle\nVIN: 1M8GDM9AX KP042788\nColour: red") == VALID_VIN
    assert find_vin("V1N no. IM8GDM9AXKPO42788") == VALID_VIN


def test_find_vin_without_a_vin_mention_only_takes_tokens_valid_as_they_stand() -> None:
    assert find_vin(f"ref {VALID_VIN} shipped") == VALID_VIN
    assert find_vin("ref ZFAQTBOP2KA707547 shipped") is None  # would need a Q->9 guess
    assert find_vin("VIN\n\nref ZFAQTBOP2KA707547") == "ZFA9TB0P2KA707547"  # a column layout


def test_claim_and_policy_numbers_with_ocr_look_alikes() -> None:
    assert find_claim_number("Claim number: CLM-2O26-OOO4S67") == "CLM-2026-0004567"
    assert find_claim_number("C1M 2026-0004567") == "CLM-2026-0004567"
    assert find_claim_number("CLM-2026-00045678") is None  # 8 digits: not ours
    assert find_policy_number("Policy P0L-2026-0001234, renewed") == "POL-2026-0001234"
    assert find_policy_number("nothing here") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-12", date(2026, 3, 12)),
    ("2026-03-12 14:05", date(2026, 3, 12)),
    ("12/03/2026", date(2026, 3, 12)),      # day first
    ("12.03.2026", date(2026, 3, 12)),
    ("12-03-26", date(2026, 3, 12)),
    ("03/25/2026", date(2026, 3, 25)),      # month first only when day first is impossible
    ("12 March 2026", date(2026, 3, 12)),
    ("12th of March 2026", date(2026, 3, 12)),
    ("12 Mar 2026", date(2026, 3, 12)),
    ("March 12, 2026", date(2026, 3, 12)),
    ("Sept. 3rd, 2026", date(2026, 9, 3)),
    ("30/02/2026", None),
    ("2026-13-01", None),
    ("no date", None),
])
def test_parse_date(text: str, expected: date | None) -> None:
    assert parse_date(text) == expected


def test_loss_date_prefers_the_labelled_date_and_otherwise_the_only_date() -> None:
    text = "Reported: 2026-03-14\nDate of loss: 12/03/2026\nPrinted 15 March 2026"
    assert find_loss_date(text) == date(2026, 3, 12)
    assert find_loss_date("Accident on March 9, 2026 near Lisbon") == date(2026, 3, 9)
    assert find_loss_date("Invoice 2026-03-01, paid 2026-03-20") is None  # two dates, no label: no guess


@pytest.mark.parametrize(("raw", "expected"), [
    ("1,234.56", "1234.56"), ("1.234,56", "1234.56"), ("1 234,56", "1234.56"), ("1234.50", "1234.50"),
    ("1234,5", "1234.50"), ("1.234", "1234.00"), ("1,234,567.89", "1234567.89"), ("12", "12.00"),
    ("-125.00", "-125.00"), ("1.2345", None),
])
def test_parse_amount(raw: str, expected: str | None) -> None:
    assert parse_amount(raw) == (Decimal(expected) if expected else None)


def test_find_amounts_in_both_conventions_once_each_in_order() -> None:
    text = ("Estimate $1,234.56; repair EUR 1.234,56 (same); VAT 259.26 EUR; excess € 250,00; "
            "towing 80.00; on 12.03.2026 at 14.05h, policy year 2026, ref INV-00001-0001")
    assert find_amounts(text) == [Decimal("1234.56"), Decimal("259.26"), Decimal("250.00"), Decimal("80.00")]


def test_find_amounts_reads_csv_cells_and_ignores_long_digit_runs() -> None:
    csv_text = "invoice_id,amount,vat_amount\nINV-1,1234.50,259.25\nINV-2,99.00,20.79\n"
    assert find_amounts(csv_text) == [Decimal("1234.50"), Decimal("259.25"), Decimal("99.00"), Decimal("20.79")]
    assert find_amounts("IBAN EUR 12345678901234567890") == []


def test_extract_fields_from_a_simulator_form_text() -> None:
    text = ("Claim number: CLM-2026-0004567\nPolicy number: POL-2026-0001234\nVIN: 1M8GDM9AXKP042788\n"
            "Loss date: 2026-03-12 14:05\nAmount claimed: EUR 1234.50\n")
    fields = extract_fields(text)
    assert fields.to_dict() == {"claim_number": "CLM-2026-0004567", "policy_number": "POL-2026-0001234",
                                "vin": VALID_VIN, "loss_date": "2026-03-12", "amounts": [1234.5]}
