"""Lakehouse freshness: PostgreSQL commit -> row visible in the current Delta table, under simulator load, on the
embedded stack; and the compactor's MERGE throughput against a bare delta-rs MERGE of the same batch.

Runs its own embedded stack (fresh state directory, the test ports: CLAIMS_TEST_PORT_OFFSET shifts them; pysail on
`--spark-port`, default 23150).

Freshness probes: while `claimsctl simulate` writes CDC traffic, every `--probe-every` seconds one existing claim is
touched (`UPDATE claims SET updated_at = now()`), after reading `pg_current_wal_insert_lsn()` in the same
transaction; the time the COMMIT returns is the start. A poller reads current/claims with delta-rs every
`--poll-s` seconds; the probe is visible once the claim's stored `_source_pos` has an LSN at or past that one
(a later change of the same claim implies the probe was applied before it: positions are per-key ordered). The
poll period bounds the measurement error (reported).

MERGE throughput: the normalized changes of the run are split in two halves; half A is written to fresh lakes
(untimed), then half B is timed: through the compactor's writer (history + current + offsets, what the job does per
batch, tables in parallel as the job does) and with delta-rs writing the same batch to the same two tables (the
SCD1 upsert and the textbook SCD2 MERGE that closes each key's open version and inserts the new ones). merge_ratio =
compactor changes/s divided by delta-rs changes/s (below 1: the compactor is slower). Also printed: the SCD1
MERGEs alone on both sides, and the whole compactor batch against delta-rs's SCD1 upsert alone (the figure this
bench reported as merge_ratio until 2026-11-26).

Ends with: BENCH freshness p50_s=.. p95_s=.. p99_s=.. merge_ratio=..
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from claims_shared.settings import PROJECT_ROOT, PlatformSettings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def bench_settings(spark_port: int) -> PlatformSettings:
    """The test stack's ports (CLAIMS_TEST_PORT_OFFSET shifts them) and a fresh state directory; the Spark Connect
    server on `spark_port` (default 23150: outside the test stacks' range)."""
    sys.path.insert(0, str(PROJECT_ROOT))
    from tests.conftest import isolated_settings, make_state_dir

    return isolated_settings(make_state_dir("bench-freshness-"), spark_port=spark_port,
                             spark_remote=f"sc://127.0.0.1:{spark_port}")


# ------------------------------------------------------------------------------------------------ freshness


class Prober:
    def __init__(self, settings: PlatformSettings) -> None:
        import psycopg

        self.settings = settings
        self.conn = psycopg.connect(settings.pg_dsn, autocommit=False)
        self.pending: dict[str, list[tuple[int, float]]] = defaultdict(list)  # claim_id -> [(lsn, commit time)]
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        # Upstream part: commit -> the change on the normalized topic (Debezium + normalizer), same probes.
        self.upstream_pending: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.upstream: list[float] = []
        # Downstream part: the record on the normalized topic -> the row in the lake (the compactor's own share,
        # much less disturbed by other load on the machine than the whole path).
        self.topic_seen: dict[tuple[str, int], float] = {}
        self.downstream: list[float] = []

    def probe(self) -> bool:
        with self.conn.cursor() as cur:
            cur.execute("SELECT claim_id::text FROM claims ORDER BY random() LIMIT 1")
            row = cur.fetchone()
            if row is None:
                self.conn.rollback()
                return False
            cur.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn")
            lsn = int(cur.fetchone()[0])
            cur.execute("UPDATE claims SET updated_at = now() WHERE claim_id = %s", (row[0],))
        self.conn.commit()
        committed = time.time()
        with self.lock:
            self.pending[row[0]].append((lsn, committed))
            self.upstream_pending[row[0]].append((lsn, committed))
        return True

    def watch_topic(self, stop: threading.Event) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from claims_shared.contracts.cdc import normalized_topic
        from claims_shared.contracts.cdc_avro import decode_change

        topic = normalized_topic("claims")
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": "bench-freshness",
                             "enable.auto.commit": False, "fetch.wait.max.ms": 20})
        try:
            while not stop.is_set():
                meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
                if meta is not None and meta.error is None and meta.partitions:
                    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
                    break
                stop.wait(0.5)
            while not stop.is_set():
                for m in consumer.consume(500, timeout=0.1):
                    if m.error() is not None or not m.value():
                        continue
                    seen = time.time()
                    change = decode_change("claims", m.value())
                    claim = (change.get("key") or {}).get("claim_id")
                    with self.lock:
                        waiting = self.upstream_pending.get(claim)
                        if not waiting:
                            continue
                        for p in [p for p in waiting if (change.get("lsn") or 0) >= p[0]]:
                            self.upstream.append(seen - p[1])
                            self.topic_seen[(claim, p[0])] = seen
                            waiting.remove(p)
        finally:
            consumer.close()

    def poll(self, stop: threading.Event, poll_s: float) -> None:
        from deltalake import DeltaTable

        from claimsctl.lake import storage_options
        from services.delta_compactor.lake_schema import LakeLayout
        from services.delta_compactor.planning import POS_LSN_FACTOR

        uri = LakeLayout(self.settings.lake_root_uri).current("claims")
        opts = storage_options(self.settings, uri)
        dt = None
        while not stop.is_set():
            started = time.monotonic()
            with self.lock:
                ids = list(self.pending)
            if ids:
                try:
                    if dt is None:
                        dt = DeltaTable(uri, storage_options=opts)
                    else:
                        dt.update_incremental()
                    data = dt.to_pyarrow_table(columns=["claim_id", "_source_pos"],
                                               filters=[("claim_id", "in", ids)]).to_pylist()
                except Exception:  # table not created yet
                    data = []
                seen = time.time()
                with self.lock:
                    for r in data:
                        stored_lsn = int(r["_source_pos"]) // POS_LSN_FACTOR
                        waiting = self.pending.get(r["claim_id"], [])
                        done = [p for p in waiting if stored_lsn >= p[0]]
                        for p in done:
                            self.latencies.append(seen - p[1])
                            on_topic = self.topic_seen.pop((r["claim_id"], p[0]), None)
                            if on_topic is not None:
                                self.downstream.append(max(0.0, seen - on_topic))
                            waiting.remove(p)
                        if not waiting:
                            self.pending.pop(r["claim_id"], None)
            stop.wait(max(0.0, poll_s - (time.monotonic() - started)))


