"""telematics_scorer's hot path: a confluent-kafka batch loop over `telematics.readings.v1`.

consume -> decode and validate (bad readings to the dead-letter topic) -> assemble trips (stream.py) -> produce
closed trips, their events and one score update per trip -> flush (wait for acks) -> commit. Faust's per-message
path costs ~20x more CPU than this loop (LOCAL-STACK.md), so the Faust app (app.py) runs it in a worker thread and
only handles the low-volume score updates itself.

Offsets and open trips. Readings of a trip that has not closed yet live only in this process's memory. Committing
the batch's end offset would tell the broker they are done; after a crash they would never be read again and the
trip would be lost or cut short. So per partition the commit is

    min(last consumed offset + 1, lowest offset still held by an open trip on that partition)

and a restart re-reads every reading an open trip needs. What else it re-reads (readings of trips already
published) is recognised: at start-up the loop reads back the score updates it published, which name each
vehicle's last published trip end, and readings no newer than that are dropped as `late_after_close`. Outputs are
committed only after the broker acknowledged them, so a crash repeats at most what was not committed; repeats carry
the same deterministic trip_id / event_id, and the driver-score fold ignores a trip it has already seen.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import (
    Consumer,
    Message,
    Producer,
    TopicPartition,
)

from claims_shared.batch_loop import BatchLoop
from claims_shared.clients.kafka import consumer as make_consumer
from claims_shared.clients.kafka import ensure_topics, read_topic_to_idleness
from claims_shared.clients.kafka import producer as make_producer
from claims_shared.contracts.telematics import (
    DEAD_LETTER_TOPIC,
    EVENT_SCHEMA,
    EVENTS_TOPIC,
    OUTPUT_TOPICS,
    READINGS_TOPIC,
    SCORE_UPDATES_TOPIC,
    TRIP_SCHEMA,
    TRIPS_TOPIC,
    dead_letter_value,
    decode_epoch_ms,
    decode_reading,
    encode_record,
    schema_headers,
)
from claims_shared.settings import PlatformSettings
from services.telematics_scorer.config import ScoringConfig
from services.telematics_scorer.records import event_records, trip_record
from services.telematics_scorer.stream import TripAssembler, reading_problems
from services.telematics_scorer.trips import Trip

log = logging.getLogger("telematics_scorer")

GROUP_ID = "telematics-scorer"


class TelematicsRunner(BatchLoop):
    def __init__(self, settings: PlatformSettings, config: ScoringConfig | None = None, *, group_id: str = GROUP_ID,
                 batch_size: int = 2000, topic: str = READINGS_TOPIC) -> None:
        self.settings = settings
        self.config = config or ScoringConfig()
        self.topic = topic
        self.batch_size = batch_size
        super().__init__()
        self.assembler = TripAssembler(self.config)
        self._position: dict[int, int] = {}     # partition -> next offset to read
        self._committed: dict[int, int] = {}
        self._last_arrival: dict[int, float] = {}   # partition -> monotonic time its last reading arrived
        ensure_topics(settings, OUTPUT_TOPICS)
        # Uncompressed: the score updates are read by Faust's aiokafka consumer, which cannot decompress lz4 without
        # an extra library (it crashes the worker). Outputs are a few records per trip, so compression buys little.
        self.producer_factory = lambda: make_producer(
            settings, **{"linger.ms": 5, "batch.num.messages": 10000, "compression.type": "none"})
        self.producer: Producer = self.producer_factory()
        self.assembler.seed_scored(last_published_trip_ends(settings))
        self.consumer: Consumer = make_consumer(settings, group_id)
        self.consumer.subscribe([topic], on_revoke=self._on_revoke, on_lost=self._on_revoke)

    def run_once(self, timeout_s: float = 1.0) -> int:
        """One batch; returns the number of input messages handled (0 when none arrived)."""
        good = self.poll(self.batch_size, timeout_s)
        if not good:
            self._close_idle_partitions()
            return 0
        outputs: list[tuple[str, bytes | None, bytes, list]] = []
        records: list[dict[str, Any]] = []
        sources: list[Message] = []
        for m in good:
            value = m.value()
            try:
                if not value:
                    raise ValueError("empty value")
                records.append(decode_reading(value))
                sources.append(m)
            except Exception as exc:  # noqa: BLE001 - any decode failure is this record's problem, not the batch's
                outputs.append(self._dead_letter(m, "UndecodableReading",
                                                 f"not a telematics_reading.v1 Avro body: {type(exc).__name__}: {exc}"))
        problems = reading_problems(records, self.config)
        valid, positions = [], []
        for record, m, problem in zip(records, sources, problems):
            if problem is None:
                valid.append(record)
                positions.append((m.partition(), m.offset()))
            else:
                outputs.append(self._dead_letter(m, "InvalidReading", problem))
        self.counters["dead_lettered"] += len(outputs)
        assembled = self.assembler.add(valid, positions)
        outputs.extend(self._trip_outputs(assembled.trips))
        self.produce_acknowledged(outputs)
        self.assembler.confirm_published()
        arrived = time.monotonic()
        for m in good:
            self._position[m.partition()] = max(self._position.get(m.partition(), 0), m.offset() + 1)
            self._last_arrival[m.partition()] = arrived
        self._commit()
        self.counters["in"] += len(good)
        self.counters["valid"] += len(valid)
        self.counters["trips"] += len(assembled.trips)
        self.counters.update(assembled.counters)
        self.batch_done()
        self._close_idle_partitions()
        return len(good)

    def metrics(self) -> dict[str, Any]:
        return {**super().metrics(), "open_trips": self.assembler.open_trips,
                "buffered_readings": self.assembler.buffered_readings, "committed": dict(self._committed)}

    # -- internals -----------------------------------------------------------------------------------------
    def _trip_outputs(self, trips: list[Trip]) -> list[tuple[str, bytes | None, bytes, list]]:
        """Each closed trip, its events and one score update for the driver-score agent."""
        outputs: list[tuple[str, bytes | None, bytes, list]] = []
        for trip in trips:
            key = trip.vehicle_id.encode()
            body = encode_record(TRIP_SCHEMA, trip_record(trip))
            outputs.append((TRIPS_TOPIC, key, body, schema_headers(TRIP_SCHEMA)))
            for event in event_records(trip):
                outputs.append((EVENTS_TOPIC, key, encode_record(EVENT_SCHEMA, event), schema_headers(EVENT_SCHEMA)))
            outputs.append((SCORE_UPDATES_TOPIC, key, body, schema_headers(TRIP_SCHEMA)))
            self.counters["events"] += len(trip.events)
        return outputs

    def _close_idle_partitions(self) -> None:
        """Close the open trips of partitions that received nothing for `idle_partition_close_s` (wall clock):
        with no new readings their event-time clock cannot close them (stream.py)."""
        now = time.monotonic()
        idle = [p for p in self.assembler.open_partitions()
                if now - self._last_arrival.setdefault(p, now) >= self.config.idle_partition_close_s]
        if not idle:
            return
        assembled = self.assembler.close_partitions(idle)
        self.produce_acknowledged(self._trip_outputs(assembled.trips))
        self.assembler.confirm_published()
        self._commit()
        self.counters["trips"] += len(assembled.trips)
        self.counters.update(assembled.counters)
        log.info("closed %d open trips of idle partitions %s", len(assembled.trips), idle)

    def _dead_letter(self, m: Message, error_class: str, reason: str) -> tuple[str, bytes, bytes, list]:
        log.info("dead-lettered %s:%s:%s (%s)", m.topic(), m.partition(), m.offset(), reason)
        value = dead_letter_value(error_class=error_class, reason=reason, topic=m.topic(), partition=m.partition(),
                                  offset=m.offset(), key=m.key(), value=m.value())
        return DEAD_LETTER_TOPIC, f"{m.topic()}:{m.partition()}:{m.offset()}".encode(), value, []

    def _commit(self) -> None:
        """Commit per partition up to the lowest offset an open trip still needs (module docstring)."""
        held = self.assembler.min_buffered_offsets()
        offsets = []
        for partition, position in self._position.items():
            target = min(position, held.get(partition, position))
            if target > self._committed.get(partition, -1):
                offsets.append(TopicPartition(self.topic, partition, target))
        if offsets:
            self.consumer.commit(offsets=offsets, asynchronous=False)
            for tp in offsets:
                self._committed[tp.partition] = tp.offset

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = [tp.partition for tp in partitions if tp.topic == self.topic]
        self.assembler.drop_partitions(gone)
        for p in gone:
            self._position.pop(p, None)
            self._committed.pop(p, None)
            self._last_arrival.pop(p, None)

    def rewind_to_committed(self) -> None:
        """After a failed batch: forget open trips and re-read from the committed offsets."""
        self.assembler.reset()
        self._position.clear()
        self._committed.clear()
        super().rewind_to_committed()


def last_published_trip_ends(settings: PlatformSettings) -> dict[str, int]:
    """Per vehicle, the end (epoch ms) of the newest trip in the score-updates topic (read to idleness)."""
    ends: dict[str, int] = {}

    def note(m: Message) -> None:
        try:
            record = decode_epoch_ms(TRIP_SCHEMA, m.value())
        except Exception:  # noqa: BLE001 - not ours to judge here; the score agent counts undecodable ones
            return
        vehicle = record["vehicle_id"]
        ends[vehicle] = max(ends.get(vehicle, -1), record["end_ts"])

    read_topic_to_idleness(settings, SCORE_UPDATES_TOPIC, note)
    return ends
