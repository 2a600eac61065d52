"""Simulator load in the background while a fault happens: CDC + landing files, and telematics readings.

Two threads, because the inputs fail differently: claims traffic writes PostgreSQL and S3 (a PostgreSQL or object
store fault breaks a run), readings go to the broker through a buffering producer (which rides out a broker
outage). The CDC/files thread runs the simulator in short chunks and starts a new chunk after a failed one, the way
a real application keeps writing after its database came back; a half-applied chunk is fine because the ledgers
compare final states, not planned actions.

Size: `CLAIMS_FAULTS_SCALE` (default 1) multiplies the rate and the number of vehicles. At scale 1 a fault sees about
a thousand source changes, a couple of thousand readings and a few dozen files; the issue's "100k source changes"
per fault is `CLAIMS_FAULTS_SCALE=100` with `make test-faults` (hours on a 2-core machine, mostly OCR).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from claims_shared.settings import PlatformSettings
from claimsctl.simulator.run import run_simulation

log = logging.getLogger("tests.faults.load")

SCALE = float(os.environ.get("CLAIMS_FAULTS_SCALE", "1"))
CDC_RATE = 8.0 * SCALE          # simulator actions per second (each is 1-4 row changes, and some claims bring files)
VEHICLES = int(40 * SCALE)     # readings per second at 1 Hz
CHUNK_S = 8.0                  # one simulator run of the CDC/files thread

_last_telematics_start = datetime(2000, 1, 1, tzinfo=timezone.utc)
_start_lock = threading.Lock()


def telematics_start(duration_s: float) -> datetime:
    """Each load's readings start after the previous load's last one: the fleet's vehicles are the same every
    time (no database bases without CDC), and a reading at a time already scored would be dropped as late."""
    global _last_telematics_start
    with _start_lock:
        start = max(datetime.now(timezone.utc).replace(microsecond=0), _last_telematics_start)
        _last_telematics_start = start + timedelta(seconds=duration_s + 1)
        return start


@dataclass
class Load:
    """A running load; `stop()` ends it early, `join()` waits and returns what it did."""

    settings: PlatformSettings
    duration_s: float
    seed: int
    cdc: bool = True
    files: bool = True
    telematics: bool = True
    actions: int = 0
    readings: int = 0
    files_uploaded: int = 0
    failed_chunks: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        if self.cdc or self.files:
            self._threads.append(threading.Thread(target=self._claims_traffic, name="load-cdc", daemon=True))
        if self.telematics:
            self._threads.append(threading.Thread(target=self._readings, name="load-telematics", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float = 600) -> Load:
        for t in self._threads:
            t.join(timeout_s)
        return self

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _claims_traffic(self) -> None:
        deadline = time.monotonic() + self.duration_s
        chunk = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            chunk += 1
            try:
                counters = run_simulation(self.settings, duration_s=min(CHUNK_S, deadline - time.monotonic()),
                                          seed=self.seed * 1000 + chunk, rate=CDC_RATE, cdc=self.cdc,
                                          telematics=False, files=self.files, vehicles=0)
                self.actions += counters.actions
                self.files_uploaded += counters.files_uploaded
            except Exception as exc:  # noqa: BLE001 - the fault under test; keep writing once it is over
                self.failed_chunks += 1
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                self._stop.wait(1.0)

    def _readings(self) -> None:
        try:
            counters = run_simulation(self.settings, duration_s=self.duration_s, seed=self.seed, rate=0, cdc=False,
                                      telematics=True, files=False, vehicles=VEHICLES,
                                      start_time=telematics_start(self.duration_s))
            self.readings += counters.readings
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(f"telematics: {type(exc).__name__}: {exc}"[:300])
