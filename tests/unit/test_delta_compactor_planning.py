"""Merge planning of delta_compactor (pure): which change wins per key, SCD2 versions, TOAST fills, offsets."""

from __future__ import annotations

import random

import pytest

from services.delta_compactor.lake_schema import arrow_table, entity_columns
from services.delta_compactor.planning import (
    ConsumedChange,
    lsn_of,
    marker_event_id,
    plan_batch,
    source_pos,
)
from tests.cdc_changes import BASE_TS_MS, TABLE, TOPIC, change, claim_id, claim_row, consumed


def plan_of(*changes: dict, **kwargs: object):
    return plan_batch(consumed(changes, **kwargs)).tables[TABLE]


def by_key(rows):
    return {r.key["claim_id"]: r for r in rows}


# ------------------------------------------------------------------------------------------------ positions


def test_source_position_orders_by_lsn_and_fits_decimal_38():
    low = source_pos(change("u", 1, lsn=100, row=claim_row(1)))
    high = source_pos(change("u", 1, lsn=101, row=claim_row(1)))
    assert low < high
    assert lsn_of(low) == 100
    assert source_pos(change("u", 1, lsn=2**63 - 1, row=claim_row(1), ts_ms=BASE_TS_MS)) < 10**38


def test_snapshot_read_sorts_before_streamed_change_at_the_same_lsn():
    read = source_pos(change("r", 1, lsn=500, row=claim_row(1), snapshot=True))
    streamed = source_pos(change("u", 1, lsn=500, row=claim_row(1)))
    assert read < streamed


def test_source_position_is_deterministic_for_the_same_event():
    c = change("u", 1, lsn=100, row=claim_row(1))
    assert source_pos(c) == source_pos(dict(c))


# ------------------------------------------------------------------------------------------------ SCD1


def test_single_insert_becomes_current_row_with_all_values():
    plan = plan_of(change("c", 1, lsn=100, row=claim_row(1)))
    (row,) = plan.current
    assert row.op == "c" and not row.deleted
    assert row.values["claimed_amount"] == "1200.50"
    assert row.values["details"] == {"photos": 3, "notes": "long text " * 5}
    assert row.keep_target == () and row.filled_from == {}
    assert lsn_of(row.source_pos) == 100


def test_highest_source_position_wins_whatever_the_arrival_order():
    changes = [
        change("c", 1, lsn=100, row=claim_row(1, status="fnol")),
        change("u", 1, lsn=200, row=claim_row(1, status="assessing")),
        change("u", 1, lsn=300, row=claim_row(1, status="approved")),
    ]
    for seed in range(5):
        shuffled = changes[:]
        random.Random(seed).shuffle(shuffled)
        (row,) = plan_of(*shuffled).current
        assert row.values["status"] == "approved"
        assert lsn_of(row.source_pos) == 300


def test_duplicate_changes_count_once():
    c = change("c", 1, lsn=100, row=claim_row(1))
    u = change("u", 1, lsn=200, row=claim_row(1, status="assessing"))
    plan = plan_of(c, u, c, u, u)
    assert plan.duplicates == 3
    assert len(plan.current) == 1
    assert [h.op for h in plan.history] == ["c", "u"]


def test_delete_as_last_change_marks_key_deleted():
    plan = plan_of(change("c", 1, lsn=100, row=claim_row(1)), change("d", 1, lsn=200))
    (row,) = plan.current
    assert row.deleted and row.op == "d"
    assert row.values == {}
    assert row.key == {"claim_id": claim_id(1)}


def test_delete_then_reinsert_keeps_the_reinserted_row():
    plan = plan_of(
        change("c", 1, lsn=100, row=claim_row(1, status="draft")),
        change("d", 1, lsn=200),
        change("c", 1, lsn=300, row=claim_row(1, status="fnol")),
    )
    (row,) = plan.current
    assert not row.deleted and row.op == "c" and row.values["status"] == "fnol"
    assert [(h.op, h.is_current) for h in plan.history] == [("c", False), ("d", False), ("c", True)]


def test_unchanged_toast_column_is_filled_from_an_earlier_change_of_the_batch():
    first = change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"}))
    update = change("u", 1, lsn=200, row=claim_row(1, status="assessing"), unchanged=["details"])
    (row,) = plan_of(update, first).current
    assert row.values["details"] == {"v": "A"}
    assert row.filled_from == {"details": source_pos(first)}
    assert row.keep_target == ()
    assert row.values["status"] == "assessing"


