"""`claimsctl`: run, inspect and feed the claims data platform. Every command has --help."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from claims_shared.settings import PlatformSettings, get_settings
from claimsctl.stack.process import StackError

console = Console(stderr=False)
err = Console(stderr=True)


def _settings() -> PlatformSettings:
    return get_settings()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Claims data platform control: the embedded stack, traffic simulation and inspection.

    Settings come from CLAIMS_* environment variables (see README, 'Settings').
    """


@main.command()
def up() -> None:
    """Start the embedded stack (PostgreSQL, broker, Debezium/Connect, S3, queue, stream services, Spark, the Delta
    compactor). Idempotent."""
    from claimsctl.stack.embedded import EmbeddedStack

    stack = EmbeddedStack(_settings())
    t0 = time.monotonic()
    try:
        started = stack.up(on_progress=lambda m: console.print(f"  {m}"))
    except StackError as exc:
        err.print(f"[red]up failed:[/red] {exc}")
        err.print("Components started by this call were stopped again.")
        sys.exit(1)
    console.print(
        f"[green]stack up[/green] ({time.monotonic() - t0:.1f}s; started: {', '.join(started) or 'nothing, all running'})"
    )


@main.command()
def down() -> None:
    """Stop every embedded component, drop replication slots. Data stays under the state directory."""
    from claimsctl.stack.embedded import EmbeddedStack

    stack = EmbeddedStack(_settings())
    stopped = stack.down(on_progress=lambda m: console.print(f"  {m}"))
    console.print(f"[green]stack down[/green] (stopped: {', '.join(stopped) or 'nothing was running'})")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")
def status(as_json: bool) -> None:
    """Show each component (up/down, port, pid, memory), topics with message counts and consumer lag."""
    import json

    from claimsctl.inspect import group_lags, topic_counts
    from claimsctl.stack.embedded import EmbeddedStack

    settings = _settings()
    stack = EmbeddedStack(settings)
    rows = stack.statuses()
    # Services answer /health: "up" alone would hide a service that runs but cannot reach the broker.
    health = {c.name: c.health() for c in stack.components}
    broker_up = stack.broker.proc.is_running()
    topics = topic_counts(settings) if broker_up else []
    lags = group_lags(settings) if broker_up else []
    if as_json:
        print(json.dumps({
            "components": [
                {"name": s.name, "running": s.running, "healthy": health[s.name][0],
                 "health_detail": health[s.name][1], "pid": s.pid, "port": s.port, "rss_kib": rss,
                 "durable": durable, "note": s.detail}
                for s, rss, durable in rows
            ],
            "topics": [{"topic": t.topic, "partitions": t.partitions, "messages": t.messages} for t in topics],
            "consumer_groups": [
                {"group": g.group, "topic": g.topic, "committed": g.committed, "end": g.end, "lag": g.lag}
                for g in lags
            ],
        }, indent=2))
        return
    table = Table(title=f"embedded stack ({settings.state_dir})")
    for col in ("component", "state", "port", "pid", "RSS MiB", "data"):
        table.add_column(col)
    for st, rss, _ in rows:
        healthy, why = health[st.name]
        state = "[green]up[/green]" if st.running else "[red]down[/red]"
        if st.running and healthy is False:
            state = f"[yellow]up, unhealthy[/yellow] ({why[:80]})"
        table.add_row(
            st.name, state,
            str(st.port or "-"), str(st.pid or "-"), f"{rss / 1024:.0f}" if rss else "-", st.detail,
        )
    console.print(table)
    if broker_up:
        t = Table(title="topics (counts from end offsets; approximate on the local broker)")
        t.add_column("topic"); t.add_column("partitions", justify="right"); t.add_column("messages", justify="right")
        for tc in topics:
            t.add_row(tc.topic, str(tc.partitions), str(tc.messages))
        console.print(t)
        g = Table(title="consumer groups")
        for col in ("group", "topic", "committed", "lag"):
            g.add_column(col)
        for lag in lags:
            g.add_row(lag.group, lag.topic, str(lag.committed), str(lag.lag))
        console.print(g if lags else "no consumer groups with committed offsets")


