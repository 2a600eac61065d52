"""Applies planned actions to claims_db with psycopg, one small transaction per action."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from claimsctl.simulator.actions import (
    Action, AddPayment, CorrectClaim, DeleteDraft, FileClaim, NewPolicyholder, ReassignAdjuster,
    TransitionClaim, UpdateCustomer,
)
from claimsctl.simulator.entities import ADJUSTERS
from claimsctl.simulator.exceptions import SimulationConflictError, SimulationStateError
from claimsctl.simulator.planner import SequenceBases

_BASES_SQL = r"""
SELECT
  (SELECT count(*) FROM customers),
  (SELECT coalesce(max(substring(policy_number FROM 10)::bigint), 0) + 1 FROM policies
    WHERE policy_number ~ '^POL-\d{4}-\d{7}$'),
  (SELECT count(*) FROM vehicles),
  (SELECT count(*) FROM vehicles WHERE telematics_device_id IS NOT NULL),
  (SELECT coalesce(max(substring(claim_number FROM 10)::bigint), 0) + 1 FROM claims
    WHERE claim_number ~ '^CLM-\d{4}-\d{7}$'),
  (SELECT coalesce(max(substring(reference FROM 10)::bigint), 0) + 1 FROM claim_payments
    WHERE reference ~ '^PAY-\d{4}-\d{8}$')
"""


class ClaimsDatabase:
    """The simulator's writer to claims_db. Not thread-safe; one per simulation run."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @classmethod
    def connect(cls, dsn: str) -> ClaimsDatabase:
        conn = psycopg.connect(dsn, autocommit=True, application_name="claimsctl-simulate")
        # A simulator can lose its last few commits in a crash; not waiting for the WAL flush doubles throughput.
        conn.execute("SET synchronous_commit = off")
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    # -- start-up --------------------------------------------------------------------------------------------
    def sequence_bases(self) -> SequenceBases:
        """Where this run's unique keys start, after the rows earlier runs left (customers etc. are never deleted)."""
        row = self.conn.execute(_BASES_SQL).fetchone()
        assert row is not None
        customer, policy, vehicle, device, claim, payment = (int(v) for v in row)
        return SequenceBases(customer=customer, policy=policy, vehicle=vehicle, device=device, claim=claim,
                             payment=payment)

    def ensure_adjusters(self) -> list[int]:
        """Insert the simulator's adjusters if missing; return their ids in a stable order."""
        with self.conn.transaction():
            for a in ADJUSTERS:
                self.conn.execute(
                    "INSERT INTO adjusters (full_name, email, region, skills, max_open_claims) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (email) DO NOTHING",
                    (a.full_name, a.email, a.region, list(a.skills), a.max_open_claims),
                )
            rows = self.conn.execute(
                "SELECT adjuster_id FROM adjusters WHERE email = ANY(%s) ORDER BY email",
                ([a.email for a in ADJUSTERS],),
            ).fetchall()
        return [r[0] for r in rows]

    # -- actions ---------------------------------------------------------------------------------------------
    def apply(self, action: Action) -> None:
        """Apply one action in its own transaction."""
        try:
            with self.conn.transaction():
                _APPLY[type(action)](self.conn, action)
        except psycopg.errors.UniqueViolation as exc:
            raise SimulationConflictError(
                f"{type(action).__name__} hit an existing key ({exc.diag.constraint_name}): is another simulator "
                "writing to this database? Run one `claimsctl simulate` at a time."
            ) from exc


def _new_policyholder(conn: psycopg.Connection[Any], a: NewPolicyholder) -> None:
    c, p = a.customer, a.policy
    conn.execute(
        "INSERT INTO customers (customer_id, full_name, date_of_birth, email, phone, national_id, address, "
        "marketing_opt_in, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (c.customer_id, c.full_name, c.date_of_birth, c.email, c.phone, c.national_id, Jsonb(c.address),
         c.marketing_opt_in, a.at, a.at),
    )
    conn.execute(
        "INSERT INTO policies (policy_id, policy_number, customer_id, product, inception_date, expiry_date, "
        "sum_insured, annual_premium, excess_amount, currency, status, cover_options, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (p.policy_id, p.policy_number, p.customer_id, p.product, p.inception_date, p.expiry_date, p.sum_insured,
         p.annual_premium, p.excess_amount, p.currency, p.status, list(p.cover_options), a.at, a.at),
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO vehicles (vehicle_id, policy_id, vin, make, model, model_year, registration, market_value, "
            "telematics_device_id, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(v.vehicle_id, v.policy_id, v.vin, v.make, v.model, v.model_year, v.registration, v.market_value,
              v.telematics_device_id, a.at) for v in a.vehicles],
        )
        cur.executemany(
            "INSERT INTO drivers (driver_id, policy_id, customer_id, full_name, date_of_birth, licence_number, "
            "licence_issued, is_main_driver, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(d.driver_id, d.policy_id, d.customer_id, d.full_name, d.date_of_birth, d.licence_number,
              d.licence_issued, d.is_main_driver, a.at) for d in a.drivers],
        )


