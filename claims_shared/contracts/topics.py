"""Kafka topic names. One place, so producers and consumers cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field

# Tables of claims_db captured by Debezium (schema `public`); the raw topics are `<prefix>.public.<table>`.
CDC_TABLES: tuple[str, ...] = (
    "customers",
    "policies",
    "vehicles",
    "drivers",
    "adjusters",
    "claims",
    "claim_payments",
    "adjuster_assignments",
)

TELEMATICS_READINGS = "telematics.readings.v1"
# Red flags on claims from every service (telematics_scorer, object_ingestor); contract fraud_alert.v1, keyed by
# claim_id. Kept long: investigators look back months.
FRAUD_ALERTS = "claims.fraud-alerts.v1"
# One document record per landing object (lambdas/document_processor), keyed by document_id.
DOCUMENT_RECORDS = "claims.documents.v1"
# Records delta_compactor cannot decode or apply, with the reason and the original bytes (JSON, same shape as
# claims.cdc.dead-letter.v1).
LAKE_DEAD_LETTER = "claims.lake.dead-letter.v1"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


# Topics the platform's own producers write to (Debezium creates the raw CDC topics itself).
# Readings are keyed by device id, so per-vehicle order holds within a partition.
OWNED_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(TELEMATICS_READINGS, partitions=4, config={"retention.ms": str(7 * 24 * 3600 * 1000)}),
    TopicSpec(FRAUD_ALERTS, partitions=4, config={"retention.ms": str(400 * 24 * 3600 * 1000)}),
    TopicSpec(DOCUMENT_RECORDS, partitions=4),
    TopicSpec(LAKE_DEAD_LETTER, partitions=1, config={"retention.ms": str(30 * 24 * 3600 * 1000)}),
)


def raw_cdc_topic(prefix: str, table: str, schema: str = "public") -> str:
    """Debezium's topic for a table: `<topic.prefix>.<schema>.<table>`."""
    return f"{prefix}.{schema}.{table}"


def raw_cdc_topics(prefix: str) -> list[str]:
    return [raw_cdc_topic(prefix, t) for t in CDC_TABLES]


def heartbeat_topic(prefix: str) -> str:
    """Debezium heartbeat topic (keeps the replication slot's confirmed LSN moving on idle tables)."""
    return f"__debezium-heartbeat.{prefix}"
