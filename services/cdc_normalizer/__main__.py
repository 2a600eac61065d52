"""Entry point of cdc_normalizer. The service itself is delivered by issue #3; until then it refuses to start."""

import sys

if __name__ == "__main__":
    sys.stderr.write("cdc_normalizer is not implemented yet (issue #3). Nothing was started.\n")
    sys.exit(2)
