"""Entry point of delta_compactor. The service itself is delivered by issue #6; until then it refuses to start."""

import sys

if __name__ == "__main__":
    sys.stderr.write("delta_compactor is not implemented yet (issue #6). Nothing was started.\n")
    sys.exit(2)