@main.command()
@click.argument("component")
@click.option("-n", "--lines", default=40, show_default=True, help="How many lines from the end.")
def logs(component: str, lines: int) -> None:
    """Print the end of a component's log (postgres, broker, connect, objectstore, queue, s3-events, cdc-normalizer,
    telematics-scorer, spark, delta-compactor)."""
    from claimsctl.stack.process import tail

    path = _settings().state_dir / "logs" / f"{component}.log"
    if not path.exists():
        err.print(f"no log at {path}; components: postgres, broker, connect, objectstore, queue, s3-events, "
                  "cdc-normalizer, telematics-scorer, spark, delta-compactor")
        sys.exit(1)
    console.print(tail(path, lines), markup=False, highlight=False)


@main.command()
@click.option("--duration", type=float, default=30.0, show_default=True, help="Run for this many seconds.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same traffic.")
@click.option("--rate", type=float, default=20.0, show_default=True, help="Database actions per second.")
@click.option("--vehicles", type=int, default=20, show_default=True, help="Vehicles sending telematics.")
@click.option("--telematics-hz", type=float, default=1.0, show_default=True, help="Readings per second per vehicle.")
@click.option("--cdc/--no-cdc", default=True, show_default=True, help="Write claims traffic to PostgreSQL.")
@click.option("--telematics/--no-telematics", default=True, show_default=True, help="Produce vehicle readings to Kafka.")
@click.option("--files/--no-files", default=True, show_default=True, help="Upload landing files to S3.")
def simulate(duration: float, seed: int, rate: float, vehicles: int, telematics_hz: float,
             cdc: bool, telematics: bool, files: bool) -> None:
    """Generate seeded, reproducible traffic: claims in PostgreSQL, telematics on Kafka, files in S3."""
    counters = _run_simulation(_settings(), duration, seed, rate, vehicles, telematics_hz, cdc, telematics, files)
    console.print(counters_table(counters))


def _run_simulation(settings: PlatformSettings, duration: float, seed: int, rate: float, vehicles: int,
                    telematics_hz: float, cdc: bool, telematics: bool, files: bool):  # noqa: ANN202
    from dataclasses import asdict

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from claimsctl.simulator.run import run_simulation

    with Progress(
        TextColumn("simulating"), BarColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
        console=console, transient=False,
    ) as progress:
        task = progress.add_task("", total=duration)
        start = time.monotonic()

        def on_progress(counters) -> None:  # noqa: ANN001
            shown = ", ".join(f"{k}={v}" for k, v in asdict(counters).items() if isinstance(v, int) and v)
            progress.update(task, completed=min(time.monotonic() - start, duration), description=shown)

        try:
            counters = run_simulation(
                settings, duration_s=duration, seed=seed, rate=rate, cdc=cdc, telematics=telematics,
                files=files, vehicles=vehicles, telematics_hz=telematics_hz, progress=on_progress,
            )
        except Exception as exc:  # connection problems: tell the user what to do, no traceback wall
            err.print(f"[red]simulation failed:[/red] {exc}\nIs the stack up? Try `claimsctl status`.")
            sys.exit(1)
        progress.update(task, completed=duration)
    return counters


def counters_table(counters) -> Table:  # noqa: ANN001
    from dataclasses import asdict

    t = Table(title="simulated")
    t.add_column("what"); t.add_column("count", justify="right")
    for key, value in asdict(counters).items():
        if isinstance(value, float):
            t.add_row(key, f"{value:.1f}")
        elif isinstance(value, int):
            t.add_row(key, str(value))
    return t


@main.command()
@click.option("--duration", type=float, default=30.0, show_default=True, help="Seconds of simulated traffic.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--keep-running", is_flag=True, help="Leave the stack up afterwards.")
def demo(duration: float, seed: int, keep_running: bool) -> None:
    """Start the stack, simulate traffic for a bounded time, summarise what arrived where, stop."""
    from claimsctl.demo import run_demo

    sys.exit(run_demo(_settings(), duration=duration, seed=seed, keep_running=keep_running, console=console))


