"""The lakehouse on the real embedded stack: PostgreSQL -> Debezium -> normalizer -> broker -> delta_compactor (pysail,
Delta on the embedded S3 store), read back with delta-rs; `claimsctl compact | maintain | reconcile`.

delta-rs runs in child processes here (`read_table`): it was seen to abort at interpreter exit after its work
(LOCAL-STACK.md), which must not become pytest's exit status.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from claims_shared.contracts.cdc_avro import key_fields
from claims_shared.contracts.topics import CDC_TABLES, LAKE_DEAD_LETTER
from claims_shared.settings import PROJECT_ROOT, PlatformSettings
from claimsctl.stack.embedded import EmbeddedStack
from services.delta_compactor.append_tables import APPEND_TABLES, AppendTable, table_schema
from services.delta_compactor.lake_schema import LakeLayout
from tests.conftest import claimsctl
from tests.integration.cdc_helpers import execute
from tests.lake_records import BUILDERS, SCHEMAS, encoded, headers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(stack_settings: PlatformSettings) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(stack_settings)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def read_table(settings: PlatformSettings, uri: str, *, version: int | None = None,
               columns: list[str] | None = None) -> dict[str, Any]:
    """{"version": n, "rows": [...]} of a Delta table, read with delta-rs in a child process."""
    code = textwrap.dedent(f"""
        import json, os, sys
        from deltalake import DeltaTable
        from claims_shared.settings import PlatformSettings
        from claimsctl.lake import storage_options
        s = PlatformSettings()
        uri = {uri!r}
        dt = DeltaTable(uri, storage_options=storage_options(s, uri), version={version!r})
        rows = dt.to_pyarrow_table(columns={columns!r}).to_pylist()
        sys.stdout.write(json.dumps({{"version": dt.version(), "rows": rows}}, default=str))
        sys.stdout.flush()
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env={**os.environ, **settings.as_env()},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def query(settings: PlatformSettings, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(settings.pg_dsn) as conn:
        return list(conn.execute(sql))


def compactor(stack: EmbeddedStack):  # noqa: ANN201
    return next(c for c in stack.components if c.name == "delta-compactor")


def compactor_diagnosis(stack: EmbeddedStack) -> str:
    component = compactor(stack)
    log = component.impl.proc.logfile
    tail = log.read_text(errors="replace").splitlines()[-30:] if log.exists() else []
    return f"status: {component.impl.job_status()}\nlog tail:\n" + "\n".join(tail)


def simulate(settings: PlatformSettings, seconds: float, seed: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "claimsctl.cli", "simulate", "--duration", str(seconds), "--seed", str(seed),
         "--no-telematics", "--no-files", "--rate", "25"],
        cwd=PROJECT_ROOT, env={**os.environ, **settings.as_env()}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)


def reconcile(settings: PlatformSettings, wait_s: float) -> subprocess.CompletedProcess[str]:
    return claimsctl(settings, "reconcile", "--wait", str(wait_s), "--json", timeout=wait_s + 120)


def assert_no_duplicate_history_events(settings: PlatformSettings) -> int:
    layout = LakeLayout(settings.lake_root_uri)
    total = 0
    for table in CDC_TABLES:
        rows = read_table(settings, layout.history(table), columns=["_event_id"])["rows"]
        dupes = [e for e, n in Counter(r["_event_id"] for r in rows).items() if n > 1]
        assert not dupes, f"history/{table} has duplicate event ids: {dupes[:5]}"
        total += len(rows)
    return total


def history_gaps(settings: PlatformSettings) -> list[str]:
    """Where the history (SCD2) tables do not end in the current (SCD1) tables' rows: per key, the history's one
    current version must be the change the current table holds (same event id). Reconcile checks only the current
    tables; this proves the history got every change too (after a kill -9 between a table's two MERGEs, say)."""
    layout = LakeLayout(settings.lake_root_uri)
    gaps = []
    for table in CDC_TABLES:
        keys = [f["name"] for f in key_fields(table)]
        current = read_table(settings, layout.current(table), columns=[*keys, "_event_id", "_op"])["rows"]
        history = read_table(settings, layout.history(table), columns=[*keys, "_event_id", "_is_current"])["rows"]
        heads = Counter(tuple(r[k] for k in keys) for r in history if r["_is_current"])
        gaps += [f"{table} {k}: {n} current versions" for k, n in heads.items() if n > 1]
        head_ids = {tuple(r[k] for k in keys): r["_event_id"] for r in history if r["_is_current"]}
        for r in current:
            key = tuple(r[k] for k in keys)
            # A truncate's tombstone carries the truncate's id, its history marker a per-key id (planning.py).
            if r["_op"] != "t" and head_ids.get(key) != r["_event_id"]:
                gaps.append(f"{table} {key}: current {r['_event_id']}, history {head_ids.get(key)}")
    return gaps


