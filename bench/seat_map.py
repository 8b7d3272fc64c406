"""Seat-map reads, warm Redis cache vs straight from PostgreSQL, measured in the same run.

One session of `sessions_seats` seats (every third seat held or sold, so statuses are mixed) is
read with GET /sessions/{id}/seats through the app's Lambda handler, with an API Gateway proxy
event, by `workers` processes reading back to back for `seconds`, once per path:

  warm_cache  the Redis snapshot is warm: one EVALSHA, then statuses computed at read time;
  postgres    the cache bypassed (`cached_snapshot` answers None, as when Redis is down), so
              every read is services.sessions.seat_map on PostgreSQL.

Workers are spawned interpreters (like warm Lambda containers) that take their configuration
from the environment given to them, so this module can run inside another program whose own
settings are already loaded. The data goes to its own database (created and migrated if missing)
and Redis prefix; the session's cache keys are removed at the end. Rate limits are off.

`python -m bench.seat_map [--seats 400] [--seconds 5] [--workers N]` prints the JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import statistics
import time
from collections import Counter
from typing import Any

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/boxoffice_bench_seat_map"
PATHS = ("warm_cache", "postgres")
HOLD_SECONDS = 900  # the longest hold there is: none runs out during the run


def bench_environment(database_url: str | None) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url or DEFAULT_DATABASE_URL,
        "REDIS_PREFIX": f"boxoffice-bench-seat-map-{os.getpid()}:",
        "RATE_LIMIT_PER_MINUTE": "0",
        "RATE_LIMIT_HOLDS_PER_MINUTE": "0",
        "PASSWORD_HASH_PROFILE": "CHEAPEST",
        "POWERTOOLS_LOG_LEVEL": "WARNING",  # no access-log line per read
        "DB_POOL_SIZE": "2",
    }


def grid_for(seats: int) -> tuple[int, int]:
    """Rows and seats per row for this many seats, as square as the contract's grid allows."""
    shapes = [(r, seats // r) for r in range(1, 27) if seats % r == 0 and seats // r <= 50]
    if not shapes or seats < 16:
        raise ValueError(f"no grid of at most 26 rows of 50 has exactly {seats} seats")
    return min(shapes, key=lambda shape: abs(shape[0] - shape[1]))


def seat_map_event(session_id: str) -> dict[str, Any]:
    resource = "/sessions/{session_id}/seats"
    path = f"/sessions/{session_id}/seats"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {"accept": "application/json"},
        "multiValueHeaders": {"accept": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"session_id": session_id},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "GET",
            "path": f"/api{path}",
            "stage": "api",
            "requestId": "bench",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


class LambdaContext:
    function_name = "boxoffice-bench"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:boxoffice-bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


# --- in the worker processes ---------------------------------------------------------------------


def _prepare(env: dict[str, str], seats: int) -> str:
    """A session with every third seat taken: pairs of seats held, every other pair paid."""
    os.environ.update(env)
    from chalicelib.db.migrate import create_database_if_missing, migrate
    from chalicelib.services import accounts, payments, reservations, sessions

    create_database_if_missing(env["DATABASE_URL"])
    migrate(env["DATABASE_URL"])
    rows, per_row = grid_for(seats)
    user, _ = accounts.ensure_user(
        email="seat-map-bench@example.com", password="bench-password", name="bench", role="CUSTOMER"
    )
    session = sessions.create_session(
        movie="Seat map bench",
        room="Bench",
        starts_at=_in_a_week(),
        price_cents=1000,
        rows=rows,
        seats_per_row=per_row,
        created_by=None,
    )
    labels = [s["label"] for s in sessions.seat_map(session["id"])["seats"]]
    for n, i in enumerate(range(0, len(labels) - 1, 6)):
        held, _ = reservations.hold_seats(
            customer_id=user["id"],
            session_id=session["id"],
            seats=labels[i : i + 2],
            hold_seconds=HOLD_SECONDS,
        )
        if n % 2 == 0:
            payments.pay_reservation(held["id"], user["id"])
    return session["id"]


def _in_a_week():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(days=7)


def _forget(env: dict[str, str], session_id: str) -> None:
    os.environ.update(env)
    from chalicelib.cache import seat_maps

    seat_maps.changed(session_id)


def _read(
    env: dict[str, str],
    session_id: str,
    path: str,
    seconds: float,
    ready: Any,
    results: Any,
) -> None:
    os.environ.update(env)
    import app
    from chalicelib.cache import seat_maps

    if path == "postgres":
        seat_maps.cached_snapshot = lambda session_id: None
    event, context = seat_map_event(session_id), LambdaContext()
    first = app.app(event, context)  # warms the cache (or the pool) before the clock starts
    ready.wait(timeout=120)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds
    while (started := time.perf_counter()) < deadline:
        response = app.app(event, context)
        latencies.append(time.perf_counter() - started)
        statuses[response["statusCode"]] += 1
    digest = hashlib.sha256(first["body"].encode()).hexdigest()
    results.put((latencies, dict(statuses), digest, first["statusCode"]))


# --- in the calling process ----------------------------------------------------------------------


def _in_child(ctx: Any, fn: Any, *args: Any) -> Any:
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


def _measure(
    ctx: Any, env: dict[str, str], session_id: str, path: str, seconds: float, workers: int
) -> dict[str, Any]:
    ready, results = ctx.Barrier(workers), ctx.Queue()
    processes = [
        ctx.Process(target=_read, args=(env, session_id, path, seconds, ready, results))
        for _ in range(workers)
    ]
    for p in processes:
        p.start()
    outcomes = [results.get(timeout=seconds + 180) for _ in processes]
    for p in processes:
        p.join()
    latencies = sorted(t for lat, _, _, _ in outcomes for t in lat)
    counts: Counter[str] = Counter()
    for _, statuses, _, first_status in outcomes:
        if first_status != 200:
            raise AssertionError(f"GET seat map answered {first_status}")
        counts.update({str(status): n for status, n in statuses.items()})
    return {
        "name": f"seat_map_reads_{path}",
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(_percentile(latencies, 50) * 1000, 3),
        "p95_ms": round(_percentile(latencies, 95) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 99) * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "counts": dict(counts),
        "answer_sha256": outcomes[0][2],
    }


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run(
    sessions_seats: int = 400,
    seconds: float = 5,
    workers: int | None = None,
    database_url: str | None = None,
) -> dict[str, Any]:
    """Reads per second and p50/p95/p99 latency of the seat map, warm cache and PostgreSQL only,
    for one session of `sessions_seats` seats, `workers` processes reading for `seconds` each."""
    workers = workers or max(1, os.cpu_count() or 1)
    env = bench_environment(database_url)
    ctx = multiprocessing.get_context("spawn")
    session_id = _in_child(ctx, _prepare, env, sessions_seats)
    try:
        scenarios = [_measure(ctx, env, session_id, p, seconds, workers) for p in PATHS]
    finally:
        _in_child(ctx, _forget, env, session_id)
    warm, postgres = scenarios
    if warm["answer_sha256"] != postgres["answer_sha256"]:
        raise AssertionError("the cached seat map differs from PostgreSQL's")
    speedup = (
        warm["requests_per_s"] / postgres["requests_per_s"] if postgres["requests_per_s"] else 0
    )
    return {
        "seat_map": {
            "session_seats": sessions_seats,
            "seconds": seconds,
            "workers": workers,
            "cpus": os.cpu_count(),
        },
        "scenarios": scenarios,
        "ratios": {"seat_map_warm_cache_over_postgres": round(speedup, 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seats", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    report = run(args.seats, args.seconds, args.workers, args.database_url)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
