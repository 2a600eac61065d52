"""Fraud evidence from telematics: does a claim's reported loss (time, place, kind) match the vehicle's trace? (pure)

The trace of a vehicle is the sequence of its published trips (`telematics.trips.v1`: start/end, a path thinned to
one fix per 15 s, safety events). Between two trips the vehicle was parked; where, is the previous trip's end
(when the next trip starts somewhere else, more than `far_km` away, the vehicle moved unobserved and that gap
tells nothing). Reported loss times are approximate, so every rule looks at a window of ±`time_tolerance_s`
around the reported time.

Rules (each is a separate alert):
- `telematics_far_from_loss_location` (high): every known position of the vehicle in the window is more than
  `far_km` from the reported place.
- `telematics_parked_at_loss_time` (medium, collisions only): the vehicle did not drive at all in the window.
  A parked car can be hit, so this is a flag for a handler, not a verdict.
- `telematics_no_impact_near_loss_time` (medium, collisions only): the vehicle drove in the window but recorded
  no impact-like event there (a crash, or a harsh event peaking at ≥ `impact_like_g`).

Deciding early and late. A rule is *cleared* as soon as positive evidence is known (a position near the place, a
trip in the window, an impact) - more trips can only add evidence, never remove it. A rule *fires* only once the
trace is complete for the whole window: trips are published when they close, so a trip covering the reported
time may still be open. `covered_until_ms` is the time up to which the vehicle's trip list is known to be
complete (see `FraudMatcher.covered_until`); until it passes the window's end, an unresolved rule waits. A window
with a blind part (before the device's first known trip, or a gap after which the vehicle reappeared elsewhere)
can clear rules but never fire them: absence of evidence there is not evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.telematics_scorer.readings import haversine_m

FAR = "telematics_far_from_loss_location"
PARKED = "telematics_parked_at_loss_time"
NO_IMPACT = "telematics_no_impact_near_loss_time"
IMPACT_EVENT_TYPES = ("crash", "harsh_braking", "harsh_acceleration", "harsh_cornering")


@dataclass(frozen=True)
class FraudEvidenceConfig:
    """Knobs of the telematics fraud rules (times in seconds)."""

    far_km: float = 3.0                    # reported places are addresses or pins: a few km of slack
    time_tolerance_s: float = 1800.0       # reported loss times are often "around 3 pm": ±30 min
    impact_like_g: float = 0.5             # harsh events this strong count as a possible impact (crash always does)
    collision_loss_types: tuple[str, ...] = ("collision",)
    # A trip is published only when it closes: after trip_gap_s of silence, or cut at the scorer's 6 h buffer cap.
    # So once every partition's trips have reached time W, the trips of any vehicle are complete up to
    # W - open_trip_horizon_s.
    open_trip_horizon_s: float = 6 * 3600 + 300.0
    trace_retention_s: float = 35 * 86400.0  # trips older than this (behind the newest trip) are forgotten
    max_pending_s: float = 7 * 86400.0       # a claim still undecided this long after its window is given up


def fraud_evidence_config(overrides: Mapping[str, Any] | None = None) -> FraudEvidenceConfig:
    """FraudEvidenceConfig with `overrides` (settings.fraud_evidence_overrides) applied; unknown names are an error."""
    from dataclasses import fields

    known = {f.name for f in fields(FraudEvidenceConfig)}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise ValueError(f"unknown fraud evidence setting(s) {unknown}; valid names: {sorted(known)}")
    return FraudEvidenceConfig(**(overrides or {}))


@dataclass(frozen=True)
class LossReport:
    """What a claim says about its loss (from `claims.cdc.claims.v1`)."""

    claim_id: str
    claim_number: str | None
    vehicle_id: str | None
    loss_time_ms: int
    lat: float | None
    lon: float | None
    loss_type: str
    change_ts_ms: int

    def facts(self) -> dict[str, Any]:
        """The fields the rules look at; a change to any of them re-opens the claim (and gives new alert ids)."""
        return {"vehicle_id": self.vehicle_id, "loss_time_ms": self.loss_time_ms, "lat": self.lat, "lon": self.lon,
                "loss_type": self.loss_type}

    @classmethod
    def from_row(cls, row: Mapping[str, Any], change_ts_ms: int) -> "LossReport | None":
        """From a normalized claims row (canonical values); None when it has no usable loss time."""
        from datetime import datetime

        loss_time = row.get("loss_time")
        if not loss_time:
            return None
        ms = int(datetime.fromisoformat(loss_time.replace("Z", "+00:00")).timestamp() * 1000)
        return cls(claim_id=str(row["claim_id"]), claim_number=row.get("claim_number"),
                   vehicle_id=row.get("vehicle_id"), loss_time_ms=ms, lat=row.get("loss_lat"),
                   lon=row.get("loss_lon"), loss_type=row.get("loss_type") or "", change_ts_ms=change_ts_ms)


@dataclass(frozen=True)
class TraceTrip:
    """A published trip, reduced to what the rules need."""

    trip_id: str
    start_ms: int
    end_ms: int
    path: tuple[tuple[int, float, float, float], ...]  # (epoch ms, lat, lon, speed m/s), time order
    events: tuple[tuple[str, int, int, float, float, float], ...]  # (type, start ms, end ms, peak g, lat, lon)

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> "TraceTrip":
        """From a `telematics_trip.v1` record with epoch-ms timestamps."""
        path = tuple((p["ts"], p["lat"], p["lon"], p["speed_mps"]) for p in r.get("path") or ())
        if not path:  # a record written before trips carried a path: its two ends are all we know
            path = ((r["start_ts"], r["start_lat"], r["start_lon"], 0.0), (r["end_ts"], r["end_lat"], r["end_lon"], 0.0))
        events = tuple((e["type"], e["start_ts"], e["end_ts"], e["peak_g"], e["lat"], e["lon"]) for e in r["events"])
        return cls(r["trip_id"], r["start_ts"], r["end_ts"], path, events)

    @property
    def start_point(self) -> tuple[float, float]:
        return self.path[0][1], self.path[0][2]

    @property
    def end_point(self) -> tuple[float, float]:
        return self.path[-1][1], self.path[-1][2]

    def position_at(self, ts: int) -> tuple[float, float]:
        """Linear interpolation between the path fixes around `ts` (clamped to the trip)."""
        path = self.path
        if ts <= path[0][0]:
            return path[0][1], path[0][2]
        for (t0, la0, lo0, _), (t1, la1, lo1, _) in zip(path, path[1:]):
            if t0 <= ts <= t1:
                f = 0.0 if t1 == t0 else (ts - t0) / (t1 - t0)
                return la0 + f * (la1 - la0), lo0 + f * (lo1 - lo0)
        return path[-1][1], path[-1][2]


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    summary: str
    evidence: dict[str, Any]


@dataclass
class Assessment:
    """Outcome of the rules for one loss report: `decided` once no rule is waiting for more trace."""

    decided: bool
    findings: list[Finding] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


def km_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(haversine_m(a[0], a[1], b[0], b[1])) / 1000.0


def _iso(ms: int | None) -> str | None:
    from datetime import datetime, timezone

    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class _Seen:
    """A known position of the vehicle during the window: where, when (a span for parking), and how it was known."""

    lat: float
    lon: float
    from_ms: int
    to_ms: int
    how: str            # "driving" (a path fix) or "parked"
    trip_id: str | None


def _known_positions(trips: Sequence[TraceTrip], lo: int, hi: int, covered_until: int,
                     far_km: float) -> tuple[list[_Seen], bool]:
    """Positions known in [lo, hi], and whether part of the window is blind: before the first trip known, or in a
    gap after which the vehicle reappeared somewhere else (it moved with the device silent)."""
    seen: list[_Seen] = []
    spans_lo = False
    blind = False
    for i, trip in enumerate(trips):
        nxt = trips[i + 1] if i + 1 < len(trips) else None
        if trip.end_ms >= lo and trip.start_ms <= hi:
            for ts, lat, lon, _ in trip.path:
                if lo <= ts <= hi:
                    seen.append(_Seen(lat, lon, ts, ts, "driving", trip.trip_id))
            for ts in (max(lo, trip.start_ms), min(hi, trip.end_ms)):
                lat, lon = trip.position_at(ts)
                seen.append(_Seen(lat, lon, ts, ts, "driving", trip.trip_id))
        if trip.start_ms <= lo:
            spans_lo = True
        # The parked gap after it, up to the next trip (after the last one: up to what is known to be complete).
        gap_from = trip.end_ms
        gap_to = nxt.start_ms if nxt is not None else covered_until
        if gap_to < lo or gap_from > hi or gap_to <= gap_from:
            continue
        if nxt is not None and km_between(trip.end_point, nxt.start_point) > far_km:
            blind = True
            continue
        lat, lon = trip.end_point
        seen.append(_Seen(lat, lon, max(gap_from, lo), min(gap_to, hi), "parked", trip.trip_id))
    return seen, blind or not spans_lo


def assess_loss(loss: LossReport, trips: Sequence[TraceTrip], covered_until_ms: int,
                config: FraudEvidenceConfig) -> Assessment:
    """Apply the rules to one loss report against a vehicle's trips (sorted by start) complete up to
    `covered_until_ms`. Undecided rules make the assessment undecided (ask again when more trace is known)."""
    tol = int(config.time_tolerance_s * 1000)
    lo, hi = loss.loss_time_ms - tol, loss.loss_time_ms + tol
    seen, blind = _known_positions(trips, lo, hi, covered_until_ms, config.far_km)
    # Rules fire only on a complete trace of the whole window with no blind part; they clear on any evidence.
    complete = covered_until_ms >= hi
    can_fire = complete and not blind
    in_window = [t for t in trips if t.end_ms >= lo and t.start_ms <= hi]
    collision = loss.loss_type in config.collision_loss_types
    base = {"loss_time": _iso(loss.loss_time_ms), "loss_lat": loss.lat, "loss_lon": loss.lon,
            "window_s": config.time_tolerance_s, "trips_in_window": [t.trip_id for t in in_window]}
    out = Assessment(decided=True)

    def undecided() -> None:
        out.decided = False

    # Far from the reported place.
    if loss.lat is not None and loss.lon is not None and seen:
        distances = [(km_between((s.lat, s.lon), (loss.lat, loss.lon)), s) for s in seen]
        nearest_km, nearest = min(distances, key=lambda d: d[0])
        if nearest_km <= config.far_km:
            out.cleared.append(FAR)
        elif can_fire:
            out.findings.append(Finding(FAR, "high",
                f"The vehicle was never closer than {nearest_km:.1f} km to the reported loss location within "
                f"±{config.time_tolerance_s / 60:.0f} min of the reported time.",
                {**base, "nearest_km": round(nearest_km, 3), "nearest_lat": nearest.lat, "nearest_lon": nearest.lon,
                 "nearest_from": _iso(nearest.from_ms), "nearest_to": _iso(nearest.to_ms), "nearest_state": nearest.how,
                 "far_km": config.far_km}))
        elif not complete:
            undecided()
    elif loss.lat is not None and not complete:
        undecided()

    if collision:
        # Parked the whole window.
        spot = next((s for s in seen if s.how == "parked"), None)
        if in_window:
            out.cleared.append(PARKED)
        elif can_fire and spot is not None:
            before = [t for t in trips if t.end_ms < lo]
            after = [t for t in trips if t.start_ms > hi]
            out.findings.append(Finding(PARKED, "medium",
                "The vehicle did not move within "
                f"±{config.time_tolerance_s / 60:.0f} min of the reported collision.",
                {**base, "parked_since": _iso(before[-1].end_ms) if before else None,
                 "parked_until": _iso(after[0].start_ms) if after else None,
                 "parked_lat": spot.lat, "parked_lon": spot.lon,
                 "parked_km_from_loss": round(km_between((spot.lat, spot.lon), (loss.lat, loss.lon)), 3)
                 if loss.lat is not None and loss.lon is not None else None}))
        elif not complete:
            undecided()
        # No impact while driving.
        impacts = [(t.trip_id, e) for t in in_window for e in t.events
                   if e[0] in IMPACT_EVENT_TYPES and e[2] >= lo and e[1] <= hi
                   and (e[0] == "crash" or e[3] >= config.impact_like_g)]
        if impacts:
            out.cleared.append(NO_IMPACT)
        elif can_fire and in_window:
            strongest = max(((e[3], e[0]) for t in in_window for e in t.events
                             if e[0] != "speeding" and e[2] >= lo and e[1] <= hi), default=(None, None))
            out.findings.append(Finding(NO_IMPACT, "medium",
                "The vehicle was driving around the reported collision time but recorded no impact-like event "
                f"(crash, or harsh event ≥ {config.impact_like_g:g} g).",
                {**base, "strongest_event_g": strongest[0], "strongest_event_type": strongest[1],
                 "impact_like_g": config.impact_like_g,
                 "max_speed_kmh_in_window": round(max((p[3] for t in in_window for p in t.path
                                                       if lo <= p[0] <= hi), default=0.0) * 3.6, 1)}))
        elif not complete:
            undecided()
    return out


