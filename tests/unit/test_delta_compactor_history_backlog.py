"""The compactor's split of a batch: current tables at once, history (and offsets) later from the backlog.

Which batches may be split is a pure function of the plan (`needs_history_first`); the backlog is a thread-safe
container whose `take`/`put_back` must neither lose nor forget offsets when a history write fails.
"""

from __future__ import annotations

import threading
import time

from services.delta_compactor.history_backlog import HistoryBacklog
from services.delta_compactor.planning import needs_history_first, plan_batch
from tests.cdc_changes import TABLE, change, claim_row, consumed


def table_plan(*changes: dict):
    return plan_batch(consumed(changes)).tables[TABLE]


def test_full_row_changes_may_write_current_before_history():
    plan = table_plan(change("c", 1, lsn=100, row=claim_row(1)), change("u", 1, lsn=200, row=claim_row(1)),
                      change("d", 2, lsn=300))
    assert not needs_history_first(plan)


def test_unchanged_toast_columns_need_the_history_first():
    # No donor in the batch: the MERGE takes the stored value, which the history stitch may have to correct first.
    alone = table_plan(change("u", 1, lsn=200, row=claim_row(1), unchanged=["details"]))
    assert alone.current[0].keep_target and needs_history_first(alone)
    # Donor in the batch: still a fill (the MERGE compares the donor's position with the stored row's).
    donor = table_plan(change("c", 1, lsn=100, row=claim_row(1)),
                       change("u", 1, lsn=200, row=claim_row(1), unchanged=["details"]))
    assert donor.current[0].filled_from and needs_history_first(donor)


def test_an_intermediate_toast_change_alone_still_needs_the_history_first():
    # The winner carries every column, but the history row of the TOAST change is re-filled from stored versions.
    plan = table_plan(change("u", 1, lsn=200, row=claim_row(1), unchanged=["details"]),
                      change("u", 1, lsn=300, row=claim_row(1, status="closed")))
    assert not plan.current[0].keep_target and not plan.current[0].filled_from
    assert needs_history_first(plan)


def test_truncates_need_the_history_first():
    assert needs_history_first(table_plan(change("c", 1, lsn=100, row=claim_row(1)), change("t", lsn=200)))


def test_backlog_take_returns_everything_once_with_the_highest_offsets():
    backlog = HistoryBacklog()
    first = consumed([change("c", 1, lsn=100, row=claim_row(1))])
    second = consumed([change("u", 1, lsn=200, row=claim_row(1))], first_offset=1)
    backlog.add(first, {("claims", 0): 1})
    backlog.add(second, {("claims", 0): 2, ("trips", 3): 7})
    backlog.add([], {("claims", 0): 1})  # an older mark never moves an offset back
    assert len(backlog) == 2 and not backlog.empty()
    changes, offsets = backlog.take()
    assert changes == [*first, *second]
    assert offsets == {("claims", 0): 2, ("trips", 3): 7}
    assert backlog.empty() and len(backlog) == 0 and backlog.age_s() == 0.0
    assert backlog.take() == ([], {})


def test_offsets_alone_are_kept_until_written():
    # A batch of append-table records only has no CDC change, but its offsets must still be recorded.
    backlog = HistoryBacklog()
    backlog.add([], {("telematics.trips.v1", 0): 40})
    assert not backlog.empty() and len(backlog) == 0
    assert backlog.take() == ([], {("telematics.trips.v1", 0): 40})


def test_put_back_after_a_failed_write_keeps_order_offsets_and_age():
    backlog = HistoryBacklog()
    failed = consumed([change("c", 1, lsn=100, row=claim_row(1))])
    backlog.add(failed, {("claims", 0): 1})
    time.sleep(0.02)
    taken = backlog.take()
    later = consumed([change("c", 2, lsn=200, row=claim_row(2))], first_offset=1)
    backlog.add(later, {("claims", 0): 2})
    backlog.put_back(*taken)
    changes, offsets = backlog.take()
    assert changes == [*failed, *later]
    assert offsets == {("claims", 0): 2}


def test_backlog_is_safe_across_threads():
    backlog = HistoryBacklog()
    per_thread, threads = 500, 4
    taken: list = []
    done = threading.Event()

    def producer(n: int) -> None:
        for i in range(per_thread):
            backlog.add(consumed([change("c", n * per_thread + i, lsn=10 + i, row=claim_row(i))],
                               partition=n, first_offset=i), {("claims", n): i + 1})

    def drainer() -> None:
        while not done.is_set() or not backlog.empty():
            changes, _ = backlog.take()
            taken.extend(changes)

    workers = [threading.Thread(target=producer, args=(n,)) for n in range(threads)]
    drain = threading.Thread(target=drainer)
    drain.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    drain.join()
    assert len(taken) == per_thread * threads
    assert len({(c.partition, c.offset) for c in taken}) == per_thread * threads


def test_each_lake_root_commits_lag_to_its_own_consumer_group():
    from claims_shared.settings import PlatformSettings
    from services.delta_compactor.job import GROUP_ID, consumer_group

    assert consumer_group(PlatformSettings(lake_root="")) == GROUP_ID
    backfill = consumer_group(PlatformSettings(lake_root="s3://lake/backfill-1"))
    assert backfill.startswith(GROUP_ID + "-") and backfill != GROUP_ID
    assert backfill == consumer_group(PlatformSettings(lake_root="s3://lake/backfill-1"))
    assert backfill != consumer_group(PlatformSettings(lake_root="s3://lake/backfill-2"))
