import math
import struct

from claimsctl.simulator.telematics import Fleet, TelematicsConfig, haversine_m

START_MS = 1_772_366_400_000


def f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def traces(vehicles: int = 60, seconds: int = 900, **cfg) -> dict[str, list[dict]]:
    fleet = Fleet([f"TLM-{i:08d}" for i in range(vehicles)], seed="test", config=TelematicsConfig(**cfg))
    by_vehicle: dict[str, list[dict]] = {}
    for t in range(seconds):
        for r in fleet.step(START_MS + t * 1000):
            by_vehicle.setdefault(r["vehicle_id"], []).append(r)
    return by_vehicle


def consecutive(by_vehicle):
    for readings in by_vehicle.values():
        for a, b in zip(readings, readings[1:]):
            if b["ts"] - a["ts"] == 1000 and a["accel_long_mps2"] > -20:  # same trip, not a crash reading
                yield a, b


def test_same_seed_gives_same_readings():
    assert traces(5, 120) == traces(5, 120)


def test_distance_between_readings_matches_speed():
    pairs = list(consecutive(traces()))
    assert len(pairs) > 10_000
    for a, b in pairs:
        expected = (a["speed_mps"] + b["speed_mps"]) / 2
        assert abs(haversine_m(a["lat"], a["lon"], b["lat"], b["lon"]) - expected) < 0.05 + 0.001 * expected


def test_speed_change_matches_longitudinal_acceleration():
    for a, b in consecutive(traces()):
        assert abs((b["speed_mps"] - a["speed_mps"]) - a["accel_long_mps2"]) < 0.3


def test_heading_change_matches_lateral_acceleration():
    for a, b in consecutive(traces()):
        turn = (b["heading_deg"] - a["heading_deg"] + 540) % 360 - 180  # clockwise degrees
        yaw_left = -math.radians(turn)
        v_mid = (a["speed_mps"] + b["speed_mps"]) / 2
        assert abs(v_mid * yaw_left - a["accel_lat_mps2"]) < 0.3


def test_fleet_shows_harsh_events_speeding_stops_and_ignition_gaps():
    by_vehicle = traces(80, 1800)
    readings = [r for rs in by_vehicle.values() for r in rs]
    assert any(r["accel_long_mps2"] < -4.5 for r in readings)
    assert any(r["accel_long_mps2"] > 3.0 for r in readings)
    assert any(abs(r["accel_lat_mps2"]) > 4.0 for r in readings)
    assert any(r["speed_limit_mps"] and r["speed_mps"] > r["speed_limit_mps"] * 1.2 for r in readings)
    assert sum(1 for r in readings if r["speed_mps"] == 0) > 100
    gaps = [b["ts"] - a["ts"] for rs in by_vehicle.values() for a, b in zip(rs, rs[1:])]
    assert max(gaps) > 60_000


def test_crash_is_a_multi_g_spike_then_standstill():
    fleet = Fleet([f"TLM-{i:08d}" for i in range(50)], seed="crash", config=TelematicsConfig(crash_probability=0.002))
    readings = [r for t in range(600) for r in fleet.step(START_MS + t * 1000)]
    crashes = fleet.drain_crashes()
    assert crashes
    crash = crashes[0]
    after = [r for r in readings if r["vehicle_id"] == crash.device_id and r["ts"] > crash.ts_ms]
    spike = next(r for r in readings if r["vehicle_id"] == crash.device_id and r["ts"] == crash.ts_ms)
    assert spike["accel_long_mps2"] <= -3 * 9.8
    assert after and all(r["speed_mps"] == 0 for r in after[:20])


def test_readings_fit_the_avro_contract():
    from claims_shared.contracts.avro import decode, encode

    r = next(iter(traces(3, 30).values()))[0]
    back = decode("telematics_reading.v1", encode("telematics_reading.v1", r))
    assert back["vehicle_id"] == r["vehicle_id"] and abs(back["speed_mps"] - f32(r["speed_mps"])) < 1e-6
