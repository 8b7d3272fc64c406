#!/usr/bin/env bash
# Makes sure the local PostgreSQL and Redis that boxoffice uses are up, and that PostgreSQL accepts
# enough connections for the concurrency tests (200 buyers, each on its own connection).
# Safe to run again and again; only acts on this machine's own 127.0.0.1 services.
set -euo pipefail
WANT_CONNECTIONS=${WANT_CONNECTIONS:-300}
PSQL=(psql -h 127.0.0.1 -U postgres -d postgres -Atqc)

pg_cluster() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

if ! "${PSQL[@]}" "select 1" >/dev/null 2>&1; then
  echo "prepare-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(pg_cluster)" main start
  for _ in $(seq 50); do "${PSQL[@]}" "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
fi

current=$("${PSQL[@]}" "show max_connections")
if [ "$current" -lt "$WANT_CONNECTIONS" ]; then
  if [ "${BOXOFFICE_NO_PG_RESTART:-0}" = 1 ] || ! command -v pg_ctlcluster >/dev/null; then
    echo "prepare-services: max_connections is $current (< $WANT_CONNECTIONS); the 200-buyer race tests will be skipped" >&2
  else
    echo "prepare-services: raising PostgreSQL max_connections $current -> $WANT_CONNECTIONS (restart)"
    "${PSQL[@]}" "alter system set max_connections = $WANT_CONNECTIONS"
    pg_ctlcluster --skip-systemctl-redirect "$(pg_cluster)" main restart
    for _ in $(seq 50); do "${PSQL[@]}" "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
  fi
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "prepare-services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