def test_unchanged_toast_column_without_donor_keeps_target_value():
    (row,) = plan_of(change("u", 1, lsn=200, row=claim_row(1), unchanged=["details", "description"])).current
    assert set(row.keep_target) == {"details", "description"}
    assert "details" not in row.values and "description" not in row.values
    assert row.filled_from == {}


def test_toast_fill_walks_back_over_updates_that_also_lacked_the_column():
    a = change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"}))
    b = change("u", 1, lsn=200, row=claim_row(1, status="assessing"), unchanged=["details"])
    c = change("u", 1, lsn=300, row=claim_row(1, status="approved"), unchanged=["details"])
    (row,) = plan_of(a, b, c).current
    assert row.values["details"] == {"v": "A"} and row.filled_from == {"details": source_pos(a)}


def test_toast_fill_never_crosses_a_delete():
    plan = plan_of(
        change("c", 1, lsn=100, row=claim_row(1, details={"v": "old life"})),
        change("d", 1, lsn=200),
        change("u", 1, lsn=300, row=claim_row(1), unchanged=["details"]),
    )
    (row,) = plan.current
    assert row.keep_target == ("details",) and "details" not in row.values


def test_toast_fill_uses_the_newest_donor():
    plan = plan_of(
        change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"})),
        change("u", 1, lsn=200, row=claim_row(1, details={"v": "B"})),
        change("u", 1, lsn=300, row=claim_row(1), unchanged=["details"]),
    )
    assert plan.current[0].values["details"] == {"v": "B"}


def test_keys_are_planned_independently():
    plan = plan_of(
        change("c", 1, lsn=100, row=claim_row(1)),
        change("c", 2, lsn=110, row=claim_row(2)),
        change("d", 1, lsn=120),
    )
    rows = by_key(plan.current)
    assert rows[claim_id(1)].deleted and not rows[claim_id(2)].deleted


def test_snapshot_read_then_streamed_update_keeps_the_update():
    plan = plan_of(
        change("u", 1, lsn=900, row=claim_row(1, status="paid")),
        change("r", 1, lsn=800, row=claim_row(1, status="approved"), snapshot=True),
    )
    assert plan.current[0].values["status"] == "paid"


# ------------------------------------------------------------------------------------------------ SCD2


def test_history_rows_chain_validity_in_source_order():
    plan = plan_of(
        change("u", 1, lsn=300, row=claim_row(1, status="approved")),
        change("c", 1, lsn=100, row=claim_row(1, status="fnol")),
        change("u", 1, lsn=200, row=claim_row(1, status="assessing")),
    )
    h = plan.history
    assert [r.values["status"] for r in h] == ["fnol", "assessing", "approved"]
    assert [r.valid_from_ms for r in h] == [BASE_TS_MS + 100, BASE_TS_MS + 200, BASE_TS_MS + 300]
    assert [r.valid_to_ms for r in h] == [BASE_TS_MS + 200, BASE_TS_MS + 300, None]
    assert [r.is_current for r in h] == [False, False, True]
    assert len({r.event_id for r in h}) == 3


def test_history_delete_is_a_current_marker_without_values():
    plan = plan_of(change("c", 1, lsn=100, row=claim_row(1)), change("d", 1, lsn=200))
    created, deleted = plan.history
    assert created.valid_to_ms == deleted.valid_from_ms and not created.is_current
    assert deleted.op == "d" and deleted.values == {} and deleted.is_current


def test_history_keeps_sent_unchanged_list_and_fills_values_from_the_batch():
    plan = plan_of(
        change("c", 1, lsn=100, row=claim_row(1, details={"v": "A"})),
        change("u", 1, lsn=200, row=claim_row(1, status="assessing"), unchanged=["details"]),
    )
    update = plan.history[1]
    assert update.unchanged == ("details",)
    assert update.values["details"] == {"v": "A"}


def test_history_leaves_unfillable_unchanged_columns_out():
    (row,) = plan_of(change("u", 1, lsn=200, row=claim_row(1), unchanged=["details"])).history
    assert row.unchanged == ("details",) and "details" not in row.values


# ------------------------------------------------------------------------------------------------ truncate