@main.command("export-columns")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON here (default: stdout).")
@click.option("--schema", "pg_schema", default="public", show_default=True, help="PostgreSQL schema to export.")
def export_columns_command(output: Path | None, pg_schema: str) -> None:
    """Export the column types of every table (PostgreSQL's catalog) as JSON, for decoding schemaless CDC records:
    {"<table>": [{"name", "type", "pk", "not_null"}]}."""
    from claims_shared.contracts.columns import dump_column_types, export_columns

    try:
        columns = export_columns(_settings().pg_dsn, pg_schema)
    except Exception as exc:  # connection problems: say what to do, no traceback wall
        err.print(f"[red]export-columns failed:[/red] {exc}\nIs the database up? Try `claimsctl status`.")
        sys.exit(1)
    if not columns:
        err.print(f"[yellow]no tables in schema {pg_schema!r}[/yellow]")
    text = dump_column_types(columns, output)
    if output is None:
        click.echo(text, nl=False)
    else:
        err.print(f"wrote {sum(map(len, columns.values()))} columns of {len(columns)} tables to {output}")


@main.command("normalize")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="JSON lines: {topic, partition, offset, key, value} with Debezium key/value JSON (or null).")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSON lines, one per non-tombstone input, in input order.")
@click.option("--columns", "columns_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Column-type map for schemaless input (from `claimsctl export-columns`).")
def normalize_command(input_path: Path, output_path: Path, columns_path: Path | None) -> None:
    """Run the cdc_normalizer's code offline over captured Debezium messages (debugging, backfills).

    Works for any database and topic prefix. PII columns come out tokenized with CLAIMS_PII_KEY. Lines that are
    not row changes keep their place as {"op": null, "skipped": ...} or {"op": null, "error": {...}}.
    """
    import orjson

    from services.cdc_normalizer.app import build_normalizer
    from services.cdc_normalizer.pipeline import replay_line

    normalizer = build_normalizer(_settings(), str(columns_path) if columns_path else None)
    counts = {"in": 0, "out": 0, "tombstones": 0, "errors": 0, "skipped": 0}
    with input_path.open("rb") as source, output_path.open("wb") as sink:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            counts["in"] += 1
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                out = {"table": None, "op": None, "error": {"class": "MalformedInputLine",
                                                             "reason": f"line {number} is not JSON: {exc}"}}
            else:
                out = replay_line(normalizer, doc) if isinstance(doc, dict) else {
                    "table": None, "op": None,
                    "error": {"class": "MalformedInputLine", "reason": f"line {number} is not a JSON object"}}
            if out is None:
                counts["tombstones"] += 1
                continue
            counts["errors" if "error" in out else "skipped" if out.get("op") is None else "out"] += 1
            sink.write(orjson.dumps(out) + b"\n")
    err.print(" ".join(f"{k}={v}" for k, v in counts.items()))


@main.command("score-trips")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="Readings CSV: vehicle_id,ts,lat,lon,speed_mps,heading_deg,accel_long_mps2,accel_lat_mps2,"
                   "accel_vert_mps2,speed_limit_mps (ts ISO-8601 UTC; speed_limit_mps may be empty).")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="JSON lines, one trip each, in (vehicle, start) order.")
def score_trips_command(input_path: Path, output_path: Path) -> None:
    """Run the telematics_scorer's trip, event and score code offline over a readings CSV.

    Unparseable rows are skipped; they and what cleaning dropped are counted on stderr. Thresholds are the
    service's, including CLAIMS_SCORING_OVERRIDES.
    """
    import orjson

    from services.telematics_scorer.config import InvalidScoringConfig, scoring_config
    from services.telematics_scorer.replay import ReadingsCsvError, read_readings_csv, trip_record
    from services.telematics_scorer.trips import score_readings

    started = time.perf_counter()
    try:
        batch, csv_stats = read_readings_csv(input_path)
    except ReadingsCsvError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        config = scoring_config(_settings().scoring_overrides)
    except InvalidScoringConfig as exc:
        raise click.ClickException(f"CLAIMS_SCORING_OVERRIDES: {exc}") from exc
    result = score_readings(batch, config, with_paths=False)  # the JSON lines carry no path
    with output_path.open("wb") as sink:
        sink.write(b"".join(orjson.dumps(trip_record(t)) + b"\n" for t in result.trips))
    counts = {"rows": csv_stats.rows, "malformed": csv_stats.malformed, **result.stats.as_dict(),
              "trips": len(result.trips), "events": sum(len(t.events) for t in result.trips),
              "seconds": round(time.perf_counter() - started, 2)}
    err.print(" ".join(f"{k}={v}" for k, v in counts.items()))


