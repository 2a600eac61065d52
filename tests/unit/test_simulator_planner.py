from datetime import datetime, timezone

from claimsctl.simulator.actions import AddPayment, DeleteDraft, FileClaim, TransitionClaim
from claimsctl.simulator.lifecycle import TRANSITIONS, is_legal_transition
from claimsctl.simulator.planner import ClaimPlanner, SequenceBases, device_ids_for
from claimsctl.simulator.telematics import Fleet

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def plan(seed: int, n: int, bases: SequenceBases = SequenceBases(), vehicles: int = 20) -> list:
    devices = device_ids_for(bases, vehicles)
    fleet = Fleet(devices, seed=f"fleet/{seed}")
    planner = ClaimPlanner(seed=seed, start=START, bases=bases, adjuster_ids=[1, 2, 3], device_ids=devices,
                           trace=fleet)
    actions = []
    rate = 50
    for i in range(n):
        if i % rate == 0:
            fleet.step(int(START.timestamp() * 1000) + i * 1000 // rate)
        actions.append(planner.next_action(i / rate))
    return actions


def test_same_seed_gives_same_actions():
    assert plan(11, 1500) == plan(11, 1500)


def test_different_seed_gives_different_actions():
    assert plan(11, 200) != plan(12, 200)


def test_rerun_on_existing_data_uses_new_unique_keys():
    first = plan(5, 800)
    bases = SequenceBases(customer=500, policy=501, vehicle=700, device=20, claim=300, payment=200)
    second = plan(5, 800, bases)
    numbers = lambda actions: {a.claim.claim_number for a in actions if isinstance(a, FileClaim)}  # noqa: E731
    assert numbers(first).isdisjoint(numbers(second)) or max(
        int(n[-7:]) for n in numbers(first)) < 300
    ids = lambda actions: {a.claim.claim_id for a in actions if isinstance(a, FileClaim)}  # noqa: E731
    assert ids(first).isdisjoint(ids(second))


def test_lifecycle_only_makes_legal_transitions_and_pays_exactly_the_settlement():
    status, settled, paid = {}, {}, {}
    for a in plan(21, 6000):
        if isinstance(a, FileClaim):
            assert a.claim.status in ("draft", "fnol")
            status[a.claim.claim_id] = a.claim.status
        elif isinstance(a, TransitionClaim):
            assert status[a.claim_id] == a.from_status
            assert is_legal_transition(a.from_status, a.to_status), (a.from_status, a.to_status)
            if a.to_status == "paid":
                assert paid[a.claim_id] == settled[a.claim_id]
            if a.to_status == "approved":
                settled[a.claim_id] = a.settled_amount
            status[a.claim_id] = a.to_status
        elif isinstance(a, AddPayment):
            assert status[a.claim_id] == "approved"
            paid[a.claim_id] = paid.get(a.claim_id, 0) + a.amount
        elif isinstance(a, DeleteDraft):
            assert status.pop(a.claim_id) == "draft"
    assert "closed" in status.values() and "paid" in set(TRANSITIONS)


def test_claims_on_telematics_vehicles_take_loss_place_from_the_trace():
    actions = plan(8, 3000, vehicles=40)
    from_trace = [a for a in actions if isinstance(a, FileClaim) and a.from_trace]
    assert from_trace
    assert all(a.claim.loss_time <= a.claim.reported_at for a in from_trace)
    assert all(a.claim.details.get("telematics_device_id") for a in from_trace)
