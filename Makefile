# boxoffice — `make run` starts the whole system, `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONUNBUFFERED := 1

.PHONY: run test migrate lint format bench test-localstack seed clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP)
	$(PY) -m chalicelib.db.migrate

run: $(STAMP)
	$(PY) -m chalicelib.local.run

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

seed: $(STAMP)
	$(PY) -m chalicelib.local.seed

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

test-localstack: $(STAMP)
	bash scripts/test-localstack.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
