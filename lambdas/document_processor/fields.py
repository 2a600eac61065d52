"""Claim fields from document text (OCR output, PDF text layers, extracts), tolerant of OCR letter/digit confusions.

Formats are the platform's own (claimsctl/simulator/entities.py, infra/postgres/schema.sql):
claim numbers `CLM-YYYY-NNNNNNN`, policy numbers `POL-YYYY-NNNNNNN`, 17-character VINs (ISO 3779, check digit at
position 9). Dates: ISO, numeric day-first (DD/MM/YYYY, DD.MM.YYYY; month-first only when the day-first reading is
impossible), and with month names (12 March 2026, March 12, 2026). Amounts: currency-marked in either
convention ($1,234.56, EUR 1.234,56, 1 234,56 €) and bare decimals with two places (1234.50).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import combinations

from lambdas.document_processor.record import ExtractedFields

# -- claim and policy numbers --------------------------------------------------------------------------------
# Inside a fixed-format id, these letters can only be misread digits.
_DIGIT_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "Q": "0", "D": "0", "I": "1", "l": "1", "i": "1", "|": "1",
                                   "S": "5", "s": "5", "B": "8"})
_D = r"[0-9OoQDIli|SsB]"
_SEP = r"\s?[-\u2010\u2011\u2013\u2014_~]?\s?"


def _id_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){prefix}{_SEP}({_D}{{4}}){_SEP}({_D}{{7}})(?![0-9])")


_CLAIM_RE = _id_pattern(r"C\s?[L1I|]\s?M")
_POLICY_RE = _id_pattern(r"P\s?[O0o]\s?L")


def _find_id(pattern: re.Pattern[str], text: str, prefix: str) -> str | None:
    for m in pattern.finditer(text):
        year, seq = m.group(1).translate(_DIGIT_LOOKALIKES), m.group(2).translate(_DIGIT_LOOKALIKES)
        if year.isdigit() and seq.isdigit() and 1900 <= int(year) <= 2199:
            return f"{prefix}-{year}-{seq}"
    return None


def find_claim_number(text: str) -> str | None:
    """First claim number (`CLM-YYYY-NNNNNNN`) in `text`, OCR look-alikes in its digits corrected."""
    return _find_id(_CLAIM_RE, text, "CLM")


def find_policy_number(text: str) -> str | None:
    """First policy number (`POL-YYYY-NNNNNNN`) in `text`, OCR look-alikes in its digits corrected."""
    return _find_id(_POLICY_RE, text, "POL")


# -- VIN ------------------------------------------------------------------------------------------------------
VIN_ALPHABET = frozenset("ABCDEFGHJKLMNPRSTUVWXYZ0123456789")  # never I, O, Q
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10))),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Letters a VIN cannot contain, as what they most likely are; lower-case l/i/o are misread digits too (VINs are
# upper case).
_VIN_FORCED = str.maketrans({"I": "1", "i": "1", "l": "1", "|": "1", "O": "0", "o": "0", "Q": "0", "q": "0"})
# Second readings tried only when the check digit fails, each counting as one correction. S/5 are both legal, so
# only the check digit can tell them apart; tesseract also reads a narrow "1" as "L" and a "9" as "Q" (seen on
# simulated scans); the reverse confusions are rare, so those are one-way.
_VIN_SWAPS = {"S": "5", "5": "S", "L": "1"}
_VIN_RAW_ALTERNATIVES = {"Q": "9", "q": "9"}
_MAX_VIN_CORRECTIONS = 2


def vin_check_digit(vin: str) -> str:
    """ISO 3779 check digit of a 17-character VIN of legal characters (position 9 is ignored)."""
    remainder = sum(_VIN_VALUES[ch] * w for ch, w in zip(vin, _VIN_WEIGHTS)) % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid_vin(vin: str) -> bool:
    return len(vin) == 17 and set(vin) <= VIN_ALPHABET and vin[8] == vin_check_digit(vin)


def correct_vin(raw: str) -> str | None:
    """A valid VIN from an OCR reading, or None.

    I/O/Q (never in a VIN) become 1/0/0; if the check digit then fails, second readings are tried (S<->5, L->1,
    Q->9; at most two corrections) and the unique valid reading with the fewest corrections wins. Ambiguous or
    invalid readings give None rather than a guess.
    """
    if len(raw) != 17:
        return None
    vin = raw.translate(_VIN_FORCED).upper()
    if not set(vin) <= VIN_ALPHABET:
        return None
    if vin[8] == vin_check_digit(vin):
        return vin
    alternatives = {}
    for i, (original, ch) in enumerate(zip(raw, vin)):
        alt = _VIN_RAW_ALTERNATIVES.get(original) or _VIN_SWAPS.get(ch)
        if alt:
            alternatives[i] = alt
    for count in range(1, _MAX_VIN_CORRECTIONS + 1):
        found = set()
        for chosen in combinations(alternatives, count):
            chars = list(vin)
            for i in chosen:
                chars[i] = alternatives[i]
            candidate = "".join(chars)
            if candidate[8] == vin_check_digit(candidate):
                found.add(candidate)
        if len(found) == 1:
            return found.pop()
        if found:
            return None  # several readings are equally plausible: do not guess
    return None


_VIN_LABEL_RE = re.compile(r"\bV\s?[I1l|]\s?N\b\.?\s*(?:no\.?|number|#)?\s*[:.\-]?\s*([A-Za-z0-9|][A-Za-z0-9| \-]{15,30})",
                           re.IGNORECASE)
_VIN_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z0-9]{17}(?![A-Za-z0-9])")


_VIN_MENTION_RE = re.compile(r"\bV\s?[I1l|]\s?N\b|vehicle\s+identification|chassis", re.IGNORECASE)


def find_vin(text: str) -> str | None:
    """The VIN in `text`, or None.

    First the value right after a 'VIN' label (spaces inside tolerated), OCR-corrected. Then any 17-character
    token: corrected too when the document mentions a VIN somewhere (forms laid out in columns put the value far
    from its label), otherwise only if valid as it stands (after I/O/Q -> 1/0/0), so that arbitrary ids in
    unrelated documents are not bent into VINs.
    """
    for m in _VIN_LABEL_RE.finditer(text):
        compact = re.sub(r"[ \-]", "", m.group(1))
        if len(compact) >= 17 and (vin := correct_vin(compact[:17])):
            return vin
    mentioned = _VIN_MENTION_RE.search(text) is not None
    for m in _VIN_TOKEN_RE.finditer(text):
        token = m.group(0)
        if not any(ch.isdigit() for ch in token) or not any(ch.isalpha() for ch in token):
            continue
        if mentioned:
            if vin := correct_vin(token):
                return vin
        elif is_valid_vin(vin := token.translate(_VIN_FORCED).upper()):
            return vin
    return None


# -- dates ----------------------------------------------------------------------------------------------------
_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
    "nov": 11, "dec": 12,
}
_MONTH = r"(?P<{name}>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_ORD = r"(?:st|nd|rd|th)?"
_DATE_RE = re.compile(
    r"(?<![\d])(?:"
    r"(?P<iy>\d{4})[-/.](?P<im>\d{1,2})[-/.](?P<id>\d{1,2})(?![\d])"
    r"|(?P<na>\d{1,2})[/.\-](?P<nb>\d{1,2})[/.\-](?P<ny>\d{4}|\d{2})(?![\d])"
    r"|(?P<dd>\d{1,2})" + _ORD + r"\s+(?:of\s+)?" + _MONTH.format(name="dm") + r",?\s+(?P<dy>\d{4})(?![\d])"
    r"|" + _MONTH.format(name="mm") + r"\s+(?P<md>\d{1,2})" + _ORD + r",?\s+(?P<my>\d{4})(?![\d])"
    r")",
    re.IGNORECASE,
)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _match_date(m: re.Match[str]) -> date | None:
    if m.group("iy"):
        return _safe_date(int(m.group("iy")), int(m.group("im")), int(m.group("id")))
    if m.group("na"):
        a, b, y = int(m.group("na")), int(m.group("nb")), int(m.group("ny"))
        if len(m.group("ny")) == 2:
            y += 2000 if y < 70 else 1900
        # Day first (the platform's markets); month first only when day-first cannot be a date (03/25/2026).
        return _safe_date(y, b, a) or (_safe_date(y, a, b) if b > 12 else None)
    if m.group("dm"):
        return _safe_date(int(m.group("dy")), _MONTHS[m.group("dm").lower()], int(m.group("dd")))
    return _safe_date(int(m.group("my")), _MONTHS[m.group("mm").lower()], int(m.group("md")))


def find_dates(text: str) -> list[date]:
    """Every valid date in `text`, in order of appearance (impossible ones such as 30/02/2026 are skipped)."""
    return [d for m in _DATE_RE.finditer(text) if (d := _match_date(m)) is not None]


def parse_date(text: str) -> date | None:
    """The first valid date in `text`, or None."""
    dates = find_dates(text)
    return dates[0] if dates else None


_LOSS_LABEL_RE = re.compile(
    r"(?:date\s+of\s+(?:the\s+)?(?:loss|accident|incident)|(?:loss|accident|incident)\s+date|loss\s+time"
    r"|date\s+of\s+event)\s*[:\-]?", re.IGNORECASE)


def find_loss_date(text: str) -> date | None:
    """The date after a loss-date label (same or next line); else the document's only date, if it has one."""
    for m in _LOSS_LABEL_RE.finditer(text):
        if found := parse_date(text[m.end():m.end() + 60]):
            return found
    distinct = set(find_dates(text))
    return distinct.pop() if len(distinct) == 1 else None


