"""Pure planning of the simulated business: which CDC action happens next, with all of its values.

`ClaimPlanner.next_action(now_s)` draws from one seeded RNG and a simulated clock (`start + now_s`), never
from the wall clock, so the same seed, start, sequence bases and call times give the same actions.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from claimsctl.simulator import entities as ent
from claimsctl.simulator.actions import (
    Action, AddPayment, AdjusterAssignment, CorrectClaim, DeleteDraft, FileClaim, NewPolicyholder,
    ReassignAdjuster, TransitionClaim, UpdateCustomer,
)
from claimsctl.simulator.lifecycle import (
    ClaimProgress, LifecycleTiming, check_transition, decide_assessment, plan_payments, reserve_for, step_delay,
)
from claimsctl.simulator.telematics import CrashEvent, TracePoint, destination

_ZONES = {"PT": "Europe/Lisbon", "ES": "Europe/Madrid", "FR": "Europe/Paris", "DE": "Europe/Berlin",
          "IT": "Europe/Rome", "NL": "Europe/Amsterdam"}
_CHANNELS = ("app", "phone", "web", "broker", "email")
_WEATHER = ("clear", "rain", "fog", "snow", "wind", "hail")
_REPAIRERS = ("AutoRepar Lda", "Carrocerías Núñez", "Garage Dupont", "Karosserie Müller GmbH", "Officina Rossi",
              "Schadeherstel de Boer", "Glass Express", "Taller Ortega")
MIX = {"policyholder": 0.08, "claim": 0.10, "advance": 0.58, "correction": 0.12, "customer_update": 0.05,
       "reassign": 0.03}


def _country_at(lat: float, lon: float) -> str:
    """Country of the nearest known city (enough to pick the time zone written on the claim form)."""
    return min(((c.code, (lat - clat) ** 2 + (lon - clon) ** 2) for c in ent.COUNTRIES
                for _, clat, clon, _ in c.cities), key=lambda pair: pair[1])[0]


class TraceSource(Protocol):
    """Where claims on telematics vehicles take their loss time and place from (the simulated fleet)."""

    def recent_point(self, device_id: str, rng: random.Random) -> TracePoint | None: ...

    def drain_crashes(self) -> list[CrashEvent]: ...


@dataclass(frozen=True)
class SequenceBases:
    """First sequence number of each unique key for this run (after what the database already holds)."""

    customer: int = 0
    policy: int = 1
    vehicle: int = 0
    device: int = 0
    claim: int = 1
    payment: int = 1

    def salt(self) -> str:
        """Part of the RNG seed: a re-run on a non-empty database draws new names, not the same ones."""
        if self == SequenceBases():
            return "fresh"
        return f"{self.customer}.{self.policy}.{self.vehicle}.{self.device}.{self.claim}.{self.payment}"


@dataclass
class _Holder:
    customer: ent.Customer
    policy: ent.Policy
    vehicles: tuple[ent.Vehicle, ...]
    drivers: tuple[ent.Driver, ...]


def device_ids_for(bases: SequenceBases, count: int) -> list[str]:
    """The telematics device ids of this run's fleet (the first `count` after what the database holds)."""
    return [ent.telematics_device_id(bases.device + i) for i in range(count)]


