"""PII protection of normalized change records: configured columns leave the normalizer tokenized or masked.

Token formula (stable: changing it changes every token downstream):

    token(value) = "tok_" + hex(HMAC-SHA256(key, text(value)))[:32]

where `key` is `PlatformSettings.pii_key` (UTF-8) and `text(value)` is the UTF-8 of the value itself when it is a
string (canonical values of text, date, uuid... are strings: `"1980-02-03"` hashes the 10 characters) and of its
canonical JSON (`claims_shared.contracts.cdc.canonical_json`) otherwise. The table and column are not part of the
input, so the same clear value gives the same token in every table and topic (a customer's full_name matches the
driver's), and values are not normalised first (`A@x.com` and `a@x.com` differ). 128 bits of HMAC output: no
practical collisions, and without the key nobody can test a guess. NULL stays NULL.

Mask: the first 3 and last 2 characters kept, every other character replaced by `*` (length kept); values of 5
characters or fewer become all `*`.

Both apply to row values and key values of configured columns, including columns PostgreSQL gained after the
contract was written (they travel in `extra_columns`, still under their column name). The event id is recomputed
from the protected record, because the id of a snapshot read hashes the whole row: it must not be an unkeyed hash
of clear PII.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import Any, Mapping

from claims_shared.contracts.cdc import ChangeRecord, canonical_json
from claims_shared.contracts.pii import DEFAULT_PII_POLICY, PiiMode, PiiPolicy, PiiPolicyError
from claims_shared.settings import PlatformSettings

__all__ = ["PiiPolicy", "PiiPolicyError", "PiiTokenizer", "DEFAULT_PII_POLICY", "mask_value", "TOKEN_PREFIX"]

TOKEN_PREFIX = "tok_"
TOKEN_HEX_CHARS = 32


def mask_value(text: str) -> str:
    """`+33612345678` -> `+33*******78`; 5 characters or fewer -> all `*`."""
    if len(text) <= 5:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


class PiiTokenizer:
    """Applies a `PiiPolicy` to `ChangeRecord`s with one HMAC key."""

    def __init__(self, key: bytes, policy: PiiPolicy = DEFAULT_PII_POLICY) -> None:
        if not key:
            raise ValueError("the PII key is empty: set CLAIMS_PII_KEY")
        self.policy = policy
        # HMAC state after the key is absorbed; copying it per value skips re-keying (about 2x faster).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    @classmethod
    def from_settings(cls, settings: PlatformSettings, policy: PiiPolicy = DEFAULT_PII_POLICY) -> "PiiTokenizer":
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