# -- amounts --------------------------------------------------------------------------------------------------
_CURRENCY = r"(?:US\$|[$€£]|EUR|USD|GBP|CHF|euros?)"
_SPACE = "\u00a0\u202f "
_NUMBER = (rf"\d{{1,3}}(?:[,.'’{_SPACE}]\d{{3}})+(?:[.,]\d{{1,2}})?(?![\d])"
           r"|\d+(?:[.,]\d{1,2})?(?![\d])")
_GAP = rf"[{_SPACE}]?"  # currency and number on one line
_PREFIX_AMOUNT_RE = re.compile(rf"(?<![A-Za-z]){_CURRENCY}{_GAP}(?P<n>-?(?:{_NUMBER}))", re.IGNORECASE)
_SUFFIX_AMOUNT_RE = re.compile(rf"(?<![\w.,])(?P<n>-?(?:{_NUMBER})){_GAP}{_CURRENCY}(?![A-Za-z])", re.IGNORECASE)
# Without a currency: thousands-grouped, or exactly two decimals; never part of a date, version or longer number.
_BARE_AMOUNT_RE = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+\.\d{2}|\d{1,3}(?:\.\d{3})+,\d{2}|\d+\.\d{2})(?!\w|\.\d)")
_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal(10) ** 15


def parse_amount(raw: str) -> Decimal | None:
    """A monetary amount in either convention ('1,234.56', '1.234,56', '1 234,56', '1234.5'), or None.

    The last separator is the decimal one when both kinds appear; a lone separator followed by exactly three
    digits groups thousands ('1.234' is 1234)."""
    s = raw.strip()
    negative = s.startswith("-")
    s = re.sub(rf"[{_SPACE}'’\-]", "", s)
    dot, comma = s.rfind("."), s.rfind(",")
    if dot >= 0 and comma >= 0:
        decimal_sep = "." if dot > comma else ","
        s = s.replace("," if decimal_sep == "." else ".", "").replace(decimal_sep, ".")
    elif dot >= 0 or comma >= 0:
        sep = "." if dot >= 0 else ","
        tail = len(s) - s.rfind(sep) - 1
        if s.count(sep) == 1 and tail in (1, 2):
            s = s.replace(sep, ".")
        elif tail == 3:
            s = s.replace(sep, "")
        else:
            return None
    try:
        value = Decimal(s)
    except InvalidOperation:
        return None
    if value >= _MAX_AMOUNT:  # a run of digits (an account or phone number), not money; beyond decimal(18, 2)
        return None
    return (-value if negative else value).quantize(_CENT)


