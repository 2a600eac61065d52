"""`claimsctl sql` reading the lake from an S3 endpoint (moto's S3 server on a throwaway port, standing in for the
embedded SeaweedFS / production S3): DuckDB's httpfs + delta extensions with the CLAIMS_S3_* settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import boto3
import pytest
from click.testing import CliRunner

from claims_shared.settings import PlatformSettings
from claimsctl.cli import main
from claimsctl.lake_sql import connect
from tests.conftest import free_port_in

pytestmark = pytest.mark.integration
BUCKET = "lake-sql-test"


@pytest.fixture(scope="module")
def s3_lake(sample_lake) -> Iterator[tuple[PlatformSettings, str]]:
    port = free_port_in(23200, 23299)
    moto = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        settings = PlatformSettings(s3_endpoint=f"http://127.0.0.1:{port}", s3_access_key="test",
                                    s3_secret_key="test-secret", s3_region="us-east-1")
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint, aws_access_key_id="test",
                          aws_secret_access_key="test-secret", region_name="us-east-1")
        for _ in range(100):
            try:
                s3.create_bucket(Bucket=BUCKET)
                break
            except Exception:  # noqa: BLE001 (server still starting)
                time.sleep(0.1)
        # A Delta table is its files: copying the sample lake keeps every version and commit time.
        root = Path(sample_lake.root)
        for path in root.rglob("*"):
            if path.is_file():
                s3.upload_file(str(path), BUCKET, f"lake/{path.relative_to(root).as_posix()}")
        yield settings, f"s3://{BUCKET}/lake"
    finally:
        server.terminate()
        server.wait(10)


def test_views_run_over_s3(s3_lake, sample_lake) -> None:
    settings, uri = s3_lake
    with connect(uri, settings=settings) as engine:
        assert engine.missing_tables == []
        claims = {r["claim_number"]: r for r in engine.rows("SELECT * FROM gold.claim_360")}
        assert claims[sample_lake.claim_with_everything]["trips_near_loss"] == 1
        assert engine.rows("SELECT count(*) AS n FROM gold.fraud") == [{"n": 4}]


def test_as_of_over_s3_by_version_and_time(s3_lake, sample_lake) -> None:
    settings, uri = s3_lake
    query = f"SELECT status FROM live.claims WHERE claim_number = '{sample_lake.claim_with_everything}'"
    with connect(uri, settings=settings, as_of=0) as engine:
        assert engine.rows(query) == [{"status": "fnol"}]
    with connect(uri, settings=settings, as_of=sample_lake.between_versions) as engine:
        assert engine.rows(query) == [{"status": "fnol"}]
    with connect(uri, settings=settings) as engine:
        assert engine.rows(query) == [{"status": "assessing"}]


def test_claimsctl_sql_reads_the_s3_lake_from_settings(s3_lake, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, uri = s3_lake
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CLAIMS_LAKE_URI", uri)
    from claims_shared import settings as settings_module

    if hasattr(settings_module.get_settings, "cache_clear"):
        settings_module.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["sql", "--format", "json",
                                           "SELECT count(*) AS n FROM gold.claims_sla WHERE is_overdue"])
    finally:
        if hasattr(settings_module.get_settings, "cache_clear"):
            settings_module.get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"n": 1}]
    assert os.environ["CLAIMS_LAKE_URI"] == uri
