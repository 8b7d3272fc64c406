#!/usr/bin/env bash
# Starts LocalStack on this machine, without Docker, for `make test-localstack` and manual checks.
#
# localstack-core 4.13.1 is the last release that runs on Python 3.11 and without an auth token;
# it lives in its own virtualenv (.venv-localstack) because its pins clash with the app's. The
# extra pins (cbor2, pyopenssl, cryptography, service-identity) are the set known to start here.
#
#   bash scripts/localstack.sh            # installs if needed, starts, prints the URL, returns
#   LOCALSTACK_PORT=4567 bash scripts/localstack.sh
#   bash scripts/localstack.sh stop       # stops the one this script started on that port
#
# It runs in the background with its state in a temporary directory; pid, log and the state's
# path are in .venv-localstack/run/PORT.{pid,log,state}.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${LOCALSTACK_PORT:-4566}
VENV=.venv-localstack
RUN_DIR=${VENV}/run  # inside the ignored virtualenv
PID_FILE=${RUN_DIR}/${PORT}.pid
LOG_FILE=${RUN_DIR}/${PORT}.log
STATE_FILE=${RUN_DIR}/${PORT}.state
URL="http://127.0.0.1:${PORT}"
PYTHON=${PYTHON:-python3}

health() { curl -fsS --max-time 2 "${URL}/_localstack/health" >/dev/null 2>&1; }

if [ "${1:-}" = stop ]; then
  if [ -f "${PID_FILE}" ] && kill "$(cat "${PID_FILE}")" 2>/dev/null; then
    echo "localstack: stopped pid $(cat "${PID_FILE}") on port ${PORT}" >&2
  fi
  if [ -f "${STATE_FILE}" ]; then rm -rf "$(cat "${STATE_FILE}")"; fi
  rm -f "${PID_FILE}" "${STATE_FILE}"
  exit 0
fi

if health; then
  echo "localstack: already answering on ${URL}" >&2
  echo "${URL}"
  exit 0
fi

if [ ! -f "${VENV}/.installed" ]; then
  echo "localstack: installing localstack-core 4.13.1 into ${VENV}" >&2
  test -x "${VENV}/bin/python" || "${PYTHON}" -m venv "${VENV}"
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "localstack-core[runtime]==4.13.1" "cbor2<6" "pyopenssl==24.3.0" "cryptography<45" \
    service-identity
  touch "${VENV}/.installed"
fi

mkdir -p "${RUN_DIR}"
STATE_DIR=$(mktemp -d -t localstack-state.XXXXXX)
echo "${STATE_DIR}" >"${STATE_FILE}"
# OVERRIDE_IN_DOCKER=0: otherwise it believes it is in its container and writes /var/lib/localstack.
# GATEWAY_SERVER=hypercorn: the default server ignores the host in GATEWAY_LISTEN (binds 0.0.0.0).
# DNS_ADDRESS=0: no DNS server of its own (it would want port 53).
# SQS_ENDPOINT_STRATEGY=path + LOCALSTACK_HOST: queue URLs such as
# http://127.0.0.1:4566/queue/us-east-1/000000000000/NAME, which resolve without internet DNS
# (the default names them under localhost.localstack.cloud).
OVERRIDE_IN_DOCKER=0 \
  FILESYSTEM_ROOT="${STATE_DIR}" \
  GATEWAY_SERVER=hypercorn \
  GATEWAY_LISTEN="127.0.0.1:${PORT}" \
  DNS_ADDRESS=0 \
  LOCALSTACK_HOST="127.0.0.1:${PORT}" \
  SQS_ENDPOINT_STRATEGY=path \
  SERVICES="${LOCALSTACK_SERVICES:-sqs,sns,cloudformation}" \
  DISABLE_EVENTS=1 \
  nohup "${VENV}/bin/python" -m localstack.runtime.main >"${LOG_FILE}" 2>&1 &
echo $! >"${PID_FILE}"

for _ in $(seq 150); do
  if health; then
    echo "localstack: ready on ${URL} (pid $(cat "${PID_FILE}"), state in ${STATE_DIR})" >&2
    echo "${URL}"
    exit 0
  fi
  if ! kill -0 "$(cat "${PID_FILE}")" 2>/dev/null; then
    echo "localstack: exited during start; last lines of ${LOG_FILE}:" >&2
    tail -n 30 "${LOG_FILE}" >&2
    exit 1
  fi
  sleep 0.2
done
echo "localstack: no answer on ${URL}/_localstack/health after 30 s; see ${LOG_FILE}" >&2
exit 1
