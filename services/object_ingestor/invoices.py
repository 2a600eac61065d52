"""The repair-shop invoice row contract (extract_row.v1): validation of one row's values (pure).

Fields are the simulator's `INVOICE_FIELDS` (claimsctl/simulator/landing.py), which is what repair shops send:
invoice_id, claim_number, repair_shop, invoice_date, amount, vat_amount, currency, vin. A row is valid when

- invoice_id and repair_shop are non-empty (at most 64 / 200 characters);
- claim_number is `CLM-YYYY-NNNNNNN` with a plausible year (1900-2199, as the document processor reads them) and a
  non-zero sequence: placeholders such as `CLM-0000-0000000` are not claims;
- invoice_date is an ISO calendar date that exists (`2026-02-30` does not);
- amount is a decimal with at most 2 places, > 0; vat_amount the same, >= 0 (`-125.00`, `1.234,5O` are not);
- currency is an upper-case ISO 4217 code;
- vin is empty (not every invoice names the vehicle) or 17 characters of the ISO 3779 alphabet (no I, O, Q). The
  check digit is not required: it is mandatory in North America and China only, and European VINs often lack it.

Every problem of a row is reported, not just the first, so a source can fix them all at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

RECORD_TYPE = "repair_shop_invoice"
INVOICE_FIELDS = ("invoice_id", "claim_number", "repair_shop", "invoice_date", "amount", "vat_amount", "currency",
                  "vin")
OPTIONAL_FIELDS = frozenset({"vin"})

_CLAIM_NUMBER = re.compile(r"CLM-(\d{4})-(\d{7})")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_AMOUNT = re.compile(r"\d{1,10}(\.\d{1,2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class InvoiceCheck:
    """Outcome of one row: `values` (typed, contract field names) when valid, else the `errors`."""

    values: dict[str, Any] | None
    errors: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return self.values is not None


def normalise_claim_number(raw: Any) -> str | None:
    """Claim number as the platform writes it: upper case, no spaces, Unicode dashes as '-'; None when empty."""
    if not isinstance(raw, str):
        return None
    text = re.sub(r"\s+", "", raw).upper()
    text = re.sub(r"[\u2010-\u2015\u2212_]", "-", text)
    return text or None


def validate_invoice(row: Mapping[str, Any]) -> InvoiceCheck:
    """Check one row (field name -> value as read: strings from CSV, JSON values from JSON lines)."""
    errors: list[str] = []
    text: dict[str, str] = {}
    for name in INVOICE_FIELDS:
        value = row.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if name not in OPTIONAL_FIELDS:
                errors.append(f"{name}: missing")
            text[name] = ""
        elif isinstance(value, bool) or not isinstance(value, (str, int, Decimal, float)):
            errors.append(f"{name}: expected a string or number, got {type(value).__name__}")
            text[name] = ""
        else:
            text[name] = str(value).strip()

    out: dict[str, Any] = {"invoice_id": text["invoice_id"], "repair_shop": text["repair_shop"]}
    if len(text["invoice_id"]) > 64:
        errors.append("invoice_id: longer than 64 characters")
    if len(text["repair_shop"]) > 200:
        errors.append("repair_shop: longer than 200 characters")

    claim = normalise_claim_number(text["claim_number"]) or ""
    m = _CLAIM_NUMBER.fullmatch(claim)
    if text["claim_number"] and not m:
        errors.append(f"claim_number: {text['claim_number']!r} is not CLM-YYYY-NNNNNNN")
    elif m and not (1900 <= int(m.group(1)) <= 2199 and int(m.group(2)) > 0):
        errors.append(f"claim_number: {claim!r} is a placeholder, not a claim (year or sequence out of range)")
    out["claim_number"] = claim

    raw_date = text["invoice_date"]
    if raw_date:
        try:
            if not _ISO_DATE.fullmatch(raw_date):
                raise ValueError("not YYYY-MM-DD")
            out["invoice_date"] = date.fromisoformat(raw_date)
        except ValueError as exc:
            errors.append(f"invoice_date: {raw_date!r} is not a valid ISO date ({exc})")

    for name, minimum_exclusive in (("amount", True), ("vat_amount", False)):
        raw = text[name]
        if not raw:
            continue
        amount = _decimal(raw)
        if amount is None:
            errors.append(f"{name}: {raw!r} is not a decimal amount with at most 2 places (e.g. 1234.50)")
        elif amount < 0 or (minimum_exclusive and amount == 0):
            errors.append(f"{name}: {raw} must be {'positive' if minimum_exclusive else 'zero or more'}")
        else:
            out[name] = amount.quantize(_CENT)

    if text["currency"] and not _CURRENCY.fullmatch(text["currency"]):
        errors.append(f"currency: {text['currency']!r} is not an ISO 4217 code (3 upper-case letters)")
    out["currency"] = text["currency"]

    vin = text["vin"].upper()
    if vin and not _VIN.fullmatch(vin):
        errors.append(f"vin: {text['vin']!r} is not 17 characters of the VIN alphabet (no I, O or Q)")
    out["vin"] = vin or None

    if errors:
        return InvoiceCheck(None, tuple(errors))
    return InvoiceCheck(out, ())


def _decimal(raw: str) -> Decimal | None:
    """A plain decimal ('1234.5', '-125.00'); None for anything else ('1.234,5O', '1e3', 'NaN')."""
    sign = raw.startswith("-")
    body = raw[1:] if sign else raw
    if not _AMOUNT.fullmatch(body):
        return None
    try:
        value = Decimal(body)
    except InvalidOperation:
        return None
    return -value if sign else value
