"""The handler-level scenarios of `make bench`: the project's SQL alone (the limit), and the
Lambda handler in P warm worker processes, one request at a time each, as Lambda runs it.

  limit             the hold and payment SQL (take_seats, confirm_payment) on plain psycopg
                    connections in P processes: what the database allows here;
  distinct_holds    (a) the service: holds of 1-4 random seats that never overlap, every other
                    one paid; run, like the limit, before any event process starts, so both
                    have the cores to themselves (distinct_holds_service_over_limit);
  distinct_holds_with_events
                    (a) again while the event processes relay and consume its events on the same
                    cores: distinct_holds_with_events_over_limit;
  flash_sale        (b) 1,000 buyers for the same 16 seats, all at once; winners pay;
  hot_seat          100 buyers for one seat;
  sequential_get    GET /sessions/{id} one after another (the HTTP sequential GET's twin);
  seat_map_reads_*  (c) seat-map reads of a 400-seat session, cache warm vs PostgreSQL;
  expiry_*          (d) 5,000 holds that run out, expired through the SQS delay queue by the
                    app's own expiry handler; lag from expires_at to EXPIRED.
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any


def jobs_for(plan: list[tuple[Any, str, list[str], bool]], by: str) -> list[tuple]:
    """Plan lines as workers take them: with the user's token (service) or id (limit)."""
    return [(getattr(user, by), session_id, seats, pay) for user, session_id, seats, pay in plan]