def test_truncate_drops_older_changes_from_current_and_marks_live_keys_in_history():
    truncate = change("t", lsn=200)
    plan = plan_of(
        change("c", 1, lsn=100, row=claim_row(1)),
        change("c", 2, lsn=110, row=claim_row(2)),
        change("d", 2, lsn=120),
        truncate,
        change("c", 3, lsn=300, row=claim_row(3)),
    )
    assert [r.key["claim_id"] for r in plan.current] == [claim_id(3)]
    assert plan.truncate is not None and plan.truncate.source_pos == source_pos(truncate)
    history = {(r.key["claim_id"], r.op): r for r in plan.history}
    marker = history[(claim_id(1), "t")]
    assert marker.is_current and marker.event_id == marker_event_id(truncate["event_id"], {"claim_id": claim_id(1)})
    assert not history[(claim_id(1), "c")].is_current
    assert (claim_id(2), "t") not in history  # already deleted before the truncate
    assert history[(claim_id(3), "c")].is_current


# ------------------------------------------------------------------------------------------------ offsets, rejects


def test_next_offsets_cover_every_consumed_record_per_partition():
    batch = consumed([change("c", 1, lsn=100, row=claim_row(1))], partition=0, first_offset=41)
    batch += consumed([change("c", 2, lsn=90, row=claim_row(2)), change("c", 3, lsn=95, row=claim_row(3))],
                      partition=1, first_offset=7)
    plan = plan_batch(reversed(batch))
    assert [(o.partition, o.next_offset) for o in plan.offsets] == [(0, 42), (1, 9)]


def test_unorderable_or_malformed_changes_are_rejected_with_reason_and_still_consumed():
    good = change("c", 1, lsn=100, row=claim_row(1))
    no_lsn = {**change("c", 2, lsn=100, row=claim_row(2)), "lsn": None}
    bad_op = {**change("c", 3, lsn=100, row=claim_row(3)), "op": "x"}
    no_row = {**change("c", 4, lsn=100, row=claim_row(4)), "row": None}
    plan = plan_batch(consumed([good, no_lsn, bad_op, no_row]))
    reasons = [r.reason for r in plan.rejected]
    assert len(reasons) == 3
    assert "lsn" in reasons[0] and "op must be" in reasons[1] and "row image" in reasons[2]
    assert len(plan.tables[TABLE].current) == 1
    assert plan.offsets[0].next_offset == 4


def test_changes_of_several_tables_are_planned_per_table():
    other = {**change("c", 1, lsn=100, row=claim_row(1)), "table": "claim_payments"}
    plan = plan_batch([ConsumedChange(TOPIC, 0, 0, change("c", 1, lsn=100, row=claim_row(1))),
                       ConsumedChange("claims.cdc.claim_payments.v1", 0, 0, other)])
    assert set(plan.tables) == {TABLE, "claim_payments"}
    assert len(plan.offsets) == 2


# ------------------------------------------------------------------------------------------------ lake schema


def test_claims_columns_follow_the_contract_types():
    columns = entity_columns("claims")
    types = {f.name: f.dataType.simpleString() for f in columns.fields}
    assert types["claimed_amount"] == "decimal(12,2)"
    assert types["loss_time"] == "timestamp"
    assert types["loss_local_time"] == "timestamp_ntz"
    assert types["tags"] == "array<string>"
    assert types["details"] == "string"
    assert types["injury_count"] == "int"
    assert columns.key_columns == ("claim_id",)


def test_canonical_values_convert_to_an_arrow_batch_and_extras_are_kept_as_json():
    columns = entity_columns("claims")
    typed, extras = columns.split_values({**claim_row(1), "new_column": {"a": 1}})
    table = arrow_table([{**typed, "_extra_columns": extras}], columns.current_schema())
    assert table.num_rows == 1
    assert str(table.column("claimed_amount")[0]) == "1200.50"
    assert table.column("details")[0].as_py() == '{"notes":"' + "long text " * 5 + '","photos":3}'
    assert extras == {"new_column": '{"a":1}'}


@pytest.mark.parametrize("lsn", [-1, 2**63, "12"])
def test_out_of_range_lsn_cannot_be_ordered(lsn):
    with pytest.raises(ValueError):
        source_pos({**change("c", 1, lsn=100, row=claim_row(1)), "lsn": lsn})
