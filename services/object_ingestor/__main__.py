"""Entry point of object_ingestor. The service itself is delivered by issue #5; until then it refuses to start."""

import sys

if __name__ == "__main__":
    sys.stderr.write("object_ingestor is not implemented yet (issue #5). Nothing was started.\n")
    sys.exit(2)
