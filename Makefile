# ungebus: `make run` runs the bus on this machine, `make test` runs every check.
# Both set themselves up on a fresh machine: a virtualenv in .venv with the project
# installed (with psycopg, the postgres extra), the Kafka broker jars fetched by Maven into
# deploy/local/.kafka.

SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help install kafka browser-deps postgres-deps prometheus-deps compose-check run test lint format unit integration faults bench clean

help:
	@echo "make run    start the local Kafka broker and every ungebus component"
	@echo "make test   lint, type-check and run all tests against a real broker"
	@echo "make bench  benchmarks (not tests), reported beside a raw confluent-kafka baseline"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed: install python3.11 or newer"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres]'
	@touch $(STAMP)

# A .venv made before the postgres extra was installed with the rest gets it once.
install: $(STAMP)
	@$(BIN)/python -c 'import psycopg' 2>/dev/null || $(BIN)/python -m pip install -q -e '.[dev,postgres]'

kafka: install
	$(BIN)/ungebus local fetch

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Unit tests without the compose loader check (marked `compose`: it builds Docker Compose with Go)
# and without promtool's checks of deploy/'s alerts and dashboard (marked `promtool`).
unit: install
	$(BIN)/pytest -m "not integration and not browser and not compose and not promtool" $(PYTEST_ARGS)

integration: kafka postgres-deps
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

test: lint kafka browser-deps postgres-deps prometheus-deps compose-check
	$(BIN)/pytest $(PYTEST_ARGS)

# The browser test drives Debian's Chromium (Playwright cannot download browsers here).
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# deploy/'s alerting rules and dashboard queries are checked and unit-tested with Prometheus's
# own promtool (tests/deploy/test_dashboards.py), from Debian's prometheus package.
prometheus-deps:
	command -v promtool >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)

# The inbox and audit store tests run on SQLite and on a throwaway PostgreSQL server that the
# tests start from Debian's programs (/usr/lib/postgresql/<major>/bin: deploy/local/postgres.py).
postgres-deps:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq postgresql)

# deploy/compose.yaml matches the code, and loads with Docker Compose's own loader (built from
# source with Go into ~/.cache/ungebus on first use: about 5 minutes cold, seconds after).
compose-check: install
	$(BIN)/ungebus deploy compose --check
	deploy/compose-check.sh

run: kafka
	$(BIN)/ungebus run

# The fault suite's long variants (make test runs it with 5,000 events a fault).
faults: kafka
	UNGEBUS_FAULT_EVENTS=20000 $(BIN)/pytest -m faults -s $(PYTEST_ARGS)

bench: kafka
	$(BIN)/python -m bench

clean:
	-$(BIN)/ungebus local down
	rm -rf $(VENV) deploy/local/.kafka deploy/local/.postgres var .pytest_cache .mypy_cache .ruff_cache
