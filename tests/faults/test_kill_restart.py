"""Kill -9 and restart, each component in turn, in the middle of a simulated run (CDC + readings + files).

Each test: SIGKILL the component's process group (no flush, no commit, no clean shutdown), restart it with `up`
(what an orchestrator does), and check with the ledgers that nothing was lost or doubled and how long it took
until new input flowed through every path again.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import FaultStack, RecordRow
from tests.faults.recovery import PATHS
from tests.faults.scenario import run_fault

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def kill_and_restart(fs: FaultStack, name: str, down_s: float = 2.0):  # noqa: ANN201
    def inject() -> float:
        fs.kill9(name)
        time.sleep(down_s)
        ended = time.monotonic()
        fs.restart()
        return ended
    return inject


@pytest.mark.ci_subset
def test_kill9_cdc_normalizer_loses_and_doubles_nothing(fault_stack: FaultStack, record_row: RecordRow) -> None:
    run_fault(fault_stack, record_row, "kill -9 cdc-normalizer", kill_and_restart(fault_stack, "cdc-normalizer"))


def test_kill9_telematics_scorer_loses_and_doubles_nothing(fault_stack: FaultStack, record_row: RecordRow) -> None:
    run_fault(fault_stack, record_row, "kill -9 telematics-scorer",
              kill_and_restart(fault_stack, "telematics-scorer"))


def test_kill9_connect_loses_and_doubles_nothing(fault_stack: FaultStack, record_row: RecordRow) -> None:
    run_fault(fault_stack, record_row, "kill -9 connect", kill_and_restart(fault_stack, "connect"))


def test_kill9_postgres_loses_and_doubles_nothing(fault_stack: FaultStack, record_row: RecordRow) -> None:
    run_fault(fault_stack, record_row, "kill -9 postgres", kill_and_restart(fault_stack, "postgres"))


def test_kill9_broker_loses_and_doubles_nothing(fault_stack: FaultStack, record_row: RecordRow) -> None:
    run_fault(fault_stack, record_row, "kill -9 broker", kill_and_restart(fault_stack, "broker"))


def test_kill9_lambda_host_loses_and_doubles_nothing(fault_stack: FaultStack, record_row: RecordRow) -> None:
    run_fault(fault_stack, record_row, "kill -9 document-lambda host", kill_and_restart(fault_stack, "document-lambda"))


def test_kill9_lambda_function_is_replaced_and_loses_nothing(fault_stack: FaultStack,
                                                             record_row: RecordRow) -> None:
    def inject() -> float:
        fault_stack.kill9_lambda_function()  # the host must notice and start a new execution environment
        return time.monotonic()

    run_fault(fault_stack, record_row, "kill -9 lambda function process", inject)


def test_kill9_delta_compactor_loses_and_doubles_nothing_in_the_lake(fault_stack: FaultStack,
                                                                      record_row: RecordRow) -> None:
    """Killed mid-batch (tables written, offsets not yet): the restart re-reads from the recorded offsets, and the
    lake still equals PostgreSQL (`claimsctl reconcile`) with every append-table key exactly once (LakeLedger)."""
    run_fault(fault_stack, record_row, "kill -9 delta-compactor", kill_and_restart(fault_stack, "delta-compactor"),
              paths=(*PATHS, "lake"))


def test_kill9_object_ingestor_links_every_document_once(fault_stack: FaultStack, record_row: RecordRow) -> None:
    """The evidence loop rebuilds its state from the topics on start and reads back the links it published: every
    document whose claim exists ends up linked, and no link is published twice in a row."""
    docs = fault_stack.documents
    repeats_before = docs.link_repeats
    run_fault(fault_stack, record_row, "kill -9 object-ingestor", kill_and_restart(fault_stack, "object-ingestor"))
    repeated = docs.link_repeat_ids[repeats_before:]
    assert not repeated, f"links published again unchanged after the restart: {repeated[:10]}"