def find_amounts(text: str) -> list[Decimal]:
    """Monetary amounts in order of appearance, each value once: currency-marked ones and bare two-decimal ones.

    Numbers inside dates are never amounts; a currency sign belongs to the number after it before the one before
    it ("12 March 2026 EUR 410,00" is 410.00)."""
    taken: list[tuple[int, int]] = [m.span() for m in _DATE_RE.finditer(text)]
    found: list[tuple[int, Decimal]] = []

    def free(start: int, end: int) -> bool:
        return not any(start < t_end and t_start < end for t_start, t_end in taken)

    for pattern in (_PREFIX_AMOUNT_RE, _SUFFIX_AMOUNT_RE, _BARE_AMOUNT_RE):
        for m in pattern.finditer(text):
            group = "n" if pattern is not _BARE_AMOUNT_RE else 0
            if not free(*m.span()) or (value := parse_amount(m.group(group))) is None:
                continue
            found.append((m.start(group), value))
            taken.append(m.span())
    seen: set[Decimal] = set()
    out = []
    for _, value in sorted(found, key=lambda item: item[0]):
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


def extract_fields(text: str) -> ExtractedFields:
    """All claim fields found in `text`."""
    return ExtractedFields(
        claim_number=find_claim_number(text),
        policy_number=find_policy_number(text),
        vin=find_vin(text),
        loss_date=find_loss_date(text),
        amounts=tuple(find_amounts(text)),
    )
