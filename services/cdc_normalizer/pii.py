"""PII protection of normalized change records: configured columns leave the normalizer tokenized or masked.

The implementation (token formula, masks) lives in `claims_shared.contracts.pii`, so every reader that must
reproduce a token (e.g. `claimsctl reconcile` tokenizing PostgreSQL values) runs the same code path. Both apply to
row values and key values of configured columns, including columns PostgreSQL gained after the contract was written
(they travel in `extra_columns`, still under their column name). The event id is recomputed from the protected
record, because the id of a snapshot read hashes the whole row: it must not be an unkeyed hash of clear PII.
"""

from __future__ import annotations

from claims_shared.contracts.pii import (
    DEFAULT_PII_POLICY,
    TOKEN_HEX_CHARS,
    TOKEN_PREFIX,
    PiiPolicy,
    PiiPolicyError,
    PiiTokenizer,
    mask_value,
)

__all__ = ["PiiPolicy", "PiiPolicyError", "PiiTokenizer", "DEFAULT_PII_POLICY", "mask_value", "TOKEN_PREFIX",
           "TOKEN_HEX_CHARS"]
