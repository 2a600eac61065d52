"""`claimsctl sql` over a small lake written in the documented layouts: every view runs and shows the known facts,
and --as-of returns an earlier state. Local Delta tables only (tests/conftest.py `sample_lake`), no server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from claims_shared.settings import PROJECT_ROOT
from claimsctl.cli import main
from claimsctl.lake_sql import LakeNotFoundError, LakeSQLError, TimeTravelError, connect
from claimsctl.lake_sql.views import load_views


def sql(lake, query: str, *extra: str) -> list[dict]:
    result = CliRunner().invoke(main, ["sql", "--lake", lake.root, "--format", "json", query, *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by_claim(rows: list[dict]) -> dict[str, dict]:
    return {r["claim_number"]: r for r in rows}


@pytest.mark.parametrize("view", [v.name for v in load_views()])
def test_every_view_runs_through_claimsctl_sql(sample_lake, view: str) -> None:
    rows = sql(sample_lake, f"SELECT * FROM {view}")
    assert rows, f"{view} returned no rows on the sample lake"


def test_claim_360_shows_document_trip_near_loss_and_alert(sample_lake) -> None:
    claims = by_claim(sql(sample_lake, "SELECT * FROM gold.claim_360"))
    one = claims[sample_lake.claim_with_everything]
    assert one["status"] == "assessing"
    assert one["documents"] == 1 and one["document_names"] == "incoming/claim-form-0000001.pdf"
    assert one["trips_near_loss"] == 1  # the redelivered copy of the trip is not counted twice
    assert one["events_near_loss"] == 2 and one["crashes_near_loss"] == 1  # the speeding 2 days before is not
    assert one["fraud_alerts"] == 1 and one["max_alert_severity"] == "high"
    assert one["alert_rules"] == "telematics_far_from_loss_location"
    assert one["adjuster_name"] == "Ada Martin" and one["telematics_device_id"] == sample_lake.device
    assert one["driver_score"] == 71.2  # the latest score of the device
    assert one["customer_name_token"] == "tok_name_1"  # tokens, never clear PII
    assert claims[sample_lake.claim_closed]["paid_amount"] == "1200.00"
    assert sample_lake.claim_deleted not in claims  # tombstone filtered


def test_claim_telematics_keeps_only_the_hour_around_the_loss(sample_lake) -> None:
    rows = sql(sample_lake, "SELECT kind, event_type, minutes_from_loss FROM gold.claim_telematics "
                            f"WHERE claim_number = '{sample_lake.claim_with_everything}' ORDER BY minutes_from_loss")
    assert [(r["kind"], r["event_type"], r["minutes_from_loss"]) for r in rows] == [
        ("trip", None, -30.0), ("event", "harsh_braking", -1.0), ("event", "crash", 0.0)]


def test_claims_sla_flags_the_overdue_claim_with_its_adjuster(sample_lake) -> None:
    claims = by_claim(sql(sample_lake, "SELECT * FROM gold.claims_sla"))
    assert set(claims) == {sample_lake.claim_with_everything, sample_lake.claim_soon_after_inception}  # open only
    overdue = claims[sample_lake.claim_with_everything]
    assert overdue["is_overdue"] is True and overdue["sla_state"] == "overdue"
    assert overdue["adjuster"] == "Ada Martin"
    assert -25 < overdue["hours_to_due"] < -23.9  # due a day before the lake was written
    on_track = claims[sample_lake.claim_soon_after_inception]
    assert on_track["sla_state"] == "on_track" and on_track["adjuster"] == "Noor Haddad"  # open assignment only


def test_fraud_flags_loss_soon_after_inception_and_other_rules(sample_lake) -> None:
    flags = {(r["claim_number"], r["rule"]): r for r in sql(sample_lake, "SELECT * FROM gold.fraud")}
    soon = flags[(sample_lake.claim_soon_after_inception, "loss_soon_after_inception")]
    assert soon["severity"] == "medium" and soon["summary"] == "Loss 8 days after policy inception"
    assert json.loads(soon["evidence_json"]) == {"days_after_inception": 8}
    assert (sample_lake.claim_soon_after_inception, "claimed_over_market_value") in flags
    assert (sample_lake.claim_soon_after_inception, "document_vin_mismatch") in flags
    alert = flags[(sample_lake.claim_with_everything, "telematics_far_from_loss_location")]
    assert alert["source"] == "telematics_scorer" and alert["detected_at"] is not None
    assert not any(claim == sample_lake.claim_closed for claim, _ in flags)


def test_as_of_version_returns_the_earlier_state(sample_lake) -> None:
    now = by_claim(sql(sample_lake, "SELECT claim_number, status FROM live.claims"))
    before = by_claim(sql(sample_lake, "SELECT claim_number, status FROM live.claims", "--as-of", "0"))
    assert now[sample_lake.claim_with_everything]["status"] == "assessing"
    assert before[sample_lake.claim_with_everything]["status"] == "fnol"
    assert sample_lake.claim_deleted in before and sample_lake.claim_deleted not in now


def test_as_of_timestamp_returns_the_state_committed_then(sample_lake) -> None:
    moment = sample_lake.between_versions.isoformat()
    before = by_claim(sql(sample_lake, "SELECT claim_number, status FROM gold.claim_360", "--as-of", moment))
    assert before[sample_lake.claim_with_everything]["status"] == "fnol"
    assert sample_lake.claim_deleted in before


def test_as_of_before_the_lake_existed_gives_empty_current_tables(sample_lake) -> None:
    assert sql(sample_lake, "SELECT * FROM live.claims", "--as-of", "2000-01-01T00:00:00Z") == []


def test_as_of_a_version_a_table_does_not_have_is_an_error(sample_lake) -> None:
    with pytest.raises(TimeTravelError, match="has no version 7"):
        connect(sample_lake.root, as_of=7)
    result = CliRunner().invoke(main, ["sql", "--lake", sample_lake.root, "--as-of", "yesterday", "SELECT 1"])
    assert result.exit_code != 0 and "ISO-8601" in result.output


def test_history_tables_hold_every_version(sample_lake) -> None:
    rows = sql(sample_lake, "SELECT status, _is_current FROM lake_history.claims "
                            f"WHERE claim_id IN (SELECT claim_id FROM live.claims WHERE claim_number = "
                            f"'{sample_lake.claim_with_everything}') ORDER BY _valid_from")
    assert [(r["status"], r["_is_current"]) for r in rows] == [("fnol", False), ("assessing", True)]


def test_csv_and_table_formats(sample_lake) -> None:
    runner = CliRunner()
    csv_out = runner.invoke(main, ["sql", "--lake", sample_lake.root, "--format", "csv",
                                   "SELECT claim_number, claimed_amount FROM live.claims ORDER BY 1"])
    assert csv_out.exit_code == 0
    assert csv_out.stdout.splitlines()[:2] == ["claim_number,claimed_amount", "CLM-2026-0000001,2500.00"]
    table = runner.invoke(main, ["sql", "--lake", sample_lake.root, "SELECT count(*) AS n FROM live.claims"])
    assert table.exit_code == 0 and "3" in table.stdout


def test_a_bad_query_says_what_ran_on_duckdb(sample_lake) -> None:
    with connect(sample_lake.root) as engine, pytest.raises(LakeSQLError, match="as run on DuckDB"):
        engine.arrow("SELECT no_such_column FROM live.claims")


def test_a_directory_without_lake_tables_is_reported(tmp_path) -> None:
    with pytest.raises(LakeNotFoundError, match="no Delta table"):
        connect(tmp_path)


def test_claimsctl_sql_entry_point_in_a_child_process(sample_lake) -> None:
    out = subprocess.run([sys.executable, "-m", "claimsctl.cli", "sql", "--lake", sample_lake.root, "--format", "csv",
                          "SELECT count(*) AS flags FROM gold.fraud"], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["flags", "4"]
