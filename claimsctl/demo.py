"""`claimsctl demo`: the platform on one laptop, in one command, with a summary of what arrived where."""

from __future__ import annotations

import time

import psycopg
from rich.console import Console
from rich.table import Table

from claims_shared.clients.aws import s3_client, sqs_client
from claims_shared.contracts.cdc import DEAD_LETTER_TOPIC, normalized_topic
from claims_shared.contracts.documents import DOCUMENTS_TOPIC
from claims_shared.contracts.fraud import FRAUD_ALERTS_TOPIC
from claims_shared.contracts.telematics import TRIPS_TOPIC
from claims_shared.contracts.topics import CDC_TABLES, TELEMATICS_READINGS, raw_cdc_topic
from claims_shared.settings import PlatformSettings
from claimsctl.inspect import count_change_events
from claimsctl.stack.embedded import EmbeddedStack
from claimsctl.stack.process import StackError


def run_demo(settings: PlatformSettings, *, duration: float, seed: int, keep_running: bool, console: Console) -> int:
    """Returns the process exit code: 0 when every stage delivered something."""
    from claimsctl.cli import _run_simulation, counters_table

    stack = EmbeddedStack(settings)
    t0 = time.monotonic()
    console.rule("starting the embedded stack")
    try:
        stack.up(on_progress=lambda m: console.print(f"  {m}"))
    except StackError as exc:
        console.print(f"[red]could not start the stack:[/red] {exc}")
        return 1
    console.print(f"stack up in {time.monotonic() - t0:.1f}s")
    try:
        console.rule(f"simulating {duration:.0f}s of traffic (seed {seed})")
        counters = _run_simulation(settings, duration, seed, 20.0, 10, 1.0, True, True, True)
        console.print(counters_table(counters))
        console.rule("what arrived where")
        ok = print_summary(settings, console)
    finally:
        if not keep_running:
            console.rule("stopping")
            stack.down(on_progress=lambda m: console.print(f"  {m}"))
    console.print(f"demo finished in {time.monotonic() - t0:.1f}s")
    return 0 if ok else 1


def print_summary(settings: PlatformSettings, console: Console) -> bool:
    """Per-topic change events by op next to the row counts in PostgreSQL, readings, landing files, queue."""
    topics = [raw_cdc_topic(settings.topic_prefix, t) for t in CDC_TABLES]
    normalized = [normalized_topic(t) for t in CDC_TABLES]
    landing = _count_objects(settings)
    drained = _wait_for_documents(settings, landing, console)
    # Debezium and the normalizer may still be shipping the last changes: read until the topics go quiet.
    ops = count_change_events(settings, [*topics, *normalized, DEAD_LETTER_TOPIC, TELEMATICS_READINGS,
                                         DOCUMENTS_TOPIC, TRIPS_TOPIC, FRAUD_ALERTS_TOPIC], idle_s=5.0)
    with psycopg.connect(settings.pg_dsn) as conn:
        rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in CDC_TABLES}  # noqa: S608
    table = Table(title=f"PostgreSQL -> Debezium ({settings.topic_prefix}.public.<table>) -> cdc_normalizer "
                        "(claims.cdc.<table>.v1)")
    for col in ("table", "rows in PG", "r", "c", "u", "d", "t", "events", "r+c-d=rows", "normalized"):
        table.add_column(col, justify="right" if col != "table" else "left")
    cdc_events = matching = normalized_total = 0
    for table_name, topic, out_topic in zip(CDC_TABLES, topics, normalized):
        c = ops.by_topic.get(topic, {})
        # Tombstones (delete markers for compaction) carry no change; some clients never see them.
        cdc_events += ops.total(topic) - c.get("tombstone", 0)
        # Without truncates or re-snapshots, every row in PostgreSQL is accounted for by its change events.
        balanced = c.get("r", 0) + c.get("c", 0) - c.get("d", 0) == rows[table_name]
        matching += balanced
        normalized_total += ops.total(out_topic)
        table.add_row(table_name, str(rows[table_name]), *(str(c.get(op, 0)) for op in "rcudt"), str(ops.total(topic)),
                      "[green]yes[/green]" if balanced else "[yellow]no[/yellow] (truncate or re-snapshot?)",
                      str(ops.total(out_topic)))
    console.print(table)
    readings = ops.total(TELEMATICS_READINGS)
    queued = _queue_depth(settings)
    documents = ops.total(DOCUMENTS_TOPIC)
    other = Table(title="telematics and object streams")
    other.add_column("where"); other.add_column("count", justify="right")
    other.add_row(f"topic {TELEMATICS_READINGS} (readings)", str(readings))
    other.add_row(f"topic {TRIPS_TOPIC} (closed trips)", str(ops.total(TRIPS_TOPIC)))
    other.add_row(f"s3://{settings.landing_bucket}/{settings.landing_incoming_prefix} (landing files)", str(landing))
    other.add_row(f"topic {DOCUMENTS_TOPIC} (document records from the Lambda)", str(documents))
    other.add_row(f"queue {settings.landing_queue} (notifications not yet processed)", str(queued))
    other.add_row(f"topic {FRAUD_ALERTS_TOPIC} (fraud alerts)", str(ops.total(FRAUD_ALERTS_TOPIC)))
    console.print(other)
    lake_tables = _reconcile_lake(settings, console)
    if not drained:
        console.print("[yellow]the document Lambda had not processed every landing file when the summary was "
                      "taken[/yellow] (see `claimsctl logs document-lambda`)")
    console.print(  # one line whatever the terminal width: scripts and the tests parse it
        f"SUMMARY cdc_events={cdc_events} tables_balanced={matching}/{len(CDC_TABLES)} readings={readings} "
        f"landing_files={landing} documents={documents} normalized={normalized_total} "
        f"dead_lettered={ops.total(DEAD_LETTER_TOPIC)} notifications_waiting={queued} "
        f"trips={ops.total(TRIPS_TOPIC)} fraud_alerts={ops.total(FRAUD_ALERTS_TOPIC)} "
        f"lake_tables_equal={lake_tables}/{len(CDC_TABLES)}",
        soft_wrap=True,
    )
    return cdc_events > 0 and readings > 0 and landing > 0 and documents > 0


