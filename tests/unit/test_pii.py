"""PII leaves the normalizer tokenized (deterministic, keyed: joins still work) or masked; NULL stays NULL."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from claims_shared.contracts.cdc import ChangeRecord, SourcePosition
from claims_shared.settings import PlatformSettings
from services.cdc_normalizer.pii import DEFAULT_PII_POLICY, PiiPolicy, PiiPolicyError, PiiTokenizer, mask_value

KEY = b"test-pii-key"
SOURCE = SourcePosition(lsn=100, tx_id=7, ts_ms=1_772_359_200_000, snapshot=True, database="claims_db",
                        schema="public")


def _customer(**overrides: object) -> ChangeRecord:
    row = {
        "customer_id": "9e3f1c2a-0000-4000-8000-000000000001",
        "full_name": "Amélie Poulain",
        "date_of_birth": "1974-09-17",
        "email": "amelie@example.fr",
        "phone": "+33612345678",
        "national_id": "2740975123456",
        "address": {"city": "Paris"},
        "marketing_opt_in": False,
    }
    row.update(overrides)
    return ChangeRecord("customers", "r", {"customer_id": row["customer_id"]}, row, SOURCE)


def _driver(**overrides: object) -> ChangeRecord:
    row = {
        "driver_id": "d0000000-0000-4000-8000-000000000001",
        "full_name": "Amélie Poulain",
        "date_of_birth": "1974-09-17",
        "licence_number": "FR-75-123456",
        "licence_issued": "1993-01-04",
    }
    row.update(overrides)
    return ChangeRecord("drivers", "c", {"driver_id": row["driver_id"]}, row, SOURCE)


def test_token_follows_the_documented_formula() -> None:
    token = PiiTokenizer(KEY).token("Amélie Poulain")
    expected = hmac.new(KEY, "Amélie Poulain".encode(), hashlib.sha256).hexdigest()[:32]
    assert token == f"tok_{expected}"


def test_same_value_gives_the_same_token_across_tables() -> None:
    tokenizer = PiiTokenizer(KEY)
    customer = tokenizer.apply(_customer()).row
    driver = tokenizer.apply(_driver()).row
    assert customer["full_name"] == driver["full_name"] != "Amélie Poulain"
    assert customer["date_of_birth"] == driver["date_of_birth"]
    assert customer["full_name"].startswith("tok_") and len(customer["full_name"]) == 36


def test_every_configured_column_is_protected_and_others_untouched() -> None:
    row = PiiTokenizer(KEY).apply(_customer()).row
    for column in DEFAULT_PII_POLICY.for_table("customers"):
        assert row[column].startswith("tok_"), column
    assert row["address"] == {"city": "Paris"} and row["marketing_opt_in"] is False
    assert row["customer_id"] == "9e3f1c2a-0000-4000-8000-000000000001"


def test_different_key_gives_different_tokens() -> None:
    assert PiiTokenizer(KEY).token("2740975123456") != PiiTokenizer(b"another-key").token("2740975123456")


def test_different_values_give_different_tokens() -> None:
    tokenizer = PiiTokenizer(KEY)
    assert tokenizer.token("a@x.fr") != tokenizer.token("A@x.fr")


def test_null_stays_null() -> None:
    record = PiiTokenizer(KEY).apply(_customer(email=None, phone=None))
    assert record.row["email"] is None and record.row["phone"] is None
    assert PiiTokenizer(KEY).token(None) is None


def test_delete_and_truncate_without_row_pass_through() -> None:
    tokenizer = PiiTokenizer(KEY)
    delete = ChangeRecord("customers", "d", {"customer_id": "x"}, None, SOURCE)
    assert tokenizer.apply(delete) is delete
    truncate = ChangeRecord("customers", "t", {}, None, SOURCE)
    assert tokenizer.apply(truncate) is truncate


def test_table_without_pii_passes_through_unchanged() -> None:
    record = ChangeRecord("adjusters", "c", {"adjuster_id": 1}, {"adjuster_id": 1, "full_name": "Ana"}, SOURCE)
    assert PiiTokenizer(KEY).apply(record) is record


def test_key_columns_are_tokenized_too_when_configured() -> None:
    policy = DEFAULT_PII_POLICY.with_columns("customers", customer_id="token")
    record = PiiTokenizer(KEY, policy).apply(_customer())
    assert record.key["customer_id"] == record.row["customer_id"]
    assert record.key["customer_id"].startswith("tok_")


def test_columns_added_later_are_protected_when_configured() -> None:
    policy = DEFAULT_PII_POLICY.with_columns("customers", second_phone="mask")
    record = PiiTokenizer(KEY, policy).apply(_customer(second_phone="+33698765432", nickname="Mimi"))
    assert record.row["second_phone"] == "+33*******32"
    assert record.row["nickname"] == "Mimi"


def test_masking_keeps_the_first_three_and_last_two_characters() -> None:
    assert mask_value("+33612345678") == "+33*******78"
    assert mask_value("+33612") == "+33*12"
    assert mask_value("12345") == "*****"
    assert mask_value("") == ""
    policy = DEFAULT_PII_POLICY.with_columns("customers", phone="mask")
    assert PiiTokenizer(KEY, policy).apply(_customer()).row["phone"] == "+33*******78"


def test_non_string_values_are_tokenized_from_canonical_json() -> None:
    policy = PiiPolicy({"claims": {"loss_lat": "token"}})
    tokenizer = PiiTokenizer(KEY, policy)
    record = ChangeRecord("claims", "c", {"claim_id": "c1"}, {"claim_id": "c1", "loss_lat": 48.5}, SOURCE)
    assert tokenizer.apply(record).row["loss_lat"] == tokenizer.token("48.5")


def test_event_id_is_recomputed_from_the_protected_record() -> None:
    clear = _customer()
    protected = PiiTokenizer(KEY).apply(clear)
    assert protected.event_id != clear.event_id
    assert protected.event_id == PiiTokenizer(KEY).apply(_customer()).event_id  # replays stay identical


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(PiiPolicyError, match="token, mask|must be one of"):
        PiiPolicy({"customers": {"email": "hash"}})


def test_empty_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="CLAIMS_PII_KEY"):
        PiiTokenizer(b"")


def test_tokenizer_from_settings_uses_the_pii_key() -> None:
    settings = PlatformSettings(pii_key="from-settings")
    assert PiiTokenizer.from_settings(settings).token("x") == PiiTokenizer(b"from-settings").token("x")
