"""Trips, events and driver scores as the `telematics_*.v1` contract records (and back, for the score agent)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.telematics_scorer.events import SafetyEvent
from services.telematics_scorer.scoring import DriverScore
from services.telematics_scorer.trips import Trip


def trip_record(trip: Trip) -> dict[str, Any]:
    """`telematics_trip.v1` record (timestamps as epoch ms) of a closed trip; trip_id = vehicle:start ms."""
    return {
        "trip_id": trip.trip_id, "vehicle_id": trip.vehicle_id, "start_ts": trip.start_ms, "end_ts": trip.end_ms,
        "distance_km": trip.distance_km, "duration_s": trip.duration_s, "max_speed_kmh": trip.max_speed_kmh,
        "readings": trip.readings, "score": trip.score, "start_lat": trip.start_lat, "start_lon": trip.start_lon,
        "end_lat": trip.end_lat, "end_lon": trip.end_lon,
        "events": [{"type": e.type, "start_ts": e.start_ms, "end_ts": e.end_ms, "peak_g": e.peak_g,
                    "severity": e.severity, "lat": e.lat, "lon": e.lon} for e in trip.events],
        "path": [{"ts": ts, "lat": lat, "lon": lon, "speed_mps": v} for ts, lat, lon, v in trip.path],
    }


def event_records(trip: Trip) -> list[dict[str, Any]]:
    """One `telematics_event.v1` record per event of `trip`; event_id = trip_id:type:start ms (deterministic)."""
    return [{"event_id": f"{trip.trip_id}:{e.type}:{e.start_ms}", "trip_id": trip.trip_id,
             "vehicle_id": trip.vehicle_id, "type": e.type, "start_ts": e.start_ms, "end_ts": e.end_ms,
             "peak_g": e.peak_g, "severity": e.severity, "lat": e.lat, "lon": e.lon} for e in trip.events]


def trip_from_record(record: Mapping[str, Any]) -> Trip:
    """Inverse of `trip_record` (timestamps as epoch ms, see claims_shared.contracts.telematics.decode_epoch_ms)."""
    return Trip(
        vehicle_id=record["vehicle_id"], start_ms=record["start_ts"], end_ms=record["end_ts"],
        distance_km=record["distance_km"], duration_s=record["duration_s"], max_speed_kmh=record["max_speed_kmh"],
        readings=record["readings"],
        events=tuple(SafetyEvent(e["type"], e["start_ts"], e["end_ts"], e["peak_g"], e["severity"], e["lat"], e["lon"])
                     for e in record["events"]),
        score=record["score"], start_lat=record["start_lat"], start_lon=record["start_lon"],
        end_lat=record["end_lat"], end_lon=record["end_lon"],
        path=tuple((p["ts"], p["lat"], p["lon"], p["speed_mps"]) for p in record.get("path", ())))


def driver_score_record(score: DriverScore, trip_id: str) -> dict[str, Any]:
    """`telematics_driver_score.v1` record of a vehicle's rolling score after folding in `trip_id`."""
    return {"vehicle_id": score.vehicle_id, "score": score.score, "trips": score.trips,
            "distance_km": score.distance_km, "events": score.events, "crashes": score.crashes,
            "last_trip_end_ts": score.last_trip_end_ms, "trip_id": trip_id}
