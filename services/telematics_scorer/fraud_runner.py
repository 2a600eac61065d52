"""Fraud evidence loop: claims, vehicles and trips in, `claims.fraud-alerts.v1` out (fraud_matcher.py holds the logic).

The three inputs are keyed differently (claim, vehicle, device), so no partitioning lets one instance see a claim
and its vehicle's trips together: one instance reads every partition of all three (assigned, not subscribed) and
keeps the state in memory. Its state is the topics themselves: on start it reads them from the beginning (trips
within `trace_retention_s` are kept) and the alert ids it already published from the alerts topic, so a restart
neither loses nor repeats an alert, and nothing needs committing. Alerts are only decided once every input
partition was read to its end once (a claim read before its vehicle's trips would otherwise look unexplained).

Volumes are low (one trip per vehicle per drive, one claim change per handler action), so one instance goes a long
way; memory is about 1 KB per trip kept. Bad input (bytes that are not the contract) goes to the telematics
dead-letter topic with the reason.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Consumer, Message

from claims_shared.batch_loop import DeliveryFailed, Output, StateFromTopicsLoop
from claims_shared.clients.kafka import consumer as make_consumer
from claims_shared.clients.kafka import ensure_topics, read_topic_to_idleness
from claims_shared.clients.kafka import producer as make_producer
from claims_shared.contracts.cdc import normalized_topic
from claims_shared.contracts.cdc_avro import decode_change
from claims_shared.contracts.fraud import FRAUD_ALERTS_TOPIC, decode_alert, encode_alert
from claims_shared.contracts.telematics import (
    DEAD_LETTER_TOPIC,
    TRIP_SCHEMA,
    TRIPS_TOPIC,
    dead_letter_value,
    decode_epoch_ms,
)
from claims_shared.contracts.topics import OWNED_TOPICS
from claims_shared.settings import PlatformSettings
from services.telematics_scorer.fraud_evidence import FraudEvidenceConfig
from services.telematics_scorer.fraud_matcher import SOURCE, FraudMatcher

log = logging.getLogger("telematics_scorer.fraud")

GROUP_ID = "telematics-fraud-evidence"  # never commits: its position is rebuilt from the beginning on start
CLAIMS_TOPIC = normalized_topic("claims")
VEHICLES_TOPIC = normalized_topic("vehicles")
INPUT_TOPICS = (VEHICLES_TOPIC, TRIPS_TOPIC, CLAIMS_TOPIC)


class FraudEvidenceLoop(StateFromTopicsLoop):
    input_topics = INPUT_TOPICS

    def __init__(self, settings: PlatformSettings, config: FraudEvidenceConfig | None = None, *,
                 batch_size: int = 2000) -> None:
        super().__init__()
        self.settings = settings
        self.batch_size = batch_size
        self.matcher = FraudMatcher(config)
        ensure_topics(settings, [t for t in OWNED_TOPICS if t.name == FRAUD_ALERTS_TOPIC])
        self.producer_factory = lambda: make_producer(settings, **{"linger.ms": 5, "compression.type": "none"})
        self.producer = self.producer_factory()
        self.matcher.mark_published(published_alert_ids(settings))
        self.consumer: Consumer = make_consumer(settings, GROUP_ID, **{"enable.partition.eof": True})
        self._dead_letters_to_retry: list[Output] = []

    def run_once(self, timeout_s: float = 1.0) -> int:
        messages = self.poll_inputs(timeout_s)
        dead_letters, self._dead_letters_to_retry = self._dead_letters_to_retry, []
        for m in messages:
            problem = self._apply(m)
            if problem is not None:
                dead_letters.append(problem)
        decisions = self.matcher.collect(int(time.time() * 1000)) if self.caught_up else []
        alerts = [(FRAUD_ALERTS_TOPIC, *encode_alert(a)) for d in decisions for a in d.alerts]
        try:
            self.produce_acknowledged(alerts + dead_letters)
        except DeliveryFailed:
            # The inputs are applied already and will not be re-read: keep their dead letters for the next try.
            # The decisions stay pending in the matcher and are collected again (same alert ids).
            self._dead_letters_to_retry = dead_letters
            raise
        self.matcher.confirm(decisions)
        self.counters["in"] += len(messages)
        self.counters["dead_lettered"] += len(dead_letters)
        if decisions:
            self.matcher.prune()
        self.batch_done()
        return len(messages)

    def metrics(self) -> dict[str, Any]:
        return {**super().metrics(), **self.matcher.counters, "pending_claims": self.matcher.pending,
                "caught_up": self.caught_up}

    # -- internals -------------------------------------------------------------------------------------------
    def _apply(self, m: Message) -> Output | None:
        """Feed one input to the matcher; returns a dead letter when it is not what its contract says."""
        value = m.value()
        if not value:
            return None  # a tombstone: the delete event before it already said everything
        topic = m.topic()
        try:
            if topic == TRIPS_TOPIC:
                self.matcher.add_trip(m.partition(), decode_epoch_ms(TRIP_SCHEMA, value))
            elif topic == CLAIMS_TOPIC:
                self.matcher.add_claim_change(decode_change("claims", value))
            elif topic == VEHICLES_TOPIC:
                self.matcher.add_vehicle_change(decode_change("vehicles", value))
            return None
        except Exception as exc:  # noqa: BLE001 - any failure is this record's problem, not the stream's
            reason = f"not a valid {topic} record for fraud evidence: {type(exc).__name__}: {exc}"
            log.warning("dead-lettered %s:%s:%s (%s)", topic, m.partition(), m.offset(), reason)
            body = dead_letter_value(error_class="UndecodableFraudInput", reason=reason, topic=topic,
                                     partition=m.partition(), offset=m.offset(), key=m.key(), value=value)
            return DEAD_LETTER_TOPIC, f"{topic}:{m.partition()}:{m.offset()}".encode(), body, []


def published_alert_ids(settings: PlatformSettings) -> set[str]:
    """Ids of the alerts this service already published (the alerts topic, read to idleness)."""
    ids: set[str] = set()

    def note(m: Message) -> None:
        try:
            alert = decode_alert(m.value())
        except Exception:  # noqa: BLE001 - another writer's bad record is not ours to judge
            return
        if alert["source"] == SOURCE:
            ids.add(alert["alert_id"])

    read_topic_to_idleness(settings, FRAUD_ALERTS_TOPIC, note)
    return ids
