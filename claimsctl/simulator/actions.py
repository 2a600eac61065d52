"""The CDC actions the planner decides and the database layer applies; plain immutable data.

Every value an action writes (ids, timestamps, amounts) is fixed when it is planned, so applying the same
list of actions twice to two empty databases gives the same rows (except DB-side defaults such as
created_at/updated_at and identity columns).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from claimsctl.simulator.entities import Claim, Customer, Driver, Policy, Vehicle


@dataclass(frozen=True)
class NewPolicyholder:
    at: datetime
    customer: Customer
    policy: Policy
    vehicles: tuple[Vehicle, ...]
    drivers: tuple[Driver, ...]


@dataclass(frozen=True)
class FileClaim:
    """First notice of loss (status fnol) or a draft started online (status draft)."""

    at: datetime
    claim: Claim
    vehicle: Vehicle | None
    policy: Policy
    # Ground truth for fraud-detection tests; never written to the database.
    from_trace: bool = False
    inconsistent_with_trace: bool = False


@dataclass(frozen=True)
class DeleteDraft:
    at: datetime
    claim_id: uuid.UUID
    claim_number: str


@dataclass(frozen=True)
class AdjusterAssignment:
    adjuster_id: int
    role: str


@dataclass(frozen=True)
class TransitionClaim:
    at: datetime
    claim_id: uuid.UUID
    claim_number: str
    from_status: str
    to_status: str
    reserve_amount: Decimal | None = None
    settled_amount: Decimal | None = None
    assign: tuple[AdjusterAssignment, ...] = ()
    release_adjusters: bool = False


@dataclass(frozen=True)
class AddPayment:
    at: datetime
    payment_id: uuid.UUID
    claim_id: uuid.UUID
    claim_number: str
    amount: Decimal
    payee: str
    method: str
    reference: str
    value_date: date


@dataclass(frozen=True)
class ReassignAdjuster:
    at: datetime
    claim_id: uuid.UUID
    adjuster_id: int
    role: str


@dataclass(frozen=True)
class CorrectClaim:
    """An update of a claim: any of description, claimed_amount, tags (full new value), details (merged)."""

    at: datetime
    claim_id: uuid.UUID
    description: str | None = None
    claimed_amount: Decimal | None = None
    tags: tuple[str, ...] | None = None
    details_patch: dict[str, Any] | None = None


@dataclass(frozen=True)
class UpdateCustomer:
    at: datetime
    customer_id: uuid.UUID
    email: str | None = None
    phone: str | None = None
    address: dict[str, Any] | None = None
    marketing_opt_in: bool | None = None


Action = (
    NewPolicyholder | FileClaim | DeleteDraft | TransitionClaim | AddPayment | ReassignAdjuster | CorrectClaim
    | UpdateCustomer
)
