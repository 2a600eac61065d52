"""Document evidence loop: documents, claims and policies in; document links and fraud alerts out (logic: evidence.py).

The three inputs are keyed differently (document, claim, policy), so one instance reads every partition of all three
(assigned from the beginning, never committed) and keeps the state in memory, like telematics_scorer's fraud loop.
On start it rebuilds the state from the topics and reads back the links and alert ids it already published, so a
restart neither loses nor repeats one. Decisions wait until every input partition was read to its end once (a
document read before its claim would otherwise look unlinked). Claims/policies records that are not their contract
go to `claims.objects.dead-letter.v1`; undecodable document records are dead-lettered by the extract loop (which
commits, so each is dead-lettered once) and only counted here.
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
from claims_shared.contracts.documents import DOCUMENTS_TOPIC, decode_document_record
from claims_shared.contracts.fraud import FRAUD_ALERTS_TOPIC, decode_alert, encode_alert
from claims_shared.contracts.objects import (
    DOCUMENT_LINKS_TOPIC,
    OBJECTS_DEAD_LETTER_TOPIC,
    OUTPUT_TOPICS,
    dead_letter_value,
    decode_document_link,
    encode_document_link,
)
from claims_shared.contracts.topics import OWNED_TOPICS
from claims_shared.settings import PlatformSettings
from services.object_ingestor.config import DocumentRulesConfig
from services.object_ingestor.evidence import SOURCE, DocumentEvidence

log = logging.getLogger("object_ingestor.evidence")

GROUP_ID = "object-ingestor-evidence"  # never commits: its position is rebuilt from the beginning on start
CLAIMS_TOPIC = normalized_topic("claims")
POLICIES_TOPIC = normalized_topic("policies")
INPUT_TOPICS = (POLICIES_TOPIC, CLAIMS_TOPIC, DOCUMENTS_TOPIC)


class DocumentEvidenceLoop(StateFromTopicsLoop):
    input_topics = INPUT_TOPICS

    def __init__(self, settings: PlatformSettings, config: DocumentRulesConfig | None = None, *,
                 batch_size: int = 2000) -> None:
        super().__init__()
        self.settings = settings
        self.batch_size = batch_size
        self.evidence = DocumentEvidence(config, incoming_prefix=settings.landing_incoming_prefix)
        ensure_topics(settings, [*OUTPUT_TOPICS, *(t for t in OWNED_TOPICS if t.name == FRAUD_ALERTS_TOPIC)])
        self.producer = make_producer(settings, **{"linger.ms": 5})
        self.evidence.mark_published_links(published_links(settings))
        self.evidence.mark_published_alerts(published_alert_ids(settings))
        self.consumer: Consumer = make_consumer(settings, GROUP_ID, **{"enable.partition.eof": True})
        self._dead_letters_to_retry: list[Output] = []

    def run_once(self, timeout_s: float = 1.0) -> int:
        messages = self.poll_inputs(timeout_s)
        dead_letters, self._dead_letters_to_retry = self._dead_letters_to_retry, []
        for m in messages:
            problem = self._apply(m)
            if problem is not None:
                dead_letters.append(problem)
        collected = self.evidence.collect(int(time.time() * 1000)) if self.caught_up else None
        outputs: list[Output] = []
        if collected is not None:
            outputs += [(DOCUMENT_LINKS_TOPIC, *encode_document_link(link)) for link in collected.links]
            outputs += [(FRAUD_ALERTS_TOPIC, *encode_alert(alert)) for alert in collected.alerts]
        try:
            self.produce_acknowledged(outputs + dead_letters)
        except DeliveryFailed:
            # Applied inputs will not be re-read: keep their dead letters; the dirty documents stay dirty and are
            # collected again (same alert ids, same links).
            self._dead_letters_to_retry = dead_letters
            raise
        if collected is not None:
            self.evidence.confirm(collected)
        self.counters["in"] += len(messages)
        self.counters["dead_lettered"] += len(dead_letters)
        self.batch_done()
        return len(messages)

    def metrics(self) -> dict[str, Any]:
        return {**super().metrics(), **self.evidence.counters, **self.evidence.gauges(),
                "pending_documents": self.evidence.pending, "caught_up": self.caught_up}

    # -- internals -------------------------------------------------------------------------------------------
    def _apply(self, m: Message) -> Output | None:
        """Feed one input to the state; returns a dead letter when a CDC record is not what its contract says."""
        value = m.value()
        if not value:
            return None  # a tombstone: the delete event before it already said everything
        topic = m.topic()
        if topic == DOCUMENTS_TOPIC:
            try:
                record = decode_document_record(value)
            except Exception:  # noqa: BLE001 - dead-lettered by the extract loop; counted here
                self.evidence.counters["documents_undecodable"] += 1
                return None
            self.evidence.add_document(record)
            return None
        try:
            if topic == CLAIMS_TOPIC:
                self.evidence.add_claim_change(decode_change("claims", value))
            elif topic == POLICIES_TOPIC:
                self.evidence.add_policy_change(decode_change("policies", value))
            return None
        except Exception as exc:  # noqa: BLE001 - any failure is this record's problem, not the stream's
            reason = f"not a valid {topic} record for document linking: {type(exc).__name__}: {exc}"
            log.warning("dead-lettered %s:%s:%s (%s)", topic, m.partition(), m.offset(), reason)
            body = dead_letter_value(error_class="UndecodableLinkInput", reason=reason, topic=topic,
                                     partition=m.partition(), offset=m.offset(), key=m.key(), value=value)
            return OBJECTS_DEAD_LETTER_TOPIC, f"{topic}:{m.partition()}:{m.offset()}".encode(), body, []


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


def published_links(settings: PlatformSettings) -> dict[str, tuple[str | None, str]]:
    """Latest published link per document (the links topic, read to idleness; one partition per document)."""
    links: dict[str, tuple[str | None, str]] = {}

    def note(m: Message) -> None:
        try:
            link = decode_document_link(m.value())
        except Exception:  # noqa: BLE001 - not ours to judge here
            return
        links[link["document_id"]] = (link["claim_id"], link["method"])

    read_topic_to_idleness(settings, DOCUMENT_LINKS_TOPIC, note)
    return links
