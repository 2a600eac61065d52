"""`python -m services.cdc_normalizer [--columns MAP.json]`: run the normalizer service (Faust worker)."""

from __future__ import annotations

import argparse
import sys

from claims_shared.settings import get_settings
from services.cdc_normalizer.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Normalize Debezium change events into typed, versioned records.")
    parser.add_argument("--columns", help="column-type map for schemaless topics (claimsctl export-columns)")
    parser.add_argument("--web-port", type=int, default=None, help="health/metrics port (default from settings)")
    parser.add_argument("--loglevel", default="info")
    args = parser.parse_args(argv)
    settings = get_settings()
    port = args.web_port or settings.normalizer_web_port
    app = create_app(settings, web_port=port, columns_path=args.columns)
    # Faust parses its own command line: run its worker with our options.
    sys.argv = [sys.argv[0], "worker", "--loglevel", args.loglevel, "--web-port", str(port), "--web-host", "127.0.0.1"]
    app.main()


if __name__ == "__main__":
    main()
