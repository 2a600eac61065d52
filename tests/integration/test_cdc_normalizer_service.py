"""cdc_normalizer as deployed: PostgreSQL -> Debezium -> broker -> normalizer service -> claims.cdc.<table>.v1."""

from __future__ import annotations

import json
import os
import signal
from typing import Any, Callable, Iterator

import psycopg
import pytest
from confluent_kafka import Producer

from claims_shared.contracts.cdc import DEAD_LETTER_TOPIC, normalized_topic
from claims_shared.contracts.cdc_avro import decode_change
from claims_shared.settings import PlatformSettings
from claimsctl.stack.embedded import EmbeddedStack
from services.cdc_normalizer.pii import PiiTokenizer
from tests.conftest import claimsctl
from tests.integration.cdc_helpers import execute, insert_claim
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(stack_settings: PlatformSettings) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(stack_settings)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def changes(table: str) -> Callable[[Any], dict[str, Any]]:
    return lambda msg: decode_change(table, msg.value())


def test_changes_arrive_typed_keyed_and_with_pii_tokenized(stack: EmbeddedStack) -> None:
    s = stack.settings
    claim = insert_claim(s, amount="1234.50")
    execute(s, "UPDATE claims SET status = 'assessing' WHERE claim_id = %s", (claim,))
    mine = lambda rs: [r for r in rs if r["key"].get("claim_id") == claim]  # noqa: E731
    records = mine(read_topic(s, normalized_topic("claims"), decode=changes("claims"),
                              until=lambda rs: len(mine(rs)) >= 2))
    assert [r["op"] for r in records] == ["c", "u"]
    created, updated = records
    assert created["row"]["claimed_amount"] == "1234.50"
    assert created["row"]["loss_time"] == "2026-11-20T08:15:00Z"
    assert created["row"]["details"] == {"weather": "rain"} and created["row"]["tags"] == ["urgent"]
    assert updated["row"]["status"] == "assessing" and updated["lsn"] > created["lsn"]
    assert created["event_id"] != updated["event_id"]

    with psycopg.connect(s.pg_dsn) as conn:
        customer_id, email, national_id = conn.execute(
            "SELECT c.customer_id, c.email, c.national_id FROM claims k JOIN policies p USING (policy_id) "
            "JOIN customers c USING (customer_id) WHERE k.claim_id = %s", (claim,)).fetchone()
    customers = read_topic(s, normalized_topic("customers"), decode=changes("customers"),
                           until=lambda rs: any(r["key"]["customer_id"] == str(customer_id) for r in rs))
    row = next(r for r in customers if r["key"]["customer_id"] == str(customer_id))["row"]
    tokenizer = PiiTokenizer.from_settings(s)
    # Clear PII never leaves the normalizer; the token is the keyed hash, so joins on it still work.
    assert row["email"] == tokenizer.token(email) != email
    assert row["national_id"] == tokenizer.token(national_id)
    assert email not in json.dumps(customers)


def test_bad_input_is_dead_lettered_with_reason_and_processing_continues(stack: EmbeddedStack) -> None:
    s = stack.settings
    raw_topic = f"{s.topic_prefix}.public.claims"
    poison = {b"not json at all": "MalformedMessage", b"\xff\xfe\x00 invalid utf-8": "MalformedMessage",
              b'{"payload": {"op": "c", "after": 42}}': None}
    producer = Producer({"bootstrap.servers": s.kafka_bootstrap})
    for value in poison:
        producer.produce(raw_topic, value, b'{"payload": {"claim_id": "x"}}')
    producer.flush(10)
    claim = insert_claim(s)  # a good change after the poison

    dead = read_topic(s, DEAD_LETTER_TOPIC, decode=lambda m: json.loads(m.value()),
                      until=lambda ds: sum(d["source_topic"] == raw_topic for d in ds) >= len(poison))
    import base64

    by_payload = {base64.b64decode(d["original_value_b64"]): d for d in dead}
    for value, error_class in poison.items():
        letter = by_payload[value]
        assert letter["reason"] and letter["source_offset"] >= 0
        if error_class:
            assert letter["error_class"] == error_class
    read_topic(s, normalized_topic("claims"), decode=changes("claims"),
               until=lambda rs: any(r["key"].get("claim_id") == claim for r in rs))


