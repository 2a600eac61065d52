"""delta_compactor's Spark writer against a real Spark Connect server (pysail, Delta on local paths).

No broker: the tests hand-build normalized change records (tests/cdc_changes.py), plan them with the pure planner
and apply the plan through `DeltaLakeWriter`, the code that runs against a Spark cluster in production.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from services.delta_compactor.lake_schema import LakeLayout, entity_columns
from claims_shared.contracts.cdc import canonical_json
from services.delta_compactor.planning import ConsumedChange, plan_batch
from services.delta_compactor.writer import DeltaLakeWriter
from tests.cdc_changes import TABLE, TOPIC, change, claim_id, claim_row, consumed

pytestmark = pytest.mark.integration

from tests.conftest import WRITER_TEST_SPARK_PORT

SAIL_PORT = WRITER_TEST_SPARK_PORT  # 26150 + CLAIMS_TEST_PORT_OFFSET


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """A pysail Spark Connect server in its own process (as a cluster would be), and a session on it."""
    if _port_open(SAIL_PORT):
        pytest.fail(f"port {SAIL_PORT} is taken; stop whatever listens there (CLAIMS_TEST_PORT_OFFSET shifts it)")
    workdir = tempfile.mkdtemp(prefix="pysail-")  # its cwd: a session catalog would put spark-warehouse/ there
    log = open(os.path.join(workdir, "server.log"), "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "pysail", "spark", "server", "--ip", "127.0.0.1", "--port", str(SAIL_PORT),
         "-C", workdir],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        deadline = time.monotonic() + 30
        while not _port_open(SAIL_PORT):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"pysail did not start (rc={server.poll()}): {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.1)
        session = SparkSession.builder.remote(f"sc://127.0.0.1:{SAIL_PORT}").getOrCreate()
        yield session
        session.stop()
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[LakeLayout]:
    yield LakeLayout(str(tmp_path / "lake"))
    shutil.rmtree(tmp_path / "lake", ignore_errors=True)


@pytest.fixture
def writer(spark: SparkSession, lake: LakeLayout) -> DeltaLakeWriter:
    return DeltaLakeWriter(spark, lake)


def apply(writer: DeltaLakeWriter, changes: list[dict], *, first_offset: int = 0, partition: int = 0):
    plan = plan_batch(consumed(changes, first_offset=first_offset, partition=partition))
    writer.apply(plan)
    return plan


def current(spark: SparkSession, lake: LakeLayout, *, live_only: bool = True, version: int | None = None) -> dict:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    df = reader.load(lake.current(TABLE))
    if live_only:
        df = df.where("NOT _deleted")
    return {r["claim_id"]: r.asDict() for r in df.collect()}


def history(spark: SparkSession, lake: LakeLayout, n: int) -> list[dict]:
    df = spark.read.format("delta").load(lake.history(TABLE)).where(f"claim_id = '{claim_id(n)}'")
    return [r.asDict() for r in df.orderBy("_source_pos").collect()]


def snapshot(spark: SparkSession, path: str) -> list[tuple]:
    """Whole table content, order-independent (for 'nothing changed' checks)."""
    rows = spark.read.format("delta").load(path).collect()
    return sorted((tuple(sorted((k, repr(v)) for k, v in r.asDict().items())) for r in rows))


def delta_versions(path: str) -> int:
    return len([f for f in os.listdir(os.path.join(path, "_delta_log")) if f.endswith(".json")])


# ------------------------------------------------------------------------------------------------ SCD1


def test_inserts_updates_and_deletes_reach_the_current_table(spark, lake, writer):
    apply(writer, [change("c", n, lsn=100 + n, row=claim_row(n)) for n in (1, 2, 3)])
    apply(writer, [
        change("u", 1, lsn=200, row=claim_row(1, status="assessing", reserve_amount="800.00")),
        change("d", 2, lsn=210),
    ], first_offset=3)
    rows = current(spark, lake)
    assert set(rows) == {claim_id(1), claim_id(3)}
    one = rows[claim_id(1)]
    assert one["status"] == "assessing" and one["reserve_amount"] == Decimal("800.00")
    assert one["claimed_amount"] == Decimal("1200.50")
    assert one["loss_local_time"].isoformat() == "2025-12-31T22:15:00"
    assert one["tags"] == ["motor", None]
    assert one["details"] == '{"notes":"' + "long text " * 5 + '","photos":3}'
    tombstone = current(spark, lake, live_only=False)[claim_id(2)]
    assert tombstone["_deleted"] and tombstone["_op"] == "d" and tombstone["status"] is None
    assert writer.read_offsets() == {("claims.cdc.claims.v1", 0): 5}


def test_toast_unchanged_column_keeps_the_stored_value(spark, lake, writer):
    apply(writer, [change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"}, description="first"))])
    apply(writer, [change("u", 1, lsn=200, row=claim_row(1, status="assessing", description="first"),
                                  unchanged=["details"])])
    row = current(spark, lake)[claim_id(1)]
    assert row["details"] == '{"v":"A"}' and row["status"] == "assessing" and row["description"] == "first"
    assert [h["details"] for h in history(spark, lake, 1)] == ['{"v":"A"}', '{"v":"A"}']


def test_toast_fill_from_the_batch_yields_to_a_newer_stored_row(spark, lake, writer):
    # Stored: details B at 200. A batch replays A at 100 and brings an update at 300 without details:
    # the in-batch donor (100) is older than the stored row, so B must stay.
    apply(writer, [change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"}))])
    apply(writer, [change("u", 1, lsn=200, row=claim_row(1, details={"v": "B"}))])
    apply(writer, [
        change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"})),
        change("u", 1, lsn=300, row=claim_row(1, status="approved"), unchanged=["details"]),
    ])
    row = current(spark, lake)[claim_id(1)]
    assert row["details"] == '{"v":"B"}' and row["status"] == "approved"
    assert [h["details"] for h in history(spark, lake, 1)] == ['{"v":"A"}', '{"v":"B"}', '{"v":"B"}']


def test_out_of_order_duplicates_and_late_changes_never_overwrite_newer_state(spark, lake, writer):
    c100 = change("c", 1, lsn=100, row=claim_row(1, status="fnol"))
    u200 = change("u", 1, lsn=200, row=claim_row(1, status="assessing"))
    u300 = change("u", 1, lsn=300, row=claim_row(1, status="approved"))
    apply(writer, [u300, c100, u300, u200])
    assert current(spark, lake)[claim_id(1)]["status"] == "approved"
    late = change("u", 1, lsn=150, row=claim_row(1, status="draft"))
    apply(writer, [u200, late, c100])
    assert current(spark, lake)[claim_id(1)]["status"] == "approved"
    versions = history(spark, lake, 1)
    assert [v["status"] for v in versions] == ["fnol", "draft", "assessing", "approved"]
    assert [v["_is_current"] for v in versions] == [False, False, False, True]
    assert [v["_valid_to"] for v in versions[:-1]] == [v["_valid_from"] for v in versions[1:]]
    assert versions[-1]["_valid_to"] is None


def test_late_change_slots_into_history_and_refills_later_unchanged_columns(spark, lake, writer):
    apply(writer, [change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"}))])
    apply(writer, [change("u", 1, lsn=300, row=claim_row(1, status="approved"), unchanged=["details"])])
    assert [h["details"] for h in history(spark, lake, 1)] == ['{"v":"A"}', '{"v":"A"}']
    apply(writer, [change("u", 1, lsn=200, row=claim_row(1, status="assessing", details={"v": "B"}))])
    versions = history(spark, lake, 1)
    assert [(v["status"], v["details"]) for v in versions] == [
        ("fnol", '{"v":"A"}'), ("assessing", '{"v":"B"}'), ("approved", '{"v":"B"}'),
    ]
    assert [v["_is_current"] for v in versions] == [False, False, True]
    assert [v["_valid_to"] for v in versions[:-1]] == [v["_valid_from"] for v in versions[1:]]
    row = current(spark, lake)[claim_id(1)]
    assert (row["status"], row["details"]) == ("approved", '{"v":"B"}')


def test_late_change_and_newer_update_without_toast_column_in_one_batch(spark, lake, writer):
    apply(writer, [change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"}))])
    apply(writer, [change("u", 1, lsn=300, row=claim_row(1, status="assessing"), unchanged=["details"])])
    apply(writer, [
        change("u", 1, lsn=200, row=claim_row(1, status="fnol", details={"v": "B"})),
        change("u", 1, lsn=400, row=claim_row(1, status="approved"), unchanged=["details"]),
    ])
    row = current(spark, lake)[claim_id(1)]
    assert (row["status"], row["details"]) == ("approved", '{"v":"B"}')
    assert [h["details"] for h in history(spark, lake, 1)] == ['{"v":"A"}', '{"v":"B"}', '{"v":"B"}', '{"v":"B"}']


def test_late_insert_cannot_resurrect_a_deleted_row(spark, lake, writer):
    apply(writer, [change("d", 1, lsn=200)])
    apply(writer, [change("c", 1, lsn=100, row=claim_row(1))])
    assert claim_id(1) not in current(spark, lake)
    assert [(h["_op"], h["_is_current"]) for h in history(spark, lake, 1)] == [("c", False), ("d", True)]


# ------------------------------------------------------------------------------------------------ replay


def test_replaying_a_batch_changes_no_table_content(spark, lake, writer):
    apply(writer, [change("c", n, lsn=100 + n, row=claim_row(n)) for n in (1, 2)])
    batch = [
        change("u", 1, lsn=200, row=claim_row(1, status="assessing"), unchanged=["details"]),
        change("d", 2, lsn=210),
        change("c", 3, lsn=220, row=claim_row(3)),
        change("t", lsn=230),
        change("c", 4, lsn=240, row=claim_row(4)),
    ]
    apply(writer, batch, first_offset=2)
    paths = [lake.current(TABLE), lake.history(TABLE), lake.offsets()]
    before = [snapshot(spark, p) for p in paths]
    versions = [delta_versions(p) for p in paths]
    apply(writer, batch, first_offset=2)
    apply(writer, batch[:2], first_offset=2)  # a partial replay too
    assert [snapshot(spark, p) for p in paths] == before
    # pysail commits nothing for a MERGE that matches nothing; the writer skips empty history merges.
    assert [delta_versions(p) for p in paths] == versions


def test_crash_between_data_and_offsets_loses_and_doubles_nothing(spark, lake, writer, tmp_path):
    batch = [change("c", 1, lsn=100, row=claim_row(1)), change("u", 1, lsn=200, row=claim_row(1, status="paid"))]
    plan = plan_batch(consumed(batch))
    # First attempt dies after the history MERGE, before the current table and the offsets.
    writer.merge_history(entity_columns(TABLE), plan.tables[TABLE])
    assert writer.read_offsets() == {}
    writer.apply(plan)  # the restart re-reads from the recorded (absent) offsets: the same batch
    once = LakeLayout(str(tmp_path / "once"))
    DeltaLakeWriter(spark, once).apply(plan)
    for path_of in (lambda l: l.current(TABLE), lambda l: l.history(TABLE)):
        assert snapshot(spark, path_of(lake)) == snapshot(spark, path_of(once))
    assert writer.read_offsets() == {("claims.cdc.claims.v1", 0): 2}


def test_offsets_only_move_forward(spark, lake, writer):
    apply(writer, [change("c", 1, lsn=100, row=claim_row(1))], first_offset=10)
    apply(writer, [change("c", 1, lsn=100, row=claim_row(1))], first_offset=3)
    apply(writer, [change("c", 2, lsn=100, row=claim_row(2))], first_offset=0, partition=1)
    assert writer.read_offsets() == {("claims.cdc.claims.v1", 0): 11, ("claims.cdc.claims.v1", 1): 1}


# ------------------------------------------------------------------------------------------------ time travel, SCD2


def test_time_travel_returns_the_earlier_state_of_an_updated_claim(spark, lake, writer):
    apply(writer, [change("c", 1, lsn=100, row=claim_row(1, status="fnol", reserve_amount="0.00"))])
    version = delta_versions(lake.current(TABLE)) - 1
    apply(writer, [change("u", 1, lsn=200, row=claim_row(1, status="approved", reserve_amount="950.00"))])
    assert current(spark, lake)[claim_id(1)]["status"] == "approved"
    before = current(spark, lake, version=version)[claim_id(1)]
    assert before["status"] == "fnol" and before["reserve_amount"] == Decimal("0.00")


def test_scd2_rows_record_each_version_with_validity_op_and_event_id(spark, lake, writer):
    changes = [
        change("c", 1, lsn=100, row=claim_row(1, status="fnol")),
        change("u", 1, lsn=200, row=claim_row(1, status="assessing")),
    ]
    apply(writer, changes)
    reinsert = change("c", 1, lsn=400, row=claim_row(1, status="draft"))
    apply(writer, [change("d", 1, lsn=300), reinsert])
    versions = history(spark, lake, 1)
    assert [(v["_op"], v["status"], v["_is_current"]) for v in versions] == [
        ("c", "fnol", False), ("u", "assessing", False), ("d", None, False), ("c", "draft", True),
    ]
    assert [v["_event_id"] for v in versions[:2]] == [c["event_id"] for c in changes]
    assert versions[-1]["_event_id"] == reinsert["event_id"]
    assert [v["_valid_from"].timestamp() * 1000 for v in versions] == pytest.approx(
        [c_ts for c_ts in (1_767_225_600_100, 1_767_225_600_200, 1_767_225_600_300, 1_767_225_600_400)]
    )
    assert [v["_valid_to"] for v in versions[:-1]] == [v["_valid_from"] for v in versions[1:]]
    assert current(spark, lake)[claim_id(1)]["status"] == "draft"


def test_truncate_empties_current_and_closes_history_of_stored_keys(spark, lake, writer):
    apply(writer, [change("c", n, lsn=100 + n, row=claim_row(n)) for n in (1, 2)])
    apply(writer, [change("t", lsn=200), change("c", 3, lsn=300, row=claim_row(3))])
    assert set(current(spark, lake)) == {claim_id(3)}
    for n in (1, 2):
        assert [(h["_op"], h["_is_current"]) for h in history(spark, lake, n)] == [("c", False), ("t", True)]
    # A late insert from before the truncate stays out.
    apply(writer, [change("u", 1, lsn=150, row=claim_row(1, status="closed"))])
    assert set(current(spark, lake)) == {claim_id(3)}


# ------------------------------------------------------------------------------------------------ model check


def _random_stream(rng: random.Random, keys: int, steps: int) -> list[dict]:
    """A plausible single-partition change stream: per key c/r, then u (some without TOAST columns), d, re-c."""
    alive: dict[int, bool] = {}
    stream, lsn = [], 1_000
    for _ in range(steps):
        n = rng.randrange(1, keys + 1)
        lsn += rng.randrange(1, 50)
        values = dict(status=rng.choice(["fnol", "assessing", "approved", "paid"]),
                      details={"v": rng.randrange(1000)}, description=f"d{rng.randrange(1000)}",
                      claimed_amount=f"{rng.randrange(100000)}.{rng.randrange(100):02d}")
        if not alive.get(n):
            op = "r" if lsn < 3_000 and n not in alive else "c"
            stream.append(change(op, n, lsn=lsn, row=claim_row(n, **values), snapshot=op == "r"))
            alive[n] = True
        elif rng.random() < 0.12:
            stream.append(change("d", n, lsn=lsn))
            alive[n] = False
        else:
            unchanged = rng.choice([(), (), ("details",), ("details", "description")])
            stream.append(change("u", n, lsn=lsn, row=claim_row(n, **values), unchanged=unchanged))
    return stream


def _model(stream: list[dict]) -> tuple[dict, dict]:
    """Reference result of applying every distinct change once, in LSN order: (current, history) per claim id."""
    state: dict[str, dict | None] = {}
    history: dict[str, list[tuple]] = {}
    for c in sorted({c["event_id"]: c for c in stream}.values(), key=lambda c: c["lsn"]):
        cid = c["key"]["claim_id"]
        if c["op"] == "d":
            state[cid] = None
        else:
            previous = state.get(cid) or {}
            state[cid] = {**{k: previous.get(k) for k in c["unchanged"]}, **c["row"]}
        s = state[cid]
        history.setdefault(cid, []).append(
            (c["op"], c["event_id"], None if s is None else (s["status"], canonical_json(s["details"]),
                                                             s["description"], Decimal(s["claimed_amount"])))
        )
    return state, history


@pytest.mark.parametrize("late_share", [0.0, 0.05], ids=["in-order", "late-arrivals"])
def test_batches_with_duplicates_shuffles_and_replays_match_the_reference_model(spark, lake, writer, late_share):
    rng = random.Random(20261125)
    stream = _random_stream(rng, keys=40, steps=400)
    offset, batches = 0, []
    while offset < len(stream):
        size = rng.randrange(20, 80)
        batches.append((offset, stream[offset:offset + size]))
        offset += size
    # Some changes arrive for the first time one to three batches late (not a PostgreSQL -> Debezium pattern per
    # key, but the writer must still converge to the same tables).
    held: dict[int, list[tuple[int, dict]]] = {}
    for i, (first, batch) in enumerate(batches[:-1]):
        for o in range(first, first + len(batch)):
            if rng.random() < late_share:
                held.setdefault(min(i + rng.randrange(1, 4), len(batches) - 1), []).append((o, stream[o]))
    late_offsets = {o for items in held.values() for o, _ in items}
    applied = 0
    for i, (first, batch) in enumerate(batches):
        delivered = [(o, c) for o, c in enumerate(batch, start=first) if o not in late_offsets]
        delivered += held.get(i, [])
        delivered += [rng.choice(delivered) for _ in range(5)]  # redelivered duplicates
        if i:
            delivered += [(o, stream[o]) for o in rng.sample(range(first), 5)]  # old changes replayed late
        rng.shuffle(delivered)
        plan = plan_batch(ConsumedChange(TOPIC, 0, o, c) for o, c in delivered)
        writer.apply(plan)
        applied += 1
        if rng.random() < 0.3:  # crash after the data, before the consumer moved on: the batch comes again
            writer.apply(plan)
            applied += 1
    expected_current, expected_history = _model(stream)

    stored = current(spark, lake, live_only=False)
    assert set(stored) == set(expected_current)
    for cid, state in expected_current.items():
        row = stored[cid]
        if state is None:
            assert row["_deleted"], cid
        else:
            assert not row["_deleted"], cid
            got = (row["status"], row["details"], row["description"], row["claimed_amount"])
            assert got == (state["status"], canonical_json(state["details"]), state["description"],
                           Decimal(state["claimed_amount"])), cid
    rows = spark.read.format("delta").load(lake.history(TABLE)).orderBy("claim_id", "_source_pos").collect()
    got_history: dict[str, list[tuple]] = {}
    for r in rows:
        values = None if r["_op"] == "d" else (r["status"], r["details"], r["description"], r["claimed_amount"])
        got_history.setdefault(r["claim_id"], []).append(((r["_op"], r["_event_id"], values), r))
    assert {cid: [g for g, _ in v] for cid, v in got_history.items()} == expected_history
    for versions in got_history.values():
        rs = [r for _, r in versions]
        assert [r["_is_current"] for r in rs] == [False] * (len(rs) - 1) + [True]
        assert [r["_valid_to"] for r in rs[:-1]] == [r["_valid_from"] for r in rs[1:]]
    assert writer.read_offsets() == {(TOPIC, 0): len(stream)}
    assert applied >= len(batches)


class StitchOnlyWriter(DeltaLakeWriter):
    """Every key through the stitch over its stored versions (the path for late changes): the reference the
    append path for in-order keys must agree with."""

    def _in_order_basis(self, columns, plan):
        return {}


def test_append_path_for_in_order_keys_writes_what_the_stitch_writes(spark, lake, tmp_path):
    rng = random.Random(20261126)
    stream = _random_stream(rng, keys=30, steps=300)  # TOAST-unchanged columns, deletes, re-inserts, snapshot reads
    appended: list[int] = []

    class CountingWriter(DeltaLakeWriter):
        def append_history(self, columns, rows, basis):
            appended.append(len(rows))
            return super().append_history(columns, rows, basis)

    fast = CountingWriter(spark, lake)
    reference = StitchOnlyWriter(spark, LakeLayout(str(tmp_path / "stitch")))
    offset = 0
    while offset < len(stream):
        size = rng.randrange(5, 40)
        batch = stream[offset:offset + size]
        if offset and rng.random() < 0.3:
            batch = batch + rng.sample(stream[:offset], 3)  # redelivered old changes: those keys take the stitch
        plan = plan_batch(consumed(batch, first_offset=offset))
        fast.apply(plan)
        reference.apply(plan)
        offset += size
    for path_of in (lambda l: l.current(TABLE), lambda l: l.history(TABLE)):
        assert snapshot(spark, path_of(lake)) == snapshot(spark, path_of(reference.layout))
    assert sum(appended) > len(stream) // 2  # most versions went through the append path

