"""Shared fixtures. Integration tests run the real embedded stack on their own ports and state directory,
so they never touch a stack a developer has running with the defaults."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from claims_shared.settings import PROJECT_ROOT, PlatformSettings

# Ports of the test stack, apart from the defaults so a developer's running stack is untouched, and all below
# 32768: Linux hands out 32768-60999 as ephemeral client ports, so a server port there can be taken at random.
# SeaweedFS also listens on each of its ports + 10000. CLAIMS_TEST_PORT_OFFSET (a multiple of 100, at most 1400)
# shifts them all, so two checkouts can run their integration tests at the same time.
_OFFSET = int(os.environ.get("CLAIMS_TEST_PORT_OFFSET", "0"))
if _OFFSET % 100 or not 0 <= _OFFSET <= 1400:
    raise ValueError(f"CLAIMS_TEST_PORT_OFFSET must be a multiple of 100 between 0 and 1400, got {_OFFSET}")
TEST_PORTS = {
    "pg_port": 25432 + _OFFSET,
    "kafka_bootstrap": f"127.0.0.1:{29092 + _OFFSET}",
    "s3_endpoint": f"http://127.0.0.1:{21333 + _OFFSET}",
    "sqs_endpoint": f"http://127.0.0.1:{25000 + _OFFSET}",
    "objectstore_master_port": 21334 + _OFFSET,
    "objectstore_volume_port": 21335 + _OFFSET,
    "objectstore_filer_port": 21336 + _OFFSET,
    "normalizer_web_port": 24066 + _OFFSET,
    "scorer_web_port": 24067 + _OFFSET,
    "ingestor_web_port": 24068 + _OFFSET,
    "lambda_runtime_port": 24010 + _OFFSET,
    "spark_port": 24100 + _OFFSET,
    "spark_remote": f"sc://127.0.0.1:{24100 + _OFFSET}",
}
# Spark Connect server of tests/integration/test_delta_compactor.py (its own, outside any stack).
WRITER_TEST_SPARK_PORT = 26150 + _OFFSET


def shifted_test_ports(shift: int) -> dict[str, Any]:
    """TEST_PORTS moved up by `shift` (ports and the port of each URL), for a second stack beside the tests' own."""
    out: dict[str, Any] = {}
    for name, value in TEST_PORTS.items():
        if isinstance(value, int):
            out[name] = value + shift
        else:
            head, port = value.rsplit(":", 1)
            out[name] = f"{head}:{int(port) + shift}"
    return out


def make_state_dir(prefix: str) -> Path:
    # Under /tmp with o+x, because PostgreSQL runs as the `postgres` user when the tests run as root.
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def isolated_settings(state_dir: Path, **overrides: object) -> PlatformSettings:
    return PlatformSettings(state_dir=state_dir, **{**TEST_PORTS, **overrides})  # type: ignore[arg-type]


def claimsctl(settings: PlatformSettings, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real `claimsctl` CLI in a child process with these settings."""
    env = {**os.environ, **settings.as_env(), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "claimsctl.cli", *args],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture(scope="module")
def stack_settings() -> Iterator[PlatformSettings]:
    """Settings of a test module's own stack: a fresh state directory, the test ports (not started here)."""
    state = make_state_dir("claims-test-")
    yield isolated_settings(state)
    subprocess.run(["rm", "-rf", str(state)], check=False)


def free_port_in(first: int, last: int) -> int:
    """A port in [first, last] nothing listens on now (for throwaway test servers)."""
    import socket

    for port in range(first, last + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory: pytest.TempPathFactory):
    """A small lake in every documented layout with known facts (claimsctl/lake_sql/sample_lake.py)."""
    from claimsctl.lake_sql.sample_lake import write_sample_lake

    return write_sample_lake(tmp_path_factory.mktemp("lake"))
