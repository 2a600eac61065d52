import random
from datetime import date

import pytest

from claimsctl.simulator import entities as ent


def test_vin_check_digit_matches_known_vin():
    # Worked example from the NHTSA/FMVSS 565 documentation.
    assert ent.vin_check_digit("1M8GDM9AXKP042788") == "X"
    assert ent.is_valid_vin("1M8GDM9AXKP042788")
    assert not ent.is_valid_vin("1M8GDM9A1KP042788")


def test_generated_vins_have_valid_check_digit_and_never_repeat():
    rng = random.Random(1)
    vins = [ent.generate_vin(rng, "WVW", 2020, seq) for seq in range(5000)]
    assert all(ent.is_valid_vin(v) for v in vins)
    assert all(not set(v) & set("IOQ") for v in vins)
    assert len(set(vins)) == len(vins)


def test_vin_with_illegal_letter_is_invalid():
    assert not ent.is_valid_vin("WVWZZZ1KZ6W00000I")


def test_scramble_is_a_bijection():
    assert sorted(ent.scramble(i, 10**4) for i in range(10**4)) == list(range(10**4))
    with pytest.raises(ValueError):
        ent.scramble(10**4, 10**4)


def test_business_numbers_have_the_documented_format():
    assert ent.claim_number(2026, 4567) == "CLM-2026-0004567"
    assert ent.policy_number(2026, 1234) == "POL-2026-0001234"


def test_same_seed_gives_same_customer_and_unique_national_ids():
    a = ent.generate_customer(random.Random(3), seq=7, today=date(2026, 3, 1))
    b = ent.generate_customer(random.Random(3), seq=7, today=date(2026, 3, 1))
    assert a == b
    ids = {ent.generate_customer(random.Random(i), seq=i, today=date(2026, 3, 1)).national_id for i in range(2000)}
    assert len(ids) == 2000
