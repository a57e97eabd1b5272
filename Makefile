# The verbs a newcomer needs. Each target sets up what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: setup migrate run web worker test test-postgres rehearsal lint clean

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

## The test suite, on SQLite.
test: setup lint
	$(PY) -m pytest

# Where the PostgreSQL runs create their own databases (and drop them after).
TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

## The same test suite on PostgreSQL, in a database of its own.
test-postgres: setup
	TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(PY) -m pytest

## Two web instances and three consumers on one PostgreSQL database, thousands of items.
rehearsal: setup
	TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) REHEARSAL_ITEMS=4000 \
		$(PY) -m pytest -s tests/test_rehearsal.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) var *.egg-info .pytest_cache .ruff_cache