def assert_history_follows_current(settings: PlatformSettings, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s  # the table's history MERGE may still be in flight
    while (gaps := history_gaps(settings)) and time.monotonic() < deadline:
        time.sleep(2)
    assert not gaps, f"{len(gaps)} history gaps, e.g. {gaps[:5]}"


# ------------------------------------------------------------------------------------------------ tests


def test_status_lists_spark_and_the_compactor(stack: EmbeddedStack) -> None:
    out = claimsctl(stack.settings, "status", "--json")
    assert out.returncode == 0, out.stderr
    components = {c["name"]: c for c in json.loads(out.stdout)["components"]}
    assert components["spark"]["running"] and components["spark"]["port"] == stack.settings.spark_port
    assert components["delta-compactor"]["running"]
    names = [c["name"] for c in json.loads(out.stdout)["components"]]
    assert names.index("telematics-scorer") < names.index("spark") < names.index("delta-compactor")


def test_simulated_traffic_reaches_the_current_tables_and_reconciles(stack: EmbeddedStack) -> None:
    sim = simulate(stack.settings, 20, seed=21)
    assert sim.wait(120) == 0, sim.stderr.read()
    out = reconcile(stack.settings, 120)
    assert out.returncode == 0, f"{out.stdout[-3000:]}\n{compactor_diagnosis(stack)}"
    diffs = json.loads(out.stdout)
    assert all(d["equal"] for d in diffs)
    assert sum(d["pg_rows"] for d in diffs) > 100
    assert_history_follows_current(stack.settings)


def test_time_travel_returns_the_earlier_state_of_an_updated_claim(stack: EmbeddedStack) -> None:
    settings = stack.settings
    uri = LakeLayout(settings.lake_root_uri).current("claims")
    claim_id = query(settings, "SELECT claim_id::text FROM claims ORDER BY created_at LIMIT 1")[0][0]
    marker = f"time-travel-{uuid.uuid4().hex[:8]}"
    before = read_table(settings, uri)
    old = next(r for r in before["rows"] if r["claim_id"] == claim_id)
    execute(settings, "UPDATE claims SET description = %s WHERE claim_id = %s", (marker, claim_id))
    deadline = time.monotonic() + 60
    while True:
        now = read_table(settings, uri)
        row = next(r for r in now["rows"] if r["claim_id"] == claim_id)
        if row["description"] == marker:
            break
        assert time.monotonic() < deadline, compactor_diagnosis(stack)
        time.sleep(0.5)
    assert now["version"] > before["version"]
    then = read_table(settings, uri, version=before["version"])
    assert next(r for r in then["rows"] if r["claim_id"] == claim_id)["description"] == old["description"] != marker


def test_append_tables_keep_one_row_per_key_and_dead_letter_bad_records(stack: EmbeddedStack) -> None:
    settings = stack.settings
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    bad_key = f"bad-{uuid.uuid4().hex[:8]}".encode()
    for _ in range(2):  # the same records twice: a replay must add nothing
        for table in APPEND_TABLES:
            schema = SCHEMAS[table.name]
            for n in range(1, 4):
                producer.produce(table.topic, encoded(schema, BUILDERS[table.name](n)), b"k", headers=headers(schema))
    producer.produce(APPEND_TABLES[0].topic, b"\x02not avro", bad_key)
    assert producer.flush(30) == 0
    layout = LakeLayout(settings.lake_root_uri)
    deadline = time.monotonic() + 90
    # The stack's own services write to these topics too (object_ingestor raises alerts on the test documents,
    # the Lambda publishes documents of the simulated files): look at this test's keys only.
    ours = {t.name: {tuple(BUILDERS[t.name](n)[k] for k in t.key) for n in range(1, 4)} for t in APPEND_TABLES}

    def our_rows(table: AppendTable) -> list[dict]:
        if not _exists(settings, layout.append(table.name)):
            return []
        rows = read_table(settings, layout.append(table.name))["rows"]
        return [r for r in rows if tuple(r[k] for k in table.key) in ours[table.name]]

    for table in APPEND_TABLES:
        while len(our_rows(table)) < 3:
            assert time.monotonic() < deadline, f"{table.name}: {our_rows(table)}\n{compactor_diagnosis(stack)}"
            time.sleep(0.5)
        time.sleep(2)  # the duplicates were produced before: give them the chance to be (wrongly) written
        rows = our_rows(table)
        keys = Counter(tuple(r[k] for k in table.key) for r in rows)
        assert len(rows) == 3 and set(keys.values()) == {1}, rows
        assert list(rows[0]) == [f.name for f in table_schema(table).fields]
        assert all(r["_event_date"] and r["_kafka_topic"] == table.topic for r in rows)
    documents = our_rows(next(t for t in APPEND_TABLES if t.name == "documents"))
    assert {r["fields_claim_number"] for r in documents} == {"CLM-2026-0000001"}
    assert json.loads(documents[0]["fields_amounts_json"]) == [1234.5, 10.0]
    assert documents[0]["exif_gps_lat"] == 48.85
    dead = _read_dead_letters(settings, until=lambda items: any(d["key"] == bad_key for d in items))
    letter = next(d for d in dead if d["key"] == bad_key)
    assert letter["value"]["source_topic"] == APPEND_TABLES[0].topic and "not a" in letter["value"]["reason"]


def _exists(settings: PlatformSettings, uri: str) -> bool:
    code = ("import os,sys; from deltalake import DeltaTable; from claims_shared.settings import PlatformSettings; "
            "from claimsctl.lake import storage_options; s=PlatformSettings(); "
            f"sys.stdout.write(str(DeltaTable.is_deltatable({uri!r}, storage_options=storage_options(s, {uri!r})))); "
            "sys.stdout.flush(); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env={**os.environ, **settings.as_env()},
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip() == "True"


def _read_dead_letters(settings: PlatformSettings, until, timeout_s: float = 60) -> list[dict]:  # noqa: ANN001
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}"})
    items: list[dict] = []
    try:
        consumer.assign([TopicPartition(LAKE_DEAD_LETTER, 0, 0)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for m in consumer.consume(100, timeout=0.5):
                if m.error() is None and m.value():
                    items.append({"key": m.key(), "value": json.loads(m.value())})
            if until(items):
                return items
        raise AssertionError(f"dead letters: {items[-3:]}")
    finally:
        consumer.close()


def test_kill_9_mid_run_and_restart_loses_and_doubles_nothing(stack: EmbeddedStack) -> None:
    settings = stack.settings
    component = compactor(stack)
    sim = simulate(settings, 30, seed=22)
    time.sleep(10)
    pid = component.impl.proc.pid()
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)  # mid-run: batches are in flight while the simulator writes
    deadline = time.monotonic() + 10
    while component.impl.proc.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3)
    component.start()
    assert sim.wait(180) == 0, sim.stderr.read()
    out = reconcile(settings, 150)
    assert out.returncode == 0, f"{out.stdout[-3000:]}\n{compactor_diagnosis(stack)}"
    assert_no_duplicate_history_events(settings)
    assert_history_follows_current(settings)


def test_compact_once_from_beginning_adds_nothing(stack: EmbeddedStack) -> None:
    settings = stack.settings
    before = assert_no_duplicate_history_events(settings)
    out = claimsctl(settings, "compact", "--once", "--from-beginning", timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "batches" in out.stdout
    assert assert_no_duplicate_history_events(settings) == before
    assert reconcile(settings, 60).returncode == 0


def test_maintain_compacts_vacuums_and_checkpoints_trino_readable(stack: EmbeddedStack) -> None:
    settings = stack.settings
    out = claimsctl(settings, "maintain", timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "current/claims" in out.stdout
    from claimsctl.lake.maintenance import _LogFiles

    layout = LakeLayout(settings.lake_root_uri)
    for uri in (layout.current("claims"), layout.history("claims"), layout.append("documents")):
        last = json.loads(_LogFiles(settings, uri).read("_last_checkpoint"))
        assert "parts" not in last and last["version"] >= 1
    # Still written to and still equal after maintenance.
    sim = simulate(settings, 8, seed=23)
    assert sim.wait(120) == 0, sim.stderr.read()
    assert reconcile(settings, 120).returncode == 0, compactor_diagnosis(stack)
    keys = [f["name"] for f in key_fields("claims")]
    rows = read_table(settings, layout.current("claims"), columns=keys)["rows"]
    assert len(rows) == len({r["claim_id"] for r in rows})
