"""Pure telematics physics: a fleet of vehicles driving trips, one reading per vehicle per tick.

Conventions follow the `telematics_reading.v1` contract: heading 0 = north, clockwise; accel_long + forward;
accel_lat + left. A reading at time t carries the position, speed and heading at t and the accelerations
applied during [t, t + dt), so for consecutive readings i, i+1 of one trip (dt apart):
    speed[i+1]   = speed[i] + accel_long[i] * dt                       (except on the crash reading)
    distance     = (speed[i] + speed[i+1]) / 2 * dt                    (along the mid-step heading)
    accel_lat[i] = (speed[i] + speed[i+1]) / 2 * yaw_rate[i],  yaw_rate = -d(heading)/dt in rad/s (+ = left)
up to a small sensor noise (sigma 0.05 m/s^2). Crash readings report the peak of a sub-second multi-g impulse.
No I/O, no wall clock: the same seed, device ids and start time give the same readings.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any

from claimsctl.simulator.entities import COUNTRIES

EARTH_RADIUS_M = 6_371_008.8
G = 9.80665
SENSOR_NOISE = 0.05
KMH = 1 / 3.6

# (limit m/s, weight) per road class; a None limit means "not known to the map".
_LIMITS = ((30 * KMH, 0.10), (50 * KMH, 0.40), (70 * KMH, 0.15), (80 * KMH, 0.10), (90 * KMH, 0.10),
           (120 * KMH, 0.08), (130 * KMH, 0.07))
_CITIES = tuple((lat, lon) for c in COUNTRIES for _, lat, lon, _ in c.cities)


@dataclass(frozen=True)
class TelematicsConfig:
    """Behaviour knobs; probabilities are per driving second."""

    hz: float = 1.0
    crash_probability: float = 2e-5
    harsh_brake_probability: float = 0.004
    harsh_accel_probability: float = 0.02  # per start from a standstill, scaled by aggressiveness
    turn_probability: float = 0.02
    stop_probability: float = 0.012
    limit_change_probability: float = 0.01
    speeding_episode_probability: float = 0.004
    trip_s: tuple[float, float] = (240.0, 1500.0)
    parked_s: tuple[float, float] = (60.0, 900.0)
    traffic_stop_s: tuple[float, float] = (8.0, 60.0)
    post_crash_s: tuple[float, float] = (30.0, 120.0)
    driving_at_start: float = 0.75


@dataclass(frozen=True)
class TracePoint:
    device_id: str
    ts_ms: int
    lat: float
    lon: float
    speed_mps: float


@dataclass(frozen=True)
class CrashEvent:
    device_id: str
    ts_ms: int
    lat: float
    lon: float
    speed_before_mps: float
    peak_g: float


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, 0 = north, clockwise."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360


def destination(lat: float, lon: float, heading_deg: float, distance_m: float) -> tuple[float, float]:
    """Point reached from (lat, lon) after `distance_m` along `heading_deg` (exact great-circle formula)."""
    if distance_m == 0.0:
        return lat, lon
    d = distance_m / EARTH_RADIUS_M
    p1, l1, h = math.radians(lat), math.radians(lon), math.radians(heading_deg)
    sin_p1, cos_p1, sin_d, cos_d = math.sin(p1), math.cos(p1), math.sin(d), math.cos(d)
    sin_p2 = sin_p1 * cos_d + cos_p1 * sin_d * math.cos(h)
    p2 = math.asin(sin_p2)
    l2 = l1 + math.atan2(math.sin(h) * sin_d * cos_p1, cos_d - sin_p1 * sin_p2)
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


def _pick_limit(rng: random.Random) -> float:
    limits, weights = zip(*_LIMITS)
    return rng.choices(limits, weights=weights)[0]


class SimulatedVehicle:
    """One vehicle and its driver. `step` returns the reading at `ts_ms` (None while the ignition is off)."""

    __slots__ = (
        "device_id", "rng", "cfg", "dt", "home", "lat", "lon", "speed", "heading", "limit", "limit_known",
        "aggressiveness", "speed_factor", "phase", "phase_left", "accel_cmd", "yaw_cmd", "yaw_bias",
        "trip_left", "speeding_left", "end_trip", "trace", "_trace_every", "_tick",
    )

    def __init__(self, device_id: str, rng: random.Random, cfg: TelematicsConfig) -> None:
        self.device_id = device_id
        self.rng = rng
        self.cfg = cfg
        self.dt = 1.0 / cfg.hz
        home_lat, home_lon = rng.choice(_CITIES)
        self.home = (home_lat, home_lon)
        self.lat, self.lon = destination(home_lat, home_lon, rng.uniform(0, 360), rng.uniform(0, 8_000))
        self.heading = rng.uniform(0, 360)
        self.aggressiveness = rng.betavariate(2, 5)  # mostly calm drivers, a long tail of aggressive ones
        self.speed_factor = rng.gauss(0.95 + 0.2 * self.aggressiveness, 0.04)
        self.limit = _pick_limit(rng)
        self.limit_known = rng.random() > 0.05
        self.accel_cmd = 0.0
        self.yaw_cmd = 0.0
        self.yaw_bias = 0.0
        self.speeding_left = 0.0
        self.end_trip = False
        self.trace: deque[TracePoint] = deque(maxlen=90)
        self._trace_every = max(1, int(round(5 * cfg.hz)))
        self._tick = 0
        if rng.random() < cfg.driving_at_start:
            self.phase, self.phase_left = "cruise", 0.0
            self.speed = rng.uniform(0, self.limit)
            self.trip_left = rng.uniform(*cfg.trip_s)
        else:
            self.phase, self.phase_left = "parked", rng.uniform(0, cfg.parked_s[1])
            self.speed = 0.0
            self.trip_left = 0.0

    # -- behaviour -------------------------------------------------------------------------------------------
    def _target_speed(self) -> float:
        factor = self.speed_factor * (1.25 if self.speeding_left > 0 else 1.0)
        return self.limit * factor

    def _cruise_control(self) -> tuple[float, float]:
        """Acceleration and yaw rate while cruising: follow the target speed, gentle curves."""
        rng = self.rng
        error = self._target_speed() - self.speed
        accel = max(-2.0, min(1.2 + self.aggressiveness, 0.35 * error)) + rng.gauss(0, 0.15)
        # Road curvature as a bounded random walk of the yaw rate.
        self.yaw_bias = max(-0.03, min(0.03, self.yaw_bias + rng.gauss(0, 0.004)))
        return accel, self.yaw_bias if self.speed > 0.5 else 0.0

    def _begin_turn(self) -> None:
        # Turn towards home when far from it, so vehicles stay around their city.
        lat0, lon0 = self.home
        diff = (bearing_deg(self.lat, self.lon, lat0, lon0) - self.heading + 540) % 360 - 180
        far = haversine_m(self.lat, self.lon, lat0, lon0) > 15_000
        left = diff < 0 if far else self.rng.random() < 0.5
        harsh = self.rng.random() < 0.15 * self.aggressiveness * 3
        turn_speed = self.rng.uniform(10.5, 13.0) if harsh else self.rng.uniform(4.5, 8.0)
        duration = self.rng.uniform(3.0, 4.0) if harsh else self.rng.uniform(3.5, 6.0)
        self.phase = "approach_turn"
        self.phase_left = duration
        self.yaw_cmd = (math.pi / 2) / duration * (1 if left else -1)
        self.accel_cmd = turn_speed  # remembered target speed for the turn

    def _choose_accel_yaw(self) -> tuple[float, float]:
        rng, cfg, dt = self.rng, self.cfg, self.dt
        phase = self.phase
        if phase == "cruise":
            p = dt  # per-second probabilities scaled by the tick length
            self.trip_left -= dt
            self.speeding_left = max(0.0, self.speeding_left - dt)
            if rng.random() < cfg.limit_change_probability * p:
                self.limit = _pick_limit(rng)
                self.limit_known = rng.random() > 0.05
            if rng.random() < cfg.speeding_episode_probability * p * (0.5 + 2 * self.aggressiveness):
                self.speeding_left = rng.uniform(30, 120)
            if self.trip_left <= 0:
                self.phase, self.end_trip, self.accel_cmd = "approach_stop", True, -rng.uniform(1.2, 2.5)
            elif self.speed > 8 and rng.random() < cfg.harsh_brake_probability * p * (0.3 + 3 * self.aggressiveness):
                self.phase, self.phase_left = "harsh_brake", rng.uniform(1.0, 3.0)
                self.accel_cmd = -rng.uniform(5.0, 8.0)
            elif rng.random() < cfg.turn_probability * p:
                self._begin_turn()
            elif rng.random() < cfg.stop_probability * p:
                self.phase, self.accel_cmd = "approach_stop", -rng.uniform(1.2, 3.0)
            else:
                return self._cruise_control()
            return self._choose_accel_yaw()
        if phase == "approach_turn":
            if self.speed > self.accel_cmd:
                return max(-3.0, (self.accel_cmd - self.speed) / dt), 0.0
            self.phase = "turning"
            return self._choose_accel_yaw()
        if phase == "turning":
            self.phase_left -= dt
            if self.phase_left < 0:
                self.phase = "cruise"
                return self._cruise_control()
            return 0.0, self.yaw_cmd
        if phase == "approach_stop":
            if self.speed > 0:
                return self.accel_cmd, 0.0
            if self.end_trip:
                self.phase, self.phase_left = "ignition_off", 2 * dt
            else:
                self.phase, self.phase_left = "stopped", rng.uniform(*cfg.traffic_stop_s)
            return 0.0, 0.0
        if phase in ("stopped", "crashed", "ignition_off"):
            self.phase_left -= dt
            if self.phase_left <= 0:
                if phase == "stopped":
                    if rng.random() < cfg.harsh_accel_probability * (1 + 10 * self.aggressiveness):
                        self.phase, self.phase_left = "harsh_accel", rng.uniform(2.0, 4.0)
                        self.accel_cmd = rng.uniform(3.5, 4.8)
                    else:
                        self.phase = "cruise"
                else:
                    self.phase = "parked"
                    lo, hi = cfg.parked_s
                    self.phase_left = rng.uniform(lo, hi) * (20 if phase == "crashed" else 1)
            return 0.0, 0.0
        if phase in ("harsh_brake", "harsh_accel"):
            self.phase_left -= dt
            if self.phase_left < 0 or (phase == "harsh_brake" and self.speed <= 0):
                self.phase = "cruise"
                return self._cruise_control()
            return self.accel_cmd, 0.0
        raise AssertionError(f"unknown phase {phase}")

    def step(self, ts_ms: int) -> tuple[dict[str, Any] | None, CrashEvent | None]:
        """Advance one tick; returns (reading at ts_ms or None while parked, crash event or None)."""
        rng, dt = self.rng, self.dt
        if self.phase == "parked":
            self.phase_left -= dt
            if self.phase_left > 0:
                return None, None
            # Ignition on: new trip from where the car was parked.
            self.phase, self.speed, self.end_trip = "cruise", 0.0, False
            self.trip_left = rng.uniform(*self.cfg.trip_s)
            self.limit = _pick_limit(rng)
            self.heading = rng.uniform(0, 360)

        crash = None
        v0 = self.speed
        if self.phase == "cruise" and v0 > 5 and rng.random() < self.cfg.crash_probability * dt:
            # Sub-second impact: multi-g deceleration, the vehicle stops within a few metres.
            peak = rng.uniform(3.0, 9.0)
            accel_long = -peak * G
            accel_lat = rng.uniform(-2.5, 2.5) * G
            accel_vert = rng.uniform(-2.0, 2.0) * G
            v1 = 0.0
            distance = v0 * 0.15
            heading_mid = self.heading
            self.phase, self.phase_left = "crashed", rng.uniform(*self.cfg.post_crash_s)
            self.yaw_bias = 0.0
            crash = CrashEvent(self.device_id, ts_ms, self.lat, self.lon, v0, peak)
            new_heading = self.heading
        else:
            accel, yaw = self._choose_accel_yaw()
            v1 = max(0.0, v0 + accel * dt)
            accel_long = (v1 - v0) / dt + rng.gauss(0, SENSOR_NOISE)
            v_mid = (v0 + v1) / 2
            if v_mid < 0.3:
                yaw = 0.0
            accel_lat = v_mid * yaw + rng.gauss(0, SENSOR_NOISE)
            accel_vert = rng.gauss(0, 0.25) + (rng.uniform(-2.5, 2.5) if rng.random() < 0.01 else 0.0)
            if v_mid == 0.0:
                accel_vert *= 0.2
            distance = v_mid * dt
            heading_mid = self.heading - math.degrees(yaw * dt / 2)
            new_heading = (self.heading - math.degrees(yaw * dt)) % 360

        reading = {
            "vehicle_id": self.device_id,
            "ts": ts_ms,
            "lat": self.lat,
            "lon": self.lon,
            "speed_mps": v0,
            "heading_deg": self.heading,
            "accel_long_mps2": accel_long,
            "accel_lat_mps2": accel_lat,
            "accel_vert_mps2": accel_vert,
            "speed_limit_mps": self.limit if self.limit_known else None,
        }
        self._tick += 1
        if self._tick % self._trace_every == 0:
            self.trace.append(TracePoint(self.device_id, ts_ms, self.lat, self.lon, v0))
        self.lat, self.lon = destination(self.lat, self.lon, heading_mid, distance)
        self.speed = v1
        self.heading = new_heading
        return reading, crash


class Fleet:
    """All simulated vehicles; each has its own RNG stream, so adding a vehicle does not change the others."""

    def __init__(self, device_ids: list[str], *, seed: str, config: TelematicsConfig | None = None) -> None:
        self.config = config or TelematicsConfig()
        self.vehicles = {
            d: SimulatedVehicle(d, random.Random(f"{seed}/vehicle/{d}"), self.config) for d in device_ids
        }
        self.pending_crashes: list[CrashEvent] = []
        self.crash_count = 0

    def step(self, ts_ms: int) -> list[dict[str, Any]]:
        """Readings of every vehicle with the ignition on at `ts_ms`; crashes are queued in `pending_crashes`."""
        readings = []
        for vehicle in self.vehicles.values():
            reading, crash = vehicle.step(ts_ms)
            if reading is not None:
                readings.append(reading)
            if crash is not None:
                self.pending_crashes.append(crash)
                self.crash_count += 1
        return readings

    def drain_crashes(self) -> list[CrashEvent]:
        crashes, self.pending_crashes = self.pending_crashes, []
        return crashes

    def recent_point(self, device_id: str, rng: random.Random) -> TracePoint | None:
        """A point from the vehicle's recent trace (sampled every 5 s), or None if it has not driven yet."""
        vehicle = self.vehicles.get(device_id)
        if vehicle is None or not vehicle.trace:
            return None
        return vehicle.trace[rng.randrange(len(vehicle.trace))]
