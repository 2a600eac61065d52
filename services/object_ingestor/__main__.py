"""`python -m services.object_ingestor`: run object_ingestor (Faust worker hosting the extract and evidence loops)."""

from __future__ import annotations

import argparse
import sys

from claims_shared.clients.kafka import ensure_topics
from claims_shared.contracts.objects import OUTPUT_TOPICS
from claims_shared.settings import get_settings
from services.object_ingestor.app import create_app
from services.object_ingestor.config import document_rules_config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Link landing documents to claims, flag reused or inconsistent photos, expand invoice extracts.")
    parser.add_argument("--web-port", type=int, default=None, help="health/metrics port (default from settings)")
    parser.add_argument("--loglevel", default="info")
    args = parser.parse_args(argv)
    settings = get_settings()
    port = args.web_port or settings.ingestor_web_port
    config = document_rules_config(settings.ingestor_rule_overrides)  # a bad override fails here, before Faust
    ensure_topics(settings, OUTPUT_TOPICS)
    app = create_app(settings, web_port=port, config=config)
    sys.argv = [sys.argv[0], "worker", "--loglevel", args.loglevel, "--web-port", str(port), "--web-host", "127.0.0.1"]
    app.main()


if __name__ == "__main__":
    main()
