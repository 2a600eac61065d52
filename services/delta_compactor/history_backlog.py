"""Changes whose current (SCD1) rows are in the lake but whose history (SCD2) rows and Kafka offsets are not yet.

Why: readers wait for the current tables; the history stitch (read the touched keys' versions, re-stitch, MERGE) and
the offsets commit are two thirds of a batch's work. The job therefore writes a batch's current tables at once and
hands its changes here; a second thread writes the history of everything gathered, in one plan, every
`compactor_history_delay_s`, and records the offsets after it. A crash in between loses nothing: the offsets were not
recorded, so the restart reads those records again, their current MERGEs change nothing (position guard) and their
history is written then.

Thread-safe; holds only what it is given (no I/O).
"""

from __future__ import annotations

import threading
import time

from services.delta_compactor.planning import ConsumedChange


class HistoryBacklog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changes: list[ConsumedChange] = []
        self._offsets: dict[tuple[str, int], int] = {}  # (topic, partition) -> next offset, covered by this backlog
        self._oldest: float | None = None  # monotonic time the oldest change (or offset) was added

    def add(self, changes: list[ConsumedChange], offsets: dict[tuple[str, int], int]) -> None:
        """A batch whose current tables (and append tables) are written: its CDC changes and every offset it read."""
        with self._lock:
            self._changes.extend(changes)
            for tp, next_offset in offsets.items():
                self._offsets[tp] = max(self._offsets.get(tp, 0), next_offset)
            if self._oldest is None and (changes or offsets):
                self._oldest = time.monotonic()

    def take(self) -> tuple[list[ConsumedChange], dict[tuple[str, int], int]]:
        """Everything gathered (and the backlog empty): the caller writes the history, then records the offsets."""
        with self._lock:
            taken = self._changes, self._offsets
            self._changes, self._offsets, self._oldest = [], {}, None
            return taken

    def put_back(self, changes: list[ConsumedChange], offsets: dict[tuple[str, int], int]) -> None:
        """A `take` whose write failed: its changes go in front of what arrived since (order matters only for
        readability: the planner orders by source position)."""
        with self._lock:
            self._changes[:0] = changes
            for tp, next_offset in offsets.items():
                self._offsets[tp] = max(self._offsets.get(tp, 0), next_offset)
            if changes or offsets:
                self._oldest = time.monotonic() if self._oldest is None else self._oldest

    def __len__(self) -> int:
        with self._lock:
            return len(self._changes)

    def age_s(self) -> float:
        """Seconds since the oldest unwritten change arrived (0 when empty)."""
        with self._lock:
            return 0.0 if self._oldest is None else time.monotonic() - self._oldest

    def empty(self) -> bool:
        with self._lock:
            return self._oldest is None
