"""Shared by the benchmarks: run a stream service on one pinned core and read its throughput from /metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

from claims_shared.settings import PROJECT_ROOT, PlatformSettings


def pinned(argv: list[str]) -> list[str]:
    """`argv` pinned to CPU 0 (when taskset exists), so every measured path gets one core."""
    return ["taskset", "-c", "0", *argv] if shutil.which("taskset") else argv


def service_throughput(settings: PlatformSettings, module: str, web_port: int, count: int) -> tuple[float, dict]:
    """Start `python -m <module>` with `settings`, wait until its /metrics counts `count` inputs, stop it.

    Returns (inputs per second over the service's own first-message..last-batch window, the final metrics).
    """
    env = {**os.environ, **settings.as_env()}
    log_path = settings.state_dir / "service.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(pinned([sys.executable, "-m", module, "--loglevel", "warn"]),
                                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{web_port}/metrics"
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{module} exited: {log_path.read_text()[-3000:]}")
            try:
                metrics = json.loads(urllib.request.urlopen(url, timeout=2).read())
            except OSError:
                metrics = {}
            if metrics.get("in", 0) >= count:
                window = metrics["last_batch_done_at"] - metrics["first_message_at"]
                return metrics["in"] / window, metrics
            time.sleep(0.5)
        raise SystemExit(f"{module} did not finish in time")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
