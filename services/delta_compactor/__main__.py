"""Entry point of delta_compactor: `python -m services.delta_compactor [--once] [--from-beginning] ...`.

Settings from the environment (CLAIMS_SPARK_REMOTE, CLAIMS_LAKE_ROOT / CLAIMS_LAKE_BUCKET, CLAIMS_KAFKA_BOOTSTRAP,
CLAIMS_COMPACTOR_TRIGGER_S, CLAIMS_COMPACTOR_MAX_BATCH). Stops after the batch in flight on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from claims_shared.settings import PlatformSettings


def spark_session(remote: str):  # noqa: ANN201 - pyspark is imported lazily (slow import)
    """A new Spark Connect session on `remote` (sc://host:port); each call opens another one."""
    from pyspark.sql import SparkSession

    return SparkSession.builder.remote(remote).create()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.delta_compactor", description=__doc__)
    parser.add_argument("--once", action="store_true", help="Exit once no record arrived for a few seconds.")
    parser.add_argument("--from-beginning", action="store_true",
                        help="Ignore the recorded offsets and re-read every topic (harmless: writes are idempotent).")
    parser.add_argument("--lock-file", type=Path, default=None, help="Hold this lake lock while writing a batch.")
    parser.add_argument("--status-file", type=Path, default=None, help="Write counters here (JSON) as batches pass.")
    parser.add_argument("--loglevel", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.loglevel.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    from services.delta_compactor.job import CompactorJob
    from services.delta_compactor.lake_lock import LakeLock

    settings = PlatformSettings()
    job = CompactorJob(settings, lambda: spark_session(settings.spark_remote), from_beginning=args.from_beginning,
                       lock=LakeLock(args.lock_file) if args.lock_file else None, status_file=args.status_file)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        job.start()
        job.run(stop, once=args.once)
    finally:
        job.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
