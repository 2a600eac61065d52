r"""Pure planning of a claim's life: the status state machine, settlement and payments, step delays.

    draft -> fnol -> assessing -> approved -> paid -> closed
      |                      \-> denied -----------> closed
      +-> (deleted: a cancelled draft)
Payments are made while a claim is `approved`; it moves to `paid` once they add up to the settled amount.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from claimsctl.simulator.entities import CENT, money

STATUSES = ("draft", "fnol", "assessing", "approved", "denied", "paid", "closed")
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"fnol"}),
    "fnol": frozenset({"assessing"}),
    "assessing": frozenset({"approved", "denied"}),
    "approved": frozenset({"paid"}),
    "denied": frozenset({"closed"}),
    "paid": frozenset({"closed"}),
    "closed": frozenset(),
}
OPEN_STATUSES = frozenset({"draft", "fnol", "assessing", "approved"})
PAYEES = ("policyholder", "repairer", "third_party", "medical")
METHODS = ("bank_transfer", "cheque", "direct_repair")


class IllegalTransitionError(ValueError):
    """A planned status change the claim state machine does not allow (a simulator bug)."""


def is_legal_transition(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, new: str) -> None:
    if not is_legal_transition(current, new):
        raise IllegalTransitionError(f"claim status {current!r} -> {new!r} is not allowed; allowed: "
                                     f"{sorted(TRANSITIONS.get(current, ()))}")


@dataclass(frozen=True)
class LifecycleTiming:
    """Mean simulated seconds before a claim's next step. Compressed: a claim lives minutes, not weeks."""

    draft_s: float = 6.0
    fnol_s: float = 5.0
    assessing_s: float = 10.0
    approved_s: float = 4.0  # between payments, and before `paid`
    decided_s: float = 8.0  # paid or denied -> closed
    draft_cancel_probability: float = 0.3
    deny_probability: float = 0.15


@dataclass(frozen=True)
class PlannedPayment:
    amount: Decimal
    payee: str
    method: str


@dataclass
class ClaimProgress:
    """What the planner remembers about an open claim between steps."""

    claim_id: object
    claim_number: str
    status: str
    loss_type: str
    claimed_amount: Decimal
    excess_amount: Decimal
    third_party_involved: bool
    injury_count: int
    settled_amount: Decimal | None = None
    payments_left: list[PlannedPayment] = field(default_factory=list)
    adjuster_ids: list[int] = field(default_factory=list)
    deleted: bool = False


def step_delay(status: str, rng: random.Random, timing: LifecycleTiming) -> float:
    """Simulated seconds until the next step of a claim now in `status` (exponential around the mean)."""
    mean = {
        "draft": timing.draft_s,
        "fnol": timing.fnol_s,
        "assessing": timing.assessing_s,
        "approved": timing.approved_s,
        "denied": timing.decided_s,
        "paid": timing.decided_s,
    }[status]
    return rng.expovariate(1 / mean)


def decide_assessment(claim: ClaimProgress, rng: random.Random, timing: LifecycleTiming) -> tuple[str, Decimal]:
    """`approved` with a settled amount (claimed x adjuster's factor - excess), or `denied` with 0."""
    if rng.random() < timing.deny_probability:
        return "denied", money(0)
    settled = claim.claimed_amount * Decimal(str(round(rng.uniform(0.65, 1.0), 3))) - claim.excess_amount
    if settled < Decimal("50"):
        return "denied", money(0)
    return "approved", settled.quantize(CENT)


def plan_payments(claim: ClaimProgress, settled: Decimal, rng: random.Random) -> list[PlannedPayment]:
    """Split `settled` into 1-3 payments that add up exactly (repairer first, then policyholder/others)."""
    count = rng.choices((1, 2, 3), weights=(0.6, 0.3, 0.1))[0]
    cents = int(settled / CENT)
    cuts = sorted(rng.sample(range(1, cents), count - 1)) if cents > count else []
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, cents])]
    payees = ["repairer" if claim.loss_type in ("collision", "glass", "vandalism") else "policyholder"]
    if claim.third_party_involved:
        payees.append("third_party")
    if claim.injury_count:
        payees.append("medical")
    payees.append("policyholder")
    payments = []
    for i, part in enumerate(parts):
        payee = payees[min(i, len(payees) - 1)]
        method = "direct_repair" if payee == "repairer" else rng.choices(METHODS[:2], weights=(0.9, 0.1))[0]
        payments.append(PlannedPayment(Decimal(part) * CENT, payee, method))
    return payments


def reserve_for(claim: ClaimProgress, rng: random.Random) -> Decimal:
    return money(float(claim.claimed_amount) * rng.uniform(0.8, 1.25))
