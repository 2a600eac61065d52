"""`claimsctl simulate`: drive the planners on a simulated clock and write to PostgreSQL, Kafka and S3.

Time model: simulated time starts at `start_time` (default: wall-clock now truncated to the minute, UTC) and
advances in ticks of 1/telematics_hz seconds. CDC action k happens at simulated second k/rate; readings are
taken at every tick. Every generated timestamp comes from this clock, never from the wall clock, so the same
seed, start_time, duration, rate, vehicles and flags give the same actions, readings and files. The real-time
pacer only sleeps (when the simulation runs ahead of the wall clock); it never changes what is produced.
On a database that already holds rows, unique keys continue after the existing ones and the RNG is salted with
those starting points (see `SequenceBases`), so a re-run does not collide and draws different names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any

from claims_shared.settings import PlatformSettings
from claimsctl.simulator.actions import (
    AddPayment, CorrectClaim, DeleteDraft, FileClaim, NewPolicyholder, ReassignAdjuster, TransitionClaim,
    UpdateCustomer,
)
from claimsctl.simulator.entities import ADJUSTERS
from claimsctl.simulator.landing import LandingPlanner, LandingUploader
from claimsctl.simulator.planner import ClaimPlanner, SequenceBases, device_ids_for
from claimsctl.simulator.telematics import Fleet, TelematicsConfig

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5


@dataclass
class SimulationCounters:
    """What a run did so far; `progress` callbacks receive the live object."""

    actions: int = 0
    customers: int = 0
    policies: int = 0
    vehicles: int = 0
    telematics_vehicles: int = 0
    drivers: int = 0
    claims_created: int = 0
    drafts_created: int = 0
    drafts_deleted: int = 0
    claims_from_trace: int = 0
    inconsistent_claims: int = 0
    status_changes: int = 0
    claims_closed: int = 0
    payments: int = 0
    assignments: int = 0
    corrections: int = 0
    customer_updates: int = 0
    readings: int = 0
    crashes: int = 0
    files_uploaded: int = 0
    bytes_uploaded: int = 0
    invalid_invoice_rows: int = 0
    simulated_s: float = 0.0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def count(self, action: Any) -> None:
        """Add one planned action to the counters."""
        self.actions += 1
        if isinstance(action, NewPolicyholder):
            self.customers += 1
            self.policies += 1
            self.vehicles += len(action.vehicles)
            self.telematics_vehicles += sum(1 for v in action.vehicles if v.telematics_device_id)
            self.drivers += len(action.drivers)
        elif isinstance(action, FileClaim):
            self.claims_created += 1
            self.drafts_created += action.claim.status == "draft"
            self.claims_from_trace += action.from_trace
            self.inconsistent_claims += action.inconsistent_with_trace
        elif isinstance(action, DeleteDraft):
            self.drafts_deleted += 1
        elif isinstance(action, TransitionClaim):
            self.status_changes += 1
            self.claims_closed += action.to_status == "closed"
            self.assignments += len(action.assign)
        elif isinstance(action, AddPayment):
            self.payments += 1
        elif isinstance(action, ReassignAdjuster):
            self.assignments += 1
        elif isinstance(action, CorrectClaim):
            self.corrections += 1
        elif isinstance(action, UpdateCustomer):
            self.customer_updates += 1


def default_start_time() -> datetime:
    """Wall-clock now truncated to the minute (UTC): timestamps look current, and re-runs within a minute match."""
    return datetime.now(timezone.utc).replace(second=0, microsecond=0)


class _ReadingSink:
    """Encodes readings to Avro and produces them keyed by device id, polling in batches."""

    def __init__(self, settings: PlatformSettings) -> None:
        from claims_shared.clients.kafka import producer
        from claims_shared.contracts.avro import SCHEMA_HEADER, encode
        from claims_shared.contracts.topics import TELEMATICS_READINGS

        self._producer = producer(settings, **{"linger.ms": 50, "batch.num.messages": 10000,
                                              "queue.buffering.max.messages": 500000})
        self._encode = encode
        self._topic = TELEMATICS_READINGS
        self._headers = [(SCHEMA_HEADER, b"telematics_reading.v1")]
        self._errors: list[str] = []

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def send(self, readings: list[dict[str, Any]]) -> None:
        produce, encode, topic, headers = self._producer.produce, self._encode, self._topic, self._headers
        for r in readings:
            value = encode("telematics_reading.v1", r)
            while True:
                try:
                    produce(topic, value=value, key=r["vehicle_id"].encode(), headers=headers,
                            on_delivery=self._on_delivery)
                    break
                except BufferError:
                    self._producer.poll(0.05)
        self._producer.poll(0)
        self._raise_errors()

    def _raise_errors(self) -> None:
        if self._errors:
            raise RuntimeError(f"telematics produce failed ({len(self._errors)} errors), first: {self._errors[0]}; "
                               "is the broker up (CLAIMS_KAFKA_BOOTSTRAP)?")

    def close(self) -> None:
        remaining = self._producer.flush(30)
        self._raise_errors()
        if remaining:
            raise RuntimeError(f"{remaining} telematics readings were not delivered within 30 s")


def run_simulation(
    settings: PlatformSettings,
    *,
    duration_s: float,
    seed: int,
    rate: float,
    cdc: bool = True,
    telematics: bool = True,
    files: bool = True,
    vehicles: int = 200,
    telematics_hz: float = 1.0,
    progress: Callable[[SimulationCounters], None] | None = None,
    start_time: datetime | None = None,
    realtime: bool = True,
) -> SimulationCounters:
    """Run the simulation for `duration_s` simulated seconds; returns the counters.

    rate: CDC actions per simulated second (also drives the claims that cause landing files).
    realtime: pace to the wall clock (False runs as fast as possible, same content).
    """
    counters = SimulationCounters()
    start = start_time or default_start_time()
    start_ms = int(start.timestamp() * 1000)
    db = None
    sink = None
    uploader = None
    try:
        if cdc:
            from claimsctl.simulator.database import ClaimsDatabase

            db = ClaimsDatabase.connect(settings.pg_dsn)
            bases = db.sequence_bases()
            adjuster_ids = db.ensure_adjusters()
        else:
            bases, adjuster_ids = SequenceBases(), list(range(1, len(ADJUSTERS) + 1))
        log.info("simulation start=%s seed=%s bases=%s", start.isoformat(), seed, bases)

        device_ids = device_ids_for(bases, vehicles if telematics else 0)
        fleet = None
        if telematics and device_ids:
            fleet = Fleet(device_ids, seed=f"claims-simulator/{seed}/{bases.salt()}/fleet",
                          config=TelematicsConfig(hz=telematics_hz))
            sink = _ReadingSink(settings)
        # Without CDC the claim planner still runs (pure) when files need claims to document.
        planner = ClaimPlanner(seed=seed, start=start, bases=bases, adjuster_ids=adjuster_ids,
                               device_ids=device_ids, trace=fleet) if (cdc or files) and rate > 0 else None
        landing = None
        if files and planner is not None:
            from claims_shared.clients.aws import s3_client

            landing = LandingPlanner(seed=f"{seed}/{bases.salt()}")
            uploader = LandingUploader(s3_client(settings), settings.landing_bucket)
            uploader.check_bucket()

        tick_s = 1.0 / telematics_hz if fleet is not None else 0.1
        n_ticks = int(round(duration_s / tick_s))
        wall0 = time.monotonic()
        next_progress = wall0
        action_no = 0
        for tick in range(n_ticks):
            tick_start = tick * tick_s
            tick_end = tick_start + tick_s
            if fleet is not None and sink is not None:
                readings = fleet.step(start_ms + int(round(tick_start * 1000)))
                sink.send(readings)
                counters.readings += len(readings)
                counters.crashes = fleet.crash_count
                if planner is None:
                    fleet.drain_crashes()
            while planner is not None and action_no / rate < tick_end and action_no / rate < duration_s:
                now_s = action_no / rate
                action = planner.next_action(now_s)
                action_no += 1
                if db is not None:
                    db.apply(action)
                counters.count(action)
                if landing is not None and uploader is not None:
                    uploader.submit(landing.observe(action))
            if landing is not None and uploader is not None:
                uploader.submit(landing.due_batches(tick_end, start + timedelta(seconds=tick_end)))
                counters.files_uploaded = uploader.uploaded
                counters.bytes_uploaded = uploader.bytes
                counters.invalid_invoice_rows = landing.invalid_rows
            counters.simulated_s = tick_end
            now = time.monotonic()
            counters.elapsed_s = now - wall0
            if realtime and counters.elapsed_s < tick_end:
                time.sleep(tick_end - counters.elapsed_s)
            if progress is not None and now >= next_progress:
                progress(counters)
                next_progress = now + PROGRESS_EVERY_S
    finally:
        if uploader is not None:
            uploader.close()
            counters.files_uploaded = uploader.uploaded
        if sink is not None:
            sink.close()
        if db is not None:
            db.close()
    counters.elapsed_s = time.monotonic() - wall0 if "wall0" in locals() else 0.0
    if progress is not None:
        progress(counters)
    return counters
