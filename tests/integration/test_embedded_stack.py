"""The embedded stack on real components: PostgreSQL -> Debezium on Kafka Connect -> broker, plus S3 + queue.

Tests in this module share one stack and run in file order; the last one takes it down and up again.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from claims_shared.clients.aws import s3_client
from claims_shared.contracts.topics import raw_cdc_topic
from claims_shared.settings import PlatformSettings
from claimsctl.stack.embedded import EmbeddedStack
from claimsctl.stack.process import port_in_use
from tests.conftest import claimsctl
from tests.integration.cdc_helpers import claim_id_of, execute, insert_claim, read_events

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(stack_settings: PlatformSettings) -> Iterator[tuple[EmbeddedStack, str]]:
    """The stack, with one claim written before Connect's first start so that it arrives as a snapshot read."""
    stack = EmbeddedStack(stack_settings)
    names = [c.name for c in stack.components]
    connect_at = names.index("connect")
    try:
        for component in stack.components[:connect_at]:
            component.start()
        seeded_claim = insert_claim(stack_settings, amount="99.99")
        for component in stack.components[connect_at:]:
            component.start()
        yield stack, seeded_claim
    finally:
        stack.down()


def claims_topic(settings: PlatformSettings) -> str:
    return raw_cdc_topic(settings.topic_prefix, "claims")


def test_snapshot_insert_update_delete_arrive_in_order_with_images(stack: tuple[EmbeddedStack, str]) -> None:
    st, seeded = stack
    s = st.settings
    snapshot = read_events(s, claims_topic(s), match=lambda e: claim_id_of(e) == seeded, until=lambda ev: len(ev) >= 1)
    assert [e.op for e in snapshot] == ["r"]
    assert snapshot[0].decimal("after", "claimed_amount") == Decimal("99.99")

    claim = insert_claim(s, amount="1234.50")
    execute(s, "UPDATE claims SET status = 'assessing', reserve_amount = 800.25 WHERE claim_id = %s", (claim,))
    execute(s, "DELETE FROM claims WHERE claim_id = %s", (claim,))

    events = read_events(s, claims_topic(s), match=lambda e: claim_id_of(e) == claim,
                         until=lambda ev: len(ev) >= 3, settle_s=2)
    assert [e.op for e in events] == ["c", "u", "d"]
    create, update, delete = events
    assert create.before is None
    assert create.after["status"] == "fnol"
    assert create.decimal("after", "claimed_amount") == Decimal("1234.50")
    # claims has REPLICA IDENTITY FULL: the update carries the complete before image.
    assert update.before["status"] == "fnol" and update.after["status"] == "assessing"
    assert update.decimal("before", "reserve_amount") == Decimal("0.00")
    assert update.decimal("after", "reserve_amount") == Decimal("800.25")
    assert update.after["row_version"] == update.before["row_version"] + 1
    assert delete.after is None
    assert delete.before["claim_id"] == claim and delete.before["status"] == "assessing"
    assert create.offset < update.offset < delete.offset


def test_change_made_while_connect_is_down_arrives_once_without_resnapshot(stack: tuple[EmbeddedStack, str]) -> None:
    st, seeded = stack
    s = st.settings
    connect = st.connect
    assert connect.stop()
    execute(s, "UPDATE claims SET description = 'changed while connect was down' WHERE claim_id = %s", (seeded,))
    connect.start()

    def changed(events: list) -> bool:
        return any(e.op == "u" and e.after.get("description") == "changed while connect was down" for e in events)

    events = read_events(s, claims_topic(s), match=lambda e: claim_id_of(e) == seeded, until=changed, settle_s=5)
    updates = [e for e in events if e.op == "u" and e.after.get("description") == "changed while connect was down"]
    assert len(updates) == 1
    assert [e.op for e in events].count("r") == 1, "Connect re-snapshotted instead of resuming from its offsets"


def test_up_twice_is_harmless(stack: tuple[EmbeddedStack, str]) -> None:
    st, _ = stack
    before = {s.name: s.pid for s, _, _ in st.statuses()}
    result = claimsctl(st.settings, "up")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    after = {s.name: s.pid for s, _, _ in st.statuses()}
    assert before == after and all(after.values())


