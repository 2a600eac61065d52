"""Synthetic traces for tests and benchmarks: a scripted drive whose readings follow the contract's physics.

Each segment appends readings at `hz`: positions integrate speed along the heading, accel_long matches the speed
change, accel_lat = mean speed × yaw rate (+ = left, heading clockwise). Distractors and faults are explicit calls
(`spike`, `glitch`, `duplicate_last`...), so a test knows exactly when and how big each injected event is.
"""

from __future__ import annotations

import math
from typing import Any

from services.telematics_scorer.config import G

EARTH_RADIUS_M = 6_371_008.8
START_MS = 1_772_366_400_000  # 2026-03-01T12:00:00Z


def _destination(lat: float, lon: float, heading_deg: float, distance_m: float) -> tuple[float, float]:
    if distance_m == 0.0:
        return lat, lon
    d = distance_m / EARTH_RADIUS_M
    p1, l1, h = math.radians(lat), math.radians(lon), math.radians(heading_deg)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(h))
    l2 = l1 + math.atan2(math.sin(h) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


class TraceBuilder:
    """Scripted readings of one vehicle. Methods return self so a drive reads as one chain."""

    def __init__(self, vehicle_id: str = "TLM-TEST", *, hz: float = 1.0, start_ms: int = START_MS,
                 lat: float = 48.8566, lon: float = 2.3522, heading_deg: float = 90.0,
                 speed_limit_mps: float | None = 50 / 3.6) -> None:
        self.vehicle_id, self.dt = vehicle_id, 1.0 / hz
        self.t_ms, self.lat, self.lon, self.heading, self.speed = float(start_ms), lat, lon, heading_deg, 0.0
        self.limit = speed_limit_mps
        self.readings: list[dict[str, Any]] = []

    @property
    def now_ms(self) -> int:
        return int(round(self.t_ms))

    def _step(self, accel: float, yaw_rate: float = 0.0, vert: float = 0.0) -> None:
        v0 = self.speed
        v1 = max(0.0, v0 + accel * self.dt)
        v_mid = (v0 + v1) / 2
        self.readings.append({
            "vehicle_id": self.vehicle_id, "ts": self.now_ms, "lat": self.lat, "lon": self.lon, "speed_mps": v0,
            "heading_deg": self.heading % 360, "accel_long_mps2": (v1 - v0) / self.dt,
            "accel_lat_mps2": v_mid * yaw_rate, "accel_vert_mps2": vert, "speed_limit_mps": self.limit})
        self.lat, self.lon = _destination(self.lat, self.lon, self.heading - math.degrees(yaw_rate * self.dt / 2),
                                          v_mid * self.dt)
        self.heading = (self.heading - math.degrees(yaw_rate * self.dt)) % 360
        self.speed = v1
        self.t_ms += self.dt * 1000

    def _samples(self, seconds: float) -> int:
        return max(1, int(round(seconds / self.dt)))

    def accelerate_to(self, speed_mps: float, accel_mps2: float = 1.5) -> TraceBuilder:
        while self.speed < speed_mps - 1e-9:
            self._step(min(accel_mps2, (speed_mps - self.speed) / self.dt))
        return self

    def brake_to(self, speed_mps: float, decel_mps2: float = 1.5) -> TraceBuilder:
        """Decelerate at `decel_mps2` (positive number) until `speed_mps`."""
        while self.speed > speed_mps + 1e-9:
            self._step(-min(decel_mps2, (self.speed - speed_mps) / self.dt))
        return self

    def cruise(self, seconds: float) -> TraceBuilder:
        for _ in range(self._samples(seconds)):
            self._step(0.0)
        return self

    def stop(self, seconds: float) -> TraceBuilder:
        """Stand still with readings flowing (traffic light): speed 0."""
        self.brake_to(0.0, 2.0)
        return self.cruise(seconds)

    def turn(self, seconds: float, lateral_g: float, *, left: bool = True) -> TraceBuilder:
        """Constant-speed turn producing `lateral_g` of lateral acceleration."""
        yaw = lateral_g * G / max(self.speed, 0.1) * (1 if left else -1)
        for _ in range(self._samples(seconds)):
            self._step(0.0, yaw)
        return self

    def gap(self, seconds: float) -> TraceBuilder:
        """No readings (ignition off or no coverage); the vehicle stands still."""
        self.speed = 0.0
        self.t_ms += seconds * 1000
        return self

    def set_limit(self, speed_limit_mps: float | None) -> TraceBuilder:
        self.limit = speed_limit_mps
        return self

    def spike(self, *, long_g: float = 0.0, lat_g: float = 0.0, vert_g: float = 0.0) -> TraceBuilder:
        """One sample with an acceleration spike the vehicle's motion does not follow (pothole, knock)."""
        self._step(0.0, 0.0)
        r = self.readings[-1]
        r["accel_long_mps2"] += long_g * G
        r["accel_lat_mps2"] += lat_g * G
        r["accel_vert_mps2"] += vert_g * G
        return self

    def crash(self, peak_g: float, *, lat_g: float = 0.5) -> TraceBuilder:
        """A sub-second impact: multi-g reading, then the vehicle stands (readings continue at speed 0)."""
        r0 = {"vehicle_id": self.vehicle_id, "ts": self.now_ms, "lat": self.lat, "lon": self.lon,
              "speed_mps": self.speed, "heading_deg": self.heading, "accel_long_mps2": -math.sqrt(
                  max(peak_g ** 2 - lat_g ** 2, 0.0)) * G, "accel_lat_mps2": lat_g * G, "accel_vert_mps2": 0.5 * G,
              "speed_limit_mps": self.limit}
        self.readings.append(r0)
        self.lat, self.lon = _destination(self.lat, self.lon, self.heading, self.speed * 0.15)
        self.speed = 0.0
        self.t_ms += self.dt * 1000
        return self

    def glitch(self, offset_m: float = 2_000.0) -> TraceBuilder:
        """Make the last reading's position jump `offset_m` north (a GPS multipath spike)."""
        r = self.readings[-1]
        r["lat"], r["lon"] = _destination(r["lat"], r["lon"], 0.0, offset_m)
        return self

    def duplicate_last(self) -> TraceBuilder:
        self.readings.append(dict(self.readings[-1]))
        return self

    def build(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.readings]
