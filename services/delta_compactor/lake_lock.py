"""The lake maintenance lock: `claimsctl maintain` and the compactor never rewrite the same tables at once.

A POSIX advisory lock (`flock`) on one file. The compactor holds it while it writes a batch; `claimsctl maintain` holds
it while it compacts, Z-orders, vacuums and checkpoints one table, so the compactor waits between its batches (at
most one table's maintenance) and maintenance waits for the batch in flight. Both run on the machine of the embedded
stack (maintenance is embedded-only); a production deployment schedules maintenance between compactor runs or uses
Delta's own conflict detection (OPTIMIZE only conflicts with concurrent deletes/updates of the same files, and the
compactor retries a failed batch).

The kernel drops the lock when its holder dies (kill -9 included): no stale lock files.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class LakeLockTimeout(TimeoutError):
    """Another process held the lake lock for too long (a long maintenance run?): retry later."""


class LakeLock:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextmanager
    def held(self, timeout_s: float | None = None) -> Iterator[None]:
        """Hold the lock for the `with` block; waits for it (forever when `timeout_s` is None)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise LakeLockTimeout(f"the lake lock {self.path} is held by another process") from None
                    time.sleep(0.05)
            try:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def lake_lock_path(state_dir: Path) -> Path:
    return Path(state_dir) / "run" / "lake.lock"
