"""Which columns of claims_db are personal data, and how they leave the normalizer: tokenized or masked.

This is part of the contract: consumers must know that `customers.email` on `claims.cdc.customers.v1` holds a
token, not an address. The Avro contracts mark the same columns with `"pii": "<mode>"` (a test keeps the two in
step). Clear values stay in the raw Debezium topics only.

Modes:
- `token`: `tok_` + 32 hex chars of HMAC-SHA256(key, value text); deterministic, so equal values join across
  tables and topics (see `services/cdc_normalizer/pii.py` for the exact formula).
- `mask`: the first 3 and last 2 characters kept, the others replaced by `*` (`+33612345678` -> `+33*******78`);
  for display, not for joins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Mapping

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
