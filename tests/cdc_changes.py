"""Hand-built normalized CDC changes of `claims`, exactly as consumers see them: each one goes through the real
contract (encode_change -> decode_change), so the dicts have the `ChangeRecord.to_json_dict()` shape and canonical
values of `claims.cdc.claims.v1`."""

from __future__ import annotations

import uuid
from typing import Any, Iterable

from claims_shared.contracts.cdc import ChangeRecord, SourcePosition, normalized_topic
from claims_shared.contracts.cdc_avro import decode_change, encode_change
from services.delta_compactor.planning import ConsumedChange

TABLE = "claims"
TOPIC = normalized_topic(TABLE)
BASE_TS_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def claim_id(n: int) -> str:
    return str(uuid.UUID(int=n))


def claim_row(n: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "claim_id": claim_id(n),
        "claim_number": f"CLM-{n:06d}",
        "policy_id": claim_id(10_000 + n),
        "vehicle_id": claim_id(20_000 + n),
        "driver_id": None,
        "status": "fnol",
        "loss_time": "2025-12-31T21:15:00Z",
        "loss_local_time": "2025-12-31T22:15:00",
        "loss_lat": 51.5,
        "loss_lon": -0.12,
        "loss_type": "collision",
        "description": "rear-ended at lights",
        "reported_at": "2026-01-01T08:00:00.250000Z",
        "claimed_amount": "1200.50",
        "reserve_amount": "0.00",
        "settled_amount": None,
        "sla_due_at": "2026-01-15T08:00:00Z",
        "third_party_involved": True,
        "injury_count": 0,
        "tags": ["motor", None],
        "details": {"photos": 3, "notes": "long text " * 5},
        "row_version": 1,
        "created_at": "2026-01-01T08:00:00Z",
        "updated_at": "2026-01-01T08:00:00Z",
    }
    row.update(overrides)
    return row


def change(op: str, n: int = 0, *, lsn: int, row: dict[str, Any] | None = None, unchanged: Iterable[str] = (),
           ts_ms: int | None = None, snapshot: bool = False) -> dict[str, Any]:
    """One decoded change of claim `n` at `lsn` (commit time BASE_TS_MS + lsn unless given)."""
    unchanged = tuple(unchanged)
    if row is not None:
        row = {k: v for k, v in row.items() if k not in unchanged}
    record = ChangeRecord(
        table=TABLE,
        op=op,
        key={} if op == "t" else {"claim_id": claim_id(n)},
        row=row,
        source=SourcePosition(lsn=lsn, tx_id=lsn // 10, ts_ms=BASE_TS_MS + lsn if ts_ms is None else ts_ms,
                              snapshot=snapshot, database="claims_db", schema="public"),
        unchanged=unchanged,
    )
    return decode_change(TABLE, encode_change(record)[1])


def consumed(changes: Iterable[dict[str, Any]], *, partition: int = 0, first_offset: int = 0,
             topic: str = TOPIC) -> list[ConsumedChange]:
    """The changes as read from one partition, at consecutive offsets."""
    return [ConsumedChange(topic, partition, first_offset + i, c) for i, c in enumerate(changes)]
