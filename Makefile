# boxoffice — `make run` starts the whole system, `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONUNBUFFERED := 1

.PHONY: services run test migrate lint format bench test-localstack seed clean package test-package

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "pip>=23.2,<26.3"  # chalice 1.34 needs pip < 26.3
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

migrate: $(STAMP) services
	$(PY) -m chalicelib.db.migrate

services:
	@WANT_CONNECTIONS=0 bash scripts/prepare-services.sh

run: $(STAMP) services
	$(PY) -m devtools.run

# The race tests put 200 buyers on 200 connections: prepare-services raises max_connections.
test: $(STAMP)
	@bash scripts/prepare-services.sh
	@bash scripts/install-browser.sh || echo "no Chromium: set BOXOFFICE_SKIP_BROWSER=1 to skip the browser test"
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

seed: $(STAMP)
	$(PY) -m devtools.seed

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

test-localstack: $(STAMP)
	bash scripts/test-localstack.sh

# dist/<stage>/sam.yaml and deployment.zip (stage prod unless STAGE=...); see docs/deploy.md.
# chalice package downloads the Lambda platform's wheels from PyPI.
PACKAGE_STAGE := $(or $(STAGE),prod)
package: $(STAMP)
	$(PY) -m infra.package --stage $(PACKAGE_STAGE)

# The packaged prod stack: cfn-lint, IAM against the code's AWS calls, the zip run alone.
test-package: $(STAMP)
	$(PY) -m infra.package --stage prod
	PACKAGE_DIR=dist/prod $(PY) -m pytest -p no:cacheprovider -m package tests/package

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
