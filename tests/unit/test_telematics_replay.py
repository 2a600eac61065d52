"""`claimsctl score-trips`: CSV in, one JSON line per trip out, bad rows skipped and counted."""

import re

import orjson
from click.testing import CliRunner

from claimsctl.cli import main
from services.telematics_scorer.config import G
from services.telematics_scorer.replay import read_readings_csv, write_readings_csv
from services.telematics_scorer.synthetic import TraceBuilder

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
HEADER = ("vehicle_id,ts,lat,lon,speed_mps,heading_deg,accel_long_mps2,accel_lat_mps2,accel_vert_mps2,"
          "speed_limit_mps")


def readings():
    a = TraceBuilder("TLM-A").accelerate_to(14.0).cruise(60).brake_to(5.0, 0.5 * G).cruise(20).stop(5)
    a.gap(600).accelerate_to(10.0).cruise(30).stop(5)
    b = TraceBuilder("TLM-B", lat=40.4, lon=-3.7, speed_limit_mps=None).accelerate_to(12.0).cruise(40)
    b.crash(5.0).stop(30)
    return a.build() + b.build()


def run(tmp_path, csv_text=None):
    src, out = tmp_path / "readings.csv", tmp_path / "trips.jsonl"
    if csv_text is None:
        write_readings_csv(src, readings())
    else:
        src.write_text(csv_text)
    result = CliRunner().invoke(main, ["score-trips", "--input", str(src), "--output", str(out)])
    return result, [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.exists() else []


def test_score_trips_writes_one_line_per_trip_in_the_issue_shape(tmp_path):
    result, trips = run(tmp_path)
    assert result.exit_code == 0, result.output
    assert [t["vehicle_id"] for t in trips] == ["TLM-A", "TLM-A", "TLM-B"]
    for t in trips:
        assert list(t) == ["vehicle_id", "start", "end", "distance_km", "duration_s", "max_speed_kmh", "events",
                           "score"]
        assert ISO_Z.match(t["start"]) and ISO_Z.match(t["end"])
        assert 0 <= t["score"] <= 100
        for e in t["events"]:
            assert list(e) == ["type", "start", "end", "peak_g"] and ISO_Z.match(e["start"])
    assert [e["type"] for e in trips[0]["events"]] == ["harsh_braking"]
    assert trips[1]["events"] == [] and trips[1]["score"] == 100.0
    assert [e["type"] for e in trips[2]["events"]] == ["crash"] and trips[2]["score"] <= 20


def test_bad_rows_are_skipped_and_counted_not_fatal(tmp_path):
    good = "TLM-A,2026-03-01T12:00:{s:02d}Z,48.85,2.35,0,90,0,0,0,\n"
    text = HEADER + "\n" + "".join(good.format(s=s) for s in range(10))
    text += "TLM-A,yesterday,48.85,2.35,0,90,0,0,0,\n"
    text += "TLM-A,2026-03-01T12:00:20Z,north,2.35,0,90,0,0,0,\n"
    text += "TLM-A,2026-03-01T12:00:21Z,NaN,2.35,0,90,0,0,0,\n"
    text += "TLM-A,2026-03-01T12:00:22Z,95.0,2.35,0,90,0,0,0,\n"
    text += "TLM-A,2026-03-01T12:00:23Z,48.85,2.35,-4,90,0,0,0,\n"
    text += "too,few,fields\n"
    text += ",2026-03-01T12:00:24Z,48.85,2.35,0,90,0,0,0,\n"
    text += "TLM-A,2026-03-01 12:00:30,48.85,2.35,0,90,0,0,0,50\n"  # naive timestamp: UTC per the contract
    result, trips = run(tmp_path, text)
    assert result.exit_code == 0, result.output
    assert "malformed=5" in result.output and "invalid=2" in result.output and "kept=11" in result.output
    assert len(trips) == 1 and trips[0]["end"] == "2026-03-01T12:00:30.000Z"


def test_missing_columns_is_a_clear_error(tmp_path):
    result, _ = run(tmp_path, "vehicle_id,ts\nA,2026-03-01T12:00:00Z\n")
    assert result.exit_code != 0 and "header must name the columns" in result.output


def test_csv_round_trip_keeps_values_and_unknown_limits(tmp_path):
    rs = readings()
    write_readings_csv(tmp_path / "r.csv", rs)
    batch, stats = read_readings_csv(tmp_path / "r.csv")
    assert stats.malformed == 0 and len(batch) == len(rs)
    assert batch.ts.tolist() == [r["ts"] for r in rs]
    assert batch.lat.tolist() == [r["lat"] for r in rs]
    assert sum(1 for v in batch.speed_limit_mps if v != v) == sum(1 for r in rs if r["speed_limit_mps"] is None)
