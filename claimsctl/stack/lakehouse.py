"""The lakehouse's embedded components: a Spark Connect server (pysail) and the delta_compactor job.

Production runs Spark Connect on a Spark cluster with delta-spark (CLAIMS_SPARK_REMOTE) and the compactor as a
long-running driver; here pysail (a Rust Spark Connect server that reads and writes Delta, LOCAL-STACK.md) stands in,
writing to the embedded S3 store (SeaweedFS) through the same s3:// paths delta-rs readers use.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlparse

from claims_shared.settings import PROJECT_ROOT, PlatformSettings
from claimsctl.stack.process import ManagedProcess, StackError, port_in_use
from services.delta_compactor.lake_lock import lake_lock_path


def spark_server_env(settings: PlatformSettings) -> dict[str, str]:
    """Environment of the pysail server: S3 access for s3:// table paths (object_store's AWS_* variables)."""
    env = {
        "RUST_LOG": "warn",
        "AWS_ACCESS_KEY_ID": settings.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
        "AWS_REGION": settings.s3_region,
    }
    if settings.s3_endpoint:
        env["AWS_ENDPOINT"] = settings.s3_endpoint
        env["AWS_ALLOW_HTTP"] = "true"
    return env


class EmbeddedSpark:
    """`python -m pysail spark server` on 127.0.0.1:`spark_port`; ready when the port accepts connections."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        remote_port = urlparse(settings.spark_remote.replace("sc://", "http://", 1)).port
        if remote_port is not None and remote_port != settings.spark_port:
            raise StackError(f"CLAIMS_SPARK_REMOTE ({settings.spark_remote}) does not point at CLAIMS_SPARK_PORT "
                             f"({settings.spark_port}): set both to the same port.")
        self.workdir = settings.state_dir / "spark"
        self.proc = ManagedProcess("spark", settings.state_dir / "run", settings.state_dir / "logs",
                                   port=settings.spark_port)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc.start(
            [sys.executable, "-m", "pysail", "spark", "server", "--ip", "127.0.0.1",
             "--port", str(self.settings.spark_port), "-C", str(self.workdir)],
            env=spark_server_env(self.settings), cwd=self.workdir,
            ready=lambda: port_in_use(self.settings.spark_port), timeout_s=60,
        )

    def stop(self) -> bool:
        return self.proc.stop(timeout_s=10)


def compactor_status_path(settings: PlatformSettings) -> Path:
    return settings.state_dir / "run" / "delta-compactor.status.json"


class EmbeddedCompactor:
    """`python -m services.delta_compactor` with the lake lock and a status file; ready once it has started."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.status_path = compactor_status_path(settings)
        self.proc = ManagedProcess("delta-compactor", settings.state_dir / "run", settings.state_dir / "logs")

    def start(self) -> None:
        if not self.proc.is_running():
            self.status_path.unlink(missing_ok=True)
        self.proc.start(
            [sys.executable, "-m", "services.delta_compactor", "--lock-file", str(lake_lock_path(self.settings.state_dir)),
             "--status-file", str(self.status_path)],
            env=self.settings.as_env(), cwd=PROJECT_ROOT, ready=self.status_path.exists, timeout_s=90,
        )

    def stop(self) -> bool:
        # SIGTERM: the batch in flight is finished and recorded first.
        return self.proc.stop(timeout_s=60)

    def job_status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