@main.command("extract-document")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--bucket", default=None, help="Compute document_id as for this bucket (with --key and --version-id).")
@click.option("--key", default=None, help="Object key for document_id (default: the file name).")
@click.option("--version-id", default=None, help="S3 version id (or ETag) for document_id (default: the file's MD5, "
                                                 "which is S3's ETag for a single-part upload).")
@click.option("--compact", is_flag=True, help="One JSON line instead of indented JSON.")
def extract_document_command(path: Path, bucket: str | None, key: str | None, version_id: str | None,
                             compact: bool) -> None:
    """Process one file as the object-stream Lambda would and print its document record as JSON.

    Same code as the Lambda (`lambdas.document_processor.extract_document`) with the CLAIMS_DOCUMENT_* limits:
    type sniffed from the bytes, sha256, image size/EXIF/perceptual hash, PDF text layer or OCR, claim fields.
    An unprocessable file prints a record with status "quarantined" and the reason, and exits with status 2.
    """
    import hashlib

    import orjson

    from lambdas.document_processor import ObjectRef, ProcessingLimits, extract_document
    from lambdas.document_processor.exceptions import OcrUnavailableError

    data = path.read_bytes()
    source = None
    if bucket:
        source = ObjectRef(bucket=bucket, key=key or path.name,
                           version_id=version_id or None, etag=hashlib.md5(data).hexdigest())  # noqa: S324
    try:
        record = extract_document(data, key or path.name, ProcessingLimits.from_settings(_settings()), source=source)
    except OcrUnavailableError as exc:
        raise click.ClickException(f"{exc}. Install it with `make system-deps`.") from exc
    option = 0 if compact else orjson.OPT_INDENT_2
    click.echo(orjson.dumps(record.to_dict(), option=option).decode())
    if record.status != "ok":
        err.print(f"[yellow]quarantined:[/yellow] {record.reason}")
        sys.exit(2)


# ------------------------------------------------------------------------------------------------ serving the lake


@main.command("sql")
@click.argument("query")
@click.option("--as-of", "as_of", default=None, metavar="VERSION|TIMESTAMP",
              help="Time-travel the current tables: a Delta version (e.g. 3) or an ISO-8601 time (2026-05-01T12:00Z).")
@click.option("--lake", default=None, metavar="PATH_OR_S3_URI",
              help="Lake root (local path or s3://bucket[/prefix]). Default: CLAIMS_LAKE_URI, else s3://CLAIMS_LAKE_BUCKET.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--dialect", type=click.Choice(["trino", "duckdb"]), default="trino", show_default=True,
              help="SQL dialect of QUERY: Trino (as in production, transpiled) or DuckDB as is.")
def sql_command(query: str, as_of: str | None, lake: str | None, fmt: str, dialect: str) -> None:
    """Run a SQL query over the lake on this machine, with the production views (live.*, gold.*).

    Every lake table is registered first (lake_current.*, lake_history.*, lake_append.*), then the Trino views of
    infra/trino/views, run on DuckDB with its delta extension. Reads the embedded S3 store (CLAIMS_S3_*) or a
    local path. Example: claimsctl sql "SELECT * FROM gold.claims_sla WHERE is_overdue" --format csv
    """
    from claimsctl.lake_sql import LakeSQLError, connect
    from claimsctl.lake_sql.output import to_csv, to_json, to_rich_table

    try:
        with connect(lake, as_of=as_of, settings=_settings()) as engine:
            if engine.missing_tables:
                err.print(f"[dim]not in the lake yet (empty): {', '.join(engine.missing_tables)}[/dim]")
            result = engine.arrow(query, dialect=dialect)
    except LakeSQLError as exc:
        raise click.ClickException(str(exc)) from exc
    if fmt == "csv":
        click.echo(to_csv(result), nl=False)
    elif fmt == "json":
        click.echo(to_json(result), nl=False)
    else:
        console.print(to_rich_table(result))
        err.print(f"[dim]{result.num_rows} rows[/dim]")


