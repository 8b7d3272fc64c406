"""The HTTP block of `make bench`: the system started as `make run` starts it (python -m
devtools.run: the supervisor, granian's workers, the event process, the embedded AWS endpoint),
driven over kept-alive connections by client processes, in the same run as the handler-level
scenarios so that each target can stand next to its handler-level twin.

    http_sequential_get   one connection, GET /sessions/{id} one after another
    http_holds            16 clients for 20 s: holds of 1-4 distinct seats, every other one
                          paid; then how long until every event of the load has been relayed and
                          every receipt and counter written
    http_seat_map_reads   16 clients reading a warm 400-seat map for 10 s
    http_flash_sale       200 buyers on their own connections, 16 seats, released at once
    http_hot_seat         100 buyers on their own connections, one seat
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.data import ROWS, SEATS_PER_ROW, User, distinct_plan, flash_plan, make_sessions
from bench.harness import Scenario, WorkerPool, collect, eprint, split
from devtools.net import answers_http, free_port
from devtools.processes import die_with_parent

ROOT = Path(__file__).resolve().parents[1]
LOAD_CLIENTS = 16
MOST_HOLDS_PER_S = 800
READ_CLIENTS = 16
DRAIN_TIMEOUT_S = 120


class LiveSystem:
    """`make run` in a process of its own, on free ports, with its own embedded AWS endpoint."""

    def __init__(self, environment: dict[str, str], log_path: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, **environment, "PORT": str(port)}
        env["EMBEDDED_AWS_PORT"] = str(free_port())
        env.pop("AWS_ENDPOINT_URL", None)  # its own endpoint, as a fresh `make run` starts one
        env.pop("DB_POOL_SIZE", None)  # the local stage's pool, not a Lambda container's
        self.log_path = log_path
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devtools.run"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + 90
        while not answers_http(f"{self.url}/health"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"`make run` did not start; see {log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                eprint("bench: `make run` did not stop on SIGINT; killing it")
                self.process.kill()
                self.process.wait()


def _jobs(plan: list[tuple[User, str, list[str], bool]]) -> list[tuple]:
    return [(user.token, session_id, seats, pay) for user, session_id, seats, pay in plan]


def _database_now(database_url: str) -> Any:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("SELECT now()").fetchone()[0]


def wait_for_events(database_url: str, session_ids: list[str], load_ended_at: Any) -> float | None:
    """Seconds from now until every outbox row written by the load has been relayed, every sale
    of these sessions has its receipt, and their sold-seat counters match the seats sold; None if
    that did not happen within DRAIN_TIMEOUT_S."""
    began = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() - began < DRAIN_TIMEOUT_S:
            unsent, missing_receipts, uncounted = conn.execute(
                """
                SELECT (SELECT count(*) FROM outbox
                         WHERE published_at IS NULL AND created_at <= %(ended)s),
                       (SELECT count(*) FROM sales sa
                         WHERE sa.session_id = ANY(%(sessions)s::uuid[])
                           AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.sale_id = sa.id)),
                       (SELECT count(*) FILTER (WHERE sale_id IS NOT NULL) FROM seats
                         WHERE session_id = ANY(%(sessions)s::uuid[]))
                     - (SELECT coalesce(sum(sold_seats), 0) FROM session_stats
                         WHERE session_id = ANY(%(sessions)s::uuid[]))
                """,
                {"ended": load_ended_at, "sessions": session_ids},
            ).fetchone()
            if unsent == 0 and missing_receipts == 0 and uncounted == 0:
                return round(time.monotonic() - began, 2)
            time.sleep(0.1)
    return None


class HttpBlock:
    def __init__(
        self,
        pool: WorkerPool,
        rng: random.Random,
        database_url: str,
        environment: dict[str, str],
        log_path: Path,
        sizes: dict[str, int],
    ) -> None:
        """sizes: http_gets, http_load_seconds, http_read_seconds, http_flash_buyers,
        http_hot_seat_buyers (bench/__main__.py's FULL and QUICK)."""
        self.sizes = sizes
        self.pool = pool
        self.rng = rng
        self.database_url = database_url
        self.environment = environment
        self.log_path = log_path

    def run(self, users: list[User], buyers: list[User], add: Any) -> dict[str, float | None]:
        """Runs every scenario against one live system; `add` records each scenario. Returns the
        values the HTTP targets are checked against."""
        system = LiveSystem(self.environment, self.log_path)
        eprint(f"bench: `make run` answering at {system.url}")
        try:
            return self._scenarios(system.url, users, buyers, add)
        finally:
            system.stop()

    def _per_worker(self, jobs: list[tuple], clients: int, **args: Any) -> list[dict[str, Any]]:
        """Jobs and client threads spread over the pool's processes."""
        size = self.pool.size
        threads = [clients // size + (1 if n < clients % size else 0) for n in range(size)]
        return [
            {"jobs": part, "threads": max(1, count), **args}
            for part, count in zip(split(jobs, size), threads, strict=True)
        ]

    def _scenarios(
        self, url: str, users: list[User], buyers: list[User], add: Any
    ) -> dict[str, float | None]:
        found: dict[str, float | None] = {}

        (session_id,) = make_sessions(1, ROWS, SEATS_PER_ROW, "Bench HTTP reads")
        from bench.seat_map_reads import populate

        populate(session_id, users, self.rng)
        idle = [{"url": url, "path": f"/sessions/{session_id}", "count": 0}] * (self.pool.size - 1)
        outcome = self.pool.run(
            "bench.http_tasks:sequential_gets",
            [
                {"url": url, "path": f"/sessions/{session_id}", "count": self.sizes["http_gets"]},
                *idle,
            ],
        )
        sequential = add(collect("http_sequential_get", outcome))
        found["http_sequential_get_p50_ms"] = sequential.as_dict()["p50_ms"]

        seconds = self.sizes["http_load_seconds"]
        # More holds than the clients can make in the time: the load never runs dry.
        plan, session_ids = distinct_plan(
            MOST_HOLDS_PER_S * seconds, users, self.rng, "Bench HTTP holds"
        )
        per = self._per_worker(
            _jobs(plan), LOAD_CLIENTS, url=url, seconds=self.sizes["http_load_seconds"]
        )
        outcome = self.pool.run("bench.http_tasks:holds_for", per)
        load_ended_at = _database_now(self.database_url)
        drained = wait_for_events(self.database_url, session_ids, load_ended_at)
        holds = add(
            collect(
                "http_holds",
                outcome,
                clients=LOAD_CLIENTS,
                events_done_after_s=drained,
            )
        )
        found["http_holds_per_s"] = holds.per_s("hold")
        found["http_events_done_after_s"] = drained

        path = f"/sessions/{session_id}/seats"
        seconds = self.sizes["http_read_seconds"]
        per = self._per_worker([], READ_CLIENTS, url=url, path=path, seconds=seconds)
        reads = add(
            collect(
                "http_seat_map_reads",
                self.pool.run("bench.http_tasks:reads_for", per),
                clients=READ_CLIENTS,
                seats=ROWS * SEATS_PER_ROW,
            )
        )
        found["http_seat_map_reads_per_s"] = reads.per_s("read")

        for name, count, seats in (
            ("http_flash_sale", self.sizes["http_flash_buyers"], None),
            ("http_hot_seat", self.sizes["http_hot_seat_buyers"], ["A1"]),
        ):
            plan, burst_session = flash_plan(buyers[:count], self.rng, f"Bench {name}", seats)
            per = [{"url": url, "jobs": part} for part in split(_jobs(plan), self.pool.size)]
            scenario = add(
                collect(
                    name,
                    self.pool.run("bench.http_tasks:burst", per),
                    buyers=count,
                    **seats_taken(self.database_url, burst_session),
                )
            )
            found[f"{name}_hold_p99_ms"] = scenario.as_dict()["by_kind"]["hold"]["p99_ms"]
        return found


def seats_taken(database_url: str, session_id: str) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        sold, held = conn.execute(
            """
            SELECT count(*) FILTER (WHERE sale_id IS NOT NULL),
                   count(*) FILTER (WHERE hold_id IS NOT NULL AND held_until > now())
              FROM seats WHERE session_id = %s
            """,
            (session_id,),
        ).fetchone()
    return {"seats_sold": sold, "seats_held": held}


__all__ = ["HttpBlock", "LiveSystem", "Scenario", "seats_taken", "wait_for_events"]
