"""Start, stop and inspect the whole embedded stack in dependency order.

`up` is idempotent (running components are kept) and all-or-nothing: when a component fails to start,
the components this call started are stopped again and the error says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from claims_shared.settings import PlatformSettings
from claimsctl.stack.broker import EmbeddedBroker
from claimsctl.stack.connect import EmbeddedConnect
from claimsctl.stack.lambda_runtime import EmbeddedLambda
from claimsctl.stack.lakehouse import EmbeddedCompactor, EmbeddedSpark
from claimsctl.stack.objectstore import EmbeddedObjectStore, EmbeddedQueue, LandingEventRelay
from claimsctl.stack.postgres import EmbeddedPostgres
from claimsctl.stack.process import ComponentStatus, StackError, rss_kib
from claimsctl.stack.services import EmbeddedService


class Component(Protocol):
    name: str
    durable: bool

    def start(self) -> None: ...
    def stop(self) -> bool: ...
    def status(self) -> ComponentStatus: ...


@dataclass
class _Adapter:
    """Uniform view over the component classes (they share ManagedProcess as `.proc`)."""

    name: str
    impl: object
    durable: bool
    note: str

    def start(self) -> None:
        self.impl.start()  # type: ignore[attr-defined]

    def stop(self) -> bool:
        return bool(self.impl.stop())  # type: ignore[attr-defined]

    def status(self) -> ComponentStatus:
        return self.impl.proc.status(self.note)  # type: ignore[attr-defined]

    def health(self) -> tuple[bool | None, str]:
        """(healthy, why not) from the component's own health check; (None, "") when it has none.

        A stream service whose process runs but cannot reach the broker is up and unhealthy: `status` must say so.
        """
        probe = getattr(self.impl, "health", None)
        if probe is None:
            return None, ""
        if not self.status().running:
            return False, "not running"
        return probe()


class EmbeddedStack:
    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.postgres = EmbeddedPostgres(settings)
        self.broker = EmbeddedBroker(settings)
        broker_note = "on-disk (log in the object store)" if self.broker.durable else "in memory: lost on down"
        # Start order = dependency order; stop runs it backwards.
        self.connect = EmbeddedConnect(settings)
        self.components: list[_Adapter] = [
            _Adapter("objectstore", EmbeddedObjectStore(settings), True, "S3 API, on disk"),
            _Adapter("queue", EmbeddedQueue(settings), False, "SQS API, in memory: pending notifications lost on down"),
            _Adapter("s3-events", LandingEventRelay(settings), True, "landing ObjectCreated -> queue, resumes"),
            _Adapter("postgres", self.postgres, True, "on disk"),
            _Adapter("broker", self.broker, self.broker.durable, broker_note),
            _Adapter("connect", self.connect, True, "Debezium on Kafka Connect, offsets on disk"),
            _Adapter("cdc-normalizer", EmbeddedService(settings, "cdc-normalizer", "services.cdc_normalizer",
                                                       settings.normalizer_web_port),
                     True, "Faust app + batch loop; offsets in the broker"),
            _Adapter("telematics-scorer", EmbeddedService(settings, "telematics-scorer", "services.telematics_scorer",
                                                          settings.scorer_web_port),
                     True, "Faust app + batch loop; driver scores in a changelog table"),
            _Adapter("document-lambda", EmbeddedLambda(settings), True,
                     "awslambdaric fed from the landing queue; sidecars and records idempotent"),
            _Adapter("object-ingestor", EmbeddedService(settings, "object-ingestor", "services.object_ingestor",
                                                        settings.ingestor_web_port),
                     True, "Faust app + batch loops; links/alerts rebuilt from the topics, extract offsets in the broker"),
            _Adapter("spark", EmbeddedSpark(settings), True, "Spark Connect (pysail); tables in the lake"),
            _Adapter("delta-compactor", EmbeddedCompactor(settings), True,
                     f"Kafka -> Delta at {settings.lake_root_uri}; offsets in the lake"),
        ]

    def up(self, on_progress: Callable[[str], None] = lambda _: None) -> list[str]:
        """Start what is not running; returns the names started by this call."""
        self.settings.state_dir.mkdir(parents=True, exist_ok=True)
        started: list[_Adapter] = []
        for component in self.components:
            already = component.status().running
            on_progress(f"{component.name}: {'already running' if already else 'starting'}")
            try:
                component.start()
            except StackError:
                for done in reversed(started):
                    done.stop()
                raise
            except Exception as exc:  # an unexpected failure must not leave half a stack behind
                for done in reversed(started):
                    done.stop()
                raise StackError(f"{component.name}: failed to start: {exc}") from exc
            if not already:
                started.append(component)
            if component.impl is self.postgres:
                # Before anything else can write: re-create a slot released by `down` (see EmbeddedConnect).
                self.connect.reclaim_slot(self.postgres.superuser_conninfo(self.settings.pg_db))
        return [c.name for c in started]

    def down(self, on_progress: Callable[[str], None] = lambda _: None) -> list[str]:
        """Stop every component (Connect first so it flushes offsets; PostgreSQL drops its replication slots)."""
        stopped = []
        for component in reversed(self.components):
            if component.impl is self.postgres and self.postgres.proc.is_running():
                outcome = self.connect.release_slot(self.postgres.superuser_conninfo(self.settings.pg_db))
                on_progress(f"replication slot: {outcome}")
            if component.stop():
                stopped.append(component.name)
                on_progress(f"{component.name}: stopped")
        return stopped

    def statuses(self) -> list[tuple[ComponentStatus, int, bool]]:
        """(status, rss KiB, durable) per component."""
        out = []
        for component in self.components:
            st = component.status()
            out.append((st, rss_kib(st.pid) if st.pid else 0, component.durable))
        return out