def test_status_reports_components_topics_and_lag(stack: tuple[EmbeddedStack, str]) -> None:
    st, _ = stack
    result = claimsctl(st.settings, "status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    components = {c["name"]: c for c in report["components"]}
    assert set(components) == {"objectstore", "queue", "s3-events", "postgres", "broker", "connect", "cdc-normalizer",
                                "telematics-scorer", "document-lambda", "object-ingestor", "spark",
                                "delta-compactor"}
    for c in components.values():
        assert c["running"] and c["pid"] and c["rss_kib"] > 0, c
    assert components["postgres"]["port"] == st.settings.pg_port
    topics = {t["topic"]: t["messages"] for t in report["topics"]}
    assert topics.get(claims_topic(st.settings), 0) > 0
    assert "consumer_groups" in report


def test_landing_upload_reaches_the_document_lambda_with_its_key_decoded(stack: tuple[EmbeddedStack, str]) -> None:
    """Upload -> relay notification (form-encoded key) -> queue -> Lambda -> document record naming the exact key."""
    from claims_shared.contracts.documents import DOCUMENTS_TOPIC, decode_document_record
    from tests.integration.kafka_helpers import read_topic

    st, _ = stack
    s = st.settings
    key = "incoming/2026/11/25/CLM-T/damage photo é+1.jpg"
    s3_client(s).put_object(Bucket=s.landing_bucket, Key=key, Body=b"\xff\xd8\xff\xe0 not really a jpeg")
    records = read_topic(s, DOCUMENTS_TOPIC, decode=lambda m: decode_document_record(m.value()),
                         until=lambda ds: any(d["source"]["key"] == key for d in ds), timeout_s=60)
    record = next(d for d in records if d["source"]["key"] == key)
    assert record["source"]["bucket"] == s.landing_bucket
    assert record["status"] == "quarantined"  # a JPEG header and nothing else


def test_data_survives_down_and_up_and_down_leaves_nothing(stack: tuple[EmbeddedStack, str]) -> None:
    st, seeded = stack
    s = st.settings
    s3_client(s).put_object(Bucket=s.landing_bucket, Key="incoming/keep-me.csv", Body=b"a,b\n1,2\n")
    pids = [status.pid for status, _, _ in st.statuses()]
    ports = [s.pg_port, int(s.kafka_bootstrap.rsplit(":", 1)[1]), int(s.s3_endpoint.rsplit(":", 1)[1]),
             int(s.sqs_endpoint.rsplit(":", 1)[1]), s.objectstore_master_port, s.objectstore_filer_port,
             s.spark_port]

    result = claimsctl(s, "down")
    assert result.returncode == 0, result.stderr
    # Connect shipped everything before stopping, so the slot is released without forcing a re-snapshot.
    assert "released cleanly" in result.stdout, result.stdout
    assert all(status.pid is None for status, _, _ in st.statuses())
    # Zombies of this test process (it started the components) do not count: they hold no resources.
    assert not [p for p in pids if p and _alive(p)], "a component process survived down"
    assert not [p for p in ports if port_in_use(p)], "a port is still bound after down"
    assert not _processes_mentioning(str(s.state_dir)), "a process still uses the state directory"
    # No replication slot left behind: look with PostgreSQL alone.
    st.postgres.start()
    try:
        assert st.postgres.replication_slots() == []
    finally:
        st.postgres.stop()

    result = claimsctl(s, "up")
    assert result.returncode == 0, result.stderr
    with psycopg.connect(s.pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM claims WHERE claim_id = %s", (seeded,)).fetchone()[0] == 1
    body = s3_client(s).get_object(Bucket=s.landing_bucket, Key="incoming/keep-me.csv")["Body"].read()
    assert body == b"a,b\n1,2\n"
    # The broker keeps its log in the object store: earlier change events are still there, and no
    # re-snapshot happened after up (Connect resumed from its offsets).
    events = read_events(s, claims_topic(s), match=lambda e: claim_id_of(e) == seeded,
                         until=lambda ev: len(ev) >= 2, settle_s=3)
    assert [e.op for e in events].count("r") == 1
    execute(s, "UPDATE claims SET description = 'after restart' WHERE claim_id = %s", (seeded,))
    read_events(s, claims_topic(s), match=lambda e: claim_id_of(e) == seeded,
                until=lambda ev: any(e.after and e.after.get("description") == "after restart" for e in ev))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _alive(int(entry.name)):
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
    return found
