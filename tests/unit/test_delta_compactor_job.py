"""delta_compactor job settings that need no broker or Spark."""

from __future__ import annotations


def test_each_lake_root_commits_lag_to_its_own_consumer_group():
    from claims_shared.settings import PlatformSettings
    from services.delta_compactor.job import GROUP_ID, consumer_group

    assert consumer_group(PlatformSettings(lake_root="")) == GROUP_ID
    backfill = consumer_group(PlatformSettings(lake_root="s3://lake/backfill-1"))
    assert backfill.startswith(GROUP_ID + "-") and backfill != GROUP_ID
    assert backfill == consumer_group(PlatformSettings(lake_root="s3://lake/backfill-1"))
    assert backfill != consumer_group(PlatformSettings(lake_root="s3://lake/backfill-2"))