@main.group("lake")
def lake_group() -> None:
    """Lake serving assets: generated Trino scripts and views, a sample lake."""


@lake_group.command("generate")
@click.option("--lake", default=None, metavar="S3_URI",
              help="Lake root the Trino registrations point at. Default: s3://CLAIMS_LAKE_BUCKET.")
def lake_generate_command(lake: str | None) -> None:
    """Regenerate infra/trino/views/live.*.sql, infra/trino/register-tables.sql and create-views.sql.

    The live views come from the contracts (one per lake table); create-views.sql concatenates every view file in
    dependency order. Run after changing a contract, a table list or a view file; a test checks they are current.
    """
    from claimsctl.lake_sql.views import write_generated

    root = lake or f"s3://{_settings().lake_bucket}"
    for path in write_generated(root):
        click.echo(str(path))


@lake_group.command("sample")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def lake_sample_command(directory: Path) -> None:
    """Write a small sample lake (all layouts, known facts) to DIRECTORY, to try the views without a stack.

    Then: claimsctl sql --lake DIRECTORY "SELECT * FROM gold.claim_360"
    """
    from claimsctl.lake_sql.sample_lake import write_sample_lake

    if directory.exists() and any(directory.iterdir()):
        raise click.ClickException(f"{directory} is not empty: give a new directory")
    facts = write_sample_lake(directory)
    click.echo(f"sample lake written to {facts.root}")


@main.command("dashboard")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("dashboard.html"),
              show_default=True, help="HTML file to write.")
@click.option("--lake", default=None, metavar="PATH_OR_S3_URI", help="Lake root (default as for `claimsctl sql`).")
@click.option("--as-of", "as_of", default=None, metavar="VERSION|TIMESTAMP", help="Time-travel the current tables.")
def dashboard_command(output: Path, lake: str | None, as_of: str | None) -> None:
    """Render the Metabase dashboards (infra/metabase/*.json) as one self-contained HTML page with charts.

    Same questions, same SQL as Metabase, run on the embedded engine; inline SVG charts, no network needed to view.
    """
    from claimsctl.dashboards import load_dashboards, render_html
    from claimsctl.lake_sql import LakeSQLError, connect

    try:
        with connect(lake, as_of=as_of, settings=_settings()) as engine:
            page = render_html(load_dashboards(), engine)
    except LakeSQLError as exc:
        raise click.ClickException(str(exc)) from exc
    output.write_text(page)
    click.echo(f"wrote {output}")


@main.group("metabase")
def metabase_group() -> None:
    """Metabase dashboards as code (infra/metabase/*.json)."""


@metabase_group.command("provision")
@click.option("--url", required=True, help="Metabase base URL, e.g. http://localhost:3000")
@click.option("--user", required=True, help="Metabase admin e-mail.")
@click.option("--password", required=True, prompt=True, hide_input=True, help="Metabase password (prompted if absent).")
@click.option("--trino-host", default="trino", show_default=True, help="Trino host as Metabase reaches it.")
@click.option("--trino-port", default=8080, show_default=True, type=int)
@click.option("--trino-user", default="metabase", show_default=True)
def metabase_provision_command(url: str, user: str, password: str, trino_host: str, trino_port: int,
                               trino_user: str) -> None:
    """Create or update the Trino database, the questions and the dashboards in Metabase (idempotent by name).

    Questions are native Trino SQL over the views (gold.*, live.*); re-running updates them in place.
    """
    from claimsctl.dashboards import load_dashboards
    from claimsctl.dashboards.metabase import MetabaseClient, MetabaseError, TrinoConnection, provision

    try:
        client = MetabaseClient.login(url, user, password)
        summary = provision(client, load_dashboards(), TrinoConnection(trino_host, trino_port, trino_user))
    except MetabaseError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in summary:
        click.echo(line)


