"""`make bench` (`python -m bench`): the flash-sale benchmark on the local PostgreSQL and Redis.

One run measures, with the same machine and the same data shape:
  limit             the project's hold and payment SQL (take_seats, confirm_payment) on plain
                    psycopg connections in P processes: what the database allows here;
  distinct_holds    (a) the service: the Lambda handler in P warm worker processes, holds of 1-4
                    random seats that never overlap, every other one paid; run, like the limit,
                    before any event process starts, so both have the cores to themselves (the
                    target ratio, distinct_holds_service_over_limit, compares these two);
  distinct_holds_with_events
                    (a) again while the event processes relay and consume its events on the same
                    cores (the relay, the subscribers and the AWS emulator; on AWS they run
                    elsewhere): distinct_holds_with_events_over_limit;
  flash_sale        (b) 1,000 buyers for the same 16 seats, all at once; winners pay;
  seat_map_reads_*  (c) seat-map reads of a 400-seat session, cache warm vs PostgreSQL;
  expiry_*          (d) 5,000 holds that run out, expired through the SQS delay queue by the
                    app's own expiry handler; lag from expires_at to EXPIRED;
  http_flash_sale   the flash sale over HTTP against the server `make run` starts.
and ends with the audit (bench/audit.py): every count must be 0, or the run fails (exit 1).

The report is printed and written to bench/results/<timestamp>.json and .md. Rate limits are off
(RATE_LIMIT_PER_MINUTE=0, RATE_LIMIT_HOLDS_PER_MINUTE=0): the benchmark measures the sale, and
1,000 buyers from one address would otherwise be refused by design.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/boxoffice_bench"
REDIS_PREFIX = "boxoffice-bench:"
SCENARIOS = ("limit", "distinct", "flash", "reads", "expiry", "http")

FULL = {
    "holds": 4000,
    "users": 1000,
    "flash_buyers": 1000,
    "reads": 500,
    "expiry_holds": 5000,
    "expiry_hold_seconds": 5,
    "event_processes": 1,
    "http_buyers": 1000,
    "http_clients": 32,
}
QUICK = {
    "processes": 2,
    "holds": 100,
    "users": 50,
    "flash_buyers": 100,
    "reads": 50,
    "expiry_holds": 60,
    "expiry_hold_seconds": 2,
    "event_processes": 1,
    "http_buyers": 100,
    "http_clients": 8,
}
TARGETS = {
    "distinct_holds_service_over_limit": (">=", 0.5),
    "flash_sale_hold_p99_ms": ("<", 50.0),
    "seat_map_warm_over_postgres": (">=", 10.0),
    "expiry_lag_p99_ms": ("<", 2000.0),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    cores = os.cpu_count() or 1
    parser.add_argument(
        "--processes", type=int, help=f"P worker processes (default cores x 4 = {cores * 4})"
    )
    parser.add_argument("--holds", type=int, help="holds in the limit and distinct scenarios")
    parser.add_argument("--users", type=int, help="customers the distinct holds are spread over")
    parser.add_argument("--flash-buyers", type=int, help="buyers in the flash sale")
    parser.add_argument(
        "--reads", type=int, help="seat-map reads per worker from PostgreSQL (x10 warm)"
    )
    parser.add_argument("--expiry-holds", type=int, help="holds left to run out")
    parser.add_argument("--expiry-hold-seconds", type=int, help="HOLD_SECONDS for those holds")
    parser.add_argument(
        "--event-processes", type=int, help="processes running the event runner (SQS, sweep)"
    )
    parser.add_argument("--http-buyers", type=int, help="buyers in the HTTP flash sale")
    parser.add_argument("--http-clients", type=int, help="concurrent HTTP clients in all")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, help="run only these scenarios")
    parser.add_argument("--quick", action="store_true", help="small sizes: a CI smoke run")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--redis-prefix", default=REDIS_PREFIX, help="key prefix (only these keys are deleted)"
    )
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="pyinstrument on worker 0 during the distinct holds",
    )
    parser.add_argument("--log-level", default="INFO", help="the app's log level in the workers")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    defaults = {**FULL, "processes": cores * 4, **(QUICK if args.quick else {})}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_environment(args: argparse.Namespace) -> dict[str, str]:
    """What every process of the run sees (set before anything imports chalicelib)."""
    return {
        "STAGE": "local",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "REDIS_PREFIX": args.redis_prefix,
        "PASSWORD_HASH_PROFILE": "CHEAPEST",
        "RATE_LIMIT_PER_MINUTE": "0",
        "RATE_LIMIT_HOLDS_PER_MINUTE": "0",
        "HOLD_SECONDS": "30",
        "JWT_SECRET": "boxoffice-bench-secret-of-at-least-32-characters",
        # One request at a time per worker, like a Lambda container: the prod stage's pool size.
        "DB_POOL_SIZE": "1",
        "LOG_LEVEL": args.log_level,
        "POWERTOOLS_LOG_LEVEL": args.log_level,
        "POWERTOOLS_SERVICE_NAME": "boxoffice",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def flatten_moto_sqs_cost() -> None:
    """Keep the emulator from setting the pace. moto 5.2.5's SendMessage reads the queue's
    attributes, and those count the queue's messages (ApproximateNumberOfMessages...) by checking
    each one's visibility and delay with datetime arithmetic, about 80 us a message: a send to a
    queue holding 3,000 delayed expiry messages took about 240 ms, and every scenario slowed down
    as queues filled. In this process's moto server: the counts are recomputed at most once a
    second per queue (SQS calls them approximate too), and message time checks use time.time().
    Receiving, delays, visibility and redrive behave as before, except that a long poll notices a
    delayed message as it becomes visible (see below)."""
    import time as clock

    import moto.sqs.models as sqs_models

    exact = sqs_models.unix_time_millis

    def unix_time_millis(dt: Any = None) -> float:
        return clock.time() * 1000.0 if dt is None else exact(dt)

    sqs_models.unix_time_millis = unix_time_millis
    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        count = getattr(sqs_models.Queue, name).fget

        def recent(queue: Any, count: Any = count, name: str = name) -> int:
            seen = queue.__dict__.setdefault("_bench_counts", {})
            now = clock.monotonic()
            if name not in seen or now - seen[name][0] > 1.0:
                seen[name] = (now, count(queue))
            return seen[name][1]

        setattr(sqs_models.Queue, name, property(recent))

    # ReceiveMessage checks each message it returns against the queue's retention period, which
    # moto reads by building every attribute of the queue (its policy and redrive JSON included):
    # a third of the emulator's time while the subscribers drained. Read the one attribute.
    def within_retention(backend: Any, queue_name: str, message: Any) -> bool:
        retention_s = int(backend.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > clock.time()

    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = within_retention

    # A long poll in moto waits on a condition that only a new message signals, so a delayed
    # message that becomes visible is noticed up to a second late; SQS returns it at once.
    # Look again every 50 ms instead.
    def wait_for_messages(queue: Any, timeout: float) -> None:
        deadline = clock.monotonic() + timeout
        with queue._messages_lock:
            while not queue.messages and clock.monotonic() < deadline:
                queue._messages_lock.wait(min(0.05, deadline - clock.monotonic()))

    sqs_models.Queue.wait_for_messages = wait_for_messages


def start_aws() -> tuple[str, Any]:
    """A moto server on a free port, provisioned from infra/ (the queues, the topic, the
    subscriptions), so the relay publishes for real."""
    import logging

    from moto.server import ThreadedMotoServer

    flatten_moto_sqs_cost()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    from chalicelib.aws.provision import provision

    provision("local", endpoint_url=url)
    return url, server


def jobs_for(plan: list[tuple[Any, str, list[str], bool]], by: str) -> list[tuple]:
    """Plan lines as workers take them: with the user's token (service) or id (limit)."""
    return [(getattr(user, by), session_id, seats, pay) for user, session_id, seats, pay in plan]


