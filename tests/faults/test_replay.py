"""Replay: re-running the normalizer over an already processed range changes nothing.

`claimsctl normalize` over the raw topics' messages captured so far, twice: byte-identical outputs, and every record
equal (same event id, same content) to what the service published for it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import claimsctl
from tests.faults.conftest import FaultStack, RecordRow
from tests.faults.ledger import Tally

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@pytest.mark.ci_subset
def test_normalize_replay_of_a_processed_range_is_byte_identical_and_matches_the_service(
        fault_stack: FaultStack, record_row: RecordRow, tmp_path: Path) -> None:
    fs = fault_stack
    t0 = time.monotonic()
    fs.snapshot()  # everything processed so far is on the ledgers
    lines = []
    for topic, partition, offset, key, value in fs.cdc.raw_messages:
        try:
            doc = {"topic": topic, "partition": partition, "offset": offset,
                   "key": json.loads(key) if key else None, "value": json.loads(value)}
        except ValueError:
            continue  # poison: the replay CLI takes JSON lines
        lines.append(json.dumps(doc))
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    outputs = []
    for name in ("a", "b"):
        result = claimsctl(fs.settings, "normalize", "--input", str(source), "--output", str(tmp_path / name),
                           timeout=900)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append((tmp_path / name).read_bytes())
    replayed = [json.loads(line) for line in outputs[0].splitlines()]
    records = [r for r in replayed if r.get("op")]
    differing = [r["event_id"] for r in records
                 if r["event_id"] in fs.cdc.records and r != fs.cdc.records[r["event_id"]]]
    unpublished = [r["event_id"] for r in records if r["event_id"] not in fs.cdc.records]
    changed = (outputs[0] != outputs[1]) + len(differing) + len(unpublished)
    record_row("replay: claimsctl normalize twice", {"replay": Tally()},
               {"replay": Tally(in_=len(lines), out=len(records), duplicated=changed)},
               recovery_s=None, wall_s=time.monotonic() - t0,
               detail=f"{len(lines)} raw lines, {len(records)} records, byte-identical={outputs[0] == outputs[1]}, "
                      f"differing from the service={len(differing)}, not published by it={len(unpublished)}")
    assert outputs[0] == outputs[1]
    assert not differing, f"replayed records differ from the published ones: {differing[:5]}"
    assert not unpublished, f"replay made records the service never published: {unpublished[:5]}"


# TODO(issue 6, delta compactor): the compactor's replay and "backfill from offset 0 rebuilds identical tables" go
# here: run `claimsctl reconcile` before, replay the compactor over the same offsets (and into a fresh lake from
# offset 0), and compare the tables' contents (sorted rows) and the reconcile output.
