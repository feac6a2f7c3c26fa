# Whale Watch. `make run` (or `make demo`) starts the portal; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
# The local run's state (SQLite, static files, beat schedule): var/, or WHALE_VAR_DIR when set,
# which the settings read from the same environment.
VAR_DIR := $(or $(WHALE_VAR_DIR),var)
DEMO_RECEIVER_PORT ?= 8099
# Test processes (pytest-xdist): more than the 2 cores, as the slow tests mostly wait on the
# processes they start (docs/DEVELOPMENT.md). Each uses one Redis database from REDIS_URL's on.
TEST_WORKERS ?= 4

# A local run needs no configuration: debug mode, SQLite under var/, Redis on 127.0.0.1.
# PORT, WHALE_VAR_DIR, REDIS_URL, REDIS_KEY_PREFIX, WHALE_INGEST_METRICS_PORT (0 = off) and, for
# the demo, DEMO_RECEIVER_PORT set a run apart from another one (tests/demo/test_demo_browser.py).
RUN_ENV := DEBUG=$${DEBUG:-true} WHALE_PORT=$(PORT) SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)}

.PHONY: help install var prepare run demo demo-data test lint format clean bench fuzz

help:
	@echo "make run     start the portal on http://127.0.0.1:$(PORT) (live mempool.space feed)"
	@echo "make demo    the same, offline, replaying the bundled recording"
	@echo "make test    set up and run the whole test suite (PostgreSQL + Redis)"
	@echo "make lint    ruff, the import contracts (lint-imports) and the migrations check"
	@echo "make fuzz    the property and schema tests with thousands of random examples (20-25 min)"
	@echo "make bench   run every benchmark (about 40 min) and publish the figures in docs/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "Whale Watch needs Python 3.11 (found $$($(PYTHON) --version)); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

var:
	mkdir -p "$(VAR_DIR)"

prepare: install var
	./deploy/dev-services.sh redis
	$(RUN_ENV) $(PY) manage.py prepare_local

run: prepare
	@echo "Whale Watch: http://127.0.0.1:$(PORT)/  (Ctrl-C stops every process)"
	$(RUN_ENV) $(VENV)/bin/honcho start -f Procfile

# The demo: a week of history ending now, the demo login with an example subscription whose
# webhook goes to a local receiver (Procfile.demo), then the replay continuing the same chain.
DEMO_ENV := $(RUN_ENV) WHALE_OUTBOUND_ALLOW_LOOPBACK=true WHALE_DEMO_RECEIVER_PORT=$(DEMO_RECEIVER_PORT)

demo: install var
	./deploy/dev-services.sh redis
	$(DEMO_ENV) $(PY) manage.py prepare_demo --receiver-url http://127.0.0.1:$(DEMO_RECEIVER_PORT)/hooks/whale-watch
	@echo "Whale Watch demo (offline replay): http://127.0.0.1:$(PORT)/  (Ctrl-C stops every process)"
	$(DEMO_ENV) WHALE_SOURCE="replay:detection/fixtures/demo.jsonl.gz?loop=1&speed=1&retime=1" \
	  $(VENV)/bin/honcho start -f Procfile.demo

demo-data: install
	DEBUG=true $(PY) manage.py make_demo_recording

test: install
	./deploy/dev-services.sh postgres redis
	$(PY) -m pytest -n $(TEST_WORKERS) --maxschedchunk=1 --durations=10

# The same property tests `make test` runs small and derandomised, here long and random. A run
# takes far more than the suite's per-test timeout, so that is lifted.
FUZZ_TESTS := tests/fuzz tests/api/test_schemathesis.py
fuzz: install
	./deploy/dev-services.sh postgres redis
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest $(FUZZ_TESTS) --timeout=0 -q

lint: install var
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run

# Every benchmark in turn (ONLY=name[,name] for some), figures into docs/PERFORMANCE.md and
# docs/RELIABILITY.md with the date and the machine.
bench: install var
	./deploy/dev-services.sh postgres redis
	$(PY) bench/run_all.py $(if $(ONLY),--only $(ONLY))

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var/static var/test .pytest_cache .ruff_cache
