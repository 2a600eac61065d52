"""Platform settings, read from the environment (prefix CLAIMS_) with defaults that run the embedded stack.

The same names are used by docker-compose.yml and by production deployments: moving from the laptop to
real Kafka, S3 and PostgreSQL is a matter of setting these variables, never of changing code.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PlatformSettings(BaseSettings):
    """Connection settings and names shared by every deployable."""

    model_config = SettingsConfigDict(env_prefix="CLAIMS_", env_file=None, extra="ignore")

    # Where the embedded stack keeps its data, pids and logs (ignored by production deployments).
    state_dir: Path = Field(default=PROJECT_ROOT / ".state")

    # PostgreSQL claims_db (the CDC source).
    pg_host: str = "127.0.0.1"
    pg_port: int = 15432
    pg_db: str = "claims_db"
    pg_user: str = "claims"
    pg_password: SecretStr = SecretStr("claims")
    # Role Debezium connects as (needs REPLICATION); separate from the application role.
    pg_cdc_user: str = "debezium"
    pg_cdc_password: SecretStr = SecretStr("debezium")

    # Kafka-protocol broker.
    kafka_bootstrap: str = "127.0.0.1:19092"
    topic_prefix: str = "claims_db"
    # Confluent Schema Registry: when set, normalized CDC values are Confluent-framed and their contracts registered;
    # when unset, values are schemaless Avro named by the `claims-schema` header (see claims_shared/contracts/cdc_avro.py).
    schema_registry_url: str | None = None

    # S3-compatible object store (landing zone, lake) and the queue receiving landing notifications.
    s3_endpoint: str | None = "http://127.0.0.1:18333"
    s3_region: str = "us-east-1"
    s3_access_key: str = "claims"
    s3_secret_key: SecretStr = SecretStr("claims-secret")
    landing_bucket: str = "claims-landing"
    lake_bucket: str = "claims-lake"
    # Root of the Delta lake (current/, history/, append/): a local path or s3:// URI. Unset: s3://<lake_bucket>.
    # Read by `claimsctl sql`, `claimsctl dashboard` and the notebooks (claimsctl.lake_sql).
    lake_uri: str | None = None
    sqs_endpoint: str | None = "http://127.0.0.1:15000"
    landing_queue: str = "claims-landing-events"
    # Only objects under this prefix are documents to process: the Lambda writes processed/ and quarantine/ into
    # the same bucket, and notifying those would make it invoke itself.
    landing_incoming_prefix: str = "incoming/"
    # The document Lambda's limits (production: the function and its SQS event source mapping; embedded: the same
    # semantics, claimsctl/stack/lambda_runtime.py). AWS advises a queue visibility timeout of 6x the function timeout.
    lambda_timeout_s: float = 300.0
    lambda_batch_size: int = 10
    lambda_visibility_timeout_s: int = 1800
    # Receives before the queue's redrive policy moves a notification to `<landing_queue>-dlq`.
    lambda_max_receive_count: int = 5
    # Embedded stack only: port of the local Lambda Runtime API the runtime client polls.
    lambda_runtime_port: int = 19010

    # Key of the deterministic PII tokens (HMAC). Same key, same token: joins across tables and topics still work.
    # Production must set its own secret; rotating it changes every token.
    pii_key: SecretStr = SecretStr("embedded-dev-pii-key-not-secret")

    # Health/metrics port of the cdc_normalizer service (Faust web).
    normalizer_web_port: int = 16066
    # Health/metrics port of the telematics_scorer service (Faust web).
    scorer_web_port: int = 16067
    # Overrides of telematics_scorer's thresholds and knobs (services/telematics_scorer/config.py), as a JSON
    # object, e.g. CLAIMS_SCORING_OVERRIDES='{"harsh_braking_g": 0.4, "trip_gap_s": 600}'. Used by the service
    # and by `claimsctl score-trips`, so offline replays score like production.
    scoring_overrides: dict[str, float | bool] = {}
    # Overrides of the telematics fraud-evidence rules (services/telematics_scorer/fraud_evidence.py), same form,
    # e.g. CLAIMS_FRAUD_EVIDENCE_OVERRIDES='{"far_km": 5, "time_tolerance_s": 3600}'.
    fraud_evidence_overrides: dict[str, float] = {}
    # Health/metrics port of the object_ingestor service (Faust web).
    ingestor_web_port: int = 16068
    # Overrides of object_ingestor's linking and photo-rule thresholds (services/object_ingestor/config.py), same
    # form, e.g. CLAIMS_INGESTOR_RULE_OVERRIDES='{"phash_max_distance": 6, "far_km": 50}'.
    ingestor_rule_overrides: dict[str, float] = {}

    # Document processing (object stream: lambdas/document_processor, `claimsctl extract-document`). An object over
    # a limit is quarantined with the reason, never half-processed.
    document_max_bytes: int = 25 * 1024 * 1024  # largest object processed
    document_max_pages: int = 20  # most PDF pages (or TIFF frames) per object
    # Largest image or rendered page in pixels (width x height); also Pillow's decompression-bomb threshold.
    document_max_pixels: int = 40_000_000
    document_ocr_timeout_s: float = 30.0  # one tesseract run (one page) is killed after this
    document_time_budget_s: float = 90.0  # all OCR of one object together
    document_ocr_dpi: int = 200  # resolution PDF pages without a text layer are rendered at for OCR
    document_max_text_chars: int = 200_000  # text kept in a record (Kafka messages stay well under 1 MB)

    # Lakehouse (services/delta_compactor, `claimsctl compact|maintain|reconcile`).
    # Spark Connect endpoint the compactor writes through (embedded: a pysail server; compose: Spark Connect).
    spark_remote: str = "sc://127.0.0.1:15002"
    # Root of the Delta tables; empty means s3://<lake_bucket> on CLAIMS_S3_ENDPOINT. A local directory works too.
    lake_root: str = ""
    # Longest the compactor keeps gathering records after the first one arrives before it writes a batch (seconds),
    # and the most records in one batch. Smaller is fresher; larger makes fewer, bigger Delta commits.
    compactor_trigger_s: float = 0.1
    compactor_max_batch: int = 20000
    # Tables the compactor writes at the same time within one batch (each table's writes stay in order).
    compactor_parallel_tables: int = 8
    # `claimsctl maintain`: VACUUM keeps files a reader of a version this recent may still need (hours, >= 168
    # unless you know no reader or time travel goes back further).
    lake_vacuum_retention_hours: int = 168
    # Embedded stack only: port of the pysail Spark Connect server (must match CLAIMS_SPARK_REMOTE's port).
    spark_port: int = 15002

    # Kafka Connect / Debezium.
    connector_name: str = "claims-postgres"
    connect_heap_mb: int = 384

    # Embedded stack only: where the broker stores its log ("s3" survives down/up, "memory" is ~2x faster
    # to produce to but loses everything on down), and the object store's internal ports (each also uses +10000).
    broker_storage: str = "s3"
    objectstore_master_port: int = 19333
    objectstore_volume_port: int = 18080
    objectstore_filer_port: int = 18888

    @property
    def lake_root_uri(self) -> str:
        """Where the lake's tables live: CLAIMS_LAKE_ROOT, else s3://<lake_bucket>."""
        return (self.lake_root or f"s3://{self.lake_bucket}").rstrip("/")

    @property
    def pg_dsn(self) -> str:
        return (
            f"host={self.pg_host} port={self.pg_port} dbname={self.pg_db} "
            f"user={self.pg_user} password={self.pg_password.get_secret_value()}"
        )

    def pg_dsn_for(self, dbname: str) -> str:
        return (
            f"host={self.pg_host} port={self.pg_port} dbname={dbname} "
            f"user={self.pg_user} password={self.pg_password.get_secret_value()}"
        )

    def as_env(self) -> dict[str, str]:
        """These settings as CLAIMS_* variables, to hand to a child process (secrets included)."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if isinstance(value, (dict, list)):
                # Complex fields are parsed back from the environment as JSON (str() would give Python's repr).
                value = json.dumps(value)
            env[f"CLAIMS_{name.upper()}"] = "" if value is None else str(value)
        return env

    def connector_env(self) -> dict[str, str]:
        """Environment the Kafka Connect worker needs for `${env:...}` in the connector definition."""
        return {
            "CLAIMS_PG_HOST": self.pg_host,
            "CLAIMS_PG_PORT": str(self.pg_port),
            "CLAIMS_PG_DB": self.pg_db,
            "CLAIMS_PG_CDC_USER": self.pg_cdc_user,
            "CLAIMS_PG_CDC_PASSWORD": self.pg_cdc_password.get_secret_value(),
            "CLAIMS_TOPIC_PREFIX": self.topic_prefix,
            "CLAIMS_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
        }


# Fields that only the embedded (laptop) stack reads; deployments (docker-compose, production) ignore them.
EMBEDDED_ONLY_FIELDS = frozenset({
    "state_dir", "connect_heap_mb", "broker_storage",
    "objectstore_master_port", "objectstore_volume_port", "objectstore_filer_port", "lambda_runtime_port",
    "spark_port",
})


@lru_cache(maxsize=1)
def get_settings() -> PlatformSettings:
    """Settings for this process (cached; tests build PlatformSettings directly with overrides)."""
    return PlatformSettings()
