import csv
import io
import json
from datetime import datetime, timezone

import pytest
from PIL import Image

from claimsctl.simulator.landing import INVOICE_FIELDS, LandingPlanner
from claimsctl.simulator.planner import ClaimPlanner, SequenceBases

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def landing_files(seed: int = 4, n: int = 1200):
    planner = ClaimPlanner(seed=seed, start=START, bases=SequenceBases(), adjuster_ids=[1, 2])
    landing = LandingPlanner(seed=str(seed), document_probability=0.15, batch_interval_s=6)
    files = []
    for i in range(n):
        action = planner.next_action(i / 50)
        files += landing.observe(action) + landing.due_batches(i / 50, action.at)
    return files


@pytest.fixture(scope="module")
def files():
    return landing_files()


def test_landing_files_are_reproducible_and_well_keyed(files):
    first, second = files, landing_files()
    assert [(f.key, f.body) for f in first] == [(f.key, f.body) for f in second]
    assert all(f.key.startswith("incoming/2026/03/01/") for f in first)
    exts = {f.key.rsplit(".", 1)[1] for f in first}
    assert {"jpg", "csv", "jsonl"} <= exts and exts & {"png", "pdf"}
    assert any(" " in f.key for f in first) and any(not f.key.isascii() for f in first)


def test_damage_photos_carry_exif_time_gps_and_camera(files):
    photo = next(f for f in files if f.key.endswith(".jpg") and "/batches/" not in f.key
                 and Image.open(io.BytesIO(f.body)).size == (800, 600))
    exif = Image.open(io.BytesIO(photo.body)).getexif()
    assert exif[0x010F] and exif[0x0110]
    assert exif.get_ifd(0x8769)[0x9003]
    assert exif.get_ifd(0x8825)[0x0002]


def test_invoice_batches_parse_with_the_documented_columns(files):
    for f in files:
        if f.key.endswith(".csv"):
            rows = list(csv.DictReader(io.StringIO(f.body.decode())))
            assert rows and tuple(rows[0]) == INVOICE_FIELDS
        elif f.key.endswith(".jsonl"):
            lines = f.body.decode().splitlines()
            parsed = []
            for line in lines:
                try:
                    parsed.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a deliberately truncated line
            assert len(parsed) >= len(lines) - 1
