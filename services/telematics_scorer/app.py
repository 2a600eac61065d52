"""The telematics_scorer Faust app: lifecycle, /health, /metrics, the readings batch loop and the driver-score table.

- Readings (high volume) go through TelematicsRunner's confluent-kafka batch loop in a worker thread (runner.py).
- Fraud evidence (claims, vehicles and trips -> fraud alerts, low volume) runs as a second batch loop in its own
  thread (fraud_runner.py); /metrics shows its figures under `fraud_evidence`.
- Score updates (one message per closed trip, low volume) go through a Faust agent that owns the changelog-backed
  table `driver_scores` (vehicle_id -> DriverScore dict): Faust's per-message cost is irrelevant at this rate, and
  the table survives restarts by replaying its changelog topic (`store="memory://"`; the changelog is the state).
  Table writes happen inside the agent's stream iteration, as Faust requires.

The app id differs from the batch loop's consumer group: two group protocols under one id are rejected by the
broker (INCONSISTENT_GROUP_PROTOCOL).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import faust

from claims_shared.batch_loop import serve_batch_loop
from claims_shared.contracts.telematics import (
    DRIVER_SCORE_SCHEMA,
    DRIVER_SCORES_TOPIC,
    SCORE_UPDATES_TOPIC,
    TELEMATICS_PARTITIONS,
    TRIP_SCHEMA,
    decode_epoch_ms,
    encode_record,
    schema_headers,
)
from claims_shared.settings import PlatformSettings
from services.telematics_scorer.config import ScoringConfig, scoring_config
from services.telematics_scorer.fraud_evidence import fraud_evidence_config
from services.telematics_scorer.fraud_runner import FraudEvidenceLoop
from services.telematics_scorer.records import driver_score_record, trip_from_record
from services.telematics_scorer.runner import TelematicsRunner
from services.telematics_scorer.scoring import DriverScore, update_driver_score

log = logging.getLogger("telematics_scorer")

APP_ID = "telematics-scorer-app"


def create_app(settings: PlatformSettings, *, web_port: int, config: ScoringConfig | None = None) -> faust.App:
    config = config or scoring_config(settings.scoring_overrides)
    fraud_config = fraud_evidence_config(settings.fraud_evidence_overrides)
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
        # One record per produced batch. The local broker reports a partition's end as its last batch's base
        # offset + 1 (LOCAL-STACK.md), so table recovery would stop before the last records of a multi-record
        # changelog batch and restore stale scores. This app produces one score per trip, so batching buys nothing.
        producer_max_batch_size=1,
        topic_partitions=TELEMATICS_PARTITIONS,
        autodiscover=False,
    )
    score_counters: Counter = Counter()
    updates = app.topic(SCORE_UPDATES_TOPIC, key_serializer="raw", value_serializer="raw",
                        partitions=TELEMATICS_PARTITIONS)
    scores_out = app.topic(DRIVER_SCORES_TOPIC, key_serializer="raw", value_serializer="raw",
                           partitions=TELEMATICS_PARTITIONS)
    # Values are DriverScore.to_dict() in the app's default JSON serializer (no value_type: Faust would look for
    # a Record's from_data on it).
    driver_scores = app.Table("driver_scores", partitions=TELEMATICS_PARTITIONS, key_type=str)

    @app.agent(updates)
    async def fold_trips_into_driver_scores(stream: Any) -> None:
        async for event in stream.events():
            try:
                trip = trip_from_record(decode_epoch_ms(TRIP_SCHEMA, event.value))
            except Exception as exc:  # noqa: BLE001 - the batch loop wrote it; a bad one is counted, not fatal
                score_counters["score_updates_undecodable"] += 1
                log.warning("undecodable score update at offset %s: %s", event.message.offset, exc)
                continue
            previous = driver_scores.get(trip.vehicle_id)
            before = DriverScore.from_dict(previous) if previous else None
            after = update_driver_score(before, trip, config)
            score_counters["score_updates"] += 1
            if after == before:
                score_counters["score_updates_repeated"] += 1  # a trip already folded in (replay after a crash)
                continue
            driver_scores[trip.vehicle_id] = after.to_dict()
            # The table's changelog record is only queued ("send soon"); wait until the broker has it before the
            # score is published, so a score anyone has seen is one a restarted table recovers (at 1 update per
            # trip the wait costs nothing).
            await app.producer.flush()
            await scores_out.send(key=trip.vehicle_id.encode(),
                                  value=encode_record(DRIVER_SCORE_SCHEMA, driver_score_record(after, trip.trip_id)),
                                  headers=schema_headers(DRIVER_SCORE_SCHEMA))

    serve_batch_loop(app, lambda: TelematicsRunner(settings, config), extra_metrics=lambda: dict(score_counters),
                     side_loops={"fraud_evidence": lambda: FraudEvidenceLoop(settings, fraud_config)})

    @app.page("/driver-scores/{vehicle_id}")
    async def driver_score(web: Any, request: Any, vehicle_id: str) -> Any:
        value = driver_scores.get(vehicle_id)  # this instance's partitions only
        return web.json(value or {}, status=200 if value else 404)

    return app
