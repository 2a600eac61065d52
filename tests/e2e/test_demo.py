"""The newcomer's path: `claimsctl demo` starts everything, simulates, reports what arrived where, stops."""

from __future__ import annotations

import shutil

import re

import pytest

from tests.conftest import claimsctl, make_state_dir, isolated_settings

pytestmark = pytest.mark.integration


def test_demo_delivers_every_stream_and_stops_cleanly() -> None:
    settings = isolated_settings(make_state_dir("claims-demo-"))
    try:
        _check_demo(settings)
    finally:
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def _check_demo(settings) -> None:  # noqa: ANN001
    result = claimsctl(settings, "demo", "--duration", "12", "--seed", "3", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = re.search(
        r"SUMMARY cdc_events=(\d+) tables_balanced=(\d+)/(\d+) readings=(\d+) landing_files=(\d+) "
        r"documents=(\d+) normalized=(\d+) dead_lettered=(\d+) notifications_waiting=(\d+) "
        r"trips=\d+ fraud_alerts=\d+ lake_tables_equal=(\d+)/(\d+)",
        result.stdout,
    )
    assert summary, result.stdout[-3000:]
    (cdc_events, balanced, tables, readings, files, documents, normalized, dead, waiting, lake_equal,
     lake_tables) = map(int, summary.groups())
    assert cdc_events > 100
    # A fresh stack: every row in PostgreSQL is accounted for by change events, table by table.
    assert balanced == tables
    assert readings > 0 and files > 0
    # Every landing file went S3 -> notification -> queue -> Lambda -> one document record.
    assert (documents, waiting) == (files, 0)
    # The compactor caught up: every current Delta table equals its PostgreSQL table (claimsctl reconcile).
    assert lake_equal == lake_tables == tables
    # Every raw change event became exactly one normalized record.
    assert (normalized, dead) == (cdc_events, 0)
    status = claimsctl(settings, "status", "--json")
    assert '"running": true' not in status.stdout, "demo left a component running"