class Run:
    def __init__(self, args: argparse.Namespace, stamp: str) -> None:
        from bench.harness import WorkerPool

        self.args = args
        self.stamp = stamp
        self.rng = random.Random(args.seed)
        self.scenarios: list[Any] = []
        self.ratios: dict[str, float] = {}
        self.notes: list[str] = []
        self.limit_session_ids: list[str] = []
        self.limit_scenario: Any = None
        self.log_path = args.results_dir / f"{stamp}-workers.log"
        self.pool = WorkerPool(args.processes, str(self.log_path))

    def add(self, scenario: Any) -> Any:
        from bench.harness import eprint

        self.scenarios.append(scenario)
        line = scenario.as_dict()
        eprint(
            f"  {line['name']}: {line['requests_per_s']} req/s, p50 {line['p50_ms']} ms, "
            f"p95 {line['p95_ms']} ms, p99 {line['p99_ms']} ms, counts {line['counts']}"
        )
        return scenario

    def limit(self, users: list[Any]) -> None:
        from bench.data import distinct_plan
        from bench.harness import collect, split

        plan, self.limit_session_ids = distinct_plan(
            self.args.holds, users, self.rng, "Bench limit"
        )
        per = [
            {"jobs": part, "database_url": self.args.database_url, "hold_seconds": 30}
            for part in split(jobs_for(plan, "id"), self.pool.size)
        ]
        outcome = self.pool.run("bench.tasks:limit_holds", per)
        self.limit_scenario = self.add(collect("limit_distinct_holds", outcome))
        # The limit has no AWS and runs before the event processes start: its events are never
        # relayed, and its unpaid holds are closed now, so that neither loads later scenarios.
        import psycopg

        with psycopg.connect(self.args.database_url) as conn:
            conn.execute(
                """
                UPDATE outbox o SET published_at = now() FROM reservations r
                 WHERE r.id = o.aggregate_id AND r.session_id = ANY(%s::uuid[])
                   AND o.published_at IS NULL
                """,
                (self.limit_session_ids,),
            )
            closed = conn.execute(
                """
                UPDATE reservations SET status = 'CANCELLED', closed_at = now()
                 WHERE session_id = ANY(%s::uuid[]) AND status = 'PENDING'
                RETURNING id
                """,
                (self.limit_session_ids,),
            ).fetchall()
            conn.execute(
                "UPDATE seats SET hold_id = NULL, held_until = NULL WHERE hold_id = ANY(%s)",
                ([row[0] for row in closed],),
            )

    def distinct_with_events(self, users: list[Any]) -> None:
        from bench.data import distinct_plan
        from bench.harness import collect, split

        self.start_with_empty_outbox("distinct_holds_with_events")

        plan, _ = distinct_plan(self.args.holds, users, self.rng, "Bench with events")
        per = [{"jobs": part} for part in split(jobs_for(plan, "token"), self.pool.size)]
        outcome = self.pool.run("bench.tasks:service_holds", per)
        drained_s, left = self.wait_for_outbox()
        service = self.add(
            collect(
                "distinct_holds_with_events",
                outcome,
                outbox_drained_after_s=drained_s,
                outbox_left=left,
            )
        )
        limit = self.limit_scenario
        if limit is not None:
            self.ratios["distinct_holds_with_events_over_limit"] = round(
                service.per_s("hold") / limit.per_s("hold"), 3
            )

    def wait_for_outbox(self, timeout_s: float = 300) -> tuple[float, int]:
        """How long after the last request the relay had sent every outbox row (the limit's rows
        are marked sent without a relay), and how many were left if it did not."""
        import psycopg

        ended = time.monotonic()
        with psycopg.connect(self.args.database_url, autocommit=True) as conn:
            while True:
                left = conn.execute(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                ).fetchone()[0]
                if not left or time.monotonic() - ended > timeout_s:
                    return round(time.monotonic() - ended, 2), left
                time.sleep(0.1)

    def distinct(self, users: list[Any]) -> None:
        """The service on distinct seats, with no event process running, as the limit runs: the
        handler against the bare SQL, each with the cores to itself. Its events are relayed once
        the event processes start; its holds last 900 s, so none runs out during the run."""
        from bench.data import distinct_plan
        from bench.harness import collect, split

        plan, _ = distinct_plan(self.args.holds, users, self.rng, "Bench distinct")
        profile_to = (
            str(self.args.results_dir / f"{self.stamp}-profile-holds")
            if self.args.profile
            else None
        )
        per = [
            {"jobs": part, "hold_seconds": 900, "profile_to": profile_to}
            for part in split(jobs_for(plan, "token"), self.pool.size)
        ]
        outcome = self.pool.run("bench.tasks:service_holds", per)
        service = self.add(collect("distinct_holds", outcome))
        limit = self.limit_scenario
        if limit is not None:
            self.ratios["distinct_holds_service_over_limit"] = round(
                service.per_s("hold") / limit.per_s("hold"), 3
            )
            self.ratios["distinct_requests_service_over_limit"] = round(
                service.per_s() / limit.per_s(), 3
            )

    def start_with_empty_outbox(self, scenario: str) -> None:
        """A scenario is not charged for the relaying of the one before it: wait until the relay
        has sent every row (the emulator sends a few hundred messages a second)."""
        waited, left = self.wait_for_outbox()
        self.notes.append(f"{scenario}: started after the outbox drained ({waited} s, {left} left)")

    def flash(self, buyers: list[Any]) -> None:
        self.start_with_empty_outbox("flash_sale")
        from bench.data import flash_plan
        from bench.harness import collect, split

        plan, session_id = flash_plan(buyers, self.rng, "Bench flash sale")
        per = [{"jobs": part} for part in split(jobs_for(plan, "token"), self.pool.size)]
        outcome = self.pool.run("bench.tasks:service_holds", per)
        from bench.http_block import seats_taken

        taken = seats_taken(self.args.database_url, session_id)
        self.add(collect("flash_sale", outcome, **taken))

    def reads(self, users: list[Any]) -> None:
        self.start_with_empty_outbox("seat_map_reads")
        from bench import seat_map_reads

        found, ratios = seat_map_reads.run(self.pool, users, self.args.reads, self.rng)
        for scenario in found:
            self.add(scenario)
        self.ratios.update(ratios)

    def expiry(self, users: list[Any]) -> None:
        """Holds with a short HOLD_SECONDS, made by the P service workers, expired through the
        SQS delay queue by the app's own expire_holds handler in the event processes."""
        import psycopg

        from bench.data import distinct_plan
        from bench.harness import Scenario, collect, split

        self.start_with_empty_outbox("expiry")
        args = self.args
        plan, session_ids = distinct_plan(
            args.expiry_holds, users, self.rng, "Bench expiry", pay_share=0
        )
        per = [
            {"jobs": part, "hold_seconds": args.expiry_hold_seconds}
            for part in split(jobs_for(plan, "token"), self.pool.size)
        ]
        self.add(collect("expiry_holds", self.pool.run("bench.tasks:service_holds", per)))
        query = """
            SELECT status, extract(epoch FROM coalesce(closed_at, now()) - expires_at)::float8,
                   expires_at
              FROM reservations WHERE session_id = ANY(%s::uuid[])
        """
        deadline = time.monotonic() + args.expiry_hold_seconds + 60 + args.expiry_holds / 50
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            while True:
                rows = conn.execute(query, (session_ids,)).fetchall()
                not_expired = sum(1 for r in rows if r[0] != "EXPIRED")
                if not not_expired or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        lags = [(r[1], r[2]) for r in rows if r[0] == "EXPIRED"]
        span = (max(e for _, e in lags) - min(e for _, e in lags)).total_seconds() if lags else 0.0
        self.add(
            Scenario(
                "expiry_lag",
                # A hold still not expired counts with its lag so far (a lower bound).
                [("expire", r[0], max(r[1], 0.0)) for r in rows],
                wall_s=max(span, 1e-9),
                extra={
                    "what": "seconds from expires_at to EXPIRED (closed_at), both on the "
                    "database clock; requests_per_s is expiries per second of expires_at span",
                    "driven_by": "SQS delay queue + app.expire_holds, polled by "
                    "devtools.event_runner in "
                    f"{args.event_processes} processes",
                    "hold_seconds": args.expiry_hold_seconds,
                    "not_expired": not_expired,
                },
            )
        )
        if not_expired:
            self.notes.append(f"expiry: {not_expired} holds were not expired in time")

    def hot_seat(self, buyers: list[Any]) -> None:
        """Every buyer wants the same one seat: the hot seat's twin of the HTTP scenario."""
        self.start_with_empty_outbox("hot_seat")
        from bench.data import flash_plan
        from bench.harness import collect, split
        from bench.http_block import seats_taken

        plan, session_id = flash_plan(buyers, self.rng, "Bench hot seat", ["A1"])
        per = [{"jobs": part} for part in split(jobs_for(plan, "token"), self.pool.size)]
        outcome = self.pool.run("bench.tasks:service_holds", per)
        taken = seats_taken(self.args.database_url, session_id)
        self.add(collect("hot_seat", outcome, buyers=len(buyers), **taken))

    def sequential_get(self) -> None:
        """GET /sessions/{id} one after another in one warm process: the handler's share of the
        HTTP sequential GET."""
        from bench.data import make_sessions
        from bench.harness import collect

        (session_id,) = make_sessions(1, 2, 8, "Bench sequential")
        per = [{"session_id": session_id, "count": 500}] + [
            {"session_id": session_id, "count": 0}
        ] * (self.pool.size - 1)
        self.add(collect("sequential_get", self.pool.run("bench.tasks:service_gets", per)))

    def close(self) -> None:
        self.pool.close()
