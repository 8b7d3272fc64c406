#!/usr/bin/env bash
# `make test-localstack`: the AWS integration tests against LocalStack 4.13.1 running on this host
# (no Docker): scripts/localstack.sh installs it in .venv-localstack and starts it on a spare port.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOCALSTACK_PORT=${LOCALSTACK_PORT:-4599}
url=$(bash scripts/localstack.sh | tail -n 1)
trap 'bash scripts/localstack.sh stop >/dev/null 2>&1 || true' EXIT
echo "test-localstack: LocalStack at $url"
TEST_AWS_ENDPOINT_URL="$url" .venv/bin/python -m pytest -p no:cacheprovider \
  tests/integration/test_messaging.py tests/integration/test_event_runner.py \
  tests/integration/test_events.py "$@"