class ClaimPlanner:
    """The simulated insurer's world and the choice of the next change to its database."""

    def __init__(
        self,
        *,
        seed: int,
        start: datetime,
        bases: SequenceBases,
        adjuster_ids: Sequence[int],
        device_ids: Sequence[str] = (),
        timing: LifecycleTiming | None = None,
        trace: TraceSource | None = None,
        inconsistent_probability: float = 0.08,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        if not adjuster_ids:
            raise ValueError("at least one adjuster id is needed to assign claims")
        self.rng = random.Random(f"claims-simulator/{seed}/{bases.salt()}/planner")
        self.start = start
        self.bases = bases
        self.adjuster_ids = list(adjuster_ids)
        self.free_devices = list(device_ids)
        self.free_devices.reverse()  # pop() hands them out in order
        self.timing = timing or LifecycleTiming()
        self.trace = trace
        self.inconsistent_probability = inconsistent_probability
        self.holders: list[_Holder] = []
        self.by_device: dict[str, tuple[_Holder, ent.Vehicle]] = {}
        self.claims: dict[object, ClaimProgress] = {}
        self.open_ids: list[object] = []
        self._open_pos: dict[object, int] = {}
        self._due: list[tuple[float, int, object]] = []
        self._crashes: list[tuple[float, int, CrashEvent]] = []
        self._counter = 0
        self.n_customers = self.n_policies = self.n_vehicles = self.n_claims = self.n_payments = 0

    # -- bookkeeping -----------------------------------------------------------------------------------------
    def _at(self, now_s: float) -> datetime:
        return self.start + timedelta(seconds=now_s)

    def _tick(self) -> int:
        self._counter += 1
        return self._counter

    def _schedule(self, claim: ClaimProgress, now_s: float) -> None:
        heapq.heappush(self._due, (now_s + step_delay(claim.status, self.rng, self.timing), self._tick(),
                                   claim.claim_id))

    def _add_open(self, claim_id: object) -> None:
        self._open_pos[claim_id] = len(self.open_ids)
        self.open_ids.append(claim_id)

    def _remove_open(self, claim_id: object) -> None:
        pos = self._open_pos.pop(claim_id)
        last = self.open_ids.pop()
        if last != claim_id:
            self.open_ids[pos] = last
            self._open_pos[last] = pos

    # -- choice ----------------------------------------------------------------------------------------------
    def next_action(self, now_s: float) -> Action:
        """The next action at simulated time `start + now_s` (callers pass non-decreasing times)."""
        rng = self.rng
        if self.trace is not None:
            for crash in self.trace.drain_crashes():
                if crash.device_id in self.by_device:
                    heapq.heappush(self._crashes, (now_s + rng.expovariate(1 / 20), self._tick(), crash))
        if self._crashes and self._crashes[0][0] <= now_s:
            return self._file_claim(now_s, crash=heapq.heappop(self._crashes)[2])
        if len(self.holders) < 5:
            return self._new_policyholder(now_s)
        available = {
            "policyholder": True,
            "claim": True,
            "advance": bool(self._due) and self._due[0][0] <= now_s,
            "correction": bool(self.open_ids),
            "customer_update": True,
            "reassign": bool(self.open_ids),
        }
        kinds = [k for k in MIX if available[k]]
        kind = rng.choices(kinds, weights=[MIX[k] for k in kinds])[0]
        if kind == "policyholder":
            return self._new_policyholder(now_s)
        if kind == "claim":
            return self._file_claim(now_s)
        if kind == "advance":
            return self._advance(now_s)
        if kind == "customer_update":
            return self._update_customer(now_s)
        claim = self.claims[self.open_ids[rng.randrange(len(self.open_ids))]]
        if kind == "reassign" and claim.status in ("assessing", "approved") and claim.adjuster_ids:
            return self._reassign(now_s, claim)
        return self._correct(now_s, claim)

    # -- actions ---------------------------------------------------------------------------------------------
    def _new_policyholder(self, now_s: float) -> NewPolicyholder:
        rng, at = self.rng, self._at(now_s)
        today = at.date()
        customer = ent.generate_customer(rng, seq=self.bases.customer + self.n_customers, today=today)
        policy = ent.generate_policy(rng, customer, seq=self.bases.policy + self.n_policies, today=today)
        self.n_customers += 1
        self.n_policies += 1
        vehicles = []
        for _ in range(rng.choices((1, 2, 3), weights=(0.75, 0.2, 0.05))[0]):
            device = self.free_devices.pop() if self.free_devices and rng.random() < 0.6 else None
            vehicles.append(ent.generate_vehicle(rng, policy, seq=self.bases.vehicle + self.n_vehicles,
                                                 today=today, country=customer.country, device_id=device))
            self.n_vehicles += 1
        drivers = [ent.generate_driver(rng, policy, today=today, customer=customer, country=customer.country)]
        for _ in range(rng.choices((0, 1, 2), weights=(0.55, 0.35, 0.1))[0]):
            drivers.append(ent.generate_driver(rng, policy, today=today, customer=None, country=customer.country))
        holder = _Holder(customer, policy, tuple(vehicles), tuple(drivers))
        self.holders.append(holder)
        for v in vehicles:
            if v.telematics_device_id:
                self.by_device[v.telematics_device_id] = (holder, v)
        return NewPolicyholder(at, customer, policy, tuple(vehicles), tuple(drivers))

    def _file_claim(self, now_s: float, crash: CrashEvent | None = None) -> FileClaim:
        rng, at = self.rng, self._at(now_s)
        if crash is not None:
            holder, vehicle = self.by_device[crash.device_id]
            loss_type = "collision"
        else:
            if self.by_device and rng.random() < 0.4:
                holder, vehicle = self.by_device[rng.choice(sorted(self.by_device))]
            else:
                holder = self.holders[rng.randrange(len(self.holders))]
                vehicle = rng.choice(holder.vehicles)
            loss_type = rng.choices(ent.LOSS_TYPES, weights=ent.LOSS_TYPE_WEIGHTS)[0]
        policy, customer = holder.policy, holder.customer
        driver = None if loss_type in ("theft", "vandalism", "weather") and rng.random() < 0.7 \
            else rng.choice(holder.drivers)

        # Where and when: from the vehicle's trace when it has one, else somewhere near home in the last week.
        inception = datetime.combine(policy.inception_date, datetime.min.time(), tzinfo=timezone.utc)
        point = None
        if crash is not None:
            point = TracePoint(crash.device_id, crash.ts_ms, crash.lat, crash.lon, crash.speed_before_mps)
        elif vehicle.telematics_device_id and self.trace is not None:
            point = self.trace.recent_point(vehicle.telematics_device_id, rng)
        inconsistent = False
        if point is not None:
            loss_time = datetime.fromtimestamp(point.ts_ms / 1000, tz=timezone.utc)
            lat, lon = point.lat, point.lon
            if rng.random() < self.inconsistent_probability:
                inconsistent = True
                if rng.random() < 0.5:
                    loss_time -= timedelta(minutes=rng.uniform(45, 48 * 60))
                else:
                    lat, lon = destination(lat, lon, rng.uniform(0, 360), rng.uniform(5_000, 80_000))
        else:
            _, city_lat, city_lon = ent.city_of(customer.country, rng)
            lat, lon = destination(city_lat, city_lon, rng.uniform(0, 360), rng.uniform(0, 12_000))
            window = max(60.0, min(7 * 86_400.0, (at - inception).total_seconds()))
            loss_time = at - timedelta(seconds=rng.uniform(600, max(601.0, window)))
        loss_time = loss_time.replace(microsecond=(loss_time.microsecond // 1000) * 1000)
        local = loss_time.astimezone(ZoneInfo(_ZONES[_country_at(lat, lon)])).replace(tzinfo=None)

        amount = ent.claimed_amount(rng, loss_type)
        if crash is not None:
            amount = max(amount, ent.money(1_500 + crash.peak_g * 1_200))
        status = "draft" if crash is None and rng.random() < 0.15 else "fnol"
        third_party = loss_type == "collision" and rng.random() < 0.45
        injuries = rng.choices((0, 1, 2), weights=(0.9, 0.08, 0.02))[0] if loss_type == "collision" else 0
        tags = []
        if loss_type == "glass":
            tags.append("fast_track")
        if third_party:
            tags.append("third_party_fault" if rng.random() < 0.5 else "needs_inspection")
        details = {
            "channel": rng.choice(_CHANNELS),
            "weather": rng.choice(_WEATHER),
            "police_report": loss_type in ("theft", "vandalism") or rng.random() < 0.2,
            "witnesses": rng.choices((0, 1, 2, 3), weights=(0.6, 0.25, 0.1, 0.05))[0],
        }
        if vehicle.telematics_device_id:
            details["telematics_device_id"] = vehicle.telematics_device_id
        seq = self.bases.claim + self.n_claims
        self.n_claims += 1
        claim = ent.Claim(
            claim_id=ent.new_uuid(rng),
            claim_number=ent.claim_number(at.year, seq),
            policy_id=policy.policy_id,
            vehicle_id=vehicle.vehicle_id,
            driver_id=driver.driver_id if driver else None,
            status=status,
            loss_time=loss_time,
            loss_local_time=None if rng.random() < 0.1 else local,
            loss_lat=round(lat, 6),
            loss_lon=round(lon, 6),
            loss_type=loss_type,
            description=ent.claim_description(rng, loss_type),
            reported_at=at,
            claimed_amount=amount,
            reserve_amount=ent.money(0),
            sla_due_at=at + timedelta(days=5 if loss_type == "glass" else 10),
            third_party_involved=third_party,
            injury_count=injuries,
            tags=tuple(tags),
            details=details,
        )
        progress = ClaimProgress(claim.claim_id, claim.claim_number, status, loss_type, amount,
                                 policy.excess_amount, third_party, injuries)
        self.claims[claim.claim_id] = progress
        self._add_open(claim.claim_id)
        self._schedule(progress, now_s)
        return FileClaim(at, claim, vehicle, policy, from_trace=point is not None,
                         inconsistent_with_trace=inconsistent)

    def _advance(self, now_s: float) -> Action:
        rng, at = self.rng, self._at(now_s)
        _, _, claim_id = heapq.heappop(self._due)
        claim = self.claims[claim_id]
        current = claim.status
        if current == "draft" and rng.random() < self.timing.draft_cancel_probability:
            claim.deleted = True
            self._remove_open(claim_id)
            del self.claims[claim_id]
            return DeleteDraft(at, claim.claim_id, claim.claim_number)  # type: ignore[arg-type]
        if current == "approved" and claim.payments_left:
            payment = claim.payments_left.pop(0)
            self._schedule(claim, now_s)
            seq = self.bases.payment + self.n_payments
            self.n_payments += 1
            return AddPayment(at, ent.new_uuid(rng), claim.claim_id, claim.claim_number,  # type: ignore[arg-type]
                              payment.amount, payment.payee, payment.method,
                              ent.payment_reference(at.year, seq), at.date() + timedelta(days=rng.randint(0, 3)))
        reserve = settled = None
        assign: tuple[AdjusterAssignment, ...] = ()
        release = False
        if current == "draft":
            new = "fnol"
        elif current == "fnol":
            new = "assessing"
            reserve = reserve_for(claim, rng)
            lead = rng.choice(self.adjuster_ids)
            assign = (AdjusterAssignment(lead, "lead"),)
            if claim.loss_type == "collision" and claim.claimed_amount > Decimal(5000):
                assign += (AdjusterAssignment(rng.choice(self.adjuster_ids), "field"),)
            claim.adjuster_ids = [a.adjuster_id for a in assign]
        elif current == "assessing":
            new, settled = decide_assessment(claim, rng, self.timing)
            claim.settled_amount = settled
            if new == "approved":
                claim.payments_left = plan_payments(claim, settled, rng)
            else:
                reserve = ent.money(0)
        elif current == "approved":
            new = "paid"
            reserve = ent.money(0)
        else:  # denied, paid
            new = "closed"
            release = True
        check_transition(current, new)
        claim.status = new
        if new == "closed":
            self._remove_open(claim_id)
            del self.claims[claim_id]
        else:
            self._schedule(claim, now_s)
        return TransitionClaim(at, claim.claim_id, claim.claim_number, current, new,  # type: ignore[arg-type]
                               reserve_amount=reserve, settled_amount=settled, assign=assign,
                               release_adjusters=release)

    def _reassign(self, now_s: float, claim: ClaimProgress) -> ReassignAdjuster:
        adjuster = self.rng.choice(self.adjuster_ids)
        claim.adjuster_ids = [adjuster]
        return ReassignAdjuster(self._at(now_s), claim.claim_id, adjuster, "lead")  # type: ignore[arg-type]

    def _correct(self, now_s: float, claim: ClaimProgress) -> CorrectClaim:
        rng, at = self.rng, self._at(now_s)
        what = rng.choices(("description", "amount", "details", "tags"), weights=(0.3, 0.25, 0.3, 0.15))[0]
        if what == "amount" and claim.status in ("draft", "fnol", "assessing"):
            new_amount = ent.money(float(claim.claimed_amount) * rng.uniform(0.7, 1.4))
            claim.claimed_amount = new_amount
            return CorrectClaim(at, claim.claim_id, claimed_amount=new_amount)  # type: ignore[arg-type]
        if what == "description":
            extra = rng.choice(("Second vehicle left the scene.", "Damage larger than first reported.",
                                "Photos sent by e-mail.", "Customer corrected the street name.",
                                "Insurer called back: no injuries."))
            return CorrectClaim(at, claim.claim_id,  # type: ignore[arg-type]
                                description=f"{ent.claim_description(rng, claim.loss_type)}. {extra}")
        if what == "tags":
            tags = tuple(sorted(rng.sample(ent.CLAIM_TAGS, rng.randint(0, 2))))
            return CorrectClaim(at, claim.claim_id, tags=tags)  # type: ignore[arg-type]
        patch = rng.choice((
            {"repair_shop": rng.choice(_REPAIRERS)},
            {"police_report_number": f"PR-{rng.randint(10_000, 99_999)}"},
            {"witnesses": rng.randint(0, 3)},
            {"notes": rng.choice(("awaiting estimate", "customer unreachable", "ok to proceed"))},
        ))
        return CorrectClaim(at, claim.claim_id, details_patch=patch)  # type: ignore[arg-type]

    def _update_customer(self, now_s: float) -> UpdateCustomer:
        rng, at = self.rng, self._at(now_s)
        holder = self.holders[rng.randrange(len(self.holders))]
        customer = holder.customer
        what = rng.choice(("email", "phone", "address", "marketing"))
        if what == "email":
            local = ent.ascii_local_part(customer.full_name.replace(" ", "."))
            return UpdateCustomer(at, customer.customer_id, email=f"{local}{rng.randint(1, 99)}@mail.example")
        if what == "phone":
            country = next(c for c in ent.COUNTRIES if c.code == customer.country)
            return UpdateCustomer(at, customer.customer_id, phone=ent.phone_number(rng, country))
        if what == "address":
            country = next(c for c in ent.COUNTRIES if c.code == customer.country)
            city, _, _, postcode = rng.choice(country.cities)
            address = {"street": f"{rng.choice(country.streets)} {rng.randint(1, 250)}",
                       "postcode": f"{postcode}{rng.randint(0, 10 ** (5 - len(postcode)) - 1):0{5 - len(postcode)}d}",
                       "city": city, "country": customer.country}
            holder.customer = replace(customer, address=address)
            return UpdateCustomer(at, customer.customer_id, address=address)
        holder.customer = replace(customer, marketing_opt_in=not customer.marketing_opt_in)
        return UpdateCustomer(at, customer.customer_id, marketing_opt_in=not customer.marketing_opt_in)
