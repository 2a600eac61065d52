"""The object_ingestor Faust app: lifecycle, /health and /metrics around two confluent-kafka batch loops.

- Extracts (main loop, extract_runner.py): document records of CSV / JSON-lines extracts -> their rows streamed from
  S3 -> `claims.extract-rows.v1` / `claims.extract-rejects.v1`. A consumer group that commits: scale it out with
  more instances (one partition of `claims.documents.v1` each).
- Evidence (side loop `evidence`, evidence_runner.py): documents + claims/policies CDC -> document links and photo
  fraud alerts. One instance reads every partition (its inputs are keyed differently) and rebuilds its state on
  start; /metrics shows its figures under `evidence`.

Faust's per-message path costs ~20x a batch loop here (LOCAL-STACK.md), so the app hosts the loops and agents
none. The app id differs from the loops' consumer groups: two group protocols under one id are rejected by the
broker (INCONSISTENT_GROUP_PROTOCOL).
"""

from __future__ import annotations

import faust

from claims_shared.batch_loop import serve_batch_loop
from claims_shared.settings import PlatformSettings
from services.object_ingestor.config import DocumentRulesConfig, document_rules_config
from services.object_ingestor.evidence_runner import DocumentEvidenceLoop
from services.object_ingestor.extract_runner import ExtractLoop

APP_ID = "object-ingestor-app"


def create_app(settings: PlatformSettings, *, web_port: int, config: DocumentRulesConfig | None = None) -> faust.App:
    config = config or document_rules_config(settings.ingestor_rule_overrides)
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust creates its datadir, not parents
    app = faust.App(
        APP_ID,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        web_host="127.0.0.1",
        # Faust keeps local table/offset files here; under the state dir, not the working directory.
        datadir=str(settings.state_dir / "faust" / "{conf.name}-data"),
        web_port=web_port,
        broker_session_timeout=6,
        autodiscover=False,
    )
    serve_batch_loop(app, lambda: ExtractLoop(settings),
                     side_loops={"evidence": lambda: DocumentEvidenceLoop(settings, config)})
    return app
