"""Scenario (c): GET /sessions/{id}/seats of a 400-seat session through the Lambda handler, with
the Redis seat-map cache warm, then with the cache bypassed (the PostgreSQL path the service
takes when Redis is down). A third of the seats are held or sold, so statuses are mixed."""

from __future__ import annotations

import random
from typing import Any

from bench.data import ROWS, SEATS_PER_ROW, User, labels, make_sessions
from bench.harness import Scenario, WorkerPool, collect


def populate(session_id: str, users: list[User], rng: random.Random) -> None:
    """Hold every third seat in pairs and pay for half of those holds (their events go out
    through the relay like any other)."""
    from chalicelib.services import payments, reservations

    grid = labels(ROWS, SEATS_PER_ROW)
    for n, i in enumerate(range(0, len(grid), 6)):
        user = users[rng.randrange(len(users))]
        held = reservations.hold_seats(
            customer_id=user.id, session_id=session_id, seats=grid[i : i + 2], hold_seconds=900
        )
        if n % 2 == 0:
            payments.pay_reservation(held["id"], user.id)


def run(
    pool: WorkerPool, users: list[User], reads_per_worker: int, rng: random.Random
) -> tuple[list[Scenario], dict[str, Any]]:
    (session_id,) = make_sessions(1, ROWS, SEATS_PER_ROW, "Bench seat map")
    populate(session_id, users, rng)
    found = []
    # The warm path is an order of magnitude faster: it reads ten times as many, so that both
    # paths are timed over seconds, not a fraction of one.
    for path, count in (("warm", reads_per_worker * 10), ("postgres", reads_per_worker)):
        args = {"session_id": session_id, "count": count, "path": path}
        outcome = pool.run("bench.tasks:service_reads", [args] * pool.size)
        found.append(collect(f"seat_map_reads_{path}", outcome, seats=ROWS * SEATS_PER_ROW))
    warm, postgres = found
    ratio = warm.per_s() / postgres.per_s() if postgres.per_s() else 0.0
    return found, {"seat_map_warm_over_postgres": round(ratio, 2)}
