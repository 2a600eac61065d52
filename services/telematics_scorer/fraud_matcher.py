"""State of the fraud-evidence stream (pure): vehicles, trips and claims in; alert records out.

Fed by `fraud_runner.py` from three topics - `claims.cdc.vehicles.v1` (vehicle -> telematics device),
`telematics.trips.v1` (the traces) and `claims.cdc.claims.v1` (loss reports) - in any interleaving: a claim can
arrive before its vehicle or before the trips around its loss; it then waits (see fraud_evidence.py for when a rule
can be decided). Everything here is rebuilt by re-reading those topics, so nothing needs a store of its own.

Two-phase output: `collect` returns decisions without forgetting them; `confirm` marks them done once the broker
acknowledged their alerts. A failed delivery therefore repeats the decision (same deterministic alert ids) and an
alert id read back from the alerts topic at start-up is never published twice.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from claims_shared.contracts.cdc import canonical_json
from claims_shared.contracts.fraud import alert_id
from services.telematics_scorer.fraud_evidence import (
    FraudEvidenceConfig,
    LossReport,
    TraceTrip,
    assess_loss,
)

SOURCE = "telematics_scorer"


@dataclass(frozen=True)
class Decision:
    claim_id: str
    facts_key: str
    alerts: list[dict[str, Any]]
    outcome: str = "assessed"      # or "without_telematics" / "without_trace": nothing to compare with


class FraudMatcher:
    def __init__(self, config: FraudEvidenceConfig | None = None) -> None:
        self.config = config or FraudEvidenceConfig()
        self.counters: Counter = Counter()
        self._device_of: dict[str, str | None] = {}          # vehicle_id -> device id (None: no black box)
        self._trips: dict[str, list[TraceTrip]] = {}          # device -> trips sorted by start
        self._trip_ids: set[str] = set()
        self._partition_high: dict[int, int] = {}             # trips partition -> newest trip end seen (ms)
        self._pending: dict[str, LossReport] = {}             # claim_id -> loss report waiting for a decision
        self._decided: dict[str, str] = {}                    # claim_id -> facts key already decided
        self._published: set[str] = set()

    # -- inputs -------------------------------------------------------------------------------------------------
    def add_vehicle_change(self, change: Mapping[str, Any]) -> None:
        """A decoded `claims.cdc.vehicles.v1` change (decode_change shape)."""
        vehicle_id = str(change["key"].get("vehicle_id", ""))
        if change["op"] == "d":
            self._device_of.pop(vehicle_id, None)
        elif change["row"] is not None and "telematics_device_id" not in change["unchanged"]:
            self._device_of[vehicle_id] = change["row"].get("telematics_device_id")

    def add_trip(self, partition: int, record: Mapping[str, Any]) -> None:
        """A `telematics.trips.v1` record (epoch-ms timestamps) read from `partition`."""
        trip = TraceTrip.from_record(record)
        self._partition_high[partition] = max(self._partition_high.get(partition, -(2 ** 62)), trip.end_ms)
        if trip.trip_id in self._trip_ids:
            self.counters["trips_repeated"] += 1
            return
        self._trip_ids.add(trip.trip_id)
        trips = self._trips.setdefault(record["vehicle_id"], [])
        bisect.insort(trips, trip, key=lambda t: t.start_ms)
        self.counters["trips"] += 1

    def add_claim_change(self, change: Mapping[str, Any]) -> None:
        """A decoded `claims.cdc.claims.v1` change. Only a change of the loss facts (re)opens a claim."""
        claim_id = str(change["key"].get("claim_id", ""))
        if change["op"] in ("d", "t") or change["row"] is None:
            self._pending.pop(claim_id, None)
            return
        row = change["row"]
        if any(c in change["unchanged"] for c in ("loss_time", "loss_lat", "loss_lon", "vehicle_id", "loss_type")):
            return  # TOAST-unchanged columns are never these scalars; be safe and keep what we had
        loss = LossReport.from_row(row, change["source_ts_ms"])
        if loss is None or loss.vehicle_id is None:
            self.counters["claims_without_vehicle"] += 1
            return
        key = canonical_json(loss.facts())
        if self._decided.get(claim_id) == key:
            return
        self._pending[claim_id] = loss
        self.counters["claims_seen"] += 1

    def mark_published(self, alert_ids: Iterable[str]) -> None:
        """Alert ids already on the alerts topic (read back at start-up)."""
        self._published.update(alert_ids)

    # -- decisions ----------------------------------------------------------------------------------------------
    def covered_until(self, device: str) -> int:
        """Time up to which `device`'s trip list is complete: its last published trip's end, or, when every trips
        partition has moved past W, W minus the longest a trip can stay open (trips publish when they close)."""
        trips = self._trips.get(device)
        own = trips[-1].end_ms if trips else -(2 ** 62)
        if self._partition_high:
            own = max(own, min(self._partition_high.values()) - int(self.config.open_trip_horizon_s * 1000))
        return own

    def collect(self, now_ms: int) -> list[Decision]:
        """Claims whose rules are all decided, with their new alert records (not yet forgotten: see `confirm`)."""
        decisions: list[Decision] = []
        horizon = self._global_covered()
        for claim_id, loss in list(self._pending.items()):
            if loss.vehicle_id not in self._device_of:
                if horizon - loss.loss_time_ms > self.config.max_pending_s * 1000:
                    self._give_up(claim_id, "claims_vehicle_never_seen")
                continue
            device = self._device_of[loss.vehicle_id]
            trips = self._trips.get(device) if device is not None else None
            if not trips:
                # No black box, or one with no trip around the loss: once the trace is complete past the window
                # there is nothing to compare (counted); before that, its trips may still be on their way.
                if device is not None and horizon < loss.loss_time_ms + self._tolerance_ms:
                    continue
                decisions.append(Decision(claim_id, canonical_json(loss.facts()), [],
                                          "without_telematics" if device is None else "without_trace"))
                continue
            assessment = assess_loss(loss, trips, self.covered_until(device), self.config)
            if not assessment.decided:
                if horizon - loss.loss_time_ms > self.config.max_pending_s * 1000:
                    self._give_up(claim_id, "claims_undecided_given_up")
                continue
            key = canonical_json(loss.facts())
            alerts = [self._alert(loss, device, f, now_ms) for f in assessment.findings]
            decisions.append(Decision(claim_id, key, [a for a in alerts if a["alert_id"] not in self._published]))
        return decisions

    def confirm(self, decisions: Iterable[Decision]) -> None:
        """The decisions' alerts are acknowledged by the broker: forget the claims as pending."""
        for d in decisions:
            self._decided[d.claim_id] = d.facts_key
            loss = self._pending.get(d.claim_id)
            if loss is not None and canonical_json(loss.facts()) == d.facts_key:
                del self._pending[d.claim_id]
            self._published.update(a["alert_id"] for a in d.alerts)
            self.counters[f"claims_{d.outcome}"] += 1
            self.counters["alerts"] += len(d.alerts)
            for a in d.alerts:
                self.counters[f"alerts_{a['rule']}"] += 1

    def prune(self) -> None:
        """Forget trips older than the retention window behind the newest trip seen."""
        if not self._partition_high:
            return
        cutoff = max(self._partition_high.values()) - int(self.config.trace_retention_s * 1000)
        for device, trips in self._trips.items():
            old = bisect.bisect_left([t.end_ms for t in trips], cutoff)
            if old:
                for t in trips[:old]:
                    self._trip_ids.discard(t.trip_id)
                del trips[:old]
                self.counters["trips_pruned"] += old

    @property
    def _tolerance_ms(self) -> int:
        return int(self.config.time_tolerance_s * 1000)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- internals ----------------------------------------------------------------------------------------------
    def _global_covered(self) -> int:
        if not self._partition_high:
            return -(2 ** 62)
        return min(self._partition_high.values()) - int(self.config.open_trip_horizon_s * 1000)

    def _give_up(self, claim_id: str, reason: str) -> None:
        del self._pending[claim_id]
        self.counters[reason] += 1

    def _alert(self, loss: LossReport, device: str, finding: Any, now_ms: int) -> dict[str, Any]:
        return {
            "alert_id": alert_id(SOURCE, finding.rule, loss.claim_id, loss.facts()),
            "claim_id": loss.claim_id, "claim_number": loss.claim_number, "rule": finding.rule,
            "severity": finding.severity, "source": SOURCE, "summary": finding.summary,
            "evidence_json": canonical_json({**finding.evidence, "device_id": device}),
            "vehicle_id": loss.vehicle_id, "device_id": device, "loss_time": loss.loss_time_ms,
            "loss_lat": loss.lat, "loss_lon": loss.lon, "claim_change_ts": loss.change_ts_ms, "detected_at": now_ms,
        }