@main.command("notebook")
@click.option("--port", default=8888, show_default=True, type=int)
@click.option("--lake", default=None, metavar="PATH_OR_S3_URI", help="Lake the notebooks read (sets CLAIMS_LAKE_URI).")
def notebook_command(port: int, lake: str | None) -> None:
    """Start JupyterLab on notebooks/ (claim 360, claim history, telematics around a loss, fraud alerts).

    Needs the notebook extra: pip install -c constraints.txt -e '.[notebook]'. The notebooks use claimsctl.lake_sql.
    """
    import os
    import shutil

    from claims_shared.settings import PROJECT_ROOT

    jupyter = shutil.which("jupyter-lab") or shutil.which("jupyter-lab", path=str(Path(sys.executable).parent))
    if jupyter is None:
        raise click.ClickException("JupyterLab is not installed: pip install -c constraints.txt -e '.[notebook]'")
    env = dict(os.environ)
    if lake:
        env["CLAIMS_LAKE_URI"] = lake
    os.execve(jupyter, [jupyter, "--notebook-dir", str(PROJECT_ROOT / "notebooks"), "--ip", "127.0.0.1",
                        "--port", str(port), "--no-browser"], env)


# ------------------------------------------------------------------------------------------------ lakehouse


def _exit_now(code: int) -> None:
    """Exit without interpreter teardown: delta-rs was seen to abort (rc 134) at exit after its work committed."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@main.command()
@click.option("--once", is_flag=True, help="Stop once the topics are read to idleness (no record for 3 s).")
@click.option("--from-beginning", is_flag=True,
              help="Ignore the offsets recorded in the lake and re-read every topic (idempotent: adds nothing twice).")
def compact(once: bool, from_beginning: bool) -> None:
    """Run the Delta compactor (Kafka -> Delta Lake) in the foreground, with progress. Ctrl-C stops it after the
    batch in flight. The embedded stack also runs it as the `delta-compactor` component: both can run at once
    (they take turns on the lake lock; every write is idempotent)."""
    import signal
    import threading

    from rich.live import Live

    from services.delta_compactor.__main__ import spark_session
    from services.delta_compactor.job import CompactorJob
    from services.delta_compactor.lake_lock import LakeLock, lake_lock_path

    settings = _settings()
    try:
        job = CompactorJob(settings, lambda: spark_session(settings.spark_remote), from_beginning=from_beginning,
                           lock=LakeLock(lake_lock_path(settings.state_dir)))
        job.start()
    except Exception as exc:  # nothing reachable: say what to check
        err.print(f"[red]compact could not start:[/red] {exc}\nIs the stack up (Spark at {settings.spark_remote}, "
                  f"broker at {settings.kafka_bootstrap})? Try `claimsctl status`.")
        sys.exit(1)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    t0 = time.monotonic()

    def line() -> str:
        c = job.counters
        last = job.last_batch
        return (f"compacting into {settings.lake_root_uri}: {c['batches']} batches, {c['records']} records "
                f"({c['cdc_changes']} CDC changes, {c['append_rows']} append rows, {c['dead_lettered']} dead-lettered"
                f"{', ' + str(c['retries']) + ' retries' if c['retries'] else ''})"
                f"{f'; last batch {last.records} in {last.seconds:.2f}s' if last else ''}; {time.monotonic() - t0:.0f}s")

    try:
        with Live(line(), console=console, refresh_per_second=4) as live:
            job.run(stop, once=once, on_batch=lambda *_: live.update(line()))
            live.update(line())
    finally:
        job.close()
    if not job.healthy:
        err.print(f"[red]last batch failed:[/red] {job.last_error}")
        sys.exit(1)


@main.command()
@click.option("--retention-hours", type=int, default=None,
              help="VACUUM keeps files younger than this (default CLAIMS_LAKE_VACUUM_RETENTION_HOURS, 168).")
@click.option("--table", "tables", multiple=True, help="Only this table (e.g. current/claims); repeatable.")
def maintain(retention_hours: int | None, tables: tuple[str, ...]) -> None:
    """Compact small files, Z-order, VACUUM and checkpoint the lake's Delta tables (delta-rs; embedded stack).

    Holds the lake lock per table, so the compactor pauses between its batches while a table is maintained.
    """
    from claimsctl.lake.maintenance import maintain_lake
    from services.delta_compactor.lake_lock import LakeLock, lake_lock_path

    settings = _settings()
    retention = settings.lake_vacuum_retention_hours if retention_hours is None else retention_hours
    if retention < 168:
        err.print(f"[yellow]VACUUM retention {retention} h is below 7 days: time travel to older versions, and "
                  f"readers still on them, lose their files.[/yellow]")
    t = Table(title=f"lake maintenance ({settings.lake_root_uri}, vacuum retention {retention} h)")
    for col in ("table", "files before", "files after", "vacuumed", "version", "seconds"):
        t.add_column(col)
    try:
        results = maintain_lake(
            settings, retention_hours=retention, lock=LakeLock(lake_lock_path(settings.state_dir)),
            only=set(tables) or None,
            on_table=lambda r: console.print(f"  {r['table']}: {r['files_before']} -> {r['files_after']} files, "
                                             f"{r['vacuumed']} vacuumed ({r['seconds']}s)"),
        )
    except Exception as exc:
        err.print(f"[red]maintain failed:[/red] {exc}")
        _exit_now(1)
    for r in results:
        t.add_row(r["table"], str(r["files_before"]), str(r["files_after"]), str(r["vacuumed"]), str(r["version"]),
                  str(r["seconds"]))
    console.print(t)
    _exit_now(0)


@main.command()
@click.option("--wait", "wait_s", type=float, default=0.0, show_default=True,
              help="Keep comparing for up to this many seconds until equal (the compactor may be catching up).")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.option("--limit", type=int, default=10, show_default=True, help="Differences shown per table and kind.")
def reconcile(wait_s: float, as_json: bool, limit: int) -> None:
    """Compare every PostgreSQL table with its current Delta table: row counts and per-row hashes of the normalized
    values (PII tokenized as the normalizer does; tombstones excluded). Exit status 0 only when all are equal."""
    from claimsctl.lake.reconcile import diffs_as_json, reconcile_until_equal

    settings = _settings()
    try:
        diffs = reconcile_until_equal(settings, wait_s)
    except Exception as exc:
        err.print(f"[red]reconcile failed:[/red] {exc}\nIs the stack up? Try `claimsctl status`.")
        _exit_now(2)
    if as_json:
        print(diffs_as_json(diffs, limit))
        _exit_now(0 if all(d.equal for d in diffs) else 1)
    t = Table(title=f"PostgreSQL vs lake ({settings.lake_root_uri})")
    for col in ("table", "rows in PG", "rows in lake", "missing", "extra", "different", "equal"):
        t.add_column(col)
    for d in diffs:
        t.add_row(d.table, str(d.pg_rows), str(d.lake_rows), str(len(d.missing)), str(len(d.extra)),
                  str(len(d.different)), "[green]yes[/green]" if d.equal else "[red]no[/red]")
    console.print(t)
    for d in diffs:
        for key in d.missing[:limit]:
            console.print(f"{d.table}: missing in the lake: {key}", markup=False)
        for key in d.extra[:limit]:
            console.print(f"{d.table}: extra in the lake: {key}", markup=False)
        for key, columns in d.different[:limit]:
            console.print(f"{d.table}: different {key}: {', '.join(columns)}", markup=False)
    equal = all(d.equal for d in diffs)
    console.print(f"RECONCILE tables={len(diffs)} equal={sum(d.equal for d in diffs)} "
                  f"result={'equal' if equal else 'different'}", markup=False)
    _exit_now(0 if equal else 1)


if __name__ == "__main__":
    main()
