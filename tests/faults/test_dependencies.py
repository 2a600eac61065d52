"""Slow and flaky dependencies, under load: the broker away for 30 s, the object store away, PostgreSQL restarted
cleanly. Nobody restarts the services: they must retry with backoff, say they are unhealthy in `claimsctl status`
while it lasts, and recover on their own (same pids before and after)."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from claims_shared.clients.aws import s3_client
from tests.conftest import claimsctl
from tests.faults.conftest import FaultStack, RecordRow
from tests.faults.scenario import run_fault
from tests.document_samples import simulator_scan

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SERVICES = ("cdc-normalizer", "telematics-scorer")
BROKER_OUTAGE_S = 30.0
OBJECTSTORE_OUTAGE_S = 15.0


def _status(fs: FaultStack) -> dict[str, dict]:
    result = claimsctl(fs.settings, "status", "--json", timeout=60)
    assert result.returncode == 0, result.stderr[-1000:]
    return {c["name"]: c for c in json.loads(result.stdout)["components"]}


def _pids(fs: FaultStack) -> dict[str, int | None]:
    return {c.name: c.status().pid for c in fs.stack.components}


class StatusSampler:
    """`claimsctl status --json` every few seconds in the background; keeps what each service reported."""

    def __init__(self, fs: FaultStack) -> None:
        self.fs = fs
        self.samples: list[dict[str, dict]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(_status(self.fs))
            except Exception:  # noqa: BLE001 - a status call that fails is not a sample
                pass
            self._stop.wait(3)

    def __enter__(self) -> StatusSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(90)

    def reported_unhealthy(self, name: str) -> bool:
        return any(s.get(name, {}).get("healthy") is False for s in self.samples)


def _outage(fs: FaultStack, component: str, seconds: float, sampler_box: dict) -> float:
    pids = _pids(fs)
    with StatusSampler(fs) as sampler:
        fs.component(component).stop()
        time.sleep(seconds)
        ended = time.monotonic()
        fs.component(component).start()  # only the dependency: the services must find it again by themselves
    sampler_box.update(sampler=sampler, pids=pids)
    return ended


def _assert_no_intervention_and_healthy_after(fs: FaultStack, box: dict, *, unhealthy_during: tuple[str, ...]) -> None:
    after = _pids(fs)
    restarted = [n for n, pid in box["pids"].items() if n in SERVICES + ("connect", "document-lambda")
                 and pid != after[n]]
    assert not restarted, f"components died or were restarted during the outage: {restarted}"
    silent = [n for n in unhealthy_during if not box["sampler"].reported_unhealthy(n)]
    assert not silent, (f"`claimsctl status` never reported {silent} unhealthy during the outage; samples: "
                        f"{[{n: s.get(n, {}).get('healthy') for n in SERVICES} for s in box['sampler'].samples]}")
    deadline = time.monotonic() + 120
    while True:
        status = _status(fs)
        sick = {n: status[n]["health_detail"] for n in SERVICES if status[n]["healthy"] is not True}
        if not sick or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not sick, f"still unhealthy 120 s after the outage: {sick}"


def test_broker_away_30s_services_retry_report_unhealthy_and_recover(fault_stack: FaultStack,
                                                                     record_row: RecordRow) -> None:
    box: dict = {}
    run_fault(fault_stack, record_row, "broker unavailable 30 s",
              lambda: _outage(fault_stack, "broker", BROKER_OUTAGE_S, box), load_s=50)
    _assert_no_intervention_and_healthy_after(fault_stack, box, unhealthy_during=SERVICES)


def test_object_store_away_lambda_retries_and_nothing_is_lost(fault_stack: FaultStack,
                                                              record_row: RecordRow) -> None:
    fs = fault_stack
    box: dict = {}
    lambda_host = fs.component("document-lambda").impl
    before = lambda_host.counters()

    def outage_with_documents_in_flight() -> float:
        # Scans (seconds of OCR each) uploaded just before: the Lambda is reading them when S3 goes away, so
        # its S3 calls fail, it reports those messages as failed, and they come back after the visibility timeout.
        s3 = s3_client(fs.settings)
        prefix = f"{fs.settings.landing_incoming_prefix}_fault-s3-outage/{uuid.uuid4().hex[:8]}/"
        for i in range(8):
            body, _ = simulator_scan(900 + i, "JPEG")
            s3.put_object(Bucket=fs.settings.landing_bucket, Key=f"{prefix}scan-{i}.jpg", Body=body)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and lambda_host.counters().get("messages", 0) <= before.get("messages", 0):
            time.sleep(0.2)
        return _outage(fs, "objectstore", OBJECTSTORE_OUTAGE_S, box)

    row = run_fault(fs, record_row, "object store unavailable 15 s", outage_with_documents_in_flight, load_s=40)
    # The broker keeps its log in the object store, so the services may notice too; nobody restarts anything.
    _assert_no_intervention_and_healthy_after(fs, box, unhealthy_during=())
    after = lambda_host.counters()
    received = after.get("messages", 0) - before.get("messages", 0)
    deleted = after.get("deleted", 0) - before.get("deleted", 0)
    row.detail += f"; Lambda: {received} messages received, {deleted} deleted, {received - deleted} retried"
    # The local broker answers UNKNOWN_SERVER_ERROR to produces while its store is away; Connect's producer does not
    # retry that error and the task fails: the runner restarts it (README, Reliability). Say how often, and whether
    # `claimsctl status` showed it.
    connect_status = json.loads(fs.component("connect").impl.status_file.read_text())
    samples = [s["connect"] for s in box["sampler"].samples if "connect" in s]
    row.detail += (f"; Connect: {connect_status['restarts']} task restarts, reported unhealthy in "
                   f"{sum(1 for c in samples if c.get('healthy') is False)} of {len(samples)} status samples")
    assert received > deleted, "no notification was retried: the outage did not hit the Lambda mid-work"


def test_postgres_clean_restart_connect_resumes(fault_stack: FaultStack, record_row: RecordRow) -> None:
    box: dict = {}

    def restart_postgres() -> float:
        pids = _pids(fault_stack)
        fault_stack.component("postgres").stop()
        time.sleep(2)
        ended = time.monotonic()
        fault_stack.component("postgres").start()
        box.update(pids=pids)
        return ended

    run_fault(fault_stack, record_row, "postgres clean restart", restart_postgres)
    assert fault_stack.component("connect").status().pid == box["pids"]["connect"], "Connect had to be restarted"