def _file_claim(conn: psycopg.Connection[Any], a: FileClaim) -> None:
    c = a.claim
    conn.execute(
        "INSERT INTO claims (claim_id, claim_number, policy_id, vehicle_id, driver_id, status, loss_time, "
        "loss_local_time, loss_lat, loss_lon, loss_type, description, reported_at, claimed_amount, reserve_amount, "
        "sla_due_at, third_party_involved, injury_count, tags, details, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s::claim_status, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s)",
        (c.claim_id, c.claim_number, c.policy_id, c.vehicle_id, c.driver_id, c.status, c.loss_time,
         c.loss_local_time, c.loss_lat, c.loss_lon, c.loss_type, c.description, c.reported_at, c.claimed_amount,
         c.reserve_amount, c.sla_due_at, c.third_party_involved, c.injury_count, list(c.tags), Jsonb(c.details),
         a.at, a.at),
    )


def _delete_draft(conn: psycopg.Connection[Any], a: DeleteDraft) -> None:
    cur = conn.execute("DELETE FROM claims WHERE claim_id = %s AND status = 'draft'", (a.claim_id,))
    if cur.rowcount != 1:
        raise SimulationStateError(f"draft {a.claim_number} is not in the database as a draft any more")


def _transition(conn: psycopg.Connection[Any], a: TransitionClaim) -> None:
    cur = conn.execute(
        "UPDATE claims SET status = %s::claim_status, reserve_amount = coalesce(%s, reserve_amount), "
        "settled_amount = coalesce(%s, settled_amount) WHERE claim_id = %s AND status = %s::claim_status",
        (a.to_status, a.reserve_amount, a.settled_amount, a.claim_id, a.from_status),
    )
    if cur.rowcount != 1:
        raise SimulationStateError(
            f"claim {a.claim_number} is not in status {a.from_status!r} in the database; was it changed by hand?"
        )
    for assignment in a.assign:
        conn.execute(
            "INSERT INTO adjuster_assignments (claim_id, adjuster_id, role, assigned_at) VALUES (%s, %s, %s, %s)",
            (a.claim_id, assignment.adjuster_id, assignment.role, a.at),
        )
    if a.release_adjusters:
        conn.execute(
            "UPDATE adjuster_assignments SET unassigned_at = %s WHERE claim_id = %s AND unassigned_at IS NULL",
            (a.at, a.claim_id),
        )


def _add_payment(conn: psycopg.Connection[Any], a: AddPayment) -> None:
    conn.execute(
        "INSERT INTO claim_payments (payment_id, claim_id, amount, payee, method, reference, paid_at, value_date) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (a.payment_id, a.claim_id, a.amount, a.payee, a.method, a.reference, a.at, a.value_date),
    )


def _reassign(conn: psycopg.Connection[Any], a: ReassignAdjuster) -> None:
    conn.execute(
        "UPDATE adjuster_assignments SET unassigned_at = %s "
        "WHERE claim_id = %s AND role = %s AND unassigned_at IS NULL",
        (a.at, a.claim_id, a.role),
    )
    conn.execute(
        "INSERT INTO adjuster_assignments (claim_id, adjuster_id, role, assigned_at) VALUES (%s, %s, %s, %s)",
        (a.claim_id, a.adjuster_id, a.role, a.at),
    )


def _correct(conn: psycopg.Connection[Any], a: CorrectClaim) -> None:
    sets, params = _changes(
        description=a.description,
        claimed_amount=a.claimed_amount,
        tags=list(a.tags) if a.tags is not None else None,
    )
    if a.details_patch is not None:
        sets.append("details = details || %s")
        params.append(Jsonb(a.details_patch))
    _update(conn, "claims", "claim_id", a.claim_id, sets, params)


def _update_customer(conn: psycopg.Connection[Any], a: UpdateCustomer) -> None:
    sets, params = _changes(
        email=a.email, phone=a.phone, marketing_opt_in=a.marketing_opt_in,
        address=Jsonb(a.address) if a.address is not None else None,
    )
    _update(conn, "customers", "customer_id", a.customer_id, sets, params)


def _changes(**values: Any) -> tuple[list[str], list[Any]]:
    present = {k: v for k, v in values.items() if v is not None}
    return [f"{k} = %s" for k in present], list(present.values())


def _update(conn: psycopg.Connection[Any], table: str, key: str, key_value: Any, sets: list[str],
            params: list[Any]) -> None:
    if not sets:
        return
    cur = conn.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE {key} = %s", (*params, key_value))
    if cur.rowcount != 1:
        raise SimulationStateError(f"{table} row {key_value} is missing; was it deleted by hand?")


_APPLY: dict[type, Any] = {
    NewPolicyholder: _new_policyholder,
    FileClaim: _file_claim,
    DeleteDraft: _delete_draft,
    TransitionClaim: _transition,
    AddPayment: _add_payment,
    ReassignAdjuster: _reassign,
    CorrectClaim: _correct,
    UpdateCustomer: _update_customer,
}
