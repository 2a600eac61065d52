"""The cdc_normalizer Faust app: lifecycle, health and metrics around the batch loop in runner.py.

Faust owns start/stop, signals and the web endpoints (`/health`, `/metrics`); the records themselves go through
NormalizerRunner's confluent-kafka batch loop in a worker thread, which is where the throughput comes from.
"""

from __future__ import annotations

import logging

import faust

from claims_shared.batch_loop import serve_batch_loop
from claims_shared.contracts.cdc_avro import CdcEncoder
from claims_shared.contracts.columns import ColumnTypes, load_column_types
from claims_shared.contracts.pii import DEFAULT_PII_POLICY
from claims_shared.settings import PlatformSettings
from services.cdc_normalizer.pii import PiiTokenizer
from services.cdc_normalizer.pipeline import Normalizer
from services.cdc_normalizer.runner import NormalizerRunner

log = logging.getLogger("cdc_normalizer")


def build_normalizer(settings: PlatformSettings, columns_path: str | None = None) -> Normalizer:
    """The normalizer as configured by settings: PII key and policy, wire format, optional column-type map."""
    columns: ColumnTypes | None = load_column_types(columns_path) if columns_path else None
    tokenizer = PiiTokenizer(settings.pii_key.get_secret_value().encode(), DEFAULT_PII_POLICY)
    return Normalizer(tokenizer, CdcEncoder.from_settings(settings), columns)


def create_app(settings: PlatformSettings, *, web_port: int, columns_path: str | None = None) -> faust.App:
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust creates its datadir, not parents
    app = faust.App(
        # Faust's own consumer group; the record path commits as runner.GROUP_ID ("cdc-normalizer").
        "cdc-normalizer-app",
        broker=f"kafka://{settings.kafka_bootstrap}",
        web_host="127.0.0.1",
        # Faust keeps local table/offset files here; under the state dir, not the working directory.
        datadir=str(settings.state_dir / "faust" / "{conf.name}-data"),
        web_port=web_port,
        # Faster group joins than Faust's 60 s default (LOCAL-STACK.md); harmless on real Kafka.
        broker_session_timeout=6,
        topic_partitions=1,
        autodiscover=False,
    )
    serve_batch_loop(app, lambda: NormalizerRunner(settings, build_normalizer(settings, columns_path)))
    return app
