"""Which claim a document belongs to (pure): the claims/policies CDC state and the link rule.

Methods, strongest first (the first that finds exactly one claim wins):
1. `claim_number`: the claim number extracted from the content (OCR / text layer), normalised, equals a claim's;
2. `policy_loss_date`: the extracted policy number names a policy with exactly one claim whose loss date equals the
   extracted loss date (the claim's `loss_local_time` date when it has one: that is what a form says; else its
   UTC `loss_time` date within `loss_date_slack_days`, since the form's date is local);
3. `key_path`: the claim number in the object key `incoming/<yyyy>/<mm>/<dd>/<claim number>/<name>`, as the
   uploading channel filed it.
A document none of these link stays unlinked (counted) and is tried again whenever a claim or policy it names
arrives or changes. Invoice extracts (many claims per file, `incoming/.../batches/`) are not linked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from services.object_ingestor.invoices import normalise_claim_number

CLAIM_NUMBER = "claim_number"
POLICY_LOSS_DATE = "policy_loss_date"
KEY_PATH = "key_path"
METHODS = (CLAIM_NUMBER, POLICY_LOSS_DATE, KEY_PATH)


@dataclass(frozen=True)
class ClaimFacts:
    """What the document rules need of a claim (from `claims.cdc.claims.v1`)."""

    claim_id: str
    claim_number: str | None
    policy_id: str | None
    vehicle_id: str | None
    loss_time_ms: int | None
    loss_local_time: datetime | None   # naive: the wall-clock time written on the form
    loss_lat: float | None
    loss_lon: float | None
    reported_at_ms: int | None
    change_ts_ms: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any], change_ts_ms: int) -> "ClaimFacts":
        """From a normalized claims row (canonical JSON values, see claims_shared/contracts/cdc.py)."""
        local = row.get("loss_local_time")
        return cls(
            claim_id=str(row["claim_id"]), claim_number=normalise_claim_number(row.get("claim_number")),
            policy_id=_str(row.get("policy_id")), vehicle_id=_str(row.get("vehicle_id")),
            loss_time_ms=_epoch_ms(row.get("loss_time")),
            loss_local_time=datetime.fromisoformat(local).replace(tzinfo=None) if local else None,
            loss_lat=row.get("loss_lat"), loss_lon=row.get("loss_lon"),
            reported_at_ms=_epoch_ms(row.get("reported_at")), change_ts_ms=change_ts_ms,
        )

    def loss_facts(self) -> dict[str, Any]:
        """The claim fields the photo rules look at (part of their alert ids)."""
        return {"loss_time_ms": self.loss_time_ms,
                "loss_local_time": self.loss_local_time.isoformat() if self.loss_local_time else None,
                "loss_lat": self.loss_lat, "loss_lon": self.loss_lon}


@dataclass(frozen=True)
class Link:
    claim_id: str
    claim_number: str | None
    method: str


def claim_number_from_key(key: str | None, incoming_prefix: str = "incoming/") -> str | None:
    """The claim number of `incoming/<yyyy>/<mm>/<dd>/<claim number>/<name>` (normalised); None for other keys
    (batches, other prefixes, no date)."""
    if not key or not key.startswith(incoming_prefix):
        return None
    parts = key[len(incoming_prefix):].split("/")
    if len(parts) < 5 or not all(p.isdigit() for p in parts[:3]) or parts[3].lower() == "batches":
        return None
    return normalise_claim_number(parts[3])


class ClaimDirectory:
    """Claims and policies as of the CDC changes applied so far, indexed the ways linking looks them up."""

    def __init__(self) -> None:
        self.claims: dict[str, ClaimFacts] = {}
        self._by_number: dict[str, str] = {}                 # claim number -> claim_id
        self._claims_of_policy: dict[str, set[str]] = {}     # policy_id -> claim_ids
        self._policy_number: dict[str, str] = {}             # policy_id -> policy number
        self._policy_by_number: dict[str, str] = {}          # policy number -> policy_id

    # -- changes ------------------------------------------------------------------------------------------------
    def apply_claim_change(self, change: Mapping[str, Any]) -> tuple[ClaimFacts | None, ClaimFacts | None]:
        """A decoded `claims.cdc.claims.v1` change; returns (before, after) as this directory knew them."""
        claim_id = str(change["key"].get("claim_id", ""))
        before = self.claims.get(claim_id)
        if change["op"] == "t":
            for known in list(self.claims.values()):
                self._forget(known)
            return before, None
        if change["op"] == "d" or change["row"] is None:
            if before is not None:
                self._forget(before)
            return before, None
        row = dict(change["row"])
        if before is not None:
            # TOAST-unchanged columns are absent: keep what we knew (none of ours is TOASTable, but be safe).
            for column in change.get("unchanged") or ():
                row.setdefault(column, _column_of(before, column))
        after = ClaimFacts.from_row(row, int(change.get("source_ts_ms") or 0))
        if before is not None:
            self._forget(before)
        self.claims[claim_id] = after
        if after.claim_number:
            self._by_number[after.claim_number] = claim_id
        if after.policy_id:
            self._claims_of_policy.setdefault(after.policy_id, set()).add(claim_id)
        return before, after

    def apply_policy_change(self, change: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """A decoded `claims.cdc.policies.v1` change; returns the policy number (before, after)."""
        policy_id = str(change["key"].get("policy_id", ""))
        before = self._policy_number.pop(policy_id, None)
        if before is not None and self._policy_by_number.get(before) == policy_id:
            del self._policy_by_number[before]
        if change["op"] in ("d", "t") or change["row"] is None:
            if change["op"] == "t":
                self._policy_number.clear()
                self._policy_by_number.clear()
            return before, None
        number = normalise_claim_number(change["row"].get("policy_number"))  # same normal form as claim numbers
        if number is None and before is not None and "policy_number" in (change.get("unchanged") or ()):
            number = before
        if number:
            self._policy_number[policy_id] = number
            self._policy_by_number[number] = policy_id
        return before, number

    # -- lookups ------------------------------------------------------------------------------------------------
    def by_number(self, claim_number: str | None) -> ClaimFacts | None:
        claim_id = self._by_number.get(claim_number) if claim_number else None
        return self.claims.get(claim_id) if claim_id else None

    def policy_number_of(self, claim: ClaimFacts) -> str | None:
        return self._policy_number.get(claim.policy_id) if claim.policy_id else None

    def claims_of_policy_number(self, policy_number: str | None) -> list[ClaimFacts]:
        policy_id = self._policy_by_number.get(policy_number) if policy_number else None
        if policy_id is None:
            return []
        return [self.claims[c] for c in sorted(self._claims_of_policy.get(policy_id, ())) if c in self.claims]

    def _forget(self, claim: ClaimFacts) -> None:
        self.claims.pop(claim.claim_id, None)
        if claim.claim_number and self._by_number.get(claim.claim_number) == claim.claim_id:
            del self._by_number[claim.claim_number]
        if claim.policy_id:
            self._claims_of_policy.get(claim.policy_id, set()).discard(claim.claim_id)


@dataclass(frozen=True)
class LinkHints:
    """What a document says about its claim (from its document record)."""

    claim_number: str | None
    policy_number: str | None
    loss_date: date | None
    key_claim_number: str | None


def link_document(hints: LinkHints, claims: ClaimDirectory, *, loss_date_slack_days: int = 1) -> Link | None:
    """The claim of a document by the first method that finds exactly one (module docstring); None if none does."""
    claim = claims.by_number(hints.claim_number)
    if claim is not None:
        return Link(claim.claim_id, claim.claim_number, CLAIM_NUMBER)
    if hints.policy_number and hints.loss_date:
        matches = [c for c in claims.claims_of_policy_number(hints.policy_number)
                   if _same_loss_date(c, hints.loss_date, loss_date_slack_days)]
        if len(matches) == 1:
            return Link(matches[0].claim_id, matches[0].claim_number, POLICY_LOSS_DATE)
    claim = claims.by_number(hints.key_claim_number)
    if claim is not None:
        return Link(claim.claim_id, claim.claim_number, KEY_PATH)
    return None


def _same_loss_date(claim: ClaimFacts, loss_date: date, slack_days: int) -> bool:
    if claim.loss_local_time is not None:
        return claim.loss_local_time.date() == loss_date
    if claim.loss_time_ms is None:
        return False
    utc_date = datetime.fromtimestamp(claim.loss_time_ms / 1000, tz=timezone.utc).date()
    return abs(utc_date - loss_date) <= timedelta(days=slack_days)


def _epoch_ms(value: Any) -> int | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _column_of(claim: ClaimFacts, column: str) -> Any:
    if column == "loss_local_time":
        return claim.loss_local_time.isoformat() if claim.loss_local_time else None
    return getattr(claim, column, None)
