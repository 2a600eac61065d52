"""Which columns of claims_db are personal data, and how they leave the normalizer: tokenized or masked.

This is part of the contract: consumers must know that `customers.email` on `claims.cdc.customers.v1` holds a
token, not an address. The Avro contracts mark the same columns with `"pii": "<mode>"` (a test keeps the two in
step). Clear values stay in the raw Debezium topics only.

Modes:
- `token`: `tok_` + 32 hex chars of HMAC-SHA256(key, value text); deterministic, so equal values join across
  tables and topics. `PiiTokenizer` below is the one implementation: the normalizer protects records with it and
  `claimsctl reconcile` tokenizes PostgreSQL values with it to compare them with the lake.

Token formula (stable: changing it changes every token downstream):

    token(value) = "tok_" + hex(HMAC-SHA256(key, text(value)))[:32]

where `key` is `PlatformSettings.pii_key` (UTF-8) and `text(value)` is the UTF-8 of the value itself when it is a
string (canonical values of text, date, uuid... are strings: `"1980-02-03"` hashes the 10 characters) and of its
canonical JSON (`claims_shared.contracts.cdc.canonical_json`) otherwise. The table and column are not part of the
input, so the same clear value gives the same token in every table and topic, and values are not normalised first
(`A@x.com` and `a@x.com` differ). NULL stays NULL.
- `mask`: the first 3 and last 2 characters kept, the others replaced by `*` (`+33612345678` -> `+33*******78`);
  for display, not for joins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Mapping

from claims_shared.contracts.cdc import ChangeRecord, canonical_json

if TYPE_CHECKING:
    from claims_shared.settings import PlatformSettings

PiiMode = Literal["token", "mask"]
PII_MODES: tuple[str, ...] = ("token", "mask")


class PiiPolicyError(ValueError):
    """A PII policy names an unknown mode; fix the policy (modes: token, mask)."""


@dataclass(frozen=True)
class PiiPolicy:
    """Per table, per column: how a PII column is protected. Columns not listed pass through unchanged."""

    columns: Mapping[str, Mapping[str, PiiMode]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frozen = {}
        for table, cols in self.columns.items():
            for column, mode in cols.items():
                if mode not in PII_MODES:
                    raise PiiPolicyError(f"{table}.{column}: PII mode must be one of {PII_MODES}, got {mode!r}")
            frozen[table] = MappingProxyType(dict(cols))
        object.__setattr__(self, "columns", MappingProxyType(frozen))

    def for_table(self, table: str) -> Mapping[str, PiiMode]:
        """Column -> mode for one table (empty when the table has no PII)."""
        return self.columns.get(table, _EMPTY)

    def mode(self, table: str, column: str) -> PiiMode | None:
        return self.for_table(table).get(column)

    def with_columns(self, table: str, **modes: PiiMode) -> "PiiPolicy":
        """A copy with these columns of `table` set (e.g. `policy.with_columns("customers", phone="mask")`)."""
        merged = {t: dict(c) for t, c in self.columns.items()}
        merged.setdefault(table, {}).update(modes)
        return PiiPolicy(merged)


_EMPTY: Mapping[str, PiiMode] = MappingProxyType({})

# Tokens everywhere by default: a token still joins (same person, same token in customers and drivers), a mask does not.
DEFAULT_PII_POLICY = PiiPolicy({
    "customers": {
        "full_name": "token",
        "date_of_birth": "token",
        "email": "token",
        "phone": "token",
        "national_id": "token",
    },
    "drivers": {
        "full_name": "token",
        "date_of_birth": "token",
        "licence_number": "token",
    },
})


TOKEN_PREFIX = "tok_"
TOKEN_HEX_CHARS = 32


def mask_value(text: str) -> str:
    """`+33612345678` -> `+33*******78`; 5 characters or fewer -> all `*`."""
    if len(text) <= 5:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


class PiiTokenizer:
    """Applies a `PiiPolicy` to `ChangeRecord`s (or single canonical values) with one HMAC key."""

    def __init__(self, key: bytes, policy: PiiPolicy = DEFAULT_PII_POLICY) -> None:
        if not key:
            raise ValueError("the PII key is empty: set CLAIMS_PII_KEY")
        self.policy = policy
        # HMAC state after the key is absorbed; copying it per value skips re-keying (about 2x faster).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    @classmethod
    def from_settings(cls, settings: "PlatformSettings", policy: PiiPolicy = DEFAULT_PII_POLICY) -> "PiiTokenizer":
        return cls(settings.pii_key.get_secret_value().encode(), policy)

    def token(self, value: Any) -> str | None:
        """Deterministic token of one canonical value (None stays None)."""
        if value is None:
            return None
        text = value if isinstance(value, str) else canonical_json(value)
        mac = self._keyed.copy()
        mac.update(text.encode())
        return TOKEN_PREFIX + mac.hexdigest()[:TOKEN_HEX_CHARS]

    def protect(self, mode: PiiMode, value: Any) -> str | None:
        if value is None:
            return None
        if mode == "token":
            return self.token(value)
        return mask_value(value if isinstance(value, str) else canonical_json(value))

    def protect_row(self, table: str, values: dict[str, Any]) -> dict[str, Any]:
        """`values` (column -> canonical value) with the table's PII columns protected; the same dict if none."""
        columns = self.policy.for_table(table)
        return self._protect_values(columns, values) if columns and values else values

    def apply(self, record: ChangeRecord) -> ChangeRecord:
        """The record with configured row and key columns protected; the record itself when nothing applies."""
        columns = self.policy.for_table(record.table)
        if not columns:
            return record
        row = self._protect_values(columns, record.row) if record.row else record.row
        key = self._protect_values(columns, record.key) if record.key else record.key
        if row is record.row and key is record.key:
            return record
        return dataclasses.replace(record, row=row, key=key, event_id="")

    def _protect_values(self, columns: Mapping[str, PiiMode], values: dict[str, Any]) -> dict[str, Any]:
        out = None
        for column, mode in columns.items():
            if column in values and values[column] is not None:
                if out is None:
                    out = dict(values)
                out[column] = self.protect(mode, values[column])
        return values if out is None else out
