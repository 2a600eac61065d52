"""object_ingestor's output contracts (extract_row.v1, extract_reject.v1, document_link.v1) only change compatibly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claims_shared.contracts.avro import SCHEMA_DIR
from claims_shared.contracts.compatibility import full_compatibility_problems

SNAPSHOTS = Path(__file__).parent / "contract_snapshots"


@pytest.mark.parametrize("name", ["extract_row.v1", "extract_reject.v1", "document_link.v1"])
def test_published_contract_is_unchanged_or_compatible(name: str) -> None:
    """A failure means: publish <name>.v2 on a new topic, or refresh the snapshot for a compatible change
    (cp claims_shared/contracts/schemas/<name>.avsc tests/unit/contract_snapshots/)."""
    published = json.loads((SNAPSHOTS / f"{name}.avsc").read_text())
    current = json.loads((SCHEMA_DIR / f"{name}.avsc").read_text())
    assert full_compatibility_problems(published, current) == []
    assert current == published, "compatible change: review it and refresh the snapshot"
