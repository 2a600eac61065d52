"""`python -m services.telematics_scorer`: run the telematics scorer service (Faust worker + batch loop)."""

from __future__ import annotations

import argparse
import sys

from claims_shared.clients.kafka import ensure_topics
from claims_shared.contracts.telematics import OUTPUT_TOPICS
from claims_shared.settings import get_settings
from services.telematics_scorer.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Score telematics readings into trips, safety events and driver scores.")
    parser.add_argument("--web-port", type=int, default=None, help="health/metrics port (default from settings)")
    parser.add_argument("--loglevel", default="info")
    args = parser.parse_args(argv)
    settings = get_settings()
    port = args.web_port or settings.scorer_web_port
    # The agent's source topic and the table's changelog must be co-partitioned: create ours with the right count.
    ensure_topics(settings, OUTPUT_TOPICS)
    app = create_app(settings, web_port=port)
    sys.argv = [sys.argv[0], "worker", "--loglevel", args.loglevel, "--web-port", str(port), "--web-host", "127.0.0.1"]
    app.main()


if __name__ == "__main__":
    main()