# --- the scenarios --------------------------------------------------------------------------


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
        self.add(collect("flash_sale", outcome, **self.session_outcome(session_id)))

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
                    "chalicelib.local.event_runner in "
                    f"{args.event_processes} processes (one poller per queue each)",
                    "hold_seconds": args.expiry_hold_seconds,
                    "not_expired": not_expired,
                },
            )
        )
        if not_expired:
            self.notes.append(f"expiry: {not_expired} holds were not expired in time")

    def http(self, buyers: list[Any]) -> None:
        """The flash sale against `python -m chalicelib.local.run` (what `make run` runs), with
        its own embedded AWS endpoint, its threaded HTTP server and its event runner."""
        import requests

        from bench.data import flash_plan
        from bench.harness import collect, eprint, split

        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "EMBEDDED_AWS_PORT": str(free_port()),
            "DB_POOL_SIZE": "8",  # the local stage's
        }
        env.pop("AWS_ENDPOINT_URL", None)  # its own embedded endpoint, as `make run` starts it
        log_path = self.args.results_dir / f"{self.stamp}-server.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "chalicelib.local.run"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"the server exited early; see {log_path}")
                try:
                    if requests.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer in 60 s; see {log_path}")
                time.sleep(0.2)
            plan, session_id = flash_plan(buyers, self.rng, "Bench HTTP flash sale")
            threads = max(1, self.args.http_clients // self.pool.size)
            per = [
                {"url": url, "jobs": part, "threads": threads}
                for part in split(jobs_for(plan, "token"), self.pool.size)
            ]
            outcome = self.pool.run("bench.tasks:http_holds", per)
            self.add(
                collect(
                    "http_flash_sale",
                    outcome,
                    clients=threads * self.pool.size,
                    **self.session_outcome(session_id),
                )
            )
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                eprint("the HTTP server did not stop on SIGINT; killing it")
                server.kill()
                server.wait()

    def session_outcome(self, session_id: str) -> dict[str, int]:
        import psycopg

        with psycopg.connect(self.args.database_url, autocommit=True) as conn:
            sold, held = conn.execute(
                """
                SELECT count(*) FILTER (WHERE sale_id IS NOT NULL),
                       count(*) FILTER (WHERE hold_id IS NOT NULL AND held_until > now())
                  FROM seats WHERE session_id = %s
                """,
                (session_id,),
            ).fetchone()
        return {"seats_sold": sold, "seats_held": held}

    def close(self) -> None:
        self.pool.close()


# --- the report -----------------------------------------------------------------------------


def check_targets(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_name = {s["name"]: s for s in report["scenarios"]}
    values = dict(report["ratios"])
    if "flash_sale" in by_name:
        values["flash_sale_hold_p99_ms"] = by_name["flash_sale"]["by_kind"]["hold"]["p99_ms"]
    if "expiry_lag" in by_name:
        lag = by_name["expiry_lag"]
        values["expiry_lag_p99_ms"] = lag["p99_ms"] if not lag["not_expired"] else None
    found = {}
    for name, (op, target) in TARGETS.items():
        if name in values:
            value = values[name]
            met = value is not None and (value >= target if op == ">=" else value < target)
            found[name] = {"value": value, "target": f"{op} {target}", "met": met}
    return found


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [
        f"# boxoffice benchmark, {report['started_at']}",
        "",
        f"{env['cores']} cores, P = {env['processes']} worker processes, {env['python']}, "
        f"{env['postgres']}, Redis {env['redis']}. Sizes: `{json.dumps(report['sizes'])}`.",
        "",
        "| scenario | requests/s | p50 ms | p95 ms | p99 ms | counts | vs limit |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for s in report["scenarios"]:
        counts = ", ".join(f"{k}: {v}" for k, v in s["counts"].items())
        ratio = s.get("requests_per_s_over_limit", "")
        lines.append(
            f"| {s['name']} | {s['requests_per_s']} | {s['p50_ms']} | {s['p95_ms']} | "
            f"{s['p99_ms']} | {counts} | {ratio} |"
        )
    lines += ["", "Per request kind:", ""]
    lines += ["| scenario | kind | per s | p50 ms | p95 ms | p99 ms | counts |"]
    lines += ["|---|---|---:|---:|---:|---:|---|"]
    for s in report["scenarios"]:
        for kind, k in s["by_kind"].items():
            counts = ", ".join(f"{c}: {v}" for c, v in k["counts"].items())
            lines.append(
                f"| {s['name']} | {kind} | {k['per_s']} | {k['p50_ms']} | {k['p95_ms']} | "
                f"{k['p99_ms']} | {counts} |"
            )
    lines += ["", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["ratios"].items()]
    lines += ["", "| target | value | wanted | met |", "|---|---:|---|---|"]
    lines += [
        f"| {k} | {t['value']} | {t['target']} | {'yes' if t['met'] else 'NO'} |"
        for k, t in report["targets"].items()
    ]
    lines += ["", "Audit (every count must be 0):", "", "| check | count |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in report["audit"].items()]
    lines += ["", f"Totals: `{json.dumps(report['totals'])}`"]
    if report["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def versions(database_url: str) -> dict[str, str]:
    import psycopg

    from chalicelib.cache import redis_client

    with psycopg.connect(database_url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
    return {"postgres": f"PostgreSQL {pg}", "redis": redis_client().info()["redis_version"]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(bench_environment(args))
    sys.path.insert(0, str(ROOT))
    from bench import audit as audit_module
    from bench.data import clean_redis, make_users, prepare_database
    from bench.harness import WorkerPool, eprint

    which = set(args.only or SCENARIOS)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    eprint(f"bench: P={args.processes}, database {args.database_url}, prefix {args.redis_prefix}")
    prepare_database(args.database_url)
    clean_redis(args.redis_prefix)
    aws_url, aws = start_aws()
    eprint(f"bench: AWS endpoint {aws_url} (moto, provisioned)")
    users = make_users(args.database_url, args.users)
    buyers = make_users(args.database_url, args.flash_buyers)
    http_buyers = make_users(args.database_url, args.http_buyers) if "http" in which else []

    failures: list[str] = []
    run = Run(args, stamp)
    stop_file = args.results_dir / f"{stamp}.stop"

    def attempt(name: str, step: Any) -> None:
        eprint(f"bench: {name} ...")
        try:
            step()
        except Exception:
            failures.append(f"{name}: {traceback.format_exc()}")
            eprint(f"bench: {name} FAILED\n{traceback.format_exc()}")

    # Alone, before any event process starts: no relay, subscribers or emulator work.
    if "limit" in which:
        attempt("limit", lambda: run.limit(users))
    if "distinct" in which:
        attempt("distinct", lambda: run.distinct(users))
    # Each event process runs several pollers, the sweep and the outbox relay on threads: it gets
    # the local stage's pool size, not a single Lambda container's.
    events = WorkerPool(args.event_processes, str(run.log_path), {"DB_POOL_SIZE": "8"})
    running_events = events.dispatch(
        "bench.tasks:event_runner",
        [{"stop_file": str(stop_file)}] * events.size,
    )
    # Expiry runs before the distinct holds: their unpaid holds (30 s) would otherwise run out
    # while the expiry scenario drains the same queue, and be counted in its lag.
    steps = [
        ("expiry", lambda: run.expiry(users)),
        ("distinct", lambda: run.distinct_with_events(users)),
        ("flash", lambda: run.flash(buyers)),
        ("reads", lambda: run.reads(users)),
        ("http", lambda: run.http(http_buyers)),
    ]
    try:
        for name, step in steps:
            if name in which:
                attempt(name, step)
    finally:
        run.close()
        stop_file.touch()
        try:
            events.gather(running_events)
        except Exception:
            failures.append(f"event runner: {traceback.format_exc()}")
        events.close()
        stop_file.unlink()

    import psycopg

    with psycopg.connect(args.database_url, autocommit=True) as conn:
        found = audit_module.audit(conn)
        totals = audit_module.totals(conn)
        totals["outbox_unpublished_service"] = conn.execute(
            """
            SELECT count(*) FROM outbox o JOIN reservations r ON r.id = o.aggregate_id
             WHERE o.published_at IS NULL AND NOT r.session_id = ANY(%s::uuid[])
            """,
            (run.limit_session_ids,),
        ).fetchone()[0]
    aws.stop()

    limit = next((s for s in run.scenarios if s.name == "limit_distinct_holds"), None)
    scenarios = []
    for scenario in run.scenarios:
        line = scenario.as_dict()
        if limit is not None and scenario.name != limit.name and "hold" in line["by_kind"]:
            line["requests_per_s_over_limit"] = round(line["requests_per_s"] / limit.per_s(), 3)
            line["holds_per_s_over_limit"] = round(
                line["by_kind"]["hold"]["per_s"] / limit.per_s("hold"), 3
            )
        scenarios.append(line)
    notes = [
        *run.notes,
        "limit: take_seats + confirm_payment on plain psycopg connections, each in its own "
        "transaction, same plan shape as distinct_holds; its outbox rows are marked published "
        "without being relayed",
        f"events: chalicelib.local.event_runner in {args.event_processes} processes for the "
        "whole run (every queue polled, the sweep every minute), as under `make run`",
        "service: app(event, context) with API Gateway proxy events in P spawned processes, one "
        "request at a time each, DB_POOL_SIZE=1 (the prod stage's); requests commit outbox rows "
        "and the relay_outbox function in the event processes publishes them to a moto server "
        "over HTTP",
        "rate limits off (RATE_LIMIT_PER_MINUTE=0, RATE_LIMIT_HOLDS_PER_MINUTE=0)",
        *(f"FAILED {f.splitlines()[0]}" for f in failures),
    ]
    report = {
        "started_at": started.isoformat(),
        "environment": {
            "cores": os.cpu_count(),
            "processes": args.processes,
            "python": f"Python {platform.python_version()}",
            **versions(args.database_url),
        },
        "sizes": {k: getattr(args, k) for k in ("processes", *FULL)},
        "scenarios": scenarios,
        "ratios": run.ratios,
        "audit": found,
        "totals": totals,
        "notes": notes,
        "failures": failures,
    }
    report["targets"] = check_targets(report)
    json_path = args.results_dir / f"{stamp}.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path = args.results_dir / f"{stamp}.md"
    md_path.write_text(markdown(report))
    print(markdown(report))
    print(f"written: {json_path} and {md_path}")
    bad = {k: v for k, v in found.items() if v}
    if bad:
        eprint(f"bench: AUDIT FAILED: {bad}")
        return 1
    if failures:
        eprint(f"bench: {len(failures)} scenario(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