def test_kill_during_a_burst_loses_nothing(stack: EmbeddedStack) -> None:
    s = stack.settings
    claim = insert_claim(s)
    service = next(c for c in stack.components if c.name == "cdc-normalizer")
    updates = 400
    with psycopg.connect(s.pg_dsn, autocommit=True) as conn:
        for i in range(updates):
            conn.execute("UPDATE claims SET reserve_amount = %s WHERE claim_id = %s", (i, claim))
            if i == updates // 3:
                os.kill(service.status().pid, signal.SIGKILL)
    service.impl.proc.stop()  # clears the stale pidfile
    service.start()
    expected_versions = set(range(1, updates + 2))  # row_version 1 (insert) .. updates + 1

    def versions(rs: list[dict]) -> set[int]:
        return {r["row"]["row_version"] for r in rs if r["key"].get("claim_id") == claim and r["row"]}

    records = read_topic(s, normalized_topic("claims"), decode=changes("claims"),
                         until=lambda rs: versions(rs) >= expected_versions, timeout_s=120)
    mine = [r for r in records if r["key"].get("claim_id") == claim]
    assert versions(mine) == expected_versions
    # Redelivered records are recognisable: one event id, one content.
    by_id: dict[str, str] = {}
    for r in mine:
        assert by_id.setdefault(r["event_id"], json.dumps(r, sort_keys=True)) == json.dumps(r, sort_keys=True)
    assert len(by_id) == updates + 1


def test_added_column_flows_through_without_restart(stack: EmbeddedStack) -> None:
    s = stack.settings
    claim = insert_claim(s)
    execute(s, "ALTER TABLE claims ADD COLUMN IF NOT EXISTS repair_shop text")
    execute(s, "UPDATE claims SET repair_shop = 'Garage Dupont' WHERE claim_id = %s", (claim,))
    records = read_topic(s, normalized_topic("claims"), decode=changes("claims"),
                         until=lambda rs: any(r["key"].get("claim_id") == claim and r["op"] == "u" for r in rs))
    update = next(r for r in records if r["key"].get("claim_id") == claim and r["op"] == "u")
    # Not in contract v1: it travels in the row's extra_columns, which decode_change merges back into the row.
    assert update["row"]["repair_shop"] == "Garage Dupont"
    assert update["row"]["claim_id"] == claim


def test_replay_cli_is_byte_identical_and_matches_the_service(stack: EmbeddedStack, tmp_path) -> None:  # noqa: ANN001
    s = stack.settings
    claim = insert_claim(s)
    raw_topic = f"{s.topic_prefix}.public.claims"
    raw = read_topic(s, raw_topic, decode=lambda m: m,
                     until=lambda ms: any(claim.encode() in (m.key() or b"") for m in ms))
    lines = [json.dumps({"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                         "key": json.loads(m.key()) if m.key() else None,
                         "value": json.loads(m.value())}) for m in raw if m.value() and m.value()[:1] == b"{"]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    outputs = []
    for name in ("a", "b"):
        result = claimsctl(s, "normalize", "--input", str(source), "--output", str(tmp_path / f"{name}.jsonl"))
        assert result.returncode == 0, result.stderr
        outputs.append((tmp_path / f"{name}.jsonl").read_bytes())
    assert outputs[0] == outputs[1]
    replayed = {r["event_id"] for r in map(json.loads, outputs[0].splitlines()) if r.get("op")}
    published = {r["event_id"] for r in read_topic(s, normalized_topic("claims"), decode=changes("claims"),
                                                   until=lambda rs: any(r["key"].get("claim_id") == claim for r in rs))}
    assert replayed and replayed <= published
