"""`make bench` (`python -m bench`): the flash-sale benchmark on the local PostgreSQL and Redis.

One run measures, with the same machine and the same data shape, the handler-level scenarios
(bench/scenarios.py: the SQL limit, the Lambda handler in P warm processes) and then the HTTP
block (bench/http_block.py: the system as `make run` starts it, over kept-alive connections),
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
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/boxoffice_bench"
REDIS_PREFIX = "boxoffice-bench:"
SCENARIOS = ("limit", "distinct", "flash", "hot", "sequential", "reads", "expiry", "http")

FULL = {
    "holds": 4000,
    "users": 1000,
    "flash_buyers": 1000,
    "reads": 500,
    "expiry_holds": 5000,
    "expiry_hold_seconds": 5,
    "event_processes": 1,
    "hot_seat_buyers": 100,
    "http_gets": 500,
    "http_load_seconds": 20,
    "http_read_seconds": 10,
    "http_flash_buyers": 200,
    "http_hot_seat_buyers": 100,
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
    "hot_seat_buyers": 50,
    "http_gets": 50,
    "http_load_seconds": 3,
    "http_read_seconds": 2,
    "http_flash_buyers": 40,
    "http_hot_seat_buyers": 30,
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
    parser.add_argument("--hot-seat-buyers", type=int, help="buyers for the one hot seat")
    parser.add_argument("--http-gets", type=int, help="sequential GETs over one connection")
    parser.add_argument("--http-load-seconds", type=int, help="the 16-client HTTP hold load")
    parser.add_argument("--http-read-seconds", type=int, help="the HTTP seat-map reads")
    parser.add_argument("--http-flash-buyers", type=int, help="buyers in the HTTP flash sale")
    parser.add_argument("--http-hot-seat-buyers", type=int, help="buyers for the HTTP hot seat")
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
        "SEATS_PER_CUSTOMER": "0",
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    environment = bench_environment(args)
    os.environ.update(environment)
    sys.path.insert(0, str(ROOT))
    from bench import audit as audit_module
    from bench.data import clean_redis, make_users, prepare_database
    from bench.harness import WorkerPool, eprint
    from bench.http_block import HttpBlock
    from bench.report import check_targets, markdown, versions
    from bench.scenarios import Run
    from devtools.aws_endpoint import embedded_endpoint
    from devtools.provision import provision

    which = set(args.only or SCENARIOS)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    eprint(f"bench: P={args.processes}, database {args.database_url}, prefix {args.redis_prefix}")
    prepare_database(args.database_url)
    clean_redis(args.redis_prefix)
    users = make_users(args.database_url, args.users)
    buyers = make_users(args.database_url, args.flash_buyers)

    failures: list[str] = []
    http_values: dict[str, Any] = {}
    stop_file = args.results_dir / f"{stamp}.stop"

    def attempt(name: str, step: Any) -> None:
        eprint(f"bench: {name} ...")
        try:
            step()
        except Exception:
            failures.append(f"{name}: {traceback.format_exc()}")
            eprint(f"bench: {name} FAILED\n{traceback.format_exc()}")

    with embedded_endpoint() as aws_url:
        # The handler-level scenarios' own endpoint (the HTTP block starts `make run`, which
        # starts another): the same emulator process `make run` runs, provisioned from infra/.
        os.environ["AWS_ENDPOINT_URL"] = aws_url
        os.environ["EVENTS_TOPIC_ARN"] = provision("local", endpoint_url=aws_url)["TopicArn"]
        eprint(f"bench: AWS endpoint {aws_url} (embedded, provisioned)")
        run = Run(args, stamp)  # its worker processes inherit the endpoint's URL

        # Alone, before any event process starts: no relay, subscribers or emulator work.
        if "limit" in which:
            attempt("limit", lambda: run.limit(users))
        if "distinct" in which:
            attempt("distinct", lambda: run.distinct(users))
        if "sequential" in which:
            attempt("sequential", run.sequential_get)
        # Each event process runs several pollers, the sweep and the outbox relay on threads: it
        # gets the local stage's pool size, not a single Lambda container's.
        events = WorkerPool(args.event_processes, str(run.log_path), {"DB_POOL_SIZE": "8"})
        running_events = events.dispatch(
            "bench.tasks:event_runner", [{"stop_file": str(stop_file)}] * events.size
        )
        # Expiry runs before the distinct holds: their unpaid holds (30 s) would otherwise run
        # out while the expiry scenario drains the same queue, and be counted in its lag.
        steps = [
            ("expiry", lambda: run.expiry(users)),
            ("distinct", lambda: run.distinct_with_events(users)),
            ("flash", lambda: run.flash(buyers)),
            ("hot", lambda: run.hot_seat(buyers[: args.hot_seat_buyers])),
            ("reads", lambda: run.reads(users)),
        ]
        try:
            for name, step in steps:
                if name in which:
                    attempt(name, step)
        finally:
            stop_file.touch()
            try:
                events.gather(running_events)
            except Exception:
                failures.append(f"event runner: {traceback.format_exc()}")
            events.close()
            stop_file.unlink()
        for name in ("AWS_ENDPOINT_URL", "EVENTS_TOPIC_ARN"):  # `make run` provisions its own
            os.environ.pop(name, None)

        if "http" in which:
            block = HttpBlock(
                run.pool,
                run.rng,
                args.database_url,
                environment,
                args.results_dir / f"{stamp}-make-run.log",
                {k: getattr(args, k) for k in FULL if k.startswith("http_")},
            )
            attempt("http", lambda: http_values.update(block.run(users, buyers, run.add)))
        run.close()

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
        f"events: devtools/event_runner.py in {args.event_processes} processes for the "
        "handler-level scenarios after the first three (every queue polled, the sweep every "
        "minute), against the embedded AWS endpoint (moto behind granian) that `make run` runs",
        "service: app(event, context) with API Gateway proxy events in P spawned processes, one "
        "request at a time each, DB_POOL_SIZE=1 (the prod stage's)",
        "http: `python -m devtools.run` (what `make run` runs, the local stage's settings) on "
        "free ports, driven by the P processes with http.client on kept-alive connections",
        "rate limits and the per-customer seat cap off (RATE_LIMIT_PER_MINUTE=0, "
        "RATE_LIMIT_HOLDS_PER_MINUTE=0, SEATS_PER_CUSTOMER=0)",
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
        "http": http_values,
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
