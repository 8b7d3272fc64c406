"""Cold start and warm handler times of the packaged API function, as docs/deploy.md reports them.

    .venv/bin/python scripts/measure_package.py [dist/prod/deployment.zip] [--cold 5]

Each cold start is a fresh interpreter with only the unzipped package, the standard library and
boto3 importable (tests/support/lambda_sandbox.py), importing `app` and answering API Gateway
events against the local PostgreSQL and Redis (a database of its own, dropped afterwards). The
package directory is read-only, as /var/task is on Lambda: modules the zip does not ship
compiled are compiled on every cold start (--strip-pyc measures that). Times are this machine's,
at up to one core; CPU times (the process's, all threads) do not depend on what else the machine
runs. Lambda gives a function a share of a vCPU in proportion to its memory (1,769 MB = 1 vCPU).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.lambda_sandbox import api_event, invoke, runtime_dependencies, unpack  # noqa: E402

JWT = "measure-" + "x" * 40


def prepare(database_url: str, redis_prefix: str) -> dict[str, str]:
    os.environ.update(
        {
            "STAGE": "prod",
            "DATABASE_URL": database_url,
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "REDIS_PREFIX": redis_prefix,
            "JWT_SECRET": JWT,
        }
    )
    from chalicelib.db.migrate import create_database_if_missing, migrate
    from chalicelib.services import accounts, sessions
    from chalicelib.web import tokens

    create_database_if_missing(database_url)
    migrate(database_url)
    manager, _ = accounts.ensure_user(
        email="manager@measure.test", password="password123", name="M", role="MANAGER"
    )
    customer, _ = accounts.ensure_user(
        email="buyer@measure.test", password="password123", name="B", role="CUSTOMER"
    )
    session = sessions.create_session(
        created_by=manager["id"],
        movie="Measure",
        room="1",
        starts_at=datetime.now(UTC) + timedelta(days=1),
        price_cents=1000,
        rows=20,
        seats_per_row=20,
    )
    return {
        "session": session["id"],
        "token": tokens.issue(customer["id"], "CUSTOMER"),
    }


def events(ids: dict[str, str]) -> tuple[list[dict], list[str]]:
    """The first request of a cold container, then a warm mix: (events, their labels)."""
    session = ids["session"]
    json_body = {"Content-Type": "application/json"}
    auth = {"Authorization": f"Bearer {ids['token']}", **json_body}
    by_id = {"session_id": session}
    read = api_event("GET", f"/sessions/{session}", "/sessions/{session_id}", path_parameters=by_id)
    seats = api_event(
        "GET", f"/sessions/{session}/seats", "/sessions/{session_id}/seats", path_parameters=by_id
    )
    login = json.dumps({"email": "buyer@measure.test", "password": "password123"})
    plan = [("first GET /sessions/{id}", read)]
    plan += [("GET /sessions/{id}/seats", seats)] * 200
    plan += [("GET /sessions/{id}", read)] * 100
    rows = "ABCDEFGHIJKLMNOPQRST"
    for n in range(40):
        body = json.dumps({"session_id": session, "seats": [f"{rows[n // 20]}{n % 20 + 1}"]})
        plan.append(
            ("POST /reservations", api_event("POST", "/reservations", headers=auth, body=body))
        )
    login_event = api_event("POST", "/auth/login", headers=json_body, body=login)
    plan += [("POST /auth/login", login_event)] * 10
    return [event for _, event in plan], [label for label, _ in plan]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("zip", nargs="?", default=str(ROOT / "dist" / "prod" / "deployment.zip"))
    parser.add_argument("--cold", type=int, default=5, help="cold starts to time")
    parser.add_argument("--strip-pyc", action="store_true", help="drop the zip's .pyc files")
    args = parser.parse_args()
    database = f"boxoffice_measure_{os.getpid()}"
    url = f"postgresql://postgres@127.0.0.1:5432/{database}"
    prefix = f"boxoffice-measure-{uuid.uuid4().hex[:8]}:"
    try:
        ids = prepare(url, prefix)
        env = {
            "STAGE": "prod",
            "AWS_DEFAULT_REGION": "us-east-1",
            "DATABASE_URL": url,
            "DB_POOL_SIZE": "1",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "REDIS_PREFIX": prefix,
            "JWT_SECRET": JWT,
            # Limits on, as deployed (a Redis call per request), too high to refuse anything.
            "RATE_LIMIT_PER_MINUTE": "1000000",
            "RATE_LIMIT_HOLDS_PER_MINUTE": "1000000",
            "SEATS_PER_CUSTOMER": "0",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        with tempfile.TemporaryDirectory() as scratch:
            scratch_path = Path(scratch)
            runtime = runtime_dependencies(scratch_path / "runtime")
            compileall.compile_dir(runtime, quiet=1)  # the runtime's boto3 comes compiled
            cold = []
            for n in range(args.cold):
                package = unpack(Path(args.zip), scratch_path / f"task{n}")
                if args.strip_pyc:
                    for compiled in package.rglob("*.pyc"):
                        compiled.unlink()
                os.chmod(package, 0o555)  # read-only, as /var/task: no __pycache__ written
                first = [events(ids)[0][0]]
                outcome = invoke(package, runtime, first, env, scratch_path)
                cold.append(outcome)
            all_events, kinds = events(ids)
            package = scratch_path / "task0"
            warm = invoke(package, runtime, all_events, env, scratch_path)
    finally:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)

    def spread(values: list[float]) -> str:
        low, high = min(values), max(values)
        return f"median {statistics.median(values):.0f} ms (min {low:.0f}, max {high:.0f})"

    shipped = "without" if args.strip_pyc else "with"
    print(f"cold starts: {len(cold)}, the package {shipped} compiled modules")
    print(f"  import app: wall {spread([c['import_ms'] for c in cold])}")
    print(f"              CPU  {spread([c['import_cpu_ms'] for c in cold])}")
    first = [c["answers"][0] for c in cold]
    print(f"  first answer (GET /sessions/{{id}}): wall {spread([a['ms'] for a in first])}")
    print(f"                                      CPU  {spread([a['cpu_ms'] for a in first])}")
    print(f"  peak RSS after the first answer: {max(c['max_rss_mb'] for c in cold):.0f} MB")
    by_kind: dict[str, list[dict]] = {}
    for kind, answer in zip(kinds, warm["answers"], strict=True):
        by_kind.setdefault(kind, []).append(answer)
    print("warm (one container, requests in sequence): median wall / median CPU per request")
    for kind, answers in by_kind.items():
        wall = statistics.median(a["ms"] for a in answers)
        cpu = statistics.median(a["cpu_ms"] for a in answers)
        statuses = sorted({a["statusCode"] for a in answers})
        print(f"  {kind:28} n={len(answers):3}  {wall:7.1f} ms / {cpu:7.1f} ms  status {statuses}")
    print(f"  peak RSS after {len(kinds)} requests: {warm['max_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
