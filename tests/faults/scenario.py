"""One fault under load: snapshot, start the simulator, inject, time the recovery, settle, record the row."""

from __future__ import annotations

import time
import zlib
from typing import Callable

from tests.faults.conftest import FaultRow, FaultStack, RecordRow
from tests.faults.ledger import missing_keys
from tests.faults.load import Load
from tests.faults.recovery import PATHS, wait_recovered

LOAD_S = 30.0        # simulator run per fault
INJECT_AFTER_S = 10.0


def run_fault(fs: FaultStack, record_row: RecordRow, fault: str, inject: Callable[[], float], *,
              paths: tuple[str, ...] = PATHS, load_s: float = LOAD_S, inject_after_s: float = INJECT_AFTER_S,
              files: bool = True) -> FaultRow:
    """`inject()` does the fault and returns when it ended (time.monotonic()); recovery is timed from there."""
    t0 = time.monotonic()
    before = fs.snapshot()
    load = Load(fs.settings, load_s, seed=zlib.crc32(fault.encode()) % 10_000, files=files).start()
    time.sleep(inject_after_s)
    fault_ended = inject()
    not_recovered = None
    try:
        recovery_s: float | None = wait_recovered(fs, fault_ended, paths=paths)
    except AssertionError as exc:  # still counted and reported: a row with no recovery time, then the failure
        recovery_s, not_recovered = None, exc
    load.join()
    after = fs.settle(before)
    detail = f"load: {load.actions} actions, {load.readings} readings, {load.files_uploaded} files"
    if not_recovered is not None:
        detail = f"NOT RECOVERED ({not_recovered}); " + detail
    if load.failed_chunks:
        detail += f", {load.failed_chunks} load chunks failed during the fault"
    if load.errors:
        detail += f" (first load error: {load.errors[0][:120]})"
    row = record_row(fault, before, after, recovery_s=recovery_s, wall_s=time.monotonic() - t0, detail=detail)
    assert_nothing_lost_or_doubled(fs, row)
    if not_recovered is not None:
        raise not_recovered
    return row


def assert_nothing_lost_or_doubled(fs: FaultStack, row: FaultRow) -> None:
    if row.lost or row.duplicated:
        diffs = fs.cdc.differences()[:8]
        missing = missing_keys(fs.documents)[:8]
        total, one, none, many = fs.telematics.coverage()
        raise AssertionError(
            f"{row.fault}: lost {row.lost}, duplicated {row.duplicated} ({row.detail})\n"
            f"CDC differences (first): {diffs}\nlanding objects without a document (first): {missing}\n"
            f"readings: {total} valid, {one} in one trip, {none} in none, {many} in several; "
            f"alerts doubled: {fs.telematics.duplicated_alerts()}\n"
            f"documents that must be linked and are not (first): {fs.documents.unlinked()[:8]}\n"
            f"lake (claimsctl reconcile, append tables): {fs.lake.problems()[:8]}")