def run_freshness(settings: PlatformSettings, *, duration_s: float, rate: float, probe_every: float,
                  poll_s: float, seed: int) -> tuple[list[float], int, list[float], list[float]]:
    env = {**os.environ, **settings.as_env()}
    sim = subprocess.Popen(
        [sys.executable, "-m", "claimsctl.cli", "simulate", "--duration", str(duration_s), "--rate", str(rate),
         "--seed", str(seed), "--no-telematics", "--no-files"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prober = Prober(settings)
    stop = threading.Event()
    poller = threading.Thread(target=prober.poll, args=(stop, poll_s), daemon=True)
    poller.start()
    watcher = threading.Thread(target=prober.watch_topic, args=(stop,), daemon=True)
    watcher.start()
    time.sleep(min(10.0, duration_s / 4))  # the first claims exist and the first tables are created
    probes = 0
    rng = random.Random(seed)
    while sim.poll() is None:
        if prober.probe():
            probes += 1
        time.sleep(probe_every * (0.5 + rng.random()))
    deadline = time.monotonic() + 60
    while prober.pending and time.monotonic() < deadline:
        time.sleep(0.2)
    stop.set()
    poller.join(10)
    unseen = sum(len(v) for v in prober.pending.values())
    return prober.latencies, unseen, prober.upstream, prober.downstream


# ------------------------------------------------------------------------------------------------ MERGE throughput


def run_merge_comparison(settings: PlatformSettings) -> dict[str, float]:
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from claims_shared.clients.kafka import read_topic_to_idleness
    from claims_shared.contracts.cdc import normalized_topic
    from claims_shared.contracts.cdc_avro import decode_change
    from claims_shared.contracts.topics import CDC_TABLES
    from claimsctl.lake import storage_options
    from services.delta_compactor.__main__ import spark_session
    from services.delta_compactor.lake_schema import LakeLayout, arrow_table, entity_columns
    from services.delta_compactor.planning import ConsumedChange, plan_batch
    from services.delta_compactor.writer import DeltaLakeWriter

    changes: list[ConsumedChange] = []
    for table in CDC_TABLES:
        read_topic_to_idleness(settings, normalized_topic(table), lambda m, t=table: changes.append(
            ConsumedChange(m.topic(), m.partition(), m.offset(), decode_change(t, m.value()))), idle_s=1.5)
    changes.sort(key=lambda c: c.change["lsn"])
    half = len(changes) // 2
    plan_a, plan_b = plan_batch(changes[:half]), plan_batch(changes[half:])
    n_b = len(changes) - half

    root = f"{settings.lake_root_uri}/bench-merge"
    compactor_layout = LakeLayout(f"{root}/compactor")
    writers = [DeltaLakeWriter(spark_session(settings.spark_remote), compactor_layout) for _ in plan_b.tables]

    steps: dict[str, float] = defaultdict(float)  # summed over the tables (they run in parallel)

    def apply(plan) -> None:  # noqa: ANN001 - as the job does: one session per table, in parallel, then offsets
        with ThreadPoolExecutor(len(writers) or 1) as pool:
            reports = list(pool.map(lambda wt: wt[0].apply_table(wt[1]), zip(writers, plan.tables.values())))
        t0 = time.monotonic()
        writers[0].record_offsets(plan.offsets)
        steps.clear()
        for report in reports:
            for step, seconds in report.seconds.items():
                steps[step] += seconds
        steps["offsets"] = time.monotonic() - t0

    apply(plan_a)
    t0 = time.monotonic()
    apply(plan_b)
    compactor_s = time.monotonic() - t0

    # The compactor's SCD1 MERGEs alone (what readers wait for; history and offsets trail them), on a third lake.
    scd1_layout = LakeLayout(f"{root}/compactor-scd1")
    scd1_writers = [DeltaLakeWriter(spark_session(settings.spark_remote), scd1_layout) for _ in plan_b.tables]

    def apply_current(plan) -> None:  # noqa: ANN001
        with ThreadPoolExecutor(len(scd1_writers) or 1) as pool:
            list(pool.map(lambda wt: wt[0].merge_current(entity_columns(wt[1].table), wt[1]),
                          zip(scd1_writers, plan.tables.values())))

    apply_current(plan_a)
    t0 = time.monotonic()
    apply_current(plan_b)
    scd1_s = time.monotonic() - t0

    def scd1_arrow(table: str, plan) -> pa.Table:  # noqa: ANN001
        columns = entity_columns(table)
        schema = columns.current_schema()
        rows = []
        for r in plan.tables[table].current:
            typed, extras = columns.split_values(r.key if r.deleted else r.values)
            rows.append({**typed, "_extra_columns": extras, "_deleted": r.deleted, "_op": r.op,
                         "_event_id": r.event_id, "_source_pos": __import__("decimal").Decimal(r.source_pos),
                         "_source_ts": None})
        return arrow_table(rows, schema)

    bare_root = f"{root}/delta-rs"
    for table in plan_a.tables:
        uri = f"{bare_root}/{table}"
        write_deltalake(uri, scd1_arrow(table, plan_a), mode="overwrite", storage_options=storage_options(settings, uri))
    sources = {table: scd1_arrow(table, plan_b) for table in plan_b.tables}

    def bare_merge(table: str) -> None:
        uri = f"{bare_root}/{table}"
        opts = storage_options(settings, uri)
        if not DeltaTable.is_deltatable(uri, storage_options=opts):
            write_deltalake(uri, sources[table].slice(0, 0), storage_options=opts)
        keys = entity_columns(table).key_columns
        predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
        (DeltaTable(uri, storage_options=opts)
         .merge(sources[table], predicate, source_alias="s", target_alias="t")
         .when_matched_update_all(predicate="s._source_pos > t._source_pos")
         .when_not_matched_insert_all().execute())

    t0 = time.monotonic()
    with ThreadPoolExecutor(len(sources) or 1) as pool:
        list(pool.map(bare_merge, sources))
    deltars_s = time.monotonic() - t0

    # The same batch into the same two tables with delta-rs: the SCD1 upsert above plus the textbook SCD2 MERGE
    # (close each key's open version, insert the new versions; no replay or disorder handling) on a history table.
    # Offsets would ride in the commit as Delta app transactions, which delta-rs supports: no extra write.
    def history_records(table: str, plan) -> list[dict]:  # noqa: ANN001
        columns = entity_columns(table)
        return [DeltaLakeWriter.history_record(columns, r) for r in plan.tables[table].history]

    def scd2_arrow(table: str, plan) -> pa.Table:  # noqa: ANN001
        columns = entity_columns(table)
        schema = columns.history_schema()
        records = history_records(table, plan)
        first: dict[tuple, dict] = {}
        for rec in records:
            k = tuple(rec[c] for c in columns.key_columns)
            if k not in first or rec["_source_pos"] < first[k]["_source_pos"]:
                first[k] = rec
        base = arrow_table(records, schema)
        closers = arrow_table(list(first.values()), schema)
        for c in columns.key_columns:  # merge keys: NULL on the rows to insert, the key on the closing rows
            base = base.append_column(f"mk_{c}", pa.nulls(base.num_rows, base.schema.field(c).type))
            closers = closers.append_column(f"mk_{c}", closers.column(c))
        return pa.concat_tables([base, closers])

    for table in plan_a.tables:
        uri = f"{bare_root}/history-{table}"
        write_deltalake(uri, arrow_table(history_records(table, plan_a), entity_columns(table).history_schema()),
                        mode="overwrite", storage_options=storage_options(settings, uri))
    history_sources = {table: scd2_arrow(table, plan_b) for table in plan_b.tables}

    def bare_scd2_merge(table: str) -> None:
        uri = f"{bare_root}/history-{table}"
        keys = entity_columns(table).key_columns
        names = [f.name for f in entity_columns(table).history_schema().fields]
        (DeltaTable(uri, storage_options=storage_options(settings, uri))
         .merge(history_sources[table], " AND ".join(f"t.{k} = s.mk_{k}" for k in keys) + " AND t._is_current",
                source_alias="s", target_alias="t")
         .when_matched_update(updates={"_is_current": "false", "_valid_to": "s._valid_from"})
         .when_not_matched_insert(updates={n: f"s.{n}" for n in names}, predicate=f"s.mk_{keys[0]} IS NULL")
         .execute())

    def bare_both(table: str) -> None:
        bare_merge(table)
        bare_scd2_merge(table)

    for table in plan_b.tables:  # the SCD1 tables back to half A for the combined run
        uri = f"{bare_root}/{table}"
        write_deltalake(uri, scd1_arrow(table, plan_a), mode="overwrite", storage_options=storage_options(settings, uri))
    t0 = time.monotonic()
    with ThreadPoolExecutor(len(sources) or 1) as pool:
        list(pool.map(bare_both, sources))
    deltars_both_s = time.monotonic() - t0
    return {"changes": n_b, "tables": len(plan_b.tables), "compactor_s": compactor_s, "deltars_s": deltars_s,
            "steps": dict(steps),
            "deltars_both_s": deltars_both_s, "scd1_s": scd1_s, "scd1_ratio": deltars_s / scd1_s,
            "compactor_per_s": n_b / compactor_s, "deltars_per_s": n_b / deltars_s,
            "scd1_only_ratio": deltars_s / compactor_s, "ratio": deltars_both_s / compactor_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=90.0, help="Seconds of simulator load.")
    parser.add_argument("--rate", type=float, default=20.0, help="Simulator database actions per second.")
    parser.add_argument("--probe-every", type=float, default=0.5, help="Mean seconds between probes.")
    parser.add_argument("--poll-s", type=float, default=0.2, help="Poll period of the lake reader.")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="Leave the stack and its state directory.")
    parser.add_argument("--spark-port", type=int, default=23150, help="Port of the bench stack's pysail server.")
    args = parser.parse_args()

    from claimsctl.stack.embedded import EmbeddedStack

    settings = bench_settings(args.spark_port)
    stack = EmbeddedStack(settings)
    code = 0
    try:
        t0 = time.monotonic()
        stack.up()
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
              f"(other processes on the machine share the CPU with the stack)", flush=True)
        print(f"stack up in {time.monotonic() - t0:.1f}s (state {settings.state_dir}); "
              f"trigger {settings.compactor_trigger_s}s, max batch {settings.compactor_max_batch}", flush=True)
        latencies, unseen, upstream, downstream = run_freshness(settings, duration_s=args.duration, rate=args.rate,
                                          probe_every=args.probe_every, poll_s=args.poll_s, seed=args.seed)
        print(f"freshness: {len(latencies)} probes seen, {unseen} not seen within 60 s after the load; "
              f"min {min(latencies, default=float('nan')):.2f}s mean {statistics.fmean(latencies) if latencies else float('nan'):.2f}s "
              f"max {max(latencies, default=float('nan')):.2f}s (poll period {args.poll_s}s)", flush=True)
        if upstream:
            print(f"of which upstream (commit -> record on claims.cdc.claims.v1, Debezium + normalizer): "
                  f"p50 {percentile(upstream, 0.5):.2f}s p95 {percentile(upstream, 0.95):.2f}s "
                  f"p99 {percentile(upstream, 0.99):.2f}s over {len(upstream)} probes", flush=True)
        if downstream:
            print(f"and downstream (record on the topic -> row in current/claims, the compactor): "
                  f"p50 {percentile(downstream, 0.5):.2f}s p95 {percentile(downstream, 0.95):.2f}s "
                  f"p99 {percentile(downstream, 0.99):.2f}s over {len(downstream)} probes", flush=True)
        print(f"load average after the load: {os.getloadavg()[0]:.1f}", flush=True)
        status = stack.components[-1].impl.job_status()
        print(f"compactor: {status.get('batches')} batches, {status.get('records')} records, "
              f"{status.get('retries')} retries", flush=True)
        merge = run_merge_comparison(settings)
        print(f"merge of {merge['changes']} changes over {merge['tables']} tables: compactor "
              f"{merge['compactor_s']:.2f}s ({merge['compactor_per_s']:.0f}/s), bare delta-rs "
              f"{merge['deltars_s']:.2f}s ({merge['deltars_per_s']:.0f}/s)", flush=True)
        print("  compactor steps, seconds summed over the tables (which run in parallel): "
              + ", ".join(f"{k} {v:.2f}" for k, v in merge["steps"].items()), flush=True)
        print(f"  delta-rs writing the same batch to both tables (SCD1 upsert + textbook SCD2 MERGE): "
              f"{merge['deltars_both_s']:.2f}s -> merge_ratio {merge['ratio']:.2f} (like for like)", flush=True)
        print(f"  SCD1 MERGEs alone: compactor {merge['scd1_s']:.2f}s vs delta-rs {merge['deltars_s']:.2f}s, "
              f"ratio {merge['scd1_ratio']:.2f}; whole compactor batch vs delta-rs SCD1 alone "
              f"{merge['scd1_only_ratio']:.2f} (the merge_ratio reported before 2026-11-26)", flush=True)
        p50, p95, p99 = (percentile(latencies, q) for q in (0.5, 0.95, 0.99))
        print(f"BENCH freshness p50_s={p50:.2f} p95_s={p95:.2f} p99_s={p99:.2f} merge_ratio={merge['ratio']:.2f}",
              flush=True)
    except Exception as exc:
        print(f"bench failed: {type(exc).__name__}: {exc}", flush=True)
        code = 1
    finally:
        if not args.keep:
            stack.down()
            shutil.rmtree(settings.state_dir, ignore_errors=True)
    sys.stdout.flush()
    os._exit(code)  # delta-rs was seen to abort at interpreter exit after its work (LOCAL-STACK.md)


if __name__ == "__main__":
    main()
