"""Entry point of telematics_scorer. The service itself is delivered by issue #4; until then it refuses to start."""

import sys

if __name__ == "__main__":
    sys.stderr.write("telematics_scorer is not implemented yet (issue #4). Nothing was started.\n")
    sys.exit(2)
