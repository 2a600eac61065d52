"""The fault suite's stack, ledgers and report (definitions: tests/faults/README.md).

One embedded stack for the whole session, on its own state directory and on ports 50 above the integration tests'
(so it can run in the same pytest session as their per-module stacks, and next to other checkouts' stacks under
CLAIMS_TEST_PORT_OFFSET). Each fault test records one row; `pytest_terminal_summary` prints the table, whose last
line is `FAULTS total_lost=<n> total_duplicated=<n> faults=<n>`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from claims_shared.settings import PlatformSettings
from claimsctl.stack.embedded import EmbeddedStack, _Adapter
from claimsctl.stack.process import StackError, _descendants
from tests.conftest import make_state_dir, shifted_test_ports
from tests.faults.ledger import CdcLedger, DocumentLedger, LakeLedger, TelematicsLedger, Tally

FAULT_PORT_SHIFT = 50


def fault_ports() -> dict[str, Any]:
    """TEST_PORTS moved up by FAULT_PORT_SHIFT (still below 32768 with SeaweedFS's +10000 ports)."""
    return shifted_test_ports(FAULT_PORT_SHIFT)


def fault_settings(state_dir: Path) -> PlatformSettings:
    return PlatformSettings(
        state_dir=state_dir, **fault_ports(),
        # A short visibility timeout, so a lost invocation's messages come back within a test. It must still cover
        # one batch (5 objects of OCR), and the function timeout must exceed one object's time budget plus the
        # handler's end margin, or every object is put back unprocessed ("not enough time left").
        lambda_timeout_s=120.0, lambda_visibility_timeout_s=45, lambda_batch_size=5, lambda_max_receive_count=10,
        document_time_budget_s=30.0,
        # Trips close 15 s after their partition went quiet, so a fault's readings are all in closed trips when
        # the ledger checks them (production: 600 s).
        scoring_overrides={"idle_partition_close_s": 15.0},
        document_max_bytes=2 * 1024 * 1024,
    )


# -- the report ------------------------------------------------------------------------------------------------


@dataclass
class FaultRow:
    fault: str
    records_in: int
    records_out: int
    lost: int
    duplicated: int
    repeats: int
    dead_lettered: int
    recovery_s: float | None
    wall_s: float
    detail: str = ""


@dataclass
class FaultReport:
    rows: list[FaultRow] = field(default_factory=list)

    def table(self) -> list[str]:
        head = (f"{'fault':<34} {'in':>7} {'out':>7} {'lost':>5} {'dup':>4} {'repeats':>7} {'dead/quar':>9} "
                f"{'recovery_s':>10} {'wall_s':>7}")
        lines = [head, "-" * len(head)]
        for r in self.rows:
            rec = f"{r.recovery_s:.1f}" if r.recovery_s is not None else "-"
            lines.append(f"{r.fault:<34} {r.records_in:>7} {r.records_out:>7} {r.lost:>5} {r.duplicated:>4} "
                         f"{r.repeats:>7} {r.dead_lettered:>9} {rec:>10} {r.wall_s:>7.0f}")
            if r.detail:
                lines.append(f"    {r.detail}")
        lines.append(f"FAULTS total_lost={sum(r.lost for r in self.rows)} "
                     f"total_duplicated={sum(r.duplicated for r in self.rows)} faults={len(self.rows)}")
        return lines


REPORT = FaultReport()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT.rows:
        return
    terminalreporter.section("fault suite (tests/faults/README.md)")
    lines = REPORT.table()
    for line in lines:
        terminalreporter.write_line(line)
    out = os.environ.get("CLAIMS_FAULTS_REPORT")
    if out:
        Path(out).write_text("\n".join(lines) + "\n")


# -- the stack and what the faults do to it -----------------------------------------------------------------


@dataclass
class FaultStack:
    stack: EmbeddedStack
    cdc: CdcLedger
    telematics: TelematicsLedger
    documents: DocumentLedger
    lake: LakeLedger
    canaries: int = 0

    @property
    def settings(self) -> PlatformSettings:
        return self.stack.settings

    def component(self, name: str) -> _Adapter:
        return next(c for c in self.stack.components if c.name == name)

    def kill9(self, name: str) -> int:
        """SIGKILL the component's whole process group (no chance to flush or commit); returns the pid."""
        pid = self.component(name).status().pid
        assert pid is not None, f"{name} is not running"
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.component(name).status().running:
            time.sleep(0.1)
        return pid

    def kill9_lambda_function(self) -> int:
        """SIGKILL only the function process (awslambdaric) under the Lambda host, which must replace it."""
        host = self.component("document-lambda").status().pid
        assert host is not None
        for pid in _descendants(host):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"awslambdaric" in cmdline:
                os.kill(pid, signal.SIGKILL)
                return pid
        raise AssertionError("no awslambdaric process under the Lambda host")

    def restart(self) -> None:
        """`up` again: starts what is not running (and re-creates the replication slot if it was released)."""
        self.stack.up()

    def snapshot(self, *, wait_closed_trips_s: float = 60.0) -> dict[str, Tally]:
        """Read every ledger to idleness and count (waits until the scorer closed its open trips)."""
        open_trips = self.open_trips()
        deadline = time.monotonic() + wait_closed_trips_s
        while open_trips and time.monotonic() < deadline:
            time.sleep(2)
            open_trips = self.open_trips()
        # The lake last: it waits until the compactor recorded every record the other ledgers' topics hold.
        for ledger in (self.cdc, self.telematics, self.documents, self.lake):
            ledger.catch_up()
        return {"cdc": self.cdc.tally(), "readings": self.telematics.tally(open_trips=open_trips),
                "files": self.documents.tally(), "links": self.documents.links_tally(), "lake": self.lake.tally()}

    def open_trips(self) -> int:
        try:
            return int(self.component("telematics-scorer").impl.metrics().get("open_trips", 0))
        except Exception:  # noqa: BLE001 - a scorer that does not answer has unknown open trips
            return -1

    def settle(self, before: dict[str, Tally], *, timeout_s: float = 150.0) -> dict[str, Tally]:
        """Snapshots until nothing is lost any more (pipelines still draining) or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while True:
            after = self.snapshot()
            lost = sum(after[k].minus(before[k]).lost for k in after)
            if lost == 0 or time.monotonic() > deadline:
                return after
            time.sleep(5)


# Package scope: the stack stops once the fault tests are done, instead of idling beside the integration tests
# when `make test` runs the CI subset.
@pytest.fixture(scope="package")
def fault_stack() -> Iterator[FaultStack]:
    state = make_state_dir("claims-faults-")
    settings = fault_settings(state)
    stack = EmbeddedStack(settings)
    ledgers: list[Any] = []
    try:
        stack.up()
        ledgers = [CdcLedger(settings), TelematicsLedger(settings), DocumentLedger(settings), LakeLedger(settings)]
        yield FaultStack(stack, *ledgers)
    finally:
        for ledger in ledgers:
            try:
                ledger.close()
            except Exception:  # noqa: BLE001
                pass
        stack.down()
        if os.environ.get("CLAIMS_FAULTS_KEEP_STATE"):
            print(f"fault stack state kept in {state}")
        else:
            subprocess.run(["rm", "-rf", str(state)], check=False)


@pytest.fixture(autouse=True)
def whole_stack(request: pytest.FixtureRequest) -> Iterator[None]:
    """Before each fault: every component running (`up`), so one fault's damage is not charged to the next;
    a stack that cannot be made whole fails the test at once, saying so."""
    if "fault_stack" in request.fixturenames:
        fs: FaultStack = request.getfixturevalue("fault_stack")
        try:
            fs.restart()
        except StackError as exc:
            pytest.fail(f"the fault stack could not be made whole before this fault (an earlier fault broke it, "
                        f"see its report): {exc}"[:3000])
    yield


RecordRow = Callable[..., FaultRow]


@pytest.fixture
def record_row() -> RecordRow:
    """`record_row(fault, before, after, recovery_s=, wall_s=, detail=)`: one row of the report from two snapshots."""

    def record(fault: str, before: dict[str, Tally], after: dict[str, Tally], *, recovery_s: float | None,
               wall_s: float, detail: str = "") -> FaultRow:
        delta = {k: after[k].minus(before[k]) for k in after}
        total = Tally()
        for t in delta.values():
            total = total.plus(t)
        per_input = " ".join(f"{k}:{t.in_}->{t.out}" + (f"(lost {t.lost})" if t.lost else "")
                             + (f"(dup {t.duplicated})" if t.duplicated else "") for k, t in delta.items())
        row = FaultRow(fault, total.in_, total.out, total.lost, total.duplicated, total.repeats, total.dead_lettered,
                       recovery_s, wall_s, (per_input + ("; " + detail if detail else "")).strip())
        REPORT.rows.append(row)
        return row

    return record
