# The verbs a newcomer needs. Each target sets up what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: setup migrate run web worker test test-postgres rehearsal lint lint-spec conformance \
	soak clean bench bench-profile bench-tools

$(INSTALLED): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(INSTALLED)

## Create or upgrade the database schema (safe to run from several hosts at once).
migrate: setup
	$(PY) -m storage.migrations

## Serve the API and process batches: gunicorn + one consumer, stopped together.
run: migrate
	$(PY) serve.py

## The web tier alone (what each web host of a scaled deployment runs).
web: migrate
	$(PY) -m gunicorn app:app

## One consumer alone (run as many as you like, on any host).
worker: migrate
	$(PY) -m worker

## The test suite (with both linters first).
test: setup lint lint-spec
	$(PY) -m pytest

# Where the PostgreSQL runs create their own databases (and drop them after).
TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

## The same test suite on PostgreSQL, in a database of its own.
test-postgres: setup lint-spec
	TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(PY) -m pytest

## Two web instances and three consumers on one PostgreSQL database, thousands of items.
rehearsal: setup
	TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) REHEARSAL_ITEMS=4000 \
		$(PY) -m pytest -s tests/test_rehearsal.py

## openapi.yaml is valid OpenAPI, and every operationId has its handler and vice versa.
lint-spec: setup
	$(PY) conformance/lint_spec.py

## Thousands of mixed requests from parallel clients: zero 5xx, every batch settled.
soak: setup
	$(PY) -m pytest -m soak -s tests/test_soak.py

## Fuzz the running service against its spec with Schemathesis (JUnit under conformance/reports/).
conformance: setup
	$(PY) conformance/run.py

## Benchmark this checkout, or BENCH_TARGET=/another/checkout, beside a bare reference (README).
BENCH_TARGET ?= $(CURDIR)
bench: setup bench-tools
	$(PY) -m bench run --target $(BENCH_TARGET) $(BENCH_ARGS)

## Where the web worker and the consumer spend their time under the benchmark's loads.
bench-profile: setup bench-tools
	[ -x $(VENV)/bin/py-spy ] || $(PY) -m pip install --quiet py-spy==0.4.3
	$(PY) -m bench profile --target $(BENCH_TARGET) $(BENCH_ARGS)

# wrk from Debian's packages, and the target's own virtualenv.
bench-tools:
	command -v wrk >/dev/null || apt-get install -y -qq wrk || \
		(apt-get update -qq && apt-get install -y -qq wrk)
	$(MAKE) --no-print-directory -C $(BENCH_TARGET) setup

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) var *.egg-info .pytest_cache .ruff_cache