def _reconcile_lake(settings: PlatformSettings, console: Console, wait_s: float = 120.0) -> int:
    """`claimsctl reconcile`: how many current Delta tables equal their PostgreSQL table (compactor caught up)."""
    from claimsctl.lake.reconcile import reconcile_until_equal

    with console.status("reconciling the lake with PostgreSQL ...") as status:
        diffs = reconcile_until_equal(
            settings, wait_s,
            on_attempt=lambda ds: status.update(f"lake tables equal to PostgreSQL: {sum(d.equal for d in ds)}/{len(ds)}"))
    table = Table(title="PostgreSQL vs the lake's current Delta tables (claimsctl reconcile)")
    for col in ("table", "rows in PG", "rows in lake", "missing", "extra", "different", "equal"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for d in diffs:
        table.add_row(d.table, str(d.pg_rows), str(d.lake_rows), str(len(d.missing)), str(len(d.extra)),
                      str(len(d.different)), "[green]yes[/green]" if d.equal else "[red]no[/red]")
    console.print(table)
    return sum(d.equal for d in diffs)


def _count_objects(settings: PlatformSettings) -> int:
    """Landing files (under the incoming prefix: processed/ and quarantine/ are the Lambda's outputs)."""
    s3 = s3_client(settings)
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.landing_bucket,
                                                            Prefix=settings.landing_incoming_prefix):
        total += page.get("KeyCount", 0)
    return total


def _wait_for_documents(settings: PlatformSettings, files: int, console: Console, timeout_s: float = 240.0) -> bool:
    """Wait until the document Lambda finished every landing file (OCR takes ~0.3-0.5 s a page here)."""
    from claimsctl.stack.lambda_runtime import EmbeddedLambda

    function = EmbeddedLambda(settings)
    deadline = time.monotonic() + timeout_s
    with console.status("waiting for the document Lambda (OCR) ...") as status:
        while time.monotonic() < deadline:
            done = function.counters().get("deleted", 0)
            status.update(f"document Lambda: {done}/{files} landing files processed")
            if done >= files and _queue_depth(settings) == 0:
                return True
            time.sleep(1.0)
    return False


def _queue_depth(settings: PlatformSettings) -> int:
    sqs = sqs_client(settings)
    url = sqs.get_queue_url(QueueName=settings.landing_queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                  "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())  # waiting + being processed
